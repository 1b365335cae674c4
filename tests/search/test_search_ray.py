"""The Ray Tune executor: parallel workers record into the same Optuna storage as local runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
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
from autoq.search.executors.ray import _shared_storage_url


def _on_ray(payload: dict[str, Any], **search: Any) -> SearchSpec:
    return parse_spec({**payload, "search": {**payload["search"], "executor": "ray", **search}})


def test_ray_trials_land_in_the_storage_with_the_local_record_shape(
    tiny_spec_payload: dict[str, Any], sqlite_url: str,
    assert_full_record: Callable[[FrozenTrial], None]
) -> None:
    spec = _on_ray(tiny_spec_payload)
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
