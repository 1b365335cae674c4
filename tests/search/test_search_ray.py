"""The Ray Tune executor: parallel workers record into the same Optuna storage as local runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial, TrialState

from autoq.errors import SpecError
from autoq.search import (
    SearchSpec,
    finished_trials,
    load_study,
    pareto_front,
    parse_spec,
    run_search,
    study_points,
)
from autoq.search.executors.ray import _open_worker_study, _shared_storage_url, _WorkerJob
from autoq.search.setup import ensure_data


def _on_ray(payload: dict[str, Any], **search: Any) -> SearchSpec:
    return parse_spec({**payload, "search": {**payload["search"], "executor": "ray", **search}})


def test_ray_trials_land_in_the_storage_with_the_local_record_shape(
    tiny_spec_payload: dict[str, Any], sqlite_url: str,
    assert_full_record: Callable[[FrozenTrial], None]
) -> None:
    # Two workers start together; each reseeds its sampler, so their first (random) draws are
    # independent. On the tiny space's 128 configurations two independent draws coincide once
    # in 128 runs, so this test widens the bit menus to 7 × 7 per group (2.4e5 configurations,
    # a coincidence once in 2.4e5 runs); the bits do not change what a trial costs to run.
    wide_bits = {"weight_bits": [2, 3, 4, 5, 6, 7, 8], "act_bits": [4, 5, 6, 7, 8, 12, 16]}
    spec = _on_ray({**tiny_spec_payload, "space": {**tiny_spec_payload["space"], **wide_bits}})
    reported: list[int] = []
    started = time.perf_counter()
    run_search(spec, storage=sqlite_url, trials=2,
               callbacks=[lambda study, trial: reported.append(trial.number)])
    print(f"ray executor: 2 trials in {time.perf_counter() - started:.1f} s")
    study = load_study(spec.name, storage=sqlite_url)
    assert finished_trials(study) == 2
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2
    for trial in complete:
        assert_full_record(trial)
        print(f"trial {trial.number}: {trial.user_attrs['timings']}")
    assert sorted(reported) == sorted(t.number for t in complete)
    assert complete[0].params != complete[1].params
    assert pareto_front(study_points(study))


@pytest.mark.slow
@pytest.mark.postgres
def test_ray_search_stops_when_asked_and_resumes_to_its_budget(
    tiny_spec_payload: dict[str, Any], postgres_url: str,
    assert_full_record: Callable[[FrozenTrial], None]
) -> None:
    stop = threading.Event()
    run_search(_on_ray(tiny_spec_payload, max_concurrent=1), storage=postgres_url, trials=4,
               should_stop=stop.is_set, callbacks=[lambda study, trial: stop.set()])
    study = load_study(tiny_spec_payload["name"], storage=postgres_url)
    first = {t.number: t.params for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert 1 <= finished_trials(study) < 4

    resumed = run_search(_on_ray(tiny_spec_payload), storage=postgres_url, trials=4)
    assert finished_trials(resumed) == 4
    complete = resumed.get_trials(states=(TrialState.COMPLETE,))
    assert {t.number: t.params for t in complete if t.number in first} == first
    for trial in complete:
        assert_full_record(trial)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_workers_that_open_the_study_together_draw_apart(
    tiny_spec_payload: dict[str, Any], sqlite_url: str, tmp_path: Path
) -> None:
    # Both workers find the same stored trials, so their samplers get the same seed; without
    # the reseed their first draws coincide (the intermittent failure of the test above).
    spec = _on_ray(tiny_spec_payload)
    job = _WorkerJob(spec=spec.model_dump(mode="json"), study_name=spec.name,
                     storage=sqlite_url, heartbeat=60, data_path=str(ensure_data(spec)),
                     cache_dir=str(tmp_path / "cache"), artifact_dir=None, threads=1,
                     optuna_verbosity=0)
    first, _ = _open_worker_study(job)
    second, _ = _open_worker_study(job)
    probe = IntDistribution(0, 2**30)
    draws = [study.sampler.sample_independent(study, study.ask(), "probe", probe)
             for study in (first, second)]
    assert draws[0] != draws[1]


def test_ray_storage_url_is_one_every_worker_can_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _shared_storage_url("sqlite:///autoq.db") == f"sqlite:///{tmp_path / 'autoq.db'}"
    assert _shared_storage_url("sqlite:////srv/a.db") == "sqlite:////srv/a.db"
    url = "postgresql+psycopg://postgres@db:5432/autoq"
    assert _shared_storage_url(url) == url
    for private in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(SpecError, match="in-memory"):
            _shared_storage_url(private)


def test_ray_refuses_trials_bigger_than_the_machine(
    tiny_spec_payload: dict[str, Any], sqlite_url: str
) -> None:
    spec = _on_ray(tiny_spec_payload, resources={"cpu": 512})
    with pytest.raises(SpecError, match="cpu 512"):
        run_search(spec, storage=sqlite_url, trials=1)
    assert not ray.is_initialized()
    with pytest.raises(SpecError, match="no search named"):
        load_study(spec.name, storage=sqlite_url)  # a failed start leaves no study behind
