"""Executors: where a search's trials run.

:data:`EXECUTORS` is the one list: a spec's ``search.executor`` must name one of its keys.
Each entry is the import path of a class implementing :class:`Executor`, imported only when a
search runs with it (Ray is an optional extra and heavy to import). Adding an executor is one
module plus one line here. Every executor gets the same prepared run
(:func:`autoq.search.executors.plan.prepare_run`) and runs its trials through
:func:`autoq.search.objective.run_trials`, so all of them record the same things.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from autoq.errors import SpecError
from autoq.extras import require

if TYPE_CHECKING:
    import optuna

    from autoq.search.executors.plan import SearchRun

StudyCallback = Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]

@dataclass(frozen=True)
class ExecutorEntry:
    """Where an executor lives, and the optional dependency it needs.

    Attributes:
        path: ``"module:Class"``, imported when a search runs with it.
        extra: the extra of autoq that installs its dependency (``None``: core only).
        requires: the module that extra provides, checked before the import.
    """

    path: str
    extra: str | None = None
    requires: str | None = None


EXECUTORS: dict[str, ExecutorEntry] = {
    "local": ExecutorEntry("autoq.search.executors.local:LocalExecutor"),
    "ray": ExecutorEntry("autoq.search.executors.ray:RayExecutor", extra="ray",
                         requires="ray.tune"),
}
"""Every executor by the name a spec's ``search.executor`` gives."""


@dataclass(frozen=True)
class ExecutorOptions:
    """How to reach the compute, beside the spec (command-line flags, service settings).

    Attributes:
        ray_address: a Ray cluster to join (executor ``ray``); ``None``: a local instance.
    """

    ray_address: str | None = None


class Executor(Protocol):
    """Runs a prepared search's remaining trials.

    ``run`` returns when the budget is spent, ``should_stop()`` said so (polled at trial
    boundaries), or the spec's timeout passed; it records nothing itself beyond what
    :func:`~autoq.search.objective.run_trials` records.
    """

    def __init__(self, options: ExecutorOptions) -> None: ...

    def run(
        self,
        run: SearchRun,
        *,
        artifact_dir: Path | None,
        callbacks: list[StudyCallback],
        should_stop: Callable[[], bool] | None,
    ) -> None: ...


def get_executor(name: str, options: ExecutorOptions | None = None) -> Executor:
    """The executor registered as ``name``; a SpecError lists the known ones, a
    MissingExtraError names the extra to install."""
    if name not in EXECUTORS:
        raise SpecError(f"unknown executor {name!r}; known: {sorted(EXECUTORS)}")
    entry = EXECUTORS[name]
    if entry.extra is not None and entry.requires is not None:
        require(entry.requires, extra=entry.extra, feature=f"the {name!r} executor")
    module, _, attribute = entry.path.partition(":")
    cls = getattr(import_module(module), attribute)
    executor: Executor = cls(options or ExecutorOptions())
    return executor


__all__ = ["EXECUTORS", "Executor", "ExecutorEntry", "ExecutorOptions", "StudyCallback",
           "get_executor"]
