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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import torch

import autoq
from autoq.deploy.qdq import OPSET, export_qdq_onnx, quantizers
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
"""Relative L2 difference between onnxruntime's output (graph optimisations disabled: the graph
as written) and torch's that :func:`export_deployable` accepts on its check inputs whatever the
network; more is accepted as far as torch's own rounding spread explains it (``_check``)."""
ROUNDING_NOISE = 1e-6
"""Relative noise put on every activation quantizer's input to measure the rounding spread: a
few float32 ulps, the size of the differences between two correct implementations."""
ROUNDING_PROBES = 3
SPREAD_FACTOR = 3.0
"""onnxruntime may differ from torch by this multiple of torch's largest rounding spread."""


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
            runs the written graph on them with its graph optimisations disabled and its output
            must match the torch solver's within :data:`TOLERANCE` (relative L2); it runs them
            again with its default optimisations, and both differences (and the integer
            kernels of the optimised graph) are kept in the manifest's ``check``.

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
                                                         check_inputs)
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


def _session(path: Path, *, optimised: bool, save: Path | None = None
             ) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = (onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                                        if optimised else
                                        onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if save is not None:
        options.optimized_model_filepath = str(save)
        options.log_severity_level = 3  # its NCHWc warning: this copy is only counted
    return onnxruntime.InferenceSession(str(path), sess_options=options,
                                        providers=["CPUExecutionProvider"])


def _difference(got: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    norm = float(np.linalg.norm(expected))
    return {"relative_difference": float(np.linalg.norm(got - expected)) / max(norm, 1e-30),
            "max_abs_difference": float(np.abs(got - expected).max())}


def _check(solver: ScaledSolver, path: Path, inputs: torch.Tensor) -> dict[str, Any]:
    """Check the written graph against the torch solver on ``inputs``, and measure what
    onnxruntime's own optimisations change.

    The graph is checked with onnxruntime's graph optimisations *disabled*: that runs the nodes
    as written, which compute the simulation's values up to rounding ties. Ties are not rare:
    wherever two correct implementations differ in the last bits (a convolution's summation
    order, onnxruntime's instance normalisation against torch's group norm), a value next to a
    rounding boundary lands on the other grid step, and a norm after it spreads that step over
    the whole feature map; after QAT, 0.1–0.5% of a quantized UNet's output moves this way.
    So the check measures it: torch runs the inputs again with every activation quantizer's
    input moved by :data:`ROUNDING_NOISE` (its *rounding spread*), and onnxruntime may differ
    by :data:`TOLERANCE` or :data:`SPREAD_FACTOR` times that spread, whichever is larger. An
    export bug (a wrong scale, zero point, container or operator) moves the output by more
    than rounding does. With its default optimisations onnxruntime rewrites the integer
    scheme's graph into integer kernels that round in their own way (it quantizes the float
    bias to int32 at ``s_in·s_w``, transformer ``WeightBiasQuantization``, and QLinearConv
    requantizes its int32 accumulator); that difference is the runtime's, measured and kept,
    not refused.
    """
    import tempfile

    device = next(solver.parameters()).device
    with torch.no_grad():
        expected = solver(inputs.to(device)).cpu().numpy()
    feed = {INPUT_NAME: inputs.cpu().numpy().astype(np.float32)}
    got, = _session(path, optimised=False).run(None, feed)
    exact = _difference(got, expected)
    spread = 0.0
    if exact["relative_difference"] > TOLERANCE:
        spread = rounding_spread(solver, inputs.to(device), expected)
    allowed = max(TOLERANCE, SPREAD_FACTOR * spread)
    if not exact["relative_difference"] <= allowed:
        raise QuantizationError(f"onnxruntime's output of {path} (graph optimisations "
                                f"disabled) differs from the torch solver's by "
                                f"{exact['relative_difference']:.3g} (relative L2; at most "
                                f"{allowed:.3g} allowed: {TOLERANCE:g}, or {SPREAD_FACTOR:g}× "
                                f"torch's own rounding spread {spread:.3g})")
    with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
        # "Serializing optimized model with ... NchwcTransformer": kept for counting only.
        warnings.simplefilter("ignore")
        optimised_path = Path(scratch) / "optimised.onnx"
        got, = _session(path, optimised=True, save=optimised_path).run(None, feed)
        ops = Counter(node.op_type for node in onnx.load(str(optimised_path)).graph.node)
    return {"inputs": len(inputs), "optimisations": "disabled", **exact,
            "rounding_spread": spread, "allowed_difference": allowed,
            "runtime": {"optimisations": "onnxruntime default (ORT_ENABLE_ALL)",
                        **_difference(got, expected),
                        "integer_kernels": {op: ops[op] for op in INTEGER_KERNELS if ops[op]}}}


def rounding_spread(module: torch.nn.Module, inputs: torch.Tensor, expected: np.ndarray
                    ) -> float:
    """How far rounding alone moves a quantized module's output: the largest relative L2
    change from ``expected`` (its output on ``inputs``) over :data:`ROUNDING_PROBES` runs with
    every activation quantizer's input moved by :data:`ROUNDING_NOISE` (relative)."""
    generator = torch.Generator(device=inputs.device).manual_seed(0)

    def jitter(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x, *rest = args
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x * (1 + ROUNDING_NOISE * noise), *rest)

    hooks = [quantizer.register_forward_pre_hook(jitter)
             for name, quantizer in quantizers(module) if "/weight:" not in name]
    try:
        with torch.no_grad():
            runs = [module(inputs).as_subclass(torch.Tensor).cpu().numpy()
                    for _ in range(ROUNDING_PROBES)]
    finally:
        for hook in hooks:
            hook.remove()
    return max(_difference(run, expected)["relative_difference"] for run in runs)


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
