"""One search trial: sample a configuration, QAT-fine-tune the cached float model, score it.

The paper's pipeline (sections 3.3–4.1) per trial: the float model for the trial's scale comes
from the cache (trained on first use) → AIMET simulation with the trial's per-layer bitwidths →
encodings calibrated on 20% of the training windows → QAT (Adam, cosine with warm-up, smaller
learning rate, no weight decay) → one-step validation MSE at the data resolution, and the bit-op
cost of the configuration at the scale it runs.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from autoq.bits import FLOAT_EQUIVALENT_BITS, Bits, Rank
from autoq.cost import CostReport
from autoq.deploy.export import ONNX_MODEL, DeploymentInfo, export_deployable
from autoq.deploy.latency import LatencyResult, export_solver, measure_latency
from autoq.deploy.runtime import OnnxSolver
from autoq.errors import QuantizationError, TrialError
from autoq.precision import TrialConfig
from autoq.quant import QuantizedNetwork, build_sim, calibrate, export_artifact
from autoq.search.records import FULL_FIDELITY, SCREENED
from autoq.search.setup import load_spec_problem
from autoq.search.space import SearchSpace
from autoq.search.spec import SearchSpec
from autoq.train import (
    FloatModel,
    FloatModelCache,
    Problem,
    ScaledSolver,
    TrainingRun,
    evaluate_rollout,
)
from autoq.train.metrics import Metric, named_metric

DEPLOY_DIR = "deploy"
"""The deployable model's folder inside a trial's artifact folder."""

Promotion = Callable[[float, float], bool]
"""A multi-fidelity trial's decision at its screening step: ``(screened error, exact cost) →``
whether its QAT goes on to full length."""


@dataclass(frozen=True)
class TrialResult:
    """What one trial measured.

    Attributes:
        mse: the QAT model's validation error in the search's metric (one-step MSE by default),
            at the data resolution.
        cost: the configuration's bit-op cost report.
        float_mse: the same error of the float model it started from (its scale and rank).
        float_reference: the same error of the float model at the space's largest scale and
            rank.
        rollout_mse: MSE of autoregressive rollouts over the validation trajectories (the
            whole trajectory from its first window; ``None`` for steady problems).
        timings: seconds spent in ``float`` (training or loading the float models the trial
            needs, its own and the full-resolution reference, and scoring them), ``calibration``,
            ``qat``, ``evaluation`` and ``export``.
        artifact: directory of the exported quantized network, if exported.
        deployable: directory of the deployable ONNX model (raw input to raw output), if
            exported (not for networks with no ONNX form, such as neuraloperator's).
        deployed_error: the deployable model's error on the validation set, run by
            onnxruntime (one-step metrics only).
        deploy_error: why the deployable model was not written (its export check failed).
        latency: the deployable model's measured latency against the float full-resolution
            model (searches whose cost objective is latency).
        qat_steps: the QAT optimiser steps run.
        fidelity: in a multi-fidelity search, ``full`` (QAT to full length) or ``screened``
            (stopped at the screening step: ``mse`` is the screened error); else ``None``.
        screened_mse: in a multi-fidelity search, the error at the screening step.
        warm_start: the trial whose QAT-trained weights this one started from, if any.
    """

    mse: float
    cost: CostReport
    float_mse: float
    float_reference: float
    rollout_mse: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    artifact: Path | None = None
    deployable: Path | None = None
    deployed_error: float | None = None
    deploy_error: str | None = None
    latency: LatencyResult | None = None
    qat_steps: int = 0
    fidelity: str | None = None
    screened_mse: float | None = None
    warm_start: int | None = None

    @property
    def objective_cost(self) -> float:
        """The trial's second objective value: its latency relative to the float model when it
        was timed, else its bit-op cost."""
        if self.latency is not None:
            return self.latency.median_s / self.latency.float_median_s
        return self.cost.total


@dataclass(frozen=True)
class _Deployment:
    """What a trial exported: its artifact folder, its deployable folder and the deployed
    model's error, or why there is no deployable model; and the ONNX graph written, which
    exists also when its check failed (a latency does not depend on the last digits)."""

    artifact: Path | None = None
    deployable: Path | None = None
    deployed_error: float | None = None
    deploy_error: str | None = None
    graph: Path | None = None


def bits_distance(first: Mapping[str, Bits], second: Mapping[str, Bits]) -> float:
    """How far apart two configurations' precisions are: the sum over their layers of
    ``|log2 w − log2 w'| + |log2 a − log2 a'|``, a float layer counted as
    :data:`~autoq.bits.FLOAT_EQUIVALENT_BITS` bits for both. Both must name the same layers."""
    if set(first) != set(second):
        raise ValueError(f"configurations of different layers: {sorted(set(first) ^ set(second))}")

    def logs(bits: Bits) -> tuple[float, float]:
        weight, act = (FLOAT_EQUIVALENT_BITS, FLOAT_EQUIVALENT_BITS) if bits is None else bits
        return math.log2(weight), math.log2(act)

    total = 0.0
    for layer, bits in first.items():
        (w, a), (w2, a2) = logs(bits), logs(second[layer])
        total += abs(w - w2) + abs(a - a2)
    return total


class WarmStarts:
    """The QAT-trained network weights of recent trials, and the nearest one to start from.

    Args:
        keep: how many trials' weights to hold; the oldest goes first.
    """

    def __init__(self, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"keep must be ≥ 1, got {keep}")
        self.keep = keep
        self._held: OrderedDict[tuple[str, int], tuple[TrialConfig, dict[str, torch.Tensor]]] = (
            OrderedDict())

    def __len__(self) -> int:
        return len(self._held)

    def add(self, search: str, number: int, config: TrialConfig,
            weights: Mapping[str, torch.Tensor]) -> None:
        """Hold trial ``number`` of ``search``: its configuration and weights (copied)."""
        self._held[search, number] = (config, {k: v.detach().clone() for k, v in weights.items()})
        self._held.move_to_end((search, number))
        while len(self._held) > self.keep:
            self._held.popitem(last=False)

    def nearest(self, search: str, config: TrialConfig
                ) -> tuple[int, dict[str, torch.Tensor]] | None:
        """The held trial of ``search`` at ``config``'s scale, rank and scheme whose bits are
        nearest (:func:`bits_distance`; ties: the latest trial), as ``(number, weights)``;
        ``None`` when none is held there."""
        candidates = [(bits_distance(held.bits, config.bits), -number, number)
                      for (held_search, number), (held, _) in self._held.items()
                      if (held_search, held.scale, held.rank, held.scheme)
                      == (search, config.scale, config.rank, config.scheme)]
        if not candidates:
            return None
        number = min(candidates)[2]
        return number, self._held[search, number][1]


class TrialRunner:
    """Runs trials of one search spec; holds the data and float models across trials.

    Args:
        spec: the validated search spec.
        cache: where float models are kept (trained once per scale).
        artifact_dir: where each trial's quantized network is exported (``None``: not kept).
        progress: show progress bars for data generation and float training.
        problem: the data already loaded (the Python API's in-memory datasets); default: read
            the spec's data.
        metric: the error to score trials by; default: the spec's named metric.
        space: the search space, if already built.
    """

    def __init__(
        self,
        spec: SearchSpec,
        *,
        cache: FloatModelCache | None = None,
        artifact_dir: Path | None = None,
        progress: bool = False,
        problem: Problem | None = None,
        metric: Metric | None = None,
        space: SearchSpace | None = None,
    ) -> None:
        self.spec = spec
        self.cache = cache or FloatModelCache()
        self.artifact_dir = artifact_dir
        self.progress = progress
        self.problem = problem or load_spec_problem(spec, progress=progress)
        self.metric = metric or named_metric(spec.metric)
        self.space = space or SearchSpace(spec)
        self._float_models: dict[tuple[float, Rank | None], FloatModel] = {}
        self._float_errors: dict[tuple[float, Rank | None], float] = {}
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        warm_start = spec.search.warm_start
        self.warm_starts = None if warm_start is None else WarmStarts(warm_start.keep)

    def float_model(self, scale: float, rank: Rank | None = None) -> FloatModel:
        """The float model at ``scale`` (and factorization ``rank``), from memory, the disk
        cache, or trained now."""
        if (scale, rank) not in self._float_models:
            title = f"float model, scale {scale:g}" + ("" if rank is None else f", rank {rank}")
            self._float_models[scale, rank] = self.cache.get(
                self.problem, self.space.model_config(rank), self.spec.train, scale=scale,
                seed=self.spec.search.float_seed, description=title if self.progress else None,
                resample=self.spec.space.resample)
        return self._float_models[scale, rank]

    def float_error(self, scale: float, rank: Rank | None = None) -> float:
        """The float model's error at ``scale`` (and ``rank``) in the search's metric."""
        if (scale, rank) not in self._float_errors:
            self._float_errors[scale, rank] = self.metric(self.float_model(scale, rank).solver,
                                                          self.problem)
        return self._float_errors[scale, rank]

    @property
    def float_reference(self) -> float:
        """The yardstick of relative bounds: the float model's error at the space's largest
        scale and rank."""
        return self.float_error(max(self.spec.space.scales), self.space.ranks[0])

    def run(self, config: TrialConfig, *, seed: int = 0, artifact_name: str | None = None,
            trial_number: int | None = None, search: str | None = None,
            promote: Promotion | None = None) -> TrialResult:
        """Fine-tune and score ``config``; raises on a NaN loss (TrialError) or any failure.

        With an ``artifact_dir`` and an ``artifact_name``, the quantized network is kept there
        and, when it has an ONNX form, its deployable model beside it (``deploy/``), scored
        by onnxruntime.

        Under ``search.fidelity`` the QAT stops at its screening step, is scored there, and
        goes on to full length when ``promote(screened error, cost)`` says so (always when
        ``promote`` is ``None``: a baseline); a screened trial exports nothing. Under
        ``search.warm_start`` a trial of ``search`` (the study's name) numbered
        ``trial_number`` starts from the nearest held trial's weights, and leaves its own
        once trained to full length."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        float_model = self.float_model(config.scale, config.rank)
        float_mse = self.float_error(config.scale, config.rank)
        # The full-resolution model too: a trial at a lower scale may be the first to need it.
        float_reference = self.float_reference
        timings["float"] = time.perf_counter() - started

        solver = copy.deepcopy(float_model.solver)
        cost = self.space.cost(config)
        fidelity = None if self.spec.search.fidelity is None else FULL_FIDELITY
        screened_mse = warm_start = None
        qat_steps = 0
        timings["evaluation"] = 0.0
        started = time.perf_counter()
        if config.quantized_layers:
            warm_start = self._warm_start(solver, config, search)
            qnet = self.calibrated_sim(solver, config, seed=seed)
            timings["calibration"] = time.perf_counter() - started
            training = TrainingRun(solver, self.problem.train_windows,
                                   self.spec.qat.as_train_config(), seed=seed)
            screening = self._screening_steps(training.total_steps)
            if screening is not None:
                training.advance(screening)
                evaluated = time.perf_counter()
                screened_mse = self.metric(solver, self.problem)
                timings["evaluation"] += time.perf_counter() - evaluated
                if promote is not None and not promote(screened_mse, cost.total):
                    fidelity = SCREENED
            if fidelity != SCREENED and self.spec.qat.epochs > 0:
                training.advance()
            qat_steps = training.steps_done
            timings["qat"] = training.seconds
        else:
            qnet = None
            timings["calibration"] = timings["qat"] = 0.0
        started = time.perf_counter()
        mse = self.metric(solver, self.problem) if screened_mse is None or fidelity != SCREENED \
            else screened_mse
        rollout_mse = None if self.problem.data.steady else evaluate_rollout(
            solver, self.problem.data, self.problem.split.val)
        timings["evaluation"] += time.perf_counter() - started
        if (self.warm_starts is not None and qnet is not None and fidelity != SCREENED
                and search is not None and trial_number is not None):
            self.warm_starts.add(search, trial_number, config,
                                 _network_weights(solver.network, float_model.solver.network))
        started = time.perf_counter()
        timed = self.spec.search.cost_objective == "latency"
        keep = (self.artifact_dir is not None and artifact_name is not None
                and fidelity != SCREENED)
        with tempfile.TemporaryDirectory(prefix="autoq-trial-") as scratch:
            folder = (self.artifact_dir / artifact_name if self.artifact_dir is not None
                      and artifact_name is not None else Path(scratch))
            deployment = _Deployment()
            if qnet is not None and (keep or timed):
                deployment = self._deploy(solver, qnet, config, folder, mse=mse, cost=cost,
                                          trial_number=trial_number, score=keep)
            timings["export"] = time.perf_counter() - started
            latency = None
            if timed:
                started = time.perf_counter()
                latency = self._time(solver, config, deployment, folder)
                timings["latency"] = time.perf_counter() - started
        if not keep:  # exported only to be timed, into the scratch folder now gone
            deployment = _Deployment()
        return TrialResult(mse=mse, cost=cost,
                           float_mse=float_mse, float_reference=float_reference,
                           rollout_mse=rollout_mse, timings=timings,
                           artifact=deployment.artifact, deployable=deployment.deployable,
                           deployed_error=deployment.deployed_error,
                           deploy_error=deployment.deploy_error, latency=latency,
                           qat_steps=qat_steps, fidelity=fidelity, screened_mse=screened_mse,
                           warm_start=warm_start)

    def _screening_steps(self, total_steps: int) -> int | None:
        """The optimiser step a multi-fidelity trial is screened at, ``None`` without
        ``search.fidelity`` or when the screening would be the whole QAT."""
        fidelity = self.spec.search.fidelity
        if fidelity is None:
            return None
        steps = math.ceil(fidelity.screening * total_steps)
        return steps if steps < total_steps else None

    def _warm_start(self, solver: ScaledSolver, config: TrialConfig, search: str | None
                    ) -> int | None:
        """Under ``search.warm_start``, load the nearest held trial's weights into
        ``solver.network``; the number of that trial, or ``None`` (none held, or no search)."""
        if self.warm_starts is None or search is None:
            return None
        nearest = self.warm_starts.nearest(search, config)
        if nearest is None:
            return None
        number, weights = nearest
        solver.network.load_state_dict(weights)
        return number

    def _deploy(self, solver: ScaledSolver, qnet: QuantizedNetwork, config: TrialConfig,
                folder: Path, *, mse: float, cost: CostReport, trial_number: int | None,
                score: bool) -> _Deployment:
        """Export the trial's quantized network to ``folder`` and, when it has an ONNX form,
        its deployable model beside it (``deploy/``), scored by onnxruntime when ``score``
        (not for an export made only to be timed and then dropped)."""
        model_config = self.space.model_config(config.rank)
        artifact = export_artifact(
            qnet, folder, model_config=model_config, onnx=False,
            metadata={"search": self.spec.name, "val_mse": mse, "cost": cost.total,
                      "scale": config.scale, "rank": config.rank,
                      "data_shape": list(self.space.geometry.data_shape)})
        info = DeploymentInfo(
            search=self.spec.name, trial=trial_number, metric=self.spec.metric,
            error=mse, float_error=self.float_error(config.scale, config.rank),
            float_reference=self.float_reference, cost=cost.total)
        windows = self.problem.val_windows
        check = windows.batch(torch.arange(min(8, len(windows))))[0]
        try:
            deployable = export_deployable(solver, qnet, artifact / DEPLOY_DIR, info=info,
                                           model_config=model_config, check_inputs=check)
        except QuantizationError as e:
            # The trial's measurement stands; only its deployable model is missing (a layer
            # with no ONNX form, such as neuraloperator's spectral convolution, or a failed
            # check): the reason is recorded.
            written = artifact / DEPLOY_DIR / ONNX_MODEL
            return _Deployment(artifact=artifact, deploy_error=str(e),
                               graph=written if written.is_file() else None)
        deployed_error = None
        if score and self.spec.metric != "rollout_mse":  # the ONNX model steps once only
            deployed_error = self.metric(OnnxSolver(deployable), self.problem)
        return _Deployment(artifact=artifact, deployable=deployable,
                           deployed_error=deployed_error, graph=deployable / ONNX_MODEL)

    def _time(self, solver: ScaledSolver, config: TrialConfig, deployment: _Deployment,
              folder: Path) -> LatencyResult:
        """The latency of the trial's exported graph (of its float solver, for a float
        configuration) against the float full-resolution model, timed in the same rounds. A
        graph whose export check failed is timed too: the check is about the last digits of
        its output, not its speed; the trial records why it is not deployable."""
        if not config.quantized_layers:
            model = export_solver(solver, folder / "float.onnx")
        elif deployment.graph is not None:
            model = deployment.graph
        else:
            raise TrialError(f"the latency objective times a trial's exported model, and this "
                             f"network has no ONNX form: {deployment.deploy_error}")
        settings = self.spec.search.latency
        results, _ = measure_latency({"trial": model}, self.reference_model(),
                                     runtime=settings.runtime, threads=settings.threads,
                                     batch=settings.batch, warmup=settings.warmup,
                                     repeats=settings.repeats)
        return results["trial"]

    def reference_model(self) -> Path:
        """The float model at the space's largest scale and rank as a raw-to-raw ONNX file
        (exported on first use into a folder that lives as long as the runner): the
        reference every trial's latency is timed against."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="autoq-reference-")
        path = Path(self._scratch.name) / "float-reference.onnx"
        if not path.is_file():
            reference = self.float_model(max(self.spec.space.scales), self.space.ranks[0])
            export_solver(reference.solver, path)
        return path

    def calibrated_sim(self, solver: ScaledSolver, config: TrialConfig, *, seed: int
                  ) -> QuantizedNetwork:
        """Swap ``solver.network`` for its AIMET simulation of ``config``, calibrated as every
        trial is (``compute_encodings`` on ``qat.calibration_fraction`` of the training windows,
        drawn with ``seed``); returns the sim."""
        windows = self.problem.train_windows
        device = next(solver.parameters()).device
        dummy = torch.zeros(1, windows.in_channels, *solver.net_shape, device=device)
        qnet = build_sim(solver.network, config, dummy_input=dummy)
        generator = torch.Generator().manual_seed(seed)
        count = max(1, math.ceil(self.spec.qat.calibration_fraction * len(windows)))
        chosen = torch.randperm(len(windows), generator=generator)[:count]

        def network_inputs() -> Iterator[torch.Tensor]:
            with torch.no_grad():
                for batch in chosen.split(self.spec.qat.batch_size):
                    inputs = windows.batch(batch)[0].to(device)
                    yield solver.normalise(solver.to_network(inputs))

        calibrate(qnet, network_inputs())
        solver.network = qnet.model
        return qnet


def _network_weights(trained: torch.nn.Module, plain: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The float network's state (``plain``'s keys) as ``trained`` (its quantization sim after
    QAT) holds it: the weights a warm-started trial loads before quantizing afresh. AIMET's
    quantized layers keep their float module's parameter names; their quantizers are left out
    (a warm start calibrates its own encodings)."""
    state = trained.state_dict()
    missing = sorted(set(plain.state_dict()) - set(state))
    if missing:
        raise TrialError(f"search.warm_start: the trained network has no {missing[0]!r} (of "
                         f"{len(missing)} float weights); it cannot be a warm start")
    return {name: state[name] for name in plain.state_dict()}
