"""``autoq export NAME --trial N --out DIR`` through the real CLI, on a real two-trial search."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml

from autoq.cli import main
from autoq.deploy import OnnxSolver
from autoq.search import load_study, study_spec
from autoq.search.records import ARTIFACT_ATTR, ERROR_ATTR
from autoq.search.setup import load_spec_problem
from autoq.train.metrics import named_metric


@pytest.fixture
def searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             tiny_payload: object) -> Path:
    """A working directory where a real 2-trial search of the tiny Burgers FNO space ran
    (artifacts in ./artifacts/trials, the database in ./autoq.db)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOQ_STORAGE", raising=False)
    monkeypatch.delenv("AUTOQ_ARTIFACT_DIR", raising=False)
    payload = tiny_payload(arch="fno", pde="burgers", scales=[0.5],  # type: ignore[operator]
                           weight_bits=[3, 8], act_bits=[6, 16])
    payload["name"] = "cli-deploy"
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(payload))
    assert main(["search", "tiny.yaml", "--trials", "2"]) == 0
    return tmp_path


def test_export_reproduces_the_stored_error_and_names_what_is_wrong(
        searched: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = load_study("cli-deploy")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2 and all(ARTIFACT_ATTR in t.user_attrs for t in complete)
    trial = complete[-1]
    capsys.readouterr()

    assert main(["export", "cli-deploy", "--trial", str(trial.number), "--out", "deploy"]) == 0
    out = capsys.readouterr().out
    assert f"trial {trial.number} of 'cli-deploy' exported to deploy" in out
    manifest = json.loads((searched / "deploy" / "manifest.json").read_text())
    assert (manifest["search"], manifest["trial"]) == ("cli-deploy", trial.number)
    assert manifest["error"] == trial.values[0]
    assert manifest["extra"]["bits"] == trial.user_attrs["bits"]
    assert manifest["scale"] == trial.params["scale"]

    # onnxruntime over every validation window: the error the search stored.
    spec = study_spec(study)
    problem = load_spec_problem(spec, progress=False)
    deployed = named_metric(spec.metric)(OnnxSolver(searched / "deploy"), problem)
    print(f"stored {trial.values[0]:.6e}, onnxruntime {deployed:.6e}")
    assert abs(deployed - trial.values[0]) < 1e-3 * trial.values[0]

    # Clear errors, exit 2, naming what is wrong.
    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        return capsys.readouterr().err

    assert "no search named 'nope'" in error("export", "nope", "--trial", "0", "--out", "x")
    assert "search 'cli-deploy' has no trial 7 (it has trials 0–1)" in error(
        "export", "cli-deploy", "--trial", "7", "--out", "x")
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL, user_attrs={ERROR_ATTR: "TrialError: NaN loss"}))
    assert "trial 2 of search 'cli-deploy' failed (TrialError: NaN loss)" in error(
        "export", "cli-deploy", "--trial", "2", "--out", "x")
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, values=[1.0, 1.0],
        params={"scale": 0.5}, distributions={"scale": trial.distributions["scale"]}))
    assert "trial 3 of search 'cli-deploy' stored no artifact" in error(
        "export", "cli-deploy", "--trial", "3", "--out", "x")
    assert not (searched / "x").exists()
