"""Hostile and sloppy requests against a real ``autoq serve`` (SQLite, no workers): every one is
refused with a 4xx in the one error shape, naming the field, exposing no server path, and
queueing nothing. Types are strict (no string → number, number → bool or float → int), numbers
finite, data paths total, sizes within the server's limits (two of them lowered here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Api, Service, service_env, tiny_spec
from sqlalchemy import create_engine, text

from service.schemas import ErrorBody

LIMITS = {"limit_samples": "50", "limit_resolution": "128"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def data_root(workdir: Path) -> Path:
    root = workdir / "data"
    root.mkdir()
    (root / "folder").mkdir()
    (root / "plain.h5").write_bytes(b"")
    (root / "loop").symlink_to(root / "loop")
    (root / "escape").symlink_to(workdir)
    return root


@pytest.fixture(scope="module")
def api(workdir: Path, data_root: Path, float_cache: Path) -> Iterator[Api]:
    storage = f"sqlite:///{workdir / 'autoq.db'}"
    service = Service(storage, service_env(workdir, storage, float_cache, **LIMITS), workdir)
    try:
        yield service.api(workers=0)
    finally:
        service.close()


def jobs_queued(workdir: Path) -> int:
    engine = create_engine(f"sqlite:///{workdir / 'autoq.db'}")
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM autoq_jobs")).scalar_one()
    engine.dispose()
    return count


def assert_error(response: httpx.Response, status: int, loc: list[Any], *,
                 says: str = "") -> dict[str, Any]:
    """``response`` is a ``status`` in the error shape, with a problem at ``loc`` whose message
    contains ``says``; returns that problem."""
    assert response.status_code == status, response.text
    body = ErrorBody.model_validate(response.json())
    problems = [item for item in body.detail if item.loc == loc]
    assert problems, f"no problem at {loc}: {response.text}"
    assert says in problems[0].msg, response.text
    return problems[0].model_dump()


def with_data(path: str) -> dict[str, Any]:
    spec = tiny_spec("hostile")
    spec["data"]["path"] = path
    return {"spec": spec}


def changed(section: str, key: str, value: Any) -> dict[str, Any]:
    spec = tiny_spec("hostile")
    spec[section][key] = value
    return {"spec": spec}


PATH = ["body", "spec", "data", "path"]
BAD_PATHS = [
    pytest.param("data/\u0000evil.h5", "contains a NUL byte", id="nul-byte"),
    pytest.param("", "is empty", id="empty"),
    pytest.param(".", "is the data root itself", id="dot"),
    pytest.param("folder/..", "'..'", id="dotdot-back-to-the-root"),
    pytest.param("folder", "is a directory", id="a-folder"),
    pytest.param("plain.h5/inner.h5", "goes through 'plain.h5', which is a file",
                 id="through-a-file"),
    pytest.param("x" * 256 + ".h5", "has a name longer than 255 bytes", id="name-too-long"),
    pytest.param("/".join(["d" * 200] * 21), "is longer than 4096 bytes", id="path-too-long"),
    pytest.param("loop/x.h5", "cannot be resolved", id="symlink-loop"),
    pytest.param("escape/outside.h5", "is outside the data root", id="symlink-out"),
    pytest.param("/etc/passwd", "is outside the data root", id="absolute-outside"),
]


@pytest.mark.parametrize(("path", "says"), BAD_PATHS)
def test_a_bad_data_path_is_a_422_naming_the_field(api: Api, workdir: Path, path: str,
                                                  says: str) -> None:
    before = jobs_queued(workdir)
    response = api.client.post("/api/v1/searches", json=with_data(path))
    assert_error(response, 422, PATH, says=says)
    assert str(workdir) not in response.text
    assert jobs_queued(workdir) == before


@pytest.mark.parametrize("suffix", ["", "/"])
def test_the_data_root_itself_by_its_absolute_path_is_refused(api: Api, data_root: Path,
                                                              suffix: str) -> None:
    response = api.client.post("/api/v1/searches", json=with_data(f"{data_root}{suffix}"))
    assert_error(response, 422, PATH, says="is the data root itself")


def test_a_lone_surrogate_is_not_text(api: Api, workdir: Path) -> None:
    before = jobs_queued(workdir)
    body = (b'{"space": "burgers-fno-small", "overrides": {"data": {"path": "\\ud800.h5"}}}')
    response = api.client.post("/api/v1/searches", content=body,
                               headers={"content-type": "application/json"})
    assert_error(response, 422, ["body", "overrides", "data", "path"], says="Unicode")
    assert jobs_queued(workdir) == before


COERCIBLE = [
    pytest.param(changed("space", "weight_bits", ["8"]), ["body", "spec", "space",
                                                          "weight_bits", 0], id="bits-string"),
    pytest.param(changed("space", "weight_bits", [8.0]), ["body", "spec", "space",
                                                          "weight_bits", 0], id="bits-float"),
    pytest.param(changed("space", "act_bits", [True]), ["body", "spec", "space", "act_bits", 0],
                 id="bits-bool"),
    pytest.param(changed("space", "scales", ["0.5"]), ["body", "spec", "space", "scales", 0],
                 id="scale-string"),
    pytest.param(changed("model", "coordinates", 0), ["body", "spec", "model", "coordinates"],
                 id="bool-from-int"),
    pytest.param(changed("train", "epochs", 2.0), ["body", "spec", "train", "epochs"],
                 id="epochs-float"),
    pytest.param({**with_data("tiny.h5"), "trials": "1"}, ["body", "trials"],
                 id="trials-string"),
    pytest.param({**with_data("tiny.h5"), "trials": 1.0}, ["body", "trials"], id="trials-float"),
    pytest.param({"space": "burgers-fno-small", "overrides": {"search": {"trials": "2"}}},
                 ["body", "overrides", "search", "trials"], id="override-string"),
    pytest.param({"space": "burgers-fno-small", "name": 7}, ["body", "name"], id="name-number"),
]


@pytest.mark.parametrize(("body", "loc"), COERCIBLE)
def test_values_of_the_wrong_json_type_are_not_coerced(api: Api, workdir: Path,
                                                       body: dict[str, Any], loc: list[Any]
                                                       ) -> None:
    before = jobs_queued(workdir)
    assert_error(api.client.post("/api/v1/searches", json=body), 422, loc, says="valid")
    assert jobs_queued(workdir) == before


def test_an_integer_is_a_number(api: Api) -> None:
    response = api.client.post("/api/v1/searches", json=changed("space", "scales", [1, 0.5]))
    assert response.status_code == 202, response.text


NOT_FINITE = [
    pytest.param(b'{"spec": {"space": {"scales": [NaN]}}}', ["body", "spec", "space", "scales", 0],
                 id="nan-in-spec"),
    pytest.param(b'{"space": "burgers-fno-small", "overrides": {"qat": {"lr": Infinity}}}',
                 ["body", "overrides", "qat", "lr"], id="inf-in-overrides"),
    pytest.param(b'{"space": "burgers-fno-small", "overrides": {"x": [1, -Infinity]}}',
                 ["body", "overrides", "x", 1], id="minus-inf-anywhere"),
]


@pytest.mark.parametrize(("body", "loc"), NOT_FINITE)
def test_nan_and_infinity_are_named_as_not_finite(api: Api, body: bytes, loc: list[Any]
                                                  ) -> None:
    response = api.client.post("/api/v1/searches", content=body,
                               headers={"content-type": "application/json"})
    problem = assert_error(response, 422, loc, says="finite number")
    assert problem["type"] == "finite_number"


LIMITED = [
    pytest.param(["data", "generate", "samples"], 51, "at most 50 on this server "
                 "(AUTOQ_LIMIT_SAMPLES), got 51", id="samples"),
    pytest.param(["data", "generate", "samples"], 10**12, "got 1000000000000", id="samples-huge"),
    pytest.param(["data", "generate", "resolution"], 10**9, "at most 128 on this server "
                 "(AUTOQ_LIMIT_RESOLUTION)", id="resolution"),
    pytest.param(["data", "generate", "resolution"], None, "got 1024", id="public-resolution"),
    pytest.param(["data", "generate", "frames"], 202, "(AUTOQ_LIMIT_FRAMES)", id="frames"),
    pytest.param(["train", "epochs"], 10**9, "at most 100 on this server "
                 "(AUTOQ_LIMIT_TRAIN_EPOCHS)", id="train-epochs"),
    pytest.param(["train", "rescale_epochs"], 101, "at most 100 on this server "
                 "(AUTOQ_LIMIT_TRAIN_EPOCHS), got 101", id="train-rescale-epochs"),
    pytest.param(["qat", "epochs"], 11, "at most 10 on this server (AUTOQ_LIMIT_QAT_EPOCHS)",
                 id="qat-epochs"),
    pytest.param(["search", "trials"], 501, "(AUTOQ_LIMIT_TRIALS)", id="trials"),
    pytest.param(["search", "timeout"], 30 * 24 * 3600.0, "(AUTOQ_LIMIT_JOB_SECONDS)",
                 id="timeout"),
]


@pytest.mark.parametrize(("field", "value", "says"), LIMITED)
def test_sizes_over_a_limit_are_refused_naming_the_field_and_the_limit(
    api: Api, workdir: Path, field: list[str], value: Any, says: str
) -> None:
    spec = tiny_spec("big")
    node = spec
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    before = jobs_queued(workdir)
    response = api.client.post("/api/v1/searches", json={"spec": spec})
    problem = assert_error(response, 422, ["body", "spec", *field], says=says)
    assert problem["type"] == "limit_exceeded"
    assert jobs_queued(workdir) == before


def test_a_bundled_space_over_a_limit_is_blamed_on_the_space(api: Api) -> None:
    # The bundled paper space generates 2000 samples: above this server's 50.
    response = api.client.post("/api/v1/searches", json={"space": "burgers-fno-paper"})
    assert_error(response, 422, ["body", "space", "data", "generate", "samples"],
                 says="AUTOQ_LIMIT_SAMPLES")
    overridden = api.client.post("/api/v1/searches", json={
        "space": "burgers-fno-small", "overrides": {"data": {"generate": {"samples": 60}}}})
    assert_error(overridden, 422, ["body", "overrides", "data", "generate", "samples"],
                 says="AUTOQ_LIMIT_SAMPLES")


def test_every_error_status_has_the_one_shape(api: Api, workdir: Path) -> None:
    post = "/api/v1/searches"
    json_header = {"content-type": "application/json"}
    assert_error(api.client.post(post, content=b'{"space": ', headers=json_header), 400,
                 ["body"], says="not valid JSON")
    assert_error(api.client.post(post, content=b'{"space": "\xff"}', headers=json_header), 400,
                 ["body"], says="parsing the body")
    assert_error(httpx.post(f"{api.url}{post}", json={"space": "burgers-fno-small"}), 401,
                 ["header", "Authorization"], says="bearer token")
    assert_error(api.client.get("/api/v1/searches/00000000-0000-0000-0000-000000000000"), 404,
                 ["path", "search_id"])
    assert_error(api.client.get("/api/v1/no-such-route"), 404, [], says="no route")
    not_allowed = api.client.delete(post)
    assert_error(not_allowed, 405, [])
    assert not_allowed.headers["allow"] == "GET, POST"
    created = api.client.post(post, json=with_data("named.h5") | {"name": "taken"})
    assert created.status_code == 202, created.text
    assert_error(api.client.post(post, json=with_data("named.h5") | {"name": "taken"}), 409,
                 ["body", "name"])
    declared = api.client.post(post, content=b" " * (2 << 20), headers=json_header)
    assert_error(declared, 413, ["body"], says="AUTOQ_MAX_REQUEST_BYTES")

    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 2.5 MB without a Content-Length: counted as it streams in
            yield b" " * 65536

    streamed = api.client.post(post, content=chunks(), headers=json_header)
    assert streamed.json() == declared.json() and streamed.status_code == 413
    assert_error(api.client.post(post, json={"space": ""}), 422, ["body", "space"])


def test_the_api_shows_data_paths_relative_to_the_data_root(api: Api, data_root: Path) -> None:
    created = api.client.post("/api/v1/searches",
                              json=with_data(f"{data_root}/nested/dir/mine.h5"))
    assert created.status_code == 202, created.text
    shown = api.search(created.json()["id"])
    assert shown["spec"]["data"]["path"] == "nested/dir/mine.h5"
    assert str(data_root) not in str(shown)


def test_the_openapi_document_declares_the_choices_limits_and_errors(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    bundled = Path(__file__).resolve().parents[2] / "search_spaces"
    space = schemas["BundledSearchCreate"]["properties"]["space"]
    assert space["enum"] == sorted(p.stem for p in bundled.glob("*.yaml"))
    assert schemas["GenerateSpec"]["properties"]["samples"]["maximum"] == 50
    resolution = schemas["GenerateSpec"]["properties"]["resolution"]["anyOf"][0]
    assert resolution["maximum"] == 128
    assert schemas["QATConfig"]["properties"]["epochs"]["maximum"] == 10
    assert schemas["TrainConfig"]["properties"]["rescale_epochs"]["anyOf"][0]["maximum"] == 100
    submit = document["paths"]["/api/v1/searches"]["post"]["responses"]
    assert set(submit) == {"202", "400", "401", "409", "413", "422", "503"}
    assert "Retry-After" in submit["503"]["headers"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.rsplit("/", 1)[-1] in ("ErrorBody", "NoOperatingPoint"), \
                        (method, path, status)


def test_former_limit_variables_are_refused_naming_their_new_names(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "AUTOQ_MAX_TRIALS": "10", "AUTOQ_STORAGE": f"sqlite:///{tmp_path}/x.db"}
    ran = subprocess.run([sys.executable, "-m", "service.cli", "worker"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ran.returncode != 0
    assert "AUTOQ_MAX_TRIALS is no longer read: use AUTOQ_LIMIT_TRIALS" in ran.stderr, ran.stderr
