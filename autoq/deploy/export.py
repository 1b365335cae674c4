"""One trial as a deployable folder: an ONNX graph from raw data to raw prediction.

A trial's quantized network alone (:func:`autoq.quant.export_artifact`) runs at the network's
grid on normalised tensors, so nobody can feed it a data file. :func:`export_deployable` exports
the whole :class:`~autoq.train.ScaledSolver` instead: the per-channel normalisation, the
resizing from the data grid to the network grid, the quantized network (its quantizers as
standard QuantizeLinear/DequantizeLinear nodes at any width, :mod:`autoq.deploy.qdq`), the
resizing back, the de-normalisation and, for time-dependent problems, the residual. Each resize
method exports: ``linear`` as ONNX ``Resize``, ``cubic`` as its taps (``Gather``, ``Mul``,
``Add``), ``fourier`` as one real matrix product per axis (ONNX has no FFT that torch exports;
the same linear map, exact to float rounding). The folder::

    model.onnx        (batch, input_steps·fields, *data_shape) → (batch, target_steps·fields,
                      *data_shape), raw values in and out; batch is dynamic
    model.encodings   AIMET's encodings of every quantized tensor, by module (JSON)
    manifest.json     what it is: search, trial, bits, scale, metric and errors, shapes, opset,
                      every quantizer's grid and ONNX container, normalisation, versions
    network/          the trial's quantized network as :func:`autoq.quant.export_artifact`
                      writes it (manifest + state dict; :func:`autoq.quant.load_artifact`)

:func:`load_deployable` rebuilds the torch solver from ``network/`` and the manifest, exactly;
:mod:`autoq.deploy.runtime` runs ``model.onnx`` with onnxruntime.
"""

from __future__ import annotations

import json
import platform
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import torch

import autoq
from autoq.deploy.qdq import CONSTANT, OPSET, QDQEncoding, export_qdq_onnx, quantizers
from autoq.errors import QuantizationError
from autoq.models import ModelConfig
from autoq.precision import optional_types
from autoq.quant import QuantizedNetwork, export_artifact, load_artifact
from autoq.quant.logs import known_aimet_warnings
from autoq.train.solver import ScaledSolver

if TYPE_CHECKING:
    import onnxruntime

FORMAT = "autoq-deployable/1"
MANIFEST = "manifest.json"
ONNX_MODEL = "model.onnx"
ENCODINGS = "model.encodings"
NETWORK_DIR = "network"
INPUT_NAME, OUTPUT_NAME = "input", "output"
TOLERANCE = 1e-3
"""Relative L2 difference between onnxruntime (graph optimisations disabled: the graph as
written) and torch that the export check (:func:`check_graph`) accepts on each float segment of
the graph, the nodes between two quantizers, run on torch's own values of its inputs: what two
float32 implementations of the same operators may differ by, whatever the network."""
TIE_EPSILONS = 2.0
"""How near a rounding boundary, in float32 epsilons of the quotient ``|x/s|``, a quantizer's
input must lie for onnxruntime and torch to round it to neighbouring integers (derivation in
:func:`check_graph`)."""


@dataclass(frozen=True)
class DeploymentInfo:
    """What the search knows about the trial, kept in the manifest.

    Attributes:
        search: the search's (study's) name.
        trial: the trial's number in the study (``None`` outside a search).
        metric: the name of the error metric (``mse``, ``relative_l2``, …).
        error: the trial's validation error in that metric (the QAT model).
        float_error: the float model's error at the trial's scale.
        float_reference: the float model's error at the space's largest scale.
        cost: the configuration's bit-op cost.
        extra: any other JSON-serializable facts.
    """

    search: str
    trial: int | None = None
    metric: str = "mse"
    error: float | None = None
    float_error: float | None = None
    float_reference: float | None = None
    cost: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the manifest."""
        return {**asdict(self), "extra": dict(self.extra)}


def export_deployable(
    solver: ScaledSolver,
    qnet: QuantizedNetwork,
    directory: str | Path,
    *,
    info: DeploymentInfo,
    model_config: ModelConfig | None = None,
    check_inputs: torch.Tensor | None = None,
) -> Path:
    """Write the deployable folder of a trial (layout in the module's docstring).

    Args:
        solver: the trial's solver, its ``network`` being ``qnet.model`` (as the trial runs it:
            calibrated and QAT-trained).
        qnet: the quantized network inside ``solver``.
        directory: created if missing; files of an earlier export are overwritten.
        info: the trial's facts for the manifest.
        model_config: the network's model config (default: the network's own ``config``), so
            that ``network/`` reloads without a factory.
        check_inputs: raw inputs ``(batch, in_channels, *data_shape)``; when given, onnxruntime
            runs the written graph on them with its graph optimisations disabled and it must
            compute the torch solver's values, segment by segment and quantizer by quantizer
            (:func:`check_graph`); it runs them again with its default optimisations, and both
            end-to-end differences (and the integer kernels of the optimised graph) are kept in
            the manifest's ``check``.

    Returns:
        The directory.

    Raises:
        QuantizationError: ``solver.network`` is not ``qnet.model``; a quantizer has no range;
            the network holds a layer with no ONNX form (neuraloperator's spectral convolution:
            complex weights and ``torch.fft``); or onnxruntime's output differs from torch's
            on ``check_inputs``. Nothing is written in the first three cases.
    """
    if solver.network is not qnet.model:
        raise QuantizationError("solver.network must be the quantized network qnet.model "
                                "(as TrialRunner sets it before QAT)")
    _refuse_unexportable(qnet)
    directory = Path(directory)
    device = next(qnet.model.parameters()).device
    in_channels = int(solver.in_mean.numel())
    dummy = torch.zeros(1, in_channels, *solver.data_shape, device=device)
    was_training = solver.training
    solver.eval()
    try:
        with torch.no_grad():
            out_channels = int(solver(dummy).shape[1])
        directory.mkdir(parents=True, exist_ok=True)
        encodings = export_qdq_onnx(solver, dummy, directory / ONNX_MODEL,
                                    input_name=INPUT_NAME, output_name=OUTPUT_NAME)
        check = None if check_inputs is None else _check(solver, directory / ONNX_MODEL,
                                                         check_inputs, encodings)
    finally:
        solver.train(was_training)
    with known_aimet_warnings():
        activations, params = qnet.sim.get_activation_param_encodings()
    (directory / ENCODINGS).write_text(json.dumps(
        {"activation_encodings": activations, "param_encodings": params}, indent=2,
        sort_keys=True, default=_plain) + "\n")
    export_artifact(qnet, directory / NETWORK_DIR, model_config=model_config, onnx=False,
                    metadata=info.to_json())
    graph = onnx.load(str(directory / ONNX_MODEL), load_external_data=False)
    manifest = {
        "format": FORMAT,
        **info.to_json(),
        "trial_config": qnet.config.to_json(),
        "scale": qnet.config.scale,
        "input": {"name": INPUT_NAME, "shape": ["batch", in_channels, *solver.data_shape]},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", out_channels, *solver.data_shape]},
        "network_shape": list(solver.net_shape),
        "solver": {
            "data_shape": list(solver.data_shape), "scale": solver.scale,
            "fields": solver.fields, "input_steps": solver.input_steps,
            "target_steps": solver.target_steps, "steady": solver.steady,
            "in_channels": in_channels, "physical_units": solver.physical_units,
            "resample": solver.resample,
            "normalisation": {name: getattr(solver, name).detach().cpu().tolist()
                              for name in ("in_mean", "in_std", "out_mean", "out_std")},
        },
        "onnx": {"opset": OPSET, "ir_version": graph.ir_version,
                 "ops": sorted({node.op_type for node in graph.graph.node})},
        "quantizers": [encoding.to_json() for encoding in encodings],
        "check": check,
        "files": {"onnx": ONNX_MODEL, "encodings": ENCODINGS, "network": NETWORK_DIR},
        "versions": _versions(),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a deployable folder.

    Raises:
        QuantizationError: the folder holds no deployable manifest of this format.
    """
    path = Path(directory) / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise QuantizationError(f"no {MANIFEST} in {directory}: not a deployable folder") from e
    if manifest.get("format") != FORMAT:
        raise QuantizationError(f"{path} has format {manifest.get('format')!r}, expected "
                                f"{FORMAT!r}")
    return manifest


def load_deployable(directory: str | Path, *, device: torch.device | str | None = None
                    ) -> ScaledSolver:
    """The torch solver a deployable folder holds (eval mode): the same normalisation, grids
    and quantized network, from raw input to raw output like ``model.onnx``."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    network = load_artifact(directory / manifest["files"]["network"], device=device)
    geometry = manifest["solver"]
    solver = ScaledSolver(
        network, data_shape=tuple(geometry["data_shape"]), scale=geometry["scale"],
        fields=geometry["fields"], input_steps=geometry["input_steps"],
        target_steps=geometry["target_steps"], steady=geometry["steady"],
        in_channels=geometry["in_channels"], resample=geometry.get("resample", "linear"))
    solver.physical_units = geometry["physical_units"]
    for name, values in geometry["normalisation"].items():
        getattr(solver, name).copy_(torch.tensor(values, dtype=torch.float32))
    return solver.to(device or "cpu").eval()


def _refuse_unexportable(qnet: QuantizedNetwork) -> None:
    for layer, module in qnet.model.named_modules():
        for cls in optional_types():
            if isinstance(module, cls):
                raise QuantizationError(
                    f"cannot export layer {layer!r} to ONNX: {cls.__module__}.{cls.__qualname__} "
                    "computes on complex weights with torch.fft, which has no ONNX form and no "
                    "real-DFT export path in autoq yet; the trial's artifact (state dict and "
                    "manifest, autoq.quant.export_artifact) is all that can be kept")


INTEGER_KERNELS = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger")
"""onnxruntime's CPU integer kernels, counted in the optimised graph the manifest describes."""


def _session(model: Path | bytes, *, optimised: bool, save: Path | None = None
             ) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = (onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                                        if optimised else
                                        onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if save is not None:
        options.optimized_model_filepath = str(save)
        options.log_severity_level = 3  # its NCHWc warning: this copy is only counted
    return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model),
                                        sess_options=options,
                                        providers=["CPUExecutionProvider"])


def _difference(got: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    norm = float(np.linalg.norm(expected))
    return {"relative_difference": float(np.linalg.norm(got - expected)) / max(norm, 1e-30),
            "max_abs_difference": float(np.abs(got - expected).max())}


def _check(solver: ScaledSolver, path: Path, inputs: torch.Tensor,
           encodings: list[QDQEncoding]) -> dict[str, Any]:
    """:func:`check_graph` of the written graph against the torch solver on ``inputs``, and
    what onnxruntime's own optimisations change.

    With its default optimisations onnxruntime rewrites the integer scheme's graph into integer
    kernels that round in their own way (it quantizes the float bias to int32 at ``s_in·s_w``,
    transformer ``WeightBiasQuantization``, and QLinearConv requantizes its int32
    accumulator); that difference is the runtime's, measured and kept, not refused.
    """
    import tempfile

    check = check_graph(solver, path, inputs, encodings, subject="torch solver")
    with torch.no_grad():
        expected = solver(inputs.to(next(solver.parameters()).device)).cpu().numpy()
    feed = {INPUT_NAME: inputs.cpu().numpy().astype(np.float32)}
    with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
        # "Serializing optimized model with ... NchwcTransformer": kept for counting only.
        warnings.simplefilter("ignore")
        optimised_path = Path(scratch) / "optimised.onnx"
        got, = _session(path, optimised=True, save=optimised_path).run(None, feed)
        ops = Counter(node.op_type for node in onnx.load(str(optimised_path)).graph.node)
    return {**check,
            "runtime": {"optimisations": "onnxruntime default (ORT_ENABLE_ALL)",
                        **_difference(got, expected),
                        "integer_kernels": {op: ops[op] for op in INTEGER_KERNELS if ops[op]}}}


TORCH_VALUE = ":torch"
"""The suffix of the graph input that feeds a cut tensor's readers torch's value."""


def check_graph(module: torch.nn.Module, path: Path, inputs: torch.Tensor,
                encodings: list[QDQEncoding], *, input_name: str = INPUT_NAME,
                output_name: str = OUTPUT_NAME, subject: str = "torch module"
                ) -> dict[str, Any]:
    """Check that the graph ``path`` (written by :func:`~autoq.deploy.export_qdq_onnx` from
    ``module``, which returned ``encodings``) computes ``module``'s values on ``inputs``, run by
    onnxruntime with its graph optimisations disabled (the nodes as written).

    Run end to end, the graph cannot be held to a tolerance: a quantized network is a step
    function of its float arithmetic. Two correct float32 implementations (a convolution's
    summation order, onnxruntime's instance normalisation for torch's group norm, its Gelu)
    differ in the last bits; a value next to a rounding boundary then lands on the other grid
    step, the next quantizers' inputs move by that step and cross boundaries of their own, and
    norms spread each step over a feature map. On a QAT-trained Darcy UNet of mixed 8/16-bit
    activations one 8-bit flip moved its layer's output by 1e-3 and the network's by 6.5e-3;
    torch itself, with every activation quantizer's input moved by a relative 1e-6, moves its
    output by 0 in some runs and by the same 6.5e-3 in others, so no multiple of a few such
    runs bounds it.

    So the graph is checked where the rounding happens, on torch's own values. Every tensor a
    run-time quantizer reads or writes is cut from the nodes that read it, which read torch's
    value instead (its ``source``, the end of a float segment, and its ``target``, the start of
    the next); one onnxruntime run then gives:

    - each float segment's result, from torch's values of its inputs: relative L2 at most
      :data:`TOLERANCE` from torch's, the float rounding of one segment (the last segment ends
      at the graph's output);
    - each quantizer's grid integers, from torch's value of its input: equal to torch's, except
      on rounding ties. Torch (AIMET, through ``torch.fake_quantize``) rounds ``x·fl(1/s)``,
      ONNX's QuantizeLinear ``x/s``; each float32 quotient is within ``eps·|x/s|`` of the exact
      one (``eps = 2⁻²³``: one rounding of ``x/s``, or two of the reciprocal and the product),
      so the two can round to different integers only where ``x/s`` lies within ``eps·|x/s|``
      of a half-integer, and then to neighbours. An element that differs otherwise, or by more
      than one step, or within :data:`TIE_EPSILONS` ``·eps·|x/s|`` of no half-integer, is an
      export error (a wrong scale, zero point, range, container or operator), which moves many
      elements of its grid.

    Returns:
        The manifest's ``check``: ``inputs``; ``relative_difference`` and
        ``max_abs_difference`` of the graph run end to end (informative: what rounding ties
        spread to); ``segments`` and ``segment_difference`` (the largest); ``quantizers``
        (checked calls) and ``ties`` (elements rounded to the other neighbour on a tie).

    Raises:
        QuantizationError: a segment differs by more than :data:`TOLERANCE`, or a quantizer's
            integers differ off a tie; the message names the tensor or quantizer.
    """
    runtime = [e for e in encodings if e.form != CONSTANT]
    device = next(module.parameters()).device
    calls: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
            calls.setdefault(name, []).append(
                (args[0].as_subclass(torch.Tensor).cpu().numpy(),
                 out.as_subclass(torch.Tensor).cpu().numpy()))
        return hook

    wanted = {e.name for e in runtime}
    hooks = [quantizer.register_forward_hook(record(name))
             for name, quantizer in quantizers(module) if name in wanted]
    try:
        with torch.no_grad():
            expected = module(inputs.to(device)).as_subclass(torch.Tensor).cpu().numpy()
    finally:
        for hook in hooks:
            hook.remove()
    feed = {input_name: inputs.cpu().numpy().astype(np.float32)}
    got, = _session(path, optimised=False).run([output_name], feed)
    check: dict[str, Any] = {"inputs": len(inputs), "optimisations": "disabled",
                             **_difference(got, expected)}
    # The placeholders were written in graph order, torch's calls recorded in execution order:
    # a quantizer that runs twice is written twice, its calls in the same order.
    written = Counter(e.name for e in runtime)
    for name, count in written.items():
        if len(calls.get(name, [])) != count:
            raise QuantizationError(f"quantizer {name} is written {count}× in {path} and runs "
                                    f"{len(calls.get(name, []))}× in the {subject}: cannot "
                                    f"check it")
    grids = [(e, *calls[e.name].pop(0)) for e in runtime]
    model = onnx.load(str(path))
    torch_values = {e.target: y for e, _, y in grids} | {e.source: x for e, x, _ in grids}
    cut = _cut(model.graph, torch_values)
    names = [output_name, *(name for name in cut if name != output_name)]
    values = dict(zip(names, _session(model.SerializeToString(), optimised=False).run(
        names, {**feed, **{f"{name}{TORCH_VALUE}": torch_values[name] for name in cut}}),
        strict=True))
    targets = {e.target for e in runtime}
    segments = [(name, torch_values[name]) for name in cut if name not in targets]
    segments.append((output_name, expected))
    largest = 0.0
    for name, value in segments:
        difference = _difference(values[name], value)["relative_difference"]
        if not difference <= TOLERANCE:
            raise QuantizationError(
                f"onnxruntime's tensor {name!r} of {path} (graph optimisations disabled, its "
                f"float segment run on the {subject}'s inputs) differs from the {subject}'s by "
                f"{difference:.3g} (relative L2; at most {TOLERANCE:g} allowed)")
        largest = max(largest, difference)
    ties = 0
    for e, x, y in grids:
        on_ties, off = _rounded_apart(e, x, y, values[e.target])
        if off:
            raise QuantizationError(
                f"quantizer {e.name} of {path} (onnxruntime, graph optimisations disabled, run "
                f"on the {subject}'s input) differs from the {subject}'s on {off} of {y.size} "
                f"grid integers that are no rounding ties ({on_ties} more are)")
        ties += on_ties
    return {**check, "segments": len(segments), "segment_difference": largest,
            "quantizers": len(grids), "ties": ties}


def _cut(graph: onnx.GraphProto, values: Mapping[str, np.ndarray]) -> list[str]:
    """Cut every tensor of ``values`` that a node computes from the nodes that read it: they read
    the new graph input ``<name>:torch`` instead, and the tensor becomes a graph output. The
    names cut, in graph order (graph inputs and constants are read as they are)."""
    produced = [output for node in graph.node for output in node.output]
    cut = [name for name in produced if name in values]
    renamed = {name: f"{name}{TORCH_VALUE}" for name in cut}
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    outputs = {output.name for output in graph.output}
    for name in cut:
        graph.input.append(onnx.helper.make_tensor_value_info(
            renamed[name], onnx.helper.np_dtype_to_tensor_dtype(values[name].dtype), None))
        if name not in outputs:
            graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return cut


def _rounded_apart(e: QDQEncoding, x: np.ndarray, expected: np.ndarray, got: np.ndarray
                   ) -> tuple[int, int]:
    """How many of grid ``e``'s integers onnxruntime's dequantized ``got`` and torch's
    ``expected`` (both of input ``x``) round apart on a tie, and how many otherwise
    (:func:`check_graph`)."""
    step = np.asarray(e.scale, dtype=np.float32).astype(np.float64)
    if e.axis is not None:
        step = step.reshape([step.size if axis == e.axis else 1 for axis in range(x.ndim)])
    # The grid's integers (minus the zero point) of both: dequantized values are (q - z)·s.
    apart = np.abs(np.rint(got / step) - np.rint(expected / step))
    if not apart.any():
        return 0, 0
    quotient = x.astype(np.float64) / step
    from_half = np.abs(quotient - np.floor(quotient) - 0.5)
    tie = from_half <= TIE_EPSILONS * float(np.finfo(np.float32).eps) * np.abs(quotient)
    explained = (apart == 1) & tie
    return int(explained.sum()), int(((apart > 0) & ~explained).sum())


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    versions = {"autoq": autoq.__version__, "torch": torch.__version__,
                "aimet_torch": version("aimet-torch"), "onnx": onnx.__version__,
                "python": platform.python_version()}
    try:
        import onnxruntime
    except ImportError:
        return versions
    return {**versions, "onnxruntime": onnxruntime.__version__}


def _plain(value: Any) -> Any:
    """JSON fallback for AIMET's encodings (tensors and numpy scalars)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
