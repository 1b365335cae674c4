"""Where searches live: Optuna's RDB storage on any SQLAlchemy URL, one study per search.

A study's spec is kept in its user attributes (:data:`~autoq.search.records.SPEC_ATTR`), so the
database alone answers every question about a search, and ``optuna-dashboard <url>`` shows it.
Opening and reading studies needs no torch; validating a stored spec does (its model config).

A search rides out database outages (:class:`ResilientStorage`): every call that meets a
transient error is retried with backoff until a deadline, trial heartbeats skip a beat instead
of killing their thread, and a trial's result that still cannot be written at the deadline is
kept in a journal on disk that the next :func:`open_storage` of the same URL writes.
"""

from __future__ import annotations

import copy
import fcntl
import functools
import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._rdb import models as optuna_models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from autoq.errors import SpecError
from autoq.extras import require
from autoq.search.records import (
    DIRECTIONS,
    ORPHAN_ATTR,
    REPLACES_ATTR,
    SPEC_ATTR,
    objective_names,
)
from autoq.settings import get_settings

if TYPE_CHECKING:
    from autoq.search.spec import SearchSpec

log = logging.getLogger(__name__)
R = TypeVar("R")


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
    """Optuna's RDB storage on ``url``, which creates Optuna's tables on first use."""
    return _created(lambda: RDBStorage(url, **options))


S = TypeVar("S", bound=RDBStorage)


def _created(make: Callable[[], S]) -> S:
    """``make()``, again if it fails creating Optuna's tables.

    Two processes opening a new database at once (an API and a worker) both try to create
    them; on PostgreSQL the slower one fails with a duplicate type or table. The tables then
    exist, so opening again succeeds.
    """
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            return make()
        except (IntegrityError, ProgrammingError):
            if attempt == _CREATE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


_TRANSIENT = (OperationalError, InterfaceError, DisconnectionError)
_CHAIN_DEPTH = 8


def is_transient(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is the database out of reach for a
    while (a refused or lost connection, a lock timeout) rather than a mistake that fails again
    (a missing table, a bad value). Optuna wraps SQLAlchemy's errors in its own, so the whole
    chain is looked at."""
    seen: BaseException | None = error
    for _ in range(_CHAIN_DEPTH):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, _TRANSIENT):
            # SQLite reports a missing table or column as an OperationalError too.
            return "no such " not in str(seen)
        seen = seen.__cause__ or seen.__context__
    return False


DEFAULT_RETRY_SECONDS = 300.0
"""How long one storage call is retried when no deadline was given (the local CLI)."""
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 10.0


def journal_dir(url: str) -> Path:
    """Where results of trials on ``url`` wait while the database cannot take them: under the
    cache directory (a worker's restart finds them there), one folder per storage URL."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return get_settings().cache_dir / "pending-writes" / digest


class ResilientStorage(RDBStorage):
    """Optuna's RDB storage that outlives database outages.

    A call that fails with a transient error (:func:`is_transient`) is retried with
    exponential backoff (0.5 s doubling to 10 s) until ``retry_until`` (a ``time.time()``;
    ``None``: :data:`DEFAULT_RETRY_SECONDS` per call), then raises. Writes of a trial's result
    (its user and system attributes, its final state and values) are never lost: one that
    cannot be written by the deadline, or whose trial was failed meanwhile as an orphan
    (:func:`fail_orphan_trials`), goes to the trial's journal file in ``journal`` instead, and
    the call returns as if written. The final state write then writes the journal at once if
    the database answers, else :meth:`replay_pending` does (:func:`open_storage` calls it). A
    trial failed meanwhile gets its result as a new trial (:data:`REPLACES_ATTR`). A heartbeat
    that cannot be recorded is skipped, so Optuna's heartbeat thread outlives the outage.

    Args:
        url: SQLAlchemy URL.
        retry_until: deadline of every retry, e.g. a job's time cap.
        journal: the folder of trial journals (see :func:`journal_dir`).
        options: :class:`~optuna.storages.RDBStorage`'s keywords.
    """

    def __init__(self, url: str, *, retry_until: float | None, journal: Path,
                 **options: Any) -> None:
        self.retry_until = retry_until
        self.journal = journal
        self._lock = threading.Lock()
        self._journaled: set[int] = set()
        # This process's last view of each trial it runs, journaled writes included.
        self._known: dict[int, FrozenTrial] = {}
        self._heartbeat_failing = False
        super().__init__(url, **options)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.Lock()

    def retry(self, what: str, call: Callable[[], R]) -> R:
        """``call()``, retried on transient errors with backoff until the deadline."""
        deadline = self.retry_until if self.retry_until is not None \
            else time.time() + DEFAULT_RETRY_SECONDS
        delay = FIRST_BACKOFF
        failing_since: float | None = None
        while True:
            try:
                result = call()
            except Exception as e:
                if not is_transient(e):
                    raise
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning("database unreachable (%s); retrying %s until %s",
                                type(e).__name__, what,
                                datetime.fromtimestamp(deadline).isoformat(timespec="seconds"))
                if time.time() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, MAX_BACKOFF)
                continue
            if failing_since is not None:
                log.warning("database back: %s written after %.0f s", what,
                            time.monotonic() - failing_since)
            return result

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as e:
            if not is_transient(e):
                raise
            if not self._heartbeat_failing:
                log.warning("heartbeat of trial %d skipped: database unreachable (%s)",
                            trial_id, type(e).__name__)
            self._heartbeat_failing = True
        else:
            self._heartbeat_failing = False

    def _stored_trial(self, trial_id: int) -> FrozenTrial:
        """The trial as the database holds it (retried)."""
        return self.retry("get_trial", lambda: RDBStorage.get_trial(self, trial_id))

    def get_trial(self, trial_id: int) -> FrozenTrial:
        try:
            trial = self._stored_trial(trial_id)
        except Exception as e:
            # Telling a trial reads it before and after writing: past the deadline, this
            # process's own view of its trial lets the result reach the journal.
            known = self._known.get(trial_id)
            if known is None or not is_transient(e):
                raise
            return copy.deepcopy(known)
        if ORPHAN_ATTR in trial.user_attrs and trial_id in self._known:
            # Failed as an orphan while this process still runs it: to this process it runs
            # on, and its result will be a new trial.
            return copy.deepcopy(self._known[trial_id])
        if trial.state.is_finished():
            self._known.pop(trial_id, None)
        elif trial_id not in self._journaled:
            self._known[trial_id] = trial
        return trial

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._write_or_journal(
            trial_id, {"op": "user_attr", "key": key, "value": value},
            lambda: RDBStorage.set_trial_user_attr(self, trial_id, key, value))

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._write_or_journal(
            trial_id, {"op": "system_attr", "key": key, "value": value},
            lambda: RDBStorage.set_trial_system_attr(self, trial_id, key, value))

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Any = None) -> bool:
        listed = None if values is None else [float(v) for v in values]
        write = functools.partial(self._write_state, trial_id, state, listed)
        if not state.is_finished():  # starting a trial: nothing computed yet to keep
            return self.retry("set_trial_state_values", write)
        written = self._write_or_journal(
            trial_id, {"op": "state", "state": state.name, "values": listed}, write,
            result=state == TrialState.COMPLETE)
        if written is None:
            # Journaled: written now if the database answers (the trial was failed as an
            # orphan meanwhile), else by the next replay.
            self._replay_quietly(self._journal_file(trial_id))
            return True
        return written

    def _write_state(self, trial_id: int, state: TrialState, values: list[float] | None
                     ) -> bool:
        try:
            return RDBStorage.set_trial_state_values(self, trial_id, state, values)
        except UpdateFinishedTrialError:
            # A retried write whose first try was committed but never acknowledged.
            stored = RDBStorage.get_trial(self, trial_id)
            if stored.state == state and stored.values == values:
                return True
            raise

    def _write_or_journal(self, trial_id: int, entry: dict[str, Any], write: Callable[[], R],
                          *, result: bool = True) -> R | None:
        """``write()``, retried; None when ``entry`` went to the trial's journal instead.
        ``result``: the write is part of a result to keep if the trial was failed as an
        orphan meanwhile (a failure is not)."""
        if trial_id not in self._journaled:  # a write must not overtake one already journaled
            try:
                return self.retry(entry["op"], write)
            except UpdateFinishedTrialError:
                if not result or ORPHAN_ATTR not in self._stored_trial(trial_id).user_attrs:
                    raise
            except Exception as e:
                if not is_transient(e):
                    raise
        path = self._journal_file(trial_id)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as journal:
                journal.write(json.dumps(entry) + "\n")
                journal.flush()
                os.fsync(journal.fileno())
            self._journaled.add(trial_id)
            if trial_id in self._known:
                _apply(self._known[trial_id], entry)
        log.warning("trial %d: %s kept in %s until the database takes it", trial_id,
                    entry["op"], path)
        return None

    def _journal_file(self, trial_id: int) -> Path:
        return self.journal / f"trial-{trial_id}.jsonl"

    def replay_pending(self) -> int:
        """Write every journaled result of this storage's URL; how many trials were written.
        A journal another process is writing is left to it."""
        if not self.journal.is_dir():
            return 0
        return sum(self._replay_quietly(path) for path in sorted(self.journal.glob("*.jsonl")))

    def _replay_quietly(self, path: Path) -> bool:
        try:
            return self._replay(path)
        except Exception as e:
            if not is_transient(e):
                raise
            log.warning("database unreachable; results kept in %s", path)
            return False

    def _replay(self, path: Path) -> bool:
        """Write one trial's journal and delete it; False if another process holds it."""
        try:
            journal = path.open("r+")
        except FileNotFoundError:
            return False
        with journal:
            try:
                fcntl.flock(journal, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if not path.exists() or os.stat(path).st_ino != os.fstat(journal.fileno()).st_ino:
                return False  # written and deleted by another process meanwhile
            entries = [json.loads(line) for line in journal if line.strip()]
            trial_id = int(path.stem.removeprefix("trial-"))
            self._write_entries(trial_id, entries)
            path.unlink()
        with self._lock:
            self._journaled.discard(trial_id)
            self._known.pop(trial_id, None)
        log.warning("trial %d: journaled result written from %s", trial_id, path)
        return True

    def _write_entries(self, trial_id: int, entries: list[dict[str, Any]]) -> None:
        try:
            stored = self._stored_trial(trial_id)
        except KeyError:
            log.warning("trial %d no longer exists; its journaled result is dropped", trial_id)
            return
        if not stored.state.is_finished():
            for entry in entries:
                self.retry(f"replay {entry['op']}", self._entry_write(trial_id, entry))
            return
        result = _with_entries(stored, entries)
        if result.state == TrialState.COMPLETE and stored.state != TrialState.COMPLETE:
            # Failed meanwhile (its process taken for dead): the result becomes a new trial.
            study_id = self.retry("study of a trial", lambda: self._study_of(trial_id))
            number = self.retry("re-add a trial", lambda: RDBStorage._create_new_trial(
                self, study_id, result)).number
            log.warning("trial %d was failed meanwhile; its result is trial %d",
                        stored.number, number)

    def _entry_write(self, trial_id: int, entry: dict[str, Any]) -> Callable[[], Any]:
        op = entry["op"]
        if op == "user_attr":
            return lambda: RDBStorage.set_trial_user_attr(self, trial_id, entry["key"],
                                                          entry["value"])
        if op == "system_attr":
            return lambda: RDBStorage.set_trial_system_attr(self, trial_id, entry["key"],
                                                            entry["value"])
        return lambda: self._write_state(trial_id, TrialState[entry["state"]],
                                         entry["values"])

    def _study_of(self, trial_id: int) -> int:
        # Optuna's storage API has no trial → study lookup; its own model does.
        with _create_scoped_session(self.scoped_session) as session:
            return int(optuna_models.TrialModel.find_or_raise_by_id(trial_id, session).study_id)


def _with_entries(trial: FrozenTrial, entries: list[dict[str, Any]]) -> FrozenTrial:
    """``trial`` with its journaled writes, as the template of a new trial."""
    result = copy.deepcopy(trial)
    result.user_attrs.pop(ORPHAN_ATTR, None)
    result.system_attrs[REPLACES_ATTR] = trial.number
    for entry in entries:
        _apply(result, entry)
    return result


def _apply(trial: FrozenTrial, entry: dict[str, Any]) -> None:
    """Make one journaled write on ``trial`` in memory."""
    if entry["op"] == "user_attr":
        trial.user_attrs[entry["key"]] = entry["value"]
    elif entry["op"] == "system_attr":
        trial.system_attrs[entry["key"]] = entry["value"]
    else:
        trial.state = TrialState[entry["state"]]
        trial.values = entry["values"]
        trial.datetime_complete = datetime.now()


# Every other call of Optuna's RDB storage that reaches the database, retried. The public methods
# that only delegate to one of these (create_new_trial, set_trial_param, get_all_trials,
# get_best_trial) are left alone, so no call is retried twice over; Optuna's cache calls the
# private ones directly.
_RETRIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_trial_user_attrs",
    "get_trial_system_attrs", "get_all_studies", "_create_new_trial", "_set_trial_param",
    "get_trial_param", "set_trial_intermediate_value", "get_trial_id_from_study_id_trial_number",
    "_get_trials", "_get_best_trial_id", "_get_stale_trial_ids",
)


def _retrying(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def call(self: ResilientStorage, *args: Any, **kwargs: Any) -> Any:
        return self.retry(name, lambda: method(self, *args, **kwargs))

    return call


for _name in _RETRIED:
    setattr(ResilientStorage, _name, _retrying(_name))


def open_storage(url: str | None = None, *, heartbeat: int | None = None,
                 retry_until: float | None = None) -> ResilientStorage:
    """Optuna's RDB storage with heartbeats, riding out database outages
    (:class:`ResilientStorage`, retrying until ``retry_until``), with the results journaled
    by an earlier process on this URL written.

    Heartbeats: a trial whose process died is failed after two missed heartbeats and run again
    (once per trial) by the next worker of the search. ``heartbeat`` (seconds; default: the
    ``trial_heartbeat_seconds`` setting) must be the same in every process of a search, or one
    process takes another's live trial for dead.
    """
    resolved = storage_url(url)
    interval = heartbeat or get_settings().trial_heartbeat_seconds
    # Optuna 5 marks trial heartbeats experimental; the search's resume relies on them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        storage = _created(lambda: ResilientStorage(
            resolved,
            retry_until=retry_until,
            journal=journal_dir(resolved),
            heartbeat_interval=interval,
            grace_period=2 * interval,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            engine_kwargs={"pool_pre_ping": True},
        ))
    storage.replay_pending()
    return storage


def fail_orphan_trials(storage: RDBStorage, name: str, *, reason: str) -> list[int]:
    """Fail every running trial of the study ``name``, recording ``reason`` (user attribute
    :data:`ORPHAN_ATTR`), and queue each for one more run as Optuna's heartbeat would (the
    storage's stale-trial callback); the numbers of the trials failed.

    Call only while no process may run trials of the study (its job is held by the caller):
    a trial still running somewhere is failed too, and its result comes back as a new trial.
    """
    if not study_exists(storage, name):
        return []
    study = optuna.load_study(study_name=name, storage=storage)
    retry = storage.get_heartbeat_stale_trial_callback()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        try:
            # RDBStorage's own writes: a ResilientStorage would journal them rather than fail
            # on a trial another sweeper failed first.
            RDBStorage.set_trial_user_attr(storage, trial._trial_id, ORPHAN_ATTR, reason)
            if not RDBStorage.set_trial_state_values(storage, trial._trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # it finished meanwhile
        failed.append(trial.number)
        if retry is not None:
            retry(study, trial)  # the trial as it ran: the retry does not inherit the reason
    return failed


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
