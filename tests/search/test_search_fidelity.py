"""Multi-fidelity QAT and warm-started QAT (``search.fidelity``, ``search.warm_start``).

Real tiny QAT trials (the shared tiny Burgers-FNO spec) whose optimiser steps are counted; the
promotion rule and the front's exclusion of screened trials on synthetic numbers, against
Optuna's own ``best_trials`` and hand-worked figures; the warm-start store's choice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from autoq.cost import REGIMES
from autoq.errors import SpecError
from autoq.precision import TrialConfig
from autoq.search import (
    SearchSpec,
    best_mse_point,
    hypervolume,
    load_study,
    operating_point,
    pareto_front,
    parse_spec,
    run_search,
    study_points,
)
from autoq.search.fidelity import estimated_full_error, promotes, screening_ratio
from autoq.search.records import (
    BASELINE_ATTR,
    FIDELITY_ATTR,
    FIDELITY_CONSTRAINT,
    QAT_STEPS_ATTR,
    SCREENED_MSE_ATTR,
    WARM_START_ATTR,
)
from autoq.search.report import trials_table
from autoq.search.trial import TrialRunner, WarmStarts, bits_distance


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _with_search(payload: dict[str, Any], **search: Any) -> SearchSpec:
    """The tiny spec with 4-window QAT batches (so its QAT has several steps to screen on) and
    ``search`` merged into its search settings."""
    return parse_spec({**payload, "qat": {**payload["qat"], "batch_size": 4},
                       "search": {**payload["search"], **search}})


@pytest.fixture
def optimiser_steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A one-element counter of AdamW optimiser steps taken from now on."""
    count = [0]
    step = torch.optim.AdamW.step

    def counted(self: torch.optim.AdamW, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    yield count


def _mixed(runner: TrialRunner, scale: float, weight_bits: int = 4) -> TrialConfig:
    return runner.space.config(scale, {group: (weight_bits, 8) for group in runner.space.groups})


def test_screening_runs_a_prefix_and_promotion_continues_it_to_the_full_run(
    tiny_spec_payload: dict[str, Any], optimiser_steps: list[int]
) -> None:
    plain = TrialRunner(_with_search(tiny_spec_payload))
    screening = TrialRunner(_with_search(tiny_spec_payload, fidelity={"screening": 0.5},
                                         warm_start={"keep": 2}), problem=plain.problem)
    config = _mixed(plain, 1.0)
    plain.float_model(1.0)  # trained (or loaded) before the steps are counted
    optimiser_steps[0] = 0
    full = plain.run(config, seed=3)
    full_steps = optimiser_steps[0]
    assert full_steps >= 4 and full.qat_steps == full_steps and full.fidelity is None

    optimiser_steps[0] = 0
    decisions: list[tuple[float, float]] = []
    screened = screening.run(config, seed=3, search="s", trial_number=0,
                             promote=lambda mse, cost: decisions.append((mse, cost)) or False)
    assert optimiser_steps[0] == screened.qat_steps == math.ceil(full_steps / 2) < full_steps
    assert screened.fidelity == "screened" and screened.mse == screened.screened_mse
    assert decisions == [(screened.mse, full.cost.total)]
    assert screening.warm_starts is not None and len(screening.warm_starts) == 0  # not trained

    optimiser_steps[0] = 0
    promoted = screening.run(config, seed=3, search="s", trial_number=1,
                             promote=lambda mse, cost: True)
    assert promoted.warm_start is None and len(screening.warm_starts) == 1
    assert optimiser_steps[0] == promoted.qat_steps == full_steps
    assert promoted.fidelity == "full" and promoted.screened_mse == pytest.approx(screened.mse)
    # Continued from the screened state, not restarted: the same run as the plain trial's.
    assert promoted.mse == pytest.approx(full.mse, rel=1e-5)
    assert promoted.mse != screened.mse


def test_a_fidelity_search_records_each_trial_and_keeps_screened_ones_off_the_front(
    tiny_spec_payload: dict[str, Any], sqlite_url: str
) -> None:
    spec = _with_search(tiny_spec_payload, sampler="autoq", trials=3,
                        fidelity={"screening": 0.25, "margin": 0.0})
    run_search(spec, storage=sqlite_url)
    study = load_study(spec.name, storage=sqlite_url)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 3
    full_steps = trials[0].user_attrs[QAT_STEPS_ATTR]  # the first one meets an empty front
    assert trials[0].user_attrs[FIDELITY_ATTR] == "full"
    for trial in trials:
        fidelity = trial.user_attrs[FIDELITY_ATTR]
        assert fidelity in ("full", "screened")
        assert trial.constraints == {FIDELITY_CONSTRAINT: 1.0 if fidelity == "screened" else 0.0}
        assert (trial.user_attrs[QAT_STEPS_ATTR] == full_steps) == (fidelity == "full")
        assert trial.user_attrs[SCREENED_MSE_ATTR] > 0
    front = pareto_front(study_points(study))
    assert {p.number for p in front} == {t.number for t in study.best_trials}
    assert all(p.details[FIDELITY_ATTR] == "full" for p in front)


def _trial(number: int, mse: float, cost: float, fidelity: str, *,
           screened_mse: float | None = None, bits: tuple[int, int] = (8, 8)) -> FrozenTrial:
    """A complete trial as a multi-fidelity search records it."""
    attrs: dict[str, Any] = {FIDELITY_ATTR: fidelity, "bits": {"conv": list(bits)}}
    if screened_mse is not None:
        attrs[SCREENED_MSE_ATTR] = screened_mse
    trial = create_trial(state=TrialState.COMPLETE, values=[mse, cost], params={"scale": 1.0},
                         distributions={"scale": CategoricalDistribution([1.0])},
                         user_attrs=attrs,
                         constraints={FIDELITY_CONSTRAINT: 1.0 if fidelity == "screened"
                                      else 0.0})
    trial.number = number
    return trial


def test_a_screened_trial_with_the_lowest_error_is_neither_on_the_front_nor_picked() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    for trial in [_trial(0, 4e-4, 10.0, "full", screened_mse=8e-4),
                  _trial(1, 2e-4, 30.0, "full", screened_mse=5e-4),
                  _trial(2, 1e-4, 5.0, "screened", screened_mse=1e-4)]:
        study.add_trial(trial)
    points = study_points(study)
    front = pareto_front(points)
    assert [p.number for p in front] == [0, 1] == sorted(t.number for t in study.best_trials)
    chosen = operating_point(points, 1e-3)
    assert chosen is not None and chosen.number == 0
    best = best_mse_point(points)
    assert best is not None and best.number == 1
    assert operating_point(points, 1.5e-4) is None
    reference = (100.0, 1e-3)
    full_only = [p for p in points if p.number != 2]
    assert hypervolume(points, reference) == pytest.approx(hypervolume(full_only, reference))
    assert "COMPLETE (screened)" in trials_table(points)


@pytest.mark.parametrize("fidelity", ["screened", "full", None])
def test_a_result_records_its_fidelity_steps_and_warm_start(fidelity: str | None) -> None:
    from autoq.cost import CostReport, LayerCost
    from autoq.search.objective import record_result
    from autoq.search.trial import TrialResult

    cost = CostReport(scale=1.0, network_shape=(8,),
                      layers={"conv": LayerCost(10, 0, 8, 8, quantized=True)})
    result = TrialResult(mse=2e-4, cost=cost, float_mse=1e-4, float_reference=1e-4,
                         qat_steps=7, fidelity=fidelity,
                         screened_mse=None if fidelity is None else 3e-4,
                         warm_start=None if fidelity is None else 4)
    study = optuna.create_study(directions=["minimize", "minimize"])
    trial = study.ask()
    record_result(trial, result, max_mse=None, max_cost=None)
    study.tell(trial, [result.mse, result.objective_cost])
    recorded = study.trials[0]
    assert recorded.user_attrs[QAT_STEPS_ATTR] == 7
    if fidelity is None:  # a search without the options records what it always did
        assert recorded.constraints == {}
        assert not {FIDELITY_ATTR, SCREENED_MSE_ATTR, WARM_START_ATTR} & set(recorded.user_attrs)
        return
    assert recorded.user_attrs[FIDELITY_ATTR] == fidelity
    assert recorded.user_attrs[SCREENED_MSE_ATTR] == 3e-4
    assert recorded.user_attrs[WARM_START_ATTR] == 4
    assert recorded.constraints == {FIDELITY_CONSTRAINT: 1.0 if fidelity == "screened" else 0.0}
    assert [t.number for t in study.best_trials] == ([] if fidelity == "screened" else [0])


def test_screened_errors_are_corrected_by_the_full_to_screened_ratio_of_full_trials() -> None:
    trials = [_trial(0, 2e-4, 10.0, "full", screened_mse=8e-4),    # ratio 1/4
              _trial(1, 1e-4, 30.0, "full", screened_mse=1e-4),    # ratio 1
              _trial(2, 3e-4, 5.0, "screened", screened_mse=3e-4),
              _trial(3, 1e-4, 5.0, "full")]                        # no screened error
    assert screening_ratio(trials) == pytest.approx(0.5)           # √(1/4 · 1)
    assert screening_ratio(trials[2:]) == 1.0
    assert estimated_full_error(trials[2], 0.5) == pytest.approx(1.5e-4)
    assert estimated_full_error(trials[0], 0.5) == pytest.approx(2e-4)


def test_autoq_sampler_learns_screened_trials_at_their_corrected_error(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoq.search.samplers.cost_aware import CostAwareSampler, NoisePowerModel

    fitted: list[list[float]] = []
    fit = NoisePowerModel.fit

    def spy(self: NoisePowerModel, configs: Any, log_mse: Any, float_errors: Any = None
            ) -> None:
        fitted.append(list(log_mse))
        fit(self, configs, log_mse, float_errors)

    monkeypatch.setattr(NoisePowerModel, "fit", spy)
    sampler = CostAwareSampler(scales=[1.0], groups={"g": ["conv"]}, weight_bits=[4, 8],
                               act_bits=[8], cost_fn=lambda params: 10.0 * params["w_bits:g"],
                               seed=0, candidates=8)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.add_trial(_trial(0, 2e-4, 80.0, "full", screened_mse=8e-4))
    study.add_trial(_trial(1, 4e-4, 40.0, "screened", screened_mse=4e-4, bits=(4, 8)))
    study.ask().suggest_categorical("w_bits:g", [4, 8])  # relative sampling runs here
    assert fitted[-1] == pytest.approx([math.log(2e-4), math.log(4e-4 * 0.25)])


@pytest.mark.parametrize(("predicted", "cost", "promoted"), [
    (9e-4, 20.0, False),   # a front trial (10, 5e-4) is cheaper and better than even 9e-4/1.25
    (5.5e-4, 20.0, True),  # within the margin of that trial: 5.5e-4/1.25 < 5e-4
    (9e-4, 5.0, True),     # cheaper than every front trial: extends the front
    (3e-4, 20.0, True),    # better than the front at its cost
])
def test_promotion_rule_on_a_front(predicted: float, cost: float, promoted: bool) -> None:
    front = [(10.0, 5e-4), (30.0, 2e-4)]
    assert promotes(predicted, cost, front, margin=0.25, useful_factor=10.0) is promoted


def test_promotion_rule_refuses_the_useless_and_the_infeasible() -> None:
    front = [(10.0, 5e-4), (30.0, 2e-4)]
    assert promotes(1.0, 0.1, [], margin=0.0, useful_factor=10.0)
    assert not promotes(2.6e-3, 1.0, front, margin=0.0, useful_factor=10.0)  # > 10 × 2e-4
    assert promotes(1.9e-3, 1.0, front, margin=0.0, useful_factor=10.0)
    assert not promotes(1e-4, 40.0, [], margin=0.0, useful_factor=10.0, max_cost=39.0)
    assert not promotes(1.3e-4, 40.0, [], margin=0.25, useful_factor=10.0, max_mse=1e-4)
    assert promotes(1.2e-4, 40.0, [], margin=0.25, useful_factor=10.0, max_mse=1e-4)
    with pytest.raises(ValueError, match="margin"):
        promotes(1.0, 1.0, [], margin=-0.1, useful_factor=10.0)


def _config(scale: float, **bits: tuple[int, int] | None) -> TrialConfig:
    return TrialConfig(scale=scale, bits=bits)


def test_warm_start_takes_the_nearest_held_trial_at_the_same_scale_only() -> None:
    store = WarmStarts(keep=3)
    weights = {"w": torch.zeros(2)}
    store.add("s", 0, _config(1.0, a=(4, 8), b=(4, 8)), weights)
    store.add("s", 1, _config(0.5, a=(8, 8), b=(8, 8)), weights)
    store.add("s", 2, _config(1.0, a=(8, 8), b=(2, 8)), weights)
    wanted = _config(1.0, a=(8, 8), b=(8, 8))
    # At scale 1: trial 0 is 1 + 1 = 2 octaves away, trial 2 is 0 + 2 = 2: a tie, the later
    # wins; trial 1 at scale 0.5 matches exactly and is never taken.
    held = store.nearest("s", wanted)
    assert held is not None and held[0] == 2
    store.add("s", 3, _config(1.0, a=(8, 8), b=(4, 16)), {"w": torch.ones(2)})  # 1 + 1 = 2
    held = store.nearest("s", wanted)
    assert held is not None and held[0] == 3 and torch.equal(held[1]["w"], torch.ones(2))
    store.add("s", 4, _config(1.0, a=(8, 8), b=(8, 16)), weights)  # 1 octave: nearest
    assert len(store) == 3  # trials 0 and 1 dropped, oldest first
    held = store.nearest("s", wanted)
    assert held is not None and held[0] == 4
    assert store.nearest("s", _config(0.5, a=(8, 8), b=(8, 8))) is None
    assert store.nearest("other", wanted) is None


def test_bits_distance_counts_octaves_and_float_as_sixteen_bits() -> None:
    assert bits_distance({"a": (4, 8), "b": None}, {"a": (8, 8), "b": (8, 16)}) == 2.0
    assert bits_distance({"a": None}, {"a": (16, 16)}) == 0.0
    assert bits_distance({"a": None}, {"a": (4, 2)}) == 5.0  # (4 − 2) + (4 − 1) octaves
    assert bits_distance({"a": (2, 16)}, {"a": (2, 16)}) == 0.0
    with pytest.raises(ValueError, match="different layers"):
        bits_distance({"a": (4, 8)}, {"b": (4, 8)})


def test_warm_started_trial_starts_from_the_nearest_trained_trial_at_its_scale(
    tiny_spec_payload: dict[str, Any]
) -> None:
    runner = TrialRunner(_with_search(tiny_spec_payload, warm_start={"keep": 4}))
    first = runner.run(_mixed(runner, 1.0), search="s", trial_number=0)
    assert first.warm_start is None
    trained = dict(runner.warm_starts._held["s", 0][1]) if runner.warm_starts else {}
    float_weights = runner.float_model(1.0).solver.network.state_dict()
    assert set(trained) == set(float_weights)
    assert any(not torch.equal(trained[k], float_weights[k]) for k in trained)
    other_scale = runner.run(_mixed(runner, 0.5), search="s", trial_number=1)
    assert other_scale.warm_start is None
    loaded: list[dict[str, torch.Tensor]] = []
    build_sim = TrialRunner.calibrated_sim

    def spy(self: TrialRunner, solver: Any, config: TrialConfig, *, seed: int) -> Any:
        loaded.append({k: v.clone() for k, v in solver.network.state_dict().items()})
        return build_sim(self, solver, config, seed=seed)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrialRunner, "calibrated_sim", spy)
        second = runner.run(_mixed(runner, 1.0, weight_bits=8), search="s", trial_number=2)
    assert second.warm_start == 0
    assert all(torch.equal(loaded[0][k], trained[k]) for k in trained)


def test_warm_start_is_recorded_on_the_trial(tiny_spec_payload: dict[str, Any],
                                             sqlite_url: str) -> None:
    spec = _with_search(tiny_spec_payload, sampler="autoq", trials=2, warm_start={"keep": 2})
    spec = spec.model_copy(update={"space": spec.space.model_copy(update={"scales": [1.0]})})
    run_search(spec, storage=sqlite_url)
    trials = load_study(spec.name, storage=sqlite_url).get_trials()
    assert WARM_START_ATTR not in trials[0].user_attrs
    assert trials[1].user_attrs[WARM_START_ATTR] == 0


def test_fidelity_and_warm_start_are_off_by_default_and_checked(
    tiny_spec_payload: dict[str, Any]
) -> None:
    spec = parse_spec(tiny_spec_payload)
    assert spec.search.fidelity is None and spec.search.warm_start is None
    with pytest.raises(SpecError, match=r"search\.fidelity\.screening"):
        _with_search(tiny_spec_payload, fidelity={"screening": 1.0})
    with pytest.raises(SpecError, match=r"search\.warm_start\.keep"):
        _with_search(tiny_spec_payload, warm_start={"keep": 0})
    with pytest.raises(SpecError, match=r"qat\.epochs is 0"):
        parse_spec({**tiny_spec_payload, "qat": {"epochs": 0},
                    "search": {"fidelity": {"screening": 0.5}}})
    with pytest.raises(SpecError, match=r"objectives \[error, bitops\]"):
        parse_spec({**tiny_spec_payload, "search": {"fidelity": {"screening": 0.5},
                                                    "objectives": ["error", "latency"]}})


def test_baseline_regimes_run_at_full_length_whatever_the_rule(
    tiny_spec_payload: dict[str, Any], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a rule that stops every trial at its screening step, the sampled trial is screened
    and the enqueued paper regimes still run their whole QAT."""
    from autoq.search import objective

    monkeypatch.setattr(objective, "screening_decision",
                        lambda *args, **kwargs: lambda screened_mse, cost: False)
    spec = _with_search(tiny_spec_payload, sampler="random", trials=3,
                        fidelity={"screening": 0.25, "margin": 0.0})
    spec = spec.model_copy(update={"space": spec.space.model_copy(update={"scales": [0.5]})})
    run_search(spec, storage=sqlite_url, baseline_grid=True, trials=len(REGIMES) + 1)
    trials = load_study(spec.name, storage=sqlite_url).get_trials(states=(TrialState.COMPLETE,))
    fidelity = {t.user_attrs.get(BASELINE_ATTR): t.user_attrs[FIDELITY_ATTR] for t in trials}
    assert fidelity == {**dict.fromkeys(REGIMES, "full"), None: "screened"}
