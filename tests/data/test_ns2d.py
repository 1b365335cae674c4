"""Navier–Stokes with buoyant smoke: the spectral solver against exact flows, PDEArena's layout."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from autoq.data import ns2d
from autoq.errors import DataError, SpecError

KEYS = {"u", "vx", "vy", "t", "dt", "x", "y", "dx", "dy", "buo_y"}


def _grid(solver: ns2d.VorticitySolver) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(solver.coords, solver.coords, indexing="ij")


def _derivative(field: np.ndarray, axis: int, length: float) -> np.ndarray:
    """Spectral derivative of a periodic field along ``axis``."""
    n = field.shape[axis]
    others = tuple(i for i in range(field.ndim) if i != axis % field.ndim)
    ik = np.expand_dims(2j * math.pi / length * np.fft.fftfreq(n, d=1.0 / n), others)
    return np.fft.ifft(np.fft.fft(field, axis=axis) * ik, axis=axis).real


def _divergence(vx: np.ndarray, vy: np.ndarray, length: float, axes: tuple[int, int]
                ) -> np.ndarray:
    """∂vx/∂(axes[0]) + ∂vy/∂(axes[1])."""
    return _derivative(vx, axes[0], length) + _derivative(vy, axes[1], length)


def test_taylor_green_vortex_decays_at_the_viscous_rate() -> None:
    nu, k = 0.05, 2
    solver = ns2d.VorticitySolver(32, length=2 * math.pi, nu=nu, buoyancy=0.0, diffusivity=0.0)
    x, y = _grid(solver)
    omega0 = 2 * k**2 * np.sin(k * x) * np.sin(k * y)
    omega_hat = solver.to_spectral(omega0[None])
    smoke_hat = np.zeros_like(omega_hat)
    now = 0.0
    for time in (0.5, 1.0, 2.0):
        omega_hat, smoke_hat = solver.advance(omega_hat, smoke_hat, time - now)
        now = time
        omega = solver.to_physical(omega_hat)[0]
        amplitude = np.sum(omega * omega0) / np.sum(omega0 * omega0)
        # Measured: 2e-16; the diffusion term is integrated exactly, advection vanishes.
        assert amplitude == pytest.approx(math.exp(-2 * nu * k**2 * time), rel=1e-10)
        assert np.abs(omega - amplitude * omega0).max() < 1e-10


def test_shear_flow_carries_smoke_as_the_exact_solution() -> None:
    # ψ = A sin(y): vx = A cos(y) e^{−νt}, vy = 0, an exact decaying flow; it shears the smoke
    # cos(x) into cos(x − A cos(y) τ(t)) with τ = (1 − e^{−νt})/ν. Checks signs and axis order.
    nu, amplitude = 0.02, 0.5
    solver = ns2d.VorticitySolver(64, length=2 * math.pi, nu=nu, buoyancy=0.0, diffusivity=0.0)
    x, y = _grid(solver)
    times = np.array([1.0, 4.0])
    smoke, vx, vy = solver.run(np.cos(x)[None], times, omega=(amplitude * np.sin(y))[None])
    for k, time in enumerate(times):
        tau = (1 - math.exp(-nu * time)) / nu
        exact = np.cos(x - amplitude * np.cos(y) * tau)
        assert np.abs(smoke[0, k] - exact).max() < 5e-6  # measured 6e-7 at t = 4
        np.testing.assert_allclose(vx[0, k], amplitude * np.cos(y) * math.exp(-nu * time),
                                   atol=1e-12)
        assert np.abs(vy[0, k]).max() < 1e-12


def test_buoyant_blob_rises_along_y() -> None:
    solver = ns2d.VorticitySolver(64, length=16.0, nu=0.01, buoyancy=0.5)
    x, y = _grid(solver)
    blob = np.exp(-((x - 8) ** 2 + (y - 6) ** 2) / 2)
    smoke, _, vy = solver.run(blob[None], np.array([0.0, 2.0, 4.0]))
    mass = smoke[0].sum(axis=(-2, -1))
    centre_x = (smoke[0] * x).sum(axis=(-2, -1)) / mass
    centre_y = (smoke[0] * y).sum(axis=(-2, -1)) / mass
    np.testing.assert_allclose(centre_x, 8.0, atol=1e-9)  # symmetric in x
    assert centre_y[0] == pytest.approx(6.0) and 6.1 < centre_y[1] < centre_y[2]
    assert vy[0, 1, 32, 24] > 0.2


def test_smoke_mean_is_conserved_and_velocity_is_divergence_free() -> None:
    rng = np.random.default_rng(0)
    solver = ns2d.VorticitySolver(32, length=32.0, nu=0.01, buoyancy=0.5)
    smoke0 = np.stack([ns2d.initial_smoke(rng, 32, 32.0, 11.0) for _ in range(2)])
    assert smoke0.min() >= 0
    smoke, vx, vy = solver.run(smoke0, np.array([3.0, 6.0]))
    np.testing.assert_allclose(smoke.mean(axis=(-2, -1)),
                               np.repeat(smoke0.mean(axis=(-2, -1))[:, None], 2, axis=1),
                               rtol=1e-13)
    assert np.abs(vx).max() > 0.1  # the smoke did set the fluid moving
    assert np.abs(_divergence(vx, vy, 32.0, axes=(-2, -1))).max() < 1e-12


def test_generate_writes_the_public_layout(tmp_path: Path) -> None:
    ticks: list[int] = []

    class Counter:
        def update(self, n: int = 1) -> None:
            ticks.append(n)

    out = ns2d.generate(tmp_path / "ns.h5", samples=10, resolution=16, frames=3, seed=2,
                        spin_up=1.0, frame_dt=0.5, progress=Counter())
    assert sum(ticks) == 10
    with h5py.File(out, "r") as f:
        assert set(f.keys()) == {"train", "valid", "test"}
        assert dict(f.attrs) == {"nu": 0.01, "buoyancy": 0.5}
        assert ns2d.detect(f)
        for split, count in (("train", 8), ("valid", 1), ("test", 1)):
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
        vx, vy, smoke = f["train/vx"][...], f["train/vy"][...], f["train/u"][...]
    # (N, T, X, Y): the velocity is divergence-free with x on axis 2, not with the axes swapped.
    scale = np.abs(vx).max() * 2 * math.pi / 32
    assert np.abs(_divergence(vx, vy, 32.0, axes=(2, 3))).max() < 1e-10 * scale
    assert np.abs(_divergence(vx, vy, 32.0, axes=(3, 2))).max() > 0.1 * scale
    assert not np.array_equal(smoke[0], smoke[1])


def test_generate_is_seeded(tmp_path: Path) -> None:
    def smoke(name: str, seed: int) -> np.ndarray:
        path = ns2d.generate(tmp_path / name, samples=2, resolution=16, frames=1, seed=seed,
                             spin_up=0.5)
        with h5py.File(path, "r") as f:
            return f["train/u"][...]

    first = smoke("a.h5", 3)
    assert np.array_equal(first, smoke("b.h5", 3))
    assert not np.array_equal(first, smoke("c.h5", 4))


def _write_public_group(handle: h5py.File, split: str, fields: np.ndarray, buoyancy: float
                        ) -> None:
    """One PDEArena group written with h5py as pdedatagen does: fields (3, N, T, X, Y)."""
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
    path = tmp_path / "NavierStokes2D_valid_197910_0.50000.h5"
    with h5py.File(path, "w") as f:
        _write_public_group(f, "valid", fields, 0.5)
    data = ns2d.read(path)
    assert data.pde == "ns2d" and not data.steady and data.coefficients is None
    assert data.trajectories.shape == (2, 14, 12, 10, 3)
    assert data.trajectories.dtype == np.float32
    np.testing.assert_allclose(data.trajectories, np.moveaxis(fields, 0, -1), rtol=1e-6)
    np.testing.assert_allclose(data.times, np.linspace(18.0, 102.0, 14), rtol=1e-6)
    assert [len(c) for c in data.coords] == [12, 10]
    assert data.attrs == {"buoyancy": 0.5}


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
    assert data.attrs == {"buoyancy": pytest.approx(0.3)}


def test_read_generated_file_round_trips(tmp_path: Path) -> None:
    path = ns2d.generate(tmp_path / "ns.h5", samples=3, resolution=8, frames=2, spin_up=0.5,
                         buoyancy=0.25)
    data = ns2d.read(path)
    assert data.trajectories.shape == (3, 2, 8, 8, 3)
    np.testing.assert_allclose(data.times, [0.5, 6.5])
    np.testing.assert_allclose(data.coords[0], (np.arange(8) + 0.5) * 4.0)
    assert data.attrs == {"buoyancy": 0.25, "nu": 0.01}


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


def test_interrupted_generation_leaves_nothing(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = ns2d.VorticitySolver.run
    calls = 0

    def failing_run(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return run(self, *args, **kwargs)

    monkeypatch.setattr(ns2d.VorticitySolver, "run", failing_run)
    with pytest.raises(KeyboardInterrupt):
        # At 64² every sample is integrated on its own, so the second one fails.
        ns2d.generate(tmp_path / "ns.h5", samples=3, resolution=64, frames=1, spin_up=0.1)
    assert calls == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"samples": 0}, "samples"),
        ({"resolution": 15}, "resolution"),
        ({"resolution": 4}, "resolution"),
        ({"frames": 0}, "frames"),
        ({"seed": 1.5}, "seed"),
        ({"nu": -0.01}, "nu"),
        ({"buoyancy": float("nan")}, "buoyancy"),
        ({"frame_dt": 0.0}, "frame_dt"),
        ({"length": -32.0}, "length"),
        ({"beta": 1.0}, "beta"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, arguments: dict, name: str) -> None:
    with pytest.raises(SpecError, match=name):
        ns2d.generate(tmp_path / "ns.h5", **{"samples": 1, "resolution": 8, **arguments})
    assert list(tmp_path.iterdir()) == []


def test_split_sizes_give_train_the_remainder() -> None:
    assert ns2d.split_sizes(1) == {"train": 1, "valid": 0, "test": 0}
    assert ns2d.split_sizes(25) == {"train": 21, "valid": 2, "test": 2}
    assert ns2d.split_sizes(7800) == {"train": 6240, "valid": 780, "test": 780}


def test_family_has_public_defaults() -> None:
    family = ns2d.FAMILY
    assert (family.name, family.spatial_dims) == ("ns2d", 2)
    assert (family.default_resolution, family.default_samples) == (128, 7_800)
