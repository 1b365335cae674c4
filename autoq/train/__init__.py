"""Float training, QAT fine-tuning loops, evaluation and the float-model cache.

Names are imported on first use (PEP 562), so the recipes (:mod:`autoq.train.config`) load
without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoq._lazy import lazy_exports

if TYPE_CHECKING:
    from autoq.train.cache import FloatModel, FloatModelCache, default_cache_dir
    from autoq.train.config import QATConfig, TrainConfig
    from autoq.train.loop import (
        FitResult,
        TrainingRun,
        evaluate,
        evaluate_rollout,
        fit,
        mse,
        persistence_mse,
    )
    from autoq.train.problem import Problem, file_digest, load_problem, problem_from_data
    from autoq.train.solver import ScaledSolver

__all__ = [
    "FitResult",
    "FloatModel",
    "FloatModelCache",
    "Problem",
    "QATConfig",
    "ScaledSolver",
    "TrainConfig",
    "TrainingRun",
    "default_cache_dir",
    "evaluate",
    "evaluate_rollout",
    "file_digest",
    "fit",
    "load_problem",
    "mse",
    "persistence_mse",
    "problem_from_data",
]

_SOURCES = {
    "FitResult": "loop",
    "FloatModel": "cache",
    "FloatModelCache": "cache",
    "Problem": "problem",
    "QATConfig": "config",
    "ScaledSolver": "solver",
    "TrainConfig": "config",
    "TrainingRun": "loop",
    "default_cache_dir": "cache",
    "evaluate": "loop",
    "evaluate_rollout": "loop",
    "file_digest": "problem",
    "fit": "loop",
    "load_problem": "problem",
    "problem_from_data": "problem",
    "mse": "loop",
    "persistence_mse": "loop",
}
"""Each public name → the submodule defining it."""


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
