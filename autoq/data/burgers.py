"""1D viscous Burgers: classical-solver generator and reader of the PDEBench layout.

The equation, on the periodic unit interval, is

    u_t + (u²/2)_x = (ν/π) u_xx,

as in PDEBench (Takamoto et al., NeurIPS 2022 Datasets and Benchmarks), whose public files are
``1D_Burgers_Sols_Nu{ν}.hdf5``: ``tensor`` float32 ``(samples, 201, 1024)`` as (sample, t, x),
``x-coordinate`` ``(1024,)`` cell centres, ``t-coordinate`` ``(202,)`` (one entry longer than the
frames) and the file attribute ``Nu``.

The solver is ours: Strang splitting of the viscous term (central second difference, integrated
exactly through the FFT) around a MUSCL–Hancock finite-volume step for the flux (MC limiter,
Rusanov interface flux). Splitting
keeps the time step at the advective CFL limit for every ν; an explicit viscous term would need
``dt ~ dx² π / ν``, i.e. millions of steps at ν = 4 and 1024 cells.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from autoq.data._common import (
    Layout,
    PDEData,
    PDEFamily,
    Progress,
    Selection,
    atomic_h5,
    cell_centres,
    write_label,
)
from autoq.data.pdebench import SCALAR_1D, read_scalar_1d, scalar_1d_evidence
from autoq.errors import SpecError

T_END = 2.0
DEFAULT_FRAMES = 201
DEFAULT_RESOLUTION = 1024
DEFAULT_SAMPLES = 10_000
DEFAULT_NU = 0.01
CFL = 0.8
# PDEBench's initial states: waves 1…4 (``k_tot=4``), two of them drawn per state.
_WAVES = 4
_PICKS = 2

# Samples solved together. Larger batches amortise numpy's per-call overhead, but one step size
# serves the batch, so its fastest sample sets the pace; 8 to 32 ran alike at 1024 cells.
_BATCH = 16


def _mc_slopes(u_ext: np.ndarray) -> np.ndarray:
    """Monotonised-central limited slopes (as differences across one cell).

    Args:
        u_ext: ``(samples, m)`` cell values.

    Returns:
        ``(samples, m - 2)`` limited slopes of all but the first and last cell.
    """
    jumps = np.diff(u_ext, axis=1)
    left, right = jumps[:, :-1], jumps[:, 1:]
    centred = 0.5 * (left + right)
    bound = np.minimum(np.abs(left), np.abs(right))
    bound *= 2.0
    np.minimum(bound, np.abs(centred), out=bound)
    # Opposite one-sided jumps mark an extremum, where the limiter must flatten the slope.
    bound *= left * right > 0.0
    return np.copysign(bound, centred)


def _advect(u: np.ndarray, dt: float, dx: float) -> np.ndarray:
    """One MUSCL–Hancock step of u_t + (u²/2)_x = 0 on a periodic grid.

    Second order in space and time in one stage; stable for ``max|u| dt/dx ≤ 1``, and total
    variation diminishing at the default Courant number (checked in the tests).

    Args:
        u: ``(samples, cells)`` cell averages at time t.
        dt: time step.
        dx: cell width.

    Returns:
        ``(samples, cells)`` cell averages at t + dt.
    """
    # Two ghost cells each side: slopes are needed on the cells either side of every face.
    u_ext = np.concatenate([u[:, -2:], u, u[:, :2]], axis=1)
    core = u_ext[:, 1:-1]
    slope = _mc_slopes(u_ext)
    # Hancock predictor: both edge values advance dt/2 by the cell's own flux difference, which
    # for f = u²/2 and edges u ∓ slope/2 is -slope·u.
    shift = (-0.5 * dt / dx) * slope * core
    right_edge = core + 0.5 * slope + shift
    left_edge = right_edge - slope
    minus, plus = right_edge[:, :-1], left_edge[:, 1:]
    speed = np.maximum(np.abs(minus), np.abs(plus))
    flux = 0.25 * (minus * minus + plus * plus) - 0.5 * speed * (plus - minus)
    return u - (dt / dx) * (flux[:, 1:] - flux[:, :-1])


def solve_burgers(u0: np.ndarray, *, nu: float, t_out: np.ndarray, cfl: float = CFL) -> np.ndarray:
    """Solve u_t + (u²/2)_x = (ν/π) u_xx on the periodic interval [0, 1).

    Strang splitting: half a viscous step (the central second difference, integrated exactly
    through the FFT), one MUSCL–Hancock advective step, half a viscous step; consecutive viscous
    halves are merged. One adaptive step size
    ``dt = cfl·dx / max|u|`` serves the whole batch, and the solver lands exactly on every
    output time. Mean-preserving to round-off.

    Args:
        u0: ``(samples, cells)`` initial values at the cell centres ``(i + 0.5) / cells``.
        nu: the PDEBench viscosity ν; the diffusion coefficient is ν/π.
        t_out: ``(frames,)`` non-decreasing output times ≥ 0; the state at t = 0 is ``u0``.
        cfl: advective Courant number, at most 1.

    Returns:
        ``(samples, frames, cells)`` float64 solution at ``t_out``.
    """
    u = np.array(u0, dtype=np.float64, ndmin=2)
    times = np.asarray(t_out, dtype=np.float64)
    if u.ndim != 2:
        raise SpecError(f"u0 must have shape (samples, cells), got {np.shape(u0)}")
    if times.ndim != 1 or np.any(times < 0) or np.any(np.diff(times) < 0):
        raise SpecError(f"t_out must be non-decreasing times >= 0, got {t_out!r}")
    if not 0.0 < cfl <= 1.0:
        raise SpecError(f"cfl must be in (0, 1], got {cfl}")
    if not (np.isfinite(nu) and nu >= 0.0):
        raise SpecError(f"nu must be a finite number >= 0, got {nu!r}")
    cells = u.shape[1]
    dx = 1.0 / cells
    # Exact flow of the central second difference: mode k decays as exp(-ε (4/dx²) sin²(πk/n) τ).
    # Unlike the spectral symbol ε (2πk)², its kernel is positive, so it adds no ripples next to
    # shocks that ν ≤ 0.001 leaves narrower than a cell.
    wave = np.arange(cells // 2 + 1) / cells
    decay_rate = (nu / np.pi) * (2.0 * np.sin(np.pi * wave) / dx) ** 2

    def diffuse(state: np.ndarray, tau: float) -> np.ndarray:
        if tau <= 0.0 or nu == 0.0:
            return state
        return np.fft.irfft(np.fft.rfft(state, axis=1) * np.exp(-decay_rate * tau), cells, axis=1)

    out = np.empty((u.shape[0], times.size, cells))
    t = 0.0
    pending = 0.0  # second viscous half of the last advective step, not yet applied
    for j, t_save in enumerate(times):
        while t < t_save:
            remaining = t_save - t
            peak = float(np.max(np.abs(u)))
            dt = remaining if peak == 0.0 else min(cfl * dx / peak, remaining)
            if dt < remaining < 2.0 * dt:
                # Split what is left evenly rather than end on a sliver of a step.
                dt = 0.5 * remaining
            u = diffuse(u, pending + 0.5 * dt)
            u = _advect(u, dt, dx)
            pending = 0.5 * dt
            t = t_save if dt == remaining else t + dt
        u = diffuse(u, pending)
        pending = 0.0
        out[:, j] = u
    return out


def initial_states(rng: np.random.Generator, samples: int, x: np.ndarray) -> np.ndarray:
    """Random initial states drawn as PDEBench draws them.

    PDEBench's ``init_multi`` (``pdebench/data_gen/data_gen_NLE/utils.py``, called by
    ``BurgersEq/burgers_multi_solution_Hydra.py`` with ``k_tot=4`` and its default two picks):

    - each of the waves n = 1…4 gets A_n ~ U(0, 1), φ_n ~ U(0, 2π), and the state is
      ``Σ_n A_n sin(2π n c_n x / L + φ_n)``, where c_n counts how often n came up in two draws
      from {1…4} with replacement. A wave never drawn (c_n = 0) is the constant A_n sin φ_n,
      the random offset; a wave drawn twice doubles its wavenumber.
    - L is ``xc[-1] - xc[0]``, the distance between the first and last cell centres (1 - dx, not
      the period 1), so the waves miss periodicity by one cell's worth of phase.
    - with probability 0.1 the absolute value is taken; then every state gets a random sign.
    - with probability 0.1 the state is multiplied by the box
      ``(tanh((x-a)/δ) - tanh((x-b)/δ))/2``, δ = 0.01. PDEBench draws that choice and
      a ~ U(0.1, 0.45), b ~ U(0.55, 0.9) from one JAX key and so from one uniform number v:
      the box is chosen when v < 0.1 (``random.choice`` with ``p=[0.9, 0.1]`` picks 1 when
      1 - v > 0.9), and then a = 0.1 + 0.35 v < 0.135, b = 0.55 + 0.35 v < 0.585.

    Args:
        rng: source of randomness; all draws for all samples happen here.
        samples: number of initial states.
        x: ``(cells,)`` cell centres in [0, 1).

    Returns:
        ``(samples, cells)`` float64 initial states.
    """
    x = np.asarray(x, dtype=np.float64)
    waves = np.arange(1, _WAVES + 1)
    drawn = rng.integers(1, _WAVES + 1, size=(samples, _PICKS, 1))
    counts = np.sum(drawn == waves, axis=1)
    amplitude = rng.uniform(0.0, 1.0, size=(samples, _WAVES))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(samples, _WAVES))
    fold = rng.uniform(size=(samples, 1)) < 0.1
    sign = rng.choice([-1.0, 1.0], size=(samples, 1))
    shared = rng.uniform(size=(samples, 1))

    wavenumber = 2.0 * np.pi * waves * counts / (x[-1] - x[0])
    u = np.zeros((samples, x.size))
    for n in range(_WAVES):  # one wave at a time: no (samples, waves, cells) temporary
        u += amplitude[:, n:n + 1] * np.sin(wavenumber[:, n:n + 1] * x + phase[:, n:n + 1])
    u = sign * np.where(fold, np.abs(u), u)
    left, right = 0.1 + 0.35 * shared, 0.55 + 0.35 * shared
    box = 0.5 * (np.tanh((x - left) / 0.01) - np.tanh((x - right) / 0.01))
    return np.where(shared < 0.1, u * box, u)


def _check_sizes(samples: int, resolution: int, frames: int) -> None:
    for name, value, low in (
        ("samples", samples, 1),
        ("resolution", resolution, 8),
        ("frames", frames, 2),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise SpecError(f"{name} must be an integer >= {low}, got {value!r}")


def generate(
    out: str | Path,
    *,
    samples: int = DEFAULT_SAMPLES,
    resolution: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    frames: int | None = None,
    nu: float = DEFAULT_NU,
) -> Path:
    """Generate a Burgers data set in the PDEBench layout.

    Args:
        out: target HDF5 file; written atomically (nothing appears unless complete).
        samples: number of trajectories.
        resolution: cells on [0, 1); ``None`` means the public 1024.
        seed: seed of ``np.random.default_rng`` for the initial states.
        progress: told ``update(k)`` as each batch of k samples is finished.
        frames: frames over t ∈ [0, 2]; ``None`` means the public 201 (Δt = 0.01).
        nu: viscosity ν of u_t + (u²/2)_x = (ν/π) u_xx (PDEBench has 0.001 … 4.0).

    Returns:
        The path written. ``tensor`` float32 ``(samples, frames, resolution)``,
        ``x-coordinate`` ``(resolution,)``, ``t-coordinate`` ``(frames + 1,)``, attr ``Nu``,
        and `write_label`'s root attributes.
    """
    resolution = DEFAULT_RESOLUTION if resolution is None else resolution
    frames = DEFAULT_FRAMES if frames is None else frames
    _check_sizes(samples, resolution, frames)
    if not (np.isfinite(nu) and nu >= 0.0):
        raise SpecError(f"nu must be a finite number >= 0, got {nu!r}")

    x = cell_centres(resolution)
    dt_save = T_END / (frames - 1)
    t_out = np.linspace(0.0, T_END, frames)
    u0 = initial_states(np.random.default_rng(seed), samples, x)

    target = Path(out)
    with atomic_h5(target) as handle:
        tensor = handle.create_dataset("tensor", shape=(samples, frames, resolution), dtype="f4")
        handle.create_dataset("x-coordinate", data=x)
        # PDEBench stores one time more than it has frames.
        handle.create_dataset(
            "t-coordinate", data=(np.arange(frames + 1) * dt_save).astype(np.float32)
        )
        handle.attrs["Nu"] = nu
        write_label(handle, "burgers", {"samples": samples, "resolution": resolution,
                                        "seed": seed, "frames": frames, "nu": nu})
        for start in range(0, samples, _BATCH):
            stop = min(start + _BATCH, samples)
            tensor[start:stop] = solve_burgers(u0[start:stop], nu=nu, t_out=t_out)
            if progress is not None:
                progress.update(stop - start)
    return target


def read(path: str | Path, selection: Selection | None = None) -> PDEData:
    """Read a Burgers file in the PDEBench layout, unchanged (all of it, or the selection).

    Args:
        path: HDF5 file with ``tensor`` ``(N, T, X)``, ``x-coordinate`` ``(X,)`` and
            ``t-coordinate`` with at least T entries.
        selection: the samples, frames and grid points to read; ``None`` reads everything.

    Returns:
        ``PDEData`` with ``trajectories`` ``(N, T, X, 1)`` float32, ``times`` the first T
        entries of ``t-coordinate`` and ``attrs["nu"]`` from the ``Nu`` attribute (or the
        ``_Nu{ν}`` part of the file name) when known.

    Raises:
        DataError: the file is missing or unreadable, a key is missing or mis-shaped, or its
            attributes or name are those of a PDEBench Advection or Reaction–Diffusion file.
    """
    return read_scalar_1d(path, selection, layout=LAYOUT.name)


def detect(h5file: h5py.File) -> bool:
    """True if an open file has the PDEBench 1D layout: rank-3 ``tensor`` and ``x-coordinate``,
    and neither the attributes nor the name of PDEBench's Advection or Reaction–Diffusion files.

    Darcy files also hold ``tensor`` but with rank 4 and a ``y-coordinate``.
    """
    tensor = h5file.get("tensor")
    return (
        isinstance(tensor, h5py.Dataset)
        and tensor.ndim == 3
        and isinstance(h5file.get("x-coordinate"), h5py.Dataset)
        and isinstance(h5file.get("t-coordinate"), h5py.Dataset)
        and "y-coordinate" not in h5file
        and all(owner == LAYOUT.name
                for _, owner in scalar_1d_evidence(h5file, Path(h5file.filename).name))
    )


LAYOUT = Layout("pdebench-burgers", read, SCALAR_1D["pdebench-burgers"].files, family="burgers",
                periodic=True)

FAMILY = PDEFamily(
    name="burgers",
    spatial_dims=1,
    generate=generate,
    read=read,
    detect=detect,
    default_resolution=DEFAULT_RESOLUTION,
    default_samples=DEFAULT_SAMPLES,
    fields=1,
)
