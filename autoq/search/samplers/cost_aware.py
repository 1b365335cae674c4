"""autoq's own sampler: the cost of a configuration is known before any training — use it.

Generic multi-objective samplers (TPE, NSGA-II) treat both objectives as black boxes. Here only
the MSE is: the bit-op cost of any configuration is computed in a fraction of a millisecond. So
each new trial is chosen in two steps:

1. a model of the MSE, fitted to the finished trials. Quantizing a tensor to b bits adds noise of
   power ∝ 4^−b; independent, small noise sources add up at the output. So

       log MSE = μ + ρ(scale) + η(rank) + log(1 + Σ_g u_g · 4^(4 − w_g) + v_g · 4^(4 − a_g)),

   with ``u_g``/``v_g`` the output-MSE increase, relative to the float model at that scale, when
   group g's weights/activations are at 4 bits, and η the cost in accuracy of a factorization
   rank below the largest (in a search over ranks). The sensitivities share a log-normal prior
   (``u_g = exp(α + δ_g)``), so a few trials teach what 4-bit activations do anywhere and the
   rest of the budget learns the deviations. Every trial also measures the float model it
   started from (``float_mse``, and the full-resolution one, ``float_reference``): that
   model is the configuration with no quantization noise, so its error observes ``μ + ρ(scale)
   + η(rank)`` alone, at no cost. A scale whose float model is already beyond the errors worth
   having is then predicted so for every configuration there, after one trial, and the level
   ``μ`` is known from the first trial on, however broken that trial's bits. The posterior is
   approximated around its mode (Laplace) and one draw of it (Thompson sampling) predicts the
   MSE of every candidate;
2. candidates are random configurations, every uniform one, mutations of the front, and the
   model's own cheapest paths (greedy bit reductions with the least predicted MSE per bit-op
   saved, per scale and rank); each is priced exactly, and the one whose (predicted MSE,
   cost) point adds the most hypervolume to the current front, in log-log space, is run. A
   configuration whose cost cannot extend the front under the model is never spent on, and
   trials go to the gaps of the front.

The sampler plugs into Optuna like any other (``sample_relative``), so the storage, the
dashboard and resuming stay the same. It reads finished trials' configurations through
:mod:`autoq.search.records`, and the constraints known before training: ``max_cost`` exactly,
``max_mse`` (or ``max_mse_ratio`` × the float model's error, once a trial has measured it) by the
model's prediction.

The cost need not be a count. Under the latency objective the cost function is a prediction
from per-layer timings (:class:`~autoq.search.latency.LatencyModel`), and the trials record
what was measured: the sampler scales each scale's predictions by the ratio of measured to
predicted latency of the finished trials (:meth:`CostAwareSampler.cost_correction`), so every
measurement corrects the prices of the candidates.

With ``search.sensitivity`` the study holds a calibration-only sensitivity pass
(:mod:`autoq.search.sensitivity`): per group, the relative error increase of its weights, and
of its activations, quantized alone and calibrated without QAT. It becomes the prior mean of
the group's log-sensitivities (:meth:`NoisePowerModel.center_on`), and only of their ratios:

- calibration-only error is an upper estimate of what a trial measures, since QAT recovers
  much of it, by a factor unknown before any trial and roughly shared by the groups. So the
  pass sets each ``δ_g`` (``γ_g``) at the group's measured log-sensitivity minus the mean over
  the groups of weights (activations), and the weights-to-activations ratio it measured
  between ``α`` and ``β``; the level, the mean of ``α`` and ``β``, stays the plain prior's,
  with its wide width (2): the shared offset from calibration-only to QAT error is learned
  from the trials, as without the pass, and the first trials already learn it;
- the width of ``δ_g``/``γ_g`` stays 1 (an error factor e per standard deviation): the pass
  moves the centre, not the confidence. Calibration-only ratios are themselves biased (QAT
  recovers some groups more than others), so a handful of trials that contradict a group's
  centre by a factor of a few override it, while with no such trial yet the ranking is the
  pass's, which is what the first sampled trials need;
- a measured increase at most 0 (no effect within noise) is floored at 1/1000 of the largest
  one, so an insensitive group is taken as at least that insensitive, not infinitely so.

In a multi-fidelity search (``search.fidelity``) a screened trial's error is a short QAT's: the
model learns from it multiplied by the ratio full/screened the full-length trials measured
(:func:`autoq.search.fidelity.screening_ratio`), and, being infeasible, it is not on the front.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState
from scipy.optimize import least_squares

from autoq.bits import FLOAT, FLOAT_EQUIVALENT_BITS, Rank
from autoq.search.fidelity import estimated_full_error, screening_ratio
from autoq.search.records import (
    FLOAT_MSE_ATTR,
    FLOAT_REFERENCE_ATTR,
    RANK_PARAM,
    SCALE_PARAM,
    Params,
    Sensitivities,
    act_param,
    is_feasible,
    mse_bound,
    recorded_params,
    recorded_sensitivities,
    weight_param,
)

if TYPE_CHECKING:
    from autoq.search.samplers import PricedSpace, SamplerSettings


class Configs:
    """Configurations as index arrays, so that thousands are priced and predicted at once.

    Attributes:
        scale: ``(n,)`` index into the sampler's scales.
        rank: ``(n,)`` index into the sampler's ranks (largest first; always 0 when the rank
            is not searched).
        weight: ``(n, groups)`` index into the weight choices (widest first).
        act: ``(n, groups)`` index into the activation choices (widest first); 0 where the
            group's weights are float (a float group has no activation choice).
    """

    def __init__(self, scale: npt.ArrayLike, rank: npt.ArrayLike, weight: npt.ArrayLike,
                 act: npt.ArrayLike) -> None:
        self.scale = np.asarray(scale, dtype=np.int64)
        self.rank = np.asarray(rank, dtype=np.int64)
        self.weight = np.asarray(weight, dtype=np.int64)
        self.act = np.asarray(act, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.scale)

    def rows(self) -> np.ndarray:
        """One integer row per configuration: ``[scale, rank, weights…, activations…]``."""
        return np.column_stack([self.scale, self.rank, self.weight, self.act])

    @classmethod
    def from_rows(cls, rows: np.ndarray) -> Configs:
        groups = (rows.shape[1] - 2) // 2
        return cls(rows[:, 0], rows[:, 1], rows[:, 2:2 + groups], rows[:, 2 + groups:])

    @classmethod
    def concat(cls, parts: Sequence[Configs]) -> Configs:
        return cls.from_rows(np.vstack([part.rows() for part in parts]))


class CostAwareSampler(BaseSampler):
    """Thompson-sampled hypervolume improvement with exactly known costs.

    Args:
        scales: the scale factors to choose from.
        groups: layer groups (``{group: [layer, ...]}``) that share one precision choice.
        weight_bits: weight bitwidth choices (may include ``"float"``).
        act_bits: activation bitwidth choices.
        cost_fn: bit-op cost of a parameter set (:func:`autoq.search.records.encode_params`).
        ranks: factorization ranks to choose from, largest first (``None`` alone: the rank is
            not searched and no ``rank`` parameter is sampled).
        seed: seed of the candidate draws and the posterior samples.
        candidates: random candidates drawn per trial (besides the uniform configurations, the
            front's mutations and the model's greedy paths).
        max_cost: never propose a configuration costing more (a constraint known up front).
        max_mse: never propose a configuration whose predicted MSE (under the trial's posterior
            draw) is above; when the model predicts every candidate above, the one predicted
            lowest.
        max_mse_ratio: the same bound as a multiple of the float model's error at full
            resolution, as the finished trials recorded it (no bound before the first).
        float_cost: the float model's cost at the largest scale and rank, the corner the
            sampler measures hypervolume from (:meth:`reference`); ``None``: the costliest
            configuration it knows.
    """

    def __init__(
        self,
        *,
        scales: Sequence[float],
        groups: Mapping[str, Sequence[str]],
        weight_bits: Sequence[int | str],
        act_bits: Sequence[int],
        cost_fn: Callable[[Params], float],
        ranks: Sequence[Rank | None] = (None,),
        seed: int | None = None,
        candidates: int = 1024,
        max_cost: float | None = None,
        max_mse: float | None = None,
        max_mse_ratio: float | None = None,
        float_cost: float | None = None,
    ) -> None:
        self._scales = list(scales)
        self._ranks = list(ranks)
        self._groups = {g: list(layers) for g, layers in groups.items()}
        # Widest first: the greedy paths start there and step down.
        self._weight_bits = sorted(weight_bits, key=_bits_value, reverse=True)
        self._act_bits = sorted(act_bits, reverse=True)
        self._float_weight = np.array([bits == FLOAT for bits in self._weight_bits])
        self._cost_fn = cost_fn
        self._rng = np.random.default_rng(seed)
        self._fallback = RandomSampler(seed=seed)
        self._candidates = candidates
        self._max_cost = max_cost
        self._max_mse = max_mse
        self._max_mse_ratio = max_mse_ratio
        self._float_cost = float_cost
        self._costs: dict[bytes, float] = {}
        self._cost_tables: dict[tuple[int, int], tuple[float, np.ndarray] | None] = {}
        self._space: dict[str, BaseDistribution] = {
            SCALE_PARAM: CategoricalDistribution(self._scales)}
        if self._ranks != [None]:
            self._space[RANK_PARAM] = CategoricalDistribution(self._ranks)
        for group in self._groups:
            self._space[weight_param(group)] = CategoricalDistribution(list(weight_bits))
            self._space[act_param(group)] = CategoricalDistribution(list(act_bits))
        self._model = NoisePowerModel(
            len(self._scales), len(self._groups), ranks=len(self._ranks),
            coarseness=[math.log(max(self._scales) / s) for s in self._scales],
            weight_noise=[_noise_power(bits) for bits in self._weight_bits],
            act_noise=[_noise_power(bits) for bits in self._act_bits])
        self._prior_measured = False

    REFERENCE_MSE_FACTOR = 10.0
    """A point earns hypervolume only below this multiple of the best MSE known (found so far,
    or the float model's): the operating points worth having are within an order of magnitude
    of the best model (the benchmarks' reference is 10× the float model's MSE), so cheap
    configurations that break the model do not draw trials away from the accurate end of the
    front."""

    def reference(self, costs: Sequence[float], errors: Sequence[float]) -> tuple[float, float]:
        """The (log cost, log MSE) corner the sampler's hypervolume is measured from: the float
        model's cost at full resolution (when the sampler was given it), or the largest of
        ``costs`` (candidates and finished trials) above it, and
        :data:`REFERENCE_MSE_FACTOR` × the lowest of ``errors`` (log).

        The float model is a point of the trade-off known before any trial (every trial
        records its error, the space prices it): a configuration is worth running only where
        it is cheaper. Measured from the costliest candidate instead, the corner moves down to
        the search's own cheap trials, and the accurate configurations between them and the
        float model's cost — the near-float end of the front — earn nothing."""
        top = max(costs) if self._float_cost is None else max(self._float_cost, *costs)
        return (math.log(top) + 0.1,
                min(errors) + math.log(self.REFERENCE_MSE_FACTOR))

    def reseed_rng(self) -> None:
        """Fresh random streams, so parallel workers that built the sampler with one seed do not
        propose the same configuration."""
        self._rng = np.random.default_rng()
        self._fallback.reseed_rng()

    @classmethod
    def for_space(cls, space: PricedSpace, settings: SamplerSettings, *, seed: int | None
                  ) -> CostAwareSampler:
        """The sampler of a search space, with the search's constraints."""
        return cls(scales=space.scales, groups=space.groups, weight_bits=space.weight_choices,
                   act_bits=space.act_choices, cost_fn=space.params_cost, ranks=space.ranks,
                   seed=seed, max_cost=settings.max_cost, max_mse=settings.max_mse,
                   max_mse_ratio=settings.max_mse_ratio, float_cost=space.float_cost)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        # Finished trials that never asked for a scale belong to another objective: the
        # configuration space is not theirs, so sample whatever they ask independently.
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if finished and not any(SCALE_PARAM in t.params for t in finished):
            return {}
        return dict(self._space)

    def use_sensitivities(self, measured: Sensitivities) -> bool:
        """Centre the model's prior on a calibration-only sensitivity pass (the module's
        docstring says how); False, and the prior unchanged, when the pass measured other
        groups than this sampler's or no effect at all."""
        groups = list(self._groups)
        if set(measured.weight) != set(groups) or set(measured.act) != set(groups):
            return False
        # Only ratios between sensitivities are taken, and with noise power ∝ 4^−bits they are
        # the same at the pass's bits as at the model's 4.
        return self._model.center_on(np.array([measured.weight[g] for g in groups]),
                                     np.array([measured.act[g] for g in groups]))

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> Params:
        if not self._prior_measured:
            measured = recorded_sensitivities(study.user_attrs)
            self._prior_measured = measured is not None and self.use_sensitivities(measured)
        observed_params, mse, cost, feasible = [], [], [], []
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        # A screened trial (multi-fidelity QAT) teaches the model its error corrected to full
        # length; it is infeasible (full_fidelity unmet), so it never joins the front.
        ratio = screening_ratio(complete)
        for finished in complete:
            params = self._params_of(finished)
            values = finished.values
            if (params is not None and values is not None
                    and all(math.isfinite(v) and v > 0 for v in values)):
                observed_params.append(params)
                mse.append(estimated_full_error(finished, ratio))
                cost.append(values[1])
                feasible.append(is_feasible(finished))
        observed = self.encode(observed_params)
        self._model.fit(observed, np.log(mse), self.float_errors(complete))
        theta = self._model.draw(self._rng)
        # The model learns from every trial; the front to extend holds the feasible ones.
        meets = np.array(feasible, dtype=bool)
        front_mse, front_cost = np.log(mse)[meets], np.log(cost)[meets]
        pool = self._candidate_pool(Configs.from_rows(observed.rows()[meets]), front_mse,
                                    front_cost, theta)
        rows = np.unique(pool.rows(), axis=0)
        tried = {row.tobytes() for row in observed.rows()}
        rows = rows[[row.tobytes() not in tried for row in rows]]
        if not len(rows):
            return {}
        costs = self.costs(Configs.from_rows(rows))
        costs *= self.cost_correction(observed, np.array(cost))[rows[:, 0]]
        if self._max_cost is not None:
            rows, costs = rows[costs <= self._max_cost], costs[costs <= self._max_cost]
            if not len(rows):
                return {}
        pool = Configs.from_rows(rows)
        predicted = self._model.predict(pool, theta)
        max_mse = self.mse_bound(complete)
        if max_mse is not None:
            bound = math.log(max_mse)
            keep = predicted <= bound if np.any(predicted <= bound) else (
                predicted == predicted.min())
            rows, costs, predicted = rows[keep], costs[keep], predicted[keep]
        front = _front(list(zip(front_cost, front_mse, strict=True)))
        reference = self.reference(
            costs=[float(costs.max()), *cost],
            errors=[float(np.min(front_mse)) if len(front_mse) else float(np.min(predicted)),
                    *(math.log(e) for e in _float_reference(complete))])
        gains = np.array([_improvement(front, (math.log(c), y), reference)
                          for c, y in zip(costs, predicted, strict=True)])
        # When nothing is predicted to extend the front, any untried configuration teaches.
        chosen = int(np.argmax(gains)) if gains.max() > 0 else int(self._rng.integers(len(rows)))
        return self.decode(Configs.from_rows(rows[chosen:chosen + 1]))[0]

    def float_errors(self, complete: Sequence[FrozenTrial]) -> FloatErrors:
        """The float models' errors the ``complete`` trials recorded: each trial's own
        scale and rank's, and the full-resolution reference (the largest scale and rank)."""
        measured = {(self._scales.index(max(self._scales)), 0): reference
                    for reference in _float_reference(complete)}
        for finished in complete:
            params = self._params_of(finished)
            value = finished.user_attrs.get(FLOAT_MSE_ATTR)
            if params is not None and isinstance(value, float) and math.isfinite(value) \
                    and value > 0:
                measured[self._scales.index(params[SCALE_PARAM]),
                         self._ranks.index(params.get(RANK_PARAM))] = value
        if not measured:
            return FloatErrors.none()
        keys = np.array(list(measured), dtype=np.int64)
        return FloatErrors(keys[:, 0], keys[:, 1], np.log(list(measured.values())))

    def mse_bound(self, complete: Sequence[FrozenTrial]) -> float | None:
        """The error bound in force: ``max_mse``, or ``max_mse_ratio`` × the float model's
        error that the ``complete`` trials recorded (``None`` before the first records it)."""
        recorded = _float_reference(complete)
        return mse_bound(self._max_mse, self._max_mse_ratio, recorded[0] if recorded else None)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def encode(self, configs: Sequence[Params]) -> Configs:
        """Parameter sets as index arrays."""
        groups = list(self._groups)
        scale = [self._scales.index(p[SCALE_PARAM]) for p in configs]
        rank = [self._ranks.index(p.get(RANK_PARAM)) for p in configs]
        weight = [[self._weight_bits.index(p[weight_param(g)]) for g in groups] for p in configs]
        act = [[0 if p[weight_param(g)] == FLOAT else self._act_bits.index(p[act_param(g)])
                for g in groups] for p in configs]
        return Configs(scale, rank, np.array(weight).reshape(len(configs), len(groups)),
                       np.array(act).reshape(len(configs), len(groups)))

    def decode(self, configs: Configs) -> list[Params]:
        """Index arrays as parameter sets."""
        decoded = []
        for scale, rank, weights, acts in zip(configs.scale, configs.rank, configs.weight,
                                              configs.act, strict=True):
            params: Params = {SCALE_PARAM: self._scales[scale]}
            if self._ranks[rank] is not None:
                params[RANK_PARAM] = self._ranks[rank]
            for group, w, a in zip(self._groups, weights, acts, strict=True):
                params[weight_param(group)] = self._weight_bits[w]
                if not self._float_weight[w]:
                    params[act_param(group)] = self._act_bits[a]
            decoded.append(params)
        return decoded

    def costs(self, configs: Configs) -> np.ndarray:
        """Exact costs: from per-group parts when the cost function is a sum over groups (bit-op
        counts are: each layer's count depends on its own bits only), else one call each."""
        total = np.empty(len(configs))
        columns = np.arange(len(self._groups))
        for scale, rank in np.unique(np.column_stack([configs.scale, configs.rank]), axis=0):
            at = (configs.scale == scale) & (configs.rank == rank)
            table = self._table_at(int(scale), int(rank))
            if table is not None:
                base, parts = table
                total[at] = base + parts[columns, configs.weight[at], configs.act[at]].sum(1)
                continue
            rows = configs.rows()
            for index in np.flatnonzero(at):
                key = rows[index].tobytes()
                if key not in self._costs:
                    one = Configs.from_rows(rows[index:index + 1])
                    self._costs[key] = self._cost_fn(self.decode(one)[0])
                total[index] = self._costs[key]
        return total

    CORRECTION_PRIOR = 1.0
    """Pseudo-trials of the search-wide ratio in each scale's cost correction: one trial at a
    scale moves that scale's factor halfway from the search-wide one to its own."""

    def cost_correction(self, observed: Configs, recorded: np.ndarray) -> np.ndarray:
        """Per scale index, the factor by which finished trials' recorded costs exceed what
        the cost function priced them at: 1 for bit-ops (priced exactly); for a predicted cost
        (latency, from per-layer timings) it learns the prediction's bias from every
        measurement, per scale, shrunk towards the search-wide factor where a scale has few
        trials."""
        factors = np.ones(len(self._scales))
        if not len(observed):
            return factors
        log_ratio = np.log(recorded) - np.log(self.costs(observed))
        if np.allclose(log_ratio, 0.0, rtol=0, atol=1e-9):
            return factors
        overall = float(np.mean(log_ratio))
        for scale in range(len(self._scales)):
            here = log_ratio[observed.scale == scale]
            factors[scale] = math.exp((here.sum() + self.CORRECTION_PRIOR * overall)
                                      / (len(here) + self.CORRECTION_PRIOR))
        return factors

    def _table_at(self, scale: int, rank: int) -> tuple[float, np.ndarray] | None:
        """The per-group cost table of scale index ``scale`` and rank index ``rank``, built on
        first use."""
        if (scale, rank) not in self._cost_tables:
            self._cost_tables[scale, rank] = self._cost_table(scale, rank)
        return self._cost_tables[scale, rank]

    def _cost_table(self, scale: int, rank: int) -> tuple[float, np.ndarray] | None:
        """The cost at scale index ``scale`` and rank index ``rank`` as the widest
        configuration's plus, per group and choice, the change that choice makes; ``None`` if
        random configurations show that the cost is not such a sum."""
        groups, widths, acts = len(self._groups), len(self._weight_bits), len(self._act_bits)
        widest = Configs([scale], [rank], np.zeros((1, groups)), np.zeros((1, groups)))
        base = self._cost_fn(self.decode(widest)[0])
        parts = np.zeros((groups, widths, acts))
        for group in range(groups):
            for w in range(widths):
                for a in range(1 if self._float_weight[w] else acts):
                    changed = Configs.from_rows(widest.rows())
                    changed.weight[0, group], changed.act[0, group] = w, a
                    parts[group, w, a] = self._cost_fn(self.decode(changed)[0]) - base
                if self._float_weight[w]:
                    parts[group, w, :] = parts[group, w, 0]
        check = self._random_configs(3)
        check.scale[:], check.rank[:] = scale, rank
        summed = base + parts[np.arange(groups), check.weight, check.act].sum(1)
        exact = [self._cost_fn(params) for params in self.decode(check)]
        if not np.allclose(summed, exact, rtol=1e-9, atol=0):
            return None
        return base, parts

    def _params_of(self, trial: FrozenTrial) -> Params | None:
        """A finished trial's configuration, or ``None`` for one outside this space (e.g. from
        an earlier version of the spec)."""
        params = recorded_params(trial, self._groups)
        if params is None:
            return None
        inside = params[SCALE_PARAM] in self._scales and params.get(
            RANK_PARAM) in self._ranks and all(
            params[weight_param(g)] in self._weight_bits
            and params.get(act_param(g), self._act_bits[0]) in self._act_bits
            for g in self._groups)
        return params if inside else None

    def _random_configs(self, count: int) -> Configs:
        groups = len(self._groups)
        weight = self._rng.integers(len(self._weight_bits), size=(count, groups))
        act = self._rng.integers(len(self._act_bits), size=(count, groups))
        return Configs(self._rng.integers(len(self._scales), size=count),
                       self._rng.integers(len(self._ranks), size=count), weight,
                       np.where(self._float_weight[weight], 0, act))

    def _candidate_pool(self, observed: Configs, log_mse: np.ndarray, log_cost: np.ndarray,
                        theta: np.ndarray) -> Configs:
        groups = len(self._groups)
        uniform = [(s, r, w, a) for s in range(len(self._scales)) for r in range(len(self._ranks))
                   for w in range(len(self._weight_bits))
                   for a in range(1 if self._float_weight[w] else len(self._act_bits))]
        parts = [self._random_configs(self._candidates),
                 Configs([u[0] for u in uniform], [u[1] for u in uniform],
                         np.repeat([[u[2]] for u in uniform], groups, 1),
                         np.repeat([[u[3]] for u in uniform], groups, 1))]
        parts += [self._greedy_path(scale, rank, theta) for scale in range(len(self._scales))
                  for rank in range(len(self._ranks))]
        on_front = [i for i in range(len(observed))
                    if not np.any((log_mse <= log_mse[i]) & (log_cost <= log_cost[i])
                                  & ((log_mse < log_mse[i]) | (log_cost < log_cost[i])))]
        if on_front:
            copies = max(1, self._candidates // len(on_front) // 2)
            parts.append(self._mutate(Configs.from_rows(
                np.repeat(observed.rows()[on_front], copies, axis=0))))
        return Configs.concat(parts)

    def _mutate(self, configs: Configs) -> Configs:
        """Each configuration with 1–3 of its choices (the scale, the rank or a group's bits)
        redrawn."""
        mutated = Configs.from_rows(configs.rows())
        fresh = self._random_configs(len(configs))
        groups = len(self._groups)
        for _ in range(3):
            position = self._rng.integers(groups + 2, size=len(configs))
            keep = self._rng.random(len(configs)) < 0.5
            rows = np.flatnonzero(~keep & (position == groups))
            mutated.scale[rows] = fresh.scale[rows]
            rows = np.flatnonzero(~keep & (position == groups + 1))
            mutated.rank[rows] = fresh.rank[rows]
            rows = np.flatnonzero(~keep & (position < groups))
            mutated.weight[rows, position[rows]] = fresh.weight[rows, position[rows]]
            mutated.act[rows, position[rows]] = fresh.act[rows, position[rows]]
        return mutated

    def _greedy_path(self, scale: int, rank: int, theta: np.ndarray) -> Configs:
        """From the widest configuration at ``scale`` and ``rank`` down to the narrowest, one
        group's weight or activation bits one step lower at a time, each step the one with the
        least predicted log-MSE increase per log-cost saved: the model's own Pareto path, as
        candidates (none when the cost is not a sum over groups)."""
        groups = len(self._groups)
        table = self._table_at(scale, rank)
        if table is None:
            return Configs.from_rows(np.zeros((0, 2 + 2 * groups), dtype=np.int64))
        base, parts = table
        last_weight, last_act = len(self._weight_bits) - 1, len(self._act_bits) - 1
        column = np.arange(groups)
        weight, act = np.zeros(groups, dtype=np.int64), np.zeros(groups, dtype=np.int64)
        path = [np.concatenate([[scale, rank], weight, act])]

        def noise_of(w: np.ndarray, a: np.ndarray) -> np.ndarray:
            weight_part, act_part = self._model.group_noise(w, a, theta)
            return weight_part + act_part

        while True:
            here_noise, here_cost = noise_of(weight, act), parts[column, weight, act]
            noise, cost = 1.0 + here_noise.sum(), base + here_cost.sum()
            narrower_weight = np.minimum(weight + 1, last_weight)
            narrower_act = np.minimum(act + 1, last_act)
            moves = [(narrower_weight, act, weight < last_weight),
                     (weight, narrower_act, ~self._float_weight[weight] & (act < last_act))]
            possible = np.concatenate([allowed for _, _, allowed in moves])
            if not possible.any():
                return Configs.from_rows(np.array(path))
            added = np.concatenate([noise_of(w, a) - here_noise for w, a, _ in moves])
            saved = math.log(cost) - np.log(cost + np.concatenate(
                [parts[column, w, a] - here_cost for w, a, _ in moves]))
            worth = np.log1p(added / noise) / np.maximum(saved, 1e-12)
            ranked = np.where(possible & (saved > 0), worth, np.inf)
            move = int(np.argmin(ranked)) if np.isfinite(ranked).any() else int(
                np.argmax(possible))
            group, (w, a, _) = move % groups, moves[move // groups]
            weight[group], act[group] = w[group], a[group]
            path.append(np.concatenate([[scale, rank], weight, act]))


class FloatErrors(NamedTuple):
    """The float models' measured errors: one per (scale, rank) index pair, as log-MSE."""

    scale: np.ndarray
    rank: np.ndarray
    log_mse: np.ndarray

    @classmethod
    def none(cls) -> FloatErrors:
        empty = np.zeros(0, dtype=np.int64)
        return cls(empty, empty, np.zeros(0))


class NoisePowerModel:
    """Bayesian model of a configuration's log-MSE from its scale, rank and per-group bitwidths.

    ``log MSE = μ + κ·c_s + ε_s + η_r + log(1 + Σ_g exp(α + δ_g) · 4^(4 − w_g) + exp(β + γ_g) ·
    4^(4 − a_g))`` with ``c_s = log(s_max / s)`` the grid's coarseness: a trend shared by all
    scales (so a few scales teach about the others) plus each scale's own deviation ``ε_s``
    (0 at the reference scale); ``η_r`` the factorization rank's effect (0 at the largest
    rank); a float group adds no noise. Priors: ``μ`` flat; ``κ`` around 1/2 (interpolation
    error grows as the grid coarsens); the whole network at 4-bit weights raises the MSE by
    half, at 4-bit activations doubles it (``α``, ``β``, wide); deviations ``ε_s``, ``η_r``,
    ``δ_g``, ``γ_g`` around 0. The posterior is the Laplace approximation at its mode (least
    squares on the residuals and the prior).

    Args:
        scales: number of scale choices.
        groups: number of layer groups.
        ranks: number of rank choices (1 when the rank is not searched), largest first.
        coarseness: ``c_s`` per scale (0 for the reference scale).
        weight_noise: noise power relative to 4 bits of each weight choice (0 for float).
        act_noise: the same for each activation choice.
    """

    NOISE_SD = 0.15
    """Spread of a trial's log-MSE around the model (QAT is noisy, the model approximate)."""
    TREND_SD = 0.5
    SCALE_SD = 0.3
    RANK_SD = 1.0
    SHARED_SD = 2.0
    GROUP_SD = 1.0

    def __init__(self, scales: int, groups: int, *, coarseness: Sequence[float],
                 weight_noise: Sequence[float], act_noise: Sequence[float], ranks: int = 1
                 ) -> None:
        self.weight_noise = np.asarray(weight_noise, dtype=float)
        self.act_noise = np.asarray(act_noise, dtype=float)
        self.float_weight = self.weight_noise == 0
        self.coarseness = np.asarray(coarseness, dtype=float)
        # θ = [μ, κ, ε (scales), η (ranks), α, β, δ (groups), γ (groups)]
        self._kappa = 1
        self._epsilon = slice(2, 2 + scales)
        self._eta = slice(2 + scales, 2 + scales + ranks)
        shared = 2 + scales + ranks
        self._alpha, self._beta = shared, shared + 1
        self._delta = slice(shared + 2, shared + 2 + groups)
        self._gamma = slice(shared + 2 + groups, shared + 2 + 2 * groups)
        size = shared + 2 + 2 * groups
        self.prior_mean = np.zeros(size)
        self.prior_sd = np.full(size, self.GROUP_SD)
        self.prior_mean[self._kappa], self.prior_sd[self._kappa] = 0.5, self.TREND_SD
        # The reference scale's deviation is pinned to 0 (μ carries it).
        self.prior_sd[self._epsilon] = np.where(self.coarseness == 0, 1e-6, self.SCALE_SD)
        # So is the largest rank's.
        self.prior_sd[self._eta] = [1e-6, *[self.RANK_SD] * (ranks - 1)]
        self.prior_mean[self._alpha] = math.log(0.5 / max(1, groups))
        self.prior_mean[self._beta] = math.log(1.0 / max(1, groups))
        self.prior_sd[[self._alpha, self._beta]] = self.SHARED_SD
        self.prior_sd[0] = 1e3
        self.mode = self.prior_mean.copy()
        self.covariance = np.diag(self.prior_sd ** 2)

    MEASURED_FLOOR = 1e-3
    """A measured sensitivity is taken as at least this fraction of the largest one."""

    def center_on(self, weight: np.ndarray, act: np.ndarray) -> bool:
        """Centre the prior of the group sensitivities on measured ones: ``weight``, ``act``
        per group, the relative MSE increase at one bitwidth (a calibration-only estimate;
        only their ratios are used, so any bitwidth will do). Sets the
        means of ``δ``, ``γ`` and the split between ``α`` and ``β``; their mean level and
        every width stay (see :mod:`autoq.search.samplers.cost_aware`). False, and nothing
        changed, when nothing measured is above 0."""
        measured = np.concatenate([weight, act])
        if not np.any(measured > 0):
            return False
        floor = float(measured.max()) * self.MEASURED_FLOOR
        log_weight = np.log(np.maximum(weight, floor))
        log_act = np.log(np.maximum(act, floor))
        level_weight, level_act = float(log_weight.mean()), float(log_act.mean())
        level = (self.prior_mean[self._alpha] + self.prior_mean[self._beta]) / 2
        half_split = (level_weight - level_act) / 2
        self.prior_mean[self._alpha] = level + half_split
        self.prior_mean[self._beta] = level - half_split
        self.prior_mean[self._delta] = log_weight - level_weight
        self.prior_mean[self._gamma] = log_act - level_act
        self.mode = self.prior_mean.copy()
        self.covariance = np.diag(self.prior_sd ** 2)
        return True

    def _base(self, theta: np.ndarray, scale: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """``μ + ρ(scale) + η(rank)``: the log-error of the float model at each scale and
        rank index."""
        rho = theta[self._kappa] * self.coarseness + theta[self._epsilon]
        return theta[0] + rho[scale] + theta[self._eta][rank]

    def _terms(self, theta: np.ndarray, configs: Configs) -> tuple[np.ndarray, ...]:
        weight_part, act_part = self.group_noise(configs.weight, configs.act, theta)
        noise = 1.0 + weight_part.sum(1) + act_part.sum(1)
        return (self._base(theta, configs.scale, configs.rank) + np.log(noise),
                weight_part, act_part, noise)

    def sensitivities(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per group, the relative MSE increase of its weights and of its activations at 4
        bits under coefficients ``theta``."""
        return (np.exp(theta[self._alpha] + theta[self._delta]),
                np.exp(theta[self._beta] + theta[self._gamma]))

    def group_noise(self, weight: np.ndarray, act: np.ndarray, theta: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Each group's relative noise from its weights and from its activations, for weight
        and activation choice indices ``weight``, ``act`` (``(..., groups)``)."""
        weight_sensitivity, act_sensitivity = self.sensitivities(theta)
        return (self.weight_noise[weight] * weight_sensitivity,
                np.where(self.float_weight[weight], 0.0, self.act_noise[act]) * act_sensitivity)

    def predict(self, configs: Configs, theta: np.ndarray) -> np.ndarray:
        """Predicted log-MSE of ``configs`` under coefficients ``theta``."""
        return self._terms(theta, configs)[0]

    def fit(self, configs: Configs, log_mse: np.ndarray,
            float_errors: FloatErrors | None = None) -> None:
        """Posterior mode and covariance given finished trials and the float models' errors
        they measured (the prior when there are neither).

        A float model is the configuration without quantization noise at its scale and rank:
        its error observes ``μ + ρ(scale) + η(rank)`` alone. Without it the level ``μ`` (flat
        prior) and the scales' offsets are learned only through the quantized trials' noise
        terms, and a few first trials with broken bits (hundreds of times the float error)
        make the model predict every configuration out of reach."""
        floats = FloatErrors.none() if float_errors is None else float_errors
        if not len(configs) and not len(floats.log_mse):
            self.mode, self.covariance = self.prior_mean.copy(), np.diag(self.prior_sd ** 2)
            return
        observed = np.concatenate([log_mse, floats.log_mse])
        start = self.mode.copy()  # the last mode: trials arrive one at a time
        start[0] = float(np.median(observed))

        def residuals(theta: np.ndarray) -> np.ndarray:
            predicted = np.concatenate([self._terms(theta, configs)[0],
                                        self._base(theta, floats.scale, floats.rank)])
            return np.concatenate([(predicted - observed) / self.NOISE_SD,
                                   (theta - self.prior_mean) / self.prior_sd])

        def jacobian(theta: np.ndarray) -> np.ndarray:
            _, weight_part, act_part, noise = self._terms(theta, configs)
            scale = np.concatenate([configs.scale, floats.scale])
            rank = np.concatenate([configs.rank, floats.rank])
            rows = np.zeros((len(scale), len(theta)))
            rows[:, 0] = 1.0
            rows[:, self._kappa] = self.coarseness[scale]
            epsilon = rows[:, self._epsilon]
            epsilon[np.arange(len(scale)), scale] = 1.0
            rows[:, self._epsilon] = epsilon
            eta = rows[:, self._eta]
            eta[np.arange(len(scale)), rank] = 1.0
            rows[:, self._eta] = eta
            quantized = slice(0, len(configs))  # a float model's rows stay 0 in α…γ
            rows[quantized, self._delta] = weight_part / noise[:, None]
            rows[quantized, self._gamma] = act_part / noise[:, None]
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


def _float_reference(trials: Sequence[FrozenTrial]) -> list[float]:
    """The float model's error at full resolution, as the finished trials recorded it (at most
    one value; none before the first trial or for trials that do not record it)."""
    recorded = (t.user_attrs.get(FLOAT_REFERENCE_ATTR) for t in trials)
    return [value for value in recorded if isinstance(value, float) and value > 0][:1]


def _bits_value(bits: int | str) -> int:
    return FLOAT_EQUIVALENT_BITS if bits == FLOAT else int(bits)


def _noise_power(bits: int | str) -> float:
    """Quantization noise power of a bitwidth relative to 4 bits (``4^(4 − bits)``); none for
    float."""
    return 0.0 if bits == FLOAT else 4.0 ** (4 - int(bits))


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
