"""The job table's persistence functions on real SQLite and PostgreSQL databases: claiming under
contention, heartbeats, cancelling, re-queueing jobs of dead workers (taken by one sweeper,
then settled), releasing jobs without spending attempts."""

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


def _go_silent(db: Database, job_id: str) -> None:
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id)
                        .values(heartbeat_at=utcnow().replace(year=2000)))


def _sweep(db: Database, *, max_attempts: int) -> dict[str, str | None]:
    """What a sweeper does, without trials: take the stale jobs, then settle each."""
    with db.session() as session:
        taken = jobs.take_stale(session, timeout=60, sweeper="sweeper")
    with db.session() as session:
        return {job.id: jobs.settle_stale(session, job_id=job.id, sweeper="sweeper",
                                          max_attempts=max_attempts) for job in taken}


def test_stale_jobs_requeue_then_fail_after_max_attempts(db: Database) -> None:
    (job_id,) = _queue(db, 1)

    def claim_and_go_silent() -> None:
        with db.session() as session:
            assert jobs.claim_next(session, worker="dead").id == job_id
        _go_silent(db, job_id)

    for attempt in (1, 2):
        claim_and_go_silent()
        assert _sweep(db, max_attempts=3) == {job_id: "queued"}
        with db.session() as session:
            job = jobs.get_job(session, job_id=job_id)
            assert (job.status, job.attempts, job.worker) == ("queued", attempt, None)
    claim_and_go_silent()
    assert _sweep(db, max_attempts=3) == {job_id: "failed"}
    with db.session() as session:
        job = jobs.get_job(session, job_id=job_id)
        assert job.status == "failed" and "3 times" in job.error


def test_a_taken_stale_job_is_the_sweepers_alone(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    with db.session() as session:
        jobs.claim_next(session, worker="dead")
    _go_silent(db, job_id)
    with db.session() as session:
        assert [job.id for job in jobs.take_stale(session, timeout=60, sweeper="a")] == [job_id]
    with db.session() as session:
        assert jobs.take_stale(session, timeout=60, sweeper="b") == []
        assert jobs.heartbeat(session, job_id=job_id, worker="dead") is None
        assert not jobs.finish_job(session, job_id=job_id, worker="dead", status="succeeded")
        assert jobs.settle_stale(session, job_id=job_id, sweeper="b", max_attempts=3) is None
        assert jobs.settle_stale(session, job_id=job_id, sweeper="a", max_attempts=3) == "queued"


def test_a_stale_job_whose_cancel_was_asked_ends_cancelled(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    with db.session() as session:
        jobs.claim_next(session, worker="dead")
        jobs.request_cancel(session, job_id=job_id)
    _go_silent(db, job_id)
    assert _sweep(db, max_attempts=3) == {job_id: "cancelled"}


def test_graceful_releases_spend_no_attempt(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    for _ in range(3):  # say, a SIGTERM and two rolling restarts
        with db.session() as session:
            assert jobs.claim_next(session, worker="w").id == job_id
            assert jobs.release_job(session, job_id=job_id, worker="w")
            assert jobs.get_job(session, job_id=job_id).attempts == 0
    with db.session() as session:
        jobs.claim_next(session, worker="dead")
    _go_silent(db, job_id)
    assert _sweep(db, max_attempts=2) == {job_id: "queued"}  # the first crash, not the fourth


def test_fresh_heartbeats_keep_the_job(db: Database) -> None:
    (job_id,) = _queue(db, 1)
    with db.session() as session:
        jobs.claim_next(session, worker="alive")
    time.sleep(0.05)
    assert _sweep(db, max_attempts=3) == {}
    with db.session() as session:
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
