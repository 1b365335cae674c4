"""1D diffusion–sorption: classical-solver generator and reader of the PDEBench layout.

The equation (PDEBench, after Praditia et al.'s FINN set-up) is

    u_t = D / R(u) · u_xx,    R(u) = 1 + ((1 - φ)/φ) ρ_s k_f n_f (u + 1e-6)^(n_f - 1),

on x ∈ [0, 1] with u = 1 at x = 0 and, at x = 1, PDEBench's discrete Cauchy (outflow)
condition: a ghost cell beyond the boundary holds ``D (u_{N-2} - u_{N-1}) / dx``. The public file
``1D_diff-sorp_NA_NA.h5`` has one group per sample (``"0000"``, ``"0001"``, …), each with
``data`` float32 ``(101, 1024, 1)`` as (t, x, field), ``grid/x`` and ``grid/t``, all lzf
compressed, and the attribute ``config`` (YAML text of the run's settings, with the sample's own
seed, from which PDEBench's loaders rebuild its initial value).

The solver is ours: cell-centred finite volumes in space and an implicit, adaptive integrator in
time (LSODA with a banded Jacobian). Samples are stacked into one system whose Jacobian is still
tridiagonal, so a batch costs one banded factorisation per Jacobian update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import yaml
from scipy.integrate import solve_ivp

from autoq.data._common import (
    Layout,
    PDEData,
    PDEFamily,
    Progress,
    Selection,
    atomic_h5,
    cell_centres,
    check_int,
    write_label,
)
from autoq.data.pdebench import read_sample_groups, sample_keys
from autoq.errors import AutoqError, SpecError

T_END = 500.0
DEFAULT_FRAMES = 101
DEFAULT_RESOLUTION = 1024
DEFAULT_SAMPLES = 10_000
PHYSICS = {"D": 5e-4, "phi": 0.29, "rho_s": 2880.0, "k_f": 3.5e-4, "n_f": 0.874}
LEFT_VALUE = 1.0

# PDEBench's names for the physical parameters in the ``sim`` part of ``config``.
_CONFIG_NAMES = {"D": "D", "phi": "por", "rho_s": "rho_s", "k_f": "k_f", "n_f": "n_f"}
# Samples integrated as one stacked system: they share the step sizes, so a large batch makes
# every sample take the steps of its hardest member; 8 was fastest at 1024 cells.
_BATCH = 8
_COMPRESSION = "lzf"

RightBoundary = Literal["cauchy", "closed"]


def retardation(
    u: np.ndarray, *, phi: float, rho_s: float, k_f: float, n_f: float
) -> tuple[np.ndarray, np.ndarray]:
    """Freundlich retardation factor R(u) and its derivative dR/du.

    Args:
        u: concentrations, any shape.
        phi: porosity φ.
        rho_s: bulk density ρ_s.
        k_f: Freundlich coefficient.
        n_f: Freundlich exponent.

    Returns:
        ``(R, dR/du)``, both shaped like ``u``.
    """
    scale = (1.0 - phi) / phi * rho_s * k_f * n_f
    # The integrator's error may dip a hair below zero, where the power is undefined; there R
    # is held at its u = 0 value.
    base = np.maximum(u, 0.0) + 1e-6
    power = base ** (n_f - 1.0)
    slope = np.where(u > 0.0, scale * (n_f - 1.0) * power / base, 0.0)
    return 1.0 + scale * power, slope


def solve_diffsorp(
    u0: np.ndarray,
    *,
    t_out: np.ndarray,
    D: float = PHYSICS["D"],  # noqa: N803 — the physics symbol
    phi: float = PHYSICS["phi"],
    rho_s: float = PHYSICS["rho_s"],
    k_f: float = PHYSICS["k_f"],
    n_f: float = PHYSICS["n_f"],
    sorption: bool = True,
    right_boundary: RightBoundary = "cauchy",
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> np.ndarray:
    """Solve u_t = D/R(u) u_xx on [0, 1] with u = 1 at x = 0, for a batch of initial states.

    Cell-centred finite volumes: the Dirichlet value sits on the face x = 0 (half-cell flux),
    interior fluxes are central differences. Time integration is LSODA (implicit BDF once the
    problem turns stiff) with the exact tridiagonal Jacobian, on all samples at once.

    Args:
        u0: ``(samples, cells)`` initial values at the cell centres ``(i + 0.5) / cells``.
        t_out: ``(frames,)`` strictly increasing output times ≥ 0; the state at t = 0 is ``u0``.
        D: diffusion coefficient.
        phi: porosity φ.
        rho_s: bulk density ρ_s.
        k_f: Freundlich coefficient.
        n_f: Freundlich exponent.
        sorption: ``False`` sets R ≡ 1 (plain diffusion), e.g. to compare with analytic modes.
        right_boundary: ``"cauchy"`` is PDEBench's outflow condition (ghost cell holding
            ``D (u_{N-2} - u_{N-1}) / dx``); ``"closed"`` is zero flux through x = 1.
        rtol: relative tolerance of the integrator.
        atol: absolute tolerance of the integrator.

    Returns:
        ``(samples, frames, cells)`` float64 solution at ``t_out``.

    Raises:
        SpecError: bad shapes, times or boundary name.
        AutoqError: the integrator failed.
    """
    u_init = np.array(u0, dtype=np.float64, ndmin=2)
    times = np.asarray(t_out, dtype=np.float64)
    if u_init.ndim != 2 or u_init.shape[1] < 2:
        raise SpecError(f"u0 must have shape (samples, cells >= 2), got {np.shape(u0)}")
    if times.ndim != 1 or times.size == 0 or times[0] < 0 or np.any(np.diff(times) <= 0):
        raise SpecError(f"t_out must be strictly increasing times >= 0, got {t_out!r}")
    if right_boundary not in ("cauchy", "closed"):
        raise SpecError(f"right_boundary must be 'cauchy' or 'closed', got {right_boundary!r}")
    samples, cells = u_init.shape
    dx = 1.0 / cells
    rate = D / dx**2

    # G = rate · (A u + b) is the flux balance of each cell; A is tridiagonal, per sample.
    sub = np.ones(cells)  # coefficient of u_{i-1} in row i
    sup = np.ones(cells)  # coefficient of u_{i+1} in row i
    diag = np.full(cells, -2.0)
    sub[0] = sup[-1] = 0.0
    diag[0] = -3.0  # the face value sits half a cell away from the first centre
    if right_boundary == "cauchy":
        # The ghost value, one cell beyond the last, is beta·(u_{N-2} - u_{N-1}).
        beta = D / dx
        sub[-1], diag[-1] = 1.0 + beta, -2.0 - beta
    else:
        diag[-1] = -1.0

    def balance(u: np.ndarray) -> np.ndarray:
        g = diag * u
        g[:, 1:] += sub[1:] * u[:, :-1]
        g[:, :-1] += sup[:-1] * u[:, 1:]
        g[:, 0] += 2.0 * LEFT_VALUE
        return rate * g

    def factor(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not sorption:
            return np.ones_like(u), np.zeros_like(u)
        return retardation(u, phi=phi, rho_s=rho_s, k_f=k_f, n_f=n_f)

    def rhs(_: float, y: np.ndarray) -> np.ndarray:
        u = y.reshape(samples, cells)
        return (balance(u) / factor(u)[0]).ravel()

    def jacobian(_: float, y: np.ndarray) -> np.ndarray:
        # LSODA's packed band: row 0 holds J[j-1, j], row 1 J[j, j], row 2 J[j+1, j].
        u = y.reshape(samples, cells)
        r, dr = factor(u)
        scale = rate / r
        band = np.zeros((3, samples, cells))
        band[1] = scale * diag - balance(u) * dr / r**2
        band[0, :, 1:] = (scale * sup)[:, :-1]
        band[2, :, :-1] = (scale * sub)[:, 1:]
        return band.reshape(3, samples * cells)

    if times[-1] == 0.0:
        return u_init[:, np.newaxis, :].copy()
    solution = solve_ivp(
        rhs,
        (0.0, times[-1]),
        u_init.ravel(),
        method="LSODA",
        t_eval=times,
        jac=jacobian,
        lband=1,
        uband=1,
        rtol=rtol,
        atol=atol,
    )
    if not solution.success:
        raise AutoqError(f"diffusion-sorption integration failed: {solution.message}")
    return solution.y.reshape(samples, cells, times.size).transpose(0, 2, 1)


def _check_arguments(
    samples: int, resolution: int, frames: int, seed: int, physics: dict[str, float]
) -> None:
    check_int("seed", seed, minimum=0)
    for name, value, low in (
        ("samples", samples, 1),
        ("resolution", resolution, 8),
        ("frames", frames, 2),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise SpecError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, parameter in physics.items():
        if not np.isfinite(parameter) or parameter < 0.0:
            raise SpecError(f"{name} must be a finite number >= 0, got {parameter!r}")
    if physics["D"] == 0.0 or physics["n_f"] == 0.0:
        raise SpecError(f"D and n_f must be > 0, got D={physics['D']!r}, n_f={physics['n_f']!r}")
    if not 0.0 < physics["phi"] <= 1.0:
        raise SpecError(f"phi must be in (0, 1], got {physics['phi']!r}")


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a file generated with ``seed``: ``seed·2³² + index``.

    PDEBench's ``gen_diff_sorp.py`` seeds sample i with i (``config.sim.seed = i``), so seed 0
    gives PDEBench's own seeds 0, 1, 2, … and its initial values; files of different seeds share
    no sample (up to 2³² samples each).
    """
    return int(seed) * 2**32 + int(index)  # Python ints: a numpy seed would overflow


def initial_level(seed: int) -> float:
    """The constant initial value of the sample seeded with ``seed``, drawn as PDEBench draws it.

    ``pdebench/data_gen/src/sim_diff_sorp.py`` (``Simulator.generate_sample``) takes one
    ``np.random.default_rng(seed).uniform(0, 0.2)``, and PDEBench's PINN loader
    (``pdebench/models/pinn/utils.py``, ``PINNDatasetDiffSorption.get_initial_condition``)
    rebuilds it the same way from the ``seed`` in the sample's ``config``.
    """
    return float(np.random.default_rng(seed).uniform(0.0, 0.2))


def _config_text(
    *, physics: dict[str, float], frames: int, resolution: int, seed: int, u0: float
) -> str:
    """The ``config`` attribute of one sample: PDEBench's ``name`` and ``sim`` settings, with
    the sample's own seed (PDEBench's loaders rebuild its initial value from it) and that
    value."""
    sim = {_CONFIG_NAMES[key]: float(value) for key, value in physics.items()}
    sim.update(
        sol=LEFT_VALUE,
        t=T_END,
        tdim=int(frames),
        x_left=0.0,
        x_right=1.0,
        xdim=int(resolution),
        n=1,
        seed=int(seed),
        u0=float(u0),
    )
    return yaml.safe_dump({"name": "1d_diff-sorp", "sim": sim}, sort_keys=False)


def generate(
    out: str | Path,
    *,
    samples: int = DEFAULT_SAMPLES,
    resolution: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    frames: int | None = None,
    D: float = PHYSICS["D"],  # noqa: N803 — the physics symbol
    phi: float = PHYSICS["phi"],
    rho_s: float = PHYSICS["rho_s"],
    k_f: float = PHYSICS["k_f"],
    n_f: float = PHYSICS["n_f"],
) -> Path:
    """Generate a diffusion–sorption data set in the PDEBench layout.

    Each sample starts from a constant u0 ~ U(0, 0.2), drawn from its own seed
    (`sample_seed`, `initial_level`) as PDEBench draws it; the seed is in the sample's
    ``config``, where PDEBench's loaders look for it.

    Args:
        out: target HDF5 file; written atomically (nothing appears unless complete).
        samples: number of trajectories.
        resolution: cells on [0, 1]; ``None`` means the public 1024.
        seed: the file's seed; sample i is seeded with ``seed·2³² + i`` (seed 0: PDEBench's).
        progress: told ``update(k)`` as each batch of k samples is finished.
        frames: frames over t ∈ [0, 500]; ``None`` means the public 101 (Δt = 5).
        D: diffusion coefficient.
        phi: porosity φ.
        rho_s: bulk density ρ_s.
        k_f: Freundlich coefficient.
        n_f: Freundlich exponent.

    Returns:
        The path written: groups ``"0000"``, ``"0001"``, … each with ``data`` float32
        ``(frames, resolution, 1)``, ``grid/x`` ``(resolution,)``, ``grid/t`` ``(frames,)``
        (lzf) and attr ``config``; root attributes `write_label`'s.
    """
    resolution = DEFAULT_RESOLUTION if resolution is None else resolution
    frames = DEFAULT_FRAMES if frames is None else frames
    physics = {"D": D, "phi": phi, "rho_s": rho_s, "k_f": k_f, "n_f": n_f}
    _check_arguments(samples, resolution, frames, seed, physics)

    x = cell_centres(resolution)
    t_out = np.linspace(0.0, T_END, frames)
    seeds = [sample_seed(seed, index) for index in range(samples)]
    levels = np.array([initial_level(each) for each in seeds])
    # Wide enough that names sort in sample order even past 9999 samples.
    width = max(4, len(str(samples - 1)))

    target = Path(out)
    with atomic_h5(target) as handle:
        write_label(handle, "diffsorp", {"samples": samples, "resolution": resolution,
                                         "seed": seed, "frames": frames, **physics})
        for start in range(0, samples, _BATCH):
            stop = min(start + _BATCH, samples)
            u0 = np.repeat(levels[start:stop, np.newaxis], resolution, axis=1)
            batch = solve_diffsorp(
                u0, t_out=t_out, D=D, phi=phi, rho_s=rho_s, k_f=k_f, n_f=n_f
            ).astype(np.float32)
            for offset, trajectory in enumerate(batch):
                index = start + offset
                group = handle.create_group(str(index).zfill(width))
                group.create_dataset(
                    "data", data=trajectory[..., np.newaxis], compression=_COMPRESSION
                )
                group.create_dataset("grid/x", data=x, compression=_COMPRESSION)
                group.create_dataset(
                    "grid/t", data=t_out.astype(np.float32), compression=_COMPRESSION
                )
                group.attrs["config"] = _config_text(
                    physics=physics,
                    frames=frames,
                    resolution=resolution,
                    seed=seeds[index],
                    u0=float(levels[index]),
                )
            if progress is not None:
                progress.update(stop - start)
    return target


def read(path: str | Path, selection: Selection | None = None) -> PDEData:
    """Read a diffusion–sorption file in the PDEBench layout, unchanged.

    Args:
        path: HDF5 file with one group per sample, each holding ``data`` ``(T, X, 1)``,
            ``grid/x`` ``(X,)`` and ``grid/t`` ``(T,)``.
        selection: the samples, frames and grid points to read; only the selected groups are
            opened. ``None`` reads everything.

    Returns:
        ``PDEData`` with ``trajectories`` ``(N, T, X, 1)`` float32 in sorted group order,
        grid and times from the first group, and ``attrs`` the physical parameters (``D``,
        ``phi``, ``rho_s``, ``k_f``, ``n_f``) found in the first group's ``config``.

    Raises:
        DataError: the file is missing or unreadable, holds no sample groups, or a group's
            key is missing or mis-shaped.
    """
    return read_sample_groups(path, selection, pde="diffsorp", spatial_dims=1, fields=1,
                              field_names="u", config=_CONFIG_NAMES)


def detect(h5file: h5py.File) -> bool:
    """True if an open file has the per-sample group layout with rank-3 ``data`` (t, x, field).

    PDEBench's 2D reaction–diffusion files share the group layout but hold rank-4 ``data``.
    """
    keys = sample_keys(h5file)
    if not keys:
        return False
    data = h5file[keys[0]].get("data")
    return isinstance(data, h5py.Dataset) and data.ndim == 3 and "grid" in h5file[keys[0]]


LAYOUT = Layout("pdebench-diffsorp", read, "PDEBench 1D_diff-sorp_NA_NA.h5", family="diffsorp",
                periodic=False)


FAMILY = PDEFamily(
    name="diffsorp",
    spatial_dims=1,
    generate=generate,
    read=read,
    detect=detect,
    default_resolution=DEFAULT_RESOLUTION,
    default_samples=DEFAULT_SAMPLES,
    fields=1,
)
