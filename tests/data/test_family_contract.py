"""The contract every PDE family in :data:`autoq.data.PDES` joins by being registered.

Each family generates a small file, which must read back in the layout the family declares,
be detected as that family and no other, carry autoq's label (which the readers ignore), and
fail loudly (naming the file) when it belongs to another family or lost its data. Each family's
solver must also match an exact solution: those differ per equation, so they sit in
:data:`REFERENCES`, and a family missing there fails.
"""

from __future__ import annotations

import inspect
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

import autoq
import autoq.data
from autoq.data import (
    LAYOUTS,
    PDES,
    PDEFamily,
    burgers,
    darcy,
    detect_family,
    diffsorp,
    ns2d,
    read_data,
    read_pde_file,
)
from autoq.data._common import GENERATOR_ATTR, PARAMETERS_ATTR
from autoq.errors import DataError

SAMPLES, RESOLUTION, FRAMES = 3, 16, 3
FAMILY_PAIRS = [(name, other) for name in sorted(PDES) for other in sorted(PDES) if other != name]


@dataclass(frozen=True)
class Check:
    """One comparison of a solver with an exact solution: max error and the bound it must meet."""

    what: str
    error: float
    tolerance: float


class _Counter:
    def __init__(self) -> None:
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small file of every family: 3 samples, 16 points per axis, 3 frames (steady: 1)."""
    folder = tmp_path_factory.mktemp("families")
    return {
        name: family.generate(folder / f"{name}.h5", samples=SAMPLES, resolution=RESOLUTION,
                              seed=0, frames=None if family.steady else FRAMES)
        for name, family in PDES.items()
    }


def _largest_datasets(path: Path) -> list[str]:
    """Paths of the datasets holding the most values: the solution, which no layout can lack."""
    sizes: dict[str, int] = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, item: sizes.update({name: item.size})
            if isinstance(item, h5py.Dataset) else None
        )
    largest = max(sizes.values())
    return sorted(name for name, size in sizes.items() if size == largest)


@pytest.mark.parametrize("name", sorted(PDES))
def test_family_is_registered_under_its_name(name: str) -> None:
    family = PDES[name]
    assert isinstance(family, PDEFamily)
    assert family.name == name
    assert family.spatial_dims in (1, 2)
    assert family.fields >= 1 and family.coefficient_channels >= 0
    parameters = inspect.signature(family.generate).parameters
    for argument in ("samples", "resolution", "seed", "progress", "frames"):
        assert parameters[argument].kind is inspect.Parameter.KEYWORD_ONLY, argument
    assert parameters["resolution"].default is None and parameters["frames"].default is None


@pytest.mark.parametrize("name", sorted(PDES))
def test_generated_file_reads_back_in_the_declared_layout(
    name: str, generated: dict[str, Path]
) -> None:
    family, path = PDES[name], generated[name]
    data = read_pde_file(path, pde=name)
    grid = (RESOLUTION,) * family.spatial_dims
    frames = 1 if family.steady else FRAMES
    assert data.pde == name
    assert data.trajectories.dtype == np.float32
    assert data.trajectories.shape == (SAMPLES, frames, *grid, family.fields)
    assert np.isfinite(data.trajectories).all()
    assert (data.samples, data.frames, data.spatial_shape) == (SAMPLES, frames, grid)
    assert (data.spatial_dims, data.fields, data.steady) == (
        family.spatial_dims, family.fields, family.steady)
    assert len(data.coords) == family.spatial_dims
    for axis in data.coords:
        assert axis.shape == (RESOLUTION,) and np.all(np.diff(axis) > 0)
    if family.steady:
        assert data.times is None
        assert data.coefficients is not None and data.coefficients.dtype == np.float32
        assert data.coefficients.shape == (SAMPLES, *grid, family.coefficient_channels)
    else:
        assert data.coefficients is None
        assert data.times is not None and data.times.shape == (FRAMES,)
        assert np.all(np.diff(data.times) > 0)


@pytest.mark.parametrize("name", sorted(PDES))
def test_generated_file_is_detected_as_its_family_only(
    name: str, generated: dict[str, Path]
) -> None:
    with h5py.File(generated[name], "r") as handle:
        assert [f.name for f in PDES.values() if f.detect(handle)] == [name]
    assert detect_family(generated[name]) is PDES[name]


@pytest.mark.parametrize("name", sorted(PDES))
def test_generated_file_says_which_solver_wrote_it(
    name: str, generated: dict[str, Path]
) -> None:
    # autoq's files share the public layouts key for key; only this label tells them apart.
    with h5py.File(generated[name], "r") as handle:
        assert handle.attrs[GENERATOR_ATTR] == f"autoq {autoq.__version__} {name} solver"
        parameters = json.loads(handle.attrs[PARAMETERS_ATTR])
    assert (parameters["samples"], parameters["resolution"], parameters["seed"]) == (
        SAMPLES, RESOLUTION, 0)


@pytest.mark.parametrize("name", sorted(PDES))
def test_public_layout_reader_ignores_the_label(
    name: str, generated: dict[str, Path], tmp_path: Path
) -> None:
    layout = next(entry.name for entry in LAYOUTS.values() if entry.family == name)
    unlabelled = tmp_path / generated[name].name
    shutil.copy(generated[name], unlabelled)
    with h5py.File(unlabelled, "r+") as handle:
        del handle.attrs[GENERATOR_ATTR], handle.attrs[PARAMETERS_ATTR]
    read, bare = read_data(generated[name], layout), read_data(unlabelled, layout)
    np.testing.assert_array_equal(read.trajectories, bare.trajectories)
    for axis, bare_axis in zip(read.coords, bare.coords, strict=True):
        np.testing.assert_array_equal(axis, bare_axis)
    if bare.coefficients is not None:
        np.testing.assert_array_equal(read.coefficients, bare.coefficients)
    assert read.attrs == bare.attrs


@pytest.mark.parametrize("name", sorted(PDES))
def test_generate_is_seeded_and_reports_progress(name: str, tmp_path: Path) -> None:
    family = PDES[name]
    frames = None if family.steady else 2
    runs = []
    for run, seed in enumerate((1, 1, 2)):
        counter = _Counter()
        path = family.generate(tmp_path / f"{run}.h5", samples=2, resolution=8, seed=seed,
                               frames=frames, progress=counter)
        assert counter.done == 2
        runs.append(family.read(path).trajectories)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize(("name", "other"), FAMILY_PAIRS)
def test_file_of_another_family_is_refused_naming_it(
    name: str, other: str, generated: dict[str, Path]
) -> None:
    path = generated[other]
    with pytest.raises(DataError, match=path.name):
        read_pde_file(path, pde=name)
    with pytest.raises(DataError, match=path.name):
        PDES[name].read(path)


@pytest.mark.parametrize("name", sorted(PDES))
def test_file_without_its_solution_is_refused_naming_it(
    name: str, generated: dict[str, Path], tmp_path: Path
) -> None:
    for key in _largest_datasets(generated[name]):
        path = tmp_path / f"{name}-without-{key.replace('/', '-')}.h5"
        shutil.copy(generated[name], path)
        with h5py.File(path, "r+") as handle:
            del handle[key]
        with pytest.raises(DataError, match=path.name):
            read_pde_file(path)
        with pytest.raises(DataError, match=path.name):
            PDES[name].read(path)


# Exact solutions, one function per family. Tolerances sit about 2x above the measured errors
# (in the comments) and far below what a wrong coefficient, sign or axis gives.


def _burgers_matches_cole_hopf() -> list[Check]:
    # φ = 1 + d·e^{-ε(2π)²t} cos(2πx) solves φ_t = ε φ_xx, so u = -2ε φ_x/φ solves Burgers with
    # ε = ν/π. ν = 0.1, 128 cells: measured 1.8e-4 (first-order upwinding: 2.9e-3 even at 256).
    nu, depth, cells = 0.1, 0.9, 128
    x, t = (np.arange(cells) + 0.5) / cells, np.linspace(0.0, 1.0, 11)
    eps, k = nu / math.pi, 2 * math.pi
    decay = depth * np.exp(-eps * k**2 * t)[:, np.newaxis]
    exact = 2 * eps * decay * k * np.sin(k * x) / (1 + decay * np.cos(k * x))
    solved = burgers.solve_burgers(exact[:1], nu=nu, t_out=t)[0]
    return [Check("Cole-Hopf, nu=0.1", float(np.abs(solved - exact).max()), 3e-4)]


def _diffsorp_matches_sine_modes() -> list[Check]:
    # u = 1 - A sin(πx/2) e^{-d(π/2)²t}: u(0) = 1, u_x(1) = 0, u_t = d u_xx. Linear sorption
    # (n_f = 1) makes R a constant and d = D/R; without sorption d = D. 64 cells, measured 5.7e-6
    # and 1.3e-5.
    p, cells = diffsorp.PHYSICS, 64
    x, t = (np.arange(cells) + 0.5) / cells, np.linspace(0.0, 500.0, 11)
    retardation = 1 + (1 - p["phi"]) / p["phi"] * p["rho_s"] * p["k_f"]
    checks = []
    for what, d, options in (
        ("linear sorption", p["D"] / retardation, {"n_f": 1.0}),
        ("no sorption", p["D"], {"sorption": False}),
    ):
        exact = 1 - 0.8 * np.sin(np.pi * x / 2) * np.exp(-d * (np.pi / 2) ** 2 * t)[:, None]
        solved = diffsorp.solve_diffsorp(exact[:1], t_out=t, right_boundary="closed",
                                         **options)[0]
        checks.append(Check(f"sine mode, {what}", float(np.abs(solved - exact).max()), 5e-5))
    return checks


def _darcy_matches_manufactured_solution() -> list[Check]:
    # u = sin(πx) sin(πy) with the smooth coefficient a = 1 + x + y²:
    # f = -∇·(a∇u) = 2π² a u - a_x u_x - a_y u_y. 32², measured 9.4e-4.
    n = 32
    x, y = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
    exact = np.sin(np.pi * x) * np.sin(np.pi * y)
    a = 1 + x + y**2
    u_x = np.pi * np.cos(np.pi * x) * np.sin(np.pi * y)
    u_y = np.pi * np.sin(np.pi * x) * np.cos(np.pi * y)
    f = 2 * np.pi**2 * a * exact - u_x - 2 * y * u_y
    error = float(np.abs(darcy.solve_darcy(a, f) - exact).max())
    return [Check("manufactured, a = 1 + x + y^2", error, 1.5e-3)]


def _ns2d_matches_exact_flows() -> list[Check]:
    # Hydrostatic balance: uniform smoke leaves a closed box at rest (measured 0). A solid-body
    # rotation u = -ω(y - c), v = ω(x - c) turns a smoke blob by a quarter about the centre
    # (64², MUSCL clips the peak: measured 0.096; turned the wrong way the error is 1).
    solver = ns2d.SmokeSolver(16)
    smoke, vx, vy = solver.run(np.full((1, 16, 16), 0.7), np.array([3.0, 9.0]))
    checks = [Check("uniform smoke at rest", float(max(np.abs(vx).max(), np.abs(vy).max(),
                                                       np.abs(smoke - 0.7).max())), 1e-12)]
    n, omega, dx = 64, 0.1, 0.5
    centres = (np.arange(n) + 0.5) * dx - 16.0
    u = np.zeros((1, n + 1, n))
    u[:, 1:-1] = -omega * centres
    v = np.zeros((1, n, n + 1))
    v[:, :, 1:-1] = omega * centres[:, None]
    x, y = np.meshgrid(centres, centres, indexing="ij")
    blob = np.exp(-((x - 8) ** 2 + y**2) / 8)
    turned = ns2d.advect_smoke(blob[None], u, v, math.pi / 2 / omega, dx)[0]
    exact = np.exp(-(x**2 + (y - 8) ** 2) / 8)
    checks.append(Check("smoke in a solid-body rotation", float(np.abs(turned - exact).max()),
                        0.2))
    return checks


REFERENCES: dict[str, Callable[[], list[Check]]] = {
    "burgers": _burgers_matches_cole_hopf,
    "diffsorp": _diffsorp_matches_sine_modes,
    "darcy": _darcy_matches_manufactured_solution,
    "ns2d": _ns2d_matches_exact_flows,
}
"""Family name → its solver's comparisons with exact solutions. A new family adds one here."""


def test_every_reference_is_a_registered_family() -> None:
    assert set(REFERENCES) <= set(PDES), sorted(set(REFERENCES) - set(PDES))


@pytest.mark.parametrize("name", sorted(PDES))
def test_solver_matches_its_exact_solution(name: str) -> None:
    if name not in REFERENCES:
        pytest.fail(f"PDE family {name!r} has no exact solution to check its solver against: "
                    f"add one to REFERENCES in {Path(__file__).name}")
    checks = REFERENCES[name]()
    assert checks
    for check in checks:
        assert check.error < check.tolerance, check


def test_registry_imports_without_torch(heavy_imports: Callable[..., list[str]]) -> None:
    assert heavy_imports("autoq.data.registry") == []


def test_package_names_resolve_lazily() -> None:
    for name in autoq.data.__all__:
        assert getattr(autoq.data, name) is not None, name
