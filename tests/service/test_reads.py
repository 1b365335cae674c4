"""The service's reads of its studies (``service/studies.py``): trial counts and trial points agree
with Optuna's reading of the whole study on SQLite and PostgreSQL, the points served again from
memory follow the study as it is written, and a GET issues as many SQL statements with 30 jobs
(or trials) as with 3."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from harness import Service, study_progress, tiny_spec, wait_for
from optuna.trial import TrialState, create_trial
from sqlalchemy import Engine, event

from autoq.deploy.latency import store_trial_attr
from autoq.search import SearchSpec
from autoq.search.records import (
    BITS_ATTR,
    DIRECTIONS,
    ERROR_ATTR,
    LATENCY_ATTR,
    MAX_MSE_CONSTRAINT,
    SCALE_PARAM,
    TrialPoint,
)
from autoq.search.results import pareto_front, study_points
from autoq.search.storage import rdb_storage
from service import jobs
from service.app import create_app
from service.config import Settings
from service.db import Database
from service.schemas import TrialPublic
from service.studies import study_trials, trial_counts

SCALES = optuna.distributions.CategoricalDistribution([1.0, 0.5])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reads.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def writer(db: Database) -> optuna.storages.RDBStorage:
    """Optuna's storage of a worker: another engine than the service's."""
    return rdb_storage(db.url)


def _study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    return optuna.create_study(storage=storage, study_name=name, directions=list(DIRECTIONS))


def _ask(study: optuna.Study, scale: float) -> optuna.Trial:
    """A running trial as the objective starts one: its scale, then its bits."""
    trial = study.ask()
    trial.suggest_categorical(SCALE_PARAM, [1.0, 0.5])
    trial.set_user_attr(BITS_ATTR, {"fc": [8, 8] if scale == 1.0 else [4, 8]})
    return trial


def _complete(study: optuna.Study, trial: optuna.Trial, mse: float, cost: float,
              max_mse: float = 1.0) -> None:
    trial.set_constraint(MAX_MSE_CONSTRAINT, mse - max_mse)
    study.tell(trial, [mse, cost])


def _fail(study: optuna.Study, trial: optuna.Trial, error: str | None) -> None:
    """A trial our objective failed (it records why) or whose process died (no error)."""
    if error is not None:
        trial.set_user_attr(ERROR_ATTR, error)
    study.tell(trial, state=TrialState.FAIL)


def _finished_trials(count: int) -> list[optuna.trial.FrozenTrial]:
    return [create_trial(state=TrialState.COMPLETE, values=[1e-3 * (i + 1), 1e9 / (i + 1)],
                         params={SCALE_PARAM: 1.0}, distributions={SCALE_PARAM: SCALES},
                         user_attrs={BITS_ATTR: {"fc": [8, 8]}})
            for i in range(count)]


def _optuna_points(storage: optuna.storages.BaseStorage, name: str) -> list[TrialPoint]:
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # not created yet
        return []
    return study_points(study)


def _agree(db: Database, name: str) -> None:
    """The service's reads equal Optuna's reading of the whole study through a fresh storage."""
    fresh = rdb_storage(db.url)
    with db.session() as session:
        counts = trial_counts(session, db.optuna_storage(), [name])
        points = study_trials(session, db.optuna_storage(), name=name)
    assert counts == {name: study_progress(fresh, name=name)}
    assert list(points) == _optuna_points(fresh, name)


def test_counts_and_points_agree_with_the_whole_study_at_every_step(
    db: Database, writer: optuna.storages.RDBStorage
) -> None:
    name = "mixed"
    _agree(db, name)  # no study yet: no trials
    study = _study(writer, name)
    _agree(db, name)
    _complete(study, _ask(study, 1.0), mse=1e-3, cost=8e8)
    _complete(study, _ask(study, 0.5), mse=2.0, cost=1e8)  # infeasible: above max_mse
    _fail(study, _ask(study, 0.5), error="TrialError: diverged")
    _fail(study, _ask(study, 1.0), error=None)
    study.enqueue_trial({SCALE_PARAM: 0.5})
    _agree(db, name)

    # Each change a worker makes to a trial already read shows at the next read.
    running = study.ask()  # the enqueued trial starts
    _agree(db, name)
    running.suggest_categorical(SCALE_PARAM, [1.0, 0.5])
    _agree(db, name)
    running.set_user_attr(BITS_ATTR, {"fc": [4, 16]})
    _agree(db, name)
    running.set_constraint(MAX_MSE_CONSTRAINT, 0.5)  # infeasible
    _agree(db, name)
    study.enqueue_trial({SCALE_PARAM: 1.0})
    _agree(db, name)
    study.tell(running, [5e-4, 2e8])
    study.ask()  # the next trial starts as this one ends: as many running trials as before
    _agree(db, name)
    # A finished trial timed afterwards (autoq latency writes past Optuna's refusal).
    timed = study.trials[0]
    store_trial_attr(study, timed._trial_id, LATENCY_ATTR, {"median_s": 1e-3, "runs": 5})
    _agree(db, name)
    dying = _ask(study, 1.0)
    _agree(db, name)
    _fail(study, dying, error=None)
    _agree(db, name)

    with db.session() as session:
        counts = trial_counts(session, db.optuna_storage(), [name, "queued"])
    assert counts["queued"] == study_progress(writer, name="queued")
    assert counts[name] == study_progress(writer, name=name)
    assert (counts[name].done, counts[name].complete, counts[name].failed,
            counts[name].running) == (4, 3, 3, 1)


def test_counts_of_many_studies_in_one_query_each_their_own(
    db: Database, writer: optuna.storages.RDBStorage
) -> None:
    names = [f"study-{i}" for i in range(4)]
    for i, name in enumerate(names):
        study = _study(writer, name)
        study.add_trials(_finished_trials(i))
        if i % 2:
            _fail(study, _ask(study, 1.0), error="TrialError: diverged")
            _ask(study, 0.5)
    with db.session() as session:
        counts = trial_counts(session, db.optuna_storage(), [*names, "queued"])
    assert counts == {name: study_progress(writer, name=name) for name in [*names, "queued"]}
    assert [counts[name].running for name in names] == [0, 1, 0, 1]


class Statements:
    """Counts the SQL statements every engine of this process sends while in a ``with``."""

    def __init__(self) -> None:
        self.count = 0

    def _seen(self, *_args: object) -> None:
        self.count += 1

    def __enter__(self) -> Statements:
        event.listen(Engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._seen)


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    """The real app in this process (so its statements can be counted), API only."""
    with TestClient(create_app(Settings(storage=db.url), workers=0)) as test_client:
        yield test_client


def _add_jobs(db: Database, writer: optuna.storages.RDBStorage, count: int, *, trials: int,
              names: Iterator[str]) -> list[str]:
    """``count`` jobs, each with a study of ``trials`` complete trials, one failed and one
    running."""
    ids = []
    for _ in range(count):
        name = next(names)
        with db.session() as session:
            ids.append(jobs.create_job(session, spec=SearchSpec.model_validate(tiny_spec(name)),
                                       trials=trials + 2, name=name).id)
        study = _study(writer, name)
        study.add_trials(_finished_trials(trials))
        _fail(study, _ask(study, 0.5), error="TrialError: diverged")
        _ask(study, 1.0)
    return ids


def _statements(client: TestClient, path: str) -> int:
    with Statements() as statements:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return statements.count


def test_listing_searches_costs_the_same_statements_for_3_and_30_jobs(
    db: Database, writer: optuna.storages.RDBStorage, client: TestClient
) -> None:
    names = (f"job-{i}" for i in itertools.count())
    _add_jobs(db, writer, 3, trials=3, names=names)
    listing = client.get("/api/v1/searches", params={"limit": 100}).json()
    assert [job["trials"]["done"] for job in listing["data"]] == [4] * 3
    with_3 = _statements(client, "/api/v1/searches?limit=100")

    _add_jobs(db, writer, 27, trials=5, names=names)
    listing = client.get("/api/v1/searches", params={"limit": 100}).json()
    assert listing["count"] == len(listing["data"]) == 30
    assert [job["trials"]["running"] for job in listing["data"]] == [1] * 30
    assert _statements(client, "/api/v1/searches?limit=100") == with_3


def test_pareto_costs_the_same_statements_for_3_and_30_trials(
    db: Database, writer: optuna.storages.RDBStorage, client: TestClient
) -> None:
    names = (f"job-{i}" for i in itertools.count())
    warm_up, small, large = (_add_jobs(db, writer, 1, trials=n, names=names)[0]
                             for n in (1, 3, 30))
    # The app opens Optuna's storage on its first read of a study.
    assert _statements(client, f"/api/v1/searches/{warm_up}/pareto") > 0
    first, again = {}, {}
    for job_id in (small, large):
        path = f"/api/v1/searches/{job_id}/pareto"
        first[job_id] = _statements(client, path)
        again[job_id] = _statements(client, path)
    assert client.get(f"/api/v1/searches/{large}/pareto").json()["count"] == 30
    assert first[small] == first[large]
    # Read again unchanged: the job and the study's freshness, nothing else.
    assert again[small] == again[large] == 2


def test_a_running_search_reads_the_same_through_the_server_as_through_optuna(
    service_on: Callable[..., Service], tmp_path: Path
) -> None:
    """A real server (API only) and a real worker process: while the worker writes trials, the
    listed counts and the trials served follow; at the end they are Optuna's."""
    storage = f"sqlite:///{tmp_path / 'running.db'}"
    service = service_on(storage)
    api = service.api(workers=0)
    job_id = api.submit(spec=tiny_spec("live", trials=3))["id"]
    service.worker()
    listed_done: list[int] = []

    def finished() -> dict[str, Any] | None:
        listing = api.client.get("/api/v1/searches")
        assert listing.status_code == 200, f"{listing.text}\n{api.proc.output()[-4000:]}"
        listed = listing.json()["data"]
        listed_done.extend(j["trials"]["done"] for j in listed if j["id"] == job_id)
        job = api.search(job_id)
        served = api.client.get(f"/api/v1/searches/{job_id}/trials").json()["data"]
        assert len(served) >= job["trials"]["complete"] + job["trials"]["failed"]
        return None if job["status"] in ("queued", "running") else job

    job = wait_for(finished, timeout=300, what="the search to finish")
    assert job["status"] == "succeeded", job["error"]
    assert listed_done == sorted(listed_done) and listed_done[-1] == 3

    fresh = rdb_storage(storage)
    progress = study_progress(fresh, name=job["name"])
    assert job["trials"] == {"asked": 3, "done": progress.done, "complete": progress.complete,
                             "failed": progress.failed, "running": progress.running}
    served = api.client.get(f"/api/v1/searches/{job_id}/trials").json()["data"]
    expected = _optuna_points(fresh, job["name"])
    assert served == [TrialPublic(**p.to_json()).model_dump(mode="json") for p in expected]
    front = api.client.get(f"/api/v1/searches/{job_id}/pareto").json()["data"]
    assert [t["number"] for t in front] == [p.number for p in pareto_front(expected)]
