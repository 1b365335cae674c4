"""2D incompressible Navier–Stokes with buoyant smoke, in PDEArena's ``NavierStokes2D`` layout.

The problem (PDEArena, Gupta & Brandstetter 2022): a passive scalar s ("smoke") is carried by an
incompressible flow and pushes it upwards with a Boussinesq force (0, b·s):

    ∂v/∂t + (v·∇)v = −∇p + ν∇²v + (0, b·s),   ∇·v = 0,
    ∂s/∂t + v·∇s = κ∇²s.

PDEArena ran phiflow 2.1 in a closed 32 × 32 box (staggered grid, semi-Lagrangian advection,
pressure projection; ν = 0.01, b = 0.5, 128², internal Δt = 1.5, 64 steps of which the first 8
are dropped and every 4th kept: 14 frames at t = 13.5, 19.5, …, 91.5, i.e. 6 apart). We solve the
same equations on a *periodic* 32 × 32 box with a pseudo-spectral vorticity–stream-function
method (Orszag's 2/3 rule against aliasing, fourth-order Runge–Kutta with an integrating factor
for the diffusion terms, CFL-limited steps that land exactly on the frame times) and keep
PDEArena's frame times. In vorticity form ω = ∂v_y/∂x − ∂v_x/∂y the equations read

    ∂ω/∂t + ∇·(v ω) = ν∇²ω + b ∂s/∂x,   ∂s/∂t + ∇·(v s) = κ∇²s,   v = (∂ψ/∂y, −∂ψ/∂x), −∇²ψ = ω,

and the mean of the buoyancy force, which a periodic box cannot take up, is balanced by a
hydrostatic pressure gradient. PDEArena's smoke has no diffusivity of its own; its semi-Lagrangian
advection smears it numerically. A spectral method does not, and the under-resolved smoke rings
and goes negative, so we give it a small diffusivity κ = 0.02 (Schmidt number ν/κ = 0.5).

Initial state as in PDEArena: velocity zero, smoke a positive random field with features of
about 11 length units (PDEArena: ``abs(Noise(scale=11, smoothness=6))``; ours: a smoothed
absolute value of a Gaussian-filtered white noise of unit variance).

Public layout (``NavierStokes2D_{mode}_{seed}_{buoyancy:.5f}[_{N}].h5``): groups ``train``,
``valid``, ``test`` (a public file holds one of them, ours all three, split 80/10/10), each with

- ``u`` (smoke), ``vx``, ``vy``: float64 ``(N, T, X, Y)``, x before y (phiflow's order);
- ``t`` float64 ``(N, T)``; ``dt`` float64 ``(N,)``: time between frames;
- ``x``, ``y`` float64 ``(N, X)``, ``(N, Y)``; ``dx``, ``dy``, ``buo_y`` float64 ``(N,)``.

PDEArena writes nominal coordinates (``t = linspace(18, 102, 14)``, ``x = linspace(0, 32, 128)``,
``dx = 32/127``, ``dt = 6``); we write the true ones of our grid and frames (cell centres,
``dx = 32/128``, ``t = 13.5 + 6k``). We add the root attributes ``nu`` and ``buoyancy``, which
PDEArena's loader ignores.
"""

from __future__ import annotations

import math
import os
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
    atomic_h5,
    check_int,
    check_real,
    open_h5,
    read_float,
    require_dataset,
    require_float,
    selected,
)
from autoq.errors import DataError, SpecError

DEFAULT_RESOLUTION = 128
DEFAULT_SAMPLES = 7_800  # PDEArena's NavierStokes-2D: 5200 train, 1300 valid, 1300 test
DEFAULT_FRAMES = 14
SPLITS = ("train", "valid", "test")
FIELDS = ("u", "vx", "vy")
_WORKERS = max(1, min(os.cpu_count() or 1, 4))  # threads per FFT; transforms of ≤ 128² are small


class VorticitySolver:
    """Pseudo-spectral solver of 2D incompressible flow with a buoyant scalar, periodic box.

    Fields live on an ``n × n`` grid of cell centres ``(i + 1/2)·length/n``, axis 0 along x and
    axis 1 along y (up); spectral fields are ``rfft2`` of those, ``(..., n, n//2 + 1)``, kept
    dealiased (modes with |m| ≥ n/3 in either direction are zero).

    Args:
        n: grid points per axis (even, ≥ 8).
        length: side of the square box.
        nu: kinematic viscosity ν (0 switches viscosity off).
        buoyancy: b in the force (0, b·s) (0 switches buoyancy off).
        diffusivity: κ of the scalar.
        cfl: step size as a fraction of the grid spacing per maximum speed; fourth-order
            Runge–Kutta with the 2/3 rule is stable up to about 0.95 in any flow direction.
        max_dt: the largest step, used while the flow is (nearly) at rest.
    """

    def __init__(
        self,
        n: int,
        *,
        length: float = 32.0,
        nu: float = 0.01,
        buoyancy: float = 0.5,
        diffusivity: float = 0.02,
        cfl: float = 0.8,
        max_dt: float = 0.25,
    ) -> None:
        if n < 8 or n % 2:
            raise SpecError(f"resolution={n!r}: must be an even integer >= 8")
        self.n, self.length = n, length
        self.nu, self.buoyancy, self.diffusivity = nu, buoyancy, diffusivity
        self.cfl, self.max_dt = cfl, max_dt
        modes_x = np.fft.fftfreq(n, d=1.0 / n)[:, None]
        modes_y = np.fft.rfftfreq(n, d=1.0 / n)[None, :]
        self._ikx = 2j * math.pi / length * modes_x
        self._iky = 2j * math.pi / length * modes_y
        k2 = -(self._ikx**2 + self._iky**2).real
        self._inv_k2 = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
        self._keep = (np.abs(modes_x) < n / 3) & (modes_y < n / 3)
        # Diffusion rates of (ω, s), for the integrating factor exp(rate·dt).
        self._rates = np.stack([-nu * k2, -diffusivity * k2])[:, None]

    @property
    def coords(self) -> np.ndarray:
        """``(n,)`` cell-centre coordinates, the same along x and y."""
        return (np.arange(self.n) + 0.5) * (self.length / self.n)

    def to_spectral(self, field: np.ndarray) -> np.ndarray:
        """``(..., n, n)`` grid values → ``(..., n, n//2 + 1)`` dealiased coefficients."""
        return sfft.rfft2(field, workers=_WORKERS) * self._keep

    def to_physical(self, field_hat: np.ndarray) -> np.ndarray:
        """``(..., n, n//2 + 1)`` coefficients → ``(..., n, n)`` grid values."""
        return sfft.irfft2(field_hat, s=(self.n, self.n), workers=_WORKERS)

    def velocity(self, omega_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The divergence-free velocity ``(vx, vy)``, each ``(..., n, n)``, of a vorticity."""
        vx_hat, vy_hat = self._velocity_hat(omega_hat)
        return self.to_physical(vx_hat), self.to_physical(vy_hat)

    def advance(
        self, omega_hat: np.ndarray, smoke_hat: np.ndarray, duration: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Integrate vorticity and smoke over ``duration``, ending exactly at its end.

        Args:
            omega_hat: ``(..., n, n//2 + 1)`` spectral vorticity.
            smoke_hat: same shape, spectral smoke.
            duration: time to integrate (≥ 0).

        Returns:
            ``(omega_hat, smoke_hat)`` after ``duration``.
        """
        state = np.stack(np.broadcast_arrays(omega_hat, smoke_hat))
        elapsed = 0.0
        while duration - elapsed > 1e-12 * max(1.0, duration):
            k1, speed = self._tendency(state)
            limit = self.cfl * (self.length / self.n) / speed if speed > 0 else math.inf
            dt = min(self.max_dt, limit, duration - elapsed)
            state = self._step(state, dt, k1)
            elapsed += dt
        return state[0], state[1]

    def run(
        self, smoke: np.ndarray, times: np.ndarray, omega: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start from ``smoke`` (and ``omega``, default at rest) at t = 0; sample at ``times``.

        Args:
            smoke: ``(batch, n, n)`` initial smoke.
            times: ``(frames,)`` non-decreasing sample times ≥ 0.
            omega: ``(batch, n, n)`` initial vorticity, or ``None`` for a fluid at rest.

        Returns:
            ``(smoke, vx, vy)``, each ``(batch, frames, n, n)`` float64.
        """
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or np.any(times < 0) or np.any(np.diff(times) < 0):
            raise SpecError(f"times must be non-decreasing and >= 0, got {times}")
        smoke_hat = self.to_spectral(np.asarray(smoke, dtype=np.float64))
        omega_hat = np.zeros_like(smoke_hat) if omega is None else self.to_spectral(omega)
        frames = np.empty((3, smoke_hat.shape[0], len(times), self.n, self.n))
        now = 0.0
        for k, time in enumerate(times):
            omega_hat, smoke_hat = self.advance(omega_hat, smoke_hat, float(time) - now)
            now = float(time)
            frames[0, :, k] = self.to_physical(smoke_hat)
            frames[1, :, k], frames[2, :, k] = self.velocity(omega_hat)
        return frames[0], frames[1], frames[2]

    def _velocity_hat(self, omega_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        psi_hat = omega_hat * self._inv_k2
        return self._iky * psi_hat, -self._ikx * psi_hat

    def _tendency(self, state: np.ndarray) -> tuple[np.ndarray, float]:
        """Advection and buoyancy terms of ``state = (ω̂, ŝ)``, and the largest speed."""
        omega_hat, smoke_hat = state
        vx, vy, omega, smoke = self.to_physical(
            np.stack([*self._velocity_hat(omega_hat), omega_hat, smoke_hat])
        )
        # Flux form: the k = 0 mode of a divergence is exactly zero, so the smoke mean is kept.
        fluxes = sfft.rfft2(np.stack([vx * omega, vy * omega, vx * smoke, vy * smoke]),
                            workers=_WORKERS)
        tendency = np.stack([
            self.buoyancy * self._ikx * smoke_hat - self._ikx * fluxes[0] - self._iky * fluxes[1],
            -self._ikx * fluxes[2] - self._iky * fluxes[3],
        ])
        return tendency * self._keep, float(np.sqrt((vx * vx + vy * vy).max()))

    def _step(self, state: np.ndarray, dt: float, k1: np.ndarray) -> np.ndarray:
        """One integrating-factor RK4 (Lawson) step: diffusion exact, the rest fourth order."""
        half = np.exp(self._rates * (dt / 2))
        k2, _ = self._tendency(half * (state + dt / 2 * k1))
        k3, _ = self._tendency(half * state + dt / 2 * k2)
        k4, _ = self._tendency(half * half * state + dt * half * k3)
        return half * half * state + dt / 6 * (half * half * k1 + 2 * half * (k2 + k3) + k4)


def initial_smoke(rng: np.random.Generator, n: int, length: float, scale: float) -> np.ndarray:
    """A positive random smoke field with features of about ``scale`` length units.

    White noise filtered by a Gaussian of standard deviation ``scale/4``, scaled to unit
    variance, through the smooth absolute value ``sqrt(g² + 1/16) − 1/4`` (a plain ``|g|`` has
    kinks that a spectral method would ring at).

    Returns:
        ``(n, n)`` float64 field ≥ 0.
    """
    k = 2 * math.pi / length * np.fft.fftfreq(n, d=1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    filtered = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n)))
                            * np.exp(-0.5 * (scale / 4) ** 2 * k2)).real
    g = filtered / filtered.std()
    return np.sqrt(g * g + 1 / 16) - 1 / 4


def split_sizes(samples: int) -> dict[str, int]:
    """80/10/10 split of ``samples`` into train/valid/test, train taking the remainder."""
    held_out = samples // 10
    return {"train": samples - 2 * held_out, "valid": held_out, "test": held_out}


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
    diffusivity: float = 0.02,
    smoke_scale: float = 11.0,
    **unknown: Any,
) -> Path:
    """Write a buoyant-smoke Navier–Stokes data set in PDEArena's layout, atomically.

    Args:
        out: the HDF5 file to write; it appears only once complete.
        samples: trajectories, split 80/10/10 into the groups train/valid/test.
        resolution: grid points per axis (even); ``None`` means the public 128.
        seed: seed of ``np.random.default_rng``; the same arguments give the same file content.
        progress: receives ``update(k)`` as samples finish.
        frames: saved frames per trajectory; ``None`` means the public 14.
        nu: kinematic viscosity.
        buoyancy: upward force per unit smoke (PDEArena's ``buo_y``).
        length: side of the square box.
        frame_dt: time between saved frames.
        spin_up: time of the first saved frame.
        diffusivity: the smoke's diffusivity (see the module docstring).
        smoke_scale: feature size of the initial smoke.

    Returns:
        ``out`` as a Path.
    """
    allowed = ("nu", "buoyancy", "length", "frame_dt", "spin_up", "diffusivity", "smoke_scale")
    if unknown:
        raise SpecError(f"ns2d: unknown parameter(s) {sorted(unknown)}; allowed: {allowed}")
    samples = check_int("samples", samples, minimum=1)
    n = check_int("resolution", DEFAULT_RESOLUTION if resolution is None else resolution,
                   minimum=8)
    if n % 2:
        raise SpecError(f"resolution={n}: must be even")
    frames = check_int("frames", DEFAULT_FRAMES if frames is None else frames, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    nu = check_real("nu", nu, minimum=0.0)
    diffusivity = check_real("diffusivity", diffusivity, minimum=0.0)
    spin_up = check_real("spin_up", spin_up, minimum=0.0)
    length = check_real("length", length, minimum=0.0, strict=True)
    frame_dt = check_real("frame_dt", frame_dt, minimum=0.0, strict=True)
    smoke_scale = check_real("smoke_scale", smoke_scale, minimum=0.0, strict=True)
    buoyancy = check_real("buoyancy", buoyancy)

    solver = VorticitySolver(n, length=length, nu=nu, buoyancy=buoyancy, diffusivity=diffusivity)
    times = spin_up + frame_dt * np.arange(frames)
    rng = np.random.default_rng(seed)
    target = Path(out)
    with atomic_h5(target) as handle:
        handle.attrs["nu"] = nu
        handle.attrs["buoyancy"] = buoyancy
        rows = []  # (group, row) of every sample, in generation order
        for split, count in split_sizes(samples).items():
            group = _create_split(handle.create_group(split), count, times, solver, frame_dt,
                                  buoyancy)
            rows += [(group, row) for row in range(count)]
        # Batched FFTs pay only while a batch stays in cache: per sample and step, 4 samples of
        # 32² run 2.4x faster than one, 4 of 128² 2x slower (measured on 2 cores).
        batch_size = max(1, 64**2 // n**2)
        for start in range(0, samples, batch_size):
            batch = rows[start:start + batch_size]
            smoke0 = np.stack([initial_smoke(rng, n, length, smoke_scale) for _ in batch])
            results = solver.run(smoke0, times)
            for j, (group, row) in enumerate(batch):
                for key, values in zip(FIELDS, results, strict=True):
                    group[key][row] = values[j]
            if progress is not None:
                progress.update(len(batch))
    return target


def _create_split(
    group: h5py.Group,
    count: int,
    times: np.ndarray,
    solver: VorticitySolver,
    frame_dt: float,
    buoyancy: float,
) -> h5py.Group:
    """Empty field datasets and filled coordinate datasets for ``count`` samples."""
    n = solver.n
    for key in FIELDS:
        group.create_dataset(key, (count, len(times), n, n), dtype=np.float64)
    per_sample = {
        "t": times,
        "dt": frame_dt,
        "x": solver.coords,
        "dx": solver.length / n,
        "y": solver.coords,
        "dy": solver.length / n,
        "buo_y": buoyancy,
    }
    for key, value in per_sample.items():
        value = np.asarray(value, dtype=np.float64)
        group.create_dataset(key, data=np.broadcast_to(value, (count, *value.shape)))
    return group


def read(path: str | os.PathLike[str], selection: Selection | None = None) -> PDEData:
    """Read a file in PDEArena's Navier–Stokes layout (ours or a public one) unchanged.

    The groups present among ``train``, ``valid``, ``test`` are concatenated in that order; a
    selection counts samples across them in that order.

    Args:
        path: the HDF5 file.
        selection: the samples, frames and grid points to read; ``None`` reads everything.

    Returns:
        ``PDEData`` with ``trajectories`` ``(N, T, X, Y, 3)`` float32, fields (smoke, vx, vy);
        ``coords`` ``(x, y)`` and ``times`` ``(T,)`` of the first sample; ``attrs`` with
        ``buoyancy`` (from the root attribute or ``buo_y``) and ``nu`` when the file has it.
    """
    select = selection or Selection()
    with open_h5(path) as handle:
        groups = [name for name in SPLITS if name in handle]
        if not groups:
            raise DataError(f"{path}: none of the groups {SPLITS} (found: {sorted(handle)})")
        parts = [_check_split(handle, name, path) for name in groups]
        filled = [(group, count) for group, count in parts if count > 0]
        if not filled:
            raise DataError(f"{path}: the groups {groups} hold no samples")
        first = filled[0][0]
        shape = first["u"].shape[1:]
        for group, _ in filled:
            if group["u"].shape[1:] != shape:
                raise DataError(f"{path}: group {group.name!r} has frames×grid "
                                f"{group['u'].shape[1:]}, {first.name!r} has {shape}")
        for group, _ in filled:
            for key in FIELDS:
                require_float(group[key], key=f"{group.name}/{key}", source=path)
        total = sum(count for _, count in filled)
        rows = range(total)[select.samples(total)]
        frames, *space = (select.frames(shape[0]), *select.space(shape[1:]))
        grid = tuple(selected(part, n) for part, n in zip(space, shape[1:], strict=True))
        trajectories = np.empty((len(rows), selected(frames, shape[0]), *grid, len(FIELDS)),
                                dtype=np.float32)
        start = written = 0
        for group, count in filled:
            local = _within(rows, start, count)
            n = selected(local, count)
            for i, key in enumerate(FIELDS):
                if n:
                    group[key].read_direct(trajectories, source_sel=(local, frames, *space),
                                           dest_sel=np.s_[written:written + n, ..., i])
            start, written = start + count, written + n
        attrs: dict[str, Any] = {}
        if "buoyancy" in handle.attrs:
            attrs["buoyancy"] = float(handle.attrs["buoyancy"])
        elif "buo_y" in first:
            attrs["buoyancy"] = float(first["buo_y"][0])
        if "nu" in handle.attrs:
            attrs["nu"] = float(handle.attrs["nu"])
        return PDEData(
            pde="ns2d",
            trajectories=trajectories,
            coords=(read_float(first["x"], (0, space[0]), key="x", source=path),
                    read_float(first["y"], (0, space[1]), key="y", source=path)),
            times=read_float(first["t"], (0, frames), key="t", source=path),
            attrs=attrs,
        )


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
                 ) -> tuple[h5py.Group, int]:
    """The group ``name`` and its sample count, after checking its keys and shapes."""
    group = handle[name]
    source = f"{path} [{name}]"
    if not isinstance(group, h5py.Group):
        raise DataError(f"{source}: expected a group, found a dataset")
    fields = [require_dataset(group, key, ndim=4, source=source) for key in FIELDS]
    for key, field in zip(FIELDS[1:], fields[1:], strict=True):
        if field.shape != fields[0].shape:
            raise DataError(f"{source}: {key!r} has shape {field.shape}, 'u' has "
                            f"{fields[0].shape}")
    count, frames, nx, ny = fields[0].shape
    expected = {"t": (count, frames), "x": (count, nx), "y": (count, ny)}
    for key, shape in expected.items():
        dataset = require_dataset(group, key, ndim=2, source=source)
        if dataset.shape != shape:
            raise DataError(f"{source}: {key!r} has shape {dataset.shape}, expected {shape}")
    return group, count


def detect(handle: h5py.File) -> bool:
    """True when a train/valid/test group of the open file holds ``u``, ``vx`` and ``vy``."""
    return any(
        isinstance(handle.get(name), h5py.Group)
        and all(isinstance(handle[name].get(key), h5py.Dataset) for key in FIELDS)
        for name in SPLITS
    )


LAYOUT = Layout("pdearena-ns2d", read, "PDEArena NavierStokes2D_*.h5", family="ns2d")


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
