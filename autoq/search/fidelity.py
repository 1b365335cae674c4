"""Multi-fidelity QAT (``search.fidelity``): which screened configurations train to full length,
and what a screened error says about the full-length one.

A trial of such a search first runs a prefix of its QAT and is scored there (its screened
error). Full-length trials score that prefix on the way, so each one measures how much the rest
of the QAT lowers the error; the geometric mean of those ratios (:func:`screening_ratio`) turns
a screened error into a prediction of the full-length one (:func:`estimated_full_error`). The
trial goes on to full length when that prediction could reach the front (:func:`promotes`), and
autoq's sampler reads screened trials through the same correction.

Pure functions on Optuna's frozen trials and plain numbers; importing this module loads Optuna
only: no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from optuna.trial import FrozenTrial, TrialState

from autoq.search.records import SCREENED_MSE_ATTR, is_screened


def screening_ratio(trials: Iterable[FrozenTrial]) -> float:
    """The factor from a screened error to the full-length one: the geometric mean, over the
    complete full-length trials that recorded their screened error, of full / screened (1 when
    there are none yet)."""
    logs = []
    for trial in trials:
        screened = trial.user_attrs.get(SCREENED_MSE_ATTR)
        if (trial.state != TrialState.COMPLETE or is_screened(trial) or screened is None
                or trial.values is None):
            continue
        full = trial.values[0]
        if math.isfinite(full) and full > 0 and math.isfinite(screened) and screened > 0:
            logs.append(math.log(full / screened))
    return math.exp(sum(logs) / len(logs)) if logs else 1.0


def estimated_full_error(trial: FrozenTrial, ratio: float) -> float:
    """A complete trial's error at full length: as recorded for a full-length trial, its
    screened error × ``ratio`` (:func:`screening_ratio`) for a screened one."""
    if trial.values is None:
        raise ValueError(f"trial {trial.number} has no values (state {trial.state.name})")
    return trial.values[0] * ratio if is_screened(trial) else trial.values[0]


def promotes(predicted: float, cost: float, front: Sequence[tuple[float, float]], *,
             margin: float, useful_factor: float, max_mse: float | None = None,
             max_cost: float | None = None) -> bool:
    """Whether a screened configuration trains on to full length.

    Args:
        predicted: its predicted full-length error (:func:`estimated_full_error`'s rule).
        cost: its exact cost.
        front: ``(cost, error)`` of the full-length, feasible trials on the front so far.
        margin: the prediction may be ``1 + margin`` times too high: the configuration is
            judged by ``predicted / (1 + margin)``.
        useful_factor: no promotion above this multiple of the best error on the front (a
            point there adds no hypervolume).
        max_mse: the search's error bound, if any.
        max_cost: the search's cost bound, if any.

    Returns:
        False when the optimistic error is no better than that of a front trial costing no
        more, above ``useful_factor`` × the front's best error or above ``max_mse``, or the
        cost is above ``max_cost``; True otherwise (always, with an empty front and no bounds).
    """
    if margin < 0 or useful_factor <= 0:
        raise ValueError(f"margin must be ≥ 0 and useful_factor > 0, got {margin}, "
                         f"{useful_factor}")
    optimistic = predicted / (1.0 + margin)
    if max_cost is not None and cost > max_cost:
        return False
    if max_mse is not None and optimistic > max_mse:
        return False
    if front and optimistic > useful_factor * min(error for _, error in front):
        return False
    return not any(front_cost <= cost and error <= optimistic for front_cost, error in front)
