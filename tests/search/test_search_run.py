"""Real searches end to end: a few QAT trials recorded in SQLite and in PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from optuna.trial import FrozenTrial, TrialState

from autoq.search import (
    SearchSpec,
    finished_trials,
    load_study,
    pareto_front,
    run_search,
    study_points,
    study_spec,
)
from autoq.search.records import DEPLOYABLE_ATTR, DEPLOYED_ERROR_ATTR


def _check_search(url: str, spec: SearchSpec, trials: int,
                  assert_full_record: Callable[[FrozenTrial], None],
                  artifact_dir: Path | None = None) -> None:
    run_search(spec, storage=url, trials=trials, artifact_dir=artifact_dir)
    study = load_study(spec.name, storage=url)
    assert study_spec(study) == spec
    assert finished_trials(study) == trials
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == trials
    for trial in complete:
        assert_full_record(trial)
    points = study_points(study)
    front = pareto_front(points)
    assert front
    assert [p.cost for p in front] == sorted(p.cost for p in front)
    assert {p.number for p in front} == {t.number for t in study.best_trials}
    if artifact_dir is None:
        return
    # Every trial leaves a model a user runs: ONNX from raw input to raw output, whose error
    # under onnxruntime is the trial's.
    for trial in complete:
        deployable = Path(trial.user_attrs[DEPLOYABLE_ATTR])
        assert deployable.is_relative_to(artifact_dir) and (deployable / "model.onnx").is_file()
        assert trial.user_attrs[DEPLOYED_ERROR_ATTR] == pytest.approx(trial.values[0], rel=1e-3)


def test_search_records_trials_and_pareto_set_in_sqlite(
    tiny_spec: SearchSpec, sqlite_url: str, assert_full_record: Callable[[FrozenTrial], None],
    tmp_path: Path
) -> None:
    _check_search(sqlite_url, tiny_spec, 4, assert_full_record, tmp_path / "artifacts")


@pytest.mark.postgres
def test_search_records_trials_and_pareto_set_in_postgres(
    tiny_spec: SearchSpec, postgres_url: str, assert_full_record: Callable[[FrozenTrial], None]
) -> None:
    _check_search(postgres_url, tiny_spec, 3, assert_full_record)


def test_baseline_grid_is_queued_once_at_the_chosen_scales(
    tiny_spec: SearchSpec, sqlite_url: str
) -> None:
    from autoq.cost import REGIMES
    from autoq.errors import SpecError
    from autoq.search import create_or_resume, enqueue_baseline_grid

    study = create_or_resume(tiny_spec, name="grid-queue", storage=sqlite_url)
    assert enqueue_baseline_grid(study, tiny_spec, scales=[0.5]) == len(REGIMES)
    assert enqueue_baseline_grid(study, tiny_spec, scales=[0.5]) == 0
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert {t.user_attrs["baseline"] for t in waiting} == set(REGIMES)
    assert {t.system_attrs["fixed_params"]["scale"] for t in waiting} == {0.5}
    with pytest.raises(SpecError, match=r"scale 0\.3 is not in space\.scales"):
        enqueue_baseline_grid(study, tiny_spec, scales=[0.3])
    assert len(study.get_trials()) == len(REGIMES)


def test_baseline_regime_cut_off_by_ctrl_c_is_queued_again(
    tiny_spec: SearchSpec, sqlite_url: str
) -> None:
    """A regime whose trial was interrupted (failed with no error recorded) is queued again; one
    that failed with an error counts as run and is not."""
    from autoq.search import create_or_resume, enqueue_baseline_grid
    from autoq.search.records import ERROR_ATTR

    study = create_or_resume(tiny_spec, name="grid-requeue", storage=sqlite_url)
    enqueue_baseline_grid(study, tiny_spec, regimes=["w8a8", "w4a4"], scales=[0.5])
    interrupted = study.ask()
    study.tell(interrupted, state=TrialState.FAIL)
    errored = study.ask()
    errored.set_user_attr(ERROR_ATTR, "QuantizationError: no encodings")
    study.tell(errored, state=TrialState.FAIL)
    assert enqueue_baseline_grid(study, tiny_spec, regimes=["w8a8", "w4a4"], scales=[0.5]) == 1
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["baseline"] for t in waiting] == [interrupted.user_attrs["baseline"]]
