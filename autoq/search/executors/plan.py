"""The set-up every executor shares: open (or create) the study with its sampler, queue the
baseline grid, count the budget; and running a prepared search with any executor.

A search that fails before its first trial (its data missing, its model not buildable) leaves no
empty study behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from autoq.cost import REGIMES
from autoq.errors import SpecError
from autoq.search import records
from autoq.search.executors import Executor, ExecutorOptions, StudyCallback, get_executor
from autoq.search.latency import LatencyModel
from autoq.search.results import finished_trials
from autoq.search.samplers import SAMPLERS, PricedSpace, SamplerSettings
from autoq.search.space import SearchSpace
from autoq.search.spec import SearchSpec
from autoq.search.storage import (
    create_or_resume,
    delete_if_empty,
    open_storage,
    stored_trials,
    study_exists,
)


@dataclass(frozen=True)
class SearchRun:
    """A search ready to run.

    Attributes:
        spec: the search's spec.
        study: its study, with the spec's sampler.
        storage: the storage the study is in.
        space: the search space the sampler prices (trials in this process reuse it).
        budget: finished trials the search should reach.
        created: the study was created by this set-up (not resumed).
        queued: baseline trials this set-up queued.
    """

    spec: SearchSpec
    study: optuna.Study
    storage: RDBStorage
    space: SearchSpace
    budget: int
    created: bool
    queued: int = 0

    @property
    def done(self) -> int:
        """Finished trials so far (complete, or failed by the objective)."""
        return finished_trials(self.study)

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.done)


def make_sampler(spec: SearchSpec, space: SearchSpace, *, stored: int = 0
                 ) -> optuna.samplers.BaseSampler:
    """The spec's sampler, from :data:`~autoq.search.samplers.SAMPLERS`.

    A seeded sampler restarts its random sequence in every process, so a resumed search would
    propose again what its first run proposed: the seed moves on by the ``stored`` trials
    already in the study. Under the latency objective the sampler prices configurations in
    predicted latency (:class:`~autoq.search.latency.LatencyModel`; its runtime is checked
    here, before any study exists).
    """
    limits = spec.search.constraints
    settings = SamplerSettings(trials=spec.search.trials, max_cost=limits.max_cost,
                               max_mse=limits.max_mse, max_mse_ratio=limits.max_mse_ratio)
    priced: PricedSpace = space
    if spec.search.cost_objective == "latency":
        priced = LatencyModel(space, spec.search.latency)
    return SAMPLERS[spec.search.sampler](priced, settings, seed=spec.search.seed + stored)


def open_search_study(spec: SearchSpec, *, name: str | None = None, storage: RDBStorage,
                      space: SearchSpace | None = None) -> tuple[optuna.Study, bool]:
    """The search's study with its sampler, created or resumed; and whether it was created.

    ``space`` is the spec's search space where this process reads the data from another path
    than the one the spec names (a Ray worker); by default it is built from ``spec``.
    """
    study_name = name or spec.name
    existed = study_exists(storage, study_name)
    sampler = make_sampler(spec, space or SearchSpace(spec),
                           stored=stored_trials(storage, study_name))
    study = create_or_resume(spec, name=study_name, storage=storage, sampler=sampler)
    return study, not existed


_PENDING = (TrialState.WAITING, TrialState.RUNNING)


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
    # A queued trial holds its scale in Optuna's fixed parameters until it runs. A trial cut
    # off by Ctrl-C (failed, no error recorded, not retried) no longer holds its regime.
    existing = {(t.user_attrs.get(records.BASELINE_ATTR),
                 t.params.get(records.SCALE_PARAM,
                              t.system_attrs.get("fixed_params", {}).get(records.SCALE_PARAM)))
                for t in study.get_trials(deepcopy=False)
                if t.state in _PENDING or records.counts_towards_budget(t)}
    # The paper's regimes are about bits: in a search over ranks they run at the largest rank.
    widest_rank = spec.space.ranks[0] if spec.space.ranks else None
    queued = 0
    for regime in regimes:
        for scale in scales or spec.space.scales:
            if (regime, scale) in existing:
                continue
            study.enqueue_trial(records.encode_params(scale, {}, widest_rank),
                                user_attrs={records.BASELINE_ATTR: regime})
            queued += 1
    return queued


def prepare_run(
    spec: SearchSpec,
    *,
    name: str | None = None,
    storage: str | RDBStorage | None = None,
    trials: int | None = None,
    baseline_regimes: Sequence[str] = (),
    space: SearchSpace | None = None,
    data_root: Path | None = None,
) -> SearchRun:
    """Open (or create) the search's study and queue the paper's ``baseline_regimes`` at the
    space's scales; the budget is ``trials``, else the spec's. ``space``: the search space if
    already built (e.g. from an in-memory dataset's shapes). ``data_root``: relative paths of
    the spec resolve against it (a server's data root) while the study keeps them as given, so
    the stored spec names no server path."""
    store = storage if isinstance(storage, RDBStorage) else open_storage(storage)
    runnable = spec if data_root is None else spec.with_paths_under(data_root)
    space = space or SearchSpace(runnable)
    study, created = open_search_study(spec, name=name, storage=store, space=space)
    try:
        queued = enqueue_baseline_grid(study, spec, regimes=baseline_regimes) \
            if baseline_regimes else 0
    except BaseException:
        if created:
            delete_if_empty(store, study.study_name)
        raise
    budget = trials if trials is not None else spec.search.trials
    return SearchRun(spec=runnable, study=study, storage=store, space=space, budget=budget,
                     created=created,
                     queued=queued)


def execute(
    run: SearchRun,
    *,
    executor: str | Executor | None = None,
    options: ExecutorOptions | None = None,
    artifact_dir: Path | None = None,
    callbacks: list[StudyCallback] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> optuna.Study:
    """Run a prepared search's remaining trials with ``executor``: a registered name (default:
    the spec's) or an executor object (e.g. a local executor holding prepared data).

    When the run fails before any trial was stored in a study it created, the study is
    deleted: a failed start leaves nothing behind.
    """
    if run.remaining == 0:
        return run.study
    chosen = (executor if executor is not None and not isinstance(executor, str)
              else get_executor(executor or run.spec.search.executor, options))
    try:
        chosen.run(run, artifact_dir=artifact_dir, callbacks=list(callbacks or []),
                   should_stop=should_stop)
    except BaseException:
        if run.created:
            delete_if_empty(run.storage, run.study.study_name)
        raise
    return run.study


def run_search(
    spec: SearchSpec,
    *,
    name: str | None = None,
    storage: str | RDBStorage | None = None,
    trials: int | None = None,
    executor: str | None = None,
    options: ExecutorOptions | None = None,
    baseline_grid: bool = False,
    artifact_dir: Path | None = None,
    callbacks: list[StudyCallback] | None = None,
    should_stop: Callable[[], bool] | None = None,
    data_root: Path | None = None,
) -> optuna.Study:
    """Run (or resume) a search until its budget of finished trials is spent.

    Args:
        spec: the search spec.
        name: study name (default: the spec's name).
        storage: SQLAlchemy URL or an open storage (default: the ``storage`` setting).
        trials: the budget of finished trials (default: ``spec.search.trials``).
        executor: a name of :data:`~autoq.search.executors.EXECUTORS` (default: the spec's).
        options: how the executor reaches its compute (e.g. a Ray address).
        baseline_grid: also queue the paper's uniform grid, marked as baseline trials.
        artifact_dir: where trials export their quantized networks (``None``: not kept).
        callbacks: called after every trial, as Optuna's ``optimize`` callbacks.
        should_stop: polled after every trial; True stops the search at that boundary.
        data_root: relative paths of the spec resolve against it; the study stores them as
            given (:func:`prepare_run`).
    """
    run = prepare_run(spec, name=name, storage=storage, trials=trials,
                      baseline_regimes=tuple(REGIMES) if baseline_grid else (),
                      data_root=data_root)
    return execute(run, executor=executor, options=options, artifact_dir=artifact_dir,
                   callbacks=callbacks, should_stop=should_stop)
