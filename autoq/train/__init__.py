"""Float training, QAT fine-tuning loops, evaluation and the float-model cache."""

from autoq.train.cache import FloatModel, FloatModelCache, default_cache_dir
from autoq.train.config import QATConfig, TrainConfig
from autoq.train.loop import FitResult, evaluate, evaluate_rollout, fit, mse, persistence_mse
from autoq.train.problem import Problem, file_digest, load_problem
from autoq.train.solver import ScaledSolver

__all__ = [
    "FitResult",
    "FloatModel",
    "FloatModelCache",
    "Problem",
    "QATConfig",
    "ScaledSolver",
    "TrainConfig",
    "default_cache_dir",
    "evaluate",
    "evaluate_rollout",
    "file_digest",
    "fit",
    "load_problem",
    "mse",
    "persistence_mse",
]
