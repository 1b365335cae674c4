"""2D Darcy flow: a classical generator and the reader of PDEBench's ``2D_DarcyFlow`` layout.

The problem (PDEBench, Takamoto et al. 2022) is the steady state

    −∇·(a(x) ∇u(x)) = β  on (0, 1)²,   u = 0 on the boundary,

with a piecewise-constant coefficient: a = 1 where a random field lies above its mean, 0.1
elsewhere. The network learns the map a → u.

The coefficient is drawn as PDEBench draws it: a sum of five Gaussian bumps, thresholded at the
field's expected mean (`random_coefficient`). PDEBench reaches the steady state by relaxing a
diffusion equation in time; we solve the steady problem directly (cell-centred finite volumes,
one sparse LU solve per sample).

Public layout (``2D_DarcyFlow_beta{β}_Train.hdf5``), axis order (sample, x, y):

- ``nu`` float32 ``(N, H, W)``: the coefficient a(x), the model input;
- ``tensor`` float32 ``(N, 1, H, W)``: the solution u;
- ``x-coordinate``, ``y-coordinate`` float32 ``(H,)``, ``(W,)``: cell centres;
- attribute ``beta``: the source term.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import integrate, special

from autoq.data._common import (
    Layout,
    PDEData,
    PDEFamily,
    Progress,
    Selection,
    atomic_h5,
    cell_centres,
    check_int,
    check_real,
    open_h5,
    read_float,
    require_dataset,
    write_label,
)
from autoq.errors import DataError, SpecError

DEFAULT_RESOLUTION = 128
DEFAULT_SAMPLES = 10_000
HIGH, LOW = 1.0, 0.1
# PDEBench's random field: five bumps, widths s ~ U(0, 0.5) (see `bump_field`).
_BUMPS = 5
_MAX_WIDTH = 0.5


def solve_darcy(a: np.ndarray, f: np.ndarray | float = 1.0) -> np.ndarray:
    """Solve −∇·(a∇u) = f on the unit square with u = 0 on the boundary.

    Cell-centred five-point finite volumes on the ``(H, W)`` grid of the unit square: the flux
    through an interior face uses the harmonic mean of the two cells' coefficients (the exact
    face value for a layered medium), and a boundary face sees a ghost cell holding −u, so u is
    zero on the face itself half a cell away. Second-order accurate for smooth a.

    Args:
        a: ``(H, W)`` positive coefficient per cell, axis 0 along x.
        f: ``(H, W)`` source per cell (cell-centre values), or one number for all cells.

    Returns:
        ``(H, W)`` float64 solution at the cell centres.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 1:
        raise SpecError(f"a must be a 2D array, got shape {a.shape}")
    if not np.all(a > 0) or not np.all(np.isfinite(a)):
        raise SpecError("a must be finite and positive everywhere")
    source = np.broadcast_to(np.asarray(f, dtype=np.float64), a.shape)
    return spla.spsolve(darcy_operator(a), source.ravel(), permc_spec="MMD_AT_PLUS_A").reshape(
        a.shape
    )


def darcy_operator(a: np.ndarray) -> sp.csc_matrix:
    """The finite-volume matrix of u ↦ −∇·(a∇u) with zero Dirichlet data, as in `solve_darcy`.

    Args:
        a: ``(H, W)`` positive coefficient per cell of the unit square.

    Returns:
        ``(H·W, H·W)`` sparse symmetric positive definite matrix, unknowns in C order.
    """
    nx, ny = a.shape
    hx2, hy2 = (1.0 / nx) ** 2, (1.0 / ny) ** 2
    index = np.arange(nx * ny).reshape(nx, ny)
    # Face transmissibilities: harmonic mean inside, 2a/h² towards the ghost cell on the boundary.
    tx = 2.0 * a[1:] * a[:-1] / (a[1:] + a[:-1]) / hx2
    ty = 2.0 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1]) / hy2
    diagonal = np.zeros_like(a)
    diagonal[1:] += tx
    diagonal[:-1] += tx
    diagonal[:, 1:] += ty
    diagonal[:, :-1] += ty
    diagonal[0] += 2.0 * a[0] / hx2
    diagonal[-1] += 2.0 * a[-1] / hx2
    diagonal[:, 0] += 2.0 * a[:, 0] / hy2
    diagonal[:, -1] += 2.0 * a[:, -1] / hy2
    rows, cols, values = [index.ravel()], [index.ravel()], [diagonal.ravel()]
    for first, second, t in ((index[:-1], index[1:], tx), (index[:, :-1], index[:, 1:], ty)):
        rows += [first.ravel(), second.ravel()]
        cols += [second.ravel(), first.ravel()]
        values += [-t.ravel(), -t.ravel()]
    return sp.csc_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(nx * ny, nx * ny),
    )


def bump_field(rng: np.random.Generator, n: int) -> np.ndarray:
    """PDEBench's random field for Darcy's coefficient: a sum of five Gaussian bumps.

    ``Σ_i exp(-((x - x_i)² + (y - y_i)²) / s_i)`` at the cell centres of the unit square, with
    x_i, y_i ~ U(0, 1) and s_i ~ U(0, 0.5), as in PDEBench's
    ``data_gen_NLE/ReactionDiffusionEq/reaction_diffusion_2D_multi_solution_Hydra.py``
    (``xms``, ``yms``, ``stds = 0.5 (xR - xL) U(0, 1)``; s_i divides the squared distance).

    Args:
        rng: the source of randomness.
        n: grid size per axis.

    Returns:
        ``(n, n)`` float64 field, axis 0 along x.
    """
    x = cell_centres(n).astype(np.float64)
    centre_x = rng.uniform(0.0, 1.0, _BUMPS)
    centre_y = rng.uniform(0.0, 1.0, _BUMPS)
    width = rng.uniform(0.0, _MAX_WIDTH, _BUMPS)
    # Each bump is a product of an x and a y profile: (bumps, n) each instead of (bumps, n, n).
    along_x = np.exp(-((x - centre_x[:, None]) ** 2) / width[:, None])
    along_y = np.exp(-((x - centre_y[:, None]) ** 2) / width[:, None])
    return np.einsum("bi,bj->ij", along_x, along_y)


@functools.lru_cache
def bump_threshold(n: int) -> float:
    """The expected grid mean of `bump_field` on an ``(n, n)`` grid: PDEBench's threshold.

    PDEBench thresholds its bump fields at the mean over a whole batch (``nu > nu.mean()``),
    200 samples per batch (``config/multi/config_2D.yaml``, ``numbers: 200``). That mean is an
    estimate of this expectation; using the expectation itself keeps each sample independent of
    how many are generated with it. A bump's grid mean factorises into x and y, each the grid
    mean of ``∫₀¹ exp(-(x - c)²/s) dc = √(πs)/2 (erf((1 - x)/√s) + erf(x/√s))``; what is left
    is one integral over s ~ U(0, 0.5).
    """
    x = cell_centres(n).astype(np.float64)

    def squared_profile_mean(width: float) -> float:
        root = math.sqrt(width)
        profile = 0.5 * math.sqrt(math.pi) * root * (special.erf((1.0 - x) / root)
                                                    + special.erf(x / root))
        return float(profile.mean()) ** 2

    integral, _ = integrate.quad(squared_profile_mean, 0.0, _MAX_WIDTH)
    return _BUMPS * integral / _MAX_WIDTH


def random_coefficient(rng: np.random.Generator, n: int) -> np.ndarray:
    """PDEBench's two-valued coefficient: 1 where `bump_field` exceeds `bump_threshold`, 0.1
    elsewhere.

    A sample whose bumps are all narrow stays below the threshold everywhere and is 0.1
    throughout; wide bumps cover most of the square with 1.

    Args:
        rng: the source of randomness.
        n: grid size per axis.

    Returns:
        ``(n, n)`` float32 array of 1.0 and 0.1.
    """
    return np.where(bump_field(rng, n) > bump_threshold(n), HIGH, LOW).astype(np.float32)


def generate(
    out: str | os.PathLike[str],
    *,
    samples: int = DEFAULT_SAMPLES,
    resolution: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    frames: int | None = None,
    beta: float = 1.0,
    **unknown: Any,
) -> Path:
    """Write a Darcy data set in PDEBench's public layout, atomically.

    Args:
        out: the HDF5 file to write; it appears only once complete.
        samples: number of (coefficient, solution) pairs.
        resolution: cells per axis; ``None`` means the public 128.
        seed: seed of ``np.random.default_rng``; the same arguments give the same file content.
        progress: receives ``update(1)`` per finished sample.
        frames: must be ``None``: the problem is steady.
        beta: the constant source term β.

    Returns:
        ``out`` as a Path; the file carries `write_label`'s root attributes.
    """
    if unknown:
        raise SpecError(f"darcy: unknown parameter(s) {sorted(unknown)}; allowed: beta")
    if frames is not None:
        raise SpecError(f"frames={frames!r}: darcy is steady and has no frames; leave it unset")
    samples = check_int("samples", samples, minimum=1)
    if resolution is None:
        resolution = DEFAULT_RESOLUTION
    n = check_int("resolution", resolution, minimum=4)
    seed = check_int("seed", seed, minimum=0)
    beta = check_real("beta", beta, minimum=0.0, strict=True)

    rng = np.random.default_rng(seed)
    target = Path(out)
    with atomic_h5(target) as handle:
        coefficient = handle.create_dataset("nu", (samples, n, n), dtype=np.float32)
        solution = handle.create_dataset("tensor", (samples, 1, n, n), dtype=np.float32)
        handle.create_dataset("x-coordinate", data=cell_centres(n))
        handle.create_dataset("y-coordinate", data=cell_centres(n))
        handle.attrs["beta"] = float(beta)
        write_label(handle, "darcy", {"samples": samples, "resolution": n, "seed": seed,
                                      "beta": beta})
        for i in range(samples):
            a = random_coefficient(rng, n)
            coefficient[i] = a
            solution[i, 0] = solve_darcy(a, beta)
            if progress is not None:
                progress.update(1)
    return target


def read(path: str | os.PathLike[str], selection: Selection | None = None) -> PDEData:
    """Read a file in PDEBench's Darcy layout (ours or the public one) unchanged.

    Args:
        path: HDF5 file with ``nu`` ``(N, H, W)``, ``tensor`` ``(N, 1, H, W)``,
            ``x-coordinate`` ``(H,)`` and ``y-coordinate`` ``(W,)``.
        selection: the samples and grid points to read (the single frame is always read);
            ``None`` reads everything.

    Returns:
        ``PDEData`` with ``trajectories`` ``(N, 1, H, W, 1)`` (the solution), ``coefficients``
        ``(N, H, W, 1)`` (a), ``coords`` ``(x, y)``, ``times=None`` and ``attrs={"beta": β}``
        when the file has the attribute.
    """
    select = selection or Selection()
    with open_h5(path) as handle:
        nu = require_dataset(handle, "nu", ndim=3, source=path)
        tensor = require_dataset(handle, "tensor", ndim=4, source=path)
        x = require_dataset(handle, "x-coordinate", ndim=1, source=path)
        y = require_dataset(handle, "y-coordinate", ndim=1, source=path)
        samples, nx, ny = nu.shape
        if tensor.shape != (samples, 1, nx, ny):
            raise DataError(
                f"{path}: 'tensor' has shape {tensor.shape}, expected {(samples, 1, nx, ny)} "
                f"to match 'nu' {nu.shape}"
            )
        if x.shape != (nx,) or y.shape != (ny,):
            raise DataError(
                f"{path}: 'x-coordinate' {x.shape} / 'y-coordinate' {y.shape} do not match the "
                f"grid {(nx, ny)} of 'nu'"
            )
        if samples == 0:
            raise DataError(f"{path}: 'nu' holds no samples")
        rows = select.samples(samples)
        sx, sy = select.space((nx, ny))
        attrs = {"beta": float(handle.attrs["beta"])} if "beta" in handle.attrs else {}
        return PDEData(
            pde="darcy",
            trajectories=read_float(tensor, (rows, slice(0, 1), sx, sy), key="tensor",
                                    source=path)[..., None],
            coords=(read_float(x, (sx,), key="x-coordinate", source=path),
                    read_float(y, (sy,), key="y-coordinate", source=path)),
            times=None,
            coefficients=read_float(nu, (rows, sx, sy), key="nu", source=path)[..., None],
            attrs=attrs,
        )


def detect(handle: h5py.File) -> bool:
    """True when the open file has Darcy's ``nu`` (rank 3) and ``tensor`` (rank 4) at the top."""
    nu, tensor = handle.get("nu"), handle.get("tensor")
    return (
        isinstance(nu, h5py.Dataset)
        and isinstance(tensor, h5py.Dataset)
        and nu.ndim == 3
        and tensor.ndim == 4
    )


LAYOUT = Layout("pdebench-darcy", read, "PDEBench 2D_DarcyFlow_beta{β}_Train.hdf5",
                family="darcy", periodic=False)


FAMILY = PDEFamily(
    name="darcy",
    spatial_dims=2,
    generate=generate,
    read=read,
    detect=detect,
    default_resolution=DEFAULT_RESOLUTION,
    default_samples=DEFAULT_SAMPLES,
    fields=1,
    coefficient_channels=1,
)
