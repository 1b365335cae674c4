"""Searches are named and resumable: interrupted ones finish their budget, done ones rest."""

from __future__ import annotations

from typing import Any

import pytest
from optuna.trial import TrialState

from autoq.errors import SpecError
from autoq.search import (
    SearchSpec,
    create_or_resume,
    finished_trials,
    load_study,
    parse_spec,
    run_search,
    study_spec,
)


def _snapshot(url: str, name: str) -> list[tuple[int, str, dict[str, Any], list[float] | None]]:
    study = load_study(name, storage=url)
    return [(t.number, t.state.name, t.params, t.values) for t in study.get_trials()]


def test_search_resumes_an_interrupted_search_to_its_budget(
    tiny_spec: SearchSpec, sqlite_url: str
) -> None:
    study = create_or_resume(tiny_spec, storage=sqlite_url)
    # Stopped after two trials, as a cancelled job or a Ctrl-C at a trial boundary would be.
    run_search(tiny_spec, storage=sqlite_url, trials=4,
               should_stop=lambda: finished_trials(study) >= 2)
    first = _snapshot(sqlite_url, tiny_spec.name)
    assert [state for _, state, _, _ in first] == ["COMPLETE", "COMPLETE"]

    resumed = run_search(tiny_spec, storage=sqlite_url, trials=4)
    after = _snapshot(sqlite_url, tiny_spec.name)
    assert after[:2] == first
    assert [number for number, *_ in after] == [0, 1, 2, 3]
    assert finished_trials(resumed) == 4
    # The resumed sampler does not replay the first run's proposals.
    assert [params for _, _, params, _ in after[2:]] != [params for _, _, params, _ in first]


def test_search_that_is_done_runs_nothing(tiny_spec: SearchSpec, sqlite_url: str) -> None:
    run_search(tiny_spec, storage=sqlite_url, trials=2)
    before = _snapshot(sqlite_url, tiny_spec.name)
    run_search(tiny_spec, storage=sqlite_url, trials=2)
    run_search(tiny_spec, storage=sqlite_url, trials=1)
    assert _snapshot(sqlite_url, tiny_spec.name) == before
    assert len(before) == 2


def test_search_name_taken_by_another_spec_is_refused(
    tiny_spec: SearchSpec, tiny_spec_payload: dict[str, Any], sqlite_url: str
) -> None:
    create_or_resume(tiny_spec, storage=sqlite_url)
    other = parse_spec({**tiny_spec_payload,
                        "space": {**tiny_spec_payload["space"], "scales": [1.0]}})
    with pytest.raises(SpecError, match="different spec"):
        run_search(other, storage=sqlite_url, trials=1)
    study = load_study(tiny_spec.name, storage=sqlite_url)
    assert study_spec(study) == tiny_spec and not study.get_trials(states=(TrialState.COMPLETE,))


def test_search_resumes_with_other_execution_settings(
    tiny_spec: SearchSpec, tiny_spec_payload: dict[str, Any], sqlite_url: str
) -> None:
    create_or_resume(tiny_spec, storage=sqlite_url)
    search = {**tiny_spec_payload["search"], "trials": 9, "executor": "ray", "timeout": 60,
              "resources": {"cpu": 2}, "max_concurrent": 3}
    rerun = parse_spec({**tiny_spec_payload, "search": search})
    assert create_or_resume(rerun, storage=sqlite_url).study_name == tiny_spec.name
