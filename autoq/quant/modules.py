"""Quantized definitions of the two layers AIMET does not know: spectral convolution and MatMul.

Both follow the paper's scheme (section 3.3): the inputs of the matrix multiplication and its
weights are quantized, the output stays float. The quantizer slots are AIMET's own
(``input_quantizers``, ``param_quantizers``, ``output_quantizers``); all start as ``None`` and
:func:`autoq.quant.build_sim` fills the ones a trial asks for.

:class:`QuantizedSpectralConv`
    ``param_quantizers["weight_real"]`` and ``["weight_imag"]`` quantize the two weight tensors
    (each its own symmetric grid); ``input_quantizers[0]`` quantizes the kept Fourier coefficients
    entering :meth:`~autoq.models.layers.SpectralConv.mix`: the real and imaginary parts share one
    asymmetric grid, since they are the two halves of one complex activation that an integer
    complex multiply-accumulate would read with one scale. The FFTs stay float (the cost model
    prices them as 16-bit work).

:class:`QuantizedMatMul`
    ``input_quantizers[0]`` quantizes the left operand (``act_bits``, asymmetric),
    ``input_quantizers[1]`` the right operand, which plays the weight's part (``weight_bits``,
    symmetric; :mod:`autoq.precision`).

ONNX export: ``torch.onnx`` cannot export ``aten::fft_rfft``, so while ``torch.onnx.export`` runs
the spectral layer computes its truncated transforms as explicit real DFT matrix products on the
traced grid (:func:`dft_matrices`): exact up to float rounding, and the same quantizers act on the
same tensors, so the exported graph carries every encoding of the simulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import torch
from aimet_torch.nn import QuantizationMixin
from aimet_torch.quantization import QuantizedTensorBase
from torch import nn

from autoq.models.layers import MatMul, SpectralConv


def _apply(quantizer: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """``quantizer(x)`` as a plain tensor (AIMET's tensor subclass costs CPU time downstream)."""
    if quantizer is None:
        return x
    out = quantizer(x)
    return out.dequantize() if isinstance(out, QuantizedTensorBase) else out


@QuantizationMixin.implements(SpectralConv)
class QuantizedSpectralConv(QuantizationMixin, SpectralConv):
    """:class:`~autoq.models.layers.SpectralConv` with quantized coefficients and weights.

    AIMET's default slots fit: one input quantizer (used for the Fourier coefficients), one
    parameter quantizer per weight, one output quantizer.

    Shapes:
        ``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``.
    """

    # Set up by AIMET's mixin; declared for the type checker, as aimet_torch has no type hints.
    input_quantizers: nn.ModuleList
    output_quantizers: nn.ModuleList
    param_quantizers: nn.ModuleDict
    _patch_quantized_parameters: Callable[[], AbstractContextManager[None]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``."""
        with self._patch_quantized_parameters():
            exporting = torch.onnx.is_in_onnx_export()
            out = self._forward_dft(x) if exporting else super().forward(x)
        return _apply(self.output_quantizers[0], out)

    def mix(
        self,
        coeff_real: torch.Tensor,
        coeff_imag: torch.Tensor,
        weight_real: torch.Tensor,
        weight_imag: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize the kept coefficients (one grid for both parts), then mix as the float layer.

        Args:
            coeff_real: ``(batch, in_channels, *kept)``.
            coeff_imag: ``(batch, in_channels, *kept)``.
            weight_real: ``(in_channels, out_channels, *kept)``, already quantized.
            weight_imag: ``(in_channels, out_channels, *kept)``, already quantized.

        Returns:
            ``(out_real, out_imag)``, each ``(batch, out_channels, *kept)``.
        """
        quantizer = self.input_quantizers[0]
        if quantizer is not None:
            coeff_real, coeff_imag = _apply(quantizer, torch.stack((coeff_real, coeff_imag)))
        return super().mix(coeff_real, coeff_imag, weight_real, weight_imag)

    def _forward_dft(self, x: torch.Tensor) -> torch.Tensor:
        """The same layer with the FFTs written as real DFT matrix products (ONNX-exportable)."""
        spatial = tuple(x.shape[2:])
        kept = self.kept_modes(spatial)
        forward, inverse = dft_matrices(spatial, kept, dtype=x.dtype, device=x.device)
        coeff_real, coeff_imag = _dft(x, forward)
        weight_real = _take_weight_modes(self.weight_real, kept)
        weight_imag = _take_weight_modes(self.weight_imag, kept)
        out_real, out_imag = self.mix(coeff_real, coeff_imag, weight_real, weight_imag)
        return _inverse_dft(out_real, out_imag, inverse)


@QuantizationMixin.implements(MatMul)
class QuantizedMatMul(QuantizationMixin, MatMul):
    """:class:`~autoq.models.layers.MatMul` with both operands quantized.

    Shapes:
        ``(..., n, k) × (..., k, m) → (..., n, m)``.
    """

    # Set up by AIMET's mixin; declared for the type checker, as aimet_torch has no type hints.
    input_quantizers: nn.ModuleList
    output_quantizers: nn.ModuleList

    def __quant_init__(self) -> None:
        super().__quant_init__()
        # AIMET marks an unused quantizer slot with None, which ModuleList holds (torch's hints
        # allow modules only).
        self.input_quantizers = nn.ModuleList([None, None])  # type: ignore[list-item]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a @ b`` of the quantized operands."""
        a = _apply(self.input_quantizers[0], a)
        b = _apply(self.input_quantizers[1], b)
        return _apply(self.output_quantizers[0], super().forward(a, b))


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
    real: torch.Tensor, imag: torch.Tensor, matrix: tuple[torch.Tensor, torch.Tensor], axis: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a complex matrix ``(m_re + i m_im)`` of shape ``(out, n)`` along ``axis``."""
    m_re, m_im = matrix
    real, imag = real.movedim(axis, -1), imag.movedim(axis, -1)
    out_real = torch.matmul(real, m_re.T) - torch.matmul(imag, m_im.T)
    out_imag = torch.matmul(imag, m_re.T) + torch.matmul(real, m_im.T)
    return out_real.movedim(-1, axis), out_imag.movedim(-1, axis)


def _dft(x: torch.Tensor, forward: DFTMatrices) -> tuple[torch.Tensor, torch.Tensor]:
    """Kept modes of ``rfftn(x, norm="forward")``: ``(b, c, *spatial) → 2 × (b, c, *kept)``."""
    (cos, sin), signed = forward
    real, imag = torch.matmul(x, cos), torch.matmul(x, sin)
    for axis, matrix in enumerate(signed, start=2):
        real, imag = _complex_matmul_on_axis(real, imag, matrix, axis)
    return real, imag


def _inverse_dft(real: torch.Tensor, imag: torch.Tensor, inverse: DFTMatrices) -> torch.Tensor:
    """``irfftn`` of kept modes zero-filled: ``2 × (b, c, *kept) → (b, c, *spatial)``."""
    (cos, sin), signed = inverse
    for axis, matrix in enumerate(signed, start=2):
        real, imag = _complex_matmul_on_axis(real, imag, matrix, axis)
    return torch.matmul(real, cos) + torch.matmul(imag, sin)


def _take_weight_modes(weight: torch.Tensor, kept: Sequence[int]) -> torch.Tensor:
    """The kept modes of a weight ``(in, out, 2 m_1, …, m_d)``, in the order of :func:`_dft`:
    on signed axes the first and last ``k`` entries, on the last axis the first ``k``."""
    for axis, k in enumerate(kept[:-1], start=2):
        size = weight.shape[axis]
        weight = torch.cat([weight.narrow(axis, 0, k), weight.narrow(axis, size - k, k)], dim=axis)
    return weight.narrow(-1, 0, kept[-1])
