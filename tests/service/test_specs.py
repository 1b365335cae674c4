"""The service's spec checks as functions, at their boundaries: the limits at and one past the
value, data paths through symlinks (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import tiny_spec

from service.config import Settings
from service.errors import InvalidRequestError
from service.schemas import BundledSearchCreate, InlineSearchCreate
from service.specs import (
    confine,
    deep_merge,
    load_bundled,
    public_spec,
    shown_path,
    submitted_spec,
    trial_budget,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def _settings(root: Path, **limits: float) -> Settings:
    return Settings(storage="sqlite://", data_root=root, **limits)


def test_the_trial_budget_may_reach_the_limit_and_not_pass_it(root: Path) -> None:
    settings = _settings(root, limit_trials=10)
    at = InlineSearchCreate(spec=tiny_spec(trials=10))
    assert trial_budget(at, submitted_spec(at, settings), settings) == 10
    over = InlineSearchCreate(spec=tiny_spec(trials=11))
    with pytest.raises(InvalidRequestError, match="at most 10"):
        trial_budget(over, submitted_spec(over, settings), settings)
    body_over = InlineSearchCreate(spec=tiny_spec(trials=3), trials=11)
    with pytest.raises(InvalidRequestError, match="at most 10"):
        trial_budget(body_over, submitted_spec(body_over, settings), settings)


def test_a_generated_size_may_reach_its_limit_and_not_pass_it(root: Path) -> None:
    settings = _settings(root, limit_samples=24)
    spec = tiny_spec()
    spec["data"]["generate"]["samples"] = 24
    submitted_spec(InlineSearchCreate(spec=spec), settings)
    spec["data"]["generate"]["samples"] = 25
    with pytest.raises(InvalidRequestError, match="at most 24"):
        submitted_spec(InlineSearchCreate(spec=spec), settings)


def test_a_symlink_inside_the_root_that_leads_out_is_refused(root: Path) -> None:
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "secret.h5").write_bytes(b"")
    (root / "link").symlink_to(outside)
    (root / "inner").mkdir()
    (root / "inner" / "mine.h5").write_bytes(b"")
    (root / "good").symlink_to(root / "inner")
    with pytest.raises(InvalidRequestError, match="outside the data root"):
        confine("link/secret.h5", root, loc=("body", "spec", "data", "path"))
    assert confine("good/mine.h5", root, loc=("body",)) == (root / "inner" / "mine.h5").resolve()


def test_the_stored_path_is_relative_to_the_root(root: Path) -> None:
    spec = tiny_spec(path="sub/burgers.h5")
    (root / "sub").mkdir()
    stored = submitted_spec(InlineSearchCreate(spec=spec), _settings(root))
    assert stored.data.path == "sub/burgers.h5"


def test_a_directory_is_a_data_path_only_for_a_layout_that_reads_a_file_set(root: Path) -> None:
    (root / "sets" / "ns").mkdir(parents=True)
    burgers = tiny_spec(path="sets/ns")
    with pytest.raises(InvalidRequestError, match="is a directory"):
        submitted_spec(InlineSearchCreate(spec=burgers), _settings(root))
    ns = tiny_spec(path="sets/ns")
    ns["data"] = {"pde": "ns2d", "path": "sets/ns", "input_steps": 2,
                  "generate": {"samples": 6, "resolution": 16, "frames": 4}}
    ns["model"] = {"arch": "unet", "width": 8, "levels": 1}
    stored = submitted_spec(InlineSearchCreate(spec=ns), _settings(root))
    assert stored.data.path == "sets/ns" and stored.data.layout == "pdearena-ns2d"


def test_deep_merge_merges_mappings_key_by_key_and_replaces_everything_else() -> None:
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "list": [1, 2], "k": 1, "m": {"n": 1}}
    overrides = {"a": {"y": {"q": 3}, "z": 4}, "list": [3], "k": {"new": 1}, "m": 5}
    merged = deep_merge(base, overrides)
    assert merged == {"a": {"x": 1, "y": {"p": 1, "q": 3}, "z": 4}, "list": [3],
                      "k": {"new": 1}, "m": 5}
    assert base == {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "list": [1, 2], "k": 1, "m": {"n": 1}}
    assert deep_merge({}, {"a": {"b": 1}}) == {"a": {"b": 1}}


@pytest.fixture
def spaces(tmp_path: Path) -> Path:
    """A folder of bundled spaces holding one, ``tiny`` (train.epochs 2, search.trials 3)."""
    folder = tmp_path / "spaces"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(yaml.safe_dump(tiny_spec()))
    return folder


def _bundled(root: Path, spaces: Path, overrides: dict[str, Any] | None, **limits: float
             ) -> tuple[BundledSearchCreate, Settings]:
    request = BundledSearchCreate(space="tiny", overrides=overrides)
    return request, Settings(storage="sqlite://", data_root=root, search_spaces=spaces, **limits)


def test_a_bundled_space_takes_its_overrides_and_keeps_the_rest(root: Path, spaces: Path
                                                                 ) -> None:
    request, settings = _bundled(root, spaces, {"search": {"trials": 2}, "train": {"epochs": 1}})
    spec = submitted_spec(request, settings)
    assert (spec.search.trials, spec.train.epochs, spec.qat.epochs) == (2, 1, 1)
    assert spec.space.scales == [1.0, 0.5] and spec.data.path == "burgers_tiny.h5"
    assert trial_budget(request, spec, settings) == 2
    no_overrides, settings = _bundled(root, spaces, None)
    assert submitted_spec(no_overrides, settings).search.trials == 3


def test_an_unknown_bundled_space_is_named_with_the_bundled_ones(root: Path, spaces: Path
                                                                 ) -> None:
    settings = Settings(storage="sqlite://", data_root=root, search_spaces=spaces)
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(BundledSearchCreate(space="tinyy"), settings)
    assert caught.value.errors == [{"loc": ["body", "space"], "type": "invalid",
                                    "msg": "no bundled search space 'tinyy'; bundled: ['tiny']"}]


def test_a_bad_override_is_located_in_the_overrides(root: Path, spaces: Path) -> None:
    request, settings = _bundled(root, spaces, {"space": {"scales": ["x", 0.5, "y"]}})
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(request, settings)
    locs = [item["loc"] for item in caught.value.errors]
    assert locs == [["body", "overrides", "space", "scales", 0],
                    ["body", "overrides", "space", "scales", 2]]
    assert str(caught.value) == caught.value.errors[0]["msg"]


def test_a_value_over_its_limit_is_located_where_it_was_given(root: Path, spaces: Path) -> None:
    # train.epochs from the overrides, qat.epochs from the space: each located where it was set.
    request, settings = _bundled(root, spaces, {"train": {"epochs": 3}},
                                 limit_train_epochs=2, limit_qat_epochs=0)
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(request, settings)
    assert caught.value.errors == [
        {"loc": ["body", "overrides", "train", "epochs"], "type": "limit_exceeded",
         "msg": "at most 2 on this server (AUTOQ_LIMIT_TRAIN_EPOCHS), got 3"},
        {"loc": ["body", "space", "qat", "epochs"], "type": "limit_exceeded",
         "msg": "at most 0 on this server (AUTOQ_LIMIT_QAT_EPOCHS), got 1"}]
    assert str(caught.value) == caught.value.errors[0]["msg"]
    request, settings = _bundled(root, spaces, {"search": {"trials": 2}}, limit_trials=1)
    with pytest.raises(InvalidRequestError) as caught:
        trial_budget(request, submitted_spec(request, settings), settings)
    assert caught.value.errors[0]["loc"] == ["body", "overrides", "search", "trials"]
    request, settings = _bundled(root, spaces, {"train": {"epochs": 1}}, limit_trials=1)
    with pytest.raises(InvalidRequestError) as caught:
        trial_budget(request, submitted_spec(request, settings), settings)
    assert caught.value.errors[0]["loc"] == ["body", "space", "search", "trials"]


@pytest.mark.parametrize(("name", "value", "variable"), [
    ("samples", 25, "AUTOQ_LIMIT_SAMPLES"), ("resolution", 65, "AUTOQ_LIMIT_RESOLUTION"),
    ("frames", 12, "AUTOQ_LIMIT_FRAMES")])
def test_each_generated_size_has_its_own_limit(root: Path, name: str, value: int, variable: str
                                               ) -> None:
    settings = _settings(root, limit_samples=24, limit_resolution=64, limit_frames=11)
    spec = tiny_spec()
    submitted_spec(InlineSearchCreate(spec=spec), settings)
    spec["data"]["generate"][name] = value
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(InlineSearchCreate(spec=spec), settings)
    assert caught.value.errors == [
        {"loc": ["body", "spec", "data", "generate", name], "type": "limit_exceeded",
         "msg": f"at most {value - 1} on this server ({variable}), got {value}"}]


def test_an_omitted_resolution_is_checked_as_the_public_data_sets(root: Path) -> None:
    spec = tiny_spec()
    del spec["data"]["generate"]["resolution"]
    submitted_spec(InlineSearchCreate(spec=spec), _settings(root, limit_resolution=1024))
    with pytest.raises(InvalidRequestError, match=r"at most 1023 .*got 1024"):
        submitted_spec(InlineSearchCreate(spec=spec), _settings(root, limit_resolution=1023))


def test_the_job_time_limit_bounds_the_search_timeout(root: Path) -> None:
    spec = tiny_spec()
    spec["search"]["timeout"] = 60.0
    submitted_spec(InlineSearchCreate(spec=spec), _settings(root, limit_job_seconds=60))
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(InlineSearchCreate(spec=spec), _settings(root, limit_job_seconds=59))
    assert caught.value.errors[0]["loc"] == ["body", "spec", "search", "timeout"]
    assert "(AUTOQ_LIMIT_JOB_SECONDS)" in caught.value.errors[0]["msg"]


def _own_model(**model: Any) -> InlineSearchCreate:
    spec = tiny_spec()
    spec["model"] = {"factory": "mypkg.models:build", **model}
    return InlineSearchCreate(spec=spec)


def test_a_user_model_needs_its_factory_module_allow_listed(root: Path) -> None:
    allowed = Settings(storage="sqlite://", data_root=root, allowed_factories=["mypkg", "other"])
    assert submitted_spec(_own_model(), allowed).model.factory == "mypkg.models:build"
    assert submitted_spec(_own_model(factory="mypkg:build"), allowed).model.checkpoint is None
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(_own_model(factory="mypkgx.models:build"), allowed)
    assert caught.value.errors == [{
        "loc": ["body", "spec", "model", "factory"], "type": "invalid",
        "msg": "factory module 'mypkgx.models' is not allowed on this server; "
               "allowed: ['mypkg', 'other']"}]
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(_own_model(), _settings(root))
    assert str(caught.value) == ("factory module 'mypkg.models' is not allowed on this server; "
                                 "allowed: none (AUTOQ_ALLOWED_FACTORIES is empty)")


def test_a_user_models_checkpoint_is_confined_and_stored_relative(root: Path) -> None:
    settings = Settings(storage="sqlite://", data_root=root, allowed_factories=["mypkg"])
    (root / "models").mkdir()
    spec = submitted_spec(_own_model(checkpoint="models/m.pt"), settings)
    assert spec.model.checkpoint == "models/m.pt"
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(_own_model(checkpoint="../m.pt"), settings)
    assert caught.value.errors[0]["loc"] == ["body", "spec", "model", "checkpoint"]
    over = Settings(storage="sqlite://", data_root=root, allowed_factories=["mypkg"],
                    limit_train_epochs=3)
    submitted_spec(_own_model(finetune_epochs=3), over)
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(_own_model(finetune_epochs=4), over)
    assert caught.value.errors == [{
        "loc": ["body", "spec", "model", "finetune_epochs"], "type": "limit_exceeded",
        "msg": "at most 3 on this server (AUTOQ_LIMIT_TRAIN_EPOCHS), got 4"}]


def test_the_shown_spec_names_paths_relative_to_the_root(root: Path) -> None:
    stored = {"data": {"pde": "burgers", "path": str(root.resolve() / "sub" / "b.h5")},
              "model": {"factory": "m:f", "checkpoint": str(root.resolve() / "m.pt")}}
    assert public_spec(stored, root) == {"data": {"pde": "burgers", "path": "sub/b.h5"},
                                         "model": {"factory": "m:f", "checkpoint": "m.pt"}}
    relative = {"data": {"path": "sub/b.h5"}, "model": {"arch": "fno"}}
    assert public_spec(relative, root) == relative
    assert shown_path("/elsewhere/deep/b.h5", root) == "b.h5"
    assert shown_path("sub/b.h5", root) == "sub/b.h5"


def test_load_bundled_validates_every_space(spaces: Path) -> None:
    loaded = load_bundled(spaces)
    assert list(loaded) == ["tiny"] and loaded["tiny"].search.trials == 3


LOC = ("body", "spec", "data", "path")


@pytest.mark.parametrize(("path", "problem"), [
    ("", "is empty"),
    ("a\0b.h5", "contains a NUL byte"),
    ("\udcff.h5", "is not Unicode text"),
    ("/".join(["a" * 240] * 17) + "b", "is longer than 4096 bytes"),
    ("a/" + "n" * 256, "has a name longer than 255 bytes"),
    ("sub/../b.h5", "has a '..' part, which data paths may not have"),
    (".", "is the data root itself, not a file in it"),
    ("/elsewhere/b.h5", "is outside the data root"),
    ("sub", "is a directory, not a file (only layouts that read a set of files take one)"),
    ("file.h5/x.h5", "goes through 'file.h5', which is a file"),
    ("sub/file.h5/new/x.h5", "goes through 'sub/file.h5', which is a file"),
    ("loop/x.h5", "cannot be resolved (RuntimeError)"),
])
def test_a_bad_data_path_is_named_with_its_problem(root: Path, path: str, problem: str) -> None:
    (root / "sub").mkdir()
    (root / "file.h5").write_bytes(b"")
    (root / "sub" / "file.h5").write_bytes(b"")
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(InvalidRequestError) as caught:
        confine(path, root, loc=LOC)
    assert caught.value.errors == [{"loc": list(LOC), "type": "invalid",
                                    "msg": f"data path {path!r} {problem}"}]


def test_a_data_path_at_the_limits_or_in_new_folders_is_confined(root: Path) -> None:
    (root / "sub").mkdir()
    name = "n" * 255
    assert confine(f"sub/{name}", root, loc=LOC) == root.resolve() / "sub" / name
    assert confine("new/deeper/x.h5", root, loc=LOC) == root.resolve() / "new/deeper/x.h5"
    assert confine("sub", root, loc=LOC, directory=True) == root.resolve() / "sub"
    at_limit = "/".join(["a" * 240] * 17)  # 4096 bytes
    try:
        confine(at_limit, root, loc=LOC)
    except InvalidRequestError as e:  # the OS may refuse it; the length check must not
        assert "longer than" not in str(e)


def test_the_stored_path_is_normalised_relative_to_the_root(root: Path) -> None:
    (root / "sub").mkdir()
    absolute = str(root.resolve() / "sub" / "burgers.h5")
    for given in (absolute, "./sub//burgers.h5"):
        stored = submitted_spec(InlineSearchCreate(spec=tiny_spec(path=given)), _settings(root))
        assert stored.data.path == "sub/burgers.h5"


def test_a_bad_data_path_is_located_where_it_was_given(root: Path, spaces: Path) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(InlineSearchCreate(spec=tiny_spec(path="../x.h5")), _settings(root))
    assert caught.value.errors[0]["loc"] == ["body", "spec", "data", "path"]
    request, settings = _bundled(root, spaces, {"data": {"path": "../x.h5"}})
    with pytest.raises(InvalidRequestError) as caught:
        submitted_spec(request, settings)
    assert caught.value.errors[0]["loc"] == ["body", "overrides", "data", "path"]


def test_a_spec_that_generates_nothing_has_no_size_to_limit(root: Path) -> None:
    spec = tiny_spec()
    del spec["data"]["generate"]
    stored = submitted_spec(InlineSearchCreate(spec=spec), _settings(root, limit_samples=3))
    assert stored.data.generate is None


def test_omitted_frames_are_not_limited(root: Path) -> None:
    spec = tiny_spec()
    del spec["data"]["generate"]["frames"]
    stored = submitted_spec(InlineSearchCreate(spec=spec), _settings(root, limit_frames=2))
    assert stored.data.generate is not None and stored.data.generate.frames is None
