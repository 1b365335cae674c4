"""The REST API through a real ``autoq serve`` (uvicorn on loopback, SQLite, one in-process
worker): a real search end to end, cancelling, bad requests, the dashboard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
from harness import TOKEN, Api, Service, service_env, tiny_spec, verify_results, wait_for
from sqlalchemy import create_engine, text

from autoq.search.records import SPEC_ATTR


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqlite-service")


@pytest.fixture(scope="module")
def storage(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'autoq.db'}"


@pytest.fixture(scope="module")
def api(workdir: Path, storage: str, float_cache: Path) -> Iterator[Api]:
    service = Service(storage, service_env(workdir, storage, float_cache,
                                           allowed_factories="neuralop"), workdir)
    try:
        yield service.api(workers=1)
    finally:
        service.close()


@pytest.fixture(scope="module")
def finished(api: Api) -> dict[str, Any]:
    """A tiny search submitted with a name and run to the end."""
    created = api.submit(spec=tiny_spec(), name="tiny-sqlite")
    assert created["status"] == "queued" and created["name"] == "tiny-sqlite"
    return api.wait_status(created["id"], {"succeeded", "failed", "cancelled"})


def test_search_succeeds_with_trials_pareto_and_operating_point(
    api: Api, finished: dict[str, Any], workdir: Path, storage: str
) -> None:
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["started_at"] <= finished["finished_at"]
    # Shown relative to the data root, where the job generated the file (its temporary file
    # beside it: nothing is written outside the root).
    assert finished["spec"]["data"]["path"] == "burgers_tiny.h5"
    assert (workdir / "data" / "burgers_tiny.h5").is_file()
    assert [p.name for p in workdir.glob("*.h5*")] == []
    verify_results(api, finished["id"], trials=3)
    # The study (which optuna-dashboard shows) stores the spec as the job does: no server path.
    stored = optuna.load_study(study_name="tiny-sqlite", storage=storage).user_attrs[SPEC_ATTR]
    assert json.loads(stored)["data"]["path"] == "burgers_tiny.h5"
    assert str(workdir) not in stored


def test_a_trials_deployable_model_downloads_as_a_zip_that_runs(
    api: Api, finished: dict[str, Any], tmp_path: Path
) -> None:
    import io
    import json
    import zipfile

    import numpy as np
    import onnxruntime

    points = api.client.get(f"/api/v1/searches/{finished['id']}/trials").json()["data"]
    trial = next(p for p in points if p["state"] == "COMPLETE"
                 and any(bits != "float" for bits in p["bits"].values()))
    got = api.client.get(f"/api/v1/searches/{finished['id']}/trials/{trial['number']}/artifact")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(got.content)) as archive:
        assert {"model.onnx", "manifest.json", "network/state_dict.pt"} <= set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        session = onnxruntime.InferenceSession(archive.read("model.onnx"))
    assert manifest["trial"] == trial["number"] and manifest["error"] == trial["mse"]
    shape = [2, *manifest["input"]["shape"][1:]]
    out, = session.run(None, {"input": np.zeros(shape, dtype=np.float32)})
    assert list(out.shape) == [2, *manifest["output"]["shape"][1:]]

    missing = api.client.get(f"/api/v1/searches/{finished['id']}/trials/999/artifact")
    assert missing.status_code == 404
    assert "has no trial 999" in missing.json()["detail"][0]["msg"]


def test_list_filters_by_status_and_paginates(api: Api, finished: dict[str, Any]) -> None:
    succeeded = api.client.get("/api/v1/searches", params={"status": "succeeded"}).json()
    assert finished["id"] in [job["id"] for job in succeeded["data"]]
    assert all(job["status"] == "succeeded" for job in succeeded["data"])
    queued = api.client.get("/api/v1/searches", params={"status": "queued"}).json()
    assert finished["id"] not in [job["id"] for job in queued["data"]]
    page = api.client.get("/api/v1/searches", params={"limit": 1, "offset": 0}).json()
    assert len(page["data"]) == 1 and page["count"] >= 1


def test_cancel_stops_queued_at_once_and_running_at_a_trial_boundary(
    api: Api, finished: dict[str, Any]
) -> None:
    running = api.submit(spec=tiny_spec("long", trials=50))
    queued = api.submit(spec=tiny_spec("behind"))
    cancelled = api.client.post(f"/api/v1/searches/{queued['id']}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"

    def one_trial_done() -> bool:
        return api.search(running["id"])["trials"]["complete"] >= 1

    wait_for(one_trial_done, timeout=180, what="a first complete trial")
    asked = api.client.post(f"/api/v1/searches/{running['id']}/cancel")
    assert asked.status_code == 202 and asked.json()["cancel_requested"]
    job = api.wait_status(running["id"], {"cancelled", "succeeded", "failed"}, timeout=120)
    assert job["status"] == "cancelled"
    assert 1 <= job["trials"]["complete"] < 50
    trials = api.client.get(f"/api/v1/searches/{running['id']}/trials").json()["data"]
    assert sum(t["state"] == "COMPLETE" for t in trials) == job["trials"]["complete"]
    assert api.search(queued["id"])["trials"]["done"] == 0
    again = api.client.post(f"/api/v1/searches/{finished['id']}/cancel")
    assert again.status_code == 409


def test_constrained_search_shows_only_feasible_trials_as_results(
    api: Api, finished: dict[str, Any]
) -> None:
    spec = tiny_spec("unreachable", trials=2)
    spec["search"]["constraints"] = {"max_mse": 1e-12}  # no QAT model gets there
    job = api.wait_status(api.submit(spec=spec)["id"], {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    trials = api.client.get(f"/api/v1/searches/{job['id']}/trials").json()["data"]
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    assert not any(t["feasible"] for t in trials)
    pareto = api.client.get(f"/api/v1/searches/{job['id']}/pareto").json()
    assert pareto["count"] == 0 and pareto["data"] == []
    loosest = max(t["mse"] for t in trials)
    missed = api.client.get(f"/api/v1/searches/{job['id']}/operating-point",
                            params={"max_mse": loosest})
    assert missed.status_code == 404
    assert missed.json()["best"]["feasible"] is False


def test_trials_that_fail_carry_their_error(api: Api, finished: dict[str, Any]) -> None:
    spec = tiny_spec("diverges", trials=2)
    spec["qat"] = {"epochs": 1, "lr": 1e30}
    job = api.wait_status(api.submit(spec=spec)["id"], {"succeeded", "failed", "cancelled"})
    assert job["status"] == "failed"
    assert "every trial failed; last error: TrialError: training loss became" in job["error"]
    trials = api.client.get(f"/api/v1/searches/{job['id']}/trials").json()["data"]
    assert [t["state"] for t in trials] == ["FAIL", "FAIL"]
    assert all(t["error"].startswith("TrialError: training loss became") for t in trials)


def test_dashboard_serves_its_page_and_lists_the_study(api: Api,
                                                       finished: dict[str, Any]) -> None:
    page = api.client.get("/dashboard")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    studies = api.client.get("/api/studies").json()["study_summaries"]
    assert finished["name"] in [s["study_name"] for s in studies]
    # The dashboard can delete studies: with a token configured, that needs the token too.
    study_id = next(s["study_id"] for s in studies if s["study_name"] == finished["name"])
    refused = httpx.delete(f"{api.url}/api/studies/{study_id}")
    assert refused.status_code == 401


def test_search_spaces_lists_the_bundled_files(api: Api) -> None:
    spaces = api.client.get("/api/v1/search-spaces").json()
    names = [s["name"] for s in spaces["data"]]
    assert "burgers-fno-small" in names and spaces["count"] == len(names)
    bundled = Path(__file__).resolve().parents[2] / "search_spaces"
    assert sorted(names) == sorted(p.stem for p in bundled.glob("*.yaml"))


def _bad(spec_changes: dict[str, Any]) -> dict[str, Any]:
    spec = tiny_spec("bad")
    for section, values in spec_changes.items():
        spec[section] = {**spec[section], **values}
    return {"spec": spec}


def _own_model(model: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {**tiny_spec("own"), "model": model}}


BAD_REQUESTS = [
    pytest.param({"spec": {"name": "x", "model": {"arch": "fno"}}}, {}, 422,
                 ["body", "spec", "data"], id="malformed-spec"),
    pytest.param(_bad({"model": {"arch": "resnet"}}), {}, 422,
                 ["body", "spec", "model", "arch"], id="unknown-arch"),
    pytest.param({"space": "burgers-fno-small", "overrides": {"model": {"arch": "resnet"}}},
                 {}, 422, ["body", "overrides", "model", "arch"], id="unknown-arch-override"),
    pytest.param(_bad({"space": {"weight_bits": [0, 8]}}), {}, 422,
                 ["body", "spec", "space", "weight_bits", 0], id="bitwidth-0"),
    pytest.param(_bad({"data": {"path": "/etc/passwd"}}), {}, 422,
                 ["body", "spec", "data", "path"], id="absolute-path-outside"),
    pytest.param({"space": "burgers-fno-small", "overrides": {"data": {"path": "../../x.h5"}}},
                 {}, 422, ["body", "overrides", "data", "path"], id="dotdot-path"),
    pytest.param({"space": "no-such-space"}, {}, 422, ["body", "space"], id="unknown-space"),
    pytest.param(_own_model({"factory": "os:system", "kwargs": {"command": "true"}}), {},
                 422, ["body", "spec", "model", "factory"], id="factory-not-allowed"),
    pytest.param(_own_model({"factory": "neuralop_evil:FNO"}), {}, 422,
                 ["body", "spec", "model", "factory"], id="factory-prefix-is-not-a-package"),
    pytest.param(_own_model({"factory": "neuralop.models:FNO", "checkpoint": "/etc/passwd"}),
                 {}, 422, ["body", "spec", "model", "checkpoint"], id="checkpoint-outside"),
    pytest.param({"space": "burgers-fno-small", "trials": 100_000}, {}, 422,
                 ["body", "trials"], id="over-the-trial-cap"),
    pytest.param({"spec": tiny_spec(), "name": "tiny-sqlite"}, {}, 409, ["body", "name"],
                 id="name-taken"),
    pytest.param({"space": "burgers-fno-small"}, {"Authorization": ""}, 401,
                 ["header", "Authorization"], id="missing-token"),
    pytest.param({"space": "burgers-fno-small"}, {"Authorization": "Bearer wrong"}, 401,
                 ["header", "Authorization"], id="wrong-token"),
]


@pytest.mark.parametrize(("body", "headers", "status", "loc"), BAD_REQUESTS)
def test_bad_submission_is_4xx_naming_the_field_and_changes_nothing(
    api: Api, storage: str, finished: dict[str, Any], body: dict[str, Any],
    headers: dict[str, str], status: int, loc: list[Any]
) -> None:
    engine = create_engine(storage)

    def snapshot() -> tuple[int, int]:
        with engine.connect() as connection:
            return (connection.execute(text("SELECT count(*) FROM autoq_jobs")).scalar_one(),
                    connection.execute(text("SELECT count(*) FROM studies")).scalar_one())

    before = snapshot()
    response = api.client.post("/api/v1/searches", json=body,
                               headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == status, response.text
    assert loc in [item["loc"] for item in response.json()["detail"]], response.text
    assert snapshot() == before
    engine.dispose()


def test_operating_point_relative_to_the_float_model(api: Api, finished: dict[str, Any]
                                                    ) -> None:
    url = f"/api/v1/searches/{finished['id']}/operating-point"
    relative = api.client.get(url, params={"max_ratio": 1e6})
    assert relative.status_code == 200, relative.text
    body = relative.json()
    assert body["max_ratio"] == 1e6 and body["max_mse"] > 0
    absolute = api.client.get(url, params={"max_mse": body["max_mse"]}).json()
    assert absolute["trial"] == body["trial"]
    both = api.client.get(url, params={"max_ratio": 2, "max_mse": 1})
    assert both.status_code == 422 and "exactly one" in both.json()["detail"][0]["msg"]


def test_errors_are_json_naming_the_field(api: Api) -> None:
    unknown = api.client.get("/api/v1/searches/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["loc"] == ["path", "search_id"]
    not_uuid = api.client.get("/api/v1/searches/not-a-uuid")
    assert not_uuid.status_code == 422
    assert not_uuid.json()["detail"][0]["loc"] == ["path", "search_id"]
    bound = api.client.get("/api/v1/searches/00000000-0000-0000-0000-000000000000/"
                           "operating-point", params={"max_mse": -1})
    assert bound.status_code == 422 and bound.json()["detail"][0]["loc"] == ["query", "max_mse"]
    big = api.client.post("/api/v1/searches", content=b"{" + b" " * (2 << 20) + b"}",
                          headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["detail"][0]["loc"] == ["body"]
    route = api.client.get("/api/v1/nothing-here")
    assert route.status_code == 404 and route.json()["detail"]
