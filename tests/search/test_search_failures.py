"""Trials that fail: a diverging one is recorded with its reason; a killed one is retried."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from autoq.search import SearchSpec, finished_trials, load_study, parse_spec, run_search
from autoq.search import trial as trial_module
from autoq.train import TrainConfig

HEARTBEAT = 1
HEARTBEAT_ENV = "AUTOQ_TRIAL_HEARTBEAT_SECONDS"
SEARCH_IN_A_SUBPROCESS = """
import json, sys
from autoq.search import parse_spec, run_search
run_search(parse_spec(json.loads(sys.argv[1])), storage=sys.argv[2], trials=int(sys.argv[3]))
"""


def test_diverging_trial_fails_with_its_reason_and_the_search_goes_on(
    tiny_spec_payload: dict[str, Any], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = parse_spec({**tiny_spec_payload, "qat": {**tiny_spec_payload["qat"], "batch_size": 4}})
    real_run = trial_module.TrainingRun
    calls = []

    def first_qat_explodes(solver: Any, windows: Any, config: TrainConfig, **kwargs: Any) -> Any:
        calls.append(config)
        if len(calls) == 1:
            config = config.model_copy(update={"lr": 1e30})
        return real_run(solver, windows, config, **kwargs)

    monkeypatch.setattr(trial_module, "TrainingRun", first_qat_explodes)
    study = run_search(spec, storage=sqlite_url, trials=3)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs["error"].startswith("TrialError: training loss became")
    assert trials[0].user_attrs["bits"]
    assert finished_trials(study) == 3


def _running_trial(url: str, name: str) -> FrozenTrial | None:
    """A running trial whose configuration is recorded (all its parameters suggested)."""
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        return None
    running = [t for t in study.get_trials(states=(TrialState.RUNNING,)) if "bits" in t.user_attrs]
    return running[0] if running else None


def test_trial_of_a_killed_process_is_failed_by_heartbeat_and_retried(
    tiny_spec: SearchSpec, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HEARTBEAT_ENV, str(HEARTBEAT))
    process = subprocess.Popen(
        [sys.executable, "-c", SEARCH_IN_A_SUBPROCESS,
         json.dumps(tiny_spec.model_dump(mode="json")), sqlite_url, "50"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 180
        while (victim := _running_trial(sqlite_url, tiny_spec.name)) is None:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the search never started a trial"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()

    study = load_study(tiny_spec.name, storage=sqlite_url)
    assert study.trials[victim.number].state == TrialState.RUNNING
    done = finished_trials(study)
    time.sleep(2 * HEARTBEAT + 0.5)  # the grace period: two missed heartbeats

    resumed = run_search(tiny_spec, storage=sqlite_url, trials=done + 2)
    trials = resumed.get_trials()
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "error" not in killed.user_attrs
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params
    assert finished_trials(resumed) == done + 2
    assert len(resumed.get_trials(states=(TrialState.COMPLETE,))) == done + 2


def test_a_trial_whose_export_check_fails_completes_without_a_deployable_model(
    tiny_spec: SearchSpec, sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any
) -> None:
    from autoq.deploy import export as deploy_export
    from autoq.search.records import DEPLOY_ERROR_ATTR, DEPLOYABLE_ATTR

    # No graph passes a negative tolerance: every export check refuses.
    monkeypatch.setattr(deploy_export, "TOLERANCE", -1.0)
    study = run_search(tiny_spec, storage=sqlite_url, trials=1, artifact_dir=tmp_path)
    trial, = study.trials
    assert trial.state == TrialState.COMPLETE and trial.values[0] > 0
    assert DEPLOYABLE_ATTR not in trial.user_attrs
    assert "differs from the torch solver's" in trial.user_attrs[DEPLOY_ERROR_ATTR]
