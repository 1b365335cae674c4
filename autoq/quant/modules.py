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
    complex multiply-accumulate would read with one scale. Under the ``fft`` transform the FFTs
    stay float (the cost model prices them as 16-bit work). Under the ``dft`` transform
    (:meth:`~autoq.models.layers.SpectralConv.set_transform`) every DFT matrix product is
    quantized like a layer of its own at the layer's bits: ``param_quantizers["dft_matrix_<s>"]``
    (weight bits, symmetric) the constant matrix pair of product ``s`` (cos and sin on one grid,
    the two halves of one complex matrix), and ``input_quantizers[1 + s]``
    (:func:`dft_input_slot`; activation bits, asymmetric) the signal entering it, real and
    imaginary parts on one grid.

:class:`QuantizedMatMul`
    ``input_quantizers[0]`` quantizes the left operand (``act_bits``, asymmetric),
    ``input_quantizers[1]`` the right operand, which plays the weight's part (``weight_bits``,
    symmetric; :mod:`autoq.precision`).

ONNX export: ``torch.onnx`` cannot export ``aten::fft_rfft``, so while ``torch.onnx.export`` runs
the spectral layer computes its truncated transforms as explicit real DFT matrix products on the
traced grid (:func:`autoq.models.layers.dft_matrices`): exact up to float rounding, and the same
quantizers act on the same tensors, so the exported graph carries every encoding of the
simulation.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from aimet_torch.nn import QuantizationMixin
from aimet_torch.quantization import QuantizedTensorBase
from torch import nn

from autoq.models.layers import MatMul, SpectralConv

COEFFICIENT_SLOT = 0
"""The input-quantizer slot of a spectral convolution's kept coefficients entering its mix."""


def dft_input_slot(stage: int) -> int:
    """The input-quantizer slot of the signal entering DFT product ``stage`` of a spectral
    convolution (:meth:`~autoq.models.layers.SpectralConv.dft_operand`)."""
    return COEFFICIENT_SLOT + 1 + stage


def _apply(quantizer: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """``quantizer(x)`` as a plain tensor (AIMET's tensor subclass costs CPU time downstream)."""
    if quantizer is None:
        return x
    out = quantizer(x)
    return out.dequantize() if isinstance(out, QuantizedTensorBase) else out


@QuantizationMixin.implements(SpectralConv)
class QuantizedSpectralConv(QuantizationMixin, SpectralConv):
    """:class:`~autoq.models.layers.SpectralConv` with quantized coefficients and weights.

    Slots: one input quantizer for the Fourier coefficients and one per DFT product (used under
    the ``dft`` transform), one parameter quantizer per weight (and per DFT matrix pair under the
    ``dft`` transform, added with it), one output quantizer.

    Shapes:
        ``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``.
    """

    # Set up by AIMET's mixin; declared for the type checker, as aimet_torch has no type hints.
    input_quantizers: nn.ModuleList
    output_quantizers: nn.ModuleList
    param_quantizers: nn.ModuleDict
    _patch_quantized_parameters: Callable[[], AbstractContextManager[None]]

    def __quant_init__(self) -> None:
        super().__quant_init__()
        # AIMET marks an unused quantizer slot with None, which ModuleList holds (torch's hints
        # allow modules only).
        self.input_quantizers = nn.ModuleList(
            [None] * dft_input_slot(self.dft_stages))  # type: ignore[list-item]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``."""
        # The DFT matrices of the dft transform are buffers with parameter quantizers: patched
        # here with the weights.
        with self._patch_quantized_parameters():
            out = super().forward(x)
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
        quantizer = self.input_quantizers[COEFFICIENT_SLOT]
        if quantizer is not None:
            coeff_real, coeff_imag = _apply(quantizer, torch.stack((coeff_real, coeff_imag)))
        return super().mix(coeff_real, coeff_imag, weight_real, weight_imag)

    def dft_operand(self, stage: int, parts: tuple[torch.Tensor, ...]
                    ) -> tuple[torch.Tensor, ...]:
        """The signal entering DFT product ``stage``, quantized when the slot has a quantizer
        (a complex signal's real and imaginary parts on one grid).

        Args:
            stage: the product (:meth:`~autoq.models.layers.SpectralConv.dft_operand`).
            parts: ``(x,)`` or ``(real, imag)``, each ``(batch, channels, ...)``.

        Returns:
            ``parts``, quantized.
        """
        quantizer = self.input_quantizers[dft_input_slot(stage)]
        if quantizer is None:
            return parts
        return tuple(_apply(quantizer, torch.stack(parts)).unbind(0))



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
