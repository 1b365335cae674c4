"""neuraloperator's FNO (1D, dense spectral weight) and TFNO (2D, Tucker factors) as a user's own
model: quantizable layers, AIMET simulation at the asked bits, calibration, QAT, artifacts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("neuralop", reason="needs the neuralop extra")

import tensorly as tl
from aimet_torch.nn import QuantizationMixin
from aimet_torch.nn.base import UnknownModuleError
from neuralop.layers.spectral_convolution import SpectralConv

from autoq.errors import QuantizationError
from autoq.models import build_model
from autoq.models.config import FactoryConfig
from autoq.precision import TrialConfig, quantizable_layers
from autoq.quant import QuantizedNetwork, build_sim, calibrate, export_artifact, load_artifact
from autoq.quant.neuralop import QuantizedNeuralopSpectralConv, weight_slot

FNO_1D = FactoryConfig(factory="neuralop.models:FNO", kwargs={
    "n_modes": [8], "in_channels": 2, "out_channels": 1, "hidden_channels": 8, "n_layers": 2})
TFNO_2D = FactoryConfig(factory="neuralop.models:TFNO", kwargs={
    "n_modes": [8, 6], "in_channels": 2, "out_channels": 1, "hidden_channels": 6,
    "n_layers": 2, "factorization": "tucker", "rank": 0.5})
CASES = {"fno-1d": (FNO_1D, (32,)), "tfno-2d": (TFNO_2D, (16, 16))}
SPECTRAL = ("module.fno_blocks.convs.0", "module.fno_blocks.convs.1")


def _network(name: str) -> tuple[nn.Module, torch.Tensor]:
    """The model of ``CASES[name]`` and a batch of 4 inputs on its grid."""
    config, grid = CASES[name]
    torch.manual_seed(0)
    network = build_model(config, spatial_dims=len(grid), in_channels=2, out_channels=1,
                          grid=grid)
    return network, torch.randn(4, 2, *grid)


def _sim(
    network: nn.Module, x: torch.Tensor, bits: dict[str, tuple[int, int]]
) -> QuantizedNetwork:
    """The network's simulation at ``bits`` (other layers float), calibrated on ``x``."""
    qnet = build_sim(network, TrialConfig.for_model(network, scale=1.0, bits=bits),
                     dummy_input=x[:1])
    calibrate(qnet, [x])
    return qnet


def _fake_quantize(x: torch.Tensor, quantizer: nn.Module) -> torch.Tensor:
    """Quantize-dequantize by hand from the quantizer's grid: ``(clamp(round(x / s) - o, qmin,
    qmax) + o) · s``."""
    scale, offset = quantizer.get_scale().detach(), quantizer.get_offset().detach()
    q = torch.clamp(torch.round(x / scale) - offset, quantizer.qmin, quantizer.qmax)
    return (q + offset) * scale


def _fake_quantize_complex(x: torch.Tensor, quantizer: nn.Module) -> torch.Tensor:
    return torch.view_as_complex(_fake_quantize(torch.view_as_real(x), quantizer).contiguous())


def _reference_spectral_conv(
    layer: QuantizedNeuralopSpectralConv, x: torch.Tensor
) -> torch.Tensor:
    """The layer by hand (1D or 2D): rfftn; the kept modes (on the last axis the lowest ``k``, on
    the first the ``m`` around zero); coefficients and weight tensors quantized with the layer's
    quantizers; the weight (Tucker: rebuilt from its quantized core and factors) contracted with
    the coefficients; irfftn of the kept modes; bias."""
    spatial = tuple(x.shape[2:])
    dims = tuple(range(-len(spatial), 0))
    coefficients = torch.fft.rfftn(x, dim=dims, norm="forward")
    weights = {path: _fake_quantize_complex(parameter, layer.param_quantizers[weight_slot(path)])
               for path, parameter in layer.weight.named_parameters()}
    if "tensor" in weights:
        weight = weights["tensor"]
    else:
        core = weights["core"]
        weight = tl.tucker_to_tensor((core, [weights[f"factors.factor_{i}"]
                                             for i in range(core.dim())]))
    *signed, k = weight.shape[2:]
    index: list[slice | torch.Tensor] = [slice(None), slice(None)]
    if signed:  # frequencies -m/2 … m/2 - 1 of the first axis, in the weight's order
        (n, m), = zip(spatial[:-1], signed, strict=True)
        index += [torch.cat([torch.arange(n - m // 2, n), torch.arange(m // 2)])[:, None]]
    index += [torch.arange(k)]
    selected = _fake_quantize_complex(coefficients[tuple(index)], layer.input_quantizers[0])
    letters = "yx"[-len(spatial):]
    mixed = torch.einsum(f"bi{letters},io{letters}->bo{letters}", selected, weight)
    out = torch.zeros(x.shape[0], weight.shape[1], *coefficients.shape[2:],
                      dtype=coefficients.dtype)
    out[tuple(index)] = mixed
    return torch.fft.irfftn(out, s=spatial, dim=dims, norm="forward") + layer.bias


# Layers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_quantizable_layers_include_the_spectral_convolutions(name: str) -> None:
    network, _ = _network(name)
    layers = quantizable_layers(network)
    assert [layer for layer in layers if "convs" in layer] == list(SPECTRAL)
    # The rest are neuraloperator's channel MLPs and skips: plain torch convolutions.
    assert "module.lifting.fcs.0" in layers and "module.projection.fcs.1" in layers
    assert (network.first_layer, network.last_layer) == ("module.lifting.fcs.0",
                                                         "module.projection.fcs.1")


def test_precision_imports_no_optional_library(heavy_imports: Callable[..., list[str]]) -> None:
    code = ("import sys\nimport torch\nfrom autoq.models import FNOConfig, build_model\n"
            "from autoq.precision import quantizable_layers\nimport autoq.quant, autoq.cost\n"
            "net = build_model(FNOConfig(), spatial_dims=1, in_channels=2, out_channels=1)\n"
            "assert quantizable_layers(net)\n"
            "print(' '.join(m for m in ('neuralop', 'tensorly', 'tltorch', 'wandb') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == []


def test_importing_and_running_neuralop_opens_no_connection() -> None:
    # wandb comes with neuraloperator: importing it and running a model must not go online.
    code = ("import socket\ntried = []\n"
            "def refuse(*args, **kwargs):\n    tried.append(args[:2])\n"
            "    raise OSError('no network in this test')\n"
            "socket.socket.connect = socket.socket.connect_ex = refuse\n"
            "socket.getaddrinfo = socket.create_connection = refuse\n"
            "import torch\nfrom neuralop.models import TFNO\n"
            "TFNO(n_modes=(8, 6), in_channels=2, out_channels=1, hidden_channels=4)"
            "(torch.randn(1, 2, 16, 16))\nprint(tried)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


# The quantized definition -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_the_asked_bits_reach_the_spectral_weight_and_the_coefficients(name: str) -> None:
    network, x = _network(name)
    qnet = _sim(network, x, {SPECTRAL[0]: (4, 6), SPECTRAL[1]: (8, 3)})
    slots: dict[str, dict[str, tuple[int, bool]]] = {}
    for layer, slot, quantizer in qnet.quantizers():
        slots.setdefault(layer, {})[slot] = (quantizer.bitwidth, quantizer.symmetric)
    assert set(slots) == set(SPECTRAL)  # every other layer stays float
    tensors = (["weight_tensor"] if name == "fno-1d"
               else ["weight_core", *(f"weight_factors_factor_{i}" for i in range(4))])
    for layer, (weight_bits, act_bits) in zip(SPECTRAL, [(4, 6), (8, 3)], strict=True):
        assert slots[layer] == {**{f"weight:{t}": (weight_bits, True) for t in tensors},
                                "input:0": (act_bits, False)}
        module = dict(qnet.model.named_modules())[layer]
        assert isinstance(module, QuantizedNeuralopSpectralConv)
        assert module.param_quantizers["bias"] is None  # biases stay float


@pytest.mark.parametrize("name", list(CASES))
def test_the_quantized_layer_is_the_hand_quantized_spectral_convolution(name: str) -> None:
    """Weight tensors (real and imaginary parts on one symmetric grid each) and the kept
    coefficients (one asymmetric grid) quantized by hand give the simulated layer's output."""
    network, x = _network(name)
    qnet = _sim(network, x, {SPECTRAL[0]: (3, 4)})
    layer = dict(qnet.model.named_modules())[SPECTRAL[0]]
    inputs: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _, args, out: inputs.extend([args[0], out]))
    with torch.no_grad():
        qnet.model(x)
        handle.remove()
        expected = _reference_spectral_conv(layer, inputs[0])
        float_layer = dict(network.named_modules())[SPECTRAL[0]]
        float_out = float_layer(inputs[0])
    torch.testing.assert_close(inputs[1], expected, rtol=1e-4, atol=1e-5)
    # ... and 3/4 bits change the layer visibly.
    assert float((inputs[1] - float_out).norm() / float_out.norm()) > 1e-2


@pytest.mark.parametrize("name", list(CASES))
def test_the_simulation_is_close_to_float_at_16_bits_and_worse_at_4(name: str) -> None:
    network, x = _network(name)
    with torch.no_grad():
        reference = network(x)
    errors = {}
    for bits in (16, 4):
        qnet = _sim(network, x, dict.fromkeys(quantizable_layers(network), (bits, bits)))
        with torch.no_grad():
            errors[bits] = float((qnet.model(x) - reference).norm() / reference.norm())
    assert errors[16] < 1e-3
    assert errors[4] > 1e-2 and errors[4] > 30 * errors[16]


@pytest.mark.parametrize("name", list(CASES))
def test_calibration_and_a_qat_step_move_the_spectral_ranges(name: str) -> None:
    network, x = _network(name)
    qnet = build_sim(network, TrialConfig.for_model(network, scale=1.0,
                                                    bits=dict.fromkeys(SPECTRAL, (4, 4))),
                     dummy_input=x[:1])
    spectral = [(f"{layer} {slot}", q) for layer, slot, q in qnet.quantizers()]
    assert spectral and not any(q.is_initialized() for _, q in spectral)
    calibrate(qnet, [x])
    assert all(q.is_initialized() for _, q in spectral)
    ranges = {key: (q.get_min().detach().clone(), q.get_max().detach().clone())
              for key, q in spectral}
    weights = {n: p.detach().clone() for n, p in qnet.model.named_parameters()
               if ".convs." in n and ".weight." in n}
    optimizer = torch.optim.Adam(qnet.model.parameters(), lr=1e-2)
    target = torch.randn_like(network(x))
    loss = nn.functional.mse_loss(qnet.model(x), target)
    loss.backward()
    optimizer.step()
    moved = [key for key, q in spectral
             if not torch.equal(q.get_min().detach(), ranges[key][0])
             or not torch.equal(q.get_max().detach(), ranges[key][1])]
    # The coefficients' ranges and the weight tensors' ranges learn (CP-like all-equal tensors
    # aside, which none of these are).
    assert set(moved) == set(ranges)
    assert all(not torch.equal(p.detach(), weights[n]) for n, p in qnet.model.named_parameters()
               if n in weights)


# Artifacts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_an_artifact_of_a_factory_model_reproduces_its_outputs(name: str, tmp_path: Path) -> None:
    network, x = _network(name)
    qnet = _sim(network, x, dict.fromkeys(SPECTRAL, (4, 8)))
    # Move the weights and ranges away from the fresh build's.
    optimizer = torch.optim.Adam(qnet.model.parameters(), lr=1e-2)
    nn.functional.mse_loss(qnet.model(x), torch.zeros(4, 1, *x.shape[2:])).backward()
    optimizer.step()
    qnet.model.eval()
    with torch.no_grad():
        expected = qnet.model(x)
    config, _ = CASES[name]
    directory = export_artifact(qnet, tmp_path / name, model_config=config, onnx=False)
    loaded = load_artifact(directory)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)


def test_onnx_export_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    network, x = _network("fno-1d")
    qnet = _sim(network, x, {SPECTRAL[0]: (8, 8)})
    with pytest.raises(QuantizationError, match=r"convs\.0.*torch\.fft.*onnx=False"):
        export_artifact(qnet, tmp_path / "onnx", model_config=FNO_1D)
    assert not (tmp_path / "onnx").exists()


def test_aimet_refuses_unknown_modules_again_after_a_build() -> None:
    # build_sim lets modules without a quantized definition stay float only while it builds.
    network, x = _network("tfno-2d")
    build_sim(network, TrialConfig.for_model(network, scale=1.0, bits={}), dummy_input=x[:1])
    gating = dict(network.named_modules())["module.fno_blocks.channel_mlp_skips.0"]
    with pytest.raises(UnknownModuleError):
        QuantizationMixin.from_module(gating)


def test_every_tensor_of_a_factorized_weight_has_its_slot() -> None:
    # A bare layer: a CP weight's weights and factors each get a quantizer slot, which AIMET reads
    # as the tensor's real view.
    layer = SpectralConv(3, 3, (6,), factorization="cp", rank=0.5)
    quantized = QuantizedNeuralopSpectralConv.from_module(layer)
    assert quantized.weight_slots == ("weight_weights", "weight_factors_factor_0",
                                      "weight_factors_factor_1", "weight_factors_factor_2")
    for slot, (_, parameter) in zip(quantized.weight_slots, layer.weight.named_parameters(),
                                    strict=True):
        assert torch.equal(getattr(quantized, slot), torch.view_as_real(parameter))
