"""Per-channel weight grids (``space.weight_granularity: per_channel``): one symmetric scale per
output channel in AIMET's simulation, written as per-channel QuantizeLinear/DequantizeLinear
(ONNX's ``axis``) by the QDQ export; per tensor stays the default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

from autoq.deploy import export_qdq_onnx
from autoq.errors import QuantizationError
from autoq.models import FNOConfig, UNetConfig, build_model
from autoq.precision import TrialConfig
from autoq.quant import build_sim, calibrate


class _TwoLayers(nn.Module):
    """A convolution whose three output channels have weights of very different sizes (1, 0.01,
    100) beside a linear layer over the last axis, both reading the input (no quantizer reads
    another's output, so the export's values are the simulation's but for exact ties)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3, padding=1)
        self.dense = nn.Linear(8, 8)
        with torch.no_grad():
            self.conv.weight.mul_(torch.tensor([1.0, 0.01, 100.0]).view(3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.dense(x)], dim=1)


def _sim(network: nn.Module, x: torch.Tensor, granularity: str, *, weight_bits: int = 4
         ) -> nn.Module:
    torch.manual_seed(0)
    config = dataclasses.replace(
        TrialConfig.for_model(network, scale=1.0, bits={"conv": (weight_bits, 8),
                                                         "dense": (weight_bits, 8)}),
        weight_granularity=granularity)
    qnet = build_sim(network, config, dummy_input=x[:1])
    calibrate(qnet, [x])
    return qnet.model.eval()


def test_per_channel_grids_follow_each_output_channels_range() -> None:
    torch.manual_seed(0)
    network, x = _TwoLayers(), torch.randn(16, 2, 8)
    model = _sim(network, x, "per_channel")
    conv_scale = model.conv.param_quantizers["weight"].get_scale().detach().flatten()
    dense_scale = model.dense.param_quantizers["weight"].get_scale().detach()
    assert dense_scale.shape == (8, 1)  # (out_features, in_features): axis 0
    # Symmetric 4-bit grids: each channel's largest |w| over 7 or 8 steps.
    largest = network.conv.weight.detach().abs().amax(dim=(1, 2))
    assert torch.allclose(conv_scale * 7.5, largest, rtol=0.1)
    assert conv_scale[2] / conv_scale[1] > 1e3
    # The small channel keeps its values; on one grid for the tensor it rounds to zero.
    kept = model.conv.param_quantizers["weight"](network.conv.weight.detach())[1]
    assert torch.count_nonzero(kept.as_subclass(torch.Tensor)) > 0
    per_tensor = _sim(network, x, "per_tensor")
    quantizer = per_tensor.conv.param_quantizers["weight"]
    assert quantizer.get_scale().numel() == 1  # today's default: one grid per tensor
    flat = quantizer(network.conv.weight.detach())[1].as_subclass(torch.Tensor)
    assert torch.count_nonzero(flat) == 0


def test_spectral_and_transposed_weights_are_gridded_per_output_channel() -> None:
    torch.manual_seed(0)
    fno = build_model(FNOConfig(width=8, modes=4, layers=1, projection_width=16),
                      spatial_dims=1, in_channels=2, out_channels=1)
    x = torch.randn(4, 2, 16)
    config = dataclasses.replace(TrialConfig.uniform(fno, scale=1.0, weight_bits=4,
                                                     act_bits=8),
                                 weight_granularity="per_channel")
    qnet = build_sim(fno, config, dummy_input=x[:1])
    calibrate(qnet, [x])
    shapes = {(layer, slot): tuple(q.get_scale().shape) for layer, slot, q in qnet.quantizers()}
    # Spectral weights are (in, out, modes): the output channels are axis 1.
    assert shapes["blocks.0.spectral", "weight:weight_real"] == (1, 8, 1)
    assert shapes["blocks.0.pointwise", "weight:weight"] == (8, 1, 1)
    assert shapes["blocks.0.spectral", "input:0"] == ()  # activations stay per tensor
    up = nn.Sequential(nn.ConvTranspose2d(2, 5, 2, stride=2))
    image = torch.randn(2, 2, 4, 4)
    config = dataclasses.replace(TrialConfig.for_model(up, scale=1.0, bits={"0": (4, 8)}),
                                 weight_granularity="per_channel")
    qnet = build_sim(up, config, dummy_input=image[:1])
    calibrate(qnet, [image])
    _, _, weight = next(q for q in qnet.quantizers() if q[1].startswith("weight"))
    assert tuple(weight.get_scale().shape) == (1, 5, 1, 1)  # (in, out, kh, kw)


@pytest.mark.parametrize("weight_bits", [4, 24], ids=["int8-container", "float-arithmetic"])
def test_per_channel_grids_export_with_their_axis_and_match_the_simulation(
        weight_bits: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    network, x = _TwoLayers(), torch.randn(16, 2, 8)
    model = _sim(network, x, "per_channel", weight_bits=weight_bits)
    encodings = {e.name: e for e in export_qdq_onnx(model, x[:1], tmp_path / "m.onnx")}
    conv, dense = encodings["conv/weight:weight"], encodings["dense/weight:weight"]
    assert (conv.axis, dense.axis) == (0, 0)
    assert isinstance(conv.scale, list) and len(conv.scale) == 3 and len(dense.scale) == 8
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    if weight_bits <= 16:
        dequantize = next(n for n in graph.node if n.name == conv.node)
        assert [a.i for a in dequantize.attribute if a.name == "axis"] == [0]
        scale = next(t for t in graph.initializer if t.name == dequantize.input[1])
        assert list(scale.dims) == [3]
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"),
                                           providers=["CPUExecutionProvider"])
    got, = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = model(x).as_subclass(torch.Tensor).numpy()
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-5


def test_per_tensor_export_is_unchanged(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = build_model(UNetConfig(width=4, levels=2), spatial_dims=2, in_channels=1,
                          out_channels=1)
    x = torch.randn(4, 1, 8, 8)
    qnet = build_sim(network, TrialConfig.uniform(network, scale=1.0, weight_bits=4,
                                                  act_bits=8), dummy_input=x[:1])
    calibrate(qnet, [x])
    encodings = export_qdq_onnx(qnet.model, x[:1], tmp_path / "m.onnx")
    assert all(e.axis is None and isinstance(e.scale, float) for e in encodings)
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert not any(a.name == "axis" for n in graph.node for a in n.attribute
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear"))


def test_per_channel_grid_of_a_tensor_computed_at_run_time_is_refused(tmp_path: Path) -> None:
    # A weight the graph computes (here: the parameter scaled by the input's mean) is not a
    # constant, and a per-channel run-time grid has no export here: refused, naming it.
    class Computed(nn.Module):
        def __init__(self, quantizer: nn.Module) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(3, 4))
            self.param_quantizers = nn.ModuleDict({"weight": quantizer})

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.param_quantizers["weight"](x.mean(0) * self.weight).T

    from aimet_torch.quantization.affine import QuantizeDequantize
    from aimet_torch.quantization.encoding_analyzer import MinMaxEncodingAnalyzer

    quantizer = QuantizeDequantize((3, 1), bitwidth=4, symmetric=True,
                                   encoding_analyzer=MinMaxEncodingAnalyzer(shape=(3, 1)))
    module = Computed(quantizer)
    with quantizer.compute_encodings():
        quantizer(module.weight.detach())
    with pytest.raises(QuantizationError, match=r"quantizer /weight:weight quantizes a tensor "
                                                r"computed at run time per channel"):
        export_qdq_onnx(module, torch.randn(2, 4), tmp_path / "m.onnx")
