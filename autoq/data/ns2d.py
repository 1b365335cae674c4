"""2D incompressible Navier–Stokes with buoyant smoke, as PDEArena's ``NavierStokes2D`` data set.

The problem (PDEArena, Gupta & Brandstetter 2022): a passive scalar s ("smoke") is carried by an
incompressible flow and pushes it upwards with a Boussinesq force (0, b·s):

    ∂v/∂t + (v·∇)v = −∇p + ν∇²v + (0, b·s),   ∇·v = 0,   ∂s/∂t + v·∇s = 0.

PDEArena's generator (``pdedatagen/navier_stokes.py``, config ``navierstokes2dsmoke.yaml`` with
``sample_rate=4``) runs phiflow in a closed 32 × 32 box of 128² cells: velocity on a staggered
grid with zero extrapolation (no flow through the walls, tangential ghost values 0), smoke at the
cell centres with zero-gradient extrapolation, ν = 0.01, b = 0.5, Δt = 1.5, 64 steps of which the
first 8 are dropped and every 4th kept: 14 frames at t = 13.5, 19.5, …, 91.5, 6 apart. It has no
smoke source (its docstring speaks of an inflow, but the inflow geometry is commented out): the
only smoke is the initial ``abs(Noise(scale=11, smoothness=6))``. Each step

1. advects the smoke with the current velocity,
2. samples the buoyancy b·s at the vertical faces,
3. advects the velocity by itself (semi-Lagrangian) and adds Δt times the force,
4. diffuses it explicitly (ν Δt / Δx² = 0.24 at 128², one step),
5. projects it onto divergence-free fields (pressure solve, closed walls).

We take these steps on the same marker-and-cell grid with our own numerics: semi-Lagrangian
velocity advection with bilinear interpolation (as phiflow: its numerical diffusion is what makes
the flow decay, ν alone would not), the buoyancy of the smoke's deviation from its mean (the
mean's force is hydrostatic and the projection takes it whole; phiflow's diffusion sees it jump
to zero at the walls first and stirs a little flow from smoke at rest), explicit diffusion
(sub-stepped where ν Δt / Δx² would exceed 1/4), an exact pressure projection (the cell-centred
Neumann Laplacian is diagonal in the DCT-II basis, so the discrete divergence is zero to
round-off), and, where phiflow advects the smoke
semi-Lagrangian, a conservative finite-volume scheme: MUSCL with the monotonized-central limiter
and Heun's method, sub-stepped so that no cell loses more than half its smoke per stage. It keeps
the smoke total exactly and the smoke non-negative (phiflow keeps it non-negative but not its
total); the limiter keeps it about as sharp as phiflow's at PDEArena's resolution.

Initial state as in PDEArena: velocity zero, smoke phiflow's ``Noise`` recipe (complex white
noise times (k²)^−6 with k = scale · m / L, modes with k² ≤ 0.1 left out, real part of the
inverse FFT, normalised, absolute value).

Files (PDEArena's names, ``scripts/generate_data.py`` adding 100/200/300 to the seed per split):

- ``NavierStokes2D_train_{seed+100}_{b:.5f}_{N}.h5`` with a group ``train``,
- ``NavierStokes2D_valid_{seed+200}_{b:.5f}.h5`` with a group ``valid``,
- ``NavierStokes2D_test_{seed+300}_{b:.5f}.h5`` with a group ``test``,

each group holding

- ``u`` (smoke, cell centres), ``vx``, ``vy``: float64 ``(N, T, X, Y)``, x before y. ``vx[..., i,
  j]`` is the x-velocity on the face x = i·Δx (the left face of cell i; ``i = 0`` is the wall), and
  ``vy[..., i, j]`` the y-velocity on the face y = j·Δy, as phiflow's ``staggered_tensor()[:-1,
  :-1]`` stores them (the right and top walls, zero, are not stored);
- ``t`` float64 ``(N, T)``; ``dt`` float64 ``(N,)``: time between frames;
- ``x``, ``y`` float64 ``(N, X)``, ``(N, Y)``; ``dx``, ``dy``, ``buo_y`` float64 ``(N,)``.

PDEArena's loader takes the files of a directory whose names contain ``train`` (``valid``,
``test``) and ``h5`` and reads the group of that name from each. PDEArena splits 100/25/25 per
seed; we scale that 4:1:1 split to the sample count. PDEArena writes nominal coordinates
(``t = linspace(18, 102, 14)``, ``x = linspace(0, 32, 128)``, ``dx = 32/127``); we write the true
ones (cell centres, ``dx = 32/128``, ``t = 13.5 + 6k``). The root attributes ``nu``, ``buoyancy``
and :func:`~autoq.data._common.write_label`'s are ours; PDEArena's loader ignores them.

A data path names such a directory (every file of it PDEArena's loader would take), or one HDF5
file holding some of the groups: a public file, or autoq's one-file form of the set (what
:func:`generate` writes to a ``.h5`` path, and what the earlier periodic generator wrote).
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.fft as sfft

from autoq.data._common import (
    Layout,
    PDEData,
    PDEFamily,
    Progress,
    Selection,
    check_int,
    check_real,
    open_h5,
    read_float,
    require_dataset,
    require_float,
    selected,
    write_label,
)
from autoq.errors import DataError, SpecError

DEFAULT_RESOLUTION = 128
DEFAULT_SAMPLES = 7_800  # PDEArena's NavierStokes-2D: 5200 train, 1300 valid, 1300 test
DEFAULT_FRAMES = 14
SPLITS = ("train", "valid", "test")
FIELDS = ("u", "vx", "vy")
SPLIT_ATTR = "split"
"""Key of :attr:`PDEData.attrs` holding the rows per split (``{"train": n, "valid": n, "test":
n}``, in that order) when the data holds all three."""
SEED_OFFSETS = {"train": 100, "valid": 200, "test": 300}  # PDEArena's MODE2SEED
HDF5_SUFFIXES = (".h5", ".hdf5")
_SMOKE_CFL = 0.5  # the most of its smoke a cell may lose per stage; keeps the smoke >= 0
_BATCH_CELLS = 4 * 64**2  # samples integrated together: numpy's per-call cost shared, in cache


class SmokeSolver:
    """Buoyant smoke in a closed box on a marker-and-cell grid (see the module docstring).

    State: ``smoke`` ``(batch, n, n)`` at the cell centres ((i + 1/2)·Δx, (j + 1/2)·Δx), ``u``
    ``(batch, n + 1, n)`` on the x-faces (i·Δx, (j + 1/2)·Δx), ``v`` ``(batch, n, n + 1)`` on the
    y-faces ((i + 1/2)·Δx, j·Δx); axis 1 is x, axis 2 is y (up). Wall faces hold zero.

    Args:
        n: cells per axis (≥ 4).
        length: side of the square box.
        nu: kinematic viscosity ν (0 switches viscosity off).
        buoyancy: b in the force (0, b·s).
        max_step: the longest time step (PDEArena's 1.5); intervals are cut into equal steps.
    """

    def __init__(
        self, n: int, *, length: float = 32.0, nu: float = 0.01, buoyancy: float = 0.5,
        max_step: float = 1.5,
    ) -> None:
        if n < 4:
            raise SpecError(f"resolution={n!r}: must be an integer >= 4")
        self.n, self.length, self.dx = n, length, length / n
        self.nu, self.buoyancy, self.max_step = nu, buoyancy, max_step
        half_angles = np.sin(np.pi * np.arange(n) / (2 * n)) ** 2
        eigenvalues = -4 / self.dx**2 * (half_angles[:, None] + half_angles[None, :])
        eigenvalues[0, 0] = 1.0  # the constant mode: divergences have none (closed walls)
        self._inverse_laplacian = 1 / eigenvalues
        self._inverse_laplacian[0, 0] = 0.0

    @property
    def coords(self) -> np.ndarray:
        """``(n,)`` cell-centre coordinates, the same along x and y."""
        return (np.arange(self.n) + 0.5) * self.dx

    def at_rest(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Face velocities ``(u, v)`` of ``batch`` fluids at rest."""
        return np.zeros((batch, self.n + 1, self.n)), np.zeros((batch, self.n, self.n + 1))

    def run(
        self, smoke: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start from ``smoke`` and a fluid at rest at t = 0; sample at ``times``.

        Args:
            smoke: ``(batch, n, n)`` initial smoke.
            times: ``(frames,)`` non-decreasing sample times ≥ 0.

        Returns:
            ``(smoke, vx, vy)``, each ``(batch, frames, n, n)`` float64, velocities on the
            left/bottom faces as PDEArena stores them.
        """
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or np.any(times < 0) or np.any(np.diff(times) < 0):
            raise SpecError(f"times must be non-decreasing and >= 0, got {times}")
        smoke = np.array(smoke, dtype=np.float64)
        u, v = self.at_rest(smoke.shape[0])
        frames = np.empty((3, smoke.shape[0], len(times), self.n, self.n))
        now = 0.0
        for k, time in enumerate(times):
            smoke, u, v = self.advance(smoke, u, v, float(time) - now)
            now = float(time)
            frames[:, :, k] = smoke, u[:, :-1], v[:, :, :-1]
        return frames[0], frames[1], frames[2]

    def advance(
        self, smoke: np.ndarray, u: np.ndarray, v: np.ndarray, duration: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integrate over ``duration`` in equal steps of at most ``max_step``."""
        steps = math.ceil(duration / self.max_step - 1e-9)
        for _ in range(steps):
            smoke, u, v = self.step(smoke, u, v, duration / steps)
        return smoke, u, v

    def step(
        self, smoke: np.ndarray, u: np.ndarray, v: np.ndarray, dt: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step in phiflow's order: smoke, buoyancy, velocity advection, diffusion,
        projection."""
        smoke = advect_smoke(smoke, u, v, dt, self.dx)
        u, v = advect_velocity(u, v, dt, self.dx)
        # The mean smoke's force is hydrostatic, all pressure gradient: leaving it out changes
        # nothing after the projection but spares the diffusion its jump at the walls.
        anomaly = smoke - smoke.mean(axis=(1, 2), keepdims=True)
        v[:, :, 1:-1] += dt * self.buoyancy * 0.5 * (anomaly[:, :, 1:] + anomaly[:, :, :-1])
        u, v = diffuse(u, v, self.nu * dt / self.dx**2)
        return (smoke, *self.project(u, v))

    def project(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The divergence-free part of ``(u, v)``: minus the gradient of the φ with ∇²φ = ∇·v,
        ∂φ/∂n = 0 on the walls, solved exactly in the DCT-II basis."""
        phi_hat = sfft.dctn(divergence(u, v, self.dx), type=2, axes=(1, 2), norm="ortho")
        phi = sfft.idctn(phi_hat * self._inverse_laplacian, type=2, axes=(1, 2), norm="ortho")
        u, v = u.copy(), v.copy()
        u[:, 1:-1] -= np.diff(phi, axis=1) / self.dx
        v[:, :, 1:-1] -= np.diff(phi, axis=2) / self.dx
        return u, v


def divergence(u: np.ndarray, v: np.ndarray, dx: float) -> np.ndarray:
    """``(batch, n, n)`` divergence per cell of face velocities ``u`` ``(batch, n + 1, n)`` and
    ``v`` ``(batch, n, n + 1)``: net outflow over the cell's area."""
    return (np.diff(u, axis=1) + np.diff(v, axis=2)) / dx


def advect_velocity(u: np.ndarray, v: np.ndarray, dt: float, dx: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Semi-Lagrangian self-advection: each face value is the velocity interpolated where the
    flow at the face comes from, one Euler step back. A wall face does not move (its velocity is
    zero and the other component is left zero there), so it samples itself and stays zero."""
    n = u.shape[2]
    v_at_u = np.zeros_like(u)
    v_at_u[:, 1:-1] = _centres_to_faces(0.5 * (v[:, :, 1:] + v[:, :, :-1]), axis=1)
    u_at_v = np.zeros_like(v)
    u_at_v[:, :, 1:-1] = _centres_to_faces(0.5 * (u[:, 1:] + u[:, :-1]), axis=2)
    faces = np.arange(n + 1, dtype=np.float64)
    cells = np.arange(n, dtype=np.float64)
    return (_bilinear(u, faces[:, None] - dt / dx * u, cells[None, :] - dt / dx * v_at_u),
            _bilinear(v, cells[:, None] - dt / dx * u_at_v, faces[None, :] - dt / dx * v))


def _centres_to_faces(values: np.ndarray, axis: int) -> np.ndarray:
    """Means of neighbouring values along ``axis`` (one fewer)."""
    return 0.5 * (np.take(values, range(1, values.shape[axis]), axis=axis)
                  + np.take(values, range(values.shape[axis] - 1), axis=axis))


def _bilinear(grid: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``grid`` ``(batch, a, b)`` interpolated bilinearly at fractional indices (broadcast to
    ``(batch, a, b)``), zero beyond its edges (phiflow's zero extrapolation)."""
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1)))
    rows = np.clip(rows + 1, 0, padded.shape[1] - 1)
    columns = np.clip(columns + 1, 0, padded.shape[2] - 1)
    i = np.minimum(rows.astype(np.intp), padded.shape[1] - 2)
    j = np.minimum(columns.astype(np.intp), padded.shape[2] - 2)
    wi, wj = rows - i, columns - j
    b = np.arange(grid.shape[0])[:, None, None]
    return ((1 - wi) * ((1 - wj) * padded[b, i, j] + wj * padded[b, i, j + 1])
            + wi * ((1 - wj) * padded[b, i + 1, j] + wj * padded[b, i + 1, j + 1]))


def diffuse(u: np.ndarray, v: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Explicit viscous diffusion by ``rate`` = ν Δt / Δx², zero ghost values beyond the walls;
    cut into sub-steps of at most 1/4, the 2D explicit scheme's stability limit."""
    steps = max(1, math.ceil(4 * rate - 1e-12))
    u, v = u.copy(), v.copy()
    for _ in range(steps):
        u[:, 1:-1] += rate / steps * _laplacian(u)[:, 1:-1]
        v[:, :, 1:-1] += rate / steps * _laplacian(v)[:, :, 1:-1]
    return u, v


def _laplacian(values: np.ndarray) -> np.ndarray:
    """Five-point Laplacian (times Δx²) of ``(batch, a, b)`` values, zero beyond the edges."""
    padded = np.pad(values, ((0, 0), (1, 1), (1, 1)))
    return (padded[:, 2:, 1:-1] + padded[:, :-2, 1:-1] + padded[:, 1:-1, 2:]
            + padded[:, 1:-1, :-2] - 4 * values)


def advect_smoke(smoke: np.ndarray, u: np.ndarray, v: np.ndarray, dt: float, dx: float
                 ) -> np.ndarray:
    """Conservative, bounded advection of cell-centred smoke by face velocities over ``dt``.

    MUSCL fluxes with the monotonized-central limiter and Heun's method. A limited face value
    lies between the cell's neighbours and below twice the cell's value, so a stage that lets no
    cell lose more than half its smoke keeps every cell non-negative; the sub-steps are chosen
    so. Walls pass no flux, so the total is kept to round-off.
    """
    outflow = (np.maximum(u[:, 1:], 0) - np.minimum(u[:, :-1], 0)
               + np.maximum(v[:, :, 1:], 0) - np.minimum(v[:, :, :-1], 0)) / dx
    steps = max(1, math.ceil(dt * float(outflow.max()) / _SMOKE_CFL - 1e-12))
    h = dt / steps
    for _ in range(steps):
        stage = smoke + h * _smoke_tendency(smoke, u, v, dx)
        smoke = 0.5 * (smoke + stage + h * _smoke_tendency(stage, u, v, dx))
    return smoke


def _smoke_tendency(smoke: np.ndarray, u: np.ndarray, v: np.ndarray, dx: float) -> np.ndarray:
    """−∇·(v s) per cell from upwinded, limited face values."""
    flux_x = np.zeros_like(u)
    flux_x[:, 1:-1] = _upwind_flux(smoke, u[:, 1:-1], axis=1)
    flux_y = np.zeros_like(v)
    flux_y[:, :, 1:-1] = _upwind_flux(smoke, v[:, :, 1:-1], axis=2)
    return -(np.diff(flux_x, axis=1) + np.diff(flux_y, axis=2)) / dx


def _upwind_flux(smoke: np.ndarray, velocity: np.ndarray, axis: int) -> np.ndarray:
    """Flux through the interior faces along ``axis``: the velocity times the limited value
    reconstructed in the upwind cell."""
    half_slope = 0.5 * _limited_slopes(smoke, axis)
    count = smoke.shape[axis]
    before, after = range(count - 1), range(1, count)
    from_before = np.take(smoke + half_slope, before, axis=axis)
    from_after = np.take(smoke - half_slope, after, axis=axis)
    return velocity * np.where(velocity > 0, from_before, from_after)


def _limited_slopes(smoke: np.ndarray, axis: int) -> np.ndarray:
    """Monotonized-central slopes per cell along ``axis``; zero at the walls (zero-gradient
    extrapolation) and at extrema."""
    steps = np.diff(smoke, axis=axis)
    pad = [(0, 0)] * smoke.ndim
    pad[axis] = (1, 0)
    back = np.pad(steps, pad)
    pad[axis] = (0, 1)
    ahead = np.pad(steps, pad)
    size = np.minimum(2 * np.minimum(np.abs(back), np.abs(ahead)), 0.5 * np.abs(back + ahead))
    return np.where(back * ahead > 0, np.sign(back) * size, 0.0)


def initial_smoke(rng: np.random.Generator, n: int, length: float, scale: float,
                  smoothness: float = 6.0) -> np.ndarray:
    """phiflow's ``abs(Noise(scale, smoothness))`` on an ``n × n`` grid of side ``length``.

    Returns:
        ``(n, n)`` float64 field ≥ 0 (of a zero-mean, unit-variance noise).
    """
    k = np.fft.fftfreq(n, d=1.0 / n) * scale / length
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    weights = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0.1) ** smoothness
    white = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    noise = np.fft.ifft2(white * weights).real
    noise /= noise.std()
    return np.abs(noise - noise.mean())


def split_sizes(samples: int) -> dict[str, int]:
    """PDEArena's 100/25/25 split scaled to ``samples``; from 3 samples on, valid and test get
    at least one each, train the rest."""
    held_out = max(1, samples // 6) if samples >= 3 else 0
    return {"train": samples - 2 * held_out, "valid": held_out, "test": held_out}


def file_name(split: str, *, seed: int, buoyancy: float, count: int) -> str:
    """PDEArena's name of a split's file (only train files carry their sample count)."""
    name = f"NavierStokes2D_{split}_{seed + SEED_OFFSETS[split]}_{buoyancy:.5f}"
    return f"{name}_{count}.h5" if split == "train" else f"{name}.h5"


def split_files(directory: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The files of ``directory`` PDEArena's loader takes per split: names containing the
    split's name and ``h5``, sorted. A name matching two splits is refused.

    Raises:
        DataError: a file name contains more than one split's name.
    """
    found: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for path in sorted(Path(directory).iterdir()):
        matches = [split for split in SPLITS if split in path.name and "h5" in path.name]
        if len(matches) > 1:
            raise DataError(f"{path}: the name contains {matches}; PDEArena's loader would read "
                            f"it as each of them")
        if matches and path.is_file():
            found[matches[0]].append(path)
    return found


def generate(
    out: str | os.PathLike[str],
    *,
    samples: int = DEFAULT_SAMPLES,
    resolution: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    frames: int | None = None,
    nu: float = 0.01,
    buoyancy: float = 0.5,
    length: float = 32.0,
    frame_dt: float = 6.0,
    spin_up: float = 13.5,
    max_step: float = 1.5,
    smoke_scale: float = 11.0,
    **unknown: Any,
) -> Path:
    """Write a buoyant-smoke data set as PDEArena's generator does, atomically.

    Args:
        out: a directory (created if missing) to receive PDEArena's train/valid/test files, or a
            ``.h5``/``.hdf5`` path for one file holding the three groups; the data appear only
            once complete.
        samples: trajectories, split 4:1:1 into train/valid/test (:func:`split_sizes`).
        resolution: cells per axis; ``None`` means the public 128.
        seed: seed of ``np.random.default_rng``; the same arguments give the same data.
        progress: receives ``update(k)`` as samples finish.
        frames: saved frames per trajectory; ``None`` means the public 14.
        nu: kinematic viscosity.
        buoyancy: upward force per unit smoke (PDEArena's ``buo_y``).
        length: side of the square box.
        frame_dt: time between saved frames.
        spin_up: time of the first saved frame.
        max_step: the longest solver step (PDEArena's 1.5).
        smoke_scale: the ``scale`` of the initial noise.

    Returns:
        ``out`` as a Path.

    Raises:
        SpecError: a bad argument, or ``out`` already holds split files of another set (which
            PDEArena's loader would mix into this one).
    """
    allowed = ("nu", "buoyancy", "length", "frame_dt", "spin_up", "max_step", "smoke_scale")
    if unknown:
        raise SpecError(f"ns2d: unknown parameter(s) {sorted(unknown)}; allowed: {allowed}")
    parameters: dict[str, Any] = {
        "samples": check_int("samples", samples, minimum=1),
        "resolution": check_int("resolution",
                                DEFAULT_RESOLUTION if resolution is None else resolution,
                                minimum=4),
        "frames": check_int("frames", DEFAULT_FRAMES if frames is None else frames, minimum=1),
        "seed": check_int("seed", seed, minimum=0),
        "nu": check_real("nu", nu, minimum=0.0),
        "buoyancy": check_real("buoyancy", buoyancy),
        "length": check_real("length", length, minimum=0.0, strict=True),
        "frame_dt": check_real("frame_dt", frame_dt, minimum=0.0, strict=True),
        "spin_up": check_real("spin_up", spin_up, minimum=0.0),
        "max_step": check_real("max_step", max_step, minimum=0.0, strict=True),
        "smoke_scale": check_real("smoke_scale", smoke_scale, minimum=0.0, strict=True),
    }
    target = Path(out)
    sizes = {split: count for split, count in split_sizes(samples).items() if count}
    names = {split: file_name(split, seed=parameters["seed"], buoyancy=parameters["buoyancy"],
                              count=count) for split, count in sizes.items()}
    one_file = target.suffix in HDF5_SUFFIXES
    if not one_file:
        _refuse_other_sets(target, set(names.values()))
    with _staging(target, one_file) as staging:
        files = {split: staging / ("set.h5" if one_file else names[split]) for split in sizes}
        handles = {path: h5py.File(path, "a") for path in set(files.values())}
        try:
            groups = {split: _create_split(handles[files[split]], split, count, parameters)
                      for split, count in sizes.items()}
            _solve_into(groups, parameters, progress)
        finally:
            for handle in handles.values():
                handle.close()
    return target


def _refuse_other_sets(directory: Path, names: set[str]) -> None:
    if not directory.is_dir():
        return
    strays = [path.name for paths in split_files(directory).values() for path in paths
              if path.name not in names]
    if strays:
        raise SpecError(f"{directory} already holds {strays}, which PDEArena's loader would mix "
                        f"into this set; remove them or write to another directory")


@contextmanager
def _staging(target: Path, one_file: bool) -> Iterator[Path]:
    """A hidden folder beside (or in) ``target`` to write into; its files move to ``target``
    once the block completes, and it is removed whatever happens."""
    home = target.parent if one_file else target
    staging = home / f".ns2d-{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    try:
        yield staging
        if one_file:
            os.replace(staging / "set.h5", target)
        else:
            for path in staging.iterdir():
                os.replace(path, target / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _create_split(handle: h5py.File, split: str, count: int, parameters: dict[str, Any]
                  ) -> h5py.Group:
    """The group ``split`` with empty fields and filled coordinates for ``count`` samples."""
    handle.attrs["nu"] = parameters["nu"]
    handle.attrs["buoyancy"] = parameters["buoyancy"]
    write_label(handle, "ns2d", parameters)
    n, frames = parameters["resolution"], parameters["frames"]
    group = handle.create_group(split)
    for key in FIELDS:
        group.create_dataset(key, (count, frames, n, n), dtype=np.float64)
    dx = parameters["length"] / n
    per_sample = {
        "t": _frame_times(parameters),
        "dt": parameters["frame_dt"],
        "x": (np.arange(n) + 0.5) * dx,
        "dx": dx,
        "y": (np.arange(n) + 0.5) * dx,
        "dy": dx,
        "buo_y": parameters["buoyancy"],
    }
    for key, value in per_sample.items():
        value = np.asarray(value, dtype=np.float64)
        group.create_dataset(key, data=np.broadcast_to(value, (count, *value.shape)))
    return group


def _frame_times(parameters: dict[str, Any]) -> np.ndarray:
    return parameters["spin_up"] + parameters["frame_dt"] * np.arange(parameters["frames"])


def _solve_into(groups: dict[str, h5py.Group], parameters: dict[str, Any],
                progress: Progress | None) -> None:
    """Solve every sample, train first, in batches, and write it to its group."""
    n, length = parameters["resolution"], parameters["length"]
    solver = SmokeSolver(n, length=length, nu=parameters["nu"],
                         buoyancy=parameters["buoyancy"], max_step=parameters["max_step"])
    times = _frame_times(parameters)
    rng = np.random.default_rng(parameters["seed"])
    rows = [(group, row) for group in groups.values() for row in range(group["u"].shape[0])]
    batch_size = max(1, _BATCH_CELLS // n**2)
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        smoke0 = np.stack([initial_smoke(rng, n, length, parameters["smoke_scale"])
                           for _ in batch])
        results = solver.run(smoke0, times)
        for j, (group, row) in enumerate(batch):
            for key, values in zip(FIELDS, results, strict=True):
                group[key][row] = values[j]
        if progress is not None:
            progress.update(len(batch))


@dataclass(frozen=True)
class _Part:
    """One split's group in one file: ``count`` samples of ``shape`` (frames, x, y)."""

    split: str
    file: Path
    count: int
    shape: tuple[int, ...]


def read(path: str | os.PathLike[str], selection: Selection | None = None) -> PDEData:
    """Read PDEArena's Navier–Stokes data (ours or public): a directory of split files or one
    file, unchanged.

    Samples are ordered train, valid, test (files of a split by name). A selection applies to
    each split: every ``sample_stride``-th sample of it, and ``max_samples`` shared out in the
    proportions of the splits (valid and test at least one each from 3 samples on).

    Args:
        path: a directory (the files :func:`split_files` takes) or an HDF5 file.
        selection: the samples, frames and grid points to read; ``None`` reads everything.

    Returns:
        ``PDEData`` with ``trajectories`` ``(N, T, X, Y, 3)`` float32, fields (smoke, vx, vy);
        ``coords`` ``(x, y)`` and ``times`` ``(T,)`` of the first sample; ``attrs`` with
        ``buoyancy`` (from the root attribute or ``buo_y``), ``nu`` when the file has it and,
        when all three splits have samples, ``split`` (:data:`SPLIT_ATTR`): the rows per split.
    """
    select = selection or Selection()
    parts = _survey(Path(path))
    shape = parts[0].shape
    for part in parts:
        if part.shape != shape:
            raise DataError(f"{part.file} [{part.split}]: frames×grid {part.shape}, but "
                            f"{parts[0].file} [{parts[0].split}] has {shape}")
    counts = {split: sum(p.count for p in parts if p.split == split) for split in SPLITS}
    kept = _share(counts, select)
    frames, *space = (select.frames(shape[0]), *select.space(shape[1:]))
    grid = tuple(selected(part, n) for part, n in zip(space, shape[1:], strict=True))
    trajectories = np.empty((sum(kept.values()), selected(frames, shape[0]), *grid, len(FIELDS)),
                            dtype=np.float32)
    written = 0
    for split in SPLITS:
        rows = range(0, counts[split], select.sample_stride)[:kept[split]]
        start = 0
        for part in (p for p in parts if p.split == split):
            local = _within(rows, start, part.count)
            written += _read_part(part, (local, frames, *space), trajectories, written)
            start += part.count
    first = parts[0]
    with open_h5(first.file) as handle:
        group = handle[first.split]
        attrs = _physical_attrs(handle, group)
        coords = (read_float(group["x"], (0, space[0]), key="x", source=first.file),
                  read_float(group["y"], (0, space[1]), key="y", source=first.file))
        times = read_float(group["t"], (0, frames), key="t", source=first.file)
    if all(kept.values()):
        attrs[SPLIT_ATTR] = kept
    return PDEData(pde="ns2d", trajectories=trajectories, coords=coords, times=times,
                   attrs=attrs)


def _survey(path: Path) -> list[_Part]:
    """The non-empty split groups at ``path`` (a directory of split files or one file), after
    checking their keys and shapes."""
    if path.is_dir():
        files = split_files(path)
        if not any(files.values()):
            raise DataError(f"{path}: no file whose name contains one of {SPLITS} and 'h5' "
                            f"(PDEArena's file names, e.g. NavierStokes2D_train_…h5)")
        sources = [(split, file) for split in SPLITS for file in files[split]]
    else:
        with open_h5(path) as handle:
            present = [split for split in SPLITS if split in handle]
            if not present:
                raise DataError(f"{path}: none of the groups {SPLITS} (found: {sorted(handle)})")
        sources = [(split, path) for split in present]
    parts = []
    for split, file in sources:
        with open_h5(file) as handle:
            if split not in handle:
                raise DataError(f"{file}: no group {split!r}, which its name promises "
                                f"(found: {sorted(handle)})")
            count, *shape = _check_split(handle, split, file)
        if count:
            parts.append(_Part(split, file, count, tuple(shape)))
    if not parts:
        raise DataError(f"{path}: the groups {[split for split, _ in sources]} hold no samples")
    return parts


def _share(counts: dict[str, int], select: Selection) -> dict[str, int]:
    """Samples to keep per split: every ``sample_stride``-th, ``max_samples`` shared out in
    proportion (valid and test at least one each when there are 3 to share)."""
    available = {split: len(range(0, count, select.sample_stride))
                 for split, count in counts.items()}
    total = sum(available.values())
    cap = select.max_samples
    if cap is None or cap >= total:
        return available
    floor = 1 if cap >= 3 else 0
    kept = {split: min(available[split], max(floor, available[split] * cap // total))
            for split in ("valid", "test")}
    return {"train": min(available["train"], cap - sum(kept.values())), **kept}


def _read_part(part: _Part, index: tuple[slice, ...], out: np.ndarray, row: int) -> int:
    """Read the ``index`` of ``part``'s fields into ``out`` from ``row`` on; the rows read."""
    rows = selected(index[0], part.count)
    if rows:
        with open_h5(part.file) as handle:
            group = handle[part.split]
            for i, key in enumerate(FIELDS):
                group[key].read_direct(out, source_sel=index,
                                       dest_sel=np.s_[row:row + rows, ..., i])
    return rows


def _physical_attrs(handle: h5py.File, group: h5py.Group) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if "buoyancy" in handle.attrs:
        attrs["buoyancy"] = float(handle.attrs["buoyancy"])
    elif "buo_y" in group:
        attrs["buoyancy"] = float(group["buo_y"][0])
    if "nu" in handle.attrs:
        attrs["nu"] = float(handle.attrs["nu"])
    return attrs


def _within(rows: range, start: int, count: int) -> slice:
    """The rows (a range with a positive step) among ``start … start + count - 1``, as a slice
    of that block."""
    first = rows.start
    if first < start:
        first += -(-(start - first) // rows.step) * rows.step
    stop = min(rows.stop, start + count)
    if first >= stop:
        return slice(0, 0)
    return slice(first - start, stop - start, rows.step)


def _check_split(handle: h5py.File, name: str, path: str | os.PathLike[str]
                 ) -> tuple[int, int, int, int]:
    """The ``(samples, frames, x, y)`` shape of the group ``name``, after checking its keys,
    shapes and dtypes."""
    group = handle[name]
    source = f"{path} [{name}]"
    if not isinstance(group, h5py.Group):
        raise DataError(f"{source}: expected a group, found a dataset")
    fields = [require_dataset(group, key, ndim=4, source=source) for key in FIELDS]
    for key, field in zip(FIELDS, fields, strict=True):
        require_float(field, key=f"{name}/{key}", source=path)
        if field.shape != fields[0].shape:
            raise DataError(f"{source}: {key!r} has shape {field.shape}, 'u' has "
                            f"{fields[0].shape}")
    count, frames, nx, ny = fields[0].shape
    expected = {"t": (count, frames), "x": (count, nx), "y": (count, ny)}
    for key, shape in expected.items():
        dataset = require_dataset(group, key, ndim=2, source=source)
        if dataset.shape != shape:
            raise DataError(f"{source}: {key!r} has shape {dataset.shape}, expected {shape}")
    return count, frames, nx, ny


def detect(handle: h5py.File) -> bool:
    """True when a train/valid/test group of the open file holds ``u``, ``vx`` and ``vy``."""
    return any(
        isinstance(handle.get(name), h5py.Group)
        and all(isinstance(handle[name].get(key), h5py.Dataset) for key in FIELDS)
        for name in SPLITS
    )


def is_file_set(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory holding files PDEArena's loader would take."""
    return Path(path).is_dir() and any(split_files(path).values())


LAYOUT = Layout("pdearena-ns2d", read,
                "PDEArena NavierStokes2D_{train,valid,test}_*.h5 (a directory of them, or one)",
                family="ns2d", periodic=False)


FAMILY = PDEFamily(
    name="ns2d",
    spatial_dims=2,
    generate=generate,
    read=read,
    detect=detect,
    default_resolution=DEFAULT_RESOLUTION,
    default_samples=DEFAULT_SAMPLES,
    fields=3,
)
