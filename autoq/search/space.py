"""A search space as known before any training: layer groups, configurations and their costs.

Building it needs the model's structure (a float network built once, never trained) and the
data's shapes, not the data itself; samplers price candidate configurations through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autoq.bits import FLOAT
from autoq.cost import REGIMES, CostReport, bitops
from autoq.models import build_model
from autoq.precision import Bits, TrialConfig, expand_groups, layer_groups
from autoq.search.records import Params, decode_params
from autoq.search.setup import Geometry, geometry
from autoq.search.spec import SearchSpec


class SearchSpace:
    """What a spec's search space knows before any training: the layer groups, the
    configurations and their bit-op costs.

    Args:
        spec: the validated search spec (its data file need not exist yet: shapes then come from
            the generation recipe or the public defaults).
        shapes: the data's shapes when they do not come from the spec's data (an in-memory
            dataset).
    """

    def __init__(self, spec: SearchSpec, *, shapes: Geometry | None = None) -> None:
        self.spec = spec
        self.geometry: Geometry = shapes or geometry(spec)
        self.reference_network = build_model(
            spec.model, spatial_dims=len(self.geometry.data_shape),
            in_channels=self.geometry.in_channels, out_channels=self.geometry.out_channels,
            grid=self.geometry.data_shape)
        self.groups = layer_groups(self.reference_network, spec.space.granularity,
                                   first_last_float=spec.space.first_last_float)

    def config(self, scale: float, group_bits: dict[str, Bits]) -> TrialConfig:
        """A trial config from per-group bits (groups of :attr:`groups`)."""
        return TrialConfig.for_model(self.reference_network, scale=scale,
                                     bits=expand_groups(self.groups, group_bits))

    def regime(self, name: str, scale: float) -> TrialConfig:
        """The paper's uniform regime ``name`` (``float``, ``w8a16``, …) at ``scale``."""
        return self.config(scale, {group: REGIMES[name] for group in self.groups})

    def from_params(self, params: Mapping[str, Any]) -> TrialConfig:
        """The config of sampler parameters (:func:`autoq.search.records.encode_params`)."""
        return self.config(*decode_params(params, list(self.groups)))

    def cost(self, config: TrialConfig) -> CostReport:
        """Bit-op cost of ``config``; needs no training."""
        return bitops(self.reference_network, config, data_shape=self.geometry.data_shape,
                      in_channels=self.geometry.in_channels)

    # The sampler's view (autoq.search.samplers.PricedSpace).
    @property
    def scales(self) -> Sequence[float]:
        return self.spec.space.scales

    @property
    def weight_choices(self) -> Sequence[int | str]:
        """Weight bitwidths a group may take, and float when the space allows it."""
        return [*self.spec.space.weight_bits, *([FLOAT] if self.spec.space.allow_float else [])]

    @property
    def act_choices(self) -> Sequence[int]:
        return self.spec.space.act_bits

    def params_cost(self, params: Params) -> float:
        """Total bit-op cost of a configuration given as sampler parameters."""
        return self.cost(self.from_params(params)).total
