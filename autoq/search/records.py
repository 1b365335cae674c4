"""The trial record: the one place that says how a search is written into an Optuna study.

A search is a two-objective study (minimise error, minimise bit-op cost). What autoq writes on
a study and its trials, and how it is read back, is defined here and nowhere else:

- the objectives and their directions;
- the sampler parameters of a configuration: ``scale``, ``rank`` (only in a search over
  factorization ranks) and, per layer group ``g``, ``w_bits:g`` (a bitwidth or
  :data:`~autoq.bits.FLOAT`), ``a_bits:g`` (absent when the group is float) and, when the search
  chooses the FNO's transform (``space.transform: search``), ``transform:g`` (``fft`` or
  ``dft``; only for a quantized group holding a spectral convolution);
- the user attributes of a trial (per-layer bits, cost breakdown, timings, error, …);
- feasibility: the trial's constraints (Optuna's ``trial.set_constraint``), feasible when every
  value is ≤ 0;
- :class:`TrialPoint`, a trial as the CLI and the REST API show it, and
  :class:`CompletePoint`, a complete one with its values, for code that works on those only.

Importing this module loads Optuna only: no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from optuna.trial import FrozenTrial, TrialState

from autoq.bits import FLOAT, TRANSFORMS, Bits, Rank, Transform

COST_OBJECTIVE = "cost"
LATENCY_OBJECTIVE = "latency"


def objective_names(metric: str, cost: Literal["bitops", "latency"] = "bitops") -> list[str]:
    """The objectives' names, in the order of a trial's values: the search's error metric
    (``mse`` by default) and the cost: ``cost`` (bit-ops) or ``latency`` (relative to the float
    full-resolution model)."""
    return [metric, LATENCY_OBJECTIVE if cost == "latency" else COST_OBJECTIVE]


def cost_objective_name(metric_names: Sequence[str] | None) -> str:
    """The name of a study's cost objective from its metric names: :data:`LATENCY_OBJECTIVE`
    or :data:`COST_OBJECTIVE` (bit-ops; also for studies that named no metrics)."""
    if metric_names and metric_names[-1] == LATENCY_OBJECTIVE:
        return LATENCY_OBJECTIVE
    return COST_OBJECTIVE


DIRECTIONS: tuple[Literal["minimize", "maximize"], ...] = ("minimize", "minimize")
"""Optuna's direction of each objective, in the same order (both are minimised)."""

SPEC_ATTR = "autoq_spec"
"""Study user attribute: the search's spec as JSON."""

SENSITIVITY_ATTR = "autoq_sensitivity"
"""Study user attribute: the calibration-only sensitivity pass of ``search.sensitivity``
(:class:`Sensitivities` as JSON), written once, before the first trial, and read back on resume
and by autoq's sampler."""

SCALE_PARAM = "scale"
RANK_PARAM = "rank"
"""The factorization rank's parameter, present only when the spec's ``space.ranks`` is set."""
_WEIGHT_PREFIX, _ACT_PREFIX = "w_bits:", "a_bits:"
_TRANSFORM_PREFIX = "transform:"

# Trial user attributes.
BITS_ATTR = "bits"
"""``{layer: [weight_bits, act_bits] or "float"}``, written before the trial trains."""
TRANSFORMS_ATTR = "transforms"
"""``{layer: "fft" or "dft"}``, the transform of each spectral convolution the configuration
names (``space.transform`` ``dft`` or ``search``), written before the trial trains."""
BASELINE_ATTR = "baseline"
"""The paper's uniform regime an enqueued baseline trial reproduces (``w4a8``, …)."""
ERROR_ATTR = "error"
"""Why the objective failed (``"TrialError: …"``); absent when a trial's process died."""
ORPHAN_ATTR = "orphaned"
"""Why a trial was failed from outside: its process was gone (the service's stale-job sweep);
such a trial does not count towards the budget and runs once more."""
REPLACES_ATTR = "replaces_trial"
"""System attribute of a trial re-added from a result whose own trial was failed meanwhile
(:class:`~autoq.search.storage.ResilientStorage`'s journal): the number of that trial."""
COST_BREAKDOWN_ATTR = "cost_breakdown"
BITOPS_ATTR = "bitops"
"""The configuration's bit-op cost: the second objective's value in a bit-op search, and kept
beside the measured latency in a latency search."""
FLOPS_ATTR = "flops"
FLOAT_MSE_ATTR = "float_mse"
"""The error of the float model the trial started from (its scale), in the search's metric."""
FLOAT_REFERENCE_ATTR = "float_reference"
"""The float model's error at the largest scale of the space (full resolution), the yardstick
of relative bounds (``max_ratio``)."""
ROLLOUT_MSE_ATTR = "rollout_mse"
TIMINGS_ATTR = "timings"
ARTIFACT_ATTR = "artifact"
DEPLOYABLE_ATTR = "deployable"
"""The trial's deployable folder (ONNX from raw input to raw output, :mod:`autoq.deploy`)."""
DEPLOYED_ERROR_ATTR = "deployed_error"
"""The deployable ONNX model's error on the validation set, run by onnxruntime with its default
graph optimisations, in the search's metric (equal to the trial's error up to the runtime's
arithmetic: its integer kernels requantize in their own way)."""
DEPLOY_ERROR_ATTR = "deploy_error"
"""Why a complete trial has no deployable model (its export check failed); the trial's own
measurement stands."""
LATENCY_ATTR = "latency"
"""The deployable model's measured latency (``autoq latency``):
``{runtime, threads, batch, machine, median_s, spread_s, runs, float_median_s, speedup}``, the
float model at full resolution timed in the same run as the reference."""

FIDELITY_ATTR = "fidelity"
"""How long the trial's QAT ran, in a multi-fidelity search (``search.fidelity``):
:data:`FULL_FIDELITY` (the whole QAT; also every trial of a search without it, which records
no such attribute) or :data:`SCREENED` (the screening prefix only: its error is the screened
one, and it is kept off the Pareto set)."""
FULL_FIDELITY, SCREENED = "full", "screened"
SCREENED_MSE_ATTR = "screened_mse"
"""The error at the screening step of the QAT, in a multi-fidelity search (on every trial that
ran QAT: a full-length trial measured it on the way)."""
QAT_STEPS_ATTR = "qat_steps"
"""The QAT optimiser steps the trial ran."""
WARM_START_ATTR = "warm_start"
"""The number of the trial whose QAT-trained weights this trial started from
(``search.warm_start``); absent when it started from the float model."""


@dataclass(frozen=True)
class Sensitivities:
    """What the calibration-only sensitivity pass measured (:data:`SENSITIVITY_ATTR`).

    Attributes:
        bits: the bitwidth each group was quantized at, alone.
        scale: the scale of the float model measured (the space's largest).
        rank: its factorization rank (``None`` unless the search varies it).
        float_error: the float model's validation error there.
        weight: per group, the relative error increase ``error / float_error − 1`` with the
            group's weights alone at ``bits`` (calibrated, no QAT); may be ≤ 0 within noise.
        act: the same with the group's activations alone at ``bits``.
        seconds: how long the pass took.
    """

    bits: int
    scale: float
    rank: Rank | None
    float_error: float
    weight: dict[str, float]
    act: dict[str, float]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"bits": self.bits, "scale": self.scale, "rank": self.rank,
                "float_error": self.float_error, "weight": dict(self.weight),
                "act": dict(self.act), "seconds": self.seconds}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Sensitivities:
        return cls(bits=int(payload["bits"]), scale=float(payload["scale"]),
                   rank=payload.get("rank"), float_error=float(payload["float_error"]),
                   weight={g: float(v) for g, v in payload["weight"].items()},
                   act={g: float(v) for g, v in payload["act"].items()},
                   seconds=float(payload["seconds"]))


def recorded_sensitivities(study_attrs: Mapping[str, Any]) -> Sensitivities | None:
    """The sensitivity pass recorded in a study's user attributes, or ``None``."""
    payload = study_attrs.get(SENSITIVITY_ATTR)
    return None if payload is None else Sensitivities.from_json(payload)


MAX_MSE_CONSTRAINT, MAX_COST_CONSTRAINT = "max_mse", "max_cost"
"""Constraint keys: the value is ``mse − max_mse`` (``cost − max_cost``), feasible when ≤ 0."""
FIDELITY_CONSTRAINT = "full_fidelity"
"""Constraint key of a multi-fidelity search: 0 for a trial trained to full length, 1 for a
screened one, so that Optuna (``best_trials``, its samplers, optuna-dashboard) and autoq's
results alike keep screened trials off the front."""


def mse_bound(max_mse: float | None, max_mse_ratio: float | None,
              float_reference: float | None) -> float | None:
    """A search's absolute error bound: ``max_mse``, or ``max_mse_ratio`` × ``float_reference``
    (the float model's error at full resolution, which trials record; ``None`` while it is not
    known, before the first)."""
    if max_mse_ratio is None:
        return max_mse
    return None if float_reference is None else max_mse_ratio * float_reference


Params = dict[str, Any]


def weight_param(group: str) -> str:
    """The sampler parameter of ``group``'s weight bitwidth (or float)."""
    return f"{_WEIGHT_PREFIX}{group}"


def act_param(group: str) -> str:
    """The sampler parameter of ``group``'s activation bitwidth."""
    return f"{_ACT_PREFIX}{group}"


def transform_param(group: str) -> str:
    """The sampler parameter of ``group``'s transform (``fft`` or ``dft``)."""
    return f"{_TRANSFORM_PREFIX}{group}"


def encode_params(scale: float, group_bits: Mapping[str, Bits], rank: Rank | None = None,
                  group_transforms: Mapping[str, Transform] | None = None) -> Params:
    """Sampler parameters of a configuration given per group (and its rank and the transforms
    of its groups, if any)."""
    params: Params = {SCALE_PARAM: scale}
    if rank is not None:
        params[RANK_PARAM] = rank
    for group, bits in group_bits.items():
        if bits is None:
            params[weight_param(group)] = FLOAT
        else:
            params[weight_param(group)], params[act_param(group)] = bits
    for group, transform in (group_transforms or {}).items():
        params[transform_param(group)] = transform
    return params


def decode_transforms(params: Mapping[str, Any], groups: Sequence[str]) -> dict[str, Transform]:
    """``{group: transform}`` of the groups whose transform the parameters hold."""
    return {group: params[transform_param(group)] for group in groups
            if transform_param(group) in params}


def decode_params(params: Mapping[str, Any], groups: Sequence[str]
                  ) -> tuple[float, dict[str, Bits], Rank | None]:
    """``(scale, {group: bits}, rank)`` of sampler parameters (rank ``None`` when they hold
    none); a KeyError names a missing one."""
    group_bits: dict[str, Bits] = {}
    for group in groups:
        weight = params[weight_param(group)]
        group_bits[group] = None if weight == FLOAT else (weight, params[act_param(group)])
    return params[SCALE_PARAM], group_bits, params.get(RANK_PARAM)


def recorded_params(trial: FrozenTrial, groups: Mapping[str, Sequence[str]]) -> Params | None:
    """A finished trial's configuration as sampler parameters, read from its recorded per-layer
    bits and transforms (so enqueued baseline trials, which suggest no bit parameters, count
    too); ``None`` when the trial recorded no configuration or one in other groups (another
    spec)."""
    bits = trial.user_attrs.get(BITS_ATTR)
    scale = trial.params.get(SCALE_PARAM)
    if not bits or scale is None:
        return None
    transforms = trial.user_attrs.get(TRANSFORMS_ATTR, {})
    group_bits: dict[str, Bits] = {}
    group_transforms: dict[str, Transform] = {}
    for group, layers in groups.items():
        chosen = {_as_bits(bits.get(layer, FLOAT)) for layer in layers}
        if len(chosen) != 1:
            return None
        group_bits[group] = chosen.pop()
        named = {transforms[layer] for layer in layers if layer in transforms}
        if len(named) > 1 or not named <= set(TRANSFORMS):
            return None
        if named:
            group_transforms[group] = named.pop()
    return encode_params(scale, group_bits, trial.params.get(RANK_PARAM), group_transforms)


def _as_bits(recorded: Any) -> Bits:
    return None if recorded == FLOAT else (int(recorded[0]), int(recorded[1]))


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether every constraint of ``trial`` is met (Optuna's rule: each value ≤ 0)."""
    return all(value <= 0 for value in trial.constraints.values())


def is_screened(trial: FrozenTrial) -> bool:
    """Whether ``trial`` stopped at the screening prefix of its QAT (see
    :data:`FIDELITY_ATTR`)."""
    return trial.user_attrs.get(FIDELITY_ATTR) == SCREENED


def counts_towards_budget(trial: FrozenTrial) -> bool:
    """Complete trials count, and trials our objective failed (they recorded an error). A trial
    failed because its process died (stale heartbeat) does not: it is retried."""
    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.FAIL and ERROR_ATTR in trial.user_attrs)


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the CLI and the REST API show it.

    Attributes:
        number: Optuna's trial number within the study.
        state: ``COMPLETE``, ``FAIL``, ``RUNNING``, ...
        mse: validation error (``None`` unless complete).
        cost: the cost objective's value: bit-ops, or in a latency search the measured latency
            relative to the float full-resolution model (``None`` unless complete).
        scale: spatial scale factor.
        bits: ``{layer: [w, a] or "float"}``.
        baseline: the paper's uniform regime this trial reproduces (``w4a8``, ...), or ``None``.
        feasible: every constraint of the search is met (always, without constraints).
        error: why the trial failed, if it did.
        details: timings, float MSE, artifact path, ...
        rank: factorization rank (``None`` unless the search varies it).
    """

    number: int
    state: str
    mse: float | None
    cost: float | None
    scale: float | None
    bits: dict[str, Any]
    baseline: str | None = None
    feasible: bool = True
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    rank: Rank | None = None

    @property
    def screened(self) -> bool:
        """The trial stopped at the screening prefix of its QAT (a multi-fidelity search): its
        error is not a full-length one, and it is never on the Pareto set."""
        return self.details.get(FIDELITY_ATTR) == SCREENED

    @property
    def complete(self) -> bool:
        return self.state == TrialState.COMPLETE.name and self.mse is not None \
            and self.cost is not None

    def to_json(self) -> dict[str, Any]:
        """The API's trial shape: ``{number, state, mse, cost, bitops, scale, rank, bits,
        baseline, regime, feasible, error, deployed_error, latency}``."""
        return {"number": self.number, "state": self.state, "mse": self.mse, "cost": self.cost,
                "bitops": self.details.get(BITOPS_ATTR), "scale": self.scale,
                "rank": self.rank, "bits": self.bits,
                "baseline": self.baseline is not None, "regime": self.baseline,
                "feasible": self.feasible, "error": self.error,
                "deployed_error": self.details.get(DEPLOYED_ERROR_ATTR),
                "latency": self.details.get(LATENCY_ATTR)}


@dataclass(frozen=True)
class CompletePoint:
    """A complete trial with its objective values, typed as present: what the Pareto set, the
    hypervolume and the plots are computed from.

    Attributes:
        point: the trial.
        mse: its validation error (``point.mse``).
        cost: its bit-op cost (``point.cost``).
    """

    point: TrialPoint
    mse: float
    cost: float


def complete_points(points: Iterable[TrialPoint]) -> list[CompletePoint]:
    """The complete trials of ``points`` (those whose :attr:`TrialPoint.complete` holds), in
    order, with their values."""
    return [CompletePoint(p, p.mse, p.cost) for p in points
            if p.state == TrialState.COMPLETE.name and p.mse is not None and p.cost is not None]


def trial_point(trial: FrozenTrial) -> TrialPoint:
    """A study's frozen trial as a :class:`TrialPoint`."""
    values = trial.values if trial.state == TrialState.COMPLETE else None
    attrs = trial.user_attrs
    mse, cost = (None, None) if values is None else (float(values[0]), float(values[1]))
    return TrialPoint(
        number=trial.number,
        state=trial.state.name,
        mse=mse,
        cost=cost,
        scale=trial.params.get(SCALE_PARAM),
        rank=trial.params.get(RANK_PARAM),
        bits=attrs.get(BITS_ATTR, {}),
        baseline=attrs.get(BASELINE_ATTR),
        feasible=is_feasible(trial),
        error=attrs.get(ERROR_ATTR, attrs.get(ORPHAN_ATTR)),
        details={k: v for k, v in attrs.items()
                 if k not in (BITS_ATTR, BASELINE_ATTR, ERROR_ATTR)},
    )
