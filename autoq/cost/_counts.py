"""Analytic operation counts for the work DeepSpeed's flops profiler does not see or miscounts.

Every count is for batch size 1 unless a ``batch`` is given, and follows one convention, the one
DeepSpeed uses for ``F.linear``: a dot product of ``k`` terms is ``k`` multiplications and ``k``
additions (one multiply-accumulate per term, accumulating into zero or into the bias). Additions
that combine results element-wise (a bias, the real and imaginary parts of a complex product)
count one per output element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Operations:
    """Multiplications ``M`` and additions ``A`` of one layer's forward pass.

    Attributes:
        multiplications: real multiplications (the profiler's MACs).
        additions: every other real operation, counted as an addition (FLOPs − MACs).
    """

    multiplications: int
    additions: int

    def __add__(self, other: Operations) -> Operations:
        return Operations(
            self.multiplications + other.multiplications, self.additions + other.additions
        )


# A radix-2 butterfly is one complex multiplication (4 real mults, 2 real adds) and two complex
# additions (4 real adds): 10 real operations per butterfly, N/2 · log2 N butterflies, hence the
# classic 5 N log2 N, of which 2 N log2 N are multiplications and 3 N log2 N additions. A real
# transform of N points (forward or inverse) costs about half a complex one of N points.
_COMPLEX_FFT_MULTIPLICATIONS = 2.0
_COMPLEX_FFT_ADDITIONS = 3.0
_REAL_FFT_FRACTION = 0.5


def fft_operations(n: int, *, lines: int, real: bool) -> Operations:
    """Real operations of ``lines`` one-dimensional FFTs of ``n`` points.

    ``5 N log2 N`` per complex transform (``2 N log2 N`` multiplications, ``3 N log2 N``
    additions), half that per real one; rounded to the nearest integer (``log2`` of a length that
    is not a power of two is not one).

    Args:
        n: transform length (of the real signal for a real transform).
        lines: number of transforms (every other axis of the tensor, times the batch).
        real: a real-to-complex or complex-to-real transform.
    """
    n_log_n = lines * n * math.log2(n) * (_REAL_FFT_FRACTION if real else 1.0)
    return Operations(
        round(_COMPLEX_FFT_MULTIPLICATIONS * n_log_n), round(_COMPLEX_FFT_ADDITIONS * n_log_n)
    )


def spectral_mixing_operations(
    *, in_channels: int, out_channels: int, kept: Sequence[int], batch: int = 1
) -> Operations:
    """Real operations of a spectral convolution's channel mixing on the kept modes.

    The complex product is four real products (:meth:`~autoq.models.layers.SpectralConv.mix`),
    each ``in_channels · out_channels`` multiply-accumulates per kept mode, then one subtraction
    (real part) and one addition (imaginary part) per output coefficient.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kept: modes kept per axis on this grid (per sign on all axes but the last), as
            :meth:`~autoq.models.layers.SpectralConv.kept_modes` returns them.
        batch: batch size.
    """
    *signed, last = kept
    modes = math.prod(2 * k for k in signed) * last
    macs = 4 * batch * in_channels * out_channels * modes
    return Operations(macs, macs + 2 * batch * out_channels * modes)


def dft_operations(
    *, channels: int, spatial: Sequence[int], kept: Sequence[int], inverse: bool, batch: int = 1
) -> Operations:
    """Real operations of a spectral convolution's truncated transform written as DFT matrix
    products (its ``dft`` transform, :meth:`~autoq.models.layers.SpectralConv.set_transform`),
    product by product as the layer computes them.

    Forward: the real DFT of the last axis, ``x @ cos`` and ``x @ sin`` (two real products of
    ``n_d`` terms per kept mode), then for each signed axis in turn a complex DFT of the kept
    columns only: four real products of ``n_i`` terms per output, then one subtraction (real
    part) and one addition (imaginary part) per output. Inverse, in reverse: each signed axis'
    complex inverse (four real products of ``2 k_i`` terms per output, two combining additions),
    then the last axis' real inverse ``real @ cos + imag @ sin`` (two real products of ``k_d``
    terms per grid point and one addition joining them). A product of ``t`` terms is ``t``
    multiplications and ``t`` additions (:mod:`autoq.cost._counts`' convention).

    Args:
        channels: channels transformed (the layer's input channels forward, its output channels
            inverse).
        spatial: the grid ``(n_1, …, n_d)``.
        kept: modes kept per axis on that grid (per sign on all axes but the last), as
            :meth:`~autoq.models.layers.SpectralConv.kept_modes` returns them.
        inverse: the inverse transform (spectrum to grid) rather than the forward one.
        batch: batch size.
    """
    *signed, n_last = spatial
    shape = [batch * channels, *signed, kept[-1]]  # after the last axis' forward DFT
    operations = Operations(0, 0)

    def complex_dft(axis: int, size_out: int, terms: int) -> Operations:
        shape[axis] = size_out
        outputs = math.prod(shape)
        return Operations(4 * outputs * terms, 4 * outputs * terms + 2 * outputs)

    if not inverse:
        points = batch * channels * math.prod(signed)
        operations += Operations(2 * points * n_last * kept[-1], 2 * points * n_last * kept[-1])
        for axis, (n, k) in enumerate(zip(signed, kept[:-1], strict=True), start=1):
            operations += complex_dft(axis, 2 * k, n)
        return operations
    for axis, k in enumerate(kept[:-1], start=1):
        shape[axis] = 2 * k  # the spectrum: every signed axis at its kept modes
    for axis, (n, k) in enumerate(zip(signed, kept[:-1], strict=True), start=1):
        operations += complex_dft(axis, n, 2 * k)
    points = batch * channels * math.prod(spatial)
    return operations + Operations(2 * points * kept[-1], 2 * points * kept[-1] + points)


def contraction_operations(*, outputs: int, terms: int, complex_operands: int) -> Operations:
    """Real operations of a tensor contraction: ``outputs`` dot products of ``terms`` terms each.

    Real operands: one multiply-accumulate per term. A complex operand doubles the real products
    (real × complex: two real dot products, one per part of the complex operand); two complex
    operands make four real dot products per output, as in
    :func:`spectral_mixing_operations`, then one subtraction (real part) and one addition
    (imaginary part) per output combine them. A product with nothing summed is a dot product of
    one term.

    Args:
        outputs: elements of the result (batch included).
        terms: products summed into each output element (1 when no index is summed).
        complex_operands: how many of the two operands are complex (0, 1 or 2).
    """
    if complex_operands not in (0, 1, 2):
        raise ValueError(f"complex_operands must be 0, 1 or 2, got {complex_operands}")
    products = (1, 2, 4)[complex_operands]
    macs = products * outputs * terms
    return Operations(macs, macs + (2 * outputs if complex_operands == 2 else 0))


def matmul_operations(*, batch: int, n: int, k: int, m: int) -> Operations:
    """Real operations of ``(batch, n, k) @ (batch, k, m)``: ``n·k·m`` MACs per batch entry.

    ``batch`` is the product of the (broadcast) leading dimensions, e.g. the heads.
    """
    macs = batch * n * k * m
    return Operations(macs, macs)


def resize_operations(
    *, channels: int, in_shape: Sequence[int], out_shape: Sequence[int], method: str = "linear"
) -> Operations:
    """Real operations of resizing ``channels`` channels from ``in_shape`` to ``out_shape`` as
    :func:`autoq.data.resample.resize` computes it.

    ``linear``: every output point is a weighted sum of ``2**dims`` input points (2 taps in 1D, 4
    in 2D, as (bi)linear interpolation computes it, not separably): one multiply-accumulate per
    tap. ``cubic``: axis after axis (the first spatial axis first), every point of the
    intermediate result a sum of ``min(4, n)`` taps of its axis of ``n`` input points. Source
    indices and weights depend only on the grids and are not counted. ``fourier``: the FFTs as
    computed (a real FFT of the last axis; complex FFTs of every other axis on the kept columns
    only, :func:`fft_operations`), one complex multiplication per kept coefficient (phase and
    normalisation, :func:`contraction_operations`), then the inverse FFTs the same way round.

    Args:
        channels: channels resized (times the batch size).
        in_shape: the grid resized from.
        out_shape: the grid resized to.
        method: ``linear``, ``cubic`` or ``fourier``.

    Raises:
        ValueError: an unknown method, or grids of different dimensions.
    """
    if len(in_shape) != len(out_shape):
        raise ValueError(f"in_shape {tuple(in_shape)} and out_shape {tuple(out_shape)} must have "
                         f"as many axes")
    if method == "linear":
        macs = channels * math.prod(out_shape) * 2 ** len(out_shape)
        return Operations(macs, macs)
    if method == "cubic":
        macs = 0
        current = list(in_shape)
        for axis, n_out in enumerate(out_shape):
            taps = min(4, current[axis])
            current[axis] = n_out
            macs += channels * math.prod(current) * taps
        return Operations(macs, macs)
    if method == "fourier":
        return _fourier_resize_operations(channels, tuple(in_shape), tuple(out_shape))
    raise ValueError(f"resize method must be linear, cubic or fourier, got {method!r}")


def _fourier_resize_operations(channels: int, in_shape: tuple[int, ...],
                               out_shape: tuple[int, ...]) -> Operations:
    """The operations of ``fourier`` (:func:`resize_operations`)."""
    *signed_in, n_last = in_shape
    *signed_out, m_last = out_shape
    # Frequencies per sign kept on each axis: |k| < min(n, m) / 2 (the mean counted once).
    halves = [(min(n, m) + 1) // 2 for n, m in zip(in_shape, out_shape, strict=True)]
    kept = [2 * h - 1 for h in halves[:-1]] + [halves[-1]]
    total = fft_operations(n_last, lines=channels * math.prod(signed_in), real=True)
    # resize() takes 1 or 2 spatial axes: at most one signed axis, transformed on the kept
    # columns of the last.
    current = [*signed_in, kept[-1]]
    for n in signed_in:
        total += fft_operations(n, lines=channels * math.prod(current) // n, real=False)
    total += contraction_operations(outputs=channels * math.prod(kept), terms=1,
                                    complex_operands=2)
    for axis, m in enumerate(signed_out):
        current[axis] = m
        total += fft_operations(m, lines=channels * math.prod(current) // m, real=False)
    return total + fft_operations(m_last, lines=channels * math.prod(signed_out), real=True)
