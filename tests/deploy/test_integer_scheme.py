"""The integer scheme quantizes layer outputs too, so onnxruntime runs integer kernels; the
paper's scheme (outputs float) leaves every convolution a float Conv. Checked on the graph
onnxruntime optimises, not only on the exported one."""

from __future__ import annotations

import collections
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch

from autoq.bits import Scheme
from autoq.deploy import export_qdq_onnx
from autoq.deploy.export import check_graph
from autoq.models import UNetConfig, build_model
from autoq.precision import TrialConfig
from autoq.quant import build_sim, calibrate

INTEGER_KERNELS = {"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger"}


def _optimised_ops(scheme: Scheme, tmp_path: Path) -> collections.Counter[str]:
    torch.manual_seed(0)
    network = build_model(UNetConfig(width=8, levels=2, norm_groups=4), spatial_dims=2,
                          in_channels=1, out_channels=1).eval()
    x = torch.randn(4, 1, 32, 32)
    uniform = TrialConfig.uniform(network, scale=1.0, weight_bits=8, act_bits=8)
    config = TrialConfig(scale=1.0, bits=uniform.bits, scheme=scheme)
    qnet = build_sim(network, config, dummy_input=x[:1])
    calibrate(qnet, [x])
    exported, optimised = tmp_path / f"{scheme}.onnx", tmp_path / f"{scheme}-optimised.onnx"
    export_qdq_onnx(qnet.model, x[:1], exported)
    with torch.no_grad():
        expected = qnet.model(x)
    # The exported graph computes what the simulation computes; onnxruntime's integer kernels
    # requantize in their own arithmetic (measured: 3 % relative on this untrained UNet, 1e-7
    # under the paper's scheme), which is why a deployable's error is measured on the runtime.
    for level, tolerance in ((onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL, 1e-5),
                             (onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL, 0.1)):
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = level
        options.optimized_model_filepath = str(optimised)
        session = onnxruntime.InferenceSession(str(exported), options,
                                               providers=["CPUExecutionProvider"])
        out = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
        assert torch.linalg.norm(out - expected) <= tolerance * torch.linalg.norm(expected)
    return collections.Counter(node.op_type for node in onnx.load(str(optimised)).graph.node)


@pytest.mark.filterwarnings("ignore:Serializing optimized model")
def test_integer_scheme_runs_integer_kernels_and_the_papers_does_not(tmp_path: Path) -> None:
    integer = _optimised_ops("integer", tmp_path)
    paper = _optimised_ops("paper", tmp_path)
    network = build_model(UNetConfig(width=8, levels=2, norm_groups=4), spatial_dims=2,
                          in_channels=1, out_channels=1)
    layers = dict(network.named_modules())
    quantized = TrialConfig.uniform(network, scale=1.0, weight_bits=8, act_bits=8)
    # onnxruntime's CPU provider has integer convolutions, not transposed ones.
    convolutions = [name for name in quantized.quantized_layers
                    if type(layers[name]) is torch.nn.Conv2d]
    assert sum(integer[op] for op in INTEGER_KERNELS) == len(convolutions) > 0, integer
    assert not any(paper[op] for op in INTEGER_KERNELS), paper


def _uniform_unet_sim(weight_bits: int, act_bits: int, *, seed: int
                      ) -> tuple[torch.nn.Module, torch.Tensor, list[str]]:
    """A small UNet under the integer scheme, calibrated, and the names of its quantized
    (non-transposed) convolutions."""
    torch.manual_seed(seed)
    network = build_model(UNetConfig(width=8, levels=2, norm_groups=4), spatial_dims=2,
                          in_channels=1, out_channels=1).eval()
    x = torch.randn(4, 1, 32, 32)
    uniform = TrialConfig.uniform(network, scale=1.0, weight_bits=weight_bits,
                                  act_bits=act_bits)
    layers = dict(network.named_modules())
    convolutions = [name for name in uniform.quantized_layers
                    if type(layers[name]) is torch.nn.Conv2d]
    qnet = build_sim(network, TrialConfig(scale=1.0, bits=uniform.bits, scheme="integer"),
                     dummy_input=x[:1])
    calibrate(qnet, [x])
    return qnet.model, x, convolutions


@pytest.mark.filterwarnings("ignore:Serializing optimized model")
@pytest.mark.parametrize(("weight_bits", "act_bits"), [(6, 6), (4, 8), (3, 5)])
def test_integer_kernels_below_eight_bits(weight_bits: int, act_bits: int,
                                          tmp_path: Path) -> None:
    # Widths under 8 travel in 8-bit containers where it matters for the kernels: constant
    # weights as int8 integers (no runtime QuantizeLinear, no Clip), output quantizers as
    # Q → DQ → Clip (Conv → Q adjacent). The graph as written computes the simulation's values
    # up to rounding ties, which this UNet's instance norms spread over every output: it is
    # checked as the export check does, grid by grid on torch's own inputs.
    model, x, convolutions = _uniform_unet_sim(weight_bits, act_bits, seed=2)
    exported, optimised = tmp_path / "m.onnx", tmp_path / "optimised.onnx"
    encodings = export_qdq_onnx(model, x[:1], exported)
    forms = collections.Counter((e.name.rsplit("/", 1)[1].split(":")[0], e.form, e.container)
                                for e in encodings)
    assert forms[("weight", "constant", "int8")] == len(convolutions) + 2  # + 2 transposed
    assert forms[("output", "q-dq-clip", "uint8")] == len(convolutions) + 2
    with torch.no_grad():
        expected = model(x).as_subclass(torch.Tensor)
    levels = onnxruntime.GraphOptimizationLevel
    for level in (levels.ORT_DISABLE_ALL, levels.ORT_ENABLE_ALL):
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = level
        options.optimized_model_filepath = str(optimised)
        session = onnxruntime.InferenceSession(str(exported), options,
                                               providers=["CPUExecutionProvider"])
        out = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
        difference = torch.linalg.norm(out - expected) / torch.linalg.norm(expected)
        if level == levels.ORT_DISABLE_ALL:  # the graph as written: the simulation's values
            check = check_graph(model, exported, x, encodings)  # raises on a disagreement
            assert check["quantizers"] == len(encodings) - forms[("weight", "constant", "int8")]
    # onnxruntime's own arithmetic (int32 bias, requantization) moves this UNet a few percent.
    assert difference < 0.2
    ops = collections.Counter(node.op_type for node in onnx.load(str(optimised)).graph.node)
    assert sum(ops[op] for op in INTEGER_KERNELS) == len(convolutions), ops


@pytest.mark.filterwarnings("ignore:Serializing optimized model")
@pytest.mark.parametrize("bits", [(8, 4), (4, 3)])
def test_integer_scheme_below_five_bit_activations_loads_with_default_options(
    bits: tuple[int, int], tmp_path: Path
) -> None:
    # An output quantizer's Clip followed by a 4-bit input quantizer once met onnxruntime's
    # Clip→QuantizeLinear fusion, which failed the session on a 4-bit zero point.
    from autoq.models import TransformerConfig

    torch.manual_seed(0)
    network = build_model(TransformerConfig(width=16, heads=2, layers=2, patch=4,
                                            feed_forward_width=32),
                          spatial_dims=2, in_channels=1, out_channels=1).eval()
    x = torch.randn(4, 1, 16, 16)
    uniform = TrialConfig.uniform(network, scale=1.0, weight_bits=bits[0], act_bits=bits[1])
    qnet = build_sim(network, TrialConfig(scale=1.0, bits=uniform.bits, scheme="integer"),
                     dummy_input=x[:1])
    calibrate(qnet, [x])
    export_qdq_onnx(qnet.model, x[:1], tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    out, = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = qnet.model(x)
    assert torch.linalg.norm(torch.from_numpy(out) - expected) <= 0.1 * torch.linalg.norm(
        expected)
