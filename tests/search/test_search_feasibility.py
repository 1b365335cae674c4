"""Constraints: only feasible trials make the Pareto set and the operating point, exactly as
Optuna's ``study.best_trials`` sees them; the constraints are stored the way Optuna reads them."""

from __future__ import annotations

import optuna
import pytest

from autoq.search import (
    best_mse_point,
    operating_point,
    pareto_front,
    study_points,
)
from autoq.search.records import MAX_COST_CONSTRAINT, MAX_MSE_CONSTRAINT

# (mse, cost): the cheapest trials break the error bound, the most accurate one the cost bound.
TRIALS = [(9e-3, 1e7), (5e-3, 2e7), (2e-3, 4e7), (1e-3, 8e7), (4e-4, 3e8), (8e-4, 5e8),
          (3e-3, 6e7), (6e-3, 9e7)]
MAX_MSE, MAX_COST = 4e-3, 1e8


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    mse, cost = TRIALS[trial.number]
    trial.set_constraint(MAX_MSE_CONSTRAINT, mse - MAX_MSE)
    trial.set_constraint(MAX_COST_CONSTRAINT, cost - MAX_COST)
    return mse, cost


@pytest.fixture(scope="module")
def constrained() -> optuna.Study:
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_objective, n_trials=len(TRIALS))
    return study


def _values(points: list) -> set[tuple[float, float]]:
    return {(p.mse, p.cost) for p in points}


def test_pareto_front_is_optunas_best_trials(constrained: optuna.Study) -> None:
    front = pareto_front(study_points(constrained))
    assert _values(front) == {tuple(t.values) for t in constrained.best_trials}
    # Unconstrained, the two cheap and the one accurate trial would be on it.
    assert _values(front) == {(2e-3, 4e7), (1e-3, 8e7)}


def test_infeasible_trials_are_marked(constrained: optuna.Study) -> None:
    feasible = {(p.mse, p.cost): p.feasible for p in study_points(constrained)}
    assert feasible == {(m, c): m <= MAX_MSE and c <= MAX_COST for m, c in TRIALS}
    assert all(p.to_json()["feasible"] == p.feasible for p in study_points(constrained))


def test_operating_point_skips_infeasible_trials(constrained: optuna.Study) -> None:
    points = study_points(constrained)
    assert operating_point(points, max_mse=1e-2).cost == 4e7
    # 4e-4 meets the bound but costs more than the search allows.
    assert operating_point(points, max_mse=5e-4) is None
    # What to show instead is the most accurate trial, feasible or not.
    assert best_mse_point(points).mse == 4e-4


def test_a_search_whose_trials_all_break_a_constraint_has_no_front() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])

    def over_budget(trial: optuna.Trial) -> tuple[float, float]:
        trial.set_constraint(MAX_COST_CONSTRAINT, 1.0)
        return 1e-3, 1e9

    study.optimize(over_budget, n_trials=2)
    assert study.best_trials == []
    assert pareto_front(study_points(study)) == []
    assert all(p.complete and not p.feasible for p in study_points(study))
