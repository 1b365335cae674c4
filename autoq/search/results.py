"""Reading a search's results: trial points, the Pareto set, hypervolume, the operating point.

Optuna's storage is the one source of truth: every figure here is computed from the study's
trials (values and user attributes), never from a second copy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autoq.errors import SpecError


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the CLI and the REST API show it.

    Attributes:
        number: Optuna's trial number within the study.
        state: ``COMPLETE``, ``FAIL``, ``RUNNING``, ...
        mse: validation MSE (``None`` unless complete).
        cost: bit-op cost (``None`` unless complete).
        scale: spatial scale factor.
        bits: ``{layer: [w, a] or "float"}``.
        baseline: the paper's uniform regime this trial reproduces (``w4a8``, ...), or ``None``.
        details: timings, float MSE, artifact path, error, ...
    """

    number: int
    state: str
    mse: float | None
    cost: float | None
    scale: float | None
    bits: dict[str, Any]
    baseline: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE" and self.mse is not None and self.cost is not None

    def to_json(self) -> dict[str, Any]:
        """The API's trial shape: ``{number, state, mse, cost, scale, bits, baseline}``."""
        return {"number": self.number, "state": self.state, "mse": self.mse, "cost": self.cost,
                "scale": self.scale, "bits": self.bits, "baseline": self.baseline is not None,
                "regime": self.baseline}


def trial_point(trial: FrozenTrial) -> TrialPoint:
    """A study's frozen trial as a :class:`TrialPoint`."""
    values = trial.values if trial.state == TrialState.COMPLETE else None
    attrs = trial.user_attrs
    details = {k: v for k, v in attrs.items() if k not in ("bits", "baseline")}
    return TrialPoint(
        number=trial.number,
        state=trial.state.name,
        mse=None if values is None else float(values[0]),
        cost=None if values is None else float(values[1]),
        scale=trial.params.get("scale"),
        bits=attrs.get("bits", {}),
        baseline=attrs.get("baseline"),
        details=details,
    )


def study_points(study: optuna.Study) -> list[TrialPoint]:
    """Every trial of ``study``, in trial order."""
    return [trial_point(t) for t in study.get_trials(deepcopy=False)]


def pareto_front(points: Iterable[TrialPoint]) -> list[TrialPoint]:
    """The complete trials no other complete trial dominates, sorted by cost (then MSE).

    ``a`` dominates ``b`` when it is no worse in both MSE and cost and better in one. Of several
    trials with identical values the first (lowest number) is kept.
    """
    candidates = sorted((p for p in points if p.complete),
                        key=lambda p: (p.cost, p.mse, p.number))
    front: list[TrialPoint] = []
    best_mse = math.inf
    for point in candidates:
        if point.mse < best_mse:
            front.append(point)
            best_mse = point.mse
    return front


def hypervolume(
    points: Iterable[TrialPoint], reference: tuple[float, float], *, log: bool = True
) -> float:
    """Area dominated by the points and bounded by ``reference = (cost, mse)``.

    With ``log`` (default) the area is measured in (log10 cost, log10 MSE), the scales the
    trade-off is read on; points beyond the reference in either objective add nothing.
    """
    ref_cost, ref_mse = reference
    if ref_cost <= 0 or ref_mse <= 0:
        raise SpecError(f"hypervolume reference must be positive, got {reference}")
    transform = math.log10 if log else float
    area, previous_mse = 0.0, transform(ref_mse)
    for point in pareto_front(points):
        if point.cost >= ref_cost or point.mse >= ref_mse:
            continue
        mse = transform(point.mse)
        area += (transform(ref_cost) - transform(point.cost)) * (previous_mse - mse)
        previous_mse = mse
    return area


def default_reference(points: Sequence[TrialPoint]) -> tuple[float, float]:
    """``1.1 ×`` the largest cost and MSE among complete trials: a reference every complete
    trial improves on. Compare hypervolumes across searches only with one fixed reference."""
    complete = [p for p in points if p.complete]
    if not complete:
        raise SpecError("no complete trials yet: hypervolume needs at least one")
    return (1.1 * max(p.cost for p in complete), 1.1 * max(p.mse for p in complete))


def operating_point(points: Iterable[TrialPoint], max_mse: float) -> TrialPoint | None:
    """The cheapest complete trial whose MSE is within ``max_mse`` (ties: lower MSE), or None."""
    if not max_mse > 0:
        raise SpecError(f"max_mse must be positive, got {max_mse!r}")
    qualifying = [p for p in points if p.complete and p.mse <= max_mse]
    return min(qualifying, key=lambda p: (p.cost, p.mse, p.number), default=None)


def best_mse_point(points: Iterable[TrialPoint]) -> TrialPoint | None:
    """The complete trial with the lowest MSE (what to show when no trial meets a bound)."""
    return min((p for p in points if p.complete), key=lambda p: (p.mse, p.cost), default=None)
