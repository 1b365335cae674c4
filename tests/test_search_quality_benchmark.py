"""The search-quality benchmark's bookkeeping: wall time charged per search, hypervolume as the
search goes, AMP's stored points, the grid's resume and the report tables (no training)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
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
from autoq.search.spec import SearchSpec, paper_setting

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "search_quality.py"
_SPEC = importlib.util.spec_from_file_location("search_quality_benchmark", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # dataclasses look their module up while the class is built
_SPEC.loader.exec_module(bench)

START = datetime(2026, 11, 29, 12, 0, 0)
SCALES = [1.0, 0.5, 0.2]


def paper_space(name: str) -> SearchSpec:
    """The bundled space ``name`` in the paper's setting (first and last layers float, no
    knob on): what the knob tests turn knobs on from, whatever the space's own defaults."""
    [spec] = bench.resolve_spaces([name])
    return paper_setting(spec)


def new_study() -> optuna.Study:
    return optuna.create_study(directions=list(records.DIRECTIONS))


def add_trial(study: optuna.Study, *, scale: float, at: float, seconds: float,
              float_seconds: float = 0.0, mse: float = 0.1, cost: float = 10.0,
              state: TrialState = TrialState.COMPLETE, error: str | None = None,
              baseline: str | None = None, float_mse: float | None = None) -> None:
    """A finished trial that started ``at`` seconds after START and lasted ``seconds``, of which
    ``float_seconds`` went to its float model (whose MSE was ``float_mse``, when given)."""
    attrs: dict[str, Any] = {records.TIMINGS_ATTR: {"float": float_seconds, "qat": 1.0}}
    if float_mse is not None:
        attrs[records.FLOAT_MSE_ATTR] = float_mse
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
                              {"a": bench.Ceilings(3.0, 2.5), "b": bench.Ceilings(1.5)})
    assert rows[0] == ["space", "grid hv", "ceiling", "by scale", "grid", "random", "tpe",
                       "autoq"]
    assert rows[1] == ["a", "2", "1.50", "1.25", "1.00", "missing", "0.90 (1/3)", "1.20*"]
    assert rows[2] == ["b", "missing", "—", "—", "missing", "missing", "missing", "no grid"]


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


def test_the_ceiling_by_scale_puts_each_scales_floor_at_its_float_models_mse() -> None:
    grid, autoq = new_study(), new_study()
    add_trial(grid, scale=1.0, at=0, seconds=1, mse=0.5, cost=50.0, float_mse=0.4)
    add_trial(autoq, scale=0.5, at=0, seconds=1, mse=0.2, cost=80.0, float_mse=0.1)
    add_trial(autoq, scale=0.5, at=1, seconds=1, mse=0.05, cost=90.0, float_mse=0.1)
    add_trial(autoq, scale=0.2, at=2, seconds=1, state=TrialState.FAIL, error="NaN loss")
    results = {bench.Piece("s", method, 0): bench.piece_result(
        bench.Piece("s", method, 0), study.get_trials(), {}, REFERENCE)
        for method, study in [("grid", grid), ("autoq", autoq)]}
    floors = {1.0: 10.0, 0.5: 1.0, 0.2: 0.1}
    # Against the reference (100, 1): scale 0.5 at cost 1 and MSE 0.05 (its best trial, below
    # its float model's 0.1) dominates scale 1's (10, 0.4); scale 0.2 ran no complete trial.
    assert bench.scale_ceiling(results, REFERENCE, floors) == pytest.approx(
        math.log10(100 / 1) * math.log10(1 / 0.05))
    # With scale 1 cheaper than scale 0.5's point, both count: a staircase of two.
    cheaper = {**floors, 1.0: 0.5}
    assert bench.scale_ceiling(results, REFERENCE, cheaper) == pytest.approx(
        math.log10(100 / 0.5) * math.log10(1 / 0.4)
        + math.log10(100 / 1) * math.log10(0.4 / 0.05))
    assert bench.scale_ceiling({}, REFERENCE, floors) is None


def test_method_rows_show_partial_and_missing_pieces() -> None:
    results = {r.piece: r for r in [result("grid", 0, 2.0), result("tpe", 0, 2.0, budget=3)]}
    rows = bench.method_rows(results, ["grid", "tpe", "autoq"], float_mse=0.2)
    assert rows[1][:3] == ["grid", "1", "2"]
    assert rows[2][:2] == ["tpe", "partial seed 0: 1/3"]
    assert rows[3][:2] == ["autoq", "missing"]


def test_method_rows_give_each_seeds_hypervolume_over_the_grids() -> None:
    results = {r.piece: r for r in [result("grid", 0, 2.0), result("autoq", 0, 2.4),
                                     result("autoq", 2, 1.8), result("autoq", 1, 2.6)]}
    rows = bench.method_rows(results, ["grid", "autoq"], float_mse=0.2)
    assert rows[0][-1] == "hv / grid, by seed"
    assert rows[1][-1] == "1.000"
    assert rows[2][2] == "2.4 [1.8, 2.6]"
    assert rows[2][-1] == "1.200, 1.300, 0.900"  # seeds 0, 1, 2: the one that lost shows
    without_grid = {r.piece: r for r in [result("autoq", 0, 2.4)]}
    assert bench.method_rows(without_grid, ["autoq"], float_mse=0.2)[1][-1] == "no grid"


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


def test_machine_record_names_the_code_revision_of_the_work_tree_or_the_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    head = subprocess.run(["git", "-C", str(bench.ROOT), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert bench.code_revision().removesuffix("+changes") == head
    # What `git archive` writes in place of the placeholder (.gitattributes: export-subst).
    archived = subprocess.run(["git", "-C", str(bench.ROOT), "archive", "HEAD",
                               "benchmarks/REVISION"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archived, check=True)
    monkeypatch.setattr(bench, "ROOT", tmp_path)  # an archive: no .git
    monkeypatch.setattr(bench, "REVISION_FILE", tmp_path / "benchmarks" / "REVISION")
    assert bench.code_revision() == head
    study = new_study()
    with bench.machine_record(study, torch_threads=1):
        pass
    assert study.user_attrs[bench.RUNS_ATTR][0]["code"] == head
    bench.REVISION_FILE.write_text("$Format:%H$\n")  # a copy of the work tree's file
    assert bench.code_revision() == "unknown"


def stored_piece(storage: str, piece: Any, *, trials: int, budget: int) -> None:
    """``piece`` on ``storage`` as a run leaves it: ``trials`` finished of ``budget``."""
    study = optuna.create_study(study_name=piece.study_name, storage=storage,
                                directions=list(records.DIRECTIONS))
    study.set_user_attr(bench.REFERENCE_ATTR, list(REFERENCE))
    study.set_user_attr(bench.BUDGET_ATTR, budget)
    study.set_user_attr(bench.FLOAT_MODELS_ATTR, FLOAT_MODELS)
    for number in range(trials):
        add_trial(study, scale=[1.0, 0.5][number % 2], at=10.0 * number, seconds=5.0,
                  mse=0.1 / (number + 1), cost=10.0 * (number + 1))


def test_copy_pieces_copies_finished_pieces_that_read_back_the_same(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    destination = f"sqlite:///{tmp_path / 'destination.db'}"
    [spec] = bench.resolve_spaces(["burgers-fno-small"])
    grid, autoq, tpe = (bench.Piece(spec.name, method, 0) for method in ("grid", "autoq", "tpe"))
    stored_piece(source, grid, trials=3, budget=3)
    stored_piece(source, autoq, trials=2, budget=3)  # a killed run's
    stored_piece(destination, tpe, trials=1, budget=3)  # another run's, left as it is

    def copy() -> list[str]:
        return bench.copy_pieces([spec], ["grid", "autoq", "tpe"], [0],
                                 bench.open_storage(source), bench.open_storage(destination),
                                 budget=3, amp_points=5)

    assert copy() == [f"{grid.study_name}: copied",
                      f"{autoq.study_name}: not finished, not copied",
                      f"{tpe.study_name}: on the destination already, left as it is"]
    wanted = [grid, autoq, tpe]
    before = bench.read_space(bench.open_storage(source), spec.name, wanted)[1][grid]
    reference, after = bench.read_space(bench.open_storage(destination), spec.name, wanted)
    assert reference == REFERENCE and set(after) == {grid, tpe}
    assert after[grid].steps == before.steps and after[grid].finished
    assert copy()[0] == f"{grid.study_name}: on the destination already, left as it is"


def test_knob_rows_compare_each_knob_with_autoq_and_the_knobs_it_adds_to_seed_by_seed(
        ) -> None:
    results = {r.piece: r for r in [
        result("grid", 0, 2.0), result("autoq", 0, 2.0), result("autoq", 1, 4.0),
        result("autoq+first_last", 0, 2.5), result("autoq+first_last", 1, 3.0),
        result("autoq+first_last", 2, 9.0),  # autoq has no seed 2: not compared
        result("autoq+warm", 0, 2.0), result("autoq+warm", 1, None),
        result("autoq+first_last+warm", 0, 2.4), result("autoq+first_last+warm", 2, 9.9)]}
    methods = bench.benchmark_methods(["grid", "autoq"], ["first_last", "warm", "sensitivity",
                                                          "first_last+warm"])
    results[bench.Piece("s", "autoq+first_last", 0)].steps.insert(0, bench.Step(4.0, 1, 2.1))
    assert bench.knob_rows({"a": results}, methods) == [
        ["space", "method", "against", "hv / base's (seed: ratio)", "at least base's",
         "time to base's hv / base's wall"],
        ["a", "autoq+first_last", "autoq", "0: 1.250, 1: 0.750", "1/2", "0: 0.40, 1: never"],
        ["a", "autoq+warm", "autoq", "0: 1.000", "1/1", "0: 1.00"],
        ["a", "autoq+first_last+warm", "autoq", "0: 1.200", "1/1", "0: 1.00"],
        ["a", "autoq+first_last+warm", "autoq+first_last", "0: 0.960, 2: 1.100", "1/2",
         "0: never, 2: 1.00"],
        ["a", "autoq+first_last+warm", "autoq+warm", "0: 1.200", "1/1", "0: 1.00"]]


@pytest.fixture
def fake_runners(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """autoq's TrialRunner replaced by a stand-in with what run_space and method_runner read
    of one (a float model at MSE 0.01 costing 1e9); the runners built, in order."""
    import types

    import autoq.search

    built: list[Any] = []

    class Runner:
        def __init__(self, spec: Any, **shared: Any) -> None:
            self.spec, self.shared = spec, shared
            self.cache, self.problem = shared.get("cache", object()), object()
            cost = types.SimpleNamespace(total=1e9)
            self.space = shared.get("space") or types.SimpleNamespace(
                ranks=[None], cost=lambda config: cost, regime=lambda *args: None)
            built.append(self)

        def float_model(self, *args: Any) -> Any:
            return types.SimpleNamespace(val_mse=0.01)

    monkeypatch.setattr(autoq.search, "TrialRunner", Runner)
    return built


def test_run_space_goes_on_past_a_failing_piece(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str],
                                                fake_runners: list[Any]) -> None:
    import types

    ran = []

    def run_search_piece(piece: Any, *args: Any, **kwargs: Any) -> None:
        ran.append(piece.method)
        if piece.method == "tpe":
            raise RuntimeError("sampler exploded")

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


def _tiny_benchmark(tmp_path: Path, *arguments: str) -> str:
    """The benchmark run as a user runs it, on the tiny spec, its storage and float cache
    under ``tmp_path``; its standard output."""
    import subprocess

    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC.format(data=tmp_path / "tiny.h5"))
    env = {**os.environ, "AUTOQ_THREADS": "1", "AUTOQ_CACHE_DIR": str(tmp_path / "float")}
    done = subprocess.run(
        [sys.executable, str(_PATH), "--spaces", str(spec), "--seeds", "0", "--out",
         str(tmp_path / "out"), "--plot-dir", str(tmp_path), *arguments],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_tiny_benchmark_resumes_an_unfinished_piece_and_reads_a_finished_one(
        tmp_path: Path) -> None:
    def benchmark(*extra: str) -> str:
        return _tiny_benchmark(tmp_path, "--methods", "grid", "autoq", *extra)

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
    # Every piece finished: --floor still prints the floor, from the cached float model.
    assert "cost floor (w4a8 everywhere) / float MSE per scale: 1: " in benchmark(
        "--budget", "2", "--floor")


# --- knobs -----------------------------------------------------------------------------------


def test_knob_method_joins_knobs_and_names_an_unknown_one_with_the_known() -> None:
    assert bench.knob_method("allow_float") == "autoq+allow_float"
    assert bench.knob_method("first_last+transform") == "autoq+first_last+transform"
    with pytest.raises(SpecError, match=r"unknown knob 'bogus'; known: allow_float, first_last"):
        bench.knob_method("bogus")
    with pytest.raises(SpecError, match=r"cubic and fourier both set space\.resample"):
        bench.knob_method("cubic+fourier")
    with pytest.raises(SpecError, match="names a knob twice"):
        bench.knob_method("warm+warm")
    assert bench.benchmark_methods(["grid", "autoq"], ["warm", "warm"]) == [
        "grid", "autoq", "autoq+warm"]


def test_method_spec_applies_the_knobs_validated_and_leaves_the_rest() -> None:
    fno = paper_space("burgers-fno-small")
    assert bench.method_spec(fno, "autoq") is fno
    both = bench.method_spec(fno, "autoq+first_last+transform")
    assert both.space.first_last_float is False and both.space.transform == "search"
    assert both.space.model_copy(update={"first_last_float": True, "transform": "fft"}) == \
        fno.space
    assert both.model_copy(update={"space": fno.space}) == fno
    warm = bench.method_spec(fno, "autoq+warm")
    assert warm.search.warm_start is not None and warm.search.warm_start.keep == 16
    # The knob's piece runs autoq's sampler, which search.sensitivity requires.
    tpe = fno.model_copy(update={"search": fno.search.model_copy(update={"sampler": "tpe"})})
    assert bench.method_spec(tpe, "autoq+sensitivity").search.sensitivity.bits == 4
    with pytest.raises(SpecError, match=r"knob 'warm' on burgers-fno-small: the space has "
                                        r"search.warm_start so already"):
        bench.method_spec(warm, "autoq+warm")


def test_low_scales_adds_scale_factors_to_the_spaces_menu_and_sets_nothing_else() -> None:
    unet = paper_space("darcy-unet-small")
    unet = unet.model_copy(update={"space": unet.space.model_copy(update={
        "scales": [1.0, 0.85, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2]})})  # the small spaces' first
    low = bench.method_spec(unet, "autoq+low_scales")
    assert low.space.scales == [*unet.space.scales, 0.15, 0.1]  # kept in descending order
    assert low.model_copy(update={"space": unet.space}) == unet
    assert bench.method_spec(low, "autoq+first_last").space.scales == low.space.scales
    with pytest.raises(SpecError, match=r"knob 'low_scales' on darcy-unet-small: the space has "
                                        r"space.scales holding 0.15, 0.1 so already"):
        bench.method_spec(low, "autoq+low_scales")


def test_bounded_searches_within_the_benchmarks_tightest_error_bound() -> None:
    fno = paper_space("burgers-fno-small")
    bounded = bench.method_spec(fno, "autoq+bounded")
    assert bounded.search.constraints.max_mse_ratio == bench.MSE_BOUNDS[0] == 1.1
    assert bounded.model_copy(update={"search": fno.search}) == fno
    # The bound joins the space's other constraints rather than replacing them.
    capped = fno.model_copy(update={"search": fno.search.model_copy(update={
        "constraints": fno.search.constraints.model_copy(update={"max_cost": 1e9})})})
    both = bench.method_spec(capped, "autoq+bounded").search.constraints
    assert (both.max_cost, both.max_mse_ratio) == (1e9, 1.1)
    absolute = fno.model_copy(update={"search": fno.search.model_copy(update={
        "constraints": fno.search.constraints.model_copy(update={"max_mse": 1e-4})})})
    with pytest.raises(SpecError, match=r"knob 'bounded' on burgers-fno-small: .*max_mse "
                                        r"\(an absolute error bound\) and max_mse_ratio"):
        bench.method_spec(absolute, "autoq+bounded")


def test_reuse_sets_the_float_recipe_and_the_grid_trains_every_scale_from_scratch() -> None:
    fno = paper_space("burgers-fno-small")
    reuse = bench.method_spec(fno, "autoq+reuse")
    assert reuse.train == fno.train.model_copy(update={"rescale_epochs": 2})
    assert reuse.model_copy(update={"train": fno.train}) == fno
    assert bench.method_spec(reuse, "grid") == fno
    with pytest.raises(SpecError, match=r"knob 'reuse' on burgers-fno-small: the space has "
                                        r"train.rescale_epochs so already"):
        bench.method_spec(reuse, "autoq+reuse")


def test_the_grid_runs_in_the_papers_setting_whatever_the_spaces_defaults() -> None:
    fno = paper_space("burgers-fno-small")
    assert bench.method_spec(fno, "grid") is fno
    knobbed = bench.method_spec(fno, "autoq+first_last+warm")
    assert bench.method_spec(knobbed, "grid") == fno


def test_float_ends_is_the_off_state_of_a_space_that_searches_its_first_and_last_layers(
        ) -> None:
    paper = paper_space("burgers-fno-small")
    searched = bench.method_spec(paper, "autoq+first_last")
    assert bench.method_spec(searched, "autoq+float_ends").space == paper.space
    assert list(bench.refusals(paper, ["autoq+float_ends"])) == ["autoq+float_ends"]


def test_a_knob_a_space_refuses_is_a_spec_error_naming_knob_and_space() -> None:
    darcy = paper_space("darcy-unet-small")
    with pytest.raises(SpecError, match=r"knob 'fourier' on darcy-unet-small: .*not periodic"):
        bench.method_spec(darcy, "autoq+fourier")
    with pytest.raises(SpecError, match=r"knob 'transform' on darcy-unet-small: transform is "
                                        r"for model.arch fno, and the space's model is 'unet'"):
        bench.method_spec(darcy, "autoq+transform")
    refused = bench.refusals(darcy, ["autoq", "autoq+first_last", "autoq+transform"])
    assert list(refused) == ["autoq+transform"]


def test_knob_pieces_round_trip_through_their_study_names() -> None:
    knob = bench.Piece("burgers-fno-small", "autoq+first_last+transform", 2)
    assert knob.study_name == "burgers-fno-small-autoq+first_last+transform-seed2"
    assert bench.Piece.from_study_name(knob.study_name) == knob
    # The names the storages already hold still parse.
    assert bench.Piece.from_study_name("diffsorp-transformer-small-autoq-seed0") == \
        bench.Piece("diffsorp-transformer-small", "autoq", 0)
    assert bench.Piece.from_study_name("s-tpe+warm-seed0") is None  # knobs are autoq's
    assert [(p.method, p.seed) for p in bench.pieces("s", ["grid", "autoq+warm"], [0, 1])] == [
        ("grid", 0), ("autoq+warm", 0), ("autoq+warm", 1)]


def test_a_knob_piece_runs_autoqs_sampler_with_its_seed() -> None:
    [fno] = bench.resolve_spaces(["burgers-fno-small"])
    knobbed = bench.method_spec(fno, "autoq+allow_float")
    searched = bench.piece_spec(knobbed, bench.Piece(fno.name, "autoq+allow_float", 3), 7)
    assert (searched.search.sampler, searched.search.seed, searched.search.trials) == (
        "autoq", 3, 7)
    assert searched.space.allow_float


def test_the_sensitivity_pass_is_charged_before_the_first_trial() -> None:
    study = new_study()
    add_trial(study, scale=1.0, at=0, seconds=10)
    attrs = {records.SENSITIVITY_ATTR: records.Sensitivities(
        bits=4, scale=1.0, rank=None, float_error=0.01, weight={"g": 0.1}, act={"g": 0.2},
        seconds=12.0).to_json(),
        bench.FLOAT_MODELS_ATTR: {"1": {"seconds": 50.0, "upfront": True}}, bench.BUDGET_ATTR: 1}
    knob = bench.piece_result(bench.Piece("s", "autoq+sensitivity", 0), study.get_trials(),
                              attrs, REFERENCE)
    assert knob.upfront_seconds == 62
    assert [round(s.seconds, 6) for s in knob.steps] == [72]


def test_the_tables_show_knob_methods_as_columns_after_autoq() -> None:
    results = {r.piece: r for r in [
        result("grid", 0, 2.0), result("autoq", 0, 2.4), result("autoq+first_last", 0, 3.0),
        result("autoq+warm", 0, None)]}
    methods = bench.benchmark_methods(["grid", "autoq"], ["first_last", "warm", "transform"])
    rows = bench.summary_rows({"a": results}, methods, [0], {"a": bench.Ceilings()},
                              {"a": ["autoq+transform"]})
    assert rows[0] == ["space", "grid hv", "ceiling", "by scale", "grid", "autoq",
                       "autoq+first_last", "autoq+warm", "autoq+transform"]
    assert rows[1] == ["a", "2", "—", "—", "1.00", "1.20", "1.50*", "missing", "n/a"]
    per_space = bench.method_rows(results, methods, float_mse=0.2,
                                  refused=["autoq+transform"])
    assert [row[:2] for row in per_space[3:]] == [
        ["autoq+first_last", "1"], ["autoq+warm", "partial seed 0: 0/1"],
        ["autoq+transform", "n/a"]]
    assert per_space[3][3] == "1"  # its cost @ MSE ≤ 1.1× float
    report = bench.space_report("a", REFERENCE, results, methods,
                                {"autoq+transform": "knob 'transform' on a: for fno"})
    assert "  autoq+transform: n/a: knob 'transform' on a: for fno" in report
    assert any(line.startswith("  autoq+first_last front (seed 0)") for line in report)
    later = {r.piece: r for r in [result("autoq+warm", 0, 1.0), result("autoq", 1, 1.0),
                                  result("autoq+allow_float", 0, 1.0)]}
    assert [line.split("/")[0] for line in bench.machine_lines(
        later, ["autoq", "autoq+warm", "autoq+allow_float"])] == [
        "autoq+warm", "autoq+allow_float", "autoq"]  # seed-major, in the columns' order


def test_the_report_shows_stored_pieces_of_a_knob_the_space_has_since_made_its_default(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    [spec] = bench.resolve_spaces(["darcy-unet-small"])  # first and last layers searched
    storage = f"sqlite:///{tmp_path / 'pieces.db'}"
    for method in ("grid", "autoq", "autoq+first_last"):
        stored_piece(storage, bench.Piece(spec.name, method, 0), trials=3, budget=3)
    args = argparse.Namespace(methods=["grid", "autoq"], knobs=["first_last", "float_ends"],
                              seeds=[0], floor=False, plot_dir=tmp_path, budget=3)
    bench.report([spec], bench.open_storage(storage), args, {})
    out = capsys.readouterr().out
    assert ("autoq+first_last: its stored pieces are shown; it would not run on the space as "
            "it is now: knob 'first_last' on darcy-unet-small: the space has "
            "space.first_last_float so already") in out
    row = next(line.split() for line in out.splitlines()
               if line.startswith("  darcy-unet-small "))
    assert row[-2:] == ["1.00", "missing"]  # first_last's piece read; float_ends not run yet


def test_run_space_runs_a_knob_on_its_own_spec_against_the_spaces_reference(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        fake_runners: list[Any]) -> None:
    import types

    ran: list[tuple[str, Any, Any, tuple[float, float]]] = []

    def run_search_piece(piece: Any, spec: Any, runner: Any, storage: Any, *,
                         reference: tuple[float, float], **kwargs: Any) -> None:
        ran.append((piece.method, spec, runner, reference))

    monkeypatch.setattr(bench, "run_search_piece", run_search_piece)
    spec = paper_space("burgers-unet-small")
    args = types.SimpleNamespace(budget=2, amp_points=5)
    methods = bench.benchmark_methods(["autoq"], ["first_last", "transform", "warm"])
    wanted = bench.pieces(spec.name, methods, [0, 1])
    bench.run_space(spec, wanted, optuna.storages.InMemoryStorage(), args, 1)
    base = fake_runners[0]
    assert [method for method, *_ in ran] == ["autoq", "autoq+first_last", "autoq+warm"] * 2
    by_method = {method: (searched, runner, reference) for method, searched, runner, reference
                 in ran}
    assert by_method["autoq"][:2] == (spec, base)
    first_last, knob_runner, reference = by_method["autoq+first_last"]
    assert first_last.space.first_last_float is False
    assert knob_runner.spec == first_last and knob_runner is not base
    assert knob_runner.shared["cache"] is base.cache
    assert knob_runner.shared["problem"] is base.problem
    assert knob_runner.shared["space"] is None  # the knob changes the space: built anew
    assert by_method["autoq+warm"][1].shared["space"] is base.space
    assert reference == by_method["autoq+warm"][2] == by_method["autoq"][2] == (1e9, 0.1)
    assert len(fake_runners) == 3  # the space's runner and one per knob, reused over seeds
    out = capsys.readouterr().out
    assert ("burgers-unet-small-autoq+transform-seed0: skipped: knob 'transform' on "
            "burgers-unet-small: transform is for model.arch fno") in out


def test_run_space_runs_the_grid_in_the_papers_setting_on_a_space_with_a_knob_default(
        monkeypatch: pytest.MonkeyPatch, fake_runners: list[Any]) -> None:
    import types

    ran: dict[str, tuple[Any, Any]] = {}

    def run_search_piece(piece: Any, spec: Any, runner: Any, *args: Any, **kwargs: Any
                         ) -> None:
        ran[piece.method] = (spec, runner)

    monkeypatch.setattr(bench, "run_search_piece", run_search_piece)
    unet = paper_space("burgers-unet-small")
    searched = unet.model_copy(update={"space": unet.space.model_copy(
        update={"first_last_float": False})})
    args = types.SimpleNamespace(budget=2, amp_points=5)
    bench.run_space(searched, bench.pieces(searched.name, ["grid", "autoq"], [0]),
                    optuna.storages.InMemoryStorage(), args, 1)
    base = fake_runners[0]
    assert ran["autoq"] == (searched, base)
    grid_spec, grid_runner = ran["grid"]
    assert grid_spec.space.first_last_float is True and grid_spec == unet
    assert grid_runner.spec == grid_spec and grid_runner.shared["cache"] is base.cache
    assert grid_runner.shared["space"] is None  # first and last layers float: another space


def test_the_ceiling_reaches_the_cheapest_corner_a_knob_opens_and_skips_screened_trials(
        ) -> None:
    from autoq.search import SearchSpace

    fno = paper_space("burgers-fno-small")
    space = SearchSpace(fno)
    plain = bench.scale_floors(fno, space, ["grid", "autoq", "autoq+warm"])
    assert plain == bench.cost_floors(fno, space)
    opened = bench.method_spec(fno, "autoq+first_last")
    assert bench.scale_floors(fno, space, ["autoq", "autoq+first_last"]) == \
        bench.cost_floors(opened, SearchSpace(opened))
    assert all(bench.cost_floors(opened, SearchSpace(opened))[scale] < cost
               for scale, cost in plain.items())
    # A knob that adds scales adds their floors; the others keep the space's.
    paper = fno.model_copy(update={"space": fno.space.model_copy(update={
        "scales": [1.0, 0.7, 0.5, 0.3, 0.2]})})
    paper_floors = bench.cost_floors(paper, SearchSpace(paper))
    low = bench.scale_floors(paper, SearchSpace(paper), ["autoq", "autoq+low_scales"])
    assert {scale: low[scale] for scale in paper_floors} == paper_floors
    assert sorted(set(low) - set(paper_floors)) == [0.1, 0.15]
    screened = records.TrialPoint(number=1, state="COMPLETE", mse=0.01, cost=5.0, scale=1.0,
                                  bits={}, feasible=False)
    fidelity = dataclasses.replace(result("autoq+fidelity", 0, 1.0),
                                   points=[result("x", 0, 1.0).points[0], screened])
    # The full-length trial's MSE 0.1, not the screened 0.01: (2 − 1) × (0 + 1).
    assert bench.hypervolume_ceiling({fidelity.piece: fidelity}, REFERENCE, floor=10.0) == \
        pytest.approx(1.0)


def test_an_unknown_knob_stops_the_benchmark_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", [
        "search_quality.py", "--knobs", "warm", "wram", "--summary", "--spaces",
        "burgers-fno-small", "--storage", f"sqlite:///{tmp_path / 'q.db'}", "--plot-dir",
        str(tmp_path)])
    with pytest.raises(SystemExit) as stopped:
        bench.main()
    assert stopped.value.code == 2
    assert "unknown knob 'wram'; known: allow_float" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_benchmark_runs_a_knob_piece_beside_autoq_and_reads_it_back(
        tmp_path: Path) -> None:
    def benchmark(*extra: str) -> str:
        return _tiny_benchmark(tmp_path, "--methods", "autoq", "--knobs", "first_last",
                               "--budget", "2", *extra)

    ran = benchmark()
    assert "tiny-quality-autoq+first_last-seed0: done" in ran
    storage = f"sqlite:///{tmp_path / 'out' / 'search_quality.db'}"
    autoq, knob = (optuna.load_study(study_name=f"tiny-quality-{method}-seed0", storage=storage)
                   for method in ("autoq", "autoq+first_last"))
    assert [t.state for t in knob.get_trials()] == [TrialState.COMPLETE] * 2
    assert knob.user_attrs[bench.REFERENCE_ATTR] == autoq.user_attrs[bench.REFERENCE_ATTR]
    # One float model, trained for the space and charged to both at its training seconds.
    assert knob.user_attrs[bench.FLOAT_MODELS_ATTR] == autoq.user_attrs[bench.FLOAT_MODELS_ATTR]
    stored = bench.parse_spec(json.loads(knob.user_attrs[records.SPEC_ATTR]))
    assert stored.space.first_last_float is False and stored.search.sampler == "autoq"
    summary = benchmark("--summary")
    assert "tiny-quality-autoq+first_last-seed0" not in summary  # read, not run
    knob_row = next(line for line in summary.splitlines()
                    if line.strip().startswith("autoq+first_last "))
    assert knob_row.split()[1] == "2"  # its trials
    header = next(line for line in summary.splitlines() if line.strip().startswith("space "))
    assert header.split()[-2:] == ["autoq", "autoq+first_last"]
