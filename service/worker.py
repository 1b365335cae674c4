"""Job workers: claim a queued search, run it with :func:`autoq.search.run_search`, record how
it ended; and the sweeper that takes back the jobs of dead workers.

Claiming is one atomic statement (:func:`service.jobs.claim_next`). While a job runs, a
heartbeat thread stamps it every ``job_heartbeat_seconds`` and picks up a cancel request; the
search polls :meth:`JobWorker.should_stop` after every trial, so a cancel takes effect at the
next trial boundary. A worker that dies stops stamping: after ``job_heartbeat_timeout`` a
:class:`StaleJobSweeper` (one runs on a timer in every worker process and in the API process)
fails the trial it left running and re-queues the job; the next claim resumes the study by
name, keeping every finished trial and running the cut-off one again. A worker stopped
gracefully hands its job back at once, without spending an attempt.

Database outages: a worker never exits on a transient database error. It backs off and tries
again; its search's storage retries every call until the job's time cap and keeps a result it
cannot write on disk (:class:`autoq.search.storage.ResilientStorage`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import optuna
from sqlalchemy.exc import SQLAlchemyError

from autoq.search import SearchSpec, finished_trials
from autoq.search.executors import ExecutorOptions
from autoq.search.records import ERROR_ATTR
from autoq.search.storage import ResilientStorage, fail_orphan_trials, is_transient, open_storage
from service import jobs
from service.config import Settings
from service.db import Database
from service.models import Job

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
RELEASED = "its worker stopped (the job went back to the queue)"
STALE = "its worker stopped responding"


def worker_name() -> str:
    """A name no other worker has: host, process, and a random suffix for threads."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def until_done(action: Callable[[], T], *, stop: threading.Event, what: str) -> T | None:
    """``action()``, tried again with backoff (0.5 s doubling to 30 s) while the database is
    out of reach; None if ``stop`` is set first."""
    delay = FIRST_BACKOFF
    while True:
        try:
            return action()
        except Exception as e:
            if not is_transient(e):
                raise
            log.warning("%s: database unreachable (%s); trying again in %g s", what,
                        type(e).__name__, delay)
        if stop.wait(delay):
            return None
        delay = min(2 * delay, MAX_BACKOFF)


class StaleJobSweeper:
    """Takes back, every ``job_heartbeat_seconds``, the jobs whose worker stopped stamping for
    ``job_heartbeat_timeout``: fails the trial each left running (with the reason, queued for
    one more run) and re-queues the job (cancelled if asked, failed after ``max_attempts``
    crashes).

    After its start and after every outage it waits until it has reached the database for a
    whole ``job_heartbeat_timeout``: the workers could not stamp during the outage either, and
    get that long to stamp again before their jobs count as stale.

    Args:
        db: the shared database.
        settings: heartbeat settings.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.name = f"sweeper:{worker_name()}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autoq-stale-sweeper",
                                        daemon=True)
        self._storage: ResilientStorage | None = None

    def start(self) -> StaleJobSweeper:
        """Start sweeping on a thread; returns the sweeper."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sweeping (a sweep under way finishes on its daemon thread)."""
        self._stop.set()

    def sweep(self) -> list[Job]:
        """Take back every stale job now; the jobs taken, with their new status."""
        with self.db.session() as session:
            taken = jobs.take_stale(session, timeout=self.settings.job_heartbeat_timeout,
                                    sweeper=self.name)
        for job in taken:
            failed = fail_orphan_trials(self._optuna(), job.name, reason=STALE)
            with self.db.session() as session:
                status = jobs.settle_stale(session, job_id=job.id, sweeper=self.name,
                                           max_attempts=self.settings.max_attempts)
            log.warning("job %s (%s): its worker stopped responding; trials %s failed; "
                        "job %s", job.id, job.name, failed, status)
            if status is not None:
                job.status = status
        return taken

    def _optuna(self) -> ResilientStorage:
        # Opened on first use: its stale-trial callback queues the failed trials again.
        if self._storage is None:
            self._storage = open_storage(self.db.url)
        return self._storage

    def _run(self) -> None:
        reachable_since: float | None = None
        while not self._stop.wait(self.settings.job_heartbeat_seconds):
            try:
                if reachable_since is None:
                    self.db.ping()
                    reachable_since = time.monotonic()
                if time.monotonic() - reachable_since >= self.settings.job_heartbeat_timeout:
                    self.sweep()
            except Exception as e:
                if not is_transient(e):
                    # Whatever went wrong, the next period sweeps again.
                    log.exception("stale-job sweep failed")
                    continue
                if reachable_since is not None:
                    log.warning("stale-job sweep: database unreachable (%s); sweeping again "
                                "%g s after it is back", type(e).__name__,
                                self.settings.job_heartbeat_timeout)
                reachable_since = None


@dataclass
class _Flags:
    cancel: bool = False
    lost: bool = False


class JobWorker:
    """Runs queued jobs one after another until ``stop`` is set.

    Args:
        db: the shared database.
        settings: heartbeat, time cap and polling settings.
        stop: set to stop after the current trial (the job then goes back to the queue).
    """

    def __init__(self, db: Database, settings: Settings, *,
                 stop: threading.Event | None = None) -> None:
        self.db = db
        self.settings = settings
        self.stop = stop or threading.Event()
        self.name = worker_name()
        self.current: Job | None = None

    def run(self) -> None:
        """Claim and run jobs until :attr:`stop` is set; a database outage is waited out."""
        delay = FIRST_BACKOFF
        while not self.stop.is_set():
            try:
                ran = self.run_next()
            except Exception as e:
                if not is_transient(e):
                    raise
                log.warning("worker %s: database unreachable (%s); trying again in %g s",
                            self.name, type(e).__name__, delay)
                self.stop.wait(delay)
                delay = min(2 * delay, MAX_BACKOFF)
                continue
            delay = FIRST_BACKOFF
            if not ran:
                self.stop.wait(self.settings.poll_seconds)

    def run_next(self) -> bool:
        """Claim one job and run it; False when the queue was empty."""
        with self.db.session() as session:
            job = jobs.claim_next(session, worker=self.name)
        if job is None:
            return False
        log.info("worker %s runs job %s (%s), attempt %d", self.name, job.id, job.name,
                 job.attempts)
        self.run_job(job)
        return True

    def release(self) -> None:
        """Hand the current job back to the queue without spending an attempt, failing the
        trial it leaves running (call when shutting down). A database that does not answer
        leaves the job to the stale sweep."""
        job, self.current = self.current, None
        if job is None:
            return
        try:
            self._settle(job, None, None, None)
        except Exception as e:
            if not is_transient(e):
                raise
            log.warning("job %s not released (database unreachable); the stale sweep takes "
                        "it back", job.id)

    def run_job(self, job: Job) -> None:
        """Run a claimed job to its end, a cancel, the time cap, or a shutdown."""
        self.current = job
        flags = _Flags()
        beating = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job.id, flags, beating),
                                name=f"heartbeat-{job.id[:8]}", daemon=True)
        assert job.started_at is not None
        deadline = job.started_at.timestamp() + self.settings.limit_job_seconds

        def should_stop() -> bool:
            try:
                self._stamp(job.id, flags)
            except SQLAlchemyError as e:
                if not is_transient(e):
                    raise
                # Missed: the heartbeat thread keeps trying, the next trial boundary asks again.
            return (flags.cancel or flags.lost or self.stop.is_set()
                    or time.time() > deadline)

        beat.start()
        storage: ResilientStorage | None = None
        try:
            # Training loads torch: imported here, so the API process (which imports this
            # module for its in-process workers) starts without it.
            from autoq.search import run_search

            spec = SearchSpec.model_validate(job.spec)
            storage = open_storage(self.db.url, retry_until=deadline)
            study = run_search(spec, name=job.name, storage=storage, trials=job.trials,
                               options=ExecutorOptions(ray_address=self.settings.ray_address),
                               artifact_dir=self.settings.artifact_dir,
                               should_stop=should_stop, data_root=self.settings.data_root)
            status, error = self._outcome(job, study, flags, deadline)
        except Exception as e:
            if is_transient(e) and time.time() < deadline:
                log.warning("job %s stopped by a database outage; it goes back to the queue",
                            job.id)
                status, error = None, None
            else:
                log.exception("job %s failed", job.id)
                status, error = "failed", f"{type(e).__name__}: {e}"
        except BaseException:
            self.release()
            raise
        finally:
            beating.set()
            beat.join()
        until_done(lambda: self._settle(job, storage, status, error), stop=self.stop,
                   what=f"recording the end of job {job.id}")
        self.current = None

    def _settle(self, job: Job, storage: ResilientStorage | None, status: str | None,
                error: str | None) -> None:
        """Record how a job ended if this worker still holds it: its journaled results
        written, no trial left running, then the job finished or (status None) back in the
        queue without spending an attempt."""
        if storage is not None:
            storage.replay_pending()
        with self.db.session() as session:
            if jobs.heartbeat(session, job_id=job.id, worker=self.name) is None:
                log.warning("job %s is no longer held by worker %s", job.id, self.name)
                return
        # Trials first: once the job is queued, another worker may claim it and start trials.
        fail_orphan_trials(storage or open_storage(self.db.url), job.name,
                           reason=RELEASED if status is None else f"its job {status}")
        with self.db.session() as session:
            if status is None:
                jobs.release_job(session, job_id=job.id, worker=self.name)
            else:
                jobs.finish_job(session, job_id=job.id, worker=self.name, status=status,
                                error=error)

    def _outcome(self, job: Job, study: optuna.Study, flags: _Flags, deadline: float
                 ) -> tuple[str | None, str | None]:
        """How a search that returned ended: ``(status, error)``; status None means it was
        interrupted by a shutdown and goes back to the queue."""
        done = finished_trials(study)
        if flags.cancel:
            return "cancelled", None
        if done < job.trials and self.stop.is_set():
            return None, None
        if done < job.trials and time.time() > deadline:
            return "failed", (f"time cap of {self.settings.limit_job_seconds:g} s reached after "
                              f"{done} of {job.trials} trials")
        trials = study.get_trials(deepcopy=False)
        if done and not any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
            errors = [t.user_attrs[ERROR_ATTR] for t in trials if ERROR_ATTR in t.user_attrs]
            return "failed", f"every trial failed; last error: {errors[-1]}"
        return "succeeded", None

    def _stamp(self, job_id: str, flags: _Flags) -> None:
        with self.db.session() as session:
            cancel = jobs.heartbeat(session, job_id=job_id, worker=self.name)
        if cancel is None:
            flags.lost = True
        else:
            flags.cancel = flags.cancel or cancel

    def _beat(self, job_id: str, flags: _Flags, beating: threading.Event) -> None:
        while not beating.wait(self.settings.job_heartbeat_seconds):
            try:
                self._stamp(job_id, flags)
            except SQLAlchemyError as e:
                # A database hiccup must not kill the heartbeat; a lasting outage shows as
                # missed heartbeats, and the job is re-queued.
                if not is_transient(e):
                    log.exception("heartbeat of job %s failed", job_id)


class WorkerPool:
    """``count`` workers on threads of this process (``autoq serve``'s embedded workers).

    Args:
        db: the shared database.
        settings: worker settings.
        count: number of worker threads (0: none).
    """

    def __init__(self, db: Database, settings: Settings, *, count: int) -> None:
        self.stop = threading.Event()
        self.workers = [JobWorker(db, settings, stop=self.stop) for _ in range(count)]
        self.threads = [threading.Thread(target=w.run, name=f"autoq-worker-{i}", daemon=True)
                        for i, w in enumerate(self.workers)]

    def start(self) -> None:
        """Start every worker thread."""
        for thread in self.threads:
            thread.start()

    def shutdown(self) -> None:
        """Stop claiming and hand running jobs back to the queue at once; a trial in flight is
        abandoned (the next run of its search retries it)."""
        self.stop.set()
        for worker in self.workers:
            worker.release()

