"""Float training, QAT fine-tuning loops, evaluation and the float-model cache.

Names are imported on first use (PEP 562), so the recipes (:mod:`autoq.train.config`) load
without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoq.train.cache import FloatModel, FloatModelCache, default_cache_dir
    from autoq.train.config import QATConfig, TrainConfig
    from autoq.train.loop import (
        FitResult,
        evaluate,
        evaluate_rollout,
        fit,
        mse,
        persistence_mse,
    )
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

_SOURCES = {
    "FitResult": "loop",
    "FloatModel": "cache",
    "FloatModelCache": "cache",
    "Problem": "problem",
    "QATConfig": "config",
    "ScaledSolver": "solver",
    "TrainConfig": "config",
    "default_cache_dir": "cache",
    "evaluate": "loop",
    "evaluate_rollout": "loop",
    "file_digest": "problem",
    "fit": "loop",
    "load_problem": "problem",
    "mse": "loop",
    "persistence_mse": "loop",
}
"""Each public name → the submodule defining it."""


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
