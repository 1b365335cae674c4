"""The search: spaces, the trial objective, runners, Pareto set and operating point."""

from autoq.search.results import (
    TrialPoint,
    best_mse_point,
    default_reference,
    hypervolume,
    operating_point,
    pareto_front,
    study_points,
)
from autoq.search.sampler import CostAwareSampler
from autoq.search.spec import SearchSpec, load_spec, parse_spec
from autoq.search.study import (
    create_or_resume,
    enqueue_baseline_grid,
    finished_trials,
    load_study,
    open_storage,
    run_local,
    run_search,
    storage_url,
)
from autoq.search.trial import SearchSpace, TrialResult, TrialRunner

__all__ = [
    "CostAwareSampler",
    "SearchSpace",
    "SearchSpec",
    "TrialPoint",
    "TrialResult",
    "TrialRunner",
    "best_mse_point",
    "create_or_resume",
    "default_reference",
    "enqueue_baseline_grid",
    "finished_trials",
    "hypervolume",
    "load_spec",
    "load_study",
    "open_storage",
    "operating_point",
    "pareto_front",
    "parse_spec",
    "run_local",
    "run_search",
    "storage_url",
    "study_points",
]
