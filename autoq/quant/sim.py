"""The quantization simulation of one trial: AIMET's ``QuantizationSimModel`` set to the paper's
scheme, and its calibration.

Scheme (van den Dool et al. 2023, section 3.3): in every layer a trial gives bits, the weights are
quantized symmetrically at ``weight_bits`` with one scale per tensor (equation 5), and the layer's
inputs asymmetrically at ``act_bits`` (equation 7); outputs and biases stay float. A spectral
convolution the trial runs with the ``dft`` transform (``TrialConfig.transforms``) computes its
Fourier transforms as DFT matrix products on its grid, each quantized the same way: the constant
DFT matrices at ``weight_bits`` (per tensor), the signal entering each product at ``act_bits``
(:mod:`autoq.quant.modules`). With
``weight_granularity: per_channel`` (:data:`autoq.bits.WeightGranularity`) the weights of linear
layers, convolutions and autoq's spectral convolutions get one symmetric scale per output channel
instead (axis 0 of a linear or convolution weight, axis 1 of a transposed convolution's and of a
spectral weight ``(in, out, *modes)``); the right operand of an activation product and
neuraloperator's (possibly factorized) spectral weights, which have no output-channel axis of
their own, stay per tensor. The ``integer``
scheme (:data:`autoq.bits.Scheme`) also quantizes each such layer's output asymmetrically at
``act_bits``, so that an ONNX runtime runs the layer as an integer kernel. Layers the trial keeps
float and every module that is not a matrix multiplication (norms, activations, pooling, the
additions and resampling written as functions) carry no quantizer at all. AIMET's default
configuration puts output quantizers everywhere; :func:`build_sim` removes them all and then
places exactly the quantizers above. Modules AIMET has
no quantized definition of (a user's model may hold any) stay as they are; every matrix-
multiplication layer has one (neuraloperator's spectral convolution in :mod:`autoq.quant.neuralop`,
registered when neuraloperator is imported). Quantizer ranges are ``nn.Parameter`` s
(``min``/``max``), so QAT on :attr:`QuantizedNetwork.model` trains them with the straight-through
estimator.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from aimet_torch import QuantizationSimModel
from aimet_torch.nn import BaseQuantizationMixin, QuantizationMixin
from aimet_torch.quantization.affine import QuantizeDequantize
from aimet_torch.quantization.encoding_analyzer import (
    EncodingAnalyzer,
    MinMaxEncodingAnalyzer,
    SqnrEncodingAnalyzer,
)
from torch import nn

from autoq.errors import QuantizationError
from autoq.models.layers import dft_matrix_name
from autoq.precision import TrialConfig, quantizable_layers
from autoq.quant.logs import known_aimet_warnings
from autoq.quant.modules import QuantizedMatMul, QuantizedSpectralConv, dft_input_slot

Calibration = Literal["min_max", "sqnr"]
"""How :func:`calibrate` sets the initial ranges: ``min_max`` (AIMET's ``tf``: the observed range)
or ``sqnr`` (AIMET's ``tf_enhanced``: the range that maximizes the signal-to-quantization-noise
ratio on a histogram, which clips outliers)."""

CALIBRATIONS: tuple[str, ...] = ("min_max", "sqnr")

OPTIONAL_DEFINITIONS: dict[str, str] = {
    "neuralop.layers.spectral_convolution": "autoq.quant.neuralop",
}
"""Quantized definitions of optional libraries' layers: library module → autoq module that
registers them with AIMET, imported by :func:`build_sim` when the library is (a network can only
hold such a layer then)."""


@dataclass(frozen=True)
class QuantizedNetwork:
    """A network in AIMET's quantization simulation, as a trial asked for it.

    Attributes:
        sim: AIMET's simulation; ``sim.model`` is the quantized network.
        config: the trial's scale and per-layer bits.
        input_shape: ``(channels, *spatial)`` of the network input the sim was traced with.
        calibration: how the ranges are initialized (:data:`Calibration`).
    """

    sim: QuantizationSimModel
    config: TrialConfig
    input_shape: tuple[int, ...]
    calibration: Calibration

    @property
    def model(self) -> nn.Module:
        """The quantized network, an ordinary trainable module:
        ``(batch, channels, *spatial) → (batch, out_channels, *spatial)``."""
        return self.sim.model

    def quantizers(self) -> Iterator[tuple[str, str, QuantizeDequantize]]:
        """Every quantizer as ``(layer, slot, quantizer)``; slot is ``weight:<param>``,
        ``input:<index>`` or ``output:<index>`` (only under the integer scheme)."""
        for layer, module in self.sim.named_qmodules():
            for name, quantizer in module.param_quantizers.items():
                if quantizer is not None:
                    yield layer, f"weight:{name}", quantizer
            for slot, quantizers in (("input", module.input_quantizers),
                                     ("output", module.output_quantizers)):
                for index, quantizer in enumerate(quantizers):
                    if quantizer is not None:
                        yield layer, f"{slot}:{index}", quantizer


def build_sim(
    network: nn.Module,
    config: TrialConfig,
    *,
    dummy_input: torch.Tensor,
    calibration: Calibration = "min_max",
) -> QuantizedNetwork:
    """Put a trained float network into AIMET's simulation with the trial's per-layer bits.

    The network is copied; the original stays float. Quantizers are created uncalibrated: run
    :func:`calibrate` before the first forward pass.

    Args:
        network: the float network, on the device it should run on.
        config: the trial; every layer it names must be one of ``network``'s quantizable layers
            (:func:`autoq.precision.quantizable_layers`); layers it does not name stay float.
        dummy_input: ``(batch, channels, *spatial)`` at the network's resolution, on the
            network's device; AIMET traces the network with it.
        calibration: how :func:`calibrate` will set the initial ranges. ``min_max`` is the
            default: on a small FNO at w4a8 it left a lower MSE than ``sqnr`` before QAT and
            after it, and it calibrates faster.

    Returns:
        The simulation, its config and the traced input shape.

    Raises:
        QuantizationError: a layer name is not a quantizable layer of ``network``, or
            ``calibration`` is unknown. (Bitwidths outside 2..32 never get this far:
            :class:`~autoq.precision.TrialConfig` refuses them, naming the layer.)
    """
    _check_request(network, config, calibration)
    if dummy_input.dim() < 3:
        raise QuantizationError(f"dummy_input must be (batch, channels, *spatial), got shape "
                                f"{tuple(dummy_input.shape)}")
    _register_optional_definitions()
    # AIMET traces the network once at the dummy input's resolution; the tracer's warnings about
    # shape arithmetic turned into constants are expected for a fixed-resolution simulation.
    with known_aimet_warnings(), warnings.catch_warnings(), _unknown_modules_stay_float():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        try:
            sim = QuantizationSimModel(network, dummy_input)
        except RuntimeError as e:  # e.g. a module AIMET cannot trace
            raise QuantizationError(f"AIMET cannot simulate {type(network).__name__}: {e}") from e
    for _, module in sim.named_qmodules():
        _remove_quantizers(module)
    modules = dict(sim.model.named_modules())
    for layer, (weight_bits, act_bits) in config.quantized_layers.items():
        module = modules[layer]
        if not isinstance(module, BaseQuantizationMixin):
            raise QuantizationError(f"AIMET has no quantized definition of layer {layer!r} "
                                    f"({type(module).__module__}.{type(module).__qualname__})")
        _place_quantizers(module, weight_bits, act_bits, calibration, device=dummy_input.device,
                          outputs=config.scheme == "integer",
                          per_channel=config.weight_granularity == "per_channel")
    grids = _spectral_grids(network, dummy_input, config.dft_layers)
    for layer in config.dft_layers:
        weight_bits, act_bits = config.quantized_layers[layer]
        _place_transform_quantizers(modules[layer], weight_bits, act_bits, calibration,
                                    grid=grids[layer])
    return QuantizedNetwork(sim=sim, config=config, input_shape=tuple(dummy_input.shape[1:]),
                            calibration=calibration)


def calibrate(qnet: QuantizedNetwork, batches: Iterable[torch.Tensor]) -> None:
    """Initialize every quantizer's range from forward passes over calibration inputs.

    AIMET's ``compute_encodings``: the weight ranges come from the weights, the input ranges from
    the statistics of all batches (the paper calibrates on 20% of the training data).

    Args:
        qnet: from :func:`build_sim`.
        batches: network inputs ``(batch, channels, *spatial)`` at the network resolution; moved
            to the network's device.

    Raises:
        QuantizationError: ``batches`` is empty (the ranges would stay uninitialized).
    """
    device = _device_of(qnet.model)
    seen = 0

    def forward_all(model: nn.Module) -> None:
        nonlocal seen
        for batch in batches:
            model(batch.to(device))
            seen += 1

    with known_aimet_warnings():
        qnet.sim.compute_encodings(forward_all)
    if not seen:
        raise QuantizationError("calibrate needs at least one batch of network inputs, got none")


def _check_request(network: nn.Module, config: TrialConfig, calibration: str) -> None:
    # Bitwidths were checked by TrialConfig (2..32, all of which AIMET simulates); layer names
    # are checked here, against this network.
    layers = set(quantizable_layers(network))
    for layer in config.bits:
        if layer not in layers:
            raise QuantizationError(f"no quantizable layer named {layer!r} in "
                                    f"{type(network).__name__}; layers: {sorted(layers)}")
    if calibration not in CALIBRATIONS:
        raise QuantizationError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")


def _register_optional_definitions() -> None:
    for library, definitions in OPTIONAL_DEFINITIONS.items():
        if library in sys.modules:
            importlib.import_module(definitions)


@contextlib.contextmanager
def _unknown_modules_stay_float() -> Iterator[None]:
    """AIMET leaves modules it has no quantized definition of as they are, while inside.

    The paper's scheme quantizes matrix-multiplication layers only (every one has a definition,
    checked after the sim is built); anything else a user's model holds (neuraloperator's
    positional embedding and soft gating, tensorly-torch's factorized weights, ...) would carry no
    quantizer anyway, and AIMET would otherwise refuse the whole model. AIMET's switch is a class
    attribute: it is restored on the way out.
    """
    before = QuantizationMixin._ignore_unknown_modules
    QuantizationMixin.ignore_unknown_modules(True)
    try:
        yield
    finally:
        QuantizationMixin.ignore_unknown_modules(before)


def _remove_quantizers(module: BaseQuantizationMixin) -> None:
    for name in module.param_quantizers:
        module.param_quantizers[name] = None
    for quantizers in (module.input_quantizers, module.output_quantizers):
        for index in range(len(quantizers)):
            quantizers[index] = None


def _quantizer(bits: int, *, symmetric: bool, calibration: Calibration,
               device: torch.device, shape: tuple[int, ...] = ()) -> QuantizeDequantize:
    """A quantize-dequantize node (signed grid if symmetric, unsigned otherwise): per tensor,
    or one grid per entry of ``shape`` (broadcast against the tensor, e.g. ``(C, 1, 1)``)."""
    analyzer: EncodingAnalyzer = (SqnrEncodingAnalyzer(shape=shape) if calibration == "sqnr"
                                  else MinMaxEncodingAnalyzer(shape=shape))
    quantizer = QuantizeDequantize(shape, bitwidth=bits, symmetric=symmetric,
                                   encoding_analyzer=analyzer)
    return quantizer.to(device)


def output_channel_axis(module: nn.Module) -> int | None:
    """The axis of the output channels in ``module``'s weights, or ``None`` when they have none
    of their own (the per-channel weight grids' axis)."""
    if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        return 1
    if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return 0
    if isinstance(module, QuantizedSpectralConv):
        return 1  # (in_channels, out_channels, *modes)
    return None


def _place_quantizers(module: BaseQuantizationMixin, weight_bits: int, act_bits: int,
                      calibration: Calibration, *, device: torch.device, outputs: bool,
                      per_channel: bool = False) -> None:
    """The paper's quantizers on one matrix-multiplication layer (already an AIMET module), and
    an output quantizer when ``outputs`` (the integer scheme); with ``per_channel``, one weight
    grid per output channel where the weights have such an axis."""
    param = next(module.parameters(recurse=False), None)
    device = param.device if param is not None else device
    axis = output_channel_axis(module) if per_channel else None

    def weight(slot: str | None = None) -> QuantizeDequantize:
        shape: tuple[int, ...] = ()
        if axis is not None and slot is not None:
            tensor = getattr(module, slot)
            shape = tuple(n if i == axis else 1 for i, n in enumerate(tensor.shape))
        return _quantizer(weight_bits, symmetric=True, calibration=calibration, device=device,
                          shape=shape)

    def activation() -> QuantizeDequantize:
        return _quantizer(act_bits, symmetric=False, calibration=calibration, device=device)

    if outputs:
        module.output_quantizers[0] = activation()
    if isinstance(module, QuantizedMatMul):
        module.input_quantizers[0] = activation()
        module.input_quantizers[1] = weight()
        return
    # Spectral convolutions name the tensors of their spectral weight (autoq's: real and
    # imaginary parts; neuraloperator's: the dense tensor or the factors); linear layers and
    # convolutions, AIMET's own quantized modules, have one weight.
    if isinstance(module, QuantizedSpectralConv):
        slots: tuple[str, ...] = ("weight_real", "weight_imag")
    else:
        slots = getattr(module, "weight_slots", ("weight",))
    for slot in slots:
        module.param_quantizers[slot] = weight(slot)
    module.input_quantizers[0] = activation()


def _spectral_grids(network: nn.Module, dummy_input: torch.Tensor, layers: list[str]
                    ) -> dict[str, tuple[int, ...]]:
    """The spatial grid each of the spectral convolutions ``layers`` of ``network`` runs on,
    from one forward pass of ``dummy_input`` (without gradients, in eval mode)."""
    if not layers:
        return {}
    grids: dict[str, tuple[int, ...]] = {}

    def recorder(layer: str) -> Callable[..., None]:
        def record(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            grids[layer] = tuple(args[0].shape[2:])
        return record

    hooks = [network.get_submodule(layer).register_forward_pre_hook(recorder(layer))
             for layer in layers]
    training = network.training
    try:
        network.eval()
        with torch.no_grad():
            network(dummy_input)
    finally:
        network.train(training)
        for hook in hooks:
            hook.remove()
    return grids


def _place_transform_quantizers(module: nn.Module, weight_bits: int, act_bits: int,
                                calibration: Calibration, *, grid: tuple[int, ...]) -> None:
    """Switch a quantized spectral convolution to the ``dft`` transform on ``grid`` and quantize
    each DFT product: its matrix pair at ``weight_bits`` (a parameter quantizer of the
    ``dft_matrix_<s>`` buffer, per tensor), its signal at ``act_bits``."""
    if not isinstance(module, QuantizedSpectralConv):
        raise QuantizationError(f"the dft transform is autoq's SpectralConv's; "
                                f"{type(module).__module__}.{type(module).__qualname__} has none")
    module.set_transform("dft", grid)
    device = module.weight_real.device
    for stage in range(module.dft_stages):
        module.param_quantizers[dft_matrix_name(stage)] = _quantizer(
            weight_bits, symmetric=True, calibration=calibration, device=device)
        module.input_quantizers[dft_input_slot(stage)] = _quantizer(
            act_bits, symmetric=False, calibration=calibration, device=device)


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
