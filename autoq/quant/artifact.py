"""A trial's quantized network on disk, and the loader that rebuilds it.

An artifact directory holds:

``manifest.json``
    the trial config (scale, per-layer bits), the model config and the network's input shape,
    output channels and calibration scheme, the library versions, and the caller's metadata.
``state_dict.pt``
    ``sim.model.state_dict()``: the QAT-trained weights and every quantizer's ``min``/``max`` and
    grid. This and the manifest are the authority: :func:`load_artifact` rebuilds the same
    simulation from them and reproduces the trial's outputs exactly.
``model.onnx`` + ``model.encodings``
    AIMET's exporter output (``sim.onnx.export``): the graph with quantize-dequantized weights and
    the JSON encodings of every quantized tensor, for AIMET/QNN tooling.
``model_qdq.onnx``
    the same network with ONNX ``QuantizeLinear``/``DequantizeLinear`` nodes in the graph
    (``aimet_torch.onnx.export``), runnable by any ONNX runtime (opset 21, or 25 when a layer uses
    2 bits).

Why the spectral layer exports as matrix products: ``torch.onnx`` has no ``aten::fft_rfft``, so an
FNO cannot be exported as it runs. While exporting, :class:`~autoq.quant.modules.
QuantizedSpectralConv` computes its truncated transforms as real DFT matrix products at the
network's fixed resolution (``N × modes`` MACs per axis, a few percent of the layer's work at the
sizes we use). This is exact to float rounding and needs no format of our own: the same
quantizers act on the same tensors, so every architecture exports through AIMET's own exporter,
and the graphs are valid at the traced resolution only, which is the network resolution of the
trial (the resampling around the network is not part of it).

ONNX quantized integer types exist for 2, 4, 8 and 16 bits here (32-bit quantizers overflow
AIMET's exporter), so :func:`export_artifact` refuses other bitwidths before writing anything. It
also refuses ONNX for a network holding neuraloperator's spectral convolution (complex tensors
and ``torch.fft`` have no ONNX export, and it has no DFT form); its artifact is the state dict and
the manifest, whose model config (``factory`` and ``kwargs``) rebuilds the network.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aimet_torch
import aimet_torch.onnx
import torch
from torch import nn

from autoq.errors import QuantizationError
from autoq.models import ModelConfig, build_model, parse_model_config
from autoq.precision import TrialConfig, optional_types
from autoq.quant.sim import QuantizedNetwork, build_sim

FORMAT = "autoq-quantized-network/1"
EXPORT_BITS: tuple[int, ...] = (2, 4, 8, 16)
"""Bitwidths that ONNX export supports."""

MANIFEST = "manifest.json"
STATE_DICT = "state_dict.pt"
ONNX = "model.onnx"
ENCODINGS = "model.encodings"
ONNX_QDQ = "model_qdq.onnx"
INPUT_NAME, OUTPUT_NAME = "input", "output"


def export_artifact(
    qnet: QuantizedNetwork,
    directory: str | Path,
    *,
    model_config: ModelConfig | None = None,
    metadata: Mapping[str, Any] | None = None,
    onnx: bool = True,
) -> Path:
    """Write a quantized network (after calibration and QAT) to ``directory``.

    Args:
        qnet: the simulation, calibrated (and usually QAT-trained).
        directory: created if missing; existing artifact files are overwritten.
        model_config: the network's model config (``FNOConfig``, ...); by default the network's
            own ``config`` attribute (every :mod:`autoq.models` network has one). Without either,
            :func:`load_artifact` needs a ``network_factory``.
        metadata: JSON-serializable facts to keep with the artifact (data set, MSE, ...).
        onnx: also write the ONNX files.

    Returns:
        The directory.

    Raises:
        QuantizationError: ``qnet`` is not calibrated, or ``onnx`` is set and a layer uses a
            bitwidth ONNX cannot carry (not in :data:`EXPORT_BITS`); the message names the layer.
    """
    uncalibrated = [f"{layer} {slot}" for layer, slot, quantizer in qnet.quantizers()
                    if not quantizer.is_initialized()]
    if uncalibrated:
        raise QuantizationError(f"calibrate before exporting: {uncalibrated[0]} has no range")
    if onnx:
        _check_exportable(qnet.config, qnet.model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = qnet.model
    if model_config is None:
        model_config = getattr(model, "config", None)
    device = next(model.parameters()).device
    dummy = torch.zeros(1, *qnet.input_shape, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out_channels = model(dummy).shape[1]
        torch.save(_without_metadata(model.state_dict()), directory / STATE_DICT)
        if onnx:
            _export_onnx(qnet, dummy, directory)
    finally:
        model.train(was_training)
    manifest = {
        "format": FORMAT,
        "trial": qnet.config.to_json(),
        "model": None if model_config is None else model_config.model_dump(mode="json"),
        "network": {
            "input_shape": list(qnet.input_shape),
            "out_channels": out_channels,
        },
        "calibration": qnet.calibration,
        "files": {
            "state_dict": STATE_DICT,
            **({"onnx": ONNX, "encodings": ENCODINGS, "onnx_qdq": ONNX_QDQ} if onnx else {}),
        },
        "versions": {"aimet_torch": aimet_torch.__version__, "torch": torch.__version__},
        "metadata": dict(metadata or {}),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return directory


def load_artifact(
    directory: str | Path,
    *,
    network_factory: Callable[[], nn.Module] | None = None,
    device: torch.device | str | None = None,
) -> nn.Module:
    """Rebuild the quantized network an artifact holds, in eval mode.

    Args:
        directory: written by :func:`export_artifact`.
        network_factory: builds the float network (any weights; they are replaced); by default
            :func:`autoq.models.build_model` from the manifest's model config.
        device: where to run; the CPU by default.

    Returns:
        The quantized network ``(batch, channels, *spatial) → (batch, out_channels, *spatial)``
        at the artifact's network resolution, with the saved weights and quantizer ranges.

    Raises:
        QuantizationError: the directory holds no artifact of this format, or neither a model
            config nor a ``network_factory`` says how to build the network.
    """
    return load_quantized(directory, network_factory=network_factory, device=device).model


def load_quantized(
    directory: str | Path,
    *,
    network_factory: Callable[[], nn.Module] | None = None,
    device: torch.device | str | None = None,
) -> QuantizedNetwork:
    """Like :func:`load_artifact`, but the whole simulation (its ``model`` in eval mode): what
    an exporter needs besides the module (AIMET's encodings, the trial config).

    Raises:
        QuantizationError: as :func:`load_artifact`.
    """
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError as e:
        raise QuantizationError(f"no {MANIFEST} in {directory}: not a quantized artifact") from e
    if manifest.get("format") != FORMAT:
        raise QuantizationError(f"{directory / MANIFEST} has format {manifest.get('format')!r}, "
                                f"expected {FORMAT!r}")
    device = torch.device(device or "cpu")
    input_shape = tuple(manifest["network"]["input_shape"])
    if network_factory is None:
        if manifest["model"] is None:
            raise QuantizationError(f"{directory} records no model config; pass network_factory")
        network = build_model(parse_model_config(manifest["model"]),
                              spatial_dims=len(input_shape) - 1, in_channels=input_shape[0],
                              out_channels=manifest["network"]["out_channels"])
    else:
        network = network_factory()
    qnet = build_sim(network.to(device), TrialConfig.from_json(manifest["trial"]),
                     dummy_input=torch.zeros(1, *input_shape, device=device),
                     calibration=manifest["calibration"])
    state = torch.load(directory / manifest["files"]["state_dict"], map_location=device,
                       weights_only=True)
    qnet.model.load_state_dict(state)
    qnet.model.eval()
    return qnet


def _without_metadata(state: Mapping[str, Any]) -> dict[str, Any]:
    """A ``state_dict`` without neuraloperator's ``_metadata`` entry: its models add their
    constructor's arguments (functions among them) under that key, which
    ``torch.load(weights_only=True)`` refuses and ``load_state_dict`` does not need."""
    return {name: value for name, value in state.items()
            if not (name.rpartition(".")[2] == "_metadata" and not torch.is_tensor(value))}


def _check_exportable(config: TrialConfig, model: nn.Module) -> None:
    for layer, module in model.named_modules():
        for cls in optional_types():
            if isinstance(module, cls):
                raise QuantizationError(
                    f"cannot export layer {layer!r} to ONNX: {cls.__module__}.{cls.__qualname__} "
                    "computes on complex tensors with torch.fft, which torch.onnx cannot export "
                    "(export with onnx=False to keep the weights and encodings alone)")
    for layer, bits in config.quantized_layers.items():
        for role, value in zip(("weight", "activation"), bits, strict=True):
            if value not in EXPORT_BITS:
                raise QuantizationError(
                    f"cannot export layer {layer!r} to ONNX: its {role} bitwidth is {value}, "
                    f"ONNX quantized types exist for {list(EXPORT_BITS)} bits only "
                    "(export with onnx=False to keep the weights and encodings alone)")


def _export_onnx(qnet: QuantizedNetwork, dummy: torch.Tensor, directory: Path) -> None:
    names = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME], "dynamo": False,
             "dynamic_axes": {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}}
    uses_two_bits = any(2 in bits for bits in qnet.config.quantized_layers.values())
    # The tracer's warnings are about shape arithmetic that the fixed-resolution graph bakes in.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qnet.sim.onnx.export((dummy,), str(directory / ONNX), export_int32_bias=False, **names)
        aimet_torch.onnx.export(qnet.model, (dummy,), str(directory / ONNX_QDQ),
                                opset_version=25 if uses_two_bits else 21, export_int32_bias=False,
                                **names)
