"""Resolution operators: run a network at a fraction of the data's grid.

The paper (section 3.4) resizes with linear interpolation in 1D and bilinear in 2D, before the
network and after it, in training and evaluation alike, so gradients flow through both resizes.
Two more methods (:data:`autoq.bits.Resample`, the spec's ``space.resample``) resize the same
cell-centred grids:

``cubic``
    Keys' cubic convolution (R. Keys, "Cubic convolution interpolation for digital image
    processing", IEEE TASSP 1981) with ``a = -1/2``, the one value of ``a`` for which it
    reproduces every quadratic. It is separable: one axis after the other, four taps per output
    point and axis. Samples beyond the grid's ends are extrapolated quadratically from the three
    nearest ones (Keys' boundary condition), so a quadratic is reproduced up to the edges. Torch's
    ``bicubic`` is not used: it is 2D only, uses ``a = -3/4`` (which does not reproduce
    quadratics) and repeats the edge samples.
``fourier``
    Spectral truncation: the grid is one period; the frequencies both grids hold (``|k| <
    min(n, m) / 2`` per axis; the Nyquist frequency of an even grid, which a grid cannot tell from
    its alias, is dropped) are kept, phase-shifted for the cell-centred points and evaluated on the
    new grid; upsampling zero-pads. A periodic signal of those frequencies is reproduced exactly.
    On non-periodic data the jump between the two ends rings (Gibbs); the spec refuses it on
    layouts known not to be periodic.
"""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import torch
import torch.nn.functional as F

from autoq.bits import Resample
from autoq.errors import SpecError

_MODES = {1: "linear", 2: "bilinear"}
RESAMPLE_METHODS: tuple[str, ...] = get_args(Resample)
KEYS_A = -0.5
"""Keys' cubic-convolution parameter: −1/2 reproduces quadratics (third-order accurate)."""


def check_scale(scale: float) -> float:
    """Return ``scale`` if it lies in (0, 1], else raise a SpecError naming it."""
    if not (isinstance(scale, int | float) and 0.0 < scale <= 1.0):
        raise SpecError(f"scale factor must lie in (0, 1], got {scale!r}")
    return float(scale)


def network_shape(data_shape: tuple[int, ...], scale: float) -> tuple[int, ...]:
    """The grid a network runs on at ``scale``: every axis scaled and rounded, at least 2 points.

    Args:
        data_shape: the data's spatial shape, e.g. ``(256,)`` or ``(64, 64)``.
        scale: the spatial scale factor in (0, 1].
    """
    check_scale(scale)
    return tuple(max(2, math.floor(n * scale + 0.5)) for n in data_shape)


def resize(x: torch.Tensor, size: tuple[int, ...], method: Resample = "linear") -> torch.Tensor:
    """Resize ``(batch, channels, *space)`` to ``(batch, channels, *size)``.

    Cell-centred grids (``align_corners=False``, like the data files); the identity when the size
    is unchanged.

    Args:
        x: the tensor, 1 or 2 spatial dimensions.
        size: the new spatial shape.
        method: ``linear`` ((bi)linear), ``cubic`` or ``fourier`` (the module docstring).

    Raises:
        SpecError: not 1 or 2 spatial dimensions, or an unknown method.
    """
    spatial_dims = x.ndim - 2
    if spatial_dims not in _MODES:
        raise SpecError(f"resize supports 1 or 2 spatial dimensions, got tensor of shape "
                        f"{tuple(x.shape)}")
    if method not in RESAMPLE_METHODS:
        raise SpecError(f"resample method must be one of {list(RESAMPLE_METHODS)}, got "
                        f"{method!r}")
    if len(size) != spatial_dims:
        raise SpecError(f"resize of a tensor of shape {tuple(x.shape)} needs {spatial_dims} "
                        f"sizes, got {tuple(size)}")
    if tuple(x.shape[2:]) == tuple(size):
        return x
    if method == "linear":
        return F.interpolate(x, size=tuple(size), mode=_MODES[spatial_dims],
                             align_corners=False)
    if method == "cubic":
        for axis, m in enumerate(size, start=2):
            x = _cubic_axis(x, axis, m)
        return x
    if torch.onnx.is_in_onnx_export():
        # torch.onnx has no aten::fft_rfft: the same linear map as one real matrix per axis.
        for axis, m in enumerate(size, start=2):
            matrix = fourier_matrix(int(x.shape[axis]), m).to(dtype=x.dtype, device=x.device)
            last = x.dim() - 1  # non-negative: the exporter writes Transpose's perm as given
            x = torch.matmul(x.movedim(axis, last), matrix.T).movedim(last, axis)
        return x
    return _fourier(x, tuple(size))


def cubic_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The taps of Keys' cubic convolution from ``n_in`` to ``n_out`` cell-centred points.

    Output point ``j`` sits at source coordinate ``s = (j + 1/2)·n_in/n_out − 1/2`` and is
    ``Σ_t weight[j, t] · x[index[j, t]]``; samples beyond the ends, extrapolated quadratically
    from the three nearest, are folded into the weights of those three.

    Returns:
        ``(index, weight)``, each ``(n_out, min(4, n_in))``: int64 source indices (consecutive)
        and float64 weights.
    """
    taps = min(4, n_in)
    source = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    base = np.floor(source).astype(np.int64)
    dense = np.zeros((n_out, n_in))
    for offset in (-1, 0, 1, 2):
        points = base + offset
        weights = _keys(source - points)
        for j, (point, w) in enumerate(zip(points, weights, strict=True)):
            if 0 <= point < n_in:
                dense[j, point] += w
            else:
                near, coefficients = _extrapolation(int(point), n_in)
                dense[j, near] += w * coefficients
    start = np.clip(base - 1, 0, n_in - taps)
    index = start[:, None] + np.arange(taps)
    return index, np.take_along_axis(dense, index, axis=1)


def _keys(t: np.ndarray) -> np.ndarray:
    """Keys' kernel at distances ``t`` (``a = KEYS_A``)."""
    a, t = KEYS_A, np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _extrapolation(point: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, coefficients)``: the value at ``point`` outside ``0..n-1`` as the Lagrange
    extrapolation through the (up to) three nearest samples (degree ``min(2, n − 1)``)."""
    count = min(3, n)
    near = np.arange(count) if point < 0 else np.arange(n - count, n)
    coefficients = np.array([
        math.prod((point - other) / (node - other) for other in near if other != node)
        for node in near])
    return near, coefficients


def _cubic_axis(x: torch.Tensor, axis: int, n_out: int) -> torch.Tensor:
    """Keys' cubic convolution along ``axis`` to ``n_out`` points."""
    index, weight = cubic_taps(int(x.shape[axis]), n_out)  # int: a traced shape is a tensor
    shape = (n_out,) + (1,) * (x.dim() - axis - 1)
    out: torch.Tensor | None = None
    for t in range(index.shape[1]):
        term = (x.index_select(axis, torch.as_tensor(index[:, t], device=x.device))
                * torch.as_tensor(weight[:, t], dtype=x.dtype, device=x.device).view(shape))
        out = term if out is None else out + term
    assert out is not None  # at least one tap: every axis holds a point
    return out


def fourier_kept(n_in: int, n_out: int) -> int:
    """Frequencies per sign (the mean included) that ``fourier`` keeps between grids of
    ``n_in`` and ``n_out`` points: ``|k| < min(n_in, n_out) / 2``."""
    return (min(n_in, n_out) + 1) // 2


def fourier_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """The ``fourier`` resize of one axis as a real ``(n_out, n_in)`` matrix (float64):
    ``R[j, i] = (1/n_in) Σ_{|k| < h} cos(2πk((j + 1/2)/n_out − (i + 1/2)/n_in))``, ``h``
    from :func:`fourier_kept`. What the FFT path computes, written out (the ONNX export)."""
    h = fourier_kept(n_in, n_out)
    frequencies = torch.arange(-(h - 1), h, dtype=torch.float64)
    out_points = (torch.arange(n_out, dtype=torch.float64) + 0.5) / n_out
    in_points = (torch.arange(n_in, dtype=torch.float64) + 0.5) / n_in
    distance = out_points[:, None] - in_points[None, :]
    return torch.cos(2 * math.pi * distance[..., None] * frequencies).sum(-1) / n_in


def _signed(h: int, n: int) -> torch.Tensor:
    """Positions in an FFT of ``n`` points of the frequencies ``-(h-1) … h-1``, in FFT order."""
    return torch.cat([torch.arange(h), torch.arange(n - h + 1, n)])


def _fourier(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Spectral truncation / zero-padding of ``(batch, channels, *space)`` to ``size``.

    Axis by axis, the last one first, truncating after each transform (the other axes are then
    transformed on the kept columns only); the kept coefficients are multiplied once by
    ``e^{iπk(1/m − 1/n)}/n`` per axis (the cell-centred phase and the normalisation), then
    transformed back onto the new grid, unscaled.
    """
    signed_in = x.shape[2:-1]
    *signed_out, m_last = size
    axes = range(2, x.dim() - 1)
    kept = [fourier_kept(n, m) for n, m in zip(x.shape[2:], size, strict=True)]
    coefficients = torch.fft.rfft(x, dim=-1).narrow(-1, 0, kept[-1])
    for axis, n, h in zip(axes, signed_in, kept[:-1], strict=True):
        index = _signed(h, n).to(x.device)
        coefficients = torch.fft.fft(coefficients, dim=axis).index_select(axis, index)
    coefficients = coefficients * _fourier_factor(x.shape[2:], size, kept).to(
        device=x.device, dtype=coefficients.dtype)
    for axis, m, h in zip(axes, signed_out, kept[:-1], strict=True):
        shape = list(coefficients.shape)
        shape[axis] = m
        padded = coefficients.new_zeros(shape)
        padded = padded.index_copy(axis, _signed(h, m).to(x.device), coefficients)
        coefficients = torch.fft.ifft(padded, dim=axis, norm="forward")
    # irfft zero-fills the half spectrum from the kept frequencies up to m // 2 + 1 itself.
    return torch.fft.irfft(coefficients, n=m_last, dim=-1, norm="forward")


def _fourier_factor(shape_in: tuple[int, ...], shape_out: tuple[int, ...], kept: list[int]
                    ) -> torch.Tensor:
    """``Π_axis e^{iπk(1/m − 1/n)} / n`` over the kept frequencies, shaped ``(*kept)`` with the
    signed axes in FFT order (complex128)."""
    factor = torch.ones((), dtype=torch.complex128)
    for axis, (n, m, h) in enumerate(zip(shape_in, shape_out, kept, strict=True)):
        last = axis == len(kept) - 1
        k = torch.arange(h) if last else torch.cat([torch.arange(h), torch.arange(-(h - 1), 0)])
        phase = torch.exp(1j * math.pi * k.to(torch.float64) * (1 / m - 1 / n)) / n
        factor = factor[..., None] * phase
    return factor
