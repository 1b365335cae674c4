"""A job worker in this process on SQLite: how a job ends when the search cannot start, and when
it reaches the per-job time cap."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import tiny_spec

from autoq.search import SearchSpec
from service import jobs
from service.config import Settings
from service.db import Database
from service.studies import study_progress
from service.worker import JobWorker


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
    worker = JobWorker(db, Settings(storage=db.url, max_job_seconds=0.001))
    assert worker.run_next()
    with db.session() as session:
        job = jobs.get_job(session, job_id=job_id)
    assert job.status == "failed"
    assert "time cap" in job.error and "after 1 of 3 trials" in job.error
    assert study_progress(db.optuna_storage(), name=job.name).complete == 1
