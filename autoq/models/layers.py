"""Layers shared by the models, for any supported spatial dimension.

Every matrix-multiplication-based operation is its own module (a convolution, ``nn.Linear``,
:class:`SpectralConv` or :class:`MatMul`), so the quantization side can give each one its own
quantizers, keyed by its ``named_modules()`` path. Tensors are ``(batch, channels, *spatial)``
unless stated otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import EllipsisType

import torch
import torch.nn.functional as F
from torch import nn

from autoq.bits import TRANSFORMS, Transform
from autoq.errors import SpecError

SPATIAL_DIMS = (1, 2)
"""The spatial dimensions the models support."""

# The one place where a layer type is chosen by dimension.
_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}


def check_io(*, spatial_dims: int, in_channels: int, out_channels: int) -> None:
    """Raise a SpecError naming the argument if a model's dimension or channels are invalid."""
    if spatial_dims not in SPATIAL_DIMS:
        raise SpecError(f"spatial_dims must be one of {SPATIAL_DIMS}, got {spatial_dims!r}")
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not (isinstance(value, int) and value > 0):
            raise SpecError(f"{name} must be a positive integer, got {value!r}")


def conv(
    spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, **kwargs
) -> nn.Module:
    """``nn.Conv1d`` or ``nn.Conv2d`` by dimension; ``kwargs`` go to the constructor."""
    return _CONV[spatial_dims](in_channels, out_channels, kernel_size, **kwargs)


def conv_transpose(
    spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, **kwargs
) -> nn.Module:
    """``nn.ConvTranspose1d`` or ``nn.ConvTranspose2d`` by dimension."""
    return _CONV_TRANSPOSE[spatial_dims](in_channels, out_channels, kernel_size, **kwargs)


def max_pool(spatial_dims: int, kernel_size: int) -> nn.Module:
    """``nn.MaxPool1d`` or ``nn.MaxPool2d`` by dimension."""
    return _MAX_POOL[spatial_dims](kernel_size)


def append_coordinates(x: torch.Tensor) -> torch.Tensor:
    """Append cell-centre coordinates in (0, 1) as channels: one per spatial axis.

    The coordinates are ``(i + 0.5) / n`` on every axis, so they mean the same place at every
    resolution (the data's grids are cell-centred too).

    Args:
        x: ``(batch, channels, *spatial)``.

    Returns:
        ``(batch, channels + len(spatial), *spatial)``.
    """
    spatial = x.shape[2:]
    axes = [(torch.arange(n, device=x.device, dtype=x.dtype) + 0.5) / n for n in spatial]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return torch.cat([x, grid.expand(x.shape[0], *grid.shape)], dim=1)


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str) -> torch.Tensor:
    """Pad every spatial axis at its end to a multiple of ``multiple``.

    Args:
        x: ``(batch, channels, *spatial)``.
        multiple: the size every spatial axis is rounded up to a multiple of.
        mode: ``"replicate"`` (repeat the edge) or ``"zeros"``.

    Returns:
        ``(batch, channels, *padded)``; undo with :func:`crop`.
    """
    pad: list[int] = []
    for n in reversed(x.shape[2:]):
        pad += [0, -n % multiple]
    if not any(pad):
        return x
    return F.pad(x, pad, mode="replicate" if mode == "replicate" else "constant")


def crop(x: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Keep the first ``spatial[i]`` points of every spatial axis of ``(batch, channels, ...)``."""
    index: tuple[EllipsisType | slice, ...] = (..., *(slice(0, n) for n in spatial))
    return x[index]


class MatMul(nn.Module):
    """``torch.matmul(a, b)`` as a module, so a product of two activations gets its own quantizers.

    The Galerkin attention uses two: ``key_value_product`` and ``query_product``.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Batched matrix product ``a @ b`` (``(..., n, k) × (..., k, m) → (..., n, m)``)."""
        return torch.matmul(a, b)


class SpectralConv(nn.Module):
    """Spectral convolution of the Fourier neural operator (Li et al. 2021, arXiv 2010.08895).

    A real FFT over the spatial axes, a learned complex linear map of the channels on each of the
    lowest modes, zero elsewhere, and the inverse FFT back. The dimension is ``len(modes)``. The
    transforms run axis by axis (``rfft`` on the last axis, then ``fft`` on the others, and back
    with ``ifft`` and ``irfft``) and drop the unkept modes after each axis: the result equals
    ``rfftn`` → truncation → ``irfftn``, and the transforms of the signed axes touch only the kept
    columns.

    Mode layout: on the last spatial axis (the half spectrum of the real FFT) frequencies
    ``0 … m-1`` are kept; on every other axis both signs are, ``0 … m-1`` and ``-m … -1``, in FFT
    order. The weights are stored in that same order, as two real tensors ``weight_real`` and
    ``weight_imag`` of shape ``(in_channels, out_channels, 2*m_1, …, 2*m_{d-1}, m_d)`` (1D:
    ``(in, out, m)``; 2D: ``(in, out, 2*m_1, m_2)``).

    A grid too coarse for the configured modes keeps only the modes it has, ``min(m, n // 2)``
    per sign on the signed axes and ``min(m, n // 2 + 1)`` on the last axis, and uses the matching
    slices of the weights, so the same layer runs at any resolution.

    The FFTs use ``norm="forward"``: the coefficients are grid averages, of the same size at every
    resolution, which keeps their quantization ranges independent of the scale factor.

    The layer has no bias (the FNO's pointwise convolution carries it). The complex product is
    written out as four real products in :meth:`mix`, which a quantized subclass can override to
    quantize its inputs (the Fourier coefficients and the two weights) and then call.

    Transforms (:data:`~autoq.bits.Transform`): by default (``transform == "fft"``) the FFTs
    above. :meth:`set_transform` ``("dft", grid)`` makes the layer compute the same truncated
    transforms as real DFT matrix products on that fixed grid (:func:`dft_stage_matrices`), in
    :attr:`dft_stages` products: the real DFT of the last axis, the complex DFTs of the signed
    axes on the kept columns, then the inverses in reverse order. The matrices become
    non-persistent buffers ``dft_matrix_<stage>`` and each product's signal operand passes
    :meth:`dft_operand`, so a quantized subclass quantizes both like a weight and an input. The
    ONNX export always takes this path (``aten::fft_rfft`` has no ONNX form), on the traced grid.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        modes: modes kept per axis, one entry per spatial axis.

    Shapes:
        ``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: Sequence[int]) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = tuple(modes)
        if len(self.modes) not in SPATIAL_DIMS or min(self.modes) < 1:
            raise SpecError(f"modes must be {SPATIAL_DIMS} positive integers, got {modes!r}")
        shape = (in_channels, out_channels, *(2 * m for m in self.modes[:-1]), self.modes[-1])
        # Li et al.'s initialisation: uniform in [0, 1 / (in · out)).
        scale = 1.0 / (in_channels * out_channels)
        self.weight_real = nn.Parameter(scale * torch.rand(shape))
        self.weight_imag = nn.Parameter(scale * torch.rand(shape))
        self._signed_axes = tuple(range(2, 1 + len(self.modes)))
        self.transform: Transform = "fft"
        self.dft_grid: tuple[int, ...] | None = None

    @property
    def dft_stages(self) -> int:
        """DFT matrix products of the ``dft`` transform: one forward and one inverse per axis."""
        return 2 * len(self.modes)

    def set_transform(self, transform: Transform, grid: Sequence[int] | None = None) -> None:
        """Compute the transforms as float FFTs (``"fft"``) or as real DFT matrix products on the
        fixed spatial grid ``grid`` (``"dft"``; the layer then refuses other grids).

        Raises:
            SpecError: an unknown transform, or ``"dft"`` without a grid of one size per axis.
        """
        if transform not in TRANSFORMS:
            raise SpecError(f"transform must be one of {list(TRANSFORMS)}, got {transform!r}")
        for stage in range(self.dft_stages):
            self._buffers.pop(dft_matrix_name(stage), None)
        self.transform, self.dft_grid = "fft", None
        if transform == "fft":
            return
        if grid is None or len(grid) != len(self.modes) or min(grid) < 1:
            raise SpecError(f"the dft transform needs the layer's spatial grid, one positive size "
                            f"per axis ({len(self.modes)}), got {grid!r}")
        self.dft_grid = tuple(int(n) for n in grid)
        matrices = dft_stage_matrices(self.dft_grid, self.kept_modes(self.dft_grid),
                                      dtype=self.weight_real.dtype,
                                      device=self.weight_real.device)
        for stage, matrix in enumerate(matrices):
            # Not persistent: a function of the grid, rebuilt by set_transform, never learned.
            self.register_buffer(dft_matrix_name(stage), matrix, persistent=False)
        self.transform = "dft"

    def kept_modes(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """Kept modes per axis on the grid ``spatial`` (per sign on every axis but the last)."""
        *signed, last = spatial
        kept = [min(m, n // 2) for m, n in zip(self.modes[:-1], signed, strict=True)]
        return (*kept, min(self.modes[-1], last // 2 + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``."""
        if self.transform == "dft" or torch.onnx.is_in_onnx_export():
            # (torch.onnx has no aten::fft_rfft: exported as real DFT matrix products.)
            return self._forward_dft(x)
        spatial = x.shape[2:]
        kept = self.kept_modes(spatial)
        # Axis by axis, last axis first, truncating after each transform: the signed axes are
        # then transformed only on the kept columns (this equals rfftn followed by truncation).
        coeff = torch.fft.rfft(x, dim=-1, norm="forward").narrow(-1, 0, kept[-1])
        for axis, k in zip(self._signed_axes, kept[:-1], strict=True):
            coeff = _corners(torch.fft.fft(coeff, dim=axis, norm="forward"), axis, k)
        weight_real = _take_modes(self.weight_real, kept)
        weight_imag = _take_modes(self.weight_imag, kept)
        out_real, out_imag = self.mix(coeff.real, coeff.imag, weight_real, weight_imag)
        out = torch.complex(out_real, out_imag)
        for axis, n in zip(self._signed_axes, spatial[:-1], strict=True):
            out = torch.fft.ifft(_fill_corners(out, axis, n), dim=axis, norm="forward")
        # irfft zero-fills the half spectrum from the kept modes up to n // 2 + 1 itself.
        return torch.fft.irfft(out, n=spatial[-1], dim=-1, norm="forward")


    def _forward_dft(self, x: torch.Tensor) -> torch.Tensor:
        """The same layer with the FFTs written as real DFT matrix products at ``x``'s grid
        (exact to float rounding; ONNX-exportable), one :meth:`dft_operand` per product."""
        spatial = tuple(x.shape[2:])
        kept = self.kept_modes(spatial)
        matrices = self._dft_matrices(spatial, kept, x)
        # Forward: the real DFT of the last axis, then complex DFTs of the signed axes.
        (signal,) = self.dft_operand(0, (x,))
        real, imag = torch.matmul(signal, matrices[0][0]), torch.matmul(signal, matrices[0][1])
        for stage, axis in enumerate(self._signed_axes, start=1):
            real, imag = self.dft_operand(stage, (real, imag))
            real, imag = _complex_matmul_on_axis(real, imag, matrices[stage], axis)
        weight_real = _take_modes(self.weight_real, kept)
        weight_imag = _take_modes(self.weight_imag, kept)
        real, imag = self.mix(real, imag, weight_real, weight_imag)
        # Inverse: the signed axes, then the real inverse of the last axis.
        inverse = len(self.modes)
        for stage, axis in enumerate(self._signed_axes, start=inverse):
            real, imag = self.dft_operand(stage, (real, imag))
            real, imag = _complex_matmul_on_axis(real, imag, matrices[stage], axis)
        real, imag = self.dft_operand(self.dft_stages - 1, (real, imag))
        cos, sin = matrices[-1]
        return torch.matmul(real, cos) + torch.matmul(imag, sin)

    def _dft_matrices(self, spatial: tuple[int, ...], kept: Sequence[int], x: torch.Tensor
                      ) -> list[torch.Tensor]:
        """Each stage's ``(2, rows, cols)`` pair: the layer's buffers under the ``dft``
        transform (what a quantized subclass quantizes), else built for ``x``'s grid."""
        if self.transform != "dft":
            return dft_stage_matrices(spatial, kept, dtype=x.dtype, device=x.device)
        if spatial != self.dft_grid:
            raise SpecError(f"this spectral convolution runs its transforms as DFT matrices of "
                            f"the grid {self.dft_grid}; got an input on the grid {spatial}")
        return [getattr(self, dft_matrix_name(stage)) for stage in range(self.dft_stages)]

    def dft_operand(self, stage: int, parts: tuple[torch.Tensor, ...]
                    ) -> tuple[torch.Tensor, ...]:
        """The signal entering DFT product ``stage`` (:attr:`dft_stages`), as is here; a
        quantized subclass quantizes it.

        Args:
            stage: 0 (the layer's input, into the last axis' real DFT), then each signed axis'
                forward DFT, each signed axis' inverse, and ``dft_stages - 1`` (the last axis'
                real inverse).
            parts: ``(x,)`` at stage 0, ``(real, imag)`` at the others; ``(batch, channels,
                ...)`` with the axes transformed so far at their kept modes.

        Returns:
            ``parts``.
        """
        del stage
        return parts

    def mix(
        self,
        coeff_real: torch.Tensor,
        coeff_imag: torch.Tensor,
        weight_real: torch.Tensor,
        weight_imag: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Complex channel mixing per mode, as real arithmetic (4 real MACs per complex MAC).

        ``out[b, o, k] = Σ_i coeff[b, i, k] · weight[i, o, k]`` with complex numbers split into
        real and imaginary parts.

        Args:
            coeff_real: ``(batch, in_channels, *kept)``, real part of the kept coefficients.
            coeff_imag: ``(batch, in_channels, *kept)``, imaginary part.
            weight_real: ``(in_channels, out_channels, *kept)``, the kept weights' real part.
            weight_imag: ``(in_channels, out_channels, *kept)``, imaginary part.

        Returns:
            ``(out_real, out_imag)``, each ``(batch, out_channels, *kept)``.
        """
        axes = "xyz"[: coeff_real.dim() - 2]
        equation = f"bi{axes},io{axes}->bo{axes}"
        out_real = torch.einsum(equation, coeff_real, weight_real) - torch.einsum(
            equation, coeff_imag, weight_imag
        )
        out_imag = torch.einsum(equation, coeff_real, weight_imag) + torch.einsum(
            equation, coeff_imag, weight_real
        )
        return out_real, out_imag

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"


def _corners(t: torch.Tensor, axis: int, k: int) -> torch.Tensor:
    """The first and last ``k`` entries along ``axis``: frequencies ``0 … k-1`` and ``-k … -1``."""
    size = t.shape[axis]
    if 2 * k >= size:
        return t
    return torch.cat([t.narrow(axis, 0, k), t.narrow(axis, size - k, k)], dim=axis)


def _fill_corners(t: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    """Inverse of :func:`_corners`: zeros between the two halves along ``axis``, to ``size``."""
    k = t.shape[axis] // 2
    if 2 * k == size:
        return t
    zeros_shape = list(t.shape)
    zeros_shape[axis] = size - 2 * k
    return torch.cat([t.narrow(axis, 0, k), t.new_zeros(zeros_shape), t.narrow(axis, k, k)], axis)


def _take_modes(weight: torch.Tensor, kept: Sequence[int]) -> torch.Tensor:
    """The slices of a ``(in, out, 2*m_1, …, m_d)`` weight for ``kept`` modes per axis."""
    for axis, k in enumerate(kept[:-1], start=2):
        weight = _corners(weight, axis, k)
    return weight.narrow(-1, 0, kept[-1])


class GalerkinAttention(nn.Module):
    """Multi-head Galerkin attention (Cao 2021, arXiv 2105.14995): softmax-free, linear in n.

    ``Attn(Q, K, V) = Q · (LN(K)ᵀ · LN(V)) / n`` per head, where ``n`` is the number of tokens and
    LN a layer norm over each head's channels (one LayerNorm shared by the heads). The ``1/n``
    scaling is applied to the output of ``key_value_product``, before ``query_product``, so the
    second input of ``query_product`` is an average whose range does not depend on the resolution.

    Submodules, each a separately quantizable product: ``query``, ``key``, ``value``, ``output``
    (``nn.Linear``), ``key_value_product`` (``Kᵀ V``) and ``query_product`` (``Q · KV``)
    (:class:`MatMul`).

    Args:
        width: token channels.
        heads: number of heads; must divide ``width``.

    Shapes:
        ``(batch, tokens, width) → (batch, tokens, width)``.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise SpecError(f"heads={heads} must divide width={width}")
        self.heads = heads
        head_width = width // heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.key_norm = nn.LayerNorm(head_width)
        self.value_norm = nn.LayerNorm(head_width)
        self.key_value_product = MatMul()
        self.query_product = MatMul()
        self.output = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, tokens, width) → (batch, tokens, width)``."""
        batch, tokens, width = x.shape
        q = self._split_heads(self.query(x))
        k = self.key_norm(self._split_heads(self.key(x)))
        v = self.value_norm(self._split_heads(self.value(x)))
        key_value = self.key_value_product(k.transpose(-2, -1), v) / tokens
        attended = self.query_product(q, key_value)
        return self.output(attended.transpose(1, 2).reshape(batch, tokens, width))

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, tokens, width) → (batch, heads, tokens, width / heads)``."""
        batch, tokens, width = x.shape
        return x.reshape(batch, tokens, self.heads, width // self.heads).transpose(1, 2)


DFTMatrices = tuple[
    tuple[torch.Tensor, torch.Tensor],  # last axis: real DFT (cos, -sin), (n, k)
    list[tuple[torch.Tensor, torch.Tensor]],  # each signed axis: complex DFT, (2k, n)
]


def dft_matrices(
    spatial: Sequence[int],
    kept: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[DFTMatrices, DFTMatrices]:
    """Real matrices of the truncated ``rfftn`` / ``irfftn`` (``norm="forward"``) on a fixed grid.

    Modes follow :class:`~autoq.models.layers.SpectralConv`: on the last axis frequencies
    ``0 … k-1``; on every other axis ``0 … k-1`` and ``-k … -1`` in FFT order. The forward pair of
    the last axis maps a real signal to the real and imaginary parts of its kept half spectrum; the
    inverse pair of the last axis weights every frequency by its multiplicity in the full spectrum
    (1 for the mean and the Nyquist frequency, 2 otherwise) and drops the imaginary parts that
    ``irfft`` ignores. Built in float64 and then cast, so they are exact to ``dtype``'s rounding.

    Args:
        spatial: grid shape ``(n_1, …, n_d)``.
        kept: kept modes per axis (:meth:`SpectralConv.kept_modes`).
        dtype: dtype of the matrices.
        device: device of the matrices.

    Returns:
        ``(forward, inverse)``; each is ``((cos, sin), [(cos, sin) per signed axis])``. Forward:
        last axis ``(n_d, k_d)``, signed axes ``(2 k_i, n_i)``. Inverse: last axis ``(k_d, n_d)``,
        signed axes ``(n_i, 2 k_i)``.
    """

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(dtype=dtype, device=device)

    *signed, n = spatial
    k = kept[-1]
    grid = torch.arange(n, dtype=torch.float64)
    freq = torch.arange(k, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(grid, freq) / n  # (n, k)
    multiplicity = torch.full((k,), 2.0, dtype=torch.float64)
    multiplicity[0] = 1.0
    if n % 2 == 0 and k == n // 2 + 1:
        multiplicity[-1] = 1.0
    forward_last = (cast(torch.cos(angle) / n), cast(-torch.sin(angle) / n))
    inverse_last = (cast(multiplicity[:, None] * torch.cos(angle).T),
                    cast(-multiplicity[:, None] * torch.sin(angle).T))
    forward_signed, inverse_signed = [], []
    for n_i, k_i in zip(signed, kept[:-1], strict=True):
        index = torch.cat([torch.arange(k_i), torch.arange(n_i - k_i, n_i)]).to(torch.float64)
        angle = 2 * math.pi * torch.outer(index, torch.arange(n_i, dtype=torch.float64)) / n_i
        forward_signed.append((cast(torch.cos(angle) / n_i), cast(-torch.sin(angle) / n_i)))
        inverse_signed.append((cast(torch.cos(angle).T), cast(torch.sin(angle).T)))
    return (forward_last, forward_signed), (inverse_last, inverse_signed)


def _complex_matmul_on_axis(
    real: torch.Tensor, imag: torch.Tensor, matrix: torch.Tensor, axis: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a complex matrix ``(m_re + i m_im)``, stacked as ``(2, out, n)``, along ``axis``."""
    m_re, m_im = matrix
    # Non-negative axes: the ONNX exporter writes a negative one into Transpose's perm as is.
    last = real.dim() - 1
    real, imag = real.movedim(axis, last), imag.movedim(axis, last)
    out_real = torch.matmul(real, m_re.T) - torch.matmul(imag, m_im.T)
    out_imag = torch.matmul(imag, m_re.T) + torch.matmul(real, m_im.T)
    return out_real.movedim(last, axis), out_imag.movedim(last, axis)


def dft_matrix_name(stage: int) -> str:
    """The buffer (and parameter-quantizer) name of the DFT matrix pair of product ``stage``."""
    return f"dft_matrix_{stage}"


def dft_stage_matrices(
    spatial: Sequence[int],
    kept: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """:func:`dft_matrices` as the products of :class:`SpectralConv`'s ``dft`` transform apply
    them, one stacked ``(cos, sin)`` pair ``(2, rows, cols)`` per product: the last axis'
    forward ``(n_d, k_d)``, each signed axis' forward ``(2 k_i, n_i)``, each signed axis'
    inverse ``(n_i, 2 k_i)``, the last axis' inverse ``(k_d, n_d)``."""
    (forward_last, forward_signed), (inverse_last, inverse_signed) = dft_matrices(
        spatial, kept, dtype=dtype, device=device)
    pairs = [forward_last, *forward_signed, *inverse_signed, inverse_last]
    return [torch.stack(pair) for pair in pairs]
