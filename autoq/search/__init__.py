"""The search: spaces, the trial objective, samplers, executors, Pareto set and operating point.

Layers, each one job, dependencies pointing down the list (see ``docs/design.md``):

- :mod:`~autoq.search.records` — how a search is written into an Optuna study (no torch);
- :mod:`~autoq.search.results` — Pareto set, hypervolume, operating point (no torch);
- :mod:`~autoq.search.spec` — the validated search space file (no torch);
- :mod:`~autoq.search.storage` — open, create, resume studies; the stored spec (no torch);
- :mod:`~autoq.search.samplers` — the sampler registry and autoq's cost-aware sampler;
- :mod:`~autoq.search.space`, :mod:`~autoq.search.trial`, :mod:`~autoq.search.objective` — the
  configurations and their costs, one QAT trial, the Optuna objective;
- :mod:`~autoq.search.executors` — the executor registry, the shared set-up, local and Ray.

Names are imported on first use, so ``import autoq.search`` (and its light layers) does not
load torch. The package is also callable: ``autoq.search(space, ...)`` is
:func:`autoq.api.search`, the Python API's one entry point.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from autoq._lazy import lazy_exports

_SOURCES = {
    "SearchSpec": "autoq.search.spec",
    "load_spec": "autoq.search.spec",
    "parse_spec": "autoq.search.spec",
    "bundled_spaces": "autoq.search.spec",
    "TrialPoint": "autoq.search.records",
    "best_mse_point": "autoq.search.results",
    "default_reference": "autoq.search.results",
    "finished_trials": "autoq.search.results",
    "hypervolume": "autoq.search.results",
    "operating_point": "autoq.search.results",
    "pareto_front": "autoq.search.results",
    "study_points": "autoq.search.results",
    "create_or_resume": "autoq.search.storage",
    "load_study": "autoq.search.storage",
    "open_storage": "autoq.search.storage",
    "storage_url": "autoq.search.storage",
    "study_spec": "autoq.search.storage",
    "SAMPLERS": "autoq.search.samplers",
    "CostAwareSampler": "autoq.search.samplers",
    "EXECUTORS": "autoq.search.executors",
    "SearchRun": "autoq.search.executors.plan",
    "enqueue_baseline_grid": "autoq.search.executors.plan",
    "execute": "autoq.search.executors.plan",
    "prepare_run": "autoq.search.executors.plan",
    "run_search": "autoq.search.executors.plan",
    "SearchSpace": "autoq.search.space",
    "TrialResult": "autoq.search.trial",
    "TrialRunner": "autoq.search.trial",
}

__all__ = [
    "EXECUTORS",
    "SAMPLERS",
    "CostAwareSampler",
    "SearchRun",
    "SearchSpace",
    "SearchSpec",
    "TrialPoint",
    "TrialResult",
    "TrialRunner",
    "best_mse_point",
    "bundled_spaces",
    "create_or_resume",
    "default_reference",
    "enqueue_baseline_grid",
    "execute",
    "finished_trials",
    "hypervolume",
    "load_spec",
    "load_study",
    "open_storage",
    "operating_point",
    "pareto_front",
    "parse_spec",
    "prepare_run",
    "run_search",
    "storage_url",
    "study_points",
    "study_spec",
]

if TYPE_CHECKING:
    from autoq.search.executors import EXECUTORS
    from autoq.search.executors.plan import (
        SearchRun,
        enqueue_baseline_grid,
        execute,
        prepare_run,
        run_search,
    )
    from autoq.search.records import TrialPoint
    from autoq.search.results import (
        best_mse_point,
        default_reference,
        finished_trials,
        hypervolume,
        operating_point,
        pareto_front,
        study_points,
    )
    from autoq.search.samplers import SAMPLERS, CostAwareSampler
    from autoq.search.space import SearchSpace
    from autoq.search.spec import SearchSpec, bundled_spaces, load_spec, parse_spec
    from autoq.search.storage import (
        create_or_resume,
        load_study,
        open_storage,
        storage_url,
        study_spec,
    )
    from autoq.search.trial import TrialResult, TrialRunner


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)


class _CallableSearch(types.ModuleType):
    """``autoq.search`` the package, callable as ``autoq.search(space, ...)``: a submodule is
    always its package's attribute once imported, so a function of that name could not stay."""

    def __call__(self, space: Any, **options: Any) -> Any:
        from autoq.api import search

        return search(space, **options)


sys.modules[__name__].__class__ = _CallableSearch
