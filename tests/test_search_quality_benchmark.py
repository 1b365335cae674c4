"""The search-quality benchmark's bookkeeping: wall time charged per search, hypervolume as the
search goes, AMP's stored points, the grid's resume and the report tables (no training)."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from autoq.errors import SpecError
from autoq.search import records
from autoq.search.results import study_points

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "search_quality.py"
_SPEC = importlib.util.spec_from_file_location("search_quality_benchmark", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # dataclasses look their module up while the class is built
_SPEC.loader.exec_module(bench)

START = datetime(2026, 11, 29, 12, 0, 0)
SCALES = [1.0, 0.5, 0.2]


def new_study() -> optuna.Study:
    return optuna.create_study(directions=list(records.DIRECTIONS))


def add_trial(study: optuna.Study, *, scale: float, at: float, seconds: float,
              float_seconds: float = 0.0, mse: float = 0.1, cost: float = 10.0,
              state: TrialState = TrialState.COMPLETE, error: str | None = None,
              baseline: str | None = None) -> None:
    """A finished trial that started ``at`` seconds after START and lasted ``seconds``, of which
    ``float_seconds`` went to its float model."""
    attrs: dict[str, Any] = {records.TIMINGS_ATTR: {"float": float_seconds, "qat": 1.0}}
    if error is not None:
        attrs[records.ERROR_ATTR] = error
    if baseline is not None:
        attrs[records.BASELINE_ATTR] = baseline
    trial = optuna.trial.create_trial(
        state=state, values=[mse, cost] if state == TrialState.COMPLETE else None,
        params={records.SCALE_PARAM: scale},
        distributions={records.SCALE_PARAM: CategoricalDistribution(SCALES)},
        user_attrs=attrs)
    trial.datetime_start = START + timedelta(seconds=at)
    trial.datetime_complete = START + timedelta(seconds=at + seconds)
    study.add_trial(trial)


FLOAT_MODELS = {"1": {"seconds": 50.0, "upfront": True},
                "0.5": {"seconds": 100.0, "upfront": False},
                "0.2": {"seconds": 30.0, "upfront": False}}
REFERENCE = (100.0, 1.0)


def test_charged_steps_charge_a_shared_float_model_to_every_search_that_uses_it() -> None:
    # The first search trains the scale-0.5 model inside its first trial; the second loads it.
    trained, loaded = new_study(), new_study()
    add_trial(trained, scale=0.5, at=0, seconds=103, float_seconds=100)
    add_trial(loaded, scale=0.5, at=0, seconds=3.02, float_seconds=0.02)
    for study in (trained, loaded):
        add_trial(study, scale=0.5, at=200, seconds=4)
        add_trial(study, scale=0.2, at=300, seconds=35, float_seconds=30)
    for study in (trained, loaded):
        steps = bench.charged_steps(study.get_trials(), float_models=FLOAT_MODELS,
                                    reference=REFERENCE)
        # reference model 50 up front; 0.5: 100 + 3; again 0.5: + 4; 0.2: 30 + 5.
        assert [round(s.seconds, 6) for s in steps] == [153, 157, 192]
        assert [s.trials for s in steps] == [1, 2, 3]


def test_charged_steps_skip_a_killed_trial_and_charge_a_failed_one() -> None:
    study = new_study()
    add_trial(study, scale=1.0, at=0, seconds=10)
    add_trial(study, scale=1.0, at=10, seconds=600, state=TrialState.FAIL)  # killed: not counted
    add_trial(study, scale=1.0, at=700, seconds=7, state=TrialState.FAIL, error="TrialError: nan")
    steps = bench.charged_steps(study.get_trials(), float_models=FLOAT_MODELS,
                                reference=REFERENCE, upfront_seconds=5)
    assert [round(s.seconds, 6) for s in steps] == [65, 72]
    assert [s.trials for s in steps] == [1, 2]


def test_charged_steps_hypervolume_grows_as_the_hand_computed_area() -> None:
    study = new_study()
    add_trial(study, scale=1.0, at=0, seconds=1, cost=10, mse=0.1)
    add_trial(study, scale=1.0, at=1, seconds=1, cost=1, mse=0.5)
    add_trial(study, scale=1.0, at=2, seconds=1, cost=50, mse=0.5)  # dominated: adds nothing
    steps = bench.charged_steps(study.get_trials(), float_models={}, reference=REFERENCE)
    # In (log10 cost, log10 MSE) from (2, 0): (2−1)·(0+1) = 1; then the front
    # (1, 0.5), (10, 0.1): (2−0)·(0−log10 0.5) + (2−1)·(log10 0.5 + 1).
    second = 2 * -math.log10(0.5) + (math.log10(0.5) + 1)
    assert [s.hypervolume for s in steps] == pytest.approx([1.0, second, second])


def test_unpriced_models_name_a_model_used_without_its_training_seconds() -> None:
    study = new_study()
    add_trial(study, scale=0.5, at=0, seconds=1)
    add_trial(study, scale=0.2, at=1, seconds=1)
    assert bench.unpriced_models(study.get_trials(), {"0.5": FLOAT_MODELS["0.5"]}) == ["0.2"]


def test_hypervolume_at_and_time_to_reach_read_the_steps() -> None:
    steps = [bench.Step(10, 1, 0.5), bench.Step(20, 2, 1.0), bench.Step(40, 3, 1.5)]
    assert bench.hypervolume_at(steps, 5) == 0.0
    assert bench.hypervolume_at(steps, 20) == 1.0
    assert bench.hypervolume_at(steps, 39) == 1.0
    assert bench.time_to_reach(steps, 1.0) == 20
    assert bench.time_to_reach(steps, 1.2) == 40
    assert bench.time_to_reach(steps, 1.6) is None


def test_amp_point_reads_back_as_a_trial_and_its_phase_is_charged_up_front() -> None:
    study = new_study()
    bits = {"layers.0": [4, 8], "layers.1": "float"}
    started = START
    study.add_trial(bench.amp_trial(
        {"scale": 0.5, "bits": bits}, SCALES, mse=0.02, cost=3e8, pick=7,
        timings={"float": 0.0, "qat": 6.0}, float_mse=0.01, float_reference=0.009,
        started=started, finished=started + timedelta(seconds=9)))
    [point] = study_points(study)
    assert (point.state, point.mse, point.cost, point.scale, point.bits) == (
        "COMPLETE", 0.02, 3e8, 0.5, bits)
    attrs = {f"{bench.AMP_CURVE_PREFIX}0.5": {"curve": [bits], "evaluations": 99,
                                              "seconds": 40.0},
             f"{bench.AMP_CURVE_PREFIX}1": {"curve": [], "evaluations": 101, "seconds": 60.0},
             bench.FLOAT_MODELS_ATTR: {"1": {"seconds": 50.0, "upfront": True},
                                       "0.5": {"seconds": 20.0, "upfront": True}},
             bench.BUDGET_ATTR: 1}
    result = bench.piece_result(bench.Piece("s", "amp", 0), study.get_trials(), attrs,
                                (1e9, 0.1))
    assert result.finished
    assert result.trials == 1 + 200
    assert result.upfront_seconds == 170
    assert result.wall == pytest.approx(179)


def result(method: str, seed: int, volume: float | None, *, budget: int = 1
           ) -> Any:
    """A piece with one trial whose hypervolume is ``volume`` (None: unfinished)."""
    point = records.TrialPoint(number=0, state="COMPLETE", mse=0.1, cost=1.0, scale=1.0, bits={})
    steps = [] if volume is None else [bench.Step(10.0, 1, volume)]
    return bench.PieceResult(piece=bench.Piece("s", method, seed),
                             points=[] if volume is None else [point], steps=steps,
                             budget=budget)


def test_summary_rows_relative_to_the_grid_with_best_and_missing_marked() -> None:
    with_grid = {r.piece: r for r in [
        result("grid", 0, 2.0), result("autoq", 0, 2.4), result("autoq", 1, 2.6),
        result("autoq", 2, 2.2), result("tpe", 0, 1.8), result("tpe", 1, None),
        result("random", 0, 2.8, budget=2)]}  # unfinished: 1 of 2 trials
    without_grid = {r.piece: r for r in [result("autoq", 0, 1.0)]}
    rows = bench.summary_rows({"a": with_grid, "b": without_grid},
                              ["grid", "random", "tpe", "autoq"], [0, 1, 2],
                              {"a": 3.0, "b": 1.5})
    assert rows[0] == ["space", "grid hv", "ceiling", "grid", "random", "tpe", "autoq"]
    assert rows[1] == ["a", "2", "1.50", "1.00", "missing", "0.90 (1/3)", "1.20*"]
    assert rows[2] == ["b", "missing", "—", "missing", "missing", "missing", "no grid"]


def test_hypervolume_ceiling_is_the_cheapest_cost_at_the_lowest_mse_of_any_method() -> None:
    grid, autoq = new_study(), new_study()
    add_trial(grid, scale=1.0, at=0, seconds=1, mse=0.5, cost=50.0)
    add_trial(autoq, scale=0.5, at=0, seconds=1, mse=0.1, cost=80.0)
    add_trial(autoq, scale=0.5, at=1, seconds=1, state=TrialState.FAIL, error="NaN loss")
    results = {bench.Piece("s", method, 0): bench.piece_result(
        bench.Piece("s", method, 0), study.get_trials(), {}, REFERENCE)
        for method, study in [("grid", grid), ("autoq", autoq)]}
    # One point at cost 10 (the floor) and MSE 0.1 (autoq's) against the reference (100, 1):
    # (log 100 − log 10) × (log 1 − log 0.1) = 1 × 1.
    assert bench.hypervolume_ceiling(results, REFERENCE, floor=10.0) == pytest.approx(1.0)
    assert bench.hypervolume_ceiling({}, REFERENCE, floor=10.0) is None


def test_method_rows_show_partial_and_missing_pieces() -> None:
    results = {r.piece: r for r in [result("grid", 0, 2.0), result("tpe", 0, 2.0, budget=3)]}
    rows = bench.method_rows(results, ["grid", "tpe", "autoq"], float_mse=0.2)
    assert rows[1][:3] == ["grid", "1", "2"]
    assert rows[2][:2] == ["tpe", "partial seed 0: 1/3"]
    assert rows[3][:2] == ["autoq", "missing"]


def test_done_as_asked_reruns_a_piece_asked_for_more_or_unpriced() -> None:
    def done(piece: Any, **fields: Any) -> bool:
        return bench.done_as_asked(dataclasses.replace(piece, **fields), budget=2,
                                   amp_points=5)

    assert not done(result("tpe", 0, 1.0))  # 1 trial of the 2 now asked
    assert done(result("tpe", 0, 1.0), points=[result("x", 0, 1.0).points[0]] * 2)
    assert done(result("grid", 0, 1.0))  # the grid's size does not follow --budget
    assert not done(result("grid", 0, 1.0), unpriced=["0.5"])
    assert done(result("amp", 0, 1.0), amp_points=5)
    assert not done(result("amp", 0, 1.0), amp_points=3)
    assert not bench.done_as_asked(None, budget=2, amp_points=5)


def test_machine_record_writes_the_load_at_start_and_end_and_marks_an_interrupt() -> None:
    study = new_study()
    with bench.machine_record(study, torch_threads=1):
        [entry] = study.user_attrs[bench.RUNS_ATTR]
        assert "load_end" not in entry  # a killed process leaves it so
    with pytest.raises(KeyboardInterrupt), bench.machine_record(study, torch_threads=2):
        raise KeyboardInterrupt
    first, second = study.user_attrs[bench.RUNS_ATTR]
    assert first["torch_threads"] == 1 and len(first["load_start"]) == 3
    assert "finished" in first and "interrupted" not in first
    assert second["interrupted"] and len(second["load_end"]) == 3


def test_run_space_goes_on_past_a_failing_piece(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import types

    import autoq.search

    class Runner:  # what run_space reads of a TrialRunner before handing it to a piece
        def __init__(self, spec: Any) -> None:
            cost = types.SimpleNamespace(total=1e9)
            self.space = types.SimpleNamespace(ranks=[None], cost=lambda config: cost,
                                               regime=lambda *args: None)

        def float_model(self, *args: Any) -> Any:
            return types.SimpleNamespace(val_mse=0.01)

    ran = []

    def run_search_piece(piece: Any, *args: Any, **kwargs: Any) -> None:
        ran.append(piece.method)
        if piece.method == "tpe":
            raise RuntimeError("sampler exploded")

    monkeypatch.setattr(autoq.search, "TrialRunner", Runner)
    monkeypatch.setattr(bench, "run_search_piece", run_search_piece)
    [spec] = bench.resolve_spaces(["burgers-fno-small"])
    args = types.SimpleNamespace(budget=2, amp_points=5)
    wanted = bench.pieces(spec.name, ["tpe", "autoq"], [0])
    bench.run_space(spec, wanted, optuna.storages.InMemoryStorage(), args, 1)
    assert ran == ["tpe", "autoq"]
    assert "burgers-fno-small-tpe-seed0: FAILED: RuntimeError: sampler exploded" in \
        capsys.readouterr().out


def test_pieces_run_every_method_first_seed_first_and_deterministic_ones_once() -> None:
    ordered = bench.pieces("s", ["grid", "tpe", "amp"], [0, 1])
    assert [(p.method, p.seed) for p in ordered] == [("grid", 0), ("tpe", 0), ("amp", 0),
                                                     ("tpe", 1)]
    assert bench.Piece.from_study_name(ordered[1].study_name) == ordered[1]
    assert bench.Piece.from_study_name("burgers-fno-small") is None


def test_resolve_spaces_small_is_every_small_space_and_a_bad_name_is_named() -> None:
    names = [spec.name for spec in bench.resolve_spaces(["small", "darcy-unet-small"])]
    assert len(names) == 12 and all(name.endswith("-small") for name in names)
    assert {name.split("-")[0] for name in names} == {"burgers", "darcy", "diffsorp", "ns2d"}
    with pytest.raises(SpecError, match="'burgers-fno-tiny'"):
        bench.resolve_spaces(["burgers-fno-tiny"])


TINY_SPEC = """\
name: tiny-quality
data:
  pde: burgers
  path: {data}
  input_steps: 2
  generate: {{samples: 24, resolution: 64, frames: 11}}
model: {{arch: fno, width: 12, modes: 6, layers: 2, projection_width: 24}}
train: {{epochs: 2}}
qat: {{epochs: 1}}
space: {{scales: [1.0], weight_bits: [4, 8], act_bits: [8, 16], granularity: per_block}}
search: {{trials: 3, seed: 0}}
"""


@pytest.mark.slow
def test_a_tiny_benchmark_resumes_an_unfinished_piece_and_reads_a_finished_one(
        tmp_path: Path) -> None:
    import subprocess

    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC.format(data=tmp_path / "tiny.h5"))
    env = {**os.environ, "AUTOQ_THREADS": "1", "AUTOQ_CACHE_DIR": str(tmp_path / "float")}

    def benchmark(*extra: str) -> str:
        done = subprocess.run(
            [sys.executable, str(_PATH), "--spaces", str(spec), "--methods", "grid", "autoq",
             "--seeds", "0", "--out", str(tmp_path / "out"), "--plot-dir", str(tmp_path),
             *extra], env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    benchmark("--budget", "1")
    resumed = benchmark("--budget", "2")
    assert "tiny-quality-grid-seed0: finished on the storage, read" in resumed
    assert "tiny-quality-autoq-seed0: done" in resumed
    storage = f"sqlite:///{tmp_path / 'out' / 'search_quality.db'}"
    autoq = optuna.load_study(study_name="tiny-quality-autoq-seed0", storage=storage)
    assert [t.state for t in autoq.get_trials()] == [TrialState.COMPLETE] * 2
    assert len(autoq.user_attrs[bench.RUNS_ATTR]) == 2  # one entry per process that ran it
    summary = benchmark("--budget", "2", "--summary")
    grid_row = next(line for line in summary.splitlines() if line.strip().startswith("grid "))
    assert grid_row.split()[1] == "5"  # the paper's five regimes at the one scale
    assert (tmp_path / "search_quality_tiny-quality_time.png").is_file()
