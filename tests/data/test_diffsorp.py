"""1D diffusion–sorption: solver against analytic modes, the PDEBench layout, the reader."""

from __future__ import annotations

import inspect
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from autoq.data import diffsorp
from autoq.data._common import GENERATOR_ATTR, PARAMETERS_ATTR, cell_centres
from autoq.errors import DataError, SpecError

D = diffsorp.PHYSICS["D"]
AMPLITUDE = 0.8


class _Counter:
    def __init__(self) -> None:
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n


def _mode(x: np.ndarray, t: np.ndarray, *, diffusivity: float) -> np.ndarray:
    """u = 1 - A sin(πx/2) exp(-d (π/2)² t): u(0) = 1 and u_x(1) = 0, for u_t = d u_xx.

    Returns:
        ``(len(t), len(x))``.
    """
    decay = np.exp(-diffusivity * (np.pi / 2) ** 2 * t)[:, np.newaxis]
    return 1.0 - AMPLITUDE * np.sin(np.pi * x / 2) * decay


def _mode_error(cells: int, **options: object) -> float:
    x = (np.arange(cells) + 0.5) / cells
    times = np.linspace(0.0, 500.0, 11)
    diffusivity = options.pop("diffusivity")
    exact = _mode(x, times, diffusivity=diffusivity)
    solved = diffsorp.solve_diffsorp(exact[:1], t_out=times, right_boundary="closed", **options)[0]
    return float(np.max(np.abs(solved - exact)))


def test_solve_diffsorp_without_sorption_matches_sine_mode() -> None:
    coarse = _mode_error(32, diffusivity=D, sorption=False)
    fine = _mode_error(64, diffusivity=D, sorption=False)
    print(f"sine mode, R = 1: max error {coarse:.2e} at 32 cells, {fine:.2e} at 64")
    # Sorption left on (R ≈ 3 to 13) misses by 0.24, a doubled D by about 0.2.
    assert fine < 5e-5
    assert coarse / fine > 3.0


def test_solve_diffsorp_constant_retardation_slows_the_mode() -> None:
    # n_f = 1 makes R the constant 1 + ((1-φ)/φ) ρ_s k_f: the mode then decays with D/R.
    p = diffsorp.PHYSICS
    factor = 1.0 + (1.0 - p["phi"]) / p["phi"] * p["rho_s"] * p["k_f"]
    error = _mode_error(64, diffusivity=D / factor, n_f=1.0)
    print(f"sine mode, R = {factor:.3f}: max error {error:.2e} at 64 cells")
    assert error < 5e-5


def test_retardation_slope_matches_finite_differences() -> None:
    u = np.array([1e-4, 0.01, 0.1, 0.5, 1.0])
    p = {k: v for k, v in diffsorp.PHYSICS.items() if k != "D"}
    r, slope = diffsorp.retardation(u, **p)
    h = 1e-7 * u
    numeric = (diffsorp.retardation(u + h, **p)[0] - diffsorp.retardation(u - h, **p)[0]) / (2 * h)
    np.testing.assert_allclose(slope, numeric, rtol=1e-5)
    assert np.all(np.diff(r) < 0)  # Freundlich with n_f < 1: sorption matters most at low u
    r0, slope0 = diffsorp.retardation(np.array([-1e-9]), **p)
    assert np.isfinite(r0).all() and slope0[0] == 0.0


def test_solve_diffsorp_stays_physical() -> None:
    times = np.linspace(0.0, 500.0, 6)
    u0 = np.repeat(np.array([[0.0], [0.1], [0.2]]), 32, axis=1)
    u = diffsorp.solve_diffsorp(u0, t_out=times)
    assert u.min() >= -1e-9 and u.max() <= 1.0 + 1e-9
    # The face value at x = 0, extrapolated from the first two cells, is the Dirichlet 1.
    face = 1.5 * u[:, 1:, 0] - 0.5 * u[:, 1:, 1]
    np.testing.assert_allclose(face, 1.0, atol=2e-3)
    # Solute enters from the left: the profile falls with x, and a richer start stays richer.
    assert np.all(np.diff(u[:, -1], axis=1) <= 1e-12)
    assert np.all(np.diff(u[:, -1, 0]) > 0)


def test_solve_diffsorp_cauchy_boundary_lets_solute_out() -> None:
    times = np.array([0.0, 50.0, 500.0])
    u0 = np.full((1, 32), 0.2)
    closed = diffsorp.solve_diffsorp(u0, t_out=times, right_boundary="closed")[0, :, -1]
    outflow = diffsorp.solve_diffsorp(u0, t_out=times, right_boundary="cauchy")[0, :, -1]
    # Closed: the far end only gains what diffuses in from the left, late. Outflow: it drains
    # at once, towards the ghost value ≈ 0.
    assert closed[1] == pytest.approx(0.2, abs=1e-6)
    assert closed[2] >= 0.2
    assert outflow[1] < 0.1 and outflow[2] < outflow[1]


def test_solve_diffsorp_rejects_bad_input() -> None:
    with pytest.raises(SpecError, match="right_boundary"):
        diffsorp.solve_diffsorp(np.zeros((1, 8)), t_out=np.array([0.0, 1.0]), right_boundary="x")
    with pytest.raises(SpecError, match="t_out"):
        diffsorp.solve_diffsorp(np.zeros((1, 8)), t_out=np.array([1.0, 0.0]))


def test_generate_writes_public_layout(tmp_path: Path) -> None:
    counter = _Counter()
    out = diffsorp.generate(
        tmp_path / "d.h5", samples=3, resolution=32, frames=6, seed=5, progress=counter
    )
    assert out == tmp_path / "d.h5"
    assert counter.done == 3
    with h5py.File(out, "r") as f:
        assert list(f.keys()) == ["0000", "0001", "0002"]
        assert set(f.attrs) == {GENERATOR_ATTR, PARAMETERS_ATTR}
        starts = []
        for key in f:
            group = f[key]
            assert set(group.keys()) == {"data", "grid"}
            assert set(group["grid"].keys()) == {"x", "t"}
            data, x, t = group["data"], group["grid/x"], group["grid/t"]
            assert (data.shape, data.dtype) == ((6, 32, 1), np.float32)
            assert (x.shape, x.dtype) == ((32,), np.float32)
            assert (t.shape, t.dtype) == ((6,), np.float32)
            assert {data.compression, x.compression, t.compression} == {"lzf"}
            np.testing.assert_allclose(x[...], (np.arange(32) + 0.5) / 32, rtol=1e-6)
            np.testing.assert_allclose(t[...], np.linspace(0, 500, 6), rtol=1e-6)
            sim = yaml.safe_load(group.attrs["config"])["sim"]
            assert sim["D"] == pytest.approx(5e-4) and sim["por"] == pytest.approx(0.29)
            assert (sim["xdim"], sim["tdim"]) == (32, 6)
            values = data[...]
            # Axis order (t, x, field): frame 0 is the constant start, later frames are not.
            assert np.ptp(values[0]) == 0.0 and 0.0 <= values[0, 0, 0] < 0.2
            assert values[0, 0, 0] == pytest.approx(sim["u0"])
            assert np.ptp(values[-1]) > 0.5
            assert values.min() >= 0.0 and values.max() <= 1.0 + 1e-6
            starts.append(values[0, 0, 0])
    assert len(set(starts)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]


def _pinn_initial_value(config_text: str) -> np.ndarray:
    """A sample's initial value as PDEBench's PINN loader rebuilds it from the sample's config
    (``pdebench/models/pinn/utils.py``, ``PINNDatasetDiffSorption.get_initial_condition``)."""
    config = yaml.load(config_text, Loader=yaml.SafeLoader)
    rng = np.random.default_rng(config["sim"]["seed"])
    return np.ones(config["sim"]["xdim"]) * rng.uniform(0, 0.2)


def test_pinn_loader_rebuilds_every_initial_value(tmp_path: Path) -> None:
    # Issue 16: every group's config carried the file's seed, so the loader rebuilt 0.127 for
    # every sample against 0.127, 0.054, 0.008, 0.003 in the file. Each carries its own now.
    samples = 500
    path = diffsorp.generate(tmp_path / "d.h5", samples=samples, resolution=8, frames=2, seed=3)
    with h5py.File(path, "r") as f:
        rebuilt = np.stack([_pinn_initial_value(f[key].attrs["config"]) for key in f])
        stored = np.stack([f[key]["data"][0, :, 0] for key in f])
    print(f"first initial values {stored[:4, 0].round(3)}, rebuilt {rebuilt[:4, 0].round(3)}")
    np.testing.assert_allclose(rebuilt, stored, rtol=1e-6)  # stored as float32
    assert len(np.unique(stored[:, 0])) == samples


def test_initial_values_are_drawn_as_pdebench_draws_them() -> None:
    # PDEBench seeds sample i with i: seed 0 gives its own initial values.
    pdebench = [diffsorp.initial_level(diffsorp.sample_seed(0, i)) for i in range(4)]
    assert pdebench == pytest.approx([0.1274, 0.1024, 0.0523, 0.0171], abs=1e-4)
    # U(0, 0.2): mean 0.1, std 0.2/√12 = 0.0577; over 20,000 samples their standard errors
    # are 0.0004 and 0.0003.
    levels = np.array([diffsorp.initial_level(diffsorp.sample_seed(5, i)) for i in range(20_000)])
    assert levels.min() >= 0.0 and levels.max() < 0.2
    assert levels.mean() == pytest.approx(0.1, abs=0.002)
    assert levels.std() == pytest.approx(0.2 / np.sqrt(12), abs=0.0015)
    # Files of different seeds share no sample.
    first = {diffsorp.sample_seed(0, i) for i in range(1000)}
    assert not first & {diffsorp.sample_seed(1, i) for i in range(1000)}


def test_generate_interrupted_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = diffsorp.solve_diffsorp

    def failing(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("solver died")
        return real(*args, **kwargs)

    monkeypatch.setattr(diffsorp, "_BATCH", 1)
    monkeypatch.setattr(diffsorp, "solve_diffsorp", failing)
    with pytest.raises(RuntimeError, match="solver died"):
        diffsorp.generate(tmp_path / "d.h5", samples=3, resolution=16, frames=3)
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("samples", 0),
        ("resolution", 7),
        ("frames", 1),
        ("D", -1.0),
        ("phi", 1.5),
        ("n_f", float("nan")),
        ("seed", -1),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, argument: str, value: object) -> None:
    with pytest.raises(SpecError, match=argument):
        diffsorp.generate(tmp_path / "d.h5", **{"samples": 1, "resolution": 16, argument: value})
    assert list(tmp_path.iterdir()) == []


# PDEBench's config text, as its generator stores it (abridged).
_PUBLIC_CONFIG = """\
name: 1d_diff-sorp
sim:
  D: 5E-4
  por: 0.29
  rho_s: 2880
  k_f: 3.5E-4
  n_f: 0.874
  sol: 1.0
  t: 500
  tdim: 101
  xdim: 1024
  seed: 0
"""


def _write_public(path: Path, data: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as f:
        for key, values in data.items():
            frames, cells, _ = values.shape
            f.create_dataset(f"{key}/data", data=values, dtype="f4", compression="lzf")
            f.create_dataset(
                f"{key}/grid/x",
                data=(np.arange(cells) + 0.5) / cells,
                dtype="f4",
                compression="lzf",
            )
            f.create_dataset(
                f"{key}/grid/t", data=np.linspace(0, 500, frames), dtype="f4", compression="lzf"
            )
            f[key].attrs["config"] = _PUBLIC_CONFIG


def test_read_handmade_public_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    samples = {key: rng.uniform(size=(4, 16, 1)) for key in ("0002", "0000", "0001")}
    path = tmp_path / "1D_diff-sorp_NA_NA.h5"
    _write_public(path, samples)

    data = diffsorp.read(path)
    assert data.pde == "diffsorp"
    assert data.trajectories.shape == (3, 4, 16, 1)
    assert data.trajectories.dtype == np.float32
    for i, key in enumerate(("0000", "0001", "0002")):
        np.testing.assert_array_equal(data.trajectories[i], samples[key].astype(np.float32))
    np.testing.assert_allclose(data.times, np.linspace(0, 500, 4), rtol=1e-6)
    np.testing.assert_allclose(data.coords[0], cell_centres(16), rtol=1e-6)
    assert data.attrs == pytest.approx(
        {"D": 5e-4, "phi": 0.29, "rho_s": 2880.0, "k_f": 3.5e-4, "n_f": 0.874}
    )
    with h5py.File(path, "r") as f:
        assert diffsorp.detect(f)


def test_read_sorts_sample_groups_numerically(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    _write_public(path, {key: np.full((2, 8, 1), int(key)) for key in ("10000", "1001", "0999")})
    assert diffsorp.read(path).trajectories[:, 0, 0, 0].tolist() == [999, 1001, 10000]


def test_generate_then_read_round_trip(tmp_path: Path) -> None:
    path = diffsorp.generate(tmp_path / "d.h5", samples=2, resolution=16, frames=3, seed=1)
    data = diffsorp.read(path)
    assert data.trajectories.shape == (2, 3, 16, 1)
    assert data.attrs == pytest.approx(diffsorp.PHYSICS)


@pytest.mark.parametrize(
    ("damage", "key"),
    [
        ("rename_data", "0001/data"),
        ("rank_2_data", "0001/data"),
        ("other_shape", "0001/data"),
        ("drop_grid_x", "0000/grid/x"),
    ],
)
def test_read_rejects_broken_layout(tmp_path: Path, damage: str, key: str) -> None:
    path = tmp_path / "broken.h5"
    _write_public(path, {k: np.zeros((3, 8, 1)) for k in ("0000", "0001")})
    with h5py.File(path, "r+") as f:
        if damage == "rename_data":
            f.move("0001/data", "0001/datum")
        elif damage == "rank_2_data":
            del f["0001/data"]
            f.create_dataset("0001/data", data=np.zeros((3, 8), dtype=np.float32))
        elif damage == "other_shape":
            del f["0001/data"]
            f.create_dataset("0001/data", data=np.zeros((3, 9, 1), dtype=np.float32))
        else:
            del f["0000/grid/x"]
    with pytest.raises(DataError, match=key) as caught:
        diffsorp.read(path)
    assert "broken.h5" in str(caught.value)


def test_read_rejects_file_without_groups(tmp_path: Path) -> None:
    path = tmp_path / "flat.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=np.zeros((2, 3, 8), dtype=np.float32))
    with pytest.raises(DataError, match="no sample groups"):
        diffsorp.read(path)
    with h5py.File(path, "r") as f:
        assert not diffsorp.detect(f)


def test_detect_rejects_2d_group_layout(tmp_path: Path) -> None:
    path = tmp_path / "rd2d.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("0000/data", data=np.zeros((2, 8, 8, 2), dtype=np.float32))
        f.create_dataset("0000/grid/x", data=np.zeros(8, dtype=np.float32))
    with h5py.File(path, "r") as f:
        assert not diffsorp.detect(f)


def test_family_declares_public_defaults() -> None:
    family = diffsorp.FAMILY
    assert (family.name, family.spatial_dims) == ("diffsorp", 1)
    assert (family.default_resolution, family.default_samples) == (1024, 10_000)
    params = inspect.signature(family.generate).parameters
    assert params["samples"].default == 10_000
    assert params["resolution"].default is None and params["frames"].default is None
    assert {k: params[k].default for k in diffsorp.PHYSICS} == diffsorp.PHYSICS
