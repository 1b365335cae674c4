"""autoq's cost-aware sampler on a synthetic problem whose MSE and cost are known in closed form.

Layers of different size and sensitivity, three scale factors: the best trade-offs quantize the
big, robust layers hard and keep the small, sensitive ones wide. At an equal budget the sampler
must find a front with more hypervolume than random search and than TPE.
"""

from __future__ import annotations

import itertools
import math
import statistics
from typing import ClassVar

import numpy as np
import optuna
import pytest

from autoq.search.records import FLOAT_MSE_ATTR, FLOAT_REFERENCE_ATTR
from autoq.search.results import TrialPoint, hypervolume
from autoq.search.samplers import CostAwareSampler
from autoq.search.samplers.cost_aware import Configs, FloatErrors, NoisePowerModel

SCALES = [1.0, 0.5, 0.25]
BITS = [4, 8, 16]
# layer group → (operations, sensitivity)
GROUPS = {f"g{i}": (size, sens) for i, (size, sens) in
          enumerate([(40, 0.02), (40, 0.02), (10, 1.0), (10, 1.0), (30, 0.1), (5, 3.0)])}
SCALE_ERROR = {1.0: 1.0, 0.5: 1.5, 0.25: 6.0}


def _config(params: dict) -> tuple[float, dict[str, tuple[int, int]]]:
    return params["scale"], {g: (params[f"w_bits:{g}"], params[f"a_bits:{g}"]) for g in GROUPS}


def _cost(params: dict) -> float:
    scale, bits = _config(params)
    return scale * sum(GROUPS[g][0] * w * a for g, (w, a) in bits.items())


def _mse(params: dict) -> float:
    scale, bits = _config(params)
    noise = sum(GROUPS[g][1] * (4.0 ** -(w - 4) + 4.0 ** -(a - 4)) for g, (w, a) in bits.items())
    return 1e-4 * SCALE_ERROR[scale] * (1 + noise)


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    params = {"scale": trial.suggest_categorical("scale", SCALES)}
    for group in GROUPS:
        params[f"w_bits:{group}"] = trial.suggest_categorical(f"w_bits:{group}", BITS)
        params[f"a_bits:{group}"] = trial.suggest_categorical(f"a_bits:{group}", BITS)
    trial.set_user_attr("bits", {group: [params[f"w_bits:{group}"], params[f"a_bits:{group}"]]
                                 for group in GROUPS})
    return _mse(params), _cost(params)


def _hypervolume(sampler: optuna.samplers.BaseSampler, trials: int) -> float:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=trials)
    points = [TrialPoint(number=t.number, state="COMPLETE", mse=t.values[0], cost=t.values[1],
                         scale=t.params["scale"], bits={}) for t in study.trials]
    return hypervolume(points, reference=(_cost({"scale": 1.0, **_uniform(16)}), 1e-2))


def _uniform(bits: int) -> dict:
    return {f"{kind}_bits:{g}": bits for g in GROUPS for kind in ("w", "a")}


def _sampler(seed: int) -> CostAwareSampler:
    return CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS,
                            act_bits=BITS, cost_fn=_cost, seed=seed, candidates=512)


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_cost_aware_sampler_beats_random_and_tpe_at_equal_budget() -> None:
    budget = 20
    ours = [_hypervolume(_sampler(seed), budget) for seed in range(3)]
    random = [_hypervolume(optuna.samplers.RandomSampler(seed=seed), budget) for seed in range(3)]
    tpe = [_hypervolume(optuna.samplers.TPESampler(seed=seed), budget) for seed in range(3)]
    print(f"hypervolume median: ours {statistics.median(ours):.3f}, random "
          f"{statistics.median(random):.3f}, TPE {statistics.median(tpe):.3f}")
    assert min(ours) > max(random)
    assert statistics.median(ours) > statistics.median(tpe)


def test_sampler_never_repeats_a_finished_configuration() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=_sampler(0))
    study.optimize(_objective, n_trials=15)
    configs = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(configs) == 15
    assert all(math.isfinite(v) for t in study.trials for v in t.values)


def test_enqueued_trials_keep_their_fixed_parameters() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=_sampler(0))
    study.enqueue_trial({"scale": 0.5, **_uniform(8)})
    study.optimize(_objective, n_trials=2)
    assert study.trials[0].params == {"scale": 0.5, **_uniform(8)}


def test_autoq_sampler_runs_a_real_search_within_its_cost_limit(
    tiny_spec_payload: dict, sqlite_url: str
) -> None:
    from autoq.search import load_study, parse_spec, run_search, study_points
    from autoq.search.space import SearchSpace

    payload = {**tiny_spec_payload, "name": "tiny-autoq-sampler"}
    space = SearchSpace(parse_spec(payload))
    # Below the full-resolution configurations with 16-bit activations: part of the space is out.
    limit = space.cost(space.regime("w8a8", 1.0)).total
    payload["search"] = {**payload.get("search", {}), "sampler": "autoq",
                         "constraints": {"max_cost": limit}}
    spec = parse_spec(payload)
    run_search(spec, storage=sqlite_url, trials=3)
    study = load_study(spec.name, storage=sqlite_url)
    points = [p for p in study_points(study) if p.complete]
    assert len(points) == 3
    assert all(p.cost <= limit for p in points)
    assert len({(p.scale, *sorted(map(str, p.bits.items()))) for p in points}) == 3


def test_a_real_search_bounded_relative_to_the_float_model_records_that_bound(
    tiny_spec_payload: dict, sqlite_url: str
) -> None:
    from autoq.search import load_study, pareto_front, parse_spec, run_search, study_points
    from autoq.search.records import MAX_MSE_CONSTRAINT

    ratio = 1.5
    payload = {**tiny_spec_payload, "name": "tiny-autoq-relative-bound"}
    payload["search"] = {**payload.get("search", {}), "sampler": "autoq",
                         "constraints": {"max_mse_ratio": ratio}}
    spec = parse_spec(payload)
    run_search(spec, storage=sqlite_url, trials=3)
    study = load_study(spec.name, storage=sqlite_url)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3
    for trial in complete:
        bound = ratio * trial.user_attrs[FLOAT_REFERENCE_ATTR]
        assert trial.constraints == {MAX_MSE_CONSTRAINT: pytest.approx(trial.values[0] - bound)}
    front = pareto_front(study_points(study))
    assert all(p.mse <= ratio * complete[0].user_attrs[FLOAT_REFERENCE_ATTR] for p in front)


def test_noise_power_model_recovers_the_sensitive_groups() -> None:
    sampler = _sampler(0)
    rng = np.random.default_rng(0)
    configs = []
    for _ in range(40):
        params = {"scale": SCALES[rng.integers(3)]}
        for group in GROUPS:
            params[f"w_bits:{group}"] = BITS[rng.integers(3)]
            params[f"a_bits:{group}"] = BITS[rng.integers(3)]
        configs.append(params)
    model = sampler._model
    model.fit(sampler.encode(configs), np.log([_mse(c) for c in configs]))
    # Each group's activations alone at 4 bits, the rest at 16: ranked like the sensitivities.
    single = model.predict(sampler.encode([{"scale": 1.0, **_uniform(16), f"a_bits:{g}": 4}
                                           for g in GROUPS]), model.mode)
    truth = [GROUPS[g][1] for g in GROUPS]
    pairs = [(i, j) for i in range(len(truth)) for j in range(len(truth)) if truth[i] < truth[j]]
    assert all(single[i] < single[j] for i, j in pairs)
    held_out = {"scale": 0.5, **_uniform(8), "a_bits:g5": 4}
    assert model.predict(sampler.encode([held_out]), model.mode)[0] == pytest.approx(
        math.log(_mse(held_out)), abs=0.1)


def test_the_float_models_errors_anchor_the_level_and_each_scales_offset() -> None:
    # Two first trials with broken bits at the coarse scales, hundreds of times the float
    # model's error: alone they teach the model nothing of how accurate the rest can be.
    sampler = _sampler(0)
    broken = [{"scale": 0.25, **_uniform(4)}, {"scale": 0.5, **_uniform(4)}]
    observed, log_mse = sampler.encode(broken), np.log([0.3, 0.05])
    floats = FloatErrors(np.array([0, 2]), np.array([0, 0]), np.log([1e-4, 3e-2]))
    widest = sampler.encode([{"scale": scale, **_uniform(16)} for scale in SCALES])
    model = sampler._model
    model.fit(observed, log_mse)
    assert model.predict(widest, model.mode)[0] > math.log(10 * 1e-4)  # out of reach
    model.fit(observed, log_mse, floats)
    predicted = model.predict(widest, model.mode)
    # The widest configuration is near its float model where one was measured...
    assert predicted[[0, 2]] == pytest.approx(np.log([1e-4, 3e-2]), abs=0.3)
    # ...and the scale between them, unmeasured, lies between them.
    assert math.log(1e-4) < predicted[1] < math.log(3e-2)


def test_the_sampler_reads_each_trials_float_model_and_the_reference_once() -> None:
    sampler = _sampler(0)
    bits = {g: [8, 8] for g in GROUPS}

    def finished(scale: float, float_mse: object) -> optuna.trial.FrozenTrial:
        trial = _finished({"scale": scale, **_uniform(8)}, bits)
        trial.set_user_attr(FLOAT_MSE_ATTR, float_mse)
        trial.set_user_attr(FLOAT_REFERENCE_ATTR, 1e-4)
        return trial

    floats = sampler.float_errors([finished(0.25, 6e-4), finished(0.25, 6e-4),
                                   finished(0.5, math.nan), _finished({"scale": 0.7,
                                                                       **_uniform(8)}, bits)])
    measured = {(int(s), int(r)): float(np.exp(e)) for s, r, e in zip(*floats, strict=True)}
    assert measured == {(2, 0): pytest.approx(6e-4), (0, 0): pytest.approx(1e-4)}
    assert not len(sampler.float_errors([]).log_mse)


# The float model collapses below scale 0.5, as diffusion–sorption's does: at 0.35 and 0.25 its
# error is beyond ten times the full-resolution one, where no configuration earns hypervolume.
CLIFF_SCALES = [1.0, 0.7, 0.5, 0.35, 0.25]
CLIFF_ERROR = {1.0: 1.0, 0.7: 1.3, 0.5: 2.0, 0.35: 40.0, 0.25: 300.0}


def _cliff_objective(trial: optuna.Trial) -> tuple[float, float]:
    params = {"scale": trial.suggest_categorical("scale", CLIFF_SCALES)}
    for group in GROUPS:
        params[f"w_bits:{group}"] = trial.suggest_categorical(f"w_bits:{group}", BITS)
        params[f"a_bits:{group}"] = trial.suggest_categorical(f"a_bits:{group}", BITS)
    scale, bits = _config(params)
    trial.set_user_attr("bits", {g: list(pair) for g, pair in bits.items()})
    trial.set_user_attr(FLOAT_MSE_ATTR, 1e-4 * CLIFF_ERROR[scale])
    trial.set_user_attr(FLOAT_REFERENCE_ATTR, 1e-4)
    noise = sum(GROUPS[g][1] * (4.0 ** -(w - 4) + 4.0 ** -(a - 4)) for g, (w, a) in bits.items())
    return 1e-4 * CLIFF_ERROR[scale] * (1 + noise), _cost(params)


def test_scales_whose_float_model_is_out_of_reach_get_one_trial_at_most() -> None:
    for seed in (1, 2, 3):
        sampler = CostAwareSampler(scales=CLIFF_SCALES, groups={g: [g] for g in GROUPS},
                                   weight_bits=BITS, act_bits=BITS, cost_fn=_cost, seed=seed,
                                   candidates=512, float_cost=FLOAT_COST)
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        study.optimize(_cliff_objective, n_trials=20)
        beyond = [t.number for t in study.trials if CLIFF_ERROR[t.params["scale"]] > 10]
        # One trial there measures the float model's collapse; none follows it.
        assert len(beyond) <= 1, f"seed {seed}: trials {beyond} below scale 0.5"


def test_sampler_prices_configurations_exactly() -> None:
    sampler = _sampler(0)
    configs = sampler.decode(sampler._random_configs(50))
    assert sampler.costs(sampler.encode(configs)) == pytest.approx([_cost(c) for c in configs],
                                                                   rel=1e-12)


def test_greedy_path_walks_from_the_widest_to_the_narrowest_configuration() -> None:
    sampler = _sampler(0)
    path = sampler.decode(sampler._greedy_path(SCALES.index(0.5), 0, sampler._model.mode))
    costs = [_cost(p) for p in path]
    assert path[0] == {"scale": 0.5, **_uniform(16)} and path[-1] == {"scale": 0.5, **_uniform(4)}
    assert all(later < earlier for earlier, later in itertools.pairwise(costs))


def _proposals_after_random_trials(max_mse: float | None, *, max_mse_ratio: float | None = None,
                                   float_reference: float | None = None) -> list[dict]:
    """Five proposals of autoq's sampler after 30 random trials on the synthetic problem, whose
    trials record ``float_reference`` as the float model's error when it is given."""

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        if float_reference is not None:
            trial.set_user_attr(FLOAT_REFERENCE_ATTR, float_reference)
        return _objective(trial)

    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=30)
    study.sampler = CostAwareSampler(
        scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS, act_bits=BITS,
        cost_fn=_cost, seed=0, candidates=512, max_mse=max_mse, max_mse_ratio=max_mse_ratio)
    study.optimize(objective, n_trials=5)
    return [t.params for t in study.trials[30:]]


def test_sampler_proposes_only_configurations_predicted_within_max_mse() -> None:
    bound = 2.5e-4
    bounded = [_mse(params) for params in _proposals_after_random_trials(bound)]
    free = [_mse(params) for params in _proposals_after_random_trials(None)]
    print(f"true MSE of proposals: bounded {bounded}, unbounded {free}")
    # The model is approximate (±10 % in log MSE here): the bound holds up to that.
    assert max(bounded) <= 1.1 * bound
    # Not vacuous: without the bound the sampler spends trials on cheaper, worse points.
    assert max(free) > 1.1 * bound


def test_an_error_bound_relative_to_the_float_model_is_the_absolute_bound_it_gives() -> None:
    # Bounded at 2.5× a float error of 1e-4 is bounded at 2.5e-4: the very proposals.
    relative = _proposals_after_random_trials(None, max_mse_ratio=2.5, float_reference=1e-4)
    assert relative == _proposals_after_random_trials(2.5e-4, float_reference=1e-4)
    assert relative != _proposals_after_random_trials(None, float_reference=1e-4)
    # Until a trial has measured the float model, the ratio bounds nothing.
    assert (_proposals_after_random_trials(None, max_mse_ratio=2.5)
            == _proposals_after_random_trials(None))


# A search over factorization ranks: a lower rank is cheaper and less accurate.
RANKS = [1.0, 0.5, 0.25]
RANK_COST = {1.0: 1.0, 0.5: 0.6, 0.25: 0.4}
RANK_ERROR = {1.0: 1.0, 0.5: 1.3, 0.25: 4.0}


def _ranked_cost(params: dict) -> float:
    return RANK_COST[params["rank"]] * _cost(params)


def _ranked_mse(params: dict) -> float:
    return RANK_ERROR[params["rank"]] * _mse(params)


def _ranked_sampler(seed: int) -> CostAwareSampler:
    return CostAwareSampler(scales=SCALES, ranks=RANKS, groups={g: [g] for g in GROUPS},
                            weight_bits=BITS, act_bits=BITS, cost_fn=_ranked_cost, seed=seed,
                            candidates=512)


def test_noise_power_model_learns_what_each_rank_costs_in_accuracy() -> None:
    sampler = _ranked_sampler(0)
    rng = np.random.default_rng(0)
    configs = [{"scale": SCALES[rng.integers(3)], "rank": RANKS[rng.integers(3)],
                **{f"{kind}_bits:{g}": BITS[rng.integers(3)] for g in GROUPS
                   for kind in ("w", "a")}} for _ in range(40)]
    model = sampler._model
    model.fit(sampler.encode(configs), np.log([_ranked_mse(c) for c in configs]))
    predicted = model.predict(sampler.encode([{"scale": 0.5, "rank": rank, **_uniform(8)}
                                              for rank in RANKS]), model.mode)
    assert predicted[1] - predicted[0] == pytest.approx(math.log(RANK_ERROR[0.5]), abs=0.1)
    assert predicted[2] - predicted[0] == pytest.approx(math.log(RANK_ERROR[0.25]), abs=0.1)


def test_sampler_searches_ranks_and_prices_them_exactly() -> None:
    sampler = _ranked_sampler(0)
    configs = sampler.decode(sampler._random_configs(50))
    assert {c["rank"] for c in configs} == set(RANKS)
    assert sampler.costs(sampler.encode(configs)) == pytest.approx(
        [_ranked_cost(c) for c in configs], rel=1e-12)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        params = {"scale": trial.suggest_categorical("scale", SCALES),
                  "rank": trial.suggest_categorical("rank", RANKS)}
        for group in GROUPS:
            for kind in ("w", "a"):
                params[f"{kind}_bits:{group}"] = trial.suggest_categorical(
                    f"{kind}_bits:{group}", BITS)
        trial.set_user_attr("bits", {g: [params[f"w_bits:{g}"], params[f"a_bits:{g}"]]
                                     for g in GROUPS})
        return _ranked_mse(params), _ranked_cost(params)

    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=12)
    # The sampler reads each finished trial's rank back: it never proposes one twice, and it
    # chooses the ranks itself (relative sampling) rather than leaving them to random draws.
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 12
    assert sampler._params_of(study.trials[-1]) == study.trials[-1].params


def _measured_objective(bias: dict[float, float]):
    """The synthetic objective whose recorded cost is the priced one times ``bias[scale]``:
    what a latency search records against a latency table's prediction."""

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        mse, cost = _objective(trial)
        return mse, cost * bias[trial.params["scale"]]

    return objective


def test_cost_correction_learns_each_scales_bias_from_the_recorded_costs() -> None:
    bias = {1.0: 1.0, 0.5: 3.0, 0.25: 1.0}
    sampler = _sampler(seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_measured_objective(bias), n_trials=40)
    params = [t.params for t in study.trials]
    factors = sampler.cost_correction(sampler.encode(params),
                                      np.array([t.values[1] for t in study.trials]))
    assert factors[SCALES.index(0.5)] == pytest.approx(3.0, rel=0.15)
    for scale in (1.0, 0.25):
        assert factors[SCALES.index(scale)] == pytest.approx(1.0, rel=0.15)
    # Exactly priced costs (bit-ops) are left alone.
    exact = sampler.cost_correction(sampler.encode(params), np.array([_cost(p) for p in params]))
    assert list(exact) == [1.0] * len(SCALES)


def test_sampler_keeps_within_max_cost_by_the_measured_not_the_predicted_cost() -> None:
    # At scale 0.5 every configuration measures 100× its prediction: all of them are priced
    # under the limit and all measure over it. Once the sampler has measured one, it proposes
    # none there.
    bias = {1.0: 1.0, 0.5: 100.0, 0.25: 1.0}
    limit = 0.6 * _cost({"scale": 1.0, **_uniform(16)})
    sampler = CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS,
                               act_bits=BITS, cost_fn=_cost, seed=0, candidates=256,
                               max_cost=limit)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    for scale in SCALES:  # one measured trial per scale to learn from
        study.enqueue_trial({"scale": scale, **_uniform(8)})
    study.optimize(_measured_objective(bias), n_trials=15)
    proposed = study.trials[len(SCALES):]
    assert proposed and all(t.values[1] <= limit for t in proposed)
    assert all(t.params["scale"] != 0.5 for t in proposed)


def test_every_proposal_respects_max_cost() -> None:
    limit = 0.1 * _cost({"scale": 1.0, **_uniform(16)})
    sampler = CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS,
                               act_bits=BITS, cost_fn=_cost, seed=0, candidates=256,
                               max_cost=limit)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=15)
    costs = [t.values[1] for t in study.trials]
    assert max(costs) <= limit
    # The limit binds: without it the sampler spends trials above it (the accurate end).
    free = optuna.create_study(directions=["minimize", "minimize"], sampler=_sampler(0))
    free.optimize(_objective, n_trials=15)
    assert max(t.values[1] for t in free.trials) > limit


def test_sampler_proposes_each_configuration_of_a_small_space_once() -> None:
    # 2 scales × 2 weight × 2 activation widths: every configuration once in 8 proposals, even
    # where the model predicts a finished configuration to be the best trade.
    groups = {"g0": ["g0"]}
    sampler = CostAwareSampler(scales=[1.0, 0.5], groups=groups, weight_bits=[4, 8],
                               act_bits=[4, 8], cost_fn=_small_cost, seed=0, candidates=32)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(_small_objective, n_trials=8)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 8


def _small_cost(params: dict) -> float:
    return params["scale"] * params["w_bits:g0"] * params["a_bits:g0"]


def _small_objective(trial: optuna.Trial) -> tuple[float, float]:
    params = {"scale": trial.suggest_categorical("scale", [1.0, 0.5]),
              "w_bits:g0": trial.suggest_categorical("w_bits:g0", [4, 8]),
              "a_bits:g0": trial.suggest_categorical("a_bits:g0", [4, 8])}
    trial.set_user_attr("bits", {"g0": [params["w_bits:g0"], params["a_bits:g0"]]})
    noise = 4.0 ** -(params["w_bits:g0"] - 4) + 4.0 ** -(params["a_bits:g0"] - 4)
    return 1e-4 * (2.0 - params["scale"]) * (1 + noise), _small_cost(params)


def test_each_greedy_step_is_the_best_predicted_trade() -> None:
    # After a few trials the model has views on every group; each step of the greedy path must
    # be, of all one-step narrowings, the one with the least predicted log-MSE increase per
    # log-cost saved.
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_objective, n_trials=20)
    sampler = _sampler(0)
    observed = sampler.encode([t.params for t in study.trials])
    sampler._model.fit(observed, np.log([t.values[0] for t in study.trials]))
    theta = sampler._model.mode
    path = sampler._greedy_path(SCALES.index(0.5), 0, theta).rows()
    assert len(path) == 1 + 2 * len(GROUPS) * (len(BITS) - 1)
    groups = len(GROUPS)

    def trade(before: np.ndarray, after: np.ndarray) -> float:
        configs = Configs.from_rows(np.array([before, after]))
        mse = sampler._model.predict(configs, theta)
        cost = np.log(sampler.costs(configs))
        return float((mse[1] - mse[0]) / (cost[0] - cost[1]))

    for here, chosen in itertools.pairwise(path):
        steps = []
        for column in range(2, 2 + 2 * groups):
            if here[column] < len(BITS) - 1:
                step = here.copy()
                step[column] += 1
                steps.append(step)
        best = min(trade(here, step) for step in steps)
        assert trade(here, chosen) == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_mutate_redraws_up_to_three_choices_each_now_and_then() -> None:
    sampler = _ranked_sampler(0)
    groups = len(GROUPS)
    parent = Configs([1], [1], [[1] * groups], [[1] * groups])
    copies = Configs.from_rows(np.repeat(parent.rows(), 4000, axis=0))
    mutated = sampler._mutate(copies)
    assert np.array_equal(copies.rows(), np.repeat(parent.rows(), 4000, axis=0))  # a copy
    changed = np.column_stack([mutated.scale != 1, mutated.rank != 1,
                               (mutated.weight != 1) | (mutated.act != 1)])
    assert changed.sum(axis=1).max() == 3
    # Per round a choice is redrawn with probability 1/2 · 1/(groups + 2) = 1/16, to one of
    # three values: over three rounds about 3/16 · 2/3 = 1/8 of the copies change it.
    for column in range(groups + 2):
        assert 0.08 < changed[:, column].mean() < 0.17, column


class _Space:
    """A priced space as a sampler factory sees it (``autoq.search.samplers.PricedSpace``)."""

    scales: tuple[float, ...] = tuple(SCALES)
    ranks: tuple[None] = (None,)
    groups: ClassVar[dict[str, list[str]]] = {g: [g] for g in GROUPS}
    weight_choices: tuple[int, ...] = tuple(BITS)
    act_choices: tuple[int, ...] = tuple(BITS)

    def params_cost(self, params: dict) -> float:
        return _cost(params)

    @property
    def float_cost(self) -> float:
        return FLOAT_COST


FLOAT_COST = sum(size * 32 * 32 for size, _ in GROUPS.values())


def test_for_space_passes_the_space_the_limits_and_the_seed() -> None:
    from autoq.search.samplers import SamplerSettings

    settings = SamplerSettings(trials=10, max_cost=123.0, max_mse=4e-4)
    sampler = CostAwareSampler.for_space(_Space(), settings, seed=3)
    assert (sampler._max_cost, sampler._max_mse, sampler._float_cost) == (123.0, 4e-4,
                                                                           FLOAT_COST)
    relative = CostAwareSampler.for_space(
        _Space(), SamplerSettings(trials=10, max_mse_ratio=1.1), seed=3)
    assert (relative._max_mse, relative._max_mse_ratio) == (None, 1.1)
    assert sampler._cost_fn({"scale": 0.5, **_uniform(8)}) == _cost({"scale": 0.5, **_uniform(8)})

    def first_proposals(seed: int) -> list[dict]:
        study = optuna.create_study(directions=["minimize", "minimize"],
                                    sampler=CostAwareSampler.for_space(
                                        _Space(), SamplerSettings(trials=4), seed=seed))
        study.optimize(_objective, n_trials=4)
        return [t.params for t in study.trials]

    assert first_proposals(3) == first_proposals(3) != first_proposals(4)


def _finished(params: dict, bits: dict, values: tuple[float, float] = (1e-4, 1e3)
              ) -> optuna.trial.FrozenTrial:
    distributions = {name: optuna.distributions.CategoricalDistribution([value])
                     for name, value in params.items()}
    return optuna.trial.create_trial(params=params, distributions=distributions,
                                     values=list(values), user_attrs={"bits": bits})


def test_finished_trials_outside_the_space_are_not_read_as_configurations() -> None:
    sampler = _sampler(0)
    inside = {"scale": 0.5, **_uniform(8)}
    bits = {g: [8, 8] for g in GROUPS}
    assert sampler._params_of(_finished(inside, bits)) == inside
    assert sampler._params_of(_finished({**inside, "scale": 0.7}, bits)) is None
    assert sampler._params_of(_finished(inside, {**bits, "g0": [6, 8]})) is None
    assert sampler._params_of(_finished(inside, {**bits, "g5": [8, 2]})) is None
    assert sampler._params_of(_finished(inside, {})) is None


def test_finished_trials_of_another_objective_leave_the_space_to_independent_sampling() -> None:
    sampler = _sampler(0)
    study = optuna.create_study(directions=["minimize", "minimize"])
    assert set(sampler.infer_relative_search_space(study, None)) == {  # type: ignore[arg-type]
        "scale", *(f"{k}_bits:{g}" for g in GROUPS for k in "wa")}
    study.add_trial(optuna.trial.create_trial(
        params={"x": 1.0}, distributions={"x": optuna.distributions.FloatDistribution(0, 2)},
        values=[1.0, 2.0]))
    assert sampler.infer_relative_search_space(study, None) == {}  # type: ignore[arg-type]


def test_trials_with_values_the_model_cannot_log_are_left_out_of_it() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=_sampler(0))
    bits = {g: [8, 8] for g in GROUPS}
    for values in [(math.inf, 1e3), (0.0, 1e3), (1e-4, -1.0)]:
        study.add_trial(_finished({"scale": 1.0, **_uniform(8)}, bits, values))
    study.optimize(_objective, n_trials=2)
    assert all(math.isfinite(v) and v > 0 for t in study.trials[3:] for v in t.values)


def test_a_bound_nothing_can_meet_gets_the_configuration_predicted_most_accurate() -> None:
    # After random trials the model knows that width and resolution lower the MSE: with a bound
    # no candidate is predicted to meet, the proposal is the widest at full resolution.
    assert _proposals_after_random_trials(max_mse=1e-12)[0] == {"scale": 1.0, **_uniform(16)}


def test_hypervolume_gain_of_a_point_against_a_front_by_hand() -> None:
    from autoq.search.samplers.cost_aware import _area, _front, _improvement

    front = _front([(1.0, 3.0), (2.0, 1.0), (2.5, 2.0), (3.0, 0.5)])
    assert front == [(1.0, 3.0), (2.0, 1.0), (3.0, 0.5)]
    reference = (4.0, 4.0)
    # Rectangles from the reference down each step: 3·1 + 2·2 + 1·0.5.
    assert _area(front, reference) == pytest.approx(7.5)
    assert _improvement(front, (1.5, 2.0), reference) == pytest.approx(0.5)
    assert _improvement(front, (2.5, 2.0), reference) == 0.0  # dominated
    assert _improvement(front, (5.0, 0.1), reference) == 0.0  # beyond the reference
    # A reference with unequal coordinates (cost 5, error 3.5), one step between 3.5 and 5 in
    # cost: 4·0.5 + 3·2 + 2·0.5 + 1·0.3.
    assert _area([*front, (4.0, 0.2)], (5.0, 3.5)) == pytest.approx(9.3)


def test_the_noise_power_prior_is_the_documented_one() -> None:
    groups = 4
    model = NoisePowerModel(3, groups, coarseness=[0.0, math.log(2), math.log(4)],
                            weight_noise=[_noise(16), _noise(8), _noise(4)],
                            act_noise=[_noise(16), _noise(8), _noise(4)])
    weights, acts = model.sensitivities(model.prior_mean)
    # The whole network at 4-bit weights raises the MSE by half, at 4-bit activations doubles
    # it; a coarser grid by half a log per log of coarseness; the reference scale is pinned.
    assert weights.sum() == pytest.approx(0.5) and acts.sum() == pytest.approx(1.0)
    assert model.prior_mean[1] == 0.5 and model.prior_sd[1] == NoisePowerModel.TREND_SD
    assert model.prior_sd[2] < 1e-5 < model.prior_sd[3] == NoisePowerModel.SCALE_SD
    uniform4 = Configs([0], [0], [[2] * groups], [[2] * groups])
    assert model.predict(uniform4, model.prior_mean)[0] == pytest.approx(math.log(2.5))
    coarse = Configs([2], [0], [[0] * groups], [[0] * groups])
    assert model.predict(coarse, model.prior_mean)[0] == pytest.approx(
        0.5 * math.log(4) + math.log(1 + 1.5 * 4.0 ** -12), rel=1e-6)


def _noise(bits: int) -> float:
    return 4.0 ** (4 - bits)


def test_a_cost_that_is_not_a_sum_over_groups_is_priced_one_configuration_at_a_time() -> None:
    def product_cost(params: dict) -> float:  # not a sum over groups: no per-group table
        scale, bits = _config(params)
        return scale * math.prod(w * a for w, a in bits.values())

    sampler = CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS,
                               act_bits=BITS, cost_fn=product_cost, seed=0, candidates=64)
    configs = sampler.decode(sampler._random_configs(20))
    assert sampler.costs(sampler.encode(configs)) == pytest.approx(
        [product_cost(c) for c in configs], rel=1e-12)
    assert sampler._table_at(0, 0) is None
    assert len(sampler._greedy_path(0, 0, sampler._model.mode)) == 0


def test_a_cost_off_a_sum_by_a_few_per_cent_gets_no_table() -> None:
    """A sum over groups to the power 1.02 is close to additive, not additive: the table's
    check must refuse it, or the sampler would price by the wrong sum."""
    def nearly_additive(params: dict) -> float:
        scale, bits = _config(params)
        return scale * sum(w * a for w, a in bits.values()) ** 1.02

    sampler = CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS,
                               act_bits=BITS, cost_fn=nearly_additive, seed=0, candidates=64)
    assert sampler._table_at(0, 0) is None
    configs = sampler.decode(sampler._random_configs(20))
    assert sampler.costs(sampler.encode(configs)) == pytest.approx(
        [nearly_additive(c) for c in configs], rel=1e-12)


def test_float_groups_are_priced_and_walked_without_activation_choices() -> None:
    def cost(params: dict) -> float:
        total = 0.0
        for group, (size, _) in GROUPS.items():
            weight = params[f"w_bits:{group}"]
            act = 16 if weight == "float" else params[f"a_bits:{group}"]
            total += size * (16 if weight == "float" else weight) * act
        return params["scale"] * total

    sampler = CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS},
                               weight_bits=[*BITS, "float"], act_bits=BITS, cost_fn=cost,
                               seed=0, candidates=64)
    configs = sampler.decode(sampler._random_configs(40))
    assert any(c[f"w_bits:{g}"] == "float" for c in configs for g in GROUPS)
    assert all(f"a_bits:{g}" not in c for c in configs for g in GROUPS
               if c[f"w_bits:{g}"] == "float")
    assert sampler.costs(sampler.encode(configs)) == pytest.approx([cost(c) for c in configs])
    path = sampler.decode(sampler._greedy_path(0, 0, sampler._model.mode))
    # From the widest (w16a16; float counts as 16 bits and comes after it) to all 4-bit, through
    # float groups, which take no activation bits.
    assert path[0] == {"scale": 1.0, **_uniform(16)}
    assert path[-1] == {"scale": 1.0, **_uniform(4)}
    assert any(p[f"w_bits:{g}"] == "float" for p in path for g in GROUPS)
    assert sampler.costs(sampler.encode(path)) == pytest.approx([cost(p) for p in path])


def test_before_any_trial_the_model_draws_from_its_prior() -> None:
    model = NoisePowerModel(2, 2, coarseness=[0.0, math.log(2)],
                            weight_noise=[_noise(8), _noise(4)], act_noise=[_noise(8), _noise(4)])
    rng = np.random.default_rng(0)
    for fitted in (False, True):
        if fitted:
            model.fit(Configs.from_rows(np.zeros((0, 6), dtype=np.int64)), np.zeros(0))
        draws = np.array([model.draw(rng) for _ in range(4000)])
        assert draws[:, 1:].mean(0) == pytest.approx(model.prior_mean[1:], abs=0.1)
        spread = draws[:, 1:].std(0)  # μ's flat prior (sd 1e3) aside
        assert spread == pytest.approx(model.prior_sd[1:], rel=0.1, abs=1e-4)


def test_hypervolume_is_measured_from_the_float_models_cost_and_ten_times_the_best_error(
) -> None:
    errors = [math.log(2e-4), math.log(1e-4)]
    # Given the float model's cost, the corner is there, above every candidate's...
    with_float = CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS},
                                  weight_bits=BITS, act_bits=BITS, cost_fn=_cost,
                                  float_cost=1000.0)
    assert with_float.reference([10.0, 100.0], errors) == pytest.approx(
        (math.log(1000.0) + 0.1, math.log(1e-3)))
    # ...unless a candidate costs more; without it, the costliest configuration known.
    assert with_float.reference([10.0, 5000.0], errors)[0] == pytest.approx(
        math.log(5000.0) + 0.1)
    assert _sampler(0).reference([10.0, 100.0], errors)[0] == pytest.approx(
        math.log(100.0) + 0.1)


def test_the_float_models_recorded_error_is_the_best_error_known() -> None:
    """The sampler's reference MSE is 10× the lowest of its front's and the float model's
    (recorded on every trial): the float model's, when no trial is as accurate yet."""
    seen: list[tuple[float, float]] = []

    class Recording(CostAwareSampler):
        def reference(self, costs: list[float], errors: list[float]) -> tuple[float, float]:
            corner = super().reference(costs, errors)
            seen.append(corner)
            return corner

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        values = _objective(trial)
        trial.set_user_attr("float_reference", 1e-6)  # below every trial's error
        return values

    study = optuna.create_study(directions=["minimize", "minimize"], sampler=Recording(
        scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS, act_bits=BITS,
        cost_fn=_cost, seed=0, candidates=64, float_cost=FLOAT_COST))
    study.optimize(objective, n_trials=3)
    after_first = seen[1:]  # the first trial knows no recorded error yet
    assert after_first and all(mse == pytest.approx(math.log(1e-5)) for _, mse in after_first)


def test_the_candidate_pool_is_random_draws_uniform_regimes_greedy_paths_and_front_mutants(
        ) -> None:
    sampler = CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS,
                               act_bits=BITS, cost_fn=_cost, seed=0, candidates=64)
    groups = len(GROUPS)

    def config(scale: int, weight: int, act: int) -> np.ndarray:
        return np.concatenate([[scale, 0], [weight] * groups, [act] * groups])

    # A and D tie (equal cost and MSE: neither dominates), B trades, C is dominated by A.
    observed = Configs.from_rows(np.array([config(0, 0, 0), config(1, 1, 1), config(2, 2, 2),
                                           config(0, 2, 2)]))
    log_mse, log_cost = np.log([2.0, 1.0, 3.0, 2.0]), np.log([1.0, 2.0, 2.0, 1.0])
    theta = sampler._model.draw(np.random.default_rng(0))
    pool = sampler._candidate_pool(observed, log_mse, log_cost, theta).rows()
    uniform = {config(s, w, a).tobytes() for s, w, a in itertools.product(
        range(len(SCALES)), range(len(BITS)), range(len(BITS)))}
    assert {row.tobytes() for row in pool[64:64 + len(uniform)]} == uniform
    paths = len(SCALES) * (1 + 2 * groups * (len(BITS) - 1))  # widest, then one step at a time
    mutants = pool[64 + len(uniform) + paths:]
    # Three front members (A, B, D) share half the random draws' count: 64 // 3 // 2 copies.
    assert len(mutants) == 3 * 10
    parents = np.repeat(observed.rows()[[0, 1, 3]], 10, axis=0)
    redrawn = np.column_stack([mutants[:, 0] != parents[:, 0], mutants[:, 1] != parents[:, 1],
                               (mutants[:, 2:2 + groups] != parents[:, 2:2 + groups])
                               | (mutants[:, 2 + groups:] != parents[:, 2 + groups:])])
    assert redrawn.sum(axis=1).max() <= 3 and redrawn.any()


def test_a_configuration_costing_exactly_max_cost_is_within_it() -> None:
    cheapest = {"scale": min(SCALES), **_uniform(min(BITS))}
    sampler = CostAwareSampler(scales=SCALES, groups={g: [g] for g in GROUPS}, weight_bits=BITS,
                               act_bits=BITS, cost_fn=_cost, seed=0, max_cost=_cost(cheapest))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=1)
    assert study.trials[0].params == cheapest  # the one configuration within the bound
