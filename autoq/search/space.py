"""A search space as known before any training: layer groups, configurations and their costs.

Building it needs the model's structure (a float network built once per factorization rank,
never trained) and the data's shapes, not the data itself; samplers price candidate
configurations through it.

``space.transform`` decides how each quantized spectral convolution computes its transforms
(:data:`~autoq.bits.Transform`): ``fft`` all, ``dft`` all, or under ``search`` per layer group,
as the configuration's ``transform:<group>`` parameters say or, for a group they leave out (autoq's
sampler never sets them; the baseline regimes have none), the one that costs less at the group's
bits and scale (:meth:`SearchSpace.cheaper_transforms`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from autoq.bits import FLOAT, TRANSFORMS, Rank, Transform
from autoq.cost import (
    DFT_SUFFIX,
    FFT_SUFFIX,
    IDFT_SUFFIX,
    IFFT_SUFFIX,
    REGIMES,
    CostReport,
    bitops,
)
from autoq.errors import SpecError
from autoq.models import ModelConfig, build_model
from autoq.models.config import FactoryConfig
from autoq.precision import (
    Bits,
    TrialConfig,
    expand_groups,
    layer_groups,
    quantizable_layers,
    spectral_layers,
)
from autoq.search.records import Params, decode_params, decode_transforms
from autoq.search.setup import Geometry, geometry
from autoq.search.spec import SEARCHED_TRANSFORM, SearchSpec


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
        spectral = set(spectral_layers(self.reference_network))
        self.spectral_groups: dict[str, list[str]] = {
            group: [layer for layer in layers if layer in spectral]
            for group, layers in self.groups.items() if spectral.intersection(layers)}
        """The groups holding spectral convolutions, each with those layers: the groups whose
        transform ``space.transform`` decides."""
        if spec.space.transform != "fft" and not self.spectral_groups:
            raise SpecError(f"space.transform: {spec.space.transform!r} chooses how autoq's "
                            f"spectral convolutions (SpectralConv, the FNO's) compute their "
                            f"Fourier transforms, and no layer group of this model holds one; "
                            f"leave space.transform at 'fft'")

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

    def config(self, scale: float, group_bits: Mapping[str, Bits], rank: Rank | None = None,
               group_transforms: Mapping[str, Transform] | None = None) -> TrialConfig:
        """A trial config from per-group bits (groups of :attr:`groups`) at ``rank``, with the
        transforms ``space.transform`` gives its quantized spectral groups: under ``search``
        ``group_transforms``, and the cheaper one where it names none."""
        setting = self.spec.space.transform
        chosen: dict[str, Transform] = {}
        quantized = [group for group in self.spectral_groups if group_bits.get(group) is not None]
        if setting == "dft":
            chosen = dict.fromkeys(quantized, "dft")
        elif setting == SEARCHED_TRANSFORM:
            given = group_transforms or {}
            missing = [group for group in quantized if group not in given]
            cheaper = self.cheaper_transforms(scale, group_bits, rank) if missing else {}
            chosen = {group: given[group] if group in given else cheaper[group]
                      for group in quantized}
        return self._config(scale, group_bits, rank, chosen)

    def _config(self, scale: float, group_bits: Mapping[str, Bits], rank: Rank | None,
                group_transforms: Mapping[str, Transform]) -> TrialConfig:
        transforms = {layer: transform for group, transform in group_transforms.items()
                      for layer in self.spectral_groups[group]}
        return TrialConfig.for_model(self.network(rank), scale=scale,
                                     bits=expand_groups(self.groups, group_bits), rank=rank,
                                     scheme=self.spec.space.scheme,
                                     resample=self.spec.space.resample,
                                     weight_granularity=self.spec.space.weight_granularity,
                                     transforms=transforms)

    def cheaper_transforms(self, scale: float, group_bits: Mapping[str, Bits],
                           rank: Rank | None = None) -> dict[str, Transform]:
        """Per quantized spectral group, the transform whose products cost less at the group's
        bits and ``scale`` (``fft`` on a tie): its layers' ``.fft`` + ``.ifft`` entries priced as
        float work against their ``.dft`` + ``.idft`` entries at the group's bits. A group's
        transforms cost the same whatever the other groups run, so one pricing of each covers
        every group."""
        quantized = [group for group in self.spectral_groups if group_bits.get(group) is not None]
        if not quantized:
            return {}
        as_fft = self.cost(self._config(scale, group_bits, rank, {})).layers
        as_dft = self.cost(self._config(scale, group_bits, rank,
                                        dict.fromkeys(quantized, "dft"))).layers

        def transform_cost(layers: Mapping[str, Any], group: str, suffixes: tuple[str, str]
                           ) -> int:
            return sum(layers[layer + suffix].cost for layer in self.spectral_groups[group]
                       for suffix in suffixes)

        return {group: "dft" if transform_cost(as_dft, group, (DFT_SUFFIX, IDFT_SUFFIX))
                < transform_cost(as_fft, group, (FFT_SUFFIX, IFFT_SUFFIX)) else "fft"
                for group in quantized}

    def regime(self, name: str, scale: float, rank: Rank | None = None) -> TrialConfig:
        """The paper's uniform regime ``name`` (``float``, ``w8a16``, …) at ``scale`` and
        ``rank``."""
        return self.config(scale, {group: REGIMES[name] for group in self.groups}, rank)

    def from_params(self, params: Mapping[str, Any]) -> TrialConfig:
        """The config of sampler parameters (:func:`autoq.search.records.encode_params`)."""
        groups = list(self.groups)
        return self.config(*decode_params(params, groups),
                           group_transforms=decode_transforms(params, groups))

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

    @property
    def transform_choices(self) -> Sequence[Transform]:
        """The transforms a quantized spectral group chooses from under ``space.transform:
        search`` (the parameter ``transform:<group>``); none otherwise."""
        return list(TRANSFORMS) if self.spec.space.transform == SEARCHED_TRANSFORM else []

    def params_cost(self, params: Params) -> float:
        """Total bit-op cost of a configuration given as sampler parameters."""
        return self.cost(self.from_params(params)).total

    @property
    def float_cost(self) -> float:
        """Bit-op cost of the float model at the largest scale and rank."""
        return self.cost(self.regime("float", max(self.scales), self.ranks[0])).total
