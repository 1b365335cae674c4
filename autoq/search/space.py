"""A search space as known before any training: layer groups, configurations and their costs.

Building it needs the model's structure (a float network built once per factorization rank,
never trained) and the data's shapes, not the data itself; samplers price candidate
configurations through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from autoq.bits import FLOAT, Rank
from autoq.cost import REGIMES, CostReport, bitops
from autoq.errors import SpecError
from autoq.models import ModelConfig, build_model
from autoq.models.config import FactoryConfig
from autoq.precision import Bits, TrialConfig, expand_groups, layer_groups, quantizable_layers
from autoq.search.records import Params, decode_params
from autoq.search.setup import Geometry, geometry
from autoq.search.spec import SearchSpec


class SearchSpace:
    """What a spec's search space knows before any training: the layer groups, the
    configurations and their bit-op costs (at each factorization rank of ``space.ranks``: the
    layers are the same at every rank, their costs are not).

    Args:
        spec: the validated search spec (its data file need not exist yet: shapes then come from
            the generation recipe or the public defaults).
        shapes: the data's shapes when they do not come from the spec's data (an in-memory
            dataset).
    """

    def __init__(self, spec: SearchSpec, *, shapes: Geometry | None = None) -> None:
        self.spec = spec
        self.geometry: Geometry = shapes or geometry(spec)
        self._networks: dict[Rank | None, nn.Module] = {}
        self.reference_network = self.network(self.ranks[0])
        self.groups = layer_groups(self.reference_network, spec.space.granularity,
                                   first_last_float=spec.space.first_last_float)

    def model_config(self, rank: Rank | None) -> ModelConfig:
        """The spec's model at factorization rank ``rank`` (``None``: as the spec builds it)."""
        if rank is None:
            return self.spec.model
        if rank not in self.ranks:
            raise SpecError(f"rank {rank} is not in space.ranks {self.spec.space.ranks}")
        if not isinstance(self.spec.model, FactoryConfig):  # the spec refuses it: for mypy
            raise SpecError("space.ranks: needs a model built by a factory")
        return self.spec.model.with_kwargs(rank=rank)

    def network(self, rank: Rank | None) -> nn.Module:
        """The float network (untrained) at factorization rank ``rank``, built on first use."""
        if rank not in self._networks:
            network = build_model(
                self.model_config(rank), spatial_dims=len(self.geometry.data_shape),
                in_channels=self.geometry.in_channels, out_channels=self.geometry.out_channels,
                grid=self.geometry.data_shape)
            if self._networks:
                reference = quantizable_layers(next(iter(self._networks.values())))
                if quantizable_layers(network) != reference:
                    raise SpecError(f"space.ranks: at rank {rank} the model's quantizable "
                                    f"layers are {quantizable_layers(network)}, not "
                                    f"{reference} as at rank {self.ranks[0]}")
            self._networks[rank] = network
        return self._networks[rank]

    def config(self, scale: float, group_bits: dict[str, Bits], rank: Rank | None = None
               ) -> TrialConfig:
        """A trial config from per-group bits (groups of :attr:`groups`) at ``rank``."""
        return TrialConfig.for_model(self.network(rank), scale=scale,
                                     bits=expand_groups(self.groups, group_bits), rank=rank,
                                     scheme=self.spec.space.scheme)

    def regime(self, name: str, scale: float, rank: Rank | None = None) -> TrialConfig:
        """The paper's uniform regime ``name`` (``float``, ``w8a16``, …) at ``scale`` and
        ``rank``."""
        return self.config(scale, {group: REGIMES[name] for group in self.groups}, rank)

    def from_params(self, params: Mapping[str, Any]) -> TrialConfig:
        """The config of sampler parameters (:func:`autoq.search.records.encode_params`)."""
        return self.config(*decode_params(params, list(self.groups)))

    def cost(self, config: TrialConfig) -> CostReport:
        """Bit-op cost of ``config``; needs no training."""
        return bitops(self.network(config.rank), config, data_shape=self.geometry.data_shape,
                      in_channels=self.geometry.in_channels)

    # The sampler's view (autoq.search.samplers.PricedSpace).
    @property
    def scales(self) -> Sequence[float]:
        return self.spec.space.scales

    @property
    def ranks(self) -> Sequence[Rank | None]:
        """The factorization ranks, largest first; ``[None]`` when the rank is not searched."""
        return self.spec.space.ranks or [None]

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
