"""Quantized definition of neuraloperator's spectral convolution (``neuraloperator==2.0.0``).

:class:`neuralop.layers.spectral_convolution.SpectralConv` keeps its spectral weight as a
tensorly-torch ``FactorizedTensor`` child named ``weight``: a ``DenseTensor`` (one complex tensor
``(in, out, *modes)``; neuraloperator's FNO) or a ``TuckerTensor`` (core + one factor per axis),
``CPTensor`` (weights + factors) or ``TTTensor`` (cores) (its TFNO). In its forward pass it takes
the ``rfftn`` of the input, selects the kept Fourier coefficients, contracts them with the weight
(``tensorly.einsum``: the reconstructed dense weight, or the factors one by one when
``implementation="factorized"``) and takes the ``irfftn``.

:class:`QuantizedNeuralopSpectralConv` follows the paper's scheme as autoq's own
:class:`~autoq.quant.modules.QuantizedSpectralConv` does: the two inputs of the contraction are
quantized, the output and the bias stay float, the FFTs stay float (the cost model prices them as
16-bit work).

- ``param_quantizers["weight_<path>"]`` (``weight_bits``, symmetric): one per complex tensor of
  the spectral weight, named after its path in ``weight.named_parameters()`` with dots as
  underscores: ``weight_tensor`` (dense), ``weight_core`` and ``weight_factors_factor_<i>``
  (Tucker), ``weight_weights`` and ``weight_factors_factor_<i>`` (CP),
  ``weight_factors_factor_<i>`` (TT). The quantizer sees the tensor as ``torch.view_as_real``
  (``(..., 2)``): the real and imaginary parts share one grid, as the two halves of one complex
  number that an integer complex multiply-accumulate reads with one scale. A factorized weight is
  quantized factor by factor, before neuraloperator indexes the kept modes or contracts it, so the
  same quantized factors enter whichever contraction runs.
- ``input_quantizers[0]`` (``act_bits``, asymmetric): the kept Fourier coefficients entering the
  contraction, real and imaginary parts on one grid (:class:`QuantizedSpectralConv` does the same).

AIMET's parameter quantizers map names to tensors that ``getattr(module, name)`` returns; the
weight's tensors live in the child ``weight``, so this class answers those names with the real
views of the child's parameters (:meth:`__getattr__`), which lets AIMET calibrate them as it does
any weight.

Importing this module imports neuraloperator (and registers the definition with AIMET);
:func:`autoq.quant.build_sim` imports it only for a network that holds such a layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from aimet_torch.nn import QuantizationMixin
from aimet_torch.utils import patch_attr
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

from autoq.quant.modules import _apply

WEIGHT_PREFIX = "weight_"
"""Prefix of the parameter-quantizer names of the spectral weight's tensors."""


def weight_slot(path: str) -> str:
    """The parameter-quantizer name of the spectral weight's tensor at ``path`` (a name of
    ``weight.named_parameters()``, e.g. ``factors.factor_0`` → ``weight_factors_factor_0``)."""
    return WEIGHT_PREFIX + path.replace(".", "_")


def _quantize_complex(quantizer: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """A complex tensor quantized on one grid of its real and imaginary parts."""
    if quantizer is None:
        return x
    return torch.view_as_complex(_apply(quantizer, torch.view_as_real(x)).contiguous())


@QuantizationMixin.implements(SpectralConv)
class QuantizedNeuralopSpectralConv(QuantizationMixin, SpectralConv):
    """neuraloperator's ``SpectralConv`` with quantized spectral weight and Fourier coefficients.

    Shapes:
        ``(batch, in_channels, *spatial) → (batch, out_channels, *spatial')`` (``spatial'`` as the
        float layer: the input's, or ``output_shape``, or scaled by its
        ``resolution_scaling_factor``).
    """

    # Set up by AIMET's mixin; declared for the type checker, as aimet_torch has no type hints.
    input_quantizers: nn.ModuleList
    output_quantizers: nn.ModuleList
    param_quantizers: nn.ModuleDict
    _patch_quantized_parameters: Callable[[list[str]], contextlib.AbstractContextManager[None]]

    @property
    def weight_slots(self) -> tuple[str, ...]:
        """Names of the parameter quantizers of the spectral weight's tensors, in the order of
        ``weight.named_parameters()``."""
        return tuple(weight_slot(path) for path, _ in self._spectral_weight().named_parameters())

    def __getattr__(self, name: str) -> Any:
        """``weight_<path>``: the real view ``(..., 2)`` of that tensor of the spectral weight
        (what its parameter quantizer calibrates on); anything else as ``nn.Module`` finds it."""
        if name.startswith(WEIGHT_PREFIX):
            for path, parameter in self._spectral_weight().named_parameters():
                if weight_slot(path) == name:
                    return torch.view_as_real(parameter)
        return super().__getattr__(name)

    def forward(
        self, x: torch.Tensor, output_shape: tuple[int, ...] | None = None
    ) -> torch.Tensor:
        """``(batch, in_channels, *spatial) → (batch, out_channels, *spatial')``."""
        own = [name for name in self.param_quantizers if not name.startswith(WEIGHT_PREFIX)]
        with (self._patch_quantized_parameters(own), self._quantized_weight(),
              self._quantized_coefficients()):
            out = super().forward(x, output_shape=output_shape)
        return _apply(self.output_quantizers[0], out)

    def _spectral_weight(self) -> nn.Module:
        """The ``FactorizedTensor`` child (read without ``nn.Module.__getattr__``, which calls
        :meth:`__getattr__`)."""
        weight = self._modules["weight"]
        assert weight is not None
        return weight

    @contextlib.contextmanager
    def _quantized_weight(self) -> Iterator[None]:
        """Every tensor of the spectral weight replaced by its quantized version while inside."""
        quantizers: dict[str, Any] = dict(self.param_quantizers.items())
        with contextlib.ExitStack() as stack:
            # Listed before the first patch, which replaces a parameter by a plain tensor.
            for path, parameter in list(self._spectral_weight().named_parameters()):
                quantizer = quantizers.get(weight_slot(path))
                if quantizer is None or not quantizer.is_initialized():
                    continue
                owner_path, _, name = path.rpartition(".")
                owner = self._spectral_weight().get_submodule(owner_path)
                stack.enter_context(patch_attr(owner, name, _quantize_complex(quantizer,
                                                                              parameter)))
            yield

    @contextlib.contextmanager
    def _quantized_coefficients(self) -> Iterator[None]:
        """neuraloperator's contraction, with the kept coefficients quantized first."""
        quantizer = self.input_quantizers[0]
        if quantizer is None:
            yield
            return
        contract = self.__dict__["_contract"]

        def quantized_contract(coefficients: torch.Tensor, weight: Any, **kwargs: Any) -> Any:
            return contract(_quantize_complex(quantizer, coefficients), weight, **kwargs)

        self.__dict__["_contract"] = quantized_contract
        try:
            yield
        finally:
            self.__dict__["_contract"] = contract
