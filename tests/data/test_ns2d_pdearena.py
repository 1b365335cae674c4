"""``autoq datagen ns2d --out DIR`` writes a set PDEArena's own datapipe reads for train, valid
and test.

The selection rule is PDEArena's documented one, not its code: the Navier–Stokes datapipes list
the files of the data directory and keep, per mode ``train``/``valid``/``test``, those whose
name contains the mode and ``h5``; the opener reads the group named after the mode from each
file, one trajectory at a time: ``u`` ``(T, X, Y)``, ``vx``, ``vy`` and ``buo_y``. (PDEArena
matches the listed path, so a data directory whose own path contains ``test`` would feed every
file to its test pipe; we match the file name, which is what its naming means.)
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from autoq.cli import main

MODES = ("train", "valid", "test")


def pdearena_files(directory: Path, mode: str) -> list[Path]:
    """The files PDEArena's ``mode`` datapipe takes from ``directory``."""
    return [path for path in sorted(directory.iterdir())
            if mode in path.name and "h5" in path.name]


def pdearena_trajectories(directory: Path, mode: str) -> list[tuple[np.ndarray, ...]]:
    """What PDEArena's opener yields for ``mode``: ``(u, vx, vy, buo_y)`` per trajectory."""
    trajectories = []
    for path in pdearena_files(directory, mode):
        with h5py.File(path, "r") as handle:
            data = handle[mode]
            for index in range(data["u"].shape[0]):
                trajectories.append((data["u"][index], data["vx"][index], data["vy"][index],
                                     data["buo_y"][index]))
    return trajectories


def test_datagen_writes_a_set_pdearenas_datapipe_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "navierstokes"
    assert main(["datagen", "ns2d", "--out", str(out), "--samples", "12", "--resolution", "16",
                 "--frames", "3"]) == 0
    assert "12 samples, 3 frames, grid 16×16" in capsys.readouterr().out
    counts = {}
    for mode in MODES:
        assert len(pdearena_files(out, mode)) == 1, mode
        trajectories = pdearena_trajectories(out, mode)
        counts[mode] = len(trajectories)
        for u, vx, vy, buoyancy in trajectories:
            assert u.shape == vx.shape == vy.shape == (3, 16, 16)
            assert buoyancy == 0.5 and u.min() >= 0
            assert not vx[:, 0].any() and not vy[..., 0].any()  # the walls, as phiflow stores
    assert counts == {"train": 8, "valid": 2, "test": 2}  # PDEArena's 100/25/25, scaled


def test_a_data_path_naming_the_set_uses_its_split(tmp_path: Path) -> None:
    from autoq.train import load_problem

    out = tmp_path / "navierstokes"
    assert main(["datagen", "ns2d", "--out", str(out), "--samples", "6", "--resolution", "8",
                 "--frames", "3"]) == 0
    problem = load_problem(out, input_steps=1, target_steps=1)  # the family is detected
    for subset, mode in (("train", "train"), ("val", "valid"), ("test", "test")):
        expected = np.stack([u for u, *_ in pdearena_trajectories(out, mode)])
        rows = getattr(problem.split, subset)
        np.testing.assert_allclose(problem.data.trajectories[rows, ..., 0], expected,
                                   rtol=1e-6)
