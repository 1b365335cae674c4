"""The job table's persistence functions on real SQLite and PostgreSQL databases: claiming under
contention, heartbeats, cancelling, re-queueing jobs of dead workers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import tiny_spec
from sqlalchemy import update

from autoq.search import SearchSpec
from service import jobs
from service.db import Database
from service.errors import ConflictError
from service.models import Job, utcnow


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


def _queue(db: Database, count: int) -> list[str]:
    spec = SearchSpec.model_validate(tiny_spec())
    with db.session() as session:
        return [jobs.create_job(session, spec=spec, trials=2).id for _ in range(count)]


def test_concurrent_claims_take_every_job_exactly_once(db: Database) -> None:
    queued = _queue(db, 24)
    claims: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claim_all(worker: str) -> None:
        while True:
            with db.session() as session:
                job = jobs.claim_next(session, worker=worker)
            if job is None:
                return
            with lock:
                claims.append((job.id, worker))

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(job for job, _ in claims) == Counter(queued)
    with db.session() as session:
        page, count = jobs.list_jobs(session, status="running", limit=100)
    assert count == 24
    assert {job.id: job.worker for job in page} == dict(claims)
    assert all(job.attempts == 1 and job.started_at is not None for job in page)


def test_claims_go_oldest_first(db: Database) -> None:
    first, second = _queue(db, 2)
    with db.session() as session:
        assert jobs.claim_next(session, worker="w").id == first
        assert jobs.claim_next(session, worker="w").id == second
        assert jobs.claim_next(session, worker="w") is None


def test_cancel_ends_a_queued_job_at_once_and_flags_a_running_one(db: Database) -> None:
    running, waiting = _queue(db, 2)
    with db.session() as session:
        jobs.claim_next(session, worker="w")
        assert jobs.request_cancel(session, job_id=waiting).status == "cancelled"
        flagged = jobs.request_cancel(session, job_id=running)
        assert flagged.status == "running" and flagged.cancel_requested
        assert jobs.heartbeat(session, job_id=running, worker="w") is True
        assert jobs.request_cancel(session, job_id=waiting).status == "cancelled"


def test_cancelling_a_finished_job_is_a_conflict(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    with db.session() as session:
        jobs.claim_next(session, worker="w")
        jobs.finish_job(session, job_id=job_id, worker="w", status="succeeded")
    with db.session() as session, pytest.raises(ConflictError):
        jobs.request_cancel(session, job_id=job_id)


def test_heartbeat_and_finish_need_the_holding_worker(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    with db.session() as session:
        jobs.claim_next(session, worker="a")
        assert jobs.heartbeat(session, job_id=job_id, worker="b") is None
        assert not jobs.finish_job(session, job_id=job_id, worker="b", status="succeeded")
        assert jobs.heartbeat(session, job_id=job_id, worker="a") is False
        assert jobs.finish_job(session, job_id=job_id, worker="a", status="succeeded")
        assert jobs.get_job(session, job_id=job_id).status == "succeeded"


def test_stale_jobs_requeue_then_fail_after_max_attempts(db: Database) -> None:
    (job_id,) = _queue(db, 1)

    def claim_and_go_silent() -> None:
        with db.session() as session:
            assert jobs.claim_next(session, worker="dead").id == job_id
            session.execute(update(Job).where(Job.id == job_id)
                            .values(heartbeat_at=utcnow().replace(year=2000)))

    for attempt in (1, 2):
        claim_and_go_silent()
        with db.session() as session:
            assert jobs.requeue_stale(session, timeout=60, max_attempts=3) == 1
            job = jobs.get_job(session, job_id=job_id)
            assert (job.status, job.attempts, job.worker) == ("queued", attempt, None)
    claim_and_go_silent()
    with db.session() as session:
        assert jobs.requeue_stale(session, timeout=60, max_attempts=3) == 1
        job = jobs.get_job(session, job_id=job_id)
        assert job.status == "failed" and "3 times" in job.error


def test_fresh_heartbeats_keep_the_job(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    with db.session() as session:
        jobs.claim_next(session, worker="alive")
    time.sleep(0.05)
    with db.session() as session:
        assert jobs.requeue_stale(session, timeout=60, max_attempts=3) == 0
        assert jobs.get_job(session, job_id=job_id).status == "running"


def test_release_requeues_unless_cancel_was_asked(db: Database) -> None:
    kept, cancelled = _queue(db, 2)
    with db.session() as session:
        jobs.claim_next(session, worker="w")
        jobs.claim_next(session, worker="w")
        jobs.request_cancel(session, job_id=cancelled)
        assert jobs.release_job(session, job_id=kept, worker="w")
        assert jobs.release_job(session, job_id=cancelled, worker="w")
        assert jobs.get_job(session, job_id=kept).status == "queued"
        assert jobs.get_job(session, job_id=cancelled).status == "cancelled"
