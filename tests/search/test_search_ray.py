"""The Ray Tune executor: parallel workers record into the same Optuna storage as local runs."""

from __future__ import annotations

import time
from collections.abc import Callable

from optuna.trial import FrozenTrial, TrialState

from autoq.search import SearchSpec, finished_trials, load_study, pareto_front, study_points
from autoq.search.ray_executor import run_ray


def test_ray_trials_land_in_the_storage_with_the_local_record_shape(
    tiny_spec: SearchSpec, sqlite_url: str, assert_full_record: Callable[[FrozenTrial], None]
) -> None:
    reported: list[int] = []
    started = time.perf_counter()
    run_ray(tiny_spec, storage=sqlite_url, trials=2,
            callbacks=[lambda study, trial: reported.append(trial.number)])
    print(f"run_ray: 2 trials in {time.perf_counter() - started:.1f} s")
    study, _ = load_study(tiny_spec.name, storage=sqlite_url)
    assert finished_trials(study) == 2
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2
    for trial in complete:
        assert_full_record(trial)
        print(f"trial {trial.number}: {trial.user_attrs['timings']}")
    assert sorted(reported) == sorted(t.number for t in complete)
    assert complete[0].params != complete[1].params
    assert pareto_front(study_points(study))
