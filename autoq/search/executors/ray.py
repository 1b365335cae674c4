"""The Ray Tune executor: a search's trials run in parallel, on one machine or a Ray cluster.

Each Ray Tune trial is a worker that opens the search's Optuna study in the shared storage and runs
exactly one Optuna trial through :func:`autoq.search.objective.run_trials`, the path the local
executor takes, so both record the same things (values, per-layer bits, cost breakdown, timings,
constraints, errors) and heartbeats fail and requeue the trials of dead workers. Ray's own
``OptunaSearch`` is not used: it cannot record our user attributes or constraints and runs no
heartbeats. The Optuna study is the search's only record; Tune's results are a by-product.

Every worker must reach the storage: PostgreSQL for a cluster or many workers. An SQLite file
serves a few workers on one machine (Optuna retries a write while another holds the file's lock).
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import ray
import torch
from ray import tune
from sqlalchemy.engine import make_url

from autoq.errors import SpecError, TrialError
from autoq.search.executors import ExecutorOptions, StudyCallback
from autoq.search.executors.plan import SearchRun, open_search_study
from autoq.search.objective import run_trials
from autoq.search.setup import ensure_data
from autoq.search.space import SearchSpace
from autoq.search.spec import SearchSpec, parse_spec
from autoq.search.storage import open_storage
from autoq.search.trial import TrialRunner
from autoq.settings import get_settings
from autoq.train import FloatModelCache


@dataclass(frozen=True)
class _WorkerJob:
    """Everything a worker needs, as plain data: workers run in other processes and machines.

    Paths are absolute because Tune runs each trial in its own working directory.
    """

    spec: dict[str, Any]
    study_name: str
    storage: str
    heartbeat: int
    data_path: str
    cache_dir: str
    artifact_dir: str | None
    threads: int
    optuna_verbosity: int


class RayExecutor:
    """Runs a search's trials as parallel Ray Tune trials until its budget is spent.

    Args:
        options: ``ray_address``, a Ray cluster to join (``ray.init(address=...)``); default: a
            Ray session already open in this process, else a local instance on this machine's
            cores.

    Each trial reserves ``spec.search.resources`` (a worker runs torch on that many CPU threads)
    and at most ``spec.search.max_concurrent`` run at once (default: as many as the resources
    allow). Every worker must reach the storage: PostgreSQL for a cluster; a relative SQLite
    path is made absolute. On a cluster, the data file, the float-model cache and the artifact
    folder must have the same paths on every node (a shared file system); the driver generates
    missing data first. ``callbacks`` run in this process as each worker's trial reports (they
    cannot call ``study.stop``); ``should_stop`` stops the whole run, trials in flight included
    (their Optuna trials go stale and are retried when the search resumes).
    """

    def __init__(self, options: ExecutorOptions | None = None) -> None:
        self.address = (options or ExecutorOptions()).ray_address

    def run(
        self,
        run: SearchRun,
        *,
        artifact_dir: Path | None,
        callbacks: list[StudyCallback],
        should_stop: Callable[[], bool] | None,
    ) -> None:
        spec, study = run.spec, run.study
        url = _shared_storage_url(run.storage.url)
        resources = spec.search.resources.model_dump()
        settings = get_settings()
        job = _WorkerJob(
            spec=spec.model_dump(mode="json"),
            study_name=study.study_name,
            storage=url,
            heartbeat=settings.trial_heartbeat_seconds,
            # Generated here, once, rather than raced by the first workers.
            data_path=str(ensure_data(spec).resolve()),
            cache_dir=str(settings.cache_dir.resolve()),
            artifact_dir=None if artifact_dir is None else str(Path(artifact_dir).resolve()),
            threads=max(1, int(resources["cpu"])),
            optuna_verbosity=optuna.logging.get_verbosity(),
        )
        connected = _connect(self.address, cpu_per_trial=resources["cpu"])
        try:
            with tempfile.TemporaryDirectory(prefix="autoq-ray-") as scratch:
                tune_dir = Path(job.artifact_dir) / "ray" if job.artifact_dir else Path(scratch)
                tuner = tune.Tuner(
                    tune.with_resources(tune.with_parameters(_trial_worker, job=job),
                                        resources),
                    tune_config=tune.TuneConfig(
                        num_samples=run.remaining,
                        max_concurrent_trials=spec.search.max_concurrent,
                        time_budget_s=spec.search.timeout,
                    ),
                    run_config=tune.RunConfig(
                        name=re.sub(r"[^A-Za-z0-9_.-]", "_", study.study_name),
                        storage_path=str(tune_dir),
                        verbose=0,
                        stop=_StopWhen(should_stop) if should_stop is not None else None,
                        callbacks=[_StudyCallbacks(study, callbacks)] if callbacks else None,
                        # A worker lost with its node runs again; its Optuna trial went stale.
                        failure_config=tune.FailureConfig(max_failures=1),
                    ),
                )
                results = tuner.fit()
        finally:
            if connected:
                ray.shutdown()
        stopped = should_stop is not None and should_stop()
        if results.errors and run.remaining > 0 and not stopped:
            raise TrialError(f"{len(results.errors)} Ray trial(s) of search "
                             f"{study.study_name!r} failed outside the objective: "
                             f"{results.errors[0]}") from results.errors[0]


def _shared_storage_url(url: str) -> str:
    """``url`` as every worker can open it: a relative SQLite path made absolute (Tune runs
    trials in other working directories); in-memory SQLite, private to a process, refused."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        raise SpecError(f"storage {url!r}: the ray executor's workers need a database file or "
                        f"server, not in-memory SQLite")
    absolute = parsed.set(database=str(Path(database).resolve()))
    return absolute.render_as_string(hide_password=False)


def _connect(address: str | None, *, cpu_per_trial: float) -> bool:
    """Join ``address``, or start a local instance; True when this call connected (and the
    caller disconnects: a joined cluster keeps running, a local instance stops)."""
    if ray.is_initialized():
        return False
    # Workers' logs stay in Ray's session directory (``/tmp/ray/session_latest/logs``): a
    # trial's outcome, error included, is in the study, and a lost worker is a Tune error.
    if address is not None:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        return True
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cpu_per_trial > (cores or 1):
        raise SpecError(f"search.resources: cpu {cpu_per_trial} is more than this machine's "
                        f"{cores} cores; no trial could start")
    ray.init(num_cpus=cores, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    return True


def _open_worker_study(job: _WorkerJob) -> tuple[optuna.Study, SearchSpec]:
    """The search's study as a worker opens it, with its sampler reseeded, and the spec with the
    data where the driver made it (the study knows the spec as written)."""
    spec = parse_spec(job.spec, source=f"search {job.study_name!r}")
    local_spec = spec.model_copy(
        update={"data": spec.data.model_copy(update={"path": job.data_path})})
    study, _ = open_search_study(spec, name=job.study_name,
                                 storage=open_storage(job.storage, heartbeat=job.heartbeat),
                                 space=SearchSpace(local_spec))
    # Workers that start together find the same number of stored trials and so the same seed;
    # Optuna reseeds its samplers for parallel jobs in one process for the same reason.
    study.sampler.reseed_rng()
    return study, local_spec


def _trial_worker(config: dict[str, Any], job: _WorkerJob) -> None:
    """One Tune trial: one Optuna trial of the search, then its values reported to Tune."""
    torch.set_num_threads(job.threads)
    optuna.logging.set_verbosity(job.optuna_verbosity)
    study, local_spec = _open_worker_study(job)
    runner = TrialRunner(local_spec, cache=FloatModelCache(job.cache_dir),
                         artifact_dir=None if job.artifact_dir is None else Path(job.artifact_dir))
    done: list[optuna.trial.FrozenTrial] = []
    run_trials(study, runner, n_trials=1, callbacks=[lambda _, trial: done.append(trial)])
    trial = done[0]
    mse, cost = trial.values if trial.values is not None else (math.nan, math.nan)
    tune.report({"mse": mse, "cost": cost, "optuna_trial": trial.number,
                 "state": trial.state.name})


class _StopWhen(tune.Stopper):
    """Ends the whole Tune run when ``should_stop()`` says so (e.g. a cancelled search)."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self._should_stop = should_stop

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._should_stop()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config for ``Tuner.restore``, which a search never uses (it
        # resumes from its study); the poll (often a closure over an Event) stays here.
        return {"_should_stop": _never}


def _never() -> bool:
    return False


class _StudyCallbacks(tune.Callback):
    """Calls Optuna-style callbacks in the driver as each worker's trial reports."""

    def __init__(self, study: optuna.Study, callbacks: list[StudyCallback]) -> None:
        self._study = study
        self._callbacks = callbacks

    def __getstate__(self) -> dict[str, Any]:
        # As for _StopWhen: the pickled copy is never run; the callbacks stay in this process.
        return {"_study": None, "_callbacks": []}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if not self._callbacks:
            return
        number = result["optuna_trial"]
        frozen = next(t for t in self._study.get_trials(deepcopy=False) if t.number == number)
        for callback in self._callbacks:
            callback(self._study, frozen)
