"""The local executor: a search's trials one after another in this process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna

from autoq.search.executors import ExecutorOptions, StudyCallback
from autoq.search.executors.plan import SearchRun
from autoq.search.objective import run_trials
from autoq.search.trial import TrialRunner


class LocalExecutor:
    """Runs trials in this process; data and float models stay in memory between trials.

    Args:
        options: unused (the local executor needs no address).
        runner: a prepared :class:`~autoq.search.trial.TrialRunner` to reuse (tests, workers).
    """

    def __init__(self, options: ExecutorOptions | None = None, *,
                 runner: TrialRunner | None = None) -> None:
        self.runner = runner

    def run(
        self,
        run: SearchRun,
        *,
        artifact_dir: Path | None,
        callbacks: list[StudyCallback],
        should_stop: Callable[[], bool] | None,
    ) -> None:
        runner = self.runner or TrialRunner(run.spec, artifact_dir=artifact_dir, progress=True,
                                            space=run.space)

        def stop_when_done(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            if run.done >= run.budget or (should_stop is not None and should_stop()):
                study.stop()

        run_trials(run.study, runner, n_trials=run.remaining, timeout=run.spec.search.timeout,
                   callbacks=[*callbacks, stop_when_done])
