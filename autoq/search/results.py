"""Reading a search's results: trial points, the Pareto set, hypervolume, the operating point.

Optuna's storage is the one source of truth: every figure here is computed from the study's
trials (values, constraints and user attributes), never from a second copy. Only feasible trials
(every constraint of the search met) are candidates for the Pareto set and the operating point,
as for Optuna's ``study.best_trials``. In a multi-fidelity search a screened trial (its QAT
stopped at the screening step) is complete but infeasible (:data:`~autoq.search.records.
FIDELITY_CONSTRAINT`): listed with the trials, never on the front, in the hypervolume or the
operating point, nor the most accurate trial shown when none qualifies. Importing this module
loads Optuna only: no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import optuna

from autoq.errors import SpecError
from autoq.search.records import (
    FLOAT_REFERENCE_ATTR,
    TrialPoint,
    complete_points,
    counts_towards_budget,
    trial_point,
)


def study_points(study: optuna.Study) -> list[TrialPoint]:
    """Every trial of ``study``, in trial order."""
    return [trial_point(t) for t in study.get_trials(deepcopy=False)]


def pareto_front(points: Iterable[TrialPoint]) -> list[TrialPoint]:
    """The complete, feasible trials no other such trial dominates, sorted by cost (then MSE).

    ``a`` dominates ``b`` when it is no worse in both MSE and cost and better in one. Of several
    trials with identical values the first (lowest number) is kept.
    """
    candidates = sorted((c for c in complete_points(points) if c.point.feasible),
                        key=lambda c: (c.cost, c.mse, c.point.number))
    front: list[TrialPoint] = []
    best_mse = math.inf
    for candidate in candidates:
        if candidate.mse < best_mse:
            front.append(candidate.point)
            best_mse = candidate.mse
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
    for point in complete_points(pareto_front(points)):
        if point.cost >= ref_cost or point.mse >= ref_mse:
            continue
        mse = transform(point.mse)
        area += (transform(ref_cost) - transform(point.cost)) * (previous_mse - mse)
        previous_mse = mse
    return area


def default_reference(points: Sequence[TrialPoint]) -> tuple[float, float]:
    """``1.1 ×`` the largest cost and MSE among complete trials: a reference every complete
    trial improves on. Compare hypervolumes across searches only with one fixed reference."""
    complete = complete_points(points)
    if not complete:
        raise SpecError("no complete trials yet: hypervolume needs at least one")
    return (1.1 * max(p.cost for p in complete), 1.1 * max(p.mse for p in complete))


def operating_point(points: Iterable[TrialPoint], max_mse: float) -> TrialPoint | None:
    """The cheapest complete, feasible trial whose MSE is within ``max_mse`` (ties: lower MSE),
    or None."""
    if not max_mse > 0:
        raise SpecError(f"max_mse must be positive, got {max_mse!r}")
    qualifying = [c for c in complete_points(points) if c.point.feasible and c.mse <= max_mse]
    chosen = min(qualifying, key=lambda c: (c.cost, c.mse, c.point.number), default=None)
    return None if chosen is None else chosen.point


def float_reference(points: Iterable[TrialPoint]) -> float | None:
    """The float model's error at full resolution (the space's largest scale), as complete trials
    record it (``None`` before any trial completed)."""
    recorded = [c.point.details[FLOAT_REFERENCE_ATTR] for c in complete_points(points)
                if FLOAT_REFERENCE_ATTR in c.point.details]
    return recorded[-1] if recorded else None


def error_bound(points: Iterable[TrialPoint], *, max_mse: float | None = None,
                max_ratio: float | None = None) -> float:
    """The absolute error bound of a request: ``max_mse`` as given, or ``max_ratio`` × the float
    model's error at full resolution (:func:`float_reference`), as AIMET's
    ``allowed_accuracy_drop`` is relative to the float model."""
    if (max_mse is None) == (max_ratio is None):
        raise SpecError("give exactly one of max_mse (an absolute bound) and max_ratio (relative "
                        "to the float model's error)")
    if max_mse is not None:
        return max_mse
    assert max_ratio is not None  # exactly one of the two is given
    if not max_ratio > 0:
        raise SpecError(f"max_ratio must be positive, got {max_ratio!r}")
    reference = float_reference(points)
    if reference is None:
        raise SpecError("max_ratio needs the float model's error, which complete trials record; "
                        "this search has none yet")
    return max_ratio * reference


def best_mse_point(points: Iterable[TrialPoint]) -> TrialPoint | None:
    """The complete trial with the lowest MSE, feasible or not, of those trained to full length
    (what to show when no trial meets a bound)."""
    best = min((c for c in complete_points(points) if not c.point.screened),
               key=lambda c: (c.mse, c.cost), default=None)
    return None if best is None else best.point


def finished_trials(study: optuna.Study) -> int:
    """Trials that count towards the budget (see
    :func:`~autoq.search.records.counts_towards_budget`)."""
    return sum(counts_towards_budget(t) for t in study.get_trials(deepcopy=False))
