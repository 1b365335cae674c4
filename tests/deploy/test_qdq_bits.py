"""Every bitwidth the menus offer exports to standard QDQ ONNX and runs in onnxruntime with its
default options, computing what the torch simulation computes."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import yaml
from aimet_torch.quantization.affine import QuantizeDequantize
from aimet_torch.quantization.encoding_analyzer import MinMaxEncodingAnalyzer
from onnx import TensorProto

from autoq.bits import MAX_BITS, MIN_BITS
from autoq.deploy import container, export_qdq_onnx
from autoq.errors import QuantizationError
from autoq.models import FNOConfig, TransformerConfig, build_model
from autoq.precision import TrialConfig
from autoq.quant import build_sim, calibrate


def menu_pairs() -> set[tuple[int, int]]:
    """Every (weight, activation) bitwidth pair of every bundled space's menus."""
    pairs = set()
    for path in files("autoq").joinpath("search_spaces").iterdir():
        if path.name.endswith(".yaml"):
            space = yaml.safe_load(path.read_text())["space"]
            pairs |= {(w, a) for w in space["weight_bits"] for a in space["act_bits"]}
    return pairs


MENU_PAIRS = sorted(menu_pairs())
# Every width 2..16 on each side (the other at 8), and grids wider than 16 bits (float
# arithmetic: no ONNX integer type holds them).
EVERY_WIDTH = sorted({(b, 8) for b in range(2, 17)} | {(8, b) for b in range(2, 17)}
                     | {(17, 20), (24, 24)})
CONTAINER = {**{b: 8 for b in range(2, 9)}, **{b: 16 for b in range(9, 17)}}
"""Every grid travels in an 8-bit container at 2..8 bits (the width integer kernels take) and a
16-bit one at 9..16."""


def _fno_sim(weight_bits: int, act_bits: int) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    network = build_model(FNOConfig(width=8, modes=4, layers=2, projection_width=16),
                          spatial_dims=1, in_channels=2, out_channels=1)
    x = torch.randn(8, 2, 32)
    config = TrialConfig.uniform(network, scale=1.0, weight_bits=weight_bits,
                                 act_bits=act_bits)
    qnet = build_sim(network, config, dummy_input=x[:1])
    calibrate(qnet, [x])
    return qnet.model.eval(), x


def _run_default_session(path: Path, x: torch.Tensor) -> np.ndarray:
    """onnxruntime with default session options (all graph optimisations on)."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out, = session.run(None, {"input": x.numpy()})
    return out


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_the_menus_offer_widths_aimets_exporter_refuses() -> None:
    # Why this exporter exists: AIMET's QDQ export takes 2/4/8/16/32 bits only.
    assert {w for pair in MENU_PAIRS for w in pair} - {2, 4, 8, 16, 32}


@pytest.mark.parametrize(("weight_bits", "act_bits"), sorted(set(MENU_PAIRS) | set(EVERY_WIDTH)),
                         ids=lambda bits: str(bits))
def test_bitwidth_pair_exports_loads_and_matches_the_sim(weight_bits: int, act_bits: int,
                                                         tmp_path: Path) -> None:
    model, x = _fno_sim(weight_bits, act_bits)
    encodings = export_qdq_onnx(model, x[:1], tmp_path / "m.onnx")
    with torch.no_grad():
        expected = model(x).as_subclass(torch.Tensor).numpy()
    got = _run_default_session(tmp_path / "m.onnx", x)
    # Not bit-identical through a whole FNO: the graph's spectral layers are DFT matrix products
    # where the simulation runs torch.fft, and float rounding at that level can move a value
    # across a rounding boundary of the next quantizer (one grid step). The grids themselves are
    # identical: test_each_grid_quantizes_exactly_as_the_simulation.
    assert _relative(got, expected) < 1e-4

    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    initializers = {t.name: t for t in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    quantize = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    # Weights are constants: written as integers, quantized by no runtime node.
    runtime_grids = [e for e in encodings if e.bits <= 16 and e.form != "constant"]
    assert len(quantize) == len(runtime_grids)
    # 2 spectral layers × (real, imaginary weight, input) + 3 linear layers × (weight, input)
    assert len(encodings) == 12
    for encoding in encodings:
        if encoding.bits > 16:
            assert (encoding.container, encoding.form) == ("float32", "float")
            continue
        node = nodes[encoding.node]
        zero_point = initializers[node.input[2]]
        assert TensorProto.DataType.Name(zero_point.data_type).lower() == encoding.container
        # The grid's own range, not the container's.
        assert encoding.qmax - encoding.qmin == 2 ** encoding.bits - 1
        if encoding.form == "constant":
            # A weight: its integers as an 8-bit (2..8 bits) or 16-bit initializer, on the grid.
            assert encoding.name.rsplit("/", 1)[1].startswith("weight:")
            assert node.op_type == "DequantizeLinear"
            width = CONTAINER[encoding.bits]
            assert encoding.container == f"{'' if encoding.signed else 'u'}int{width}"
            integers = onnx.numpy_helper.to_array(initializers[node.input[0]])
            assert encoding.qmin <= integers.min() and integers.max() <= encoding.qmax
            continue
        assert encoding.form == "clip-q-dq"
        width = CONTAINER[encoding.bits]
        assert encoding.container == f"{'' if encoding.signed else 'u'}int{width}"
        # Clipped to the grid before quantizing when the grid is narrower than its container.
        producer = next((n.op_type for n in graph.node if node.input[0] in n.output), None)
        assert (producer == "Clip") == (encoding.bits < width)
    # Every weight of the FNO is a parameter, so every weight grid is a constant.
    assert {e.form for e in encodings if "/weight:" in e.name and e.bits <= 16} <= {"constant"}
    # No float weight is left beside its integers.
    assert weight_bits > 16 or not any(
        t.data_type == TensorProto.FLOAT and t.name.endswith("weight_real")
        for t in graph.initializer)


class _Grid(torch.nn.Module):
    """One quantizer in an AIMET input slot: the module's output is the quantized input."""

    def __init__(self, quantizer: torch.nn.Module) -> None:
        super().__init__()
        self.input_quantizers = torch.nn.ModuleList([quantizer])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.input_quantizers[0](x)


@pytest.mark.parametrize("signed", [True, False], ids=["weight-grid", "activation-grid"])
def test_each_grid_quantizes_exactly_as_the_simulation(signed: bool, tmp_path: Path) -> None:
    torch.manual_seed(0)
    calibration = torch.randn(4096) * 2 + (0 if signed else 0.7)
    x = torch.randn(1, 20000) * 3  # a wider range than calibrated: clipped on both ends
    for bits in range(2, 17):
        quantizer = QuantizeDequantize((), bitwidth=bits, symmetric=signed,
                                       encoding_analyzer=MinMaxEncodingAnalyzer(shape=()))
        with quantizer.compute_encodings():
            quantizer(calibration)
        grid = _Grid(quantizer)
        encoding, = export_qdq_onnx(grid, x, tmp_path / f"{bits}.onnx")
        assert (encoding.bits, encoding.signed) == (bits, signed)
        with torch.no_grad():
            expected = grid(x).as_subclass(torch.Tensor).numpy()
        got = _run_default_session(tmp_path / f"{bits}.onnx", x)
        # Both ends of the grid are hit by many inputs (they are clipped), and narrow grids are
        # used whole.
        assert (expected == expected.min()).sum() > 10 and (expected == expected.max()).sum() > 10
        assert bits > 8 or len(np.unique(expected)) == 2 ** bits
        # Identical but for exact ties: torch computes round(x · (1/s)), ONNX round(x / s), and
        # the two can fall on either side of a half step when x/s is within float rounding of
        # one. Any other difference is a bug.
        differs = np.flatnonzero(got != expected)
        assert len(differs) <= x.numel() // 1000, f"{bits} bits: {len(differs)} differ"
        steps = x.double().numpy().ravel()[differs] / encoding.scale
        ulps = 4 * np.finfo(np.float32).eps * np.abs(steps)
        assert (np.abs(steps - np.floor(steps) - 0.5) <= ulps).all(), f"{bits} bits: not ties"
        np.testing.assert_allclose(np.abs(got.ravel()[differs] - expected.ravel()[differs]),
                                   encoding.scale, rtol=1e-2)


def test_clipping_is_what_keeps_narrow_grids_identical(tmp_path: Path) -> None:
    # Without the clip a 3-bit grid in an int8/uint8 container would keep values outside its
    # range: the exported outputs would differ from the simulation's.
    model, x = _fno_sim(3, 3)
    export_qdq_onnx(model, x[:1], tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    bypassed = []
    for node in proto.graph.node:
        if node.op_type == "QuantizeLinear":
            producer = next(n for n in proto.graph.node if node.input[0] in n.output)
            if producer.op_type in ("Clip", "Min"):
                source = producer.input[0]
                if producer.op_type == "Min":
                    source = next(n for n in proto.graph.node
                                  if producer.input[0] in n.output).input[0]
                node.input[0] = source
                bypassed.append(node.name)
    assert bypassed
    onnx.save(proto, str(tmp_path / "unclipped.onnx"))
    with torch.no_grad():
        expected = model(x).as_subclass(torch.Tensor).numpy()
    assert _relative(_run_default_session(tmp_path / "unclipped.onnx", x), expected) > 1e-3
    assert _relative(_run_default_session(tmp_path / "m.onnx", x), expected) < 1e-5


def test_two_bit_transformer_with_activation_products_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = build_model(TransformerConfig(width=8, heads=2, layers=1, patch=4,
                                            feed_forward_width=16),
                          spatial_dims=1, in_channels=1, out_channels=1)
    x = torch.randn(8, 1, 32)
    qnet = build_sim(network, TrialConfig.uniform(network, scale=1.0, weight_bits=2,
                                                  act_bits=2), dummy_input=x[:1])
    calibrate(qnet, [x])
    encodings = export_qdq_onnx(qnet.model, x[:1], tmp_path / "t.onnx")
    assert any("attention" in e.name for e in encodings)
    with torch.no_grad():
        expected = qnet.model(x).as_subclass(torch.Tensor).numpy()
    assert _relative(_run_default_session(tmp_path / "t.onnx", x), expected) < 1e-5


def test_container_widths_and_limits() -> None:
    assert container(2, signed=True) == ("int8", TensorProto.INT8)
    assert container(4, signed=False) == ("uint8", TensorProto.UINT8)
    assert container(8, signed=False) == ("uint8", TensorProto.UINT8)
    assert container(9, signed=True) == ("int16", TensorProto.INT16)
    assert container(16, signed=True) == ("int16", TensorProto.INT16)
    assert container(17, signed=True) == ("float32", None)
    with pytest.raises(QuantizationError, match="outside"):
        container(MIN_BITS - 1, signed=True)
    with pytest.raises(QuantizationError, match="outside"):
        container(MAX_BITS + 1, signed=True)


def test_uncalibrated_quantizers_are_refused(tmp_path: Path) -> None:
    network = build_model(FNOConfig(width=8, modes=4, layers=1, projection_width=16),
                          spatial_dims=1, in_channels=1, out_channels=1)
    x = torch.randn(2, 1, 16)
    qnet = build_sim(network, TrialConfig.uniform(network, scale=1.0, weight_bits=4,
                                                  act_bits=8), dummy_input=x[:1])
    with pytest.raises(QuantizationError, match="no range"):
        export_qdq_onnx(qnet.model, x[:1], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
