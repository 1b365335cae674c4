"""Searches as Optuna studies in a SQL database: create or resume, sample, run, record.

A search is a two-objective Optuna study (minimise validation MSE, minimise bit-op cost) named
after the search, in Optuna's RDB storage on any SQLAlchemy URL. Its spec lives in the study's
user attributes, every trial's per-layer bits, cost breakdown, timings and artifact in the trial's
user attributes, so the database alone answers every question about a search (and
``optuna-dashboard <url>`` shows it).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from autoq.cost import REGIMES
from autoq.errors import SpecError
from autoq.search.sampler import CostAwareSampler
from autoq.search.spec import SearchSpec, parse_spec
from autoq.search.trial import FLOAT_CHOICE, SearchSpace, TrialRunner, suggest_group_bits

DEFAULT_STORAGE = "sqlite:///autoq.db"
DIRECTIONS = ("minimize", "minimize")
OBJECTIVES = ("mse", "cost")
HEARTBEAT_SECONDS = 30
HEARTBEAT_ENV = "AUTOQ_HEARTBEAT_SECONDS"
SPEC_ATTR = "autoq_spec"


def storage_url(url: str | None = None) -> str:
    """``url``, else ``$AUTOQ_STORAGE``, else ``sqlite:///autoq.db`` in the working directory."""
    return url or os.environ.get("AUTOQ_STORAGE") or DEFAULT_STORAGE


def heartbeat_seconds() -> int:
    """``$AUTOQ_HEARTBEAT_SECONDS``, else :data:`HEARTBEAT_SECONDS`.

    Read from the environment so the processes of a search (a CLI killed and restarted, a
    service's workers) agree on it; tests shorten it to see a stale trial fail.
    """
    raw = os.environ.get(HEARTBEAT_ENV)
    if raw is None:
        return HEARTBEAT_SECONDS
    try:
        seconds = int(raw)
    except ValueError as e:
        raise SpecError(f"{HEARTBEAT_ENV} must be a whole number of seconds, got {raw!r}") from e
    if seconds < 1:
        raise SpecError(f"{HEARTBEAT_ENV} must be at least 1, got {seconds}")
    return seconds


def open_storage(url: str | None = None, *, heartbeat: int | None = None) -> RDBStorage:
    """Optuna's RDB storage with heartbeats: a trial whose process died is failed after two
    missed heartbeats and run again (once per trial) by the next worker of the search.

    ``heartbeat`` (seconds; default :func:`heartbeat_seconds`) must be the same in every process
    of a search, or one process takes another's live trial for dead.
    """
    interval = heartbeat or heartbeat_seconds()
    # Heartbeats and metric names are marked experimental in Optuna 5; we rely on both.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RDBStorage(
            storage_url(url),
            heartbeat_interval=interval,
            grace_period=2 * interval,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            engine_kwargs={"pool_pre_ping": True},
        )


def make_sampler(spec: SearchSpec, *, stored_trials: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded, with its constraints (feasible when every value ≤ 0).

    A seeded sampler restarts its random sequence in every process, so a resumed search would
    propose again what its first run proposed: the seed moves on by the ``stored_trials``
    already in the study.
    """
    seed = spec.search.seed + stored_trials
    constraints = _constraints_func if _has_constraints(spec) else None
    name = spec.search.sampler
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints,
                                          multivariate=True, group=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints,
                                             population_size=min(20, spec.search.trials))
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, constraints_func=constraints)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "autoq":
        return cost_aware_sampler(spec, seed=seed)
    raise SpecError(f"search.sampler: unknown sampler {name!r}")


def cost_aware_sampler(spec: SearchSpec, *, seed: int | None) -> CostAwareSampler:
    """autoq's sampler for ``spec``: it prices candidate configurations itself, before any
    training, and never proposes one over ``search.constraints.max_cost``."""
    space = SearchSpace(spec)
    weight_bits: list[int | str] = list(spec.space.weight_bits)
    if spec.space.allow_float:
        weight_bits.append(FLOAT_CHOICE)
    return CostAwareSampler(
        scales=spec.space.scales, groups=space.groups, weight_bits=weight_bits,
        act_bits=spec.space.act_bits, seed=seed, max_cost=spec.search.constraints.max_cost,
        cost_fn=lambda params: space.cost(space.from_params(params)).total,
    )


def _has_constraints(spec: SearchSpec) -> bool:
    limits = spec.search.constraints
    return limits.max_cost is not None or limits.max_mse is not None


def _constraints_func(trial: optuna.trial.FrozenTrial) -> list[float]:
    return list(trial.user_attrs.get("constraints", []))


def _spec_json(spec: SearchSpec) -> str:
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True)


def create_or_resume(spec: SearchSpec, *, name: str | None = None,
                     storage: str | RDBStorage | None = None) -> optuna.Study:
    """The study of this search: created on first use, resumed afterwards.

    A study of that name made from a different spec (other than its trial budget) is refused, so
    a resumed search never mixes two spaces.
    """
    store = storage if isinstance(storage, RDBStorage) else open_storage(storage)
    study_name = name or spec.name
    sampler = make_sampler(spec, stored_trials=_stored_trials(store, study_name))
    study = optuna.create_study(study_name=study_name, storage=store, directions=DIRECTIONS,
                                sampler=sampler, load_if_exists=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names(list(OBJECTIVES))
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        study.set_user_attr(SPEC_ATTR, _spec_json(spec))
    elif not _same_space(json.loads(stored), spec.model_dump(mode="json")):
        raise SpecError(f"search {study_name!r} already exists in the storage with a different "
                        f"spec; choose another --name to start a new search")
    return study


def _stored_trials(storage: RDBStorage, study_name: str) -> int:
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


# How a search runs, not what it searches: a search may resume with other values of these.
_EXECUTION_SETTINGS = ("trials", "timeout", "executor", "resources", "max_concurrent")


def _same_space(stored: dict[str, Any], current: dict[str, Any]) -> bool:
    for payload in (stored, current):
        for key in _EXECUTION_SETTINGS:
            payload.get("search", {}).pop(key, None)
    return stored == current


def load_study(name: str, *, storage: str | None = None) -> tuple[optuna.Study, SearchSpec]:
    """An existing search and its spec; a SpecError names the study if it does not exist."""
    url = storage_url(storage)
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError as e:
        known = [s.study_name for s in optuna.get_all_study_summaries(url)]
        raise SpecError(f"no search named {name!r} in {url}; searches: {known}") from e
    payload = study.user_attrs.get(SPEC_ATTR)
    if payload is None:
        raise SpecError(f"study {name!r} in {url} was not made by autoq (no spec recorded)")
    return study, parse_spec(json.loads(payload), source=f"study {name!r}")


def finished_trials(study: optuna.Study) -> int:
    """Trials that count towards the budget: complete ones, and ones our objective failed.

    A trial failed because its process died (stale heartbeat) does not count: it is retried.
    """
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        if trial.state == TrialState.COMPLETE or "error" in trial.user_attrs:
            count += 1
    return count


def enqueue_baseline_grid(
    study: optuna.Study,
    spec: SearchSpec,
    *,
    regimes: Sequence[str] = tuple(REGIMES),
    scales: Sequence[float] | None = None,
) -> int:
    """Queue the paper's uniform grid (its regimes × the space's scales, or ``scales``, which
    must be in the space) once; returns how many trials were queued (0 when the grid is already
    in the study)."""
    unknown = sorted(set(regimes) - set(REGIMES))
    if unknown:
        raise SpecError(f"unknown regime {unknown[0]!r}; regimes: {list(REGIMES)}")
    outside = sorted(set(scales or ()) - set(spec.space.scales))
    if outside:
        raise SpecError(f"scale {outside[0]:g} is not in space.scales {spec.space.scales}")
    # A queued trial holds its scale in Optuna's fixed parameters until it runs.
    existing = {(t.user_attrs.get("baseline"),
                 t.params.get("scale", t.system_attrs.get("fixed_params", {}).get("scale")))
                for t in study.get_trials(deepcopy=False)}
    queued = 0
    for regime in regimes:
        for scale in scales or spec.space.scales:
            if (regime, scale) in existing:
                continue
            study.enqueue_trial({"scale": scale}, user_attrs={"baseline": regime})
            queued += 1
    return queued


def make_objective(runner: TrialRunner, study_name: str) -> Callable[[optuna.Trial], tuple]:
    """The function Optuna optimises: one QAT trial → (validation MSE, bit-op cost)."""
    spec = runner.spec
    limits = spec.search.constraints

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        try:
            scale = trial.suggest_categorical("scale", list(spec.space.scales))
            regime = trial.user_attrs.get("baseline")
            if regime is not None:
                config = runner.space.regime(regime, scale)
            else:
                config = runner.space.config(
                    scale, suggest_group_bits(trial, runner.space.groups, spec))
            trial.set_user_attr("bits", config.to_json()["bits"])
            result = runner.run(config, seed=spec.search.seed + trial.number,
                                artifact_name=f"{study_name}/trial-{trial.number:05d}")
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise
        trial.set_user_attr("cost_breakdown", {k: v.cost for k, v in result.cost.layers.items()})
        trial.set_user_attr("flops", result.cost.flops)
        trial.set_user_attr("float_mse", result.float_mse)
        if result.rollout_mse is not None:
            trial.set_user_attr("rollout_mse", result.rollout_mse)
        trial.set_user_attr("timings", result.timings)
        if result.artifact is not None:
            trial.set_user_attr("artifact", str(result.artifact))
        constraints = []
        if limits.max_mse is not None:
            constraints.append(result.mse - limits.max_mse)
        if limits.max_cost is not None:
            constraints.append(result.cost.total - limits.max_cost)
        if constraints:
            trial.set_user_attr("constraints", constraints)
        return result.mse, result.cost.total

    return objective


def run_trials(
    study: optuna.Study,
    runner: TrialRunner,
    *,
    n_trials: int,
    timeout: float | None = None,
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
) -> None:
    """Run up to ``n_trials`` trials of ``runner``'s spec in ``study``, one after another.

    Every executor runs its trials through here, so their records are the same. A trial that
    raises is recorded as failed (with ``user_attrs["error"]``) and the next one runs; heartbeats
    (from :func:`open_storage`) fail and requeue trials of dead processes at each trial's start.
    """
    study.optimize(make_objective(runner, study.study_name), n_trials=n_trials, timeout=timeout,
                   catch=(Exception,), callbacks=callbacks, gc_after_trial=True)


def run_local(
    spec: SearchSpec,
    *,
    name: str | None = None,
    storage: str | None = None,
    trials: int | None = None,
    baseline_grid: bool = False,
    artifact_dir: Path | None = None,
    runner: TrialRunner | None = None,
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> optuna.Study:
    """Run (or resume) a search in this process until its budget of finished trials is spent.

    Args:
        spec: the search spec.
        name: study name (default: the spec's name).
        storage: SQLAlchemy URL (default: :func:`storage_url`).
        trials: the budget of finished trials (default: ``spec.search.trials``).
        baseline_grid: also queue the paper's uniform grid, marked as baseline trials.
        artifact_dir: where trials export their quantized networks.
        runner: a prepared :class:`TrialRunner` (tests, workers reuse one).
        callbacks: called after every trial, as Optuna's ``optimize`` callbacks.
        should_stop: polled after every trial; True stops the search at that boundary.
    """
    study = create_or_resume(spec, name=name, storage=storage)
    if baseline_grid:
        enqueue_baseline_grid(study, spec)
    budget = trials if trials is not None else spec.search.trials
    remaining = budget - finished_trials(study)
    if remaining <= 0:
        return study
    runner = runner or TrialRunner(spec, artifact_dir=artifact_dir, progress=True)

    def stop_when_done(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if finished_trials(study) >= budget or (should_stop is not None and should_stop()):
            study.stop()

    run_trials(study, runner, n_trials=remaining, timeout=spec.search.timeout,
               callbacks=[*(callbacks or []), stop_when_done])
    return study


def run_search(
    spec: SearchSpec,
    *,
    name: str | None = None,
    storage: str | None = None,
    trials: int | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
    baseline_grid: bool = False,
    artifact_dir: Path | None = None,
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> optuna.Study:
    """Run or resume a search with the executor the spec (or ``executor``) names.

    ``local`` runs trials one after another in this process; ``ray`` runs them as Ray Tune
    trials (in parallel, on a cluster when ``ray_address`` is given), each recording into the
    same Optuna storage, so both executors produce the same records.
    """
    chosen = executor or spec.search.executor
    if chosen == "local":
        return run_local(spec, name=name, storage=storage, trials=trials,
                         baseline_grid=baseline_grid, artifact_dir=artifact_dir,
                         callbacks=callbacks, should_stop=should_stop)
    if chosen == "ray":
        from autoq.search.ray_executor import run_ray

        return run_ray(spec, name=name, storage=storage, trials=trials, address=ray_address,
                       baseline_grid=baseline_grid, artifact_dir=artifact_dir,
                       should_stop=should_stop, callbacks=callbacks)
    raise SpecError(f"search.executor must be 'local' or 'ray', got {chosen!r}")
