"""Persistence of search jobs: every read and write of ``autoq_jobs`` lives here.

Each function takes the session first and keyword-only arguments after it, and leaves the commit
to the caller's session context. Writes that race with other processes (claiming, cancelling,
finishing) are single conditional ``UPDATE`` statements, so they are atomic on PostgreSQL and on
SQLite alike; a function that reads after writing does so only once it holds the row.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import CursorResult, Update, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from autoq.search import SearchSpec
from service.errors import ConflictError, NotFoundError
from service.models import FINAL_STATES, Job, JobStatus, utcnow


def create_job(session: Session, *, spec: SearchSpec, trials: int, name: str | None = None
               ) -> Job:
    """Queue a search. Its study is named ``name``, else after the spec and the job id.

    Raises:
        ConflictError: another job already uses ``name``.
    """
    job_id = str(uuid.uuid4())
    job = Job(id=job_id, name=name or f"{spec.name}-{job_id[:8]}",
              spec=spec.model_dump(mode="json"), trials=trials, status="queued",
              cancel_requested=False, attempts=0, created_at=utcnow())
    session.add(job)
    try:
        session.flush()
    except IntegrityError as e:
        raise ConflictError(f"a search named {job.name!r} exists already; choose another name",
                       loc=("body", "name")) from e
    return job


def get_job(session: Session, *, job_id: str) -> Job:
    """The job ``job_id``; NotFoundError if there is none."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no search with id {job_id}", loc=("path", "search_id"))
    return job


def list_jobs(session: Session, *, status: str | None = None, offset: int = 0, limit: int = 50
              ) -> tuple[list[Job], int]:
    """A page of jobs, newest first, and how many match ``status`` in all (their specs are not
    read: a listing does not show them, and they are most of a row)."""
    query = select(Job).options(defer(Job.spec))
    counter = select(func.count()).select_from(Job)
    if status is not None:
        query = query.where(Job.status == status)
        counter = counter.where(Job.status == status)
    page = session.scalars(query.order_by(Job.created_at.desc(), Job.id)
                           .offset(offset).limit(limit))
    return list(page), session.scalar(counter) or 0


def request_cancel(session: Session, *, job_id: str) -> Job:
    """Cancel a job: a queued one at once, a running one at its next trial boundary (its
    worker polls ``cancel_requested``). Cancelling a cancelled job changes nothing.

    Raises:
        NotFoundError: no such job.
        ConflictError: the job has succeeded or failed already.
    """
    now = utcnow()
    cancelled = _updated(session, update(Job).where(Job.id == job_id, Job.status == "queued")
                         .values(status="cancelled", cancel_requested=True, finished_at=now))
    if not cancelled:
        session.execute(update(Job).where(Job.id == job_id, Job.status == "running")
                        .values(cancel_requested=True))
    job = get_job(session, job_id=job_id)
    session.refresh(job)
    if job.status in ("succeeded", "failed"):
        raise ConflictError(f"search {job_id} has {job.status} already", loc=("path", "search_id"))
    return job


def claim_next(session: Session, *, worker: str) -> Job | None:
    """Take the oldest queued job for ``worker``, or None when the queue is empty.

    One ``UPDATE … WHERE id = (oldest queued) RETURNING``: on PostgreSQL the inner select
    locks its row with ``FOR UPDATE SKIP LOCKED``, so concurrent workers each get a different
    job without waiting; SQLite takes its single writer lock before the statement reads, so the
    statement is a claim no other writer can interleave with (``FOR UPDATE`` is not rendered
    there).
    """
    now = utcnow()
    oldest = (select(Job.id).where(Job.status == "queued")
              .order_by(Job.created_at, Job.id).limit(1)
              .with_for_update(skip_locked=True).scalar_subquery())
    claimed = session.scalars(
        update(Job).where(Job.id == oldest, Job.status == "queued")
        .values(status="running", worker=worker, attempts=Job.attempts + 1, heartbeat_at=now,
                started_at=func.coalesce(Job.started_at, now))
        .returning(Job)
        .execution_options(synchronize_session=False))
    return claimed.first()


def heartbeat(session: Session, *, job_id: str, worker: str) -> bool | None:
    """Stamp the job ``worker`` runs. Returns whether its cancellation was asked for, or None
    when the worker no longer holds the job (it was re-queued after missed heartbeats)."""
    return session.scalars(
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running")
        .values(heartbeat_at=utcnow())
        .returning(Job.cancel_requested)).first()


def finish_job(session: Session, *, job_id: str, worker: str, status: str,
               error: str | None = None) -> bool:
    """Record the end of a job ``worker`` holds; False if it no longer holds it."""
    if status not in FINAL_STATES:
        raise ValueError(f"status must be one of {FINAL_STATES}, got {status!r}")
    done = _updated(
        session,
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running")
        .values(status=status, error=error, finished_at=utcnow(), worker=None))
    return bool(done)


def release_job(session: Session, *, job_id: str, worker: str) -> bool:
    """Put a job ``worker`` holds back in the queue (the worker is shutting down) without
    spending an attempt: only crashes count towards ``max_attempts``. A job whose cancellation
    was asked for ends cancelled instead. False if ``worker`` did not hold it."""
    now = utcnow()
    cancelled = _updated(
        session,
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running",
                          Job.cancel_requested)
        .values(status="cancelled", finished_at=now, worker=None))
    if cancelled:
        return True
    queued = _updated(
        session,
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running")
        .values(status="queued", worker=None, heartbeat_at=None, attempts=Job.attempts - 1))
    return bool(queued)


def take_stale(session: Session, *, timeout: float, sweeper: str) -> list[Job]:
    """Jobs whose worker stopped stamping for ``timeout`` seconds, now held by ``sweeper``:
    their old worker can no longer stamp or finish them, and no other sweeper takes them, so
    the sweeper can clear their trials before :func:`settle_stale` (a sweeper that dies
    between the two goes silent, and another one takes the jobs over)."""
    cutoff = utcnow() - timedelta(seconds=timeout)
    taken = session.scalars(
        update(Job).where(Job.status == "running", Job.heartbeat_at < cutoff)
        .values(worker=sweeper, heartbeat_at=utcnow())
        .returning(Job)
        .execution_options(synchronize_session=False))
    return list(taken)


def settle_stale(session: Session, *, job_id: str, sweeper: str, max_attempts: int
                 ) -> JobStatus | None:
    """End a job :func:`take_stale` gave ``sweeper``: cancelled if that was asked for, failed
    once its worker died ``max_attempts`` times, else back in the queue (the next run resumes
    the study). Its new status; None if ``sweeper`` does not hold it."""
    now = utcnow()
    held = (Job.id == job_id) & (Job.worker == sweeper) & (Job.status == "running")
    for condition, values in (
        (Job.cancel_requested, {"status": "cancelled", "finished_at": now}),
        (Job.attempts >= max_attempts,
         {"status": "failed", "finished_at": now,
          "error": f"its worker stopped responding {max_attempts} times"}),
        (None, {"status": "queued", "heartbeat_at": None}),
    ):
        where = held if condition is None else held & condition
        settled = session.scalars(update(Job).where(where).values(worker=None, **values)
                                  .returning(Job.status)
                                  .execution_options(synchronize_session=False)).first()
        if settled is not None:
            return settled
    return None


def _updated(session: Session, statement: Update) -> int:
    """Run an ``UPDATE`` without ``RETURNING``; the number of rows it matched."""
    result = session.execute(statement)
    # Session.execute is typed as returning a Result; for DML without RETURNING it is a
    # CursorResult, the one that has the row count.
    if not isinstance(result, CursorResult):
        raise TypeError(f"expected a CursorResult from an UPDATE, got {type(result).__name__}")
    return result.rowcount
