"""What the service reads from a job's Optuna study: progress and trial points.

The study is the one record of trials; these functions only read it, through the storage the
app shares with the dashboard. A job whose study does not exist yet (still queued) has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.storages import BaseStorage

from autoq.search.records import TrialPoint
from autoq.search.results import finished_trials, study_points


@dataclass(frozen=True)
class Progress:
    """Trial counts of one study.

    Attributes:
        done: trials that count towards the budget (complete, or failed by the objective).
        complete: trials with both objectives.
        failed: trials that failed (including ones whose worker died).
        running: trials in progress.
    """

    done: int = 0
    complete: int = 0
    failed: int = 0
    running: int = 0


def _load(storage: BaseStorage, name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def study_progress(storage: BaseStorage, *, name: str) -> Progress:
    """Progress of the study ``name`` (all zero when it does not exist yet)."""
    study = _load(storage, name)
    if study is None:
        return Progress()
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return Progress(done=finished_trials(study),
                    complete=states.count(optuna.trial.TrialState.COMPLETE),
                    failed=states.count(optuna.trial.TrialState.FAIL),
                    running=states.count(optuna.trial.TrialState.RUNNING))


def study_trials(storage: BaseStorage, *, name: str) -> list[TrialPoint]:
    """Every trial of the study ``name`` in trial order (none when it does not exist yet)."""
    study = _load(storage, name)
    return [] if study is None else study_points(study)
