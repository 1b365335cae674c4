"""Samplers: what proposes the next configuration of a search.

:data:`SAMPLERS` is the one list: a spec's ``search.sampler`` must name one of its keys, and the
sampler contract tests (Optuna's own, ``optuna.testing.pytest_samplers``) run every entry.
Adding a sampler is one module with a factory plus one line here.

A factory gets what is known before any training — the search space with its exact costs
(:class:`PricedSpace`) — and the search's settings, and returns an Optuna sampler. Constraints
reach every sampler through the trials (``trial.set_constraint``); a sampler that can use the
limits up front (autoq's) also gets them in :class:`SamplerSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from optuna.samplers import BaseSampler

from autoq.bits import Rank
from autoq.search.records import Params
from autoq.search.samplers import builtin
from autoq.search.samplers.cost_aware import CostAwareSampler, NoisePowerModel


class PricedSpace(Protocol):
    """A search space as samplers see it: the choices, and the exact cost of any
    configuration given as sampler parameters (:func:`autoq.search.records.encode_params`)."""

    @property
    def scales(self) -> Sequence[float]: ...

    @property
    def ranks(self) -> Sequence[Rank | None]:
        """Factorization ranks, largest first; ``[None]`` when the rank is not searched."""
        ...

    @property
    def groups(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def weight_choices(self) -> Sequence[int | str]: ...

    @property
    def act_choices(self) -> Sequence[int]: ...

    def params_cost(self, params: Params) -> float: ...

    @property
    def float_cost(self) -> float:
        """The float model's cost at the largest scale and rank: a configuration is worth
        running only where it costs less."""
        ...


@dataclass(frozen=True)
class SamplerSettings:
    """The search settings a sampler may use.

    Attributes:
        trials: the search's trial budget.
        max_cost: the cost constraint, if any.
        max_mse: the error constraint, if any.
        max_mse_ratio: the error constraint as a multiple of the float model's error at full
            resolution (which the finished trials record), if any.
    """

    trials: int
    max_cost: float | None = None
    max_mse: float | None = None
    max_mse_ratio: float | None = None


class SamplerFactory(Protocol):
    def __call__(self, space: PricedSpace, settings: SamplerSettings, *, seed: int | None
                 ) -> BaseSampler: ...


SAMPLERS: dict[str, SamplerFactory] = {
    "autoq": CostAwareSampler.for_space,
    "tpe": builtin.tpe,
    "nsga2": builtin.nsga2,
    "gp": builtin.gp,
    "random": builtin.random,
}
"""Every sampler by the name a spec's ``search.sampler`` gives."""

__all__ = [
    "SAMPLERS",
    "CostAwareSampler",
    "NoisePowerModel",
    "PricedSpace",
    "SamplerFactory",
    "SamplerSettings",
]
