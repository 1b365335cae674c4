"""What the service reads from its jobs' Optuna studies: trial counts and trial points.

The studies are the one record of trials; the service only reads them. A read costs a bounded
number of SQL statements whatever the number of jobs and trials:

- the trial counts of any number of studies: one aggregate query over Optuna's tables
  (:func:`trial_counts`);
- a study's trial points: kept in this process and served again while one aggregate query says
  the study has not changed (:func:`study_trials`); reloaded whole through Optuna's RDB storage
  when it has, once for all readers.

:func:`autoq.search.results.study_points` and
:func:`autoq.search.results.finished_trials`, which read a whole study through Optuna, are the
definitions these reads agree with (``tests/service/test_reads.py``). A job whose study does not
exist yet (still queued) has no trials.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._rdb.models import (
    StudyModel,
    TrialModel,
    TrialParamModel,
    TrialSystemAttributeModel,
    TrialUserAttributeModel,
)
from optuna.trial import TrialState
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from autoq.search.records import ERROR_ATTR, TrialPoint
from autoq.search.results import study_points


@dataclass(frozen=True)
class Progress:
    """Trial counts of one study.

    Attributes:
        done: trials that count towards the budget (complete, or failed by the objective).
        complete: trials with both objectives.
        failed: trials that failed (including ones whose worker died).
        running: trials in progress.
    """

    done: int = 0
    complete: int = 0
    failed: int = 0
    running: int = 0


def _load(storage: BaseStorage, name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


# (trials, of which recorded an error) per trial state.
_StateCounts = Mapping[TrialState, tuple[int, int]]


def _progress(counts: _StateCounts) -> Progress:
    complete, _ = counts.get(TrialState.COMPLETE, (0, 0))
    failed, failed_by_objective = counts.get(TrialState.FAIL, (0, 0))
    running, _ = counts.get(TrialState.RUNNING, (0, 0))
    # records.counts_towards_budget: complete trials, and failed ones that recorded an error.
    return Progress(done=complete + failed_by_objective, complete=complete, failed=failed,
                    running=running)


def _counts_query() -> Select[Any]:
    error = TrialUserAttributeModel
    return (
        select(StudyModel.study_name, TrialModel.state, func.count(TrialModel.trial_id),
               func.count(error.trial_user_attribute_id))
        .join(TrialModel, TrialModel.study_id == StudyModel.study_id)
        # (trial_id, key) is unique: the outer join adds no rows, it marks the failed trials
        # our objective recorded (the others' process died).
        .outerjoin(error, (error.trial_id == TrialModel.trial_id) & (error.key == ERROR_ATTR))
        .where(StudyModel.study_name.in_(bindparam("names", expanding=True)))
        .group_by(StudyModel.study_name, TrialModel.state))


# Built once: building a statement costs more than SQLAlchemy's cached compilation of it.
_COUNTS = _counts_query()


def trial_counts(session: Session, storage: BaseStorage, names: Collection[str]
                 ) -> dict[str, Progress]:
    """Progress of each study in ``names`` (all zero for one that does not exist yet), in one
    query on ``session``: trials grouped by study and state, with how many recorded an error.

    ``storage`` is Optuna's storage on the session's database, open: opening it created
    Optuna's tables, which the query reads, in a database no study was written to yet.
    """
    counts: defaultdict[str, dict[TrialState, tuple[int, int]]] = defaultdict(dict)
    for name, state, trials, with_error in session.execute(_COUNTS, {"names": list(names)}):
        counts[name][state] = (trials, with_error)
    return {name: _progress(counts[name]) for name in names}


Freshness = tuple[Any, ...]
"""What changes whenever a study gains a trial or a row of a trial (parameter, attribute,
constraint), or a trial changes state: everything a :class:`TrialPoint` shows, but for an
attribute rewritten in place (``autoq latency`` timing a trial a second time), which shows at
the study's next change."""

_FINISHED = [state for state in TrialState if state.is_finished()]


def _last_row(model: Any, row_id: Any) -> Any:
    """The highest id of ``model``'s rows (a trial's parameters or attributes) in the study of
    the enclosing query."""
    trial = aliased(TrialModel)
    return (select(func.max(row_id)).join(trial, trial.trial_id == model.trial_id)
            .where(trial.study_id == StudyModel.study_id).scalar_subquery())


def _freshness_query() -> Select[Any]:
    in_study = TrialModel.study_id == StudyModel.study_id
    # A trial is added (count, last id), starts or finishes (state counts: its values come in
    # the same transaction as its final state), or records a parameter, a user attribute or a
    # constraint (a system attribute): a new row, with a higher id. The study id tells a study
    # re-created under its name.
    return (select(StudyModel.study_id, func.count(TrialModel.trial_id),
                   func.max(TrialModel.trial_id),
                   func.count(TrialModel.trial_id).filter(TrialModel.state == TrialState.RUNNING),
                   func.count(TrialModel.trial_id).filter(TrialModel.state.in_(_FINISHED)),
                   _last_row(TrialParamModel, TrialParamModel.param_id),
                   _last_row(TrialUserAttributeModel,
                             TrialUserAttributeModel.trial_user_attribute_id),
                   _last_row(TrialSystemAttributeModel,
                             TrialSystemAttributeModel.trial_system_attribute_id))
            .outerjoin(TrialModel, in_study)
            .where(StudyModel.study_name == bindparam("name"))
            .group_by(StudyModel.study_id))


_FRESHNESS = _freshness_query()


def study_freshness(session: Session, *, name: str) -> Freshness | None:
    """The freshness of study ``name`` in one query, or None when it does not exist yet."""
    row = session.execute(_FRESHNESS, {"name": name}).first()
    return None if row is None else tuple(row)


@dataclass(frozen=True)
class _Cached:
    freshness: Freshness
    points: tuple[TrialPoint, ...]


def _uncached(storage: BaseStorage) -> BaseStorage:
    """The RDB storage under Optuna's cache (the app's storage is one): the cache never reads
    a finished trial again, so an attribute added to one later (``autoq latency``'s timing)
    would not show."""
    # Optuna's _CachedStorage keeps its RDB storage as ``_backend``, as
    # autoq.deploy.latency.store_trial_attr reads it.
    return getattr(storage, "_backend", storage)


class _StudyCache:
    """Trial points of one storage's studies, each kept with the freshness read before it was
    loaded."""

    def __init__(self) -> None:
        self._entries: dict[str, _Cached] = {}
        self._loading: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def points(self, storage: BaseStorage, name: str, freshness: Freshness
               ) -> tuple[TrialPoint, ...]:
        cached = self._entries.get(name)
        if cached is not None and cached.freshness == freshness:
            return cached.points
        with self._guard:
            loading = self._loading[name]
        # One load per study at a time: concurrent readers of a changed study wait for it
        # rather than each loading the whole study.
        with loading:
            cached = self._entries.get(name)
            if cached is None or cached.freshness != freshness:
                study = _load(_uncached(storage), name)
                # Loaded after ``freshness`` was read: a trial that changed in between is in
                # the points already, and its next read finds a new freshness and loads again.
                cached = _Cached(freshness, () if study is None else tuple(study_points(study)))
                self._entries[name] = cached
            return cached.points


_caches: weakref.WeakKeyDictionary[BaseStorage, _StudyCache] = weakref.WeakKeyDictionary()
_caches_guard = threading.Lock()


def _cache_of(storage: BaseStorage) -> _StudyCache:
    with _caches_guard:
        return _caches.setdefault(storage, _StudyCache())


def study_trials(session: Session, storage: BaseStorage, *, name: str
                 ) -> tuple[TrialPoint, ...]:
    """Every trial of the study ``name`` in trial order (none when it does not exist yet), as
    :func:`~autoq.search.results.study_points` reads them through ``storage``; one query on
    ``session`` while the study is unchanged since it was last read (the points are shared by
    every reader: do not modify them)."""
    freshness = study_freshness(session, name=name)
    if freshness is None:
        return ()
    return _cache_of(storage).points(storage, name, freshness)
