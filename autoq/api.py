"""The Python API: a search from a script or a notebook, on the same engine as the CLI and the
service.

::

    import autoq

    result = autoq.search("my_space.yaml", model=my_factory_or_module, dataset=my_dataset,
                          metric="mse", trials=40, storage="sqlite:///autoq.db")
    result.pareto()                 # feasible non-dominated trials, sorted by cost
    result.pick(max_ratio=1.1)      # cheapest within 1.1 × the float model's error
    result.export(trial, "out/")    # the trial's exported quantized network

``autoq.search`` is :func:`search`; :func:`load` opens a finished or running search by name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoq.errors import SpecError
from autoq.search.records import ARTIFACT_ATTR, TrialPoint
from autoq.search.results import (
    best_mse_point,
    error_bound,
    float_reference,
    operating_point,
    pareto_front,
    study_points,
)
from autoq.search.spec import CUSTOM_METRIC_PREFIX, SearchSpec, load_spec, parse_spec
from autoq.search.storage import load_study, study_spec

if TYPE_CHECKING:
    import optuna
    import torch

    from autoq.data import PDEData
    from autoq.models.config import ModelConfig
    from autoq.search.setup import Geometry
    from autoq.train.problem import Problem

@dataclass(frozen=True)
class SearchResult:
    """A search and what it found, read from its study (the database is the one record).

    Attributes:
        study: the Optuna study (``study.best_trials`` is the feasible Pareto set too).
        spec: the search's spec.
    """

    study: optuna.Study
    spec: SearchSpec

    @property
    def name(self) -> str:
        return self.study.study_name

    def trials(self) -> list[TrialPoint]:
        """Every trial, in trial order: state, error, cost, scale, bits, error message."""
        return study_points(self.study)

    def pareto(self) -> list[TrialPoint]:
        """The feasible non-dominated trials, sorted by cost."""
        return pareto_front(self.trials())

    def float_error(self) -> float | None:
        """The float model's error at full resolution, in the search's metric."""
        return float_reference(self.trials())

    def pick(self, *, max_error: float | None = None, max_ratio: float | None = None
             ) -> TrialPoint | None:
        """The cheapest feasible trial within ``max_error``, or within ``max_ratio`` × the float
        model's error at full resolution (give one); ``None`` when no trial qualifies (then
        :meth:`best` is the closest)."""
        points = self.trials()
        return operating_point(points, error_bound(points, max_mse=max_error,
                                                   max_ratio=max_ratio))

    def best(self) -> TrialPoint | None:
        """The most accurate complete trial, feasible or not."""
        return best_mse_point(self.trials())

    def export(self, trial: TrialPoint | int, out_dir: str | Path) -> Path:
        """Copy the trial's artifact folder to ``out_dir``: its quantized network (manifest,
        weights) and, when the network has an ONNX form, ``deploy/``, the model a user runs
        (``model.onnx`` from raw input to raw output, encodings, manifest; see
        :mod:`autoq.deploy`). Returns the folder."""
        number = trial if isinstance(trial, int) else trial.number
        point = next((p for p in self.trials() if p.number == number), None)
        if point is None:
            raise SpecError(f"search {self.name!r} has no trial {number}")
        artifact = point.details.get(ARTIFACT_ATTR)
        if artifact is None or not Path(artifact).is_dir():
            raise SpecError(f"trial {number} of {self.name!r} has no exported network (float "
                            f"trials have none; searches run with artifact_dir=None keep none)")
        target = Path(out_dir)
        shutil.copytree(artifact, target, dirs_exist_ok=True)
        return target

    def plot(self, path: str | Path) -> Path:
        """Cost vs error on log-log axes, the Pareto front marked, written as PNG."""
        from autoq.search.report import plot_front

        points = self.trials()
        return plot_front(points, pareto_front(points), path, title=f"{self.name}: cost vs error")


def search(
    space: str | Path | Mapping[str, Any] | SearchSpec,
    *,
    model: Any = None,
    dataset: PDEData | None = None,
    metric: str | Callable[[torch.Tensor, torch.Tensor], float] | None = None,
    trials: int | None = None,
    storage: str | None = None,
    name: str | None = None,
    executor: str | None = None,
    baseline_grid: bool = False,
    artifact_dir: str | Path | None = None,
) -> SearchResult:
    """Run (or resume) a search and return what it found.

    Args:
        space: a search space: a YAML file, the name of a bundled space, a mapping, or a
            :class:`~autoq.search.spec.SearchSpec`.
        model: your model instead of the space's: an ``nn.Module`` instance (its weights are
            the float model at full resolution), a factory callable (a class or a top-level
            function, trained from scratch), or a ``model:`` mapping/config. It maps ``(batch,
            input_steps·fields, *space)`` to ``(batch, target_steps·fields, *space)`` in
            physical units.
        dataset: your data instead of the space's file: a :class:`~autoq.data.PDEData` (see
            :func:`autoq.data.from_arrays`); the space's ``data`` block still sets the window and
            split. Runs in this process (executor ``local``).
        metric: ``"mse"``, ``"relative_l2"``, ``"rollout_mse"``, or a callable
            ``(prediction, target) -> float`` over the validation set (lower is better).
        trials: the trial budget (default: the space's).
        storage: SQLAlchemy URL (default: the ``storage`` setting, ``sqlite:///autoq.db``).
        name: the search's name in the storage (default: the space's).
        executor: a registered executor (default: the space's).
        baseline_grid: also run the paper's uniform regimes at every scale.
        artifact_dir: where trials export their networks (default: the ``artifact_dir``
            setting).

    Returns:
        The search's :class:`SearchResult`.
    """
    from autoq.cost import REGIMES
    from autoq.search.executors.local import LocalExecutor
    from autoq.search.executors.plan import execute, prepare_run
    from autoq.search.space import SearchSpace
    from autoq.search.trial import TrialRunner
    from autoq.settings import get_settings
    from autoq.train.metrics import from_callable

    updates: dict[str, Any] = {}
    if model is not None:
        updates["model"] = _model_config(model).model_dump(mode="json")
    metric_function = None
    if callable(metric):
        metric_function = from_callable(metric)
        updates["metric"] = f"{CUSTOM_METRIC_PREFIX}{metric_function.__name__}"
    elif metric is not None:
        updates["metric"] = metric
    spec = _as_spec(space, updates)
    settings = get_settings()
    artifacts = Path(artifact_dir) if artifact_dir is not None else settings.artifact_dir
    run_here = dataset is not None or metric_function is not None
    runner = space_of_run = None
    if run_here:
        if (executor or spec.search.executor) != "local":
            raise SpecError("an in-memory dataset or a metric callable lives in this Python "
                            "process: run it with executor 'local'")
        problem = _problem(spec, dataset) if dataset is not None else None
        space_of_run = SearchSpace(spec, shapes=None if problem is None else _shapes(problem))
        runner = TrialRunner(spec, artifact_dir=artifacts.resolve(), progress=True,
                             problem=problem, metric=metric_function, space=space_of_run)
    run = prepare_run(spec, name=name, storage=storage, trials=trials, space=space_of_run,
                      baseline_regimes=tuple(REGIMES) if baseline_grid else ())
    execute(run, executor=LocalExecutor(runner=runner) if runner is not None else executor,
            artifact_dir=artifacts.resolve())
    return SearchResult(study=run.study, spec=spec)


def load(name: str, *, storage: str | None = None) -> SearchResult:
    """An existing search by name (finished or still running elsewhere)."""
    study = load_study(name, storage=storage)
    return SearchResult(study=study, spec=study_spec(study))


def _as_spec(space: str | Path | Mapping[str, Any] | SearchSpec, updates: Mapping[str, Any]
             ) -> SearchSpec:
    """The spec of ``space`` with the top-level ``updates`` (a mapping may leave out what the
    updates give, e.g. ``model`` when the caller passes one)."""
    if isinstance(space, Mapping):
        payload = dict(space)
    else:
        spec = space if isinstance(space, SearchSpec) else load_spec(space)
        if not updates:
            return spec
        payload = spec.model_dump(mode="json")
    return parse_spec({**payload, **updates}, source="autoq.search")


def _model_config(model: Any) -> ModelConfig:
    """The ``model:`` config of what the caller handed over."""
    from torch import nn

    from autoq.models.config import ArchConfig, FactoryConfig
    from autoq.models.factory import factory_config_of, register_module
    from autoq.models.registry import parse_model_config
    from autoq.settings import get_settings

    if isinstance(model, ArchConfig | FactoryConfig):
        return model
    if isinstance(model, Mapping):
        return parse_model_config(model)
    if isinstance(model, nn.Module):
        return register_module(model, folder=get_settings().cache_dir / "modules")
    if callable(model):
        return factory_config_of(model)
    raise SpecError(f"model: expected an nn.Module, a factory callable or a model config, got "
                    f"{type(model).__name__}")


def _problem(spec: SearchSpec, dataset: PDEData) -> Problem:
    from autoq.train.problem import problem_from_data

    return problem_from_data(dataset, input_steps=spec.data.input_steps,
                             target_steps=spec.data.target_steps, split_seed=spec.data.split_seed)


def _shapes(problem: Problem) -> Geometry:
    from autoq.search.setup import Geometry

    return Geometry(problem.data.spatial_shape, problem.in_channels, problem.out_channels,
                    steady=problem.data.steady)
