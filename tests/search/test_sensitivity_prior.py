"""``search.sensitivity``: the calibration-only sensitivity pass and autoq's sampler's prior.

The pass runs for real on the tiny Burgers spec (AIMET calibration, no QAT); the prior's effect
on the sampler is shown on a closed-form problem of two groups whose measured sensitivities
are opposite for weights and activations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pytest

from autoq.errors import SpecError
from autoq.search import parse_spec, run_search
from autoq.search import sensitivity as sensitivity_module
from autoq.search.records import SENSITIVITY_ATTR, Sensitivities, recorded_sensitivities
from autoq.search.samplers import CostAwareSampler
from autoq.search.sensitivity import measure_sensitivities
from autoq.search.storage import open_storage
from autoq.search.trial import TrialRunner

BITS = [4, 8, 16]
# The truth of the closed-form problem: A's weights and B's activations are the sensitive ones.
WEIGHT_SENSITIVITY = {"A": 1.0, "B": 0.001}
ACT_SENSITIVITY = {"A": 0.001, "B": 1.0}


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sensitive_spec(payload: dict[str, Any], **sensitivity: Any) -> dict[str, Any]:
    # Trained longer than the tiny spec's 2 epochs: a model that has barely learned has an
    # error so far from its own quantization noise's that 4-bit weights move it by ±0.01 %.
    return {**payload, "name": "tiny-sensitivity", "train": {**payload["train"], "epochs": 10},
            "search": {**payload["search"], "sampler": "autoq", "sensitivity": sensitivity}}


def test_pass_measures_more_error_at_fewer_bits_for_every_group(
        tiny_spec_payload: dict[str, Any]) -> None:
    spec = parse_spec(_sensitive_spec(tiny_spec_payload, bits=4))
    runner = TrialRunner(spec)
    four, eight = measure_sensitivities(runner, 4), measure_sensitivities(runner, 8)
    groups = set(runner.space.groups)
    assert len(groups) > 1
    assert set(four.weight) == set(four.act) == groups
    assert four.scale == max(spec.space.scales) and four.bits == 4
    assert four.float_error == pytest.approx(runner.float_error(four.scale))
    assert four.seconds > 0
    # One group at a time, weights apart from activations: every measurement is its own.
    measured = [*four.weight.values(), *four.act.values()]
    assert len(set(measured)) == len(measured)
    for group in groups:
        for kind in ("weight", "act"):
            at_four, at_eight = getattr(four, kind)[group], getattr(eight, kind)[group]
            assert math.isfinite(at_four) and at_four > 0, (kind, group, at_four)
            assert at_four > at_eight, (kind, group, at_four, at_eight)


def test_search_records_the_pass_and_a_resume_reads_it(
        tiny_spec_payload: dict[str, Any], sqlite_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_spec(_sensitive_spec(tiny_spec_payload, bits=4))
    study = run_search(spec, storage=sqlite_url, trials=1)
    recorded = recorded_sensitivities(study.user_attrs)
    assert recorded is not None and recorded.bits == 4 and recorded.seconds > 0
    assert all(value > 0 for value in [*recorded.weight.values(), *recorded.act.values()])
    # The sampler that proposed the trial took the pass as its prior.
    sampler = study.sampler
    assert isinstance(sampler, CostAwareSampler) and sampler._prior_measured

    def must_not_run(*args: Any, **kwargs: Any) -> Sensitivities:
        raise AssertionError("the pass ran again on resume")

    monkeypatch.setattr(sensitivity_module, "measure_sensitivities", must_not_run)
    resumed = run_search(spec, storage=sqlite_url, trials=2)
    assert len(resumed.trials) == 2
    reread = optuna.load_study(study_name=spec.name, storage=open_storage(sqlite_url))
    assert reread.user_attrs[SENSITIVITY_ATTR] == recorded.to_json()


def test_search_without_the_option_runs_no_pass(
        tiny_spec_payload: dict[str, Any], sqlite_url: str) -> None:
    payload = {**tiny_spec_payload, "name": "tiny-no-sensitivity",
               "search": {**tiny_spec_payload["search"], "sampler": "autoq"}}
    study = run_search(parse_spec(payload), storage=sqlite_url, trials=1)
    assert SENSITIVITY_ATTR not in study.user_attrs


def _cost(params: dict[str, Any]) -> float:
    return sum(params[f"w_bits:{g}"] * params[f"a_bits:{g}"] for g in WEIGHT_SENSITIVITY)


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    params: dict[str, Any] = {"scale": trial.suggest_categorical("scale", [1.0])}
    for group in WEIGHT_SENSITIVITY:
        params[f"w_bits:{group}"] = trial.suggest_categorical(f"w_bits:{group}", BITS)
        params[f"a_bits:{group}"] = trial.suggest_categorical(f"a_bits:{group}", BITS)
    trial.set_user_attr("bits", {g: [params[f"w_bits:{g}"], params[f"a_bits:{g}"]]
                                 for g in WEIGHT_SENSITIVITY})
    noise = sum(WEIGHT_SENSITIVITY[g] * 4.0 ** (4 - params[f"w_bits:{g}"])
                + ACT_SENSITIVITY[g] * 4.0 ** (4 - params[f"a_bits:{g}"])
                for g in WEIGHT_SENSITIVITY)
    return 1e-4 * (1 + noise), _cost(params)


def _first_trials(seed: int, *, prior: bool, trials: int = 2) -> list[dict[str, Any]]:
    sampler = CostAwareSampler(scales=[1.0], groups={g: [g] for g in WEIGHT_SENSITIVITY},
                               weight_bits=BITS, act_bits=BITS, cost_fn=_cost, seed=seed,
                               candidates=256)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    if prior:
        # A strong prior, measured at 4 bits: A's weights and B's activations very sensitive.
        study.set_user_attr(SENSITIVITY_ATTR, Sensitivities(
            bits=4, scale=1.0, rank=None, float_error=1e-4, weight={"A": 100.0, "B": 0.01},
            act={"A": 0.01, "B": 100.0}, seconds=1.0).to_json())
    study.optimize(_objective, n_trials=trials)
    return [t.params for t in study.trials]


def _follows_the_prior(trials: list[dict[str, Any]]) -> bool:
    """B's weights and A's activations lowered first: never above the other group's, and
    below in at least one of the trials."""
    weight_gap = [p["w_bits:A"] - p["w_bits:B"] for p in trials]
    act_gap = [p["a_bits:B"] - p["a_bits:A"] for p in trials]
    return (min(weight_gap) >= 0 and max(weight_gap) > 0
            and min(act_gap) >= 0 and max(act_gap) > 0)


def test_a_measured_prior_steers_the_first_sampled_trials() -> None:
    seeds = range(5)
    assert all(_follows_the_prior(_first_trials(seed, prior=True)) for seed in seeds)
    # Without it the two groups are alike to the sampler: it lowers either first.
    assert sum(_follows_the_prior(_first_trials(seed, prior=False)) for seed in seeds) <= 2


def test_a_pass_of_other_groups_or_of_no_effect_leaves_the_prior() -> None:
    sampler = CostAwareSampler(scales=[1.0], groups={"A": ["A"], "B": ["B"]}, weight_bits=BITS,
                               act_bits=BITS, cost_fn=_cost, seed=0)
    other = Sensitivities(bits=4, scale=1.0, rank=None, float_error=1.0,
                          weight={"A": 1.0, "C": 1.0}, act={"A": 1.0, "C": 1.0}, seconds=1.0)
    nothing = Sensitivities(bits=4, scale=1.0, rank=None, float_error=1.0,
                            weight={"A": 0.0, "B": -0.1}, act={"A": 0.0, "B": 0.0}, seconds=1.0)
    assert not sampler.use_sensitivities(other)
    assert not sampler.use_sensitivities(nothing)
    measured = Sensitivities(bits=6, scale=1.0, rank=None, float_error=1.0,
                             weight={"A": 1.0, "B": 0.0}, act={"A": 0.5, "B": 2.0}, seconds=1.0)
    default_weight, default_act = sampler._model.sensitivities(sampler._model.prior_mean)
    assert sampler.use_sensitivities(measured)
    weight, act = sampler._model.sensitivities(sampler._model.prior_mean)
    # The measured ratios (B's weights floored at 1/1000 of the largest, 2.0), weights against
    # activations as measured, and the default prior's level of all four together.
    assert weight[0] / weight[1] == pytest.approx(500.0)
    assert act[1] / act[0] == pytest.approx(4.0)
    assert math.sqrt(weight[0] * weight[1] / (act[0] * act[1])) == pytest.approx(
        math.sqrt(1.0 * 2e-3 / (0.5 * 2.0)))
    assert math.prod([*weight, *act]) == pytest.approx(
        math.prod([*default_weight, *default_act]))
    assert np.allclose(sampler._model.mode, sampler._model.prior_mean)


@pytest.mark.parametrize(("search", "field", "message"), [
    ({"sampler": "tpe", "sensitivity": {"bits": 4}}, "search",
     "sensitivity: the pass is the prior of autoq's sampler"),
    ({"sampler": "autoq", "sensitivity": {"bits": 9}}, "search.sensitivity.bits",
     "less than or equal to 8"),
    ({"sampler": "autoq", "sensitivity": {"bits": 1}}, "search.sensitivity.bits",
     "greater than or equal to 2"),
    ({"sampler": "autoq", "sensitivity": {"bitz": 4}}, "search.sensitivity.bitz", "xtra"),
])
def test_spec_refuses_bad_sensitivity_settings(
        tiny_spec_payload: dict[str, Any], search: dict[str, Any], field: str,
        message: str) -> None:
    payload = {**tiny_spec_payload, "search": {**tiny_spec_payload["search"], **search}}
    with pytest.raises(SpecError, match=field) as raised:
        parse_spec(payload)
    assert message in str(raised.value)


def test_spec_default_has_no_pass(tiny_spec_payload: dict[str, Any]) -> None:
    assert parse_spec(tiny_spec_payload).search.sensitivity is None
    assert parse_spec(_sensitive_spec(tiny_spec_payload)).search.sensitivity.bits == 4
