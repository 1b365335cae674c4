"""Measured latency of deployable ONNX models (``autoq latency``).

The bit-op count is a proxy; this module times the models a search returns on a real runtime.
Why it is measured the way it is:

- every model gets its own onnxruntime session with the same options (intra-op threads as
  asked, one inter-op thread, sequential execution, no spinning of idle pool threads so that a
  session waiting its turn does not steal the cores of the one being timed);
- all models are warmed up first (the first runs allocate and pick kernels), then timed in
  *interleaved* rounds, one run of each model per round in a rotating order, so that drift of
  the machine (frequency, other processes, the other engineer's tests) falls on all models
  alike instead of on whichever was timed last;
- the figure is the median of the rounds, its spread the interquartile range: robust to the
  odd preempted run, which a mean is not;
- the reference is the float model at the space's largest scale, exported through the same path
  and timed in the same rounds, so ``speedup = float_median_s / median_s`` compares like with
  like on this machine at this moment.

Runtimes are onnxruntime execution providers: ``onnxruntime-cpu`` (CPU provider),
``onnxruntime-gpu`` (CUDA provider) and ``tensorrt`` (TensorRT provider, through
onnxruntime-gpu). A runtime whose provider this onnxruntime lacks, or which a session does not
actually use, raises :class:`RuntimeUnavailableError` naming the runtime and the reason: no
figure is ever made up or silently measured on another device.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from autoq.errors import AutoqError

if TYPE_CHECKING:
    import onnxruntime
    import optuna

    from autoq.search.spec import SearchSpec
    from autoq.train.solver import ScaledSolver

RUNTIMES: dict[str, str] = {
    "onnxruntime-cpu": "CPUExecutionProvider",
    "onnxruntime-gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
"""Runtime name → the onnxruntime execution provider that runs it."""

_INSTALL = {
    "onnxruntime-gpu": "it needs the onnxruntime-gpu package (CUDA build) and an NVIDIA GPU "
                       "with CUDA",
    "tensorrt": "it needs the onnxruntime-gpu package built with TensorRT, the TensorRT "
                "libraries and an NVIDIA GPU",
}

WARMUP, REPEATS = 5, 30

Key = TypeVar("Key", bound=Hashable)


class RuntimeUnavailableError(AutoqError):
    """The runtime asked for cannot run here (no provider, no GPU); the message says why."""


@dataclass(frozen=True)
class Timing:
    """The timed runs of one model: ``median_s`` and interquartile ``spread_s`` of ``runs``
    runs, in seconds per batch."""

    median_s: float
    spread_s: float
    runs: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        """Median and interquartile range of ``seconds``."""
        if len(seconds) < 2:
            return cls(median_s=seconds[0], spread_s=0.0, runs=len(seconds))
        low, _, high = statistics.quantiles(seconds, n=4, method="inclusive")
        return cls(median_s=statistics.median(seconds), spread_s=high - low, runs=len(seconds))


@dataclass(frozen=True)
class LatencyResult:
    """One model's measured latency against the float reference timed in the same run.

    Attributes:
        runtime: a key of :data:`RUNTIMES`.
        threads: onnxruntime intra-op threads.
        batch: inputs per run (at the data resolution).
        machine: where it ran (:func:`machine_description`).
        median_s: median seconds per batch.
        spread_s: interquartile range of the seconds per batch.
        runs: timed runs.
        float_median_s: the float full-resolution model's median, same run and settings.
        speedup: ``float_median_s / median_s`` (above 1: faster than float).
    """

    runtime: str
    threads: int
    batch: int
    machine: str
    median_s: float
    spread_s: float
    runs: int
    float_median_s: float
    speedup: float

    def to_json(self) -> dict[str, Any]:
        """The stored form (:data:`autoq.search.records.LATENCY_ATTR`)."""
        return asdict(self)


def machine_description() -> str:
    """``<platform>, <CPU model>, <n> logical CPUs``: enough to tell figures of two machines
    apart (the CPU model from ``/proc/cpuinfo`` where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{platform.platform()}, {cpu}, {os.cpu_count()} logical CPUs"


def check_runtime(runtime: str) -> str:
    """The execution provider of ``runtime``, if this onnxruntime has it.

    Raises:
        RuntimeUnavailableError: an unknown runtime, or its provider is not in this
            onnxruntime (e.g. ``onnxruntime-gpu`` with the CPU-only package, or no GPU).
    """
    import onnxruntime

    if runtime not in RUNTIMES:
        raise RuntimeUnavailableError(f"unknown runtime {runtime!r}; known: "
                                      f"{', '.join(RUNTIMES)}")
    provider = RUNTIMES[runtime]
    available = onnxruntime.get_available_providers()
    if provider not in available:
        raise RuntimeUnavailableError(
            f"runtime {runtime!r} is not available here: onnxruntime "
            f"{onnxruntime.__version__} has no {provider} (it has {', '.join(available)}); "
            f"{_INSTALL.get(runtime, '')}")
    return provider


def open_session(path: str | Path, *, runtime: str = "onnxruntime-cpu", threads: int = 1,
                 profile_prefix: Path | None = None, optimised_path: Path | None = None
                 ) -> onnxruntime.InferenceSession:
    """A timing session of the ONNX model at ``path`` (default graph optimisations).

    ``profile_prefix``: profile every node's kernel time (files ``<prefix>_*.json``);
    ``optimised_path``: write the optimised graph the session runs there.

    Raises:
        RuntimeUnavailableError: the runtime's provider is missing, or the session fell back to
            another provider (a GPU provider that found no device).
    """
    import onnxruntime

    provider = check_runtime(runtime)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    if optimised_path is not None:
        options.optimized_model_filepath = str(optimised_path)
        options.log_severity_level = 3  # its warning that NCHWc graphs are machine-specific
    session = onnxruntime.InferenceSession(str(path), sess_options=options,
                                           providers=[provider])
    if provider not in session.get_providers():
        raise RuntimeUnavailableError(f"runtime {runtime!r}: onnxruntime could not start "
                                      f"{provider} for {path} (it runs on "
                                      f"{', '.join(session.get_providers())}); no GPU?")
    return session


def random_inputs(session: onnxruntime.InferenceSession, batch: int, seed: int
                  ) -> dict[str, Any]:
    """Random inputs at the model's fixed shape with ``batch`` for its dynamic first axis."""
    spec = session.get_inputs()[0]
    shape = [batch if not isinstance(d, int) or i == 0 else d for i, d in enumerate(spec.shape)]
    generator = np.random.default_rng(seed)
    return {spec.name: generator.standard_normal(shape).astype(np.float32)}


def time_models(models: Mapping[Key, str | Path], *, runtime: str = "onnxruntime-cpu",
                threads: int = 1, batch: int = 1, warmup: int = WARMUP, repeats: int = REPEATS,
                progress: Callable[[], None] | None = None) -> dict[Key, Timing]:
    """Time every model in ``models`` in the same interleaved rounds (module docstring).

    Args:
        models: key → ONNX file; every model takes ``(batch, …)`` float32 input.
        runtime: a key of :data:`RUNTIMES`.
        threads: intra-op threads of every session.
        batch: inputs per run.
        warmup: untimed runs of each model before timing.
        repeats: timed rounds (one run of each model per round).
        progress: called after each round (a progress bar's ``update``).

    Returns:
        key → its :class:`Timing`.

    Raises:
        RuntimeUnavailableError: the runtime cannot run here.
        ValueError: no models, or ``repeats``/``batch``/``threads`` below 1.
    """
    if not models or min(repeats, batch, threads) < 1:
        raise ValueError("time_models needs models and repeats, batch, threads ≥ 1")
    keys = list(models)
    sessions = {key: open_session(models[key], runtime=runtime, threads=threads)
                for key in keys}
    feeds = {key: random_inputs(session, batch, seed=i) for i, (key, session)
             in enumerate(sessions.items())}
    for _ in range(warmup):
        for key in keys:
            sessions[key].run(None, feeds[key])
    seconds: dict[Key, list[float]] = {key: [] for key in keys}
    for round_ in range(repeats):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            start = time.perf_counter()
            sessions[key].run(None, feeds[key])
            seconds[key].append(time.perf_counter() - start)
        if progress is not None:
            progress()
    return {key: Timing.of(values) for key, values in seconds.items()}


def measure_latency(models: Mapping[Key, str | Path], reference: str | Path, *,
                    runtime: str = "onnxruntime-cpu", threads: int = 1, batch: int = 1,
                    warmup: int = WARMUP, repeats: int = REPEATS,
                    progress: Callable[[], None] | None = None
                    ) -> tuple[dict[Key, LatencyResult], Timing]:
    """The latency of each model in ``models`` and of the float ``reference``, timed together
    in the same interleaved rounds (:func:`time_models`).

    Returns:
        ``(key → LatencyResult, the reference's Timing)``.
    """
    paths: dict[Key | None, str | Path] = {None: reference}
    paths.update(models.items())
    timings = time_models(paths, runtime=runtime, threads=threads, batch=batch, warmup=warmup,
                          repeats=repeats, progress=progress)
    float_timing = timings.pop(None)
    machine = machine_description()
    results = {key: LatencyResult(
        runtime=runtime, threads=threads, batch=batch, machine=machine,
        median_s=timing.median_s, spread_s=timing.spread_s, runs=timing.runs,
        float_median_s=float_timing.median_s,
        speedup=float_timing.median_s / timing.median_s)
        for key, timing in timings.items() if key is not None}
    return results, float_timing


def export_solver(solver: ScaledSolver, path: str | Path) -> Path:
    """A :class:`~autoq.train.ScaledSolver` (float, or holding calibrated quantizers) as a
    raw-to-raw ONNX graph, through the trials' own exporter, with no export check: for timing.
    """
    import torch

    from autoq.deploy.export import INPUT_NAME, OUTPUT_NAME
    from autoq.deploy.qdq import export_qdq_onnx

    device = next(solver.parameters()).device
    dummy = torch.zeros(1, int(solver.in_mean.numel()), *solver.data_shape, device=device)
    export_qdq_onnx(solver, dummy, path, input_name=INPUT_NAME, output_name=OUTPUT_NAME)
    return Path(path)


def export_float_models(spec: SearchSpec, folder: str | Path, scales: Iterable[float]
                        ) -> dict[float, Path]:
    """The float models at ``scales`` (at the space's largest rank) as raw-to-raw ONNX graphs
    ``<folder>/float-<scale>.onnx``, through the trials' own exporter: the same
    :class:`~autoq.train.ScaledSolver` with normalisation and resizing, no quantizer. A float
    trial is one of them; the one at the largest scale is the reference of every ratio.

    The float models come from the float-model cache (trained now if they are not there); the
    data are read once for all of them."""
    from autoq.search.trial import TrialRunner

    runner = TrialRunner(spec)
    return {scale: export_solver(runner.float_model(scale, runner.space.ranks[0]).solver,
                                 Path(folder) / f"float-{scale:g}.onnx")
            for scale in sorted(set(scales), reverse=True)}


def export_float_reference(spec: SearchSpec, path: str | Path) -> Path:
    """The float model at the space's largest scale (the yardstick of the search's relative
    bounds), as a raw-to-raw ONNX graph at ``path`` (:func:`export_float_models`)."""
    scale = max(spec.space.scales)
    return export_float_models(spec, Path(path).parent, [scale])[scale].replace(path)


def store_trial_attr(study: optuna.Study, trial_id: int, key: str, value: Any) -> None:
    """Set user attribute ``key`` of a trial that may be finished already.

    Optuna refuses to update a finished trial (``UpdateFinishedTrialError``), but a latency is
    measured after the trial completed. This writes the attribute row through the RDB storage's
    own models, in one transaction; readers that load the study afterwards see it.

    Raises:
        SpecError: the study is not in an RDB (SQL) storage.
    """
    import json

    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    from autoq.errors import SpecError

    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage):
        raise SpecError(f"search {study.study_name!r} is not in an SQL storage: measured "
                        f"latencies can be stored on trials of an RDB storage only")
    with _create_scoped_session(backend.scoped_session, True) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        row = models.TrialUserAttributeModel.find_by_trial_and_key(trial, key, session)
        if row is None:
            session.add(models.TrialUserAttributeModel(trial_id=trial_id, key=key,
                                                       value_json=json.dumps(value)))
        else:
            row.value_json = json.dumps(value)
