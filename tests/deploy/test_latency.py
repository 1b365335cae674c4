"""``autoq latency`` through the real CLI on a real two-trial search, and the timing itself."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from autoq.cli import main
from autoq.deploy.latency import RuntimeUnavailableError, Timing, check_runtime, time_models
from autoq.search import load_study
from autoq.search.records import DEPLOYABLE_ATTR, LATENCY_ATTR


@pytest.fixture
def searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_payload: object) -> Path:
    """A working directory where a real 2-trial search of the tiny Darcy UNet space ran (the
    integer scheme; artifacts in ./artifacts, the database in ./autoq.db)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOQ_STORAGE", raising=False)
    monkeypatch.delenv("AUTOQ_ARTIFACT_DIR", raising=False)
    payload = tiny_payload(arch="unet", pde="darcy", scales=[0.5, 1.0],  # type: ignore[operator]
                           weight_bits=[4, 8], act_bits=[8])
    payload["name"] = "cli-latency"
    payload["space"]["scheme"] = "integer"
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(payload))
    assert main(["search", "tiny.yaml", "--trials", "2"]) == 0
    return tmp_path


def test_latency_is_measured_stored_and_refused_where_it_cannot_run(
        searched: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["latency", "cli-latency", "--trials", "all", "--repeats", "5",
                 "--warmup", "1", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    print(out)
    study = load_study("cli-latency")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2
    stored = [t.user_attrs[LATENCY_ATTR] for t in complete]
    for trial, latency in zip(complete, stored, strict=True):
        assert set(latency) == {"runtime", "threads", "batch", "machine", "median_s",
                                "spread_s", "runs", "float_median_s", "speedup"}
        assert (latency["runtime"], latency["threads"], latency["batch"], latency["runs"]) == (
            "onnxruntime-cpu", 1, 2, 5)
        assert 0 < latency["median_s"] < 10 and latency["spread_s"] >= 0
        assert latency["speedup"] == pytest.approx(latency["float_median_s"]
                                                   / latency["median_s"])
        # The deployable folder it timed, exported on the fly, is recorded on the trial.
        assert (Path(trial.user_attrs[DEPLOYABLE_ATTR]) / "model.onnx").is_file()
        assert f"{trial.number:>7}" in out
    # One float reference, timed in the same run for every trial.
    assert stored[0]["float_median_s"] == stored[1]["float_median_s"] > 0
    assert "  float  " in out and "onnxruntime-cpu, 1 thread(s), batch 2" in out

    # The read commands show what was measured.
    assert main(["pareto", "cli-latency", "--plot", "front.png", "--x-axis", "latency"]) == 0
    shown = capsys.readouterr().out
    assert "latency (ms)" in shown and "speed-up" in shown
    assert (searched / "front.png").stat().st_size > 0
    assert main(["pick", "cli-latency", "--max-ratio", "1000"]) == 0
    picked = capsys.readouterr().out
    assert "measured latency:" in picked and "× the float model at full resolution" in picked
    assert "deployable ONNX model:" in picked

    # A GPU runtime on this machine: skipped with the reason, nothing stored or faked.
    before = {t.number: t.user_attrs[LATENCY_ATTR] for t in complete}
    assert main(["latency", "cli-latency", "--runtime", "tensorrt"]) == 1
    err = capsys.readouterr().err
    assert "skipped tensorrt" in err and "TensorrtExecutionProvider" in err
    after = {t.number: t.user_attrs[LATENCY_ATTR] for t in load_study("cli-latency").trials
             if t.number in before}
    assert after == before

    assert main(["latency", "nope"]) == 2
    assert "no search named 'nope'" in capsys.readouterr().err


def test_a_float_trial_is_timed_as_the_float_model_at_its_scale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_payload: object,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The paper's float baselines have no quantized network to export; at full scale one is
    # the reference itself, and often on the Pareto set (the demo's is).
    from autoq.search import parse_spec
    from autoq.search.executors.plan import execute, prepare_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOQ_STORAGE", raising=False)
    payload = tiny_payload(arch="unet", pde="darcy", scales=[0.5, 1.0],  # type: ignore[operator]
                           weight_bits=[8], act_bits=[8])
    payload["name"] = "float-latency"
    execute(prepare_run(parse_spec(payload), storage="sqlite:///autoq.db", trials=2,
                        baseline_regimes=["float"]))
    assert main(["latency", "float-latency", "--trials", "all", "--repeats", "5",
                 "--warmup", "1"]) == 0
    timed = {t.params["scale"]: t.user_attrs[LATENCY_ATTR] for t in load_study(
        "float-latency").trials}
    assert set(timed) == {0.5, 1.0}
    # One reference for both: at full scale the float trial is the reference's own graph.
    assert timed[1.0]["float_median_s"] == timed[0.5]["float_median_s"] > 0
    assert "  float  " in capsys.readouterr().out


def test_latency_of_a_search_without_complete_trials_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOQ_STORAGE", raising=False)
    from autoq.search.storage import storage_url

    study = optuna.create_study(study_name="empty", storage=storage_url(None),
                                directions=["minimize", "minimize"])
    study.set_user_attr("spec", {})
    assert main(["latency", "empty"]) == 2
    err = capsys.readouterr().err
    assert "no complete trials" in err or "spec" in err


def test_interleaved_timing_orders_models_by_their_work(tmp_path: Path) -> None:
    # Two real graphs, one doing ~30× the other's work: the timing must tell them apart.
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def matmuls(path: Path, n: int, size: int) -> Path:
        weight = numpy_helper.from_array(np.eye(size, dtype=np.float32) * 0.5, "w")
        nodes = [helper.make_node("MatMul", ["input" if i == 0 else f"h{i}", "w"],
                                  [f"h{i + 1}" if i < n - 1 else "output"]) for i in range(n)]
        graph = helper.make_graph(
            nodes, "m", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                       ["batch", size])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", size])],
            [weight])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]),
                  str(path))
        return path

    small, large = matmuls(tmp_path / "s.onnx", 1, 64), matmuls(tmp_path / "l.onnx", 30, 256)
    rounds: list[int] = []
    timings = time_models({"small": small, "large": large}, batch=8, warmup=2, repeats=9,
                          progress=lambda: rounds.append(1))
    assert len(rounds) == 9 and all(t.runs == 9 for t in timings.values())
    assert timings["large"].median_s > 3 * timings["small"].median_s > 0
    assert Timing.of([3.0, 1.0, 2.0, 4.0, 5.0]) == Timing(median_s=3.0, spread_s=2.0, runs=5)
    assert check_runtime("onnxruntime-cpu") == "CPUExecutionProvider"
    with pytest.raises(RuntimeUnavailableError, match=r"onnxruntime-gpu.*CUDAExecutionProvider"):
        check_runtime("onnxruntime-gpu")
