"""From a spec to its data: a PDEArena file set (a directory) generated and read with its own
split."""

from __future__ import annotations

from pathlib import Path

from autoq.search import parse_spec
from autoq.search.setup import data_present, ensure_data, geometry, load_spec_problem


def test_a_directory_data_path_is_generated_as_a_file_set_and_keeps_its_split(
        tmp_path: Path) -> None:
    spec = parse_spec({
        "name": "ns-set",
        "data": {"pde": "ns2d", "path": str(tmp_path / "ns2d-set"), "input_steps": 2,
                 "generate": {"samples": 6, "resolution": 16, "frames": 4}},
        "model": {"arch": "unet", "width": 8, "levels": 1},
    })
    assert spec.data.layout == "pdearena-ns2d" and not data_present(spec)
    path = ensure_data(spec, progress=False)
    assert path.is_dir() and data_present(spec)
    assert sorted(p.name.split("_")[1] for p in path.iterdir()) == ["test", "train", "valid"]
    assert geometry(spec).data_shape == (16, 16)
    problem = load_spec_problem(spec, progress=False)
    # PDEArena's 4:1:1, as written: trajectories of one split never land in another.
    assert (len(problem.split.train), len(problem.split.val), len(problem.split.test)) == (4, 1, 1)
    assert ensure_data(spec, progress=False) == path  # present now: not generated again
