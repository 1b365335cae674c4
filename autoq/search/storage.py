"""Where searches live: Optuna's RDB storage on any SQLAlchemy URL, one study per search.

A study's spec is kept in its user attributes (:data:`~autoq.search.records.SPEC_ATTR`), so the
database alone answers every question about a search, and ``optuna-dashboard <url>`` shows it.
Opening and reading studies needs no torch; validating a stored spec does (its model config).
"""

from __future__ import annotations

import json
import time
import warnings
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, ProgrammingError

from autoq.errors import SpecError
from autoq.extras import require
from autoq.search.records import DIRECTIONS, SPEC_ATTR, objective_names
from autoq.settings import get_settings

if TYPE_CHECKING:
    from autoq.search.spec import SearchSpec


def storage_url(url: str | None = None) -> str:
    """``url``, else the ``storage`` setting (``$AUTOQ_STORAGE``, default
    ``sqlite:///autoq.db`` in the working directory).

    Every storage autoq opens by URL is resolved here, so here a URL whose database driver
    comes with an extra of autoq is checked: without the driver, a
    :class:`~autoq.extras.MissingExtraError` names the extra.
    """
    resolved = url or get_settings().storage
    _require_driver(resolved)
    return resolved


def _require_driver(url: str) -> None:
    """Import the driver of ``url`` if an extra of autoq installs it: psycopg (``service``) for
    ``postgresql+psycopg://`` and for plain ``postgresql://``, whose default driver is psycopg
    in SQLAlchemy 2.1. Other URLs are left to SQLAlchemy."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            return
        driver = parsed.get_driver_name()
    except ArgumentError:
        return  # not a URL SQLAlchemy can open: opening it says so
    if driver == "psycopg":
        require("psycopg", extra="service", feature="storage postgresql")


_CREATE_ATTEMPTS = 3


def rdb_storage(url: str, **options: Any) -> RDBStorage:
    """Optuna's RDB storage on ``url``, which creates Optuna's tables on first use.

    Two processes opening a new database at once (an API and a worker) both try to create
    them; on PostgreSQL the slower one fails with a duplicate type or table. The tables then
    exist, so opening again succeeds.
    """
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            return RDBStorage(url, **options)
        except (IntegrityError, ProgrammingError):
            if attempt == _CREATE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def open_storage(url: str | None = None, *, heartbeat: int | None = None) -> RDBStorage:
    """Optuna's RDB storage with heartbeats: a trial whose process died is failed after two
    missed heartbeats and run again (once per trial) by the next worker of the search.

    ``heartbeat`` (seconds; default: the ``trial_heartbeat_seconds`` setting) must be the same
    in every process of a search, or one process takes another's live trial for dead.
    """
    interval = heartbeat or get_settings().trial_heartbeat_seconds
    # Optuna 5 marks trial heartbeats experimental; the search's resume relies on them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return rdb_storage(
            storage_url(url),
            heartbeat_interval=interval,
            grace_period=2 * interval,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            engine_kwargs={"pool_pre_ping": True},
        )


def study_exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    """Whether ``storage`` holds a study called ``name``."""
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def stored_trials(storage: optuna.storages.BaseStorage, name: str) -> int:
    """How many trials (any state) the study ``name`` holds; 0 when there is no such study."""
    if not study_exists(storage, name):
        return 0
    return len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))


def create_or_resume(
    spec: SearchSpec,
    *,
    name: str | None = None,
    storage: str | RDBStorage | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """The study of this search, with ``sampler``: created on first use, resumed afterwards.

    A study of that name made from a different spec (other than how it runs: budget, timeout,
    executor, resources) is refused, so a resumed search never mixes two spaces.
    """
    store = storage if isinstance(storage, RDBStorage) else open_storage(storage)
    study_name = name or spec.name
    study = optuna.create_study(study_name=study_name, storage=store, directions=DIRECTIONS,
                                sampler=sampler, load_if_exists=True)
    # Metric names are experimental in Optuna 5; the dashboard labels the axes with them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names(objective_names(spec.metric, spec.search.cost_objective))
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        study.set_user_attr(SPEC_ATTR, _spec_json(spec))
    elif not _same_space(stored, spec):
        raise SpecError(f"search {study_name!r} already exists in the storage with a different "
                        f"spec; choose another --name to start a new search")
    return study


def delete_if_empty(storage: optuna.storages.BaseStorage, name: str) -> bool:
    """Delete the study ``name`` if none of its trials ever started (a search that failed
    before its first trial left it behind, perhaps with queued baselines); True when it was
    deleted."""
    if not study_exists(storage, name):
        return False
    study_id = storage.get_study_id_from_name(name)
    if any(t.state != TrialState.WAITING
           for t in storage.get_all_trials(study_id, deepcopy=False)):
        return False
    storage.delete_study(study_id)
    return True


def _spec_json(spec: SearchSpec) -> str:
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True)


# How a search runs, not what it searches: a search may resume with other values of these.
_EXECUTION_SETTINGS = ("trials", "timeout", "executor", "resources", "max_concurrent")


def _same_space(stored: str, spec: SearchSpec) -> bool:
    """Whether a stored spec describes the same search as ``spec``; both are compared as
    validated now, so a spec stored before a field was added (with its default) still is."""
    from autoq.search.spec import parse_spec

    try:
        earlier = parse_spec(json.loads(stored), source="stored spec")
    except SpecError:
        return False
    payloads = [earlier.model_dump(mode="json"), spec.model_dump(mode="json")]
    for payload in payloads:
        for key in _EXECUTION_SETTINGS:
            payload.get("search", {}).pop(key, None)
    return payloads[0] == payloads[1]


def load_study(name: str, *, storage: str | optuna.storages.BaseStorage | None = None
               ) -> optuna.Study:
    """An existing search; a SpecError names it and lists the searches when it does not exist,
    or when the study was not made by autoq."""
    store = storage if isinstance(storage, optuna.storages.BaseStorage) else storage_url(storage)
    try:
        study = optuna.load_study(study_name=name, storage=store)
    except KeyError as e:
        known = [s.study_name for s in optuna.get_all_study_summaries(store)]
        where = store if isinstance(store, str) else "the storage"
        raise SpecError(f"no search named {name!r} in {where}; searches: {known}") from e
    if SPEC_ATTR not in study.user_attrs:
        raise SpecError(f"study {name!r} was not made by autoq (no spec recorded)")
    return study


def study_spec(study: optuna.Study) -> SearchSpec:
    """The spec a search was made from, validated."""
    from autoq.search.spec import parse_spec

    return parse_spec(json.loads(study.user_attrs[SPEC_ATTR]),
                      source=f"study {study.study_name!r}")
