"""The service's spec checks as functions, at their boundaries: the limits at and one past the
value, data paths through symlinks (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import tiny_spec

from service.config import Settings
from service.errors import InvalidRequestError
from service.schemas import InlineSearchCreate
from service.specs import confine, submitted_spec, trial_budget


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
