"""autoq's own sampler: the cost of a configuration is known before any training — use it.

Generic multi-objective samplers (TPE, NSGA-II) treat both objectives as black boxes. Here only
the MSE is: the bit-op cost of any configuration is computed in a fraction of a millisecond. So
each new trial is chosen in two steps:

1. a Bayesian additive model of the log-MSE — one term per scale factor, one per (layer group,
   weight bits) and per (layer group, activation bits) — fitted to the finished trials, with a
   prior that lower bitwidths cost accuracy; one draw from its posterior (Thompson sampling)
   predicts the MSE of thousands of candidate configurations;
2. each candidate's cost is computed exactly, and the candidate whose (predicted MSE, cost)
   point adds the most hypervolume to the current front, in log-log space, is run. A
   configuration whose cost cannot extend the front under the model is never spent on, and
   trials go to the gaps of the front.

The sampler plugs into Optuna like any other (``sample_relative``), so the storage, the
dashboard and resuming stay the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from autoq.precision import FLOAT_EQUIVALENT_BITS

FLOAT = "float"
Params = dict[str, Any]


class CostAwareSampler(BaseSampler):
    """Thompson-sampled hypervolume improvement with exactly known costs.

    Args:
        scales: the scale factors to choose from.
        groups: layer groups (``{group: [layer, ...]}``) that share one precision choice.
        weight_bits: weight bitwidth choices (may include ``"float"``).
        act_bits: activation bitwidth choices.
        cost_fn: bit-op cost of a parameter set ``{"scale": s, "w_bits:<g>": …, "a_bits:<g>":
            …}``.
        seed: seed of the candidate draws and the posterior samples.
        candidates: random candidates drawn per trial (plus mutations of the front and every
            uniform configuration).
        prior_penalty: prior mean of the log-MSE increase of a whole network at 4 bits, spread
            over the groups; 8 bits get a quarter of it, 16 bits nothing.
        max_cost: never propose a configuration costing more (a constraint known up front).
    """

    def __init__(
        self,
        *,
        scales: Sequence[float],
        groups: Mapping[str, Sequence[str]],
        weight_bits: Sequence[int | str],
        act_bits: Sequence[int],
        cost_fn: Callable[[Params], float],
        seed: int | None = None,
        candidates: int = 1024,
        prior_penalty: float = 1.5,
        max_cost: float | None = None,
    ) -> None:
        self._scales = list(scales)
        self._groups = {g: list(layers) for g, layers in groups.items()}
        self._weight_bits = list(weight_bits)
        self._act_bits = list(act_bits)
        self._cost_fn = cost_fn
        self._rng = np.random.default_rng(seed)
        self._fallback = RandomSampler(seed=seed)
        self._candidates = candidates
        self._prior_penalty = prior_penalty
        self._max_cost = max_cost
        self._costs: dict[tuple, float] = {}
        self._space: dict[str, BaseDistribution] = {"scale": CategoricalDistribution(self._scales)}
        for group in self._groups:
            self._space[f"w_bits:{group}"] = CategoricalDistribution(self._weight_bits)
            self._space[f"a_bits:{group}"] = CategoricalDistribution(self._act_bits)
        self._features = _FeatureMap(self._scales, list(self._groups), self._weight_bits,
                                     self._act_bits)

    REFERENCE_MARGIN = 2.0
    """How far (in log-MSE) beyond the worst finished trial a predicted point still earns
    hypervolume: wide enough that accurate but costly configurations stay worth a trial."""
    PRIOR_VARIANCE = 1.0
    """Prior variance of a scale term (a group term gets it divided by the number of groups)."""
    NOISE_VARIANCE = 0.05
    """Variance of a trial's log-MSE around the additive model (QAT is noisy)."""

    def reseed_rng(self) -> None:
        """Fresh random streams, so parallel workers that built the sampler with one seed do not
        propose the same configuration."""
        self._rng = np.random.default_rng()
        self._fallback.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> Params:
        history = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                   if t.values is not None and all(math.isfinite(v) for v in t.values)]
        observed = [(self._params_of(t), t.values[0], t.values[1]) for t in history]
        tried = {_key(p) for p, _, _ in observed}
        pool = [c for c in self._candidate_pool(observed) if _key(c) not in tried
                and (self._max_cost is None or self._cost(c) <= self._max_cost)]
        if not pool:
            return {}
        theta = self._posterior_draw(observed)
        predicted = self._features.matrix(pool) @ theta
        costs = np.array([self._cost(c) for c in pool])
        front = _front([(math.log(cost), math.log(mse)) for _, mse, cost in observed])
        worst = (max(math.log(mse) for _, mse, _ in observed) if observed
                 else float(np.median(predicted)))
        reference = (math.log(max([float(costs.max()), *(c for _, _, c in observed)])) + 0.1,
                     worst + self.REFERENCE_MARGIN)
        gains = np.array([_improvement(front, (math.log(c), y), reference)
                          for c, y in zip(costs, predicted, strict=True)])
        if gains.max() <= 0:
            # Nothing is predicted to extend the front: go where the model is least sure.
            return pool[int(self._rng.integers(len(pool)))]
        return pool[int(np.argmax(gains))]

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def _params_of(self, trial: FrozenTrial) -> Params:
        """A finished trial's configuration as parameters, from its recorded per-layer bits (so
        enqueued baseline trials, which record no bit parameters, count too)."""
        bits = trial.user_attrs.get("bits", {})
        params: Params = {"scale": trial.params.get("scale")}
        for group, layers in self._groups.items():
            chosen = bits.get(layers[0], FLOAT)
            if chosen == FLOAT:
                params[f"w_bits:{group}"] = FLOAT
            else:
                params[f"w_bits:{group}"], params[f"a_bits:{group}"] = chosen
        return params

    def _cost(self, params: Params) -> float:
        key = _key(params)
        if key not in self._costs:
            self._costs[key] = self._cost_fn(params)
        return self._costs[key]

    def _random_params(self) -> Params:
        params: Params = {"scale": self._scales[self._rng.integers(len(self._scales))]}
        for group in self._groups:
            weight = self._weight_bits[self._rng.integers(len(self._weight_bits))]
            params[f"w_bits:{group}"] = weight
            if weight != FLOAT:
                params[f"a_bits:{group}"] = self._act_bits[self._rng.integers(len(self._act_bits))]
        return params

    def _candidate_pool(self, observed: list[tuple[Params, float, float]]) -> list[Params]:
        pool = [self._random_params() for _ in range(self._candidates)]
        for scale in self._scales:
            for weight in self._weight_bits:
                for act in (self._act_bits if weight != FLOAT else [None]):
                    uniform: Params = {"scale": scale}
                    for group in self._groups:
                        uniform[f"w_bits:{group}"] = weight
                        if act is not None:
                            uniform[f"a_bits:{group}"] = act
                    pool.append(uniform)
        front_params = [p for p, mse, cost in observed
                        if not any(m <= mse and c <= cost and (m, c) != (mse, cost)
                                   for _, m, c in observed)]
        for base in front_params:
            for _ in range(max(1, self._candidates // max(1, len(front_params)) // 2)):
                pool.append(self._mutate(base))
        return pool

    def _mutate(self, base: Params) -> Params:
        params = dict(base)
        for _ in range(int(self._rng.integers(1, 4))):
            name = list(self._space)[self._rng.integers(len(self._space))]
            if name == "scale":
                params["scale"] = self._scales[self._rng.integers(len(self._scales))]
                continue
            group = name.split(":", 1)[1]
            weight = self._weight_bits[self._rng.integers(len(self._weight_bits))]
            params[f"w_bits:{group}"] = weight
            params.pop(f"a_bits:{group}", None)
            if weight != FLOAT:
                params[f"a_bits:{group}"] = self._act_bits[self._rng.integers(len(self._act_bits))]
        return params

    def _posterior_draw(self, observed: list[tuple[Params, float, float]]) -> np.ndarray:
        """One draw of the additive model's coefficients given the finished trials."""
        prior_mean, prior_var = self._features.prior(self._prior_penalty, self.PRIOR_VARIANCE)
        noise_var = self.NOISE_VARIANCE
        if observed:
            x = self._features.matrix([p for p, _, _ in observed])
            y = np.log([mse for _, mse, _ in observed])
            precision = x.T @ x / noise_var + np.diag(1.0 / prior_var)
            covariance = np.linalg.inv(precision)
            mean = covariance @ (x.T @ y / noise_var + prior_mean / prior_var)
        else:
            covariance, mean = np.diag(prior_var), prior_mean
        covariance = (covariance + covariance.T) / 2
        return self._rng.multivariate_normal(mean, covariance, method="cholesky")


class _FeatureMap:
    """Features of the additive log-MSE model, hierarchical so that few trials teach a lot.

    An intercept; the scale (one-hot); per bitwidth, the fraction of groups whose weights (and,
    separately, activations) use it — effects shared by every group, learned from every trial;
    and per group its own weight and activation bitwidth (one-hot), the group's deviation from the
    shared effect (a float group has only its ``float`` weight features).
    """

    def __init__(self, scales: list[float], groups: list[str], weight_bits: list,
                 act_bits: list[int]) -> None:
        self.index: dict[tuple, int] = {("intercept",): 0}
        for scale in scales:
            self.index[("scale", scale)] = len(self.index)
        for weight in weight_bits:
            self.index[("shared", "w", weight)] = len(self.index)
        for act in act_bits:
            self.index[("shared", "a", act)] = len(self.index)
        for group in groups:
            for weight in weight_bits:
                self.index[("w", group, weight)] = len(self.index)
            for act in act_bits:
                self.index[("a", group, act)] = len(self.index)
        self.groups = groups

    def matrix(self, configs: Sequence[Params]) -> np.ndarray:
        x = np.zeros((len(configs), len(self.index)))
        x[:, self.index[("intercept",)]] = 1.0
        share = 1.0 / max(1, len(self.groups))
        for row, params in enumerate(configs):
            x[row, self.index[("scale", params["scale"])]] = 1.0
            for group in self.groups:
                weight = params[f"w_bits:{group}"]
                x[row, self.index[("w", group, weight)]] = 1.0
                x[row, self.index[("shared", "w", weight)]] += share
                act = params.get(f"a_bits:{group}")
                if act is not None:
                    x[row, self.index[("a", group, act)]] = 1.0
                    x[row, self.index[("shared", "a", act)]] += share
        return x

    def prior(self, penalty: float, variance: float) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and variance of every coefficient.

        Shared effects: a whole network's weights (or activations) at 4 bits lose ``penalty`` in
        log-MSE, at 8 bits a quarter of that, at 16 bits or float nothing; variance
        ``variance``. A coarser grid loses ``log(1 / scale) / 2`` (interpolation error grows as
        the grid coarsens), variance ``variance``. A group's own deviation: mean 0, variance
        ``variance / (4 · groups)``, so a whole configuration's spread does not grow with the
        number of groups. An intercept with a flat prior carries the MSE's unknown magnitude.
        """
        groups = max(1, len(self.groups))
        mean = np.zeros(len(self.index))
        spread = np.full(len(self.index), variance / (4 * groups))
        for key, column in self.index.items():
            if key[0] == "intercept":
                spread[column] = 1e4
            elif key[0] == "scale":
                mean[column] = 0.5 * math.log(1.0 / key[1])
                spread[column] = variance
            elif key[0] == "shared":
                bits = FLOAT_EQUIVALENT_BITS if key[2] == FLOAT else key[2]
                mean[column] = penalty * 4.0 ** ((4 - bits) / 4) if bits < 16 else 0.0
                spread[column] = variance
        return mean, spread


def _key(params: Params) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def _front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-dominated (x, y) points, sorted by x, both minimised."""
    front, best = [], math.inf
    for x, y in sorted(points):
        if y < best:
            front.append((x, y))
            best = y
    return front


def _area(front: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    area, previous = 0.0, reference[1]
    for x, y in front:
        if x < reference[0] and y < previous:
            area += (reference[0] - x) * (previous - y)
            previous = y
    return area


def _improvement(
    front: list[tuple[float, float]], point: tuple[float, float], reference: tuple[float, float]
) -> float:
    """Hypervolume the point adds to the front (both objectives minimised)."""
    return _area(_front([*front, point]), reference) - _area(front, reference)
