"""Error metrics a search can minimise, on the validation set at the data resolution.

:data:`METRICS` is the one list of the named ones (a spec's ``metric`` names one of its keys);
the Python API also takes a callable ``(prediction, target) -> float`` over the whole validation
set (:func:`from_callable`). Importing this module does not import torch: the metrics import
what they need when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from autoq.errors import SpecError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from autoq.train.problem import Problem

Metric = Callable[["nn.Module", "Problem"], float]
"""A metric: the validation error of a solver on a problem (lower is better). The solver is a
module from raw inputs to raw outputs at the data resolution: a
:class:`~autoq.train.ScaledSolver`, or a deployed model (:class:`autoq.deploy.OnnxSolver`)."""


def mse(solver: nn.Module, problem: Problem) -> float:
    """One-step mean squared error over every validation window (the paper's metric)."""
    from autoq.train.loop import evaluate

    return evaluate(solver, problem.val_windows)


def relative_l2(solver: nn.Module, problem: Problem) -> float:
    """Mean over validation windows of ``‖prediction − target‖₂ / ‖target‖₂`` (one step), the
    error neural-operator papers report."""
    return _over_windows(solver, problem, _relative_l2_sum)


def rollout_mse(solver: nn.Module, problem: Problem) -> float:
    """Mean squared error of autoregressive rollouts over every validation trajectory from its
    first window; time-dependent problems and autoq's solvers only."""
    from autoq.train.loop import evaluate_rollout
    from autoq.train.solver import ScaledSolver

    if not isinstance(solver, ScaledSolver):
        raise SpecError(f"metric: rollout_mse rolls an autoq solver forward; a "
                        f"{type(solver).__name__} only steps once: use mse or relative_l2")
    if problem.data.steady:
        raise SpecError("metric: rollout_mse needs a time-dependent problem; this one is steady "
                        "(coefficient → solution): use mse or relative_l2")
    return evaluate_rollout(solver, problem.data, problem.split.val)


METRICS: dict[str, Metric] = {
    "mse": mse,
    "relative_l2": relative_l2,
    "rollout_mse": rollout_mse,
}
"""Every named metric, by the name a spec's ``metric`` gives."""


def named_metric(name: str) -> Metric:
    """The metric a spec names; a custom one (``custom:<name>``) lives only in the Python
    process that passed it, so it cannot be looked up here."""
    if name in METRICS:
        return METRICS[name]
    raise SpecError(f"metric {name!r} is a Python callable: pass it again as autoq.search(..., "
                    f"metric=<callable>) to run this search; known by name: {sorted(METRICS)}")


def from_callable(function: Callable[[torch.Tensor, torch.Tensor], float]) -> Metric:
    """A metric from ``function(prediction, target)``, called once with the one-step predictions
    and targets of the whole validation set, ``(windows, channels, *space)`` each."""

    def metric(solver: nn.Module, problem: Problem) -> float:
        import torch

        predictions: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []

        def keep(prediction: torch.Tensor, target: torch.Tensor) -> None:
            predictions.append(prediction)
            targets.append(target)

        _predict(solver, problem, keep)
        value = function(torch.cat(predictions), torch.cat(targets))
        return float(value)

    metric.__name__ = getattr(function, "__name__", "custom")
    return metric


def _relative_l2_sum(prediction: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    error = (prediction - target).flatten(1).norm(dim=1)
    norm = target.flatten(1).norm(dim=1).clamp_min(1e-30)
    return float((error / norm).sum()), len(target)


def _over_windows(solver: nn.Module, problem: Problem,
                  per_batch: Callable[[torch.Tensor, torch.Tensor], tuple[float, int]]) -> float:
    total, count = 0.0, 0

    def add(prediction: torch.Tensor, target: torch.Tensor) -> None:
        nonlocal total, count
        value, n = per_batch(prediction, target)
        total, count = total + value, count + n

    _predict(solver, problem, add)
    return total / count


def _predict(solver: nn.Module, problem: Problem,
             consume: Callable[[torch.Tensor, torch.Tensor], object], *,
             batch_size: int = 64) -> None:
    """Feed each batch of one-step validation predictions and targets (on the CPU) to
    ``consume``."""
    import torch

    windows = problem.val_windows
    solver.eval()
    device = next(solver.parameters()).device
    with torch.no_grad():
        for batch in torch.arange(len(windows)).split(batch_size):
            inputs, targets = windows.batch(batch)
            consume(solver(inputs.to(device)).cpu(), targets)
