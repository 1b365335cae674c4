"""Navier–Stokes with buoyant smoke as PDEArena's: the closed-box MAC solver against exact
behaviour, PDEArena's statistics, and its file set (names, groups, split)."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from autoq.data import Selection, ns2d, read_data, read_pde_file
from autoq.data.dataset import split_of
from autoq.errors import DataError, SpecError

KEYS = {"u", "vx", "vy", "t", "dt", "x", "y", "dx", "dy", "buo_y"}
PDEARENA_TIMES = 13.5 + 6.0 * np.arange(14)  # after steps 9, 13, …, 61 of Δt = 1.5


def _stored_divergence(vx: np.ndarray, vy: np.ndarray, dx: float) -> np.ndarray:
    """Net outflow per cell of velocities stored as PDEArena stores them: ``vx[..., i, j]`` on
    the left face of cell (i, j), ``vy`` on its bottom face; the right and top walls, not
    stored, carry no flow."""
    right = np.concatenate([vx[..., 1:, :], np.zeros_like(vx[..., :1, :])], axis=-2)
    top = np.concatenate([vy[..., 1:], np.zeros_like(vy[..., :1])], axis=-1)
    return (right - vx + top - vy) / dx


def _random_faces(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    u, v = rng.normal(size=(2, n + 1, n)), rng.normal(size=(2, n, n + 1))
    u[:, [0, -1]], v[:, :, [0, -1]] = 0.0, 0.0
    return u, v


def _statistics(smoke: np.ndarray, vx: np.ndarray, vy: np.ndarray
                ) -> tuple[np.ndarray, float, float]:
    """|v| rms per frame (mean over samples), the last frame's smoke std and the share of its
    smoke in the top quarter of the box (means over samples)."""
    speed = np.sqrt((vx**2 + vy**2).mean(axis=(-2, -1))).mean(axis=0)
    last = smoke[:, -1]
    top = last[..., 3 * last.shape[-1] // 4:].sum(axis=(-2, -1)) / last.sum(axis=(-2, -1))
    return speed, float(last.std(axis=(-2, -1)).mean()), float(top.mean())


# --- The solver. ------------------------------------------------------------------------------


def test_projection_leaves_no_divergence_and_keeps_divergence_free_fields() -> None:
    solver = ns2d.SmokeSolver(24, length=6.0)
    u, v = solver.project(*_random_faces(np.random.default_rng(0), 24))
    assert np.abs(np.diff(u, axis=1) + np.diff(v, axis=2)).max() < 1e-12
    assert not u[:, [0, -1]].any() and not v[:, :, [0, -1]].any()
    again = solver.project(u, v)
    np.testing.assert_allclose(again[0], u, atol=1e-13)
    np.testing.assert_allclose(again[1], v, atol=1e-13)


def test_projection_removes_a_pressure_gradient() -> None:
    # A gradient field of cell values, zero through the walls: all of it is ∇φ.
    n, dx = 16, 0.5
    phi = np.random.default_rng(1).normal(size=(1, n, n))
    u, v = np.zeros((1, n + 1, n)), np.zeros((1, n, n + 1))
    u[:, 1:-1], v[:, :, 1:-1] = np.diff(phi, axis=1) / dx, np.diff(phi, axis=2) / dx
    left_u, left_v = ns2d.SmokeSolver(n, length=n * dx).project(u, v)
    assert np.abs(left_u).max() < 1e-12 and np.abs(left_v).max() < 1e-12


def test_uniform_smoke_stays_at_rest() -> None:
    # Hydrostatic balance: a uniform force is all pressure gradient in a closed box.
    solver = ns2d.SmokeSolver(16)
    smoke, vx, vy = solver.run(np.full((1, 16, 16), 0.7), np.array([3.0, 9.0]))
    assert np.abs(vx).max() < 1e-12 and np.abs(vy).max() < 1e-12
    np.testing.assert_allclose(smoke, 0.7, rtol=1e-14)


def test_smoke_turns_with_a_solid_body_rotation() -> None:
    # u = −ω(y − c), v = ω(x − c) is divergence-free on the faces; a blob away from the walls
    # turns with it by ωt about the centre. 64², a quarter turn: measured error 0.096 (the
    # limiter clips the peak); turned the wrong way it would be 1.
    n, length, omega = 64, 32.0, 0.1
    dx, c = length / n, length / 2
    u = np.broadcast_to(-omega * ((np.arange(n) + 0.5) * dx - c), (1, n + 1, n)).copy()
    v = np.broadcast_to(omega * (np.arange(n)[:, None] + 0.5) * dx - omega * c,
                        (1, n, n + 1)).copy()
    u[:, [0, -1]], v[:, :, [0, -1]] = 0.0, 0.0
    x, y = np.meshgrid(*2 * [(np.arange(n) + 0.5) * dx], indexing="ij")
    blob = np.exp(-((x - c - 8) ** 2 + (y - c) ** 2) / 8)[None]
    turned = ns2d.advect_smoke(blob, u, v, math.pi / 2 / omega, dx)
    exact = np.exp(-((x - c) ** 2 + (y - c - 8) ** 2) / 8)
    assert np.abs(turned[0] - exact).max() < 0.2
    assert turned.min() >= 0 and turned.max() <= 1
    assert turned.sum() == pytest.approx(blob.sum(), rel=1e-13)


def test_buoyant_blob_rises_along_y() -> None:
    solver = ns2d.SmokeSolver(32, length=16.0)
    x, y = np.meshgrid(solver.coords, solver.coords, indexing="ij")
    blob = np.exp(-((x - 8) ** 2 + (y - 5) ** 2) / 2)
    smoke, _, vy = solver.run(blob[None], np.array([0.0, 3.0, 6.0]))
    mass = smoke[0].sum(axis=(-2, -1))
    centre_x = (smoke[0] * x).sum(axis=(-2, -1)) / mass
    centre_y = (smoke[0] * y).sum(axis=(-2, -1)) / mass
    np.testing.assert_allclose(centre_x, 8.0, atol=1e-9)  # symmetric in x
    # Measured: 5.26 at t = 3, 6.37 at t = 6.
    assert centre_y[0] == pytest.approx(5.0, abs=1e-5) and 5.15 < centre_y[1] < centre_y[2] - 0.8
    assert vy[0, 1, 16, 10] > 0.2


def test_initial_smoke_is_phiflows_noise() -> None:
    rng = np.random.default_rng(0)
    smoke = ns2d.initial_smoke(rng, 64, 32.0, 11.0)
    assert smoke.min() >= 0 and smoke.std() > 0.3
    # (k²)^-6 leaves the box-sized modes: nothing finer than a few cells survives.
    spectrum = np.abs(np.fft.fft2(smoke))
    assert spectrum[8:-8, 8:-8].max() < 1e-3 * spectrum[0, 0]


def test_trajectories_keep_smoke_walls_and_divergence(tmp_path: Path) -> None:
    path = ns2d.generate(tmp_path / "set", samples=3, resolution=32, frames=4, seed=1)
    data = read_pde_file(path)
    smoke, vx, vy = (data.trajectories[..., i].astype(np.float64) for i in range(3))
    with h5py.File(next(path.glob("*train*")), "r") as f:  # float64 as written
        smoke64, vx64, vy64 = f["train/u"][...], f["train/vx"][...], f["train/vy"][...]
    assert np.abs(_stored_divergence(vx64, vy64, 1.0)).max() < 1e-11
    assert not vx64[:, :, 0].any() and not vy64[..., 0].any()  # no flow through the walls
    totals = smoke64.sum(axis=(-2, -1))
    np.testing.assert_allclose(totals, totals[:, :1].repeat(4, axis=1), rtol=1e-13)
    assert smoke.min() >= 0
    assert np.abs(vx).max() > 0.1 and np.abs(vy).max() > 0.1  # the smoke set the fluid moving


def test_flow_decays_and_smoke_stratifies_at_64() -> None:
    # PDEArena's figures (below, at 128²) hold at 64² as well: measured |v| rms 1.35 → 0.32,
    # smoke std 0.40, 40 % of it in the top quarter (a mixed box: 25 %).
    rng = np.random.default_rng(0)
    smoke0 = np.stack([ns2d.initial_smoke(rng, 64, 32.0, 11.0) for _ in range(4)])
    speed, std, top = _statistics(*ns2d.SmokeSolver(64).run(smoke0, PDEARENA_TIMES))
    assert 0.9 < speed[0] < 1.6 and 0.2 < speed[-1] < 0.45
    assert np.all(np.diff(speed[[0, 4, 8, 13]]) < 0)
    assert 0.3 < std < 0.5 and 0.35 < top < 0.5


@pytest.mark.slow
def test_statistics_match_pdearenas_at_128() -> None:
    # PDEArena's generator at 128² (the figures): |v| rms 1.20 → 0.31 over the 14
    # frames, last smoke std 0.38 with 43 % in the top quarter. Ours, 4 samples: 1.35 → 0.29,
    # 0.42, 41 %.
    rng = np.random.default_rng(0)
    smoke0 = np.stack([ns2d.initial_smoke(rng, 128, 32.0, 11.0) for _ in range(4)])
    smoke, vx, vy = ns2d.SmokeSolver(128).run(smoke0, PDEARENA_TIMES)
    speed, std, top = _statistics(smoke, vx, vy)
    assert speed[0] == pytest.approx(1.20, abs=0.25)
    assert speed[-1] == pytest.approx(0.31, abs=0.08)
    assert std == pytest.approx(0.38, abs=0.08) and top == pytest.approx(0.43, abs=0.06)
    assert smoke.min() >= 0 and not vx[:, :, 0].any() and not vy[..., 0].any()


# --- PDEArena's file set. --------------------------------------------------------------------


def test_generate_writes_pdearenas_file_set(tmp_path: Path) -> None:
    ticks: list[int] = []

    class Counter:
        def update(self, n: int = 1) -> None:
            ticks.append(n)

    out = ns2d.generate(tmp_path / "ns", samples=12, resolution=16, frames=3, seed=2,
                        spin_up=1.0, frame_dt=0.5, progress=Counter())
    assert sum(ticks) == 12
    names = {"train": "NavierStokes2D_train_102_0.50000_8.h5",
             "valid": "NavierStokes2D_valid_202_0.50000.h5",
             "test": "NavierStokes2D_test_302_0.50000.h5"}
    assert sorted(p.name for p in out.iterdir()) == sorted(names.values())
    for split, count in (("train", 8), ("valid", 2), ("test", 2)):
        with h5py.File(out / names[split], "r") as f:
            assert list(f.keys()) == [split] and ns2d.detect(f)
            assert f.attrs["nu"] == 0.01 and f.attrs["buoyancy"] == 0.5
            assert "ns2d" in f.attrs["autoq_generator"]
            group = f[split]
            assert set(group.keys()) == KEYS and dict(group.attrs) == {}
            assert all(group[key].dtype == np.float64 for key in KEYS)
            for key in ("u", "vx", "vy"):
                assert group[key].shape == (count, 3, 16, 16)
            assert group["t"].shape == (count, 3) and group["x"].shape == (count, 16)
            for key in ("dt", "dx", "dy", "buo_y"):
                assert group[key].shape == (count,)
            np.testing.assert_allclose(group["t"][...], np.tile([1.0, 1.5, 2.0], (count, 1)))
            np.testing.assert_allclose(group["x"][0], (np.arange(16) + 0.5) * 2.0)
            np.testing.assert_allclose(group["dx"][...], 2.0)
            np.testing.assert_allclose(group["dt"][...], 0.5)
            np.testing.assert_allclose(group["buo_y"][...], 0.5)


def test_one_file_form_holds_the_same_set(tmp_path: Path) -> None:
    folder = ns2d.generate(tmp_path / "set", samples=4, resolution=8, frames=2, spin_up=1.0)
    single = ns2d.generate(tmp_path / "set.h5", samples=4, resolution=8, frames=2, spin_up=1.0)
    with h5py.File(single, "r") as f:
        assert sorted(f.keys()) == ["test", "train", "valid"]
    whole, one = read_pde_file(folder), read_pde_file(single)
    np.testing.assert_array_equal(whole.trajectories, one.trajectories)
    assert whole.attrs == one.attrs == {"buoyancy": 0.5, "nu": 0.01,
                                        "split": {"train": 2, "valid": 1, "test": 1}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "set.h5"]  # nothing staged


def test_generate_is_seeded(tmp_path: Path) -> None:
    def smoke(name: str, seed: int) -> np.ndarray:
        path = ns2d.generate(tmp_path / name, samples=2, resolution=8, frames=1, seed=seed,
                             spin_up=0.5)
        with h5py.File(path, "r") as f:
            return f["train/u"][...]

    first = smoke("a.h5", 3)
    assert np.array_equal(first, smoke("b.h5", 3))
    assert not np.array_equal(first, smoke("c.h5", 4))


def test_generate_refuses_to_mix_sets(tmp_path: Path) -> None:
    ns2d.generate(tmp_path, samples=6, resolution=8, frames=1, spin_up=0.5)
    ns2d.generate(tmp_path, samples=6, resolution=8, frames=1, spin_up=0.5)  # same names: fine
    with pytest.raises(SpecError, match=r"NavierStokes2D_train_100_0\.50000_4\.h5"):
        ns2d.generate(tmp_path, samples=12, resolution=8, frames=1, spin_up=0.5)
    assert len(list(tmp_path.iterdir())) == 3


def _write_public_file(path: Path, split: str, fields: np.ndarray, buoyancy: float) -> Path:
    """One PDEArena file written with h5py as pdedatagen does: fields (3, N, T, X, Y)."""
    with h5py.File(path, "a") as handle:
        _write_public_group(handle, split, fields, buoyancy)
    return path


def _write_public_group(handle: h5py.File, split: str, fields: np.ndarray, buoyancy: float
                        ) -> None:
    _, count, frames, nx, ny = fields.shape
    group = handle.create_group(split)
    for key, values in zip(("u", "vx", "vy"), fields, strict=True):
        group.create_dataset(key, data=values, dtype=float)
    group.create_dataset("t", data=np.tile(np.linspace(18.0, 102.0, frames), (count, 1)))
    group.create_dataset("dt", data=np.full(count, 6.0))
    group.create_dataset("x", data=np.tile(np.linspace(0, 32.0, nx), (count, 1)))
    group.create_dataset("dx", data=np.full(count, 32.0 / (nx - 1)))
    group.create_dataset("y", data=np.tile(np.linspace(0, 32.0, ny), (count, 1)))
    group.create_dataset("dy", data=np.full(count, 32.0 / (ny - 1)))
    group.create_dataset("buo_y", data=np.full(count, buoyancy))


def test_read_hand_built_public_file(tmp_path: Path) -> None:
    fields = np.random.default_rng(0).random((3, 2, 14, 12, 10))
    path = _write_public_file(tmp_path / "NavierStokes2D_valid_197910_0.50000.h5", "valid",
                              fields, 0.5)
    data = ns2d.read(path)
    assert data.pde == "ns2d" and not data.steady and data.coefficients is None
    assert data.trajectories.shape == (2, 14, 12, 10, 3)
    assert data.trajectories.dtype == np.float32
    np.testing.assert_allclose(data.trajectories, np.moveaxis(fields, 0, -1), rtol=1e-6)
    np.testing.assert_allclose(data.times, np.linspace(18.0, 102.0, 14), rtol=1e-6)
    assert [len(c) for c in data.coords] == [12, 10]
    assert data.attrs == {"buoyancy": 0.5}  # one split alone: no split of its own


def test_public_directory_is_read_with_its_split(tmp_path: Path) -> None:
    # Two seeds' files, as scripts/navierstokes_jobs.sh leaves them, plus PDEArena's config
    # files (no 'h5' in their names). Sample i holds the value i.
    values = np.arange(9.0)[:, None, None, None] * np.ones((9, 2, 4, 4))
    layout = {"NavierStokes2D_train_100_0.50000_3.h5": ("train", slice(0, 3)),
              "NavierStokes2D_train_101_0.50000_2.h5": ("train", slice(3, 5)),
              "NavierStokes2D_valid_201_0.50000.h5": ("valid", slice(5, 6)),
              "NavierStokes2D_valid_200_0.50000.h5": ("valid", slice(6, 8)),
              "NavierStokes2D_test_300_0.50000.h5": ("test", slice(8, 9))}
    for name, (split, rows) in layout.items():
        _write_public_file(tmp_path / name, split, np.stack([values[rows]] * 3), 0.5)
    (tmp_path / "pde_train_seed_0.yaml").write_text("nt: 56\n")
    data = read_data(tmp_path, "pdearena-ns2d")
    # Files of a split by name: valid_200 before valid_201.
    assert data.trajectories[:, 0, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 6, 7, 5, 8]
    assert data.attrs["split"] == {"train": 5, "valid": 3, "test": 1}
    split = split_of(data, seed=7)
    assert (split.train.tolist(), split.val.tolist(), split.test.tolist()) == (
        [0, 1, 2, 3, 4], [5, 6, 7], [8])


def test_generated_set_trains_on_its_own_split(tmp_path: Path) -> None:
    from autoq.train import load_problem

    path = ns2d.generate(tmp_path / "set", samples=6, resolution=8, frames=3, spin_up=0.5)
    problem = load_problem(path, pde="ns2d", input_steps=1, target_steps=1, split_seed=5)
    assert problem.split.train.tolist() == [0, 1, 2, 3]
    assert (problem.split.val.tolist(), problem.split.test.tolist()) == ([4], [5])


def test_file_of_the_earlier_generator_is_read_with_its_groups(tmp_path: Path) -> None:
    # The periodic generator wrote one file with the groups train/valid/test (80/10/10).
    rng = np.random.default_rng(1)
    path = tmp_path / "ns2d_small_dt075.h5"
    with h5py.File(path, "w") as f:
        for split, count in (("train", 8), ("valid", 1), ("test", 1)):
            _write_public_group(f, split, rng.random((3, count, 4, 8, 8)), 0.5)
        f.attrs["nu"], f.attrs["buoyancy"] = 0.01, 0.5
    data = ns2d.read(path)
    assert data.samples == 10 and data.attrs["split"] == {"train": 8, "valid": 1, "test": 1}


def test_read_concatenates_splits_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train, test = rng.random((3, 3, 4, 8, 8)), rng.random((3, 1, 4, 8, 8))
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        _write_public_group(f, "test", test, 0.3)  # creation order must not matter
        _write_public_group(f, "valid", np.zeros((3, 0, 4, 8, 8)), 0.3)
        _write_public_group(f, "train", train, 0.3)
    data = ns2d.read(path)
    np.testing.assert_allclose(data.trajectories[:3, ..., 1], train[1], rtol=1e-6)
    np.testing.assert_allclose(data.trajectories[3:, ..., 2], test[2], rtol=1e-6)
    assert data.attrs == {"buoyancy": pytest.approx(0.3)}  # valid is empty: no own split


def test_selection_applies_to_each_split(tmp_path: Path) -> None:
    # Sample i holds the value i: train 0-4, valid 5-7, test 8-9.
    values = np.arange(10.0)[:, None, None, None] * np.ones((10, 3, 4, 4))
    path = tmp_path / "ns.h5"
    with h5py.File(path, "w") as f:
        for split, rows in (("train", slice(0, 5)), ("valid", slice(5, 8)),
                            ("test", slice(8, 10))):
            _write_public_group(f, split, np.stack([values[rows]] * 3), 0.5)
    for selection, rows, split in (
        (Selection(sample_stride=3), [0, 3, 5, 8], {"train": 2, "valid": 1, "test": 1}),
        (Selection(max_samples=7), [0, 1, 2, 3, 5, 6, 8], {"train": 4, "valid": 2, "test": 1}),
        (Selection(max_samples=2, sample_stride=4), [0, 4], None),
    ):
        data = ns2d.read(path, selection)
        assert data.trajectories[:, 0, 0, 0, 0].tolist() == rows, selection
        assert data.attrs.get("split") == split, selection


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda g: g.__delitem__("vy"), "'vy'"),
        (lambda g: (g.__delitem__("u"), g.create_dataset("u", data=np.zeros((2, 4, 8)))), "'u'"),
        (lambda g: (g.__delitem__("vx"), g.create_dataset("vx", data=np.zeros((2, 4, 8, 6)))),
         "'vx'"),
        (lambda g: (g.__delitem__("t"), g.create_dataset("t", data=np.zeros((2, 5)))), "'t'"),
    ],
)
def test_read_rejects_bad_layout_naming_file_and_key(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        _write_public_group(f, "train", np.zeros((3, 2, 4, 8, 8)), 0.5)
        edit(f["train"])
    with pytest.raises(DataError, match=message) as error:
        ns2d.read(path)
    assert "bad.h5" in str(error.value) and "train" in str(error.value)


def test_read_rejects_files_without_splits(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("u", data=np.zeros((2, 4, 8, 8)))
        assert not ns2d.detect(f)
    with pytest.raises(DataError, match="train"):
        ns2d.read(path)


def test_read_rejects_directories_without_split_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(DataError, match="NavierStokes2D_train"):
        ns2d.read(tmp_path)
    with pytest.raises(DataError, match="directory"):
        read_data(tmp_path, "pdebench-burgers")


def test_read_rejects_a_file_without_the_group_its_name_promises(tmp_path: Path) -> None:
    _write_public_file(tmp_path / "NavierStokes2D_test_1_0.50000.h5", "valid",
                       np.zeros((3, 1, 2, 4, 4)), 0.5)
    with pytest.raises(DataError, match="no group 'test'"):
        ns2d.read(tmp_path)


def test_interrupted_generation_leaves_nothing(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = ns2d.SmokeSolver.run
    calls = 0

    def failing_run(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return run(self, *args, **kwargs)

    monkeypatch.setattr(ns2d.SmokeSolver, "run", failing_run)
    for out in (tmp_path / "set", tmp_path / "set.h5"):
        calls = 0
        with pytest.raises(KeyboardInterrupt):
            # At 128² every sample is integrated on its own, so the second one fails.
            ns2d.generate(out, samples=3, resolution=128, frames=1, spin_up=0.1)
        assert calls == 2
    assert [p.name for p in tmp_path.iterdir()] == ["set"]
    assert list((tmp_path / "set").iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"samples": 0}, "samples"),
        ({"resolution": 3}, "resolution"),
        ({"frames": 0}, "frames"),
        ({"seed": 1.5}, "seed"),
        ({"nu": -0.01}, "nu"),
        ({"buoyancy": float("nan")}, "buoyancy"),
        ({"frame_dt": 0.0}, "frame_dt"),
        ({"max_step": 0.0}, "max_step"),
        ({"length": -32.0}, "length"),
        ({"diffusivity": 0.02}, "diffusivity"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, arguments: dict, name: str) -> None:
    with pytest.raises(SpecError, match=name):
        ns2d.generate(tmp_path / "ns.h5", **{"samples": 1, "resolution": 8, **arguments})
    assert list(tmp_path.iterdir()) == []


def test_split_sizes_scale_pdearenas_split() -> None:
    assert ns2d.split_sizes(2) == {"train": 2, "valid": 0, "test": 0}
    assert ns2d.split_sizes(3) == {"train": 1, "valid": 1, "test": 1}
    assert ns2d.split_sizes(96) == {"train": 64, "valid": 16, "test": 16}
    assert ns2d.split_sizes(7800) == {"train": 5200, "valid": 1300, "test": 1300}


def test_family_has_public_defaults() -> None:
    family = ns2d.FAMILY
    assert (family.name, family.spatial_dims) == ("ns2d", 2)
    assert (family.default_resolution, family.default_samples) == (128, 7_800)
