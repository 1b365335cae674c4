"""Every registered sampler passes Optuna's own sampler contract tests.

The tests come from ``optuna.testing.pytest_samplers``; the fixture below builds each entry of
:data:`autoq.search.samplers.SAMPLERS` the way a search does, on a small priced space, so a new
sampler joins these tests by its registry line alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase

from autoq.bits import Rank
from autoq.search.records import Params, decode_params
from autoq.search.samplers import SAMPLERS, SamplerSettings


class TinySpace:
    """Two layer groups, two scales, bitwidths 4/8, cost = scale × Σ w·a."""

    scales: Sequence[float] = (1.0, 0.5)
    ranks: Sequence[Rank | None] = (None,)
    groups: Mapping[str, Sequence[str]] = {"a": ["a"], "b": ["b"]}
    weight_choices: Sequence[int | str] = (4, 8)
    act_choices: Sequence[int] = (4, 8)

    def params_cost(self, params: Params) -> float:
        scale, bits, rank = decode_params(params, list(self.groups))
        return scale * (rank or 1) * sum(w * a for w, a in (b for b in bits.values()
                                                             if b is not None))

    @property
    def float_cost(self) -> float:
        """Every group at 32-bit weights and activations, at the largest scale and rank."""
        return max(self.scales) * (self.ranks[0] or 1) * 32 * 32 * len(self.groups)


class RankedTinySpace(TinySpace):
    """The same with a factorization rank of 2 or 1 that multiplies the cost."""

    ranks: Sequence[Rank | None] = (2, 1)


class _EveryRegisteredSampler:
    # Only autoq's sampler reads the space's ranks; the others see the objective's parameters.
    @pytest.fixture(params=[*((name, TinySpace) for name in sorted(SAMPLERS)),
                            ("autoq", RankedTinySpace)],
                    ids=lambda case: f"{case[0]}-{case[1].__name__}")
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        name, space = request.param
        return lambda: SAMPLERS[name](space(), SamplerSettings(trials=20), seed=0)


class TestRegisteredSampler(_EveryRegisteredSampler, BasicSamplerTestCase):
    pass


class TestRegisteredSamplerMultiObjective(_EveryRegisteredSampler, MultiObjectiveSamplerTestCase):
    pass
