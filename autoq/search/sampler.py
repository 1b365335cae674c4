"""autoq's own sampler: the cost of a configuration is known before any training — use it.

Generic multi-objective samplers (TPE, NSGA-II) treat both objectives as black boxes. Here only
the MSE is: the bit-op cost of any configuration is computed in a fraction of a millisecond. So
each new trial is chosen in two steps:

1. a model of the MSE, fitted to the finished trials. Quantizing a tensor to b bits adds noise of
   power ∝ 4^−b; independent, small noise sources add up at the output. So

       log MSE = μ + ρ(scale) + log(1 + Σ_g u_g · 4^(4 − w_g) + v_g · 4^(4 − a_g)),

   with ``u_g``/``v_g`` the output-MSE increase, relative to the float model at that scale, when
   group g's weights/activations are at 4 bits. The sensitivities share a log-normal prior
   (``u_g = exp(α + δ_g)``), so a few trials teach what 4-bit activations do anywhere and the
   rest of the budget learns the deviations. The posterior is approximated around its mode
   (Laplace) and one draw of it (Thompson sampling) predicts the MSE of every candidate;
2. candidates are random configurations, every uniform one, mutations of the front, and the
   model's own cheapest paths (greedy bit reductions with the least predicted MSE per bit-op
   saved, per scale); each is priced exactly, and the one whose (predicted MSE, cost) point adds
   the most hypervolume to the current front, in log-log space, is run. A configuration whose
   cost cannot extend the front under the model is never spent on, and trials go to the gaps
   of the front.

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
from scipy.optimize import least_squares

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
        candidates: random candidates drawn per trial (besides the uniform configurations, the
            front's mutations and the model's greedy paths).
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
        max_cost: float | None = None,
    ) -> None:
        self._scales = list(scales)
        self._groups = {g: list(layers) for g, layers in groups.items()}
        # Widest first: the greedy paths start there and step down.
        self._weight_bits = sorted(weight_bits, key=_bits_value, reverse=True)
        self._act_bits = sorted(act_bits, reverse=True)
        self._cost_fn = cost_fn
        self._rng = np.random.default_rng(seed)
        self._fallback = RandomSampler(seed=seed)
        self._candidates = candidates
        self._max_cost = max_cost
        self._costs: dict[tuple, float] = {}
        self._cost_parts: dict[float, tuple[float, dict[str, dict]] | None] = {}
        self._space: dict[str, BaseDistribution] = {"scale": CategoricalDistribution(self._scales)}
        for group in self._groups:
            self._space[f"w_bits:{group}"] = CategoricalDistribution(list(weight_bits))
            self._space[f"a_bits:{group}"] = CategoricalDistribution(list(act_bits))
        self._model = NoisePowerModel(self._scales, list(self._groups))

    REFERENCE_MSE_FACTOR = 10.0
    """A point earns hypervolume only below this multiple of the best MSE found so far: the
    operating points worth having are within an order of magnitude of the best model (the
    benchmarks' reference is 10× the float model's MSE), so cheap configurations that break the
    model do not draw trials away from the accurate end of the front."""

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
                   if t.values is not None and all(math.isfinite(v) and v > 0 for v in t.values)]
        observed = [(self._params_of(t), t.values[0], t.values[1]) for t in history]
        self._model.fit([p for p, _, _ in observed], np.log([m for _, m, _ in observed]))
        theta = self._model.draw(self._rng)
        tried = {_key(p) for p, _, _ in observed}
        pool = [c for c in self._candidate_pool(observed, theta) if _key(c) not in tried
                and (self._max_cost is None or self._cost(c) <= self._max_cost)]
        if not pool:
            return {}
        pool = list({_key(c): c for c in pool}.values())
        predicted = self._model.predict(pool, theta)
        costs = np.array([self._cost(c) for c in pool])
        front = _front([(math.log(cost), math.log(mse)) for _, mse, cost in observed])
        best = (min(math.log(mse) for _, mse, _ in observed) if observed
                else float(np.min(predicted)))
        reference = (math.log(max([float(costs.max()), *(c for _, _, c in observed)])) + 0.1,
                     best + math.log(self.REFERENCE_MSE_FACTOR))
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
        """Exact cost: from per-group parts when the cost function is a sum over groups (bit-op
        counts are: each layer's count depends on its own bits only), else one call each."""
        scale = params["scale"]
        if scale not in self._cost_parts:
            self._cost_parts[scale] = self._group_cost_parts(scale)
        parts = self._cost_parts[scale]
        if parts is None:
            key = _key(params)
            if key not in self._costs:
                self._costs[key] = self._cost_fn(params)
            return self._costs[key]
        base, table = parts
        return base + sum(table[group][(params[f"w_bits:{group}"], params.get(f"a_bits:{group}"))]
                          for group in self._groups)

    def _group_cost_parts(self, scale: float) -> tuple[float, dict[str, dict]] | None:
        """The cost at ``scale`` as the widest configuration's cost plus, per group and choice,
        the change that choice makes; ``None`` if random configurations show it is not a sum."""
        widest: Params = {"scale": scale}
        for group in self._groups:
            self._set_group(widest, group, self._weight_bits[0], self._act_bits[0])
        base = self._cost_fn(widest)
        table: dict[str, dict] = {}
        for group in self._groups:
            table[group] = {}
            for weight in self._weight_bits:
                for act in (self._act_bits if weight != FLOAT else [None]):
                    changed = dict(widest)
                    self._set_group(changed, group, weight, act)
                    table[group][(weight, act)] = self._cost_fn(changed) - base
        for _ in range(3):
            params = self._random_params()
            params["scale"] = scale
            summed = base + sum(table[g][(params[f"w_bits:{g}"], params.get(f"a_bits:{g}"))]
                                for g in self._groups)
            if not math.isclose(summed, self._cost_fn(params), rel_tol=1e-9):
                return None
        return base, table

    def _choose(self, choices: list) -> Any:
        return choices[int(self._rng.integers(len(choices)))]

    def _set_group(self, params: Params, group: str, weight: Any, act: int | None) -> None:
        params[f"w_bits:{group}"] = weight
        params.pop(f"a_bits:{group}", None)
        if weight != FLOAT:
            params[f"a_bits:{group}"] = act if act is not None else self._choose(self._act_bits)

    def _random_params(self) -> Params:
        params: Params = {"scale": self._choose(self._scales)}
        for group in self._groups:
            self._set_group(params, group, self._choose(self._weight_bits), None)
        return params

    def _candidate_pool(self, observed: list[tuple[Params, float, float]],
                        theta: np.ndarray) -> list[Params]:
        pool = [self._random_params() for _ in range(self._candidates)]
        for scale in self._scales:
            for weight in self._weight_bits:
                for act in (self._act_bits if weight != FLOAT else [None]):
                    uniform: Params = {"scale": scale}
                    for group in self._groups:
                        self._set_group(uniform, group, weight, act)
                    pool.append(uniform)
            pool += self._greedy_path(scale, theta)
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
            name = self._choose(list(self._space))
            if name == "scale":
                params["scale"] = self._choose(self._scales)
            else:
                self._set_group(params, name.split(":", 1)[1], self._choose(self._weight_bits),
                                None)
        return params

    def _greedy_path(self, scale: float, theta: np.ndarray) -> list[Params]:
        """From the widest configuration at ``scale`` down to the narrowest, one group's weight
        or activation bits one step lower at a time, each step the one with the least predicted
        log-MSE increase per log-cost saved: the model's own Pareto path, as candidates."""
        params: Params = {"scale": scale}
        for group in self._groups:
            self._set_group(params, group, self._weight_bits[0], self._act_bits[0])
        path = [dict(params)]
        while True:
            moves = []
            for group in self._groups:
                weight, act = params[f"w_bits:{group}"], params.get(f"a_bits:{group}")
                w_index = self._weight_bits.index(weight)
                if w_index + 1 < len(self._weight_bits):
                    moves.append((group, self._weight_bits[w_index + 1], act))
                if act is not None and self._act_bits.index(act) + 1 < len(self._act_bits):
                    moves.append((group, weight, self._act_bits[self._act_bits.index(act) + 1]))
            if not moves:
                return path
            steps = []
            for group, weight, act in moves:
                step = dict(params)
                self._set_group(step, group, weight, act)
                steps.append(step)
            here = (self._model.predict([params], theta)[0], math.log(self._cost(params)))
            after = self._model.predict(steps, theta)
            saved = np.array([here[1] - math.log(self._cost(step)) for step in steps])
            worth = (after - here[0]) / np.maximum(saved, 1e-9)
            params = steps[int(np.argmin(np.where(saved > 0, worth, np.inf)))]
            path.append(dict(params))


class NoisePowerModel:
    """Bayesian model of a configuration's log-MSE from its scale and per-group bitwidths.

    ``log MSE = μ + ρ[scale] + log(1 + Σ_g exp(α + δ_g) · 4^(4 − w_g) + exp(β + γ_g) ·
    4^(4 − a_g))``: ``ρ`` is 0 at the largest scale; a float group adds no noise. Priors: ``μ``
    flat; ``ρ`` around ``log(s_max / s) / 2`` (a coarser grid interpolates worse); the whole
    network at 4-bit weights raises the MSE by half, at 4-bit activations doubles it (``α``,
    ``β``, wide); a group's deviations ``δ_g``, ``γ_g`` around 0. The posterior is the Laplace
    approximation at its mode (least squares on the residuals and the prior).
    """

    NOISE_SD = 0.15
    """Spread of a trial's log-MSE around the model (QAT is noisy, the model approximate)."""
    SCALE_SD = 0.7
    SHARED_SD = 2.0
    GROUP_SD = 1.0

    def __init__(self, scales: list[float], groups: list[str]) -> None:
        self.scales = sorted(scales, reverse=True)
        self.groups = groups
        n_scales, n_groups = len(self.scales), len(groups)
        # θ = [μ, ρ (scales but the largest), α, β, δ (groups), γ (groups)]
        self._rho = slice(1, n_scales)
        self._alpha, self._beta = n_scales, n_scales + 1
        self._delta = slice(n_scales + 2, n_scales + 2 + n_groups)
        self._gamma = slice(n_scales + 2 + n_groups, n_scales + 2 + 2 * n_groups)
        size = n_scales + 2 + 2 * n_groups
        self.prior_mean = np.zeros(size)
        self.prior_sd = np.full(size, self.GROUP_SD)
        self.prior_mean[self._rho] = [0.5 * math.log(self.scales[0] / s) for s in self.scales[1:]]
        self.prior_sd[self._rho] = self.SCALE_SD
        self.prior_mean[self._alpha] = math.log(0.5 / max(1, n_groups))
        self.prior_mean[self._beta] = math.log(1.0 / max(1, n_groups))
        self.prior_sd[[self._alpha, self._beta]] = self.SHARED_SD
        self.prior_sd[0] = 1e3
        self.mode = self.prior_mean.copy()
        self.covariance = np.diag(self.prior_sd ** 2)

    def features(self, configs: Sequence[Params]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per config: the scale's index, and per group the weight and activation noise powers
        relative to 4 bits."""
        scale_index = np.array([self.scales.index(c["scale"]) for c in configs])
        weight_noise = np.zeros((len(configs), len(self.groups)))
        act_noise = np.zeros_like(weight_noise)
        for row, params in enumerate(configs):
            for column, group in enumerate(self.groups):
                weight = params[f"w_bits:{group}"]
                if weight == FLOAT:
                    continue
                weight_noise[row, column] = 4.0 ** (4 - weight)
                act_noise[row, column] = 4.0 ** (4 - params[f"a_bits:{group}"])
        return scale_index, weight_noise, act_noise

    def _terms(self, theta: np.ndarray, feats: tuple) -> tuple[np.ndarray, ...]:
        scale_index, weight_noise, act_noise = feats
        rho = np.concatenate([[0.0], theta[self._rho]])
        weight_part = weight_noise * np.exp(theta[self._alpha] + theta[self._delta])
        act_part = act_noise * np.exp(theta[self._beta] + theta[self._gamma])
        noise = 1.0 + weight_part.sum(1) + act_part.sum(1)
        return theta[0] + rho[scale_index] + np.log(noise), weight_part, act_part, noise

    def predict(self, configs: Sequence[Params], theta: np.ndarray) -> np.ndarray:
        """Predicted log-MSE of ``configs`` under coefficients ``theta``."""
        return self._terms(theta, self.features(configs))[0]

    def fit(self, configs: Sequence[Params], log_mse: np.ndarray) -> None:
        """Posterior mode and covariance given finished trials (the prior when there are none)."""
        if not len(configs):
            self.mode, self.covariance = self.prior_mean.copy(), np.diag(self.prior_sd ** 2)
            return
        feats = self.features(configs)
        start = self.mode.copy()  # the last mode: trials arrive one at a time
        start[0] = float(np.median(log_mse))

        def residuals(theta: np.ndarray) -> np.ndarray:
            predicted = self._terms(theta, feats)[0]
            return np.concatenate([(predicted - log_mse) / self.NOISE_SD,
                                   (theta - self.prior_mean) / self.prior_sd])

        def jacobian(theta: np.ndarray) -> np.ndarray:
            scale_index, _, _ = feats
            _, weight_part, act_part, noise = self._terms(theta, feats)
            rows = np.zeros((len(configs), len(theta)))
            rows[:, 0] = 1.0
            for position in range(1, len(self.scales)):
                rows[:, position] = scale_index == position
            rows[:, self._delta] = weight_part / noise[:, None]
            rows[:, self._gamma] = act_part / noise[:, None]
            rows[:, self._alpha] = rows[:, self._delta].sum(1)
            rows[:, self._beta] = rows[:, self._gamma].sum(1)
            return np.vstack([rows / self.NOISE_SD, np.diag(1.0 / self.prior_sd)])

        solution = least_squares(residuals, start, jac=jacobian, method="trf")
        self.mode = solution.x
        jac = jacobian(self.mode)
        self.covariance = np.linalg.pinv(jac.T @ jac)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One sample of the coefficients from the (approximate) posterior."""
        covariance = (self.covariance + self.covariance.T) / 2
        return rng.multivariate_normal(self.mode, covariance, method="eigh")


def _bits_value(bits: int | str) -> int:
    return FLOAT_EQUIVALENT_BITS if bits == FLOAT else int(bits)


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
