"""Job workers: claim a queued search, run it with :func:`autoq.search.run_search`, record how
it ended.

Claiming is one atomic statement (:func:`service.jobs.claim_next`). While a job runs, a
heartbeat thread stamps it every ``job_heartbeat_seconds`` and picks up a cancel request; the
search polls :meth:`JobWorker.should_stop` after every trial, so a cancel takes effect at the
next trial boundary. A worker that dies stops stamping: after ``job_heartbeat_timeout`` any
worker re-queues the job and the next claim resumes the study by name, keeping every finished
trial (Optuna's own heartbeat fails the trial that was cut off and retries it once).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import optuna
from sqlalchemy.exc import SQLAlchemyError

from autoq.search import SearchSpec, finished_trials
from autoq.search.executors import ExecutorOptions
from autoq.search.records import ERROR_ATTR
from service import jobs
from service.config import Settings
from service.db import Database
from service.models import Job

log = logging.getLogger(__name__)


def worker_name() -> str:
    """A name no other worker has: host, process, and a random suffix for threads."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
        self.current: str | None = None

    def run(self) -> None:
        """Claim and run jobs until :attr:`stop` is set."""
        last_sweep = -float("inf")
        while not self.stop.is_set():
            if time.monotonic() - last_sweep >= self.settings.job_heartbeat_seconds:
                with self.db.session() as session:
                    jobs.requeue_stale(session, timeout=self.settings.job_heartbeat_timeout,
                                       max_attempts=self.settings.max_attempts)
                last_sweep = time.monotonic()
            if not self.run_next():
                self.stop.wait(self.settings.poll_seconds)

    def run_next(self) -> bool:
        """Claim one job and run it; False when the queue was empty."""
        with self.db.session() as session:
            job = jobs.claim_next(session, worker=self.name)
        if job is None:
            return False
        self.current = job.id
        log.info("worker %s runs job %s (%s), attempt %d", self.name, job.id, job.name,
                 job.attempts)
        self.run_job(job)
        return True

    def release(self) -> None:
        """Hand the current job back to the queue (call when shutting down)."""
        job_id = self.current
        if job_id is not None:
            with self.db.session() as session:
                jobs.release_job(session, job_id=job_id, worker=self.name)

    def run_job(self, job: Job) -> None:
        """Run a claimed job to its end, a cancel, the time cap, or a shutdown."""
        self.current = job.id
        flags = _Flags()
        beating = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job.id, flags, beating),
                                name=f"heartbeat-{job.id[:8]}", daemon=True)
        assert job.started_at is not None
        deadline = job.started_at.timestamp() + self.settings.max_job_seconds

        def should_stop() -> bool:
            self._stamp(job.id, flags)
            return (flags.cancel or flags.lost or self.stop.is_set()
                    or time.time() > deadline)

        beat.start()
        try:
            # Training loads torch: imported here, so the API process (which imports this
            # module for its in-process workers) starts without it.
            from autoq.search import run_search

            spec = SearchSpec.model_validate(job.spec)
            study = run_search(spec, name=job.name, storage=self.db.url, trials=job.trials,
                               options=ExecutorOptions(ray_address=self.settings.ray_address),
                               artifact_dir=self.settings.artifact_dir,
                               should_stop=should_stop)
            status, error = self._outcome(job, study, flags, deadline)
        except Exception as e:
            log.exception("job %s failed", job.id)
            status, error = "failed", f"{type(e).__name__}: {e}"
        except BaseException:
            self.release()
            raise
        finally:
            beating.set()
            beat.join()
        with self.db.session() as session:
            if flags.lost:
                log.warning("job %s is no longer held by worker %s", job.id, self.name)
            elif status is None:
                jobs.release_job(session, job_id=job.id, worker=self.name)
            else:
                jobs.finish_job(session, job_id=job.id, worker=self.name, status=status,
                                error=error)
        self.current = None

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
            return "failed", (f"time cap of {self.settings.max_job_seconds:g} s reached after "
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
            except SQLAlchemyError:
                # A database hiccup must not kill the heartbeat; a lasting outage shows as
                # missed heartbeats, and the job is re-queued.
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

