"""A job worker in this process: how a job ends when the search cannot start, and when it
reaches the per-job time cap (SQLite); the stale-job sweeper taking back a dead worker's job and
its running trial; an idle worker waiting out a PostgreSQL outage."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest
from harness import study_progress, tiny_spec, wait_for
from optuna.trial import TrialState
from sqlalchemy import update
from tcp_proxy import TcpProxy

from autoq.search import SearchSpec
from autoq.search.records import ORPHAN_ATTR
from autoq.search.storage import open_storage
from service import jobs
from service.config import Settings
from service.db import Database
from service.models import Job, utcnow
from service.worker import JobWorker, StaleJobSweeper


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'worker.db'}")
    database.migrate()
    return database


def _submit(db: Database, spec: dict, *, trials: int) -> str:
    with db.session() as session:
        return jobs.create_job(session, spec=SearchSpec.model_validate(spec), trials=trials).id


def test_job_whose_search_cannot_start_fails_with_the_reason(db: Database, tmp_path: Path
                                                             ) -> None:
    spec = tiny_spec(path=str(tmp_path / "missing.h5"))
    del spec["data"]["generate"]
    job_id = _submit(db, spec, trials=2)
    assert JobWorker(db, Settings(storage=db.url)).run_next()
    with db.session() as session:
        job = jobs.get_job(session, job_id=job_id)
    assert job.status == "failed"
    assert "DataError" in job.error and "missing.h5" in job.error
    assert not JobWorker(db, Settings(storage=db.url)).run_next()


def test_time_cap_fails_the_job_at_a_trial_boundary_keeping_its_trials(
    db: Database, tmp_path: Path, float_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOQ_CACHE_DIR", str(float_cache))
    job_id = _submit(db, tiny_spec(path=str(tmp_path / "burgers.h5")), trials=3)
    worker = JobWorker(db, Settings(storage=db.url, limit_job_seconds=0.001))
    assert worker.run_next()
    with db.session() as session:
        job = jobs.get_job(session, job_id=job_id)
    assert job.status == "failed"
    assert "time cap" in job.error and "after 1 of 3 trials" in job.error
    assert study_progress(db.optuna_storage(), name=job.name).complete == 1


def test_sweeper_fails_the_running_trial_of_a_dead_workers_job_and_requeues_it(
    db: Database, float_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOQ_CACHE_DIR", str(float_cache))
    job_id = _submit(db, tiny_spec(), trials=2)
    with db.session() as session:
        job = jobs.claim_next(session, worker="dead")
    study = optuna.create_study(study_name=job.name, storage=open_storage(db.url),
                                directions=["minimize", "minimize"])
    study.enqueue_trial({"scale": 0.5})
    cut_off = study.ask()  # the trial the dead worker was running
    cut_off.suggest_categorical("scale", [1.0, 0.5])
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id)
                        .values(heartbeat_at=utcnow().replace(year=2000)))

    swept = StaleJobSweeper(db, Settings(storage=db.url)).sweep()

    assert [(job.id, job.status) for job in swept] == [(job_id, "queued")]
    failed, retry = study.get_trials()
    assert failed.state == TrialState.FAIL and "stopped responding" in failed.user_attrs[
        ORPHAN_ATTR]
    assert retry.state == TrialState.WAITING and retry.params == {"scale": 0.5}
    assert study_progress(db.optuna_storage(), name=job.name).running == 0
    assert StaleJobSweeper(db, Settings(storage=db.url)).sweep() == []


@pytest.mark.postgres
def test_an_idle_worker_waits_out_a_database_outage(pg_url: str, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    Database(pg_url).migrate()
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        db = Database(pg_url.replace(":5432/", f":{proxy.port}/"))
        worker = JobWorker(db, Settings(storage=db.url, poll_seconds=0.1))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            proxy.cut()
            time.sleep(3)  # the outage: the worker polls the queue every 0.1 s meanwhile
            assert thread.is_alive()
            assert "database unreachable" in caplog.text
            proxy.restore()
            spec = tiny_spec(path=str(tmp_path / "missing.h5"))
            del spec["data"]["generate"]
            job_id = _submit(Database(pg_url), spec, trials=1)

            def ended() -> bool:
                with Database(pg_url).session() as session:
                    return jobs.get_job(session, job_id=job_id).status == "failed"

            wait_for(ended, timeout=60, what="the worker to take the job after the outage")
            assert thread.is_alive()
        finally:
            worker.stop.set()
            thread.join(timeout=30)
            db.dispose()
