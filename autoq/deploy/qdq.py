"""ONNX export of an AIMET-quantized module at any bitwidth, with QuantizeLinear/DequantizeLinear.

Why our own QDQ exporter rather than ``aimet_torch.onnx.export``: AIMET's exporter accepts 2, 4, 8,
16 and 32 bits only (the search's menus offer 3, 5, 6, 7 … too), and writes 2 bits as ONNX
``INT2``/``UINT2`` (opset 25), which onnxruntime 1.32 refuses to load with its default graph
optimisations (constant folding: "Element type mismatch"). Here every quantizer is written with
the smallest ONNX integer *container* of 8 or 16 bits that holds its grid (the operands of
onnxruntime's integer kernels; int4 is not fused, and onnxruntime's Clip→QuantizeLinear fusion
fails the session on a 4-bit zero point), and with the grid's own range:

=============  =======================================================================
bits           what the graph computes (``s`` scale, ``z`` zero point = −AIMET offset)
=============  =======================================================================
2 … 8          ``DequantizeLinear(QuantizeLinear(Clip(x, lo, hi), s, z:int8|uint8))``
9 … 16         the same with an int16/uint16 container
17 … 32        ``(Clip(Round(x / s) + z, qmin, qmax) − z) · s`` in float (ONNX has no
               QuantizeLinear to int32; a float32 tensor carries these grids anyway)
=============  =======================================================================

A weight quantized per output channel (``space.weight_granularity: per_channel``) is written the
same way with one scale and zero point per channel: 1-D ``scale`` and ``zero_point`` tensors and
the ``axis`` attribute of QuantizeLinear/DequantizeLinear (above 16 bits, the float arithmetic
with the scales broadcast along that axis).

That is how a tensor computed at run time is quantized (an input quantizer: form
``clip-q-dq``). Two kinds of quantizer are written otherwise, with the same values, so that a
runtime can run integer kernels (:data:`FORMS`):

- a constant weight (2..16 bits) becomes its integers, computed at export time by the
  simulation's own quantizer and stored in an int8/uint8 (2..8 bits) or int16/uint16 (9..16)
  initializer, read by one DequantizeLinear: no QuantizeLinear and no Clip at run time, and
  ``DQ(int8) → Conv`` is the pattern onnxruntime fuses (it fuses no int4 weight);
- an output quantizer (the integer scheme) is ``QuantizeLinear → DequantizeLinear → Clip`` in an
  8-bit container at 2..8 bits: the container saturates at its ends and the Clip after
  DequantizeLinear cuts to the grid's, the same values as clipping first, while
  ``Conv → QuantizeLinear`` stays adjacent for onnxruntime's ``DQ → Conv → Q`` fusion into
  QLinearConv.

``lo = (qmin − z)·s`` and ``hi = (qmax − z)·s`` are the grid's end points, so clipping the float
input and quantizing into the wider container yields exactly the integers AIMET's
``clamp(round(x/s) + z, qmin, qmax)`` yields (the Clip is left out when the grid fills its
container). The dequantized values are the simulation's, up to the rounding of ``x/s`` against
``x·(1/s)`` on exact ties, which a test measures.

How: while ``torch.onnx.export`` (TorchScript) traces the module, every AIMET quantizer's
``forward`` is replaced by an autograd function that exports as one placeholder node
``autoq::QuantizeDequantize`` carrying an index into the table of encodings. The placeholders are
then rewritten into the standard nodes above.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from autoq.bits import MAX_BITS, MIN_BITS
from autoq.errors import QuantizationError

OPSET = 21
"""The ONNX opset of exported graphs: the first with int16/uint16 QuantizeLinear,
and one that onnxruntime and the TorchScript exporter both support."""

PLACEHOLDER_DOMAIN, PLACEHOLDER_OP = "autoq", "QuantizeDequantize"

_CONTAINERS: tuple[tuple[int, int, int], ...] = (
    (8, TensorProto.INT8, TensorProto.UINT8),
    (16, TensorProto.INT16, TensorProto.UINT16),
)
"""``(container bits, signed type, unsigned type)``, narrowest first."""

FLOAT_ARITHMETIC = "float32"
"""The container name of grids wider than 16 bits, exported as float arithmetic."""

CONSTANT, INPUT, OUTPUT, FLOAT = "constant", "clip-q-dq", "q-dq-clip", "float"
FORMS = (CONSTANT, INPUT, OUTPUT, FLOAT)
"""How a grid is written. ``constant``: a weight whose integers are computed at export time,
stored as an int8/int16 initializer and read by DequantizeLinear (no QuantizeLinear, no Clip:
the integers are on the grid already). ``clip-q-dq``: a tensor computed at run time, clipped to
the grid's range, then quantized and dequantized (input quantizers, weights that are computed).
``q-dq-clip``: an output quantizer, in an 8-bit container at 2..8 bits, clipped *after*
DequantizeLinear so that ``Conv → QuantizeLinear`` stays adjacent for onnxruntime's integer
kernels (same values: the container saturates, the Clip cuts to the grid). ``float``: a grid
wider than 16 bits in float arithmetic."""


def container(bits: int, *, signed: bool) -> tuple[str, int | None]:
    """The ONNX integer type that carries a ``bits``-wide grid: ``(name, TensorProto type)``,
    8 or 16 bits (onnxruntime's CPU integer kernels, QLinearConv, QLinearMatMul, ConvInteger,
    MatMulInteger, take 8-bit operands; it fuses no int4 form).

    Widths 17..32 have no QuantizeLinear type; they return ``("float32", None)`` and are written
    as float arithmetic.

    Raises:
        QuantizationError: ``bits`` is outside ``MIN_BITS..MAX_BITS``.
    """
    if not MIN_BITS <= bits <= MAX_BITS:
        raise QuantizationError(f"bitwidth {bits} is outside {MIN_BITS}..{MAX_BITS}")
    for width, signed_type, unsigned_type in _CONTAINERS:
        if bits <= width:
            onnx_type = signed_type if signed else unsigned_type
            return TensorProto.DataType.Name(onnx_type).lower(), onnx_type
    return FLOAT_ARITHMETIC, None


def container_width(bits: int) -> int:
    """The width of the container a ``bits``-wide grid runs in: 8, 16, or 32 (float
    arithmetic); grids of one width run the same kernels."""
    name, onnx_type = container(bits, signed=True)
    return 32 if onnx_type is None else int(name.removeprefix("int"))


@dataclass(frozen=True)
class QDQEncoding:
    """One quantizer as the exported graph computes it.

    Attributes:
        name: ``<module path>/<slot>`` (slot as :meth:`QuantizedNetwork.quantizers` names it).
        bits: the grid's width.
        signed: integers in ``[-2^(b-1), 2^(b-1)-1]`` (symmetric weights) or ``[0, 2^b-1]``.
        scale: the grid's step; per channel, one step per channel along :attr:`axis`.
        zero_point: the integer that represents 0.0 (AIMET's ``-offset``); per channel, one per
            channel.
        qmin: the grid's smallest integer.
        qmax: the grid's largest integer.
        container: the ONNX type the integers travel in (``int8``, ``uint8``, ``int16``,
            ``uint16`` or ``float32``).
        node: the name of the exported QuantizeLinear node (the DequantizeLinear node of a
            constant weight; the Round node of a float grid).
        form: how the graph computes it (:data:`FORMS`).
        axis: the axis of the channels of a per-channel grid (ONNX's ``axis`` attribute of
            QuantizeLinear/DequantizeLinear); ``None`` for one grid per tensor.
        source: the graph tensor the grid quantizes (the quantizer's input).
        target: the graph tensor of its dequantized values (the quantizer's output, what the
            next nodes read).
    """

    name: str
    bits: int
    signed: bool
    scale: float | list[float]
    zero_point: int | list[int]
    qmin: int
    qmax: int
    container: str
    node: str = ""
    form: str = ""
    axis: int | None = None
    source: str = ""
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        """A plain dict for a manifest."""
        return asdict(self)


class _ExportedQuantizeDequantize(torch.autograd.Function):
    """Exports as the ``autoq::QuantizeDequantize`` placeholder that :func:`export_qdq_onnx`
    rewrites. While tracing it passes its input through, as AIMET's quantizers do during an
    export: the trace needs shapes only (running the quantizer inside the traced function breaks
    the TorchScript tracer)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, index: int) -> torch.Tensor:
        del ctx, index
        return x.as_subclass(torch.Tensor).clone()

    @staticmethod
    def symbolic(g: Any, x: Any, index: int) -> Any:
        out = g.op(f"{PLACEHOLDER_DOMAIN}::{PLACEHOLDER_OP}", x, index_i=index)
        out.setType(x.type())
        return out


def encoding_of(name: str, quantizer: Any) -> QDQEncoding:
    """The grid of one calibrated quantizer, per tensor or per channel, as the graph will
    compute it.

    ``quantizer`` is AIMET's affine quantizer (``QuantizeDequantize``), read through its public
    methods (``get_scale``, ``get_offset``, ``bitwidth``, ``signed``, ``qmin``, ``qmax``).

    Raises:
        QuantizationError: the quantizer is uncalibrated, or has grids along more than one axis
            (block-wise), which ONNX's QuantizeLinear of this opset does not take.
    """
    if not quantizer.is_initialized():
        raise QuantizationError(f"quantizer {name} has no range: calibrate before exporting")
    scale = quantizer.get_scale().detach()
    offset = quantizer.get_offset().detach().expand_as(scale)
    bits, signed = int(quantizer.bitwidth), bool(quantizer.signed)
    kind, _ = container(bits, signed=signed)
    grid = QDQEncoding(name=name, bits=bits, signed=signed,
                       scale=float(scale.float().flatten()[0]),
                       zero_point=-round(float(offset.flatten()[0])), qmin=int(quantizer.qmin),
                       qmax=int(quantizer.qmax), container=kind)
    if scale.numel() == 1:
        return grid
    axes = [axis for axis, n in enumerate(scale.shape) if n != 1]
    if len(axes) != 1:
        raise QuantizationError(f"quantizer {name} has grids of shape {tuple(scale.shape)}; the "
                                f"export writes one grid per tensor or per channel of one axis")
    return replace(grid, scale=scale.float().flatten().tolist(),
                   zero_point=[-round(v) for v in offset.flatten().tolist()], axis=axes[0])


def quantizers(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Every quantizer inside ``module`` as ``("<layer>/<slot>", quantizer)``, slots named as
    :meth:`autoq.quant.QuantizedNetwork.quantizers` names them (``weight:<param>``,
    ``input:<i>``, ``output:<i>``).

    Quantizers are found where AIMET's quantized modules keep them (``param_quantizers``,
    ``input_quantizers``, ``output_quantizers``), so this package needs no AIMET import (AIMET
    is imported only in :mod:`autoq.quant`)."""
    seen: set[int] = set()
    for layer, child in module.named_modules():
        for attribute, slot in (("param_quantizers", "weight"), ("input_quantizers", "input"),
                                ("output_quantizers", "output")):
            holder = getattr(child, attribute, None)
            if isinstance(holder, nn.ModuleDict):
                items: Sequence[tuple[Any, nn.Module | None]] = list(holder.items())
            elif isinstance(holder, nn.ModuleList):
                items = list(enumerate(holder))
            else:
                continue
            for key, quantizer in items:
                if quantizer is not None and id(quantizer) not in seen:
                    seen.add(id(quantizer))
                    yield f"{layer}/{slot}:{key}", quantizer


@contextlib.contextmanager
def _placeholders(module: nn.Module) -> Iterator[list[tuple[QDQEncoding, nn.Module]]]:
    """While inside, every quantizer of ``module`` exports as a placeholder; yields the table of
    ``(encoding, quantizer)`` the placeholders index into (the quantizer computes a constant
    weight's integers after the trace, when its own ``forward`` is back)."""
    table: list[tuple[QDQEncoding, nn.Module]] = []
    patched: list[nn.Module] = []
    try:
        for path, quantizer in quantizers(module):
            index = len(table)
            table.append((encoding_of(path, quantizer), quantizer))

            def forward(x: torch.Tensor, index: int = index) -> torch.Tensor:
                return _ExportedQuantizeDequantize.apply(x, index)

            quantizer.forward = forward
            patched.append(quantizer)
        yield table
    finally:
        for quantizer in patched:
            del quantizer.forward


def export_qdq_onnx(
    module: nn.Module,
    dummy: torch.Tensor,
    path: str | Path,
    *,
    input_name: str = "input",
    output_name: str = "output",
    dynamic_batch: bool = True,
) -> list[QDQEncoding]:
    """Export ``module`` (holding AIMET quantizers anywhere inside) to a standard ONNX graph.

    Args:
        module: any module; its AIMET quantizers must be calibrated. Exported in eval mode (the
            mode is restored).
        dummy: an input ``(batch, ...)``; the graph is traced at its shape (batch is dynamic).
        path: the ``.onnx`` file to write.
        input_name: the graph input's name.
        output_name: the graph output's name.
        dynamic_batch: let the first axis vary.

    Returns:
        The encodings, in graph order of their placeholders, each naming the node that
        quantizes (:attr:`QDQEncoding.node`), the tensors it reads and writes
        (:attr:`QDQEncoding.source`, :attr:`QDQEncoding.target`) and how it is written
        (:attr:`QDQEncoding.form`).

    Raises:
        QuantizationError: a quantizer is uncalibrated, has block-wise grids, or quantizes per
            channel a tensor computed at run time (not a constant weight) at 16 bits or fewer.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    dynamic = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    try:
        with _placeholders(module) as table, torch.no_grad(), warnings.catch_warnings():
            # The tracer's warnings are about shape arithmetic baked into the fixed-grid graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (dummy,), str(path), input_names=[input_name],
                              output_names=[output_name], dynamic_axes=dynamic,
                              opset_version=OPSET, dynamo=False,
                              custom_opsets={PLACEHOLDER_DOMAIN: 1} if table else None)
        model = onnx.load(str(path))
        with torch.no_grad():
            encodings = _rewrite_placeholders(model, table)
        # The tracer's shape annotations of intermediate tensors are hints, and wrong ones: at
        # a UNet's skip connections they give tensors of different sizes the same symbolic
        # dims, and onnxruntime with graph optimisations disabled (which keeps them) then fails
        # ("Shape mismatch attempting to re-use buffer" at a Concat). Without them onnxruntime
        # infers the shapes itself.
        del model.graph.value_info[:]
    finally:
        module.train(was_training)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return encodings


def _constant(graph: onnx.GraphProto, name: str, value: float | int | list[float] | list[int],
              data_type: int, shape: Sequence[int] | None = None) -> str:
    """An initializer: a scalar, or a per-channel list (1-D, or reshaped to ``shape`` to
    broadcast against a tensor)."""
    values = value if isinstance(value, list) else [value]
    dims = ([] if not isinstance(value, list) else [len(value)]) if shape is None else shape
    graph.initializer.append(helper.make_tensor(name, data_type, list(dims), values))
    return name


def _broadcast_shape(e: QDQEncoding, rank: int) -> list[int]:
    """The shape that lays a per-channel grid's values along its axis of a ``rank``-D tensor."""
    assert e.axis is not None and isinstance(e.scale, list)
    return [len(e.scale) if axis == e.axis else 1 for axis in range(rank)]


def _constant_value(name: str, initializers: dict[str, onnx.TensorProto],
                    producers: dict[str, onnx.NodeProto]) -> np.ndarray | None:
    """The value of tensor ``name`` when it is a constant of the graph (an initializer, a
    Constant node, or an Identity of one: how the TorchScript exporter writes parameters), else
    ``None``."""
    while name not in initializers:
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type == "Constant":
            value = next((a for a in node.attribute if a.name == "value"), None)
            return None if value is None else numpy_helper.to_array(value.t)
        if node.op_type != "Identity":
            return None
        name = node.input[0]
    return numpy_helper.to_array(initializers[name])


def _rewrite_placeholders(model: onnx.ModelProto, table: list[tuple[QDQEncoding, nn.Module]]
                          ) -> list[QDQEncoding]:
    """Replace each placeholder by standard nodes (:data:`FORMS`); drop initializers nothing
    reads any more (the float weights that became integer initializers)."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    nodes: list[onnx.NodeProto] = []
    written: list[QDQEncoding] = []
    for node in graph.node:
        if (node.domain, node.op_type) != (PLACEHOLDER_DOMAIN, PLACEHOLDER_OP):
            nodes.append(node)
            continue
        index = next(a.i for a in node.attribute if a.name == "index")
        encoding, quantizer = table[index]
        prefix = f"qdq{len(written)}_{encoding.name.replace('/', '_').replace(':', '_')}"
        slot = encoding.name.rsplit("/", 1)[-1]
        weight = (_constant_value(node.input[0], initializers, producers)
                  if slot.startswith("weight:") else None)
        if weight is not None and encoding.bits <= 16:
            new, first, encoding = _constant_nodes(graph, encoding, quantizer, weight,
                                                   node.output[0], prefix)
        else:
            rank = quantizer.get_scale().dim()  # a per-channel grid's scale has the tensor's
            new, first, encoding = _qdq_nodes(graph, encoding, node.input[0], node.output[0],
                                              prefix, output=slot.startswith("output:"),
                                              rank=rank)
        nodes.extend(new)
        written.append(replace(encoding, node=first, source=node.input[0],
                               target=node.output[0]))
    del graph.node[:]
    graph.node.extend(nodes)
    read = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    unread = [t for t in graph.initializer if t.name not in read]
    for tensor in unread:
        graph.initializer.remove(tensor)
    # A constant the tracer wrote as a Constant node (a buffer: a spectral layer's DFT matrices)
    # is read by nothing once its placeholder became integers; onnxruntime warns of it.
    for node in [n for n in graph.node if n.op_type == "Constant" and not set(n.output) & read]:
        graph.node.remove(node)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", OPSET))
    return written


def _constant_nodes(graph: onnx.GraphProto, e: QDQEncoding, quantizer: nn.Module,
                    weight: np.ndarray, target: str, prefix: str
                    ) -> tuple[list[onnx.NodeProto], str, QDQEncoding]:
    """A constant weight as its grid's integers (int8/uint8 for 2..8 bits, int16/uint16 for
    9..16) and one DequantizeLinear: the runtime quantizes nothing, and onnxruntime's QDQ
    fusions see the ``DQ(integer initializer) → Conv/MatMul`` pattern they look for.

    The integers are those of the simulation's own quantizer: ``round(dq / s) + z`` of its
    dequantized output is exact, since ``dq = (q − z)·s``."""
    name, onnx_type = container(e.bits, signed=e.signed)
    assert onnx_type is not None  # bits <= 16
    values = torch.from_numpy(np.array(weight, dtype=np.float32))
    dequantized = quantizer(values).as_subclass(torch.Tensor).double().numpy()
    step = np.array(e.scale, dtype=np.float32).astype(np.float64)
    zero_point = np.array(e.zero_point)
    if e.axis is not None:
        shape = _broadcast_shape(e, dequantized.ndim)
        step, zero_point = step.reshape(shape), zero_point.reshape(shape)
    integers = np.rint(dequantized / step) + zero_point
    if integers.min() < e.qmin or integers.max() > e.qmax:
        raise QuantizationError(f"quantizer {e.name}: its weight's integers leave the grid "
                                f"[{e.qmin}, {e.qmax}]")
    dtype = helper.tensor_dtype_to_np_dtype(onnx_type)
    graph.initializer.append(numpy_helper.from_array(integers.astype(dtype),
                                                     f"{prefix}_integers"))
    scale = _constant(graph, f"{prefix}_scale", e.scale, TensorProto.FLOAT)
    zero = _constant(graph, f"{prefix}_zero_point", e.zero_point, onnx_type)
    dequantize = helper.make_node("DequantizeLinear", [f"{prefix}_integers", scale, zero],
                                  [target], name=f"{prefix}_dequantize")
    if e.axis is not None:
        dequantize.attribute.append(helper.make_attribute("axis", e.axis))
    return [dequantize], dequantize.name, replace(e, container=name, form=CONSTANT)


def _qdq_nodes(graph: onnx.GraphProto, e: QDQEncoding, source: str, target: str, prefix: str,
               *, output: bool, rank: int) -> tuple[list[onnx.NodeProto], str, QDQEncoding]:
    """The standard nodes of one grid computed at run time, from ``source`` (a ``rank``-D
    tensor) to ``target``, the name of the node that quantizes, and the encoding as written."""
    name, onnx_type = container(e.bits, signed=e.signed)
    if e.axis is not None:
        if onnx_type is not None:
            raise QuantizationError(f"quantizer {e.name} quantizes a tensor computed at run time "
                                    f"per channel; the export writes per-channel grids of "
                                    f"{e.bits} bits for constant weights only")
        return _float_nodes(graph, e, source, target, prefix,
                            shape=_broadcast_shape(e, rank))
    scale = _constant(graph, f"{prefix}_scale", e.scale, TensorProto.FLOAT)
    # The grid's end points as the simulation dequantizes them: float32((q − z) · s).
    step = numpy_helper.to_array(graph.initializer[-1]).astype("float32")
    assert isinstance(e.zero_point, int)  # per tensor: per-channel grids returned above
    low = float(step * (e.qmin - e.zero_point))
    high = float(step * (e.qmax - e.zero_point))
    if onnx_type is None:  # wider than 16 bits: the quantizer's arithmetic in float
        graph.initializer.pop()  # _float_nodes writes its own scale
        return _float_nodes(graph, e, source, target, prefix, shape=None)
    zero = _constant(graph, f"{prefix}_zero_point", e.zero_point, onnx_type)
    width = next(w for w, signed_type, unsigned_type in _CONTAINERS
                 if onnx_type in (signed_type, unsigned_type))
    clipped = e.bits < width
    if clipped:
        low_name = _constant(graph, f"{prefix}_low", low, TensorProto.FLOAT)
        high_name = _constant(graph, f"{prefix}_high", high, TensorProto.FLOAT)
    quantize = helper.make_node("QuantizeLinear", [source, scale, zero], [f"{prefix}_q"],
                                name=f"{prefix}_quantize")
    if output:
        # Quantize first, clip the dequantized values: the container saturates at its own ends
        # and the Clip cuts to the grid's, the same values as clipping first, and the layer's
        # Conv/MatMul feeds QuantizeLinear directly (onnxruntime's DQ → op → Q fusion).
        dequantized = f"{prefix}_dq" if clipped else target
        out = [quantize, helper.make_node("DequantizeLinear", [f"{prefix}_q", scale, zero],
                                          [dequantized], name=f"{prefix}_dequantize")]
        if clipped:
            out.append(helper.make_node("Clip", [dequantized, low_name, high_name], [target],
                                        name=f"{prefix}_clip"))
        return out, quantize.name, replace(e, container=name, form=OUTPUT)
    out = []
    if clipped:
        quantize.input[0] = f"{prefix}_clipped"
        out.append(helper.make_node("Clip", [source, low_name, high_name],
                                    [quantize.input[0]], name=f"{prefix}_clip"))
    out.append(quantize)
    out.append(helper.make_node("DequantizeLinear", [f"{prefix}_q", scale, zero], [target],
                                name=f"{prefix}_dequantize"))
    return out, quantize.name, replace(e, container=name, form=INPUT)


def _float_nodes(graph: onnx.GraphProto, e: QDQEncoding, source: str, target: str, prefix: str,
                 *, shape: Sequence[int] | None) -> tuple[list[onnx.NodeProto], str, QDQEncoding]:
    """A grid wider than 16 bits as the quantizer's arithmetic in float,
    ``(Clip(Round(x / s) + z, qmin, qmax) − z) · s``; a per-channel grid's ``s`` and ``z`` are
    shaped ``shape`` to broadcast along its axis."""
    scale = _constant(graph, f"{prefix}_scale", e.scale, TensorProto.FLOAT, shape)
    zero_point = ([float(z) for z in e.zero_point] if isinstance(e.zero_point, list)
                  else float(e.zero_point))
    zero = _constant(graph, f"{prefix}_zero_point", zero_point, TensorProto.FLOAT, shape)
    qmin = _constant(graph, f"{prefix}_qmin", float(e.qmin), TensorProto.FLOAT)
    qmax = _constant(graph, f"{prefix}_qmax", float(e.qmax), TensorProto.FLOAT)
    names = [f"{prefix}_{step_name}" for step_name in ("div", "round", "add", "clip", "sub")]
    return [
        helper.make_node("Div", [source, scale], [names[0]], name=names[0]),
        helper.make_node("Round", [names[0]], [names[1]], name=names[1]),
        helper.make_node("Add", [names[1], zero], [names[2]], name=names[2]),
        helper.make_node("Clip", [names[2], qmin, qmax], [names[3]], name=names[3]),
        helper.make_node("Sub", [names[3], zero], [names[4]], name=names[4]),
        helper.make_node("Mul", [names[4], scale], [target], name=f"{prefix}_mul"),
    ], names[1], replace(e, container=FLOAT_ARITHMETIC, form=FLOAT)
