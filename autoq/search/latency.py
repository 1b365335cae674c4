"""Latency known before training: a table of per-layer timings, the sampler's view of a search
whose cost objective is latency.

autoq's sampler prices thousands of candidate configurations per trial; under the bit-op
objective the price is a count. Under the latency objective it is a prediction from timings
made once per scale (and rank) of the space, on the runtime the trials are timed on:

1. at each scale, the network (untrained: speed does not depend on the weights' values) is
   exported as a raw-to-raw ONNX model once per *container class* the menus hold, every group
   layer in it: float, and each (weight, activation) pair of 8- and 16-bit containers (a 3- and
   a 6-bit grid run the same int8 kernels: :func:`autoq.deploy.qdq.container`);
2. those models and the float model at the space's largest scale (the reference) are timed in
   the same interleaved rounds (:func:`autoq.deploy.latency.time_models`), and each is profiled
   to split its time over its layers (:mod:`autoq.deploy.profile`);
3. a configuration's latency is the float model's glue (resizing, normalisation, norms,
   activations) plus each group layer's time in its class, relative to the reference. What a
   class adds outside its layers (the dequantization of an integer scheme's outputs) is spread
   over its layers, so every uniform model is predicted exactly as timed.

Mixed configurations interact at layer boundaries in ways a sum of layers does not see; the
sampler corrects its predictions by the measured latency of every finished trial
(:class:`~autoq.search.samplers.CostAwareSampler`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from autoq.bits import FLOAT, Bits, Rank
from autoq.deploy.latency import check_runtime, export_solver, time_models
from autoq.deploy.profile import attribute_nodes, layer_times, node_times
from autoq.deploy.qdq import container_width
from autoq.precision import TrialConfig
from autoq.quant import build_sim, calibrate
from autoq.search.records import Params, decode_params
from autoq.search.space import SearchSpace
from autoq.search.spec import LatencySettings
from autoq.train.solver import ScaledSolver

log = logging.getLogger(__name__)

ContainerClass = tuple[int, int] | str
"""``(weight container bits, activation container bits)``, or :data:`~autoq.bits.FLOAT`."""
CALIBRATION_BATCHES = 2


def container_class(bits: Bits) -> ContainerClass:
    """The class a layer's bits run in: the containers of its weights and inputs, or float."""
    if bits is None:
        return FLOAT
    return container_width(bits[0]), container_width(bits[1])


@dataclass(frozen=True)
class LatencyTable:
    """Timings of one scale and rank, relative to the reference (the float model at the
    space's largest scale and rank, timed in the same rounds).

    Attributes:
        glue: the float model's time outside the group layers.
        layers: per group layer, its time in each container class (what the class adds
            outside the layers spread over them).
        uniform: the timed model of each class, relative to the reference.
        reference_s: the reference's median seconds per run.
    """

    glue: float
    layers: dict[str, dict[ContainerClass, float]]
    uniform: dict[ContainerClass, float]
    reference_s: float

    def predict(self, bits: Mapping[str, Bits]) -> float:
        """The relative latency of the group layers at ``bits`` (``{layer: bits}``)."""
        return self.glue + sum(self.layers[layer][container_class(chosen)]
                               for layer, chosen in bits.items() if layer in self.layers)


class LatencyModel:
    """A search space priced in predicted latency (relative to the float full-resolution
    model) instead of bit-ops: what autoq's sampler reads under ``objectives: [error,
    latency]`` (:class:`~autoq.search.samplers.PricedSpace`). Tables are measured on first use,
    one per scale and rank.

    Args:
        space: the search space.
        settings: the runtime, threads and batch the trials are timed with.
    """

    def __init__(self, space: SearchSpace, settings: LatencySettings) -> None:
        check_runtime(settings.runtime)
        self.space = space
        self.settings = settings
        self._tables: dict[tuple[float, Rank | None], LatencyTable] = {}
        self._layers = [layer for layers in space.groups.values() for layer in layers]
        bits = [(w, a) for w in space.spec.space.weight_bits for a in space.spec.space.act_bits]
        self.classes: list[ContainerClass] = [FLOAT, *sorted({container_class(b) for b in bits})]

    @property
    def scales(self) -> Sequence[float]:
        return self.space.scales

    @property
    def ranks(self) -> Sequence[Rank | None]:
        return self.space.ranks

    @property
    def groups(self) -> Mapping[str, Sequence[str]]:
        return self.space.groups

    @property
    def weight_choices(self) -> Sequence[int | str]:
        return self.space.weight_choices

    @property
    def act_choices(self) -> Sequence[int]:
        return self.space.act_choices

    @property
    def float_cost(self) -> float:
        """1: every latency here is relative to the float model at full resolution."""
        return 1.0

    def params_cost(self, params: Params) -> float:
        """Predicted latency, relative to the float full-resolution model, of a configuration
        given as sampler parameters."""
        scale, group_bits, rank = decode_params(params, list(self.space.groups))
        config = self.space.config(scale, group_bits, rank)
        return self.table(scale, rank).predict(config.bits)

    def table(self, scale: float, rank: Rank | None = None) -> LatencyTable:
        """The timings at ``scale`` and ``rank``, measured now if not yet."""
        if (scale, rank) not in self._tables:
            self._tables[scale, rank] = self._measure(scale, rank)
        return self._tables[scale, rank]

    def _measure(self, scale: float, rank: Rank | None) -> LatencyTable:
        settings = self.settings
        reference = object()
        with tempfile.TemporaryDirectory(prefix="autoq-latency-table-") as folder:
            paths: dict[object, Path] = {}
            for kind in tqdm(self.classes, desc=f"latency table, scale {scale:g}",
                             unit="model", disable=None, leave=False):
                bits = {layer: None if kind == FLOAT else kind for layer in self._layers}
                paths[kind] = self.export_untrained(scale, rank, bits,
                                                    Path(folder) / f"{kind}.onnx")
            paths[reference] = self.export_untrained(max(self.space.scales),
                                                     self.space.ranks[0], {},
                                                     Path(folder) / "reference.onnx")
            timings = time_models(paths, runtime=settings.runtime, threads=settings.threads,
                                  batch=settings.batch, warmup=settings.warmup,
                                  repeats=settings.repeats)
            reference_s = timings[reference].median_s
            split = {}
            for kind in self.classes:
                times, graph = node_times(paths[kind], runtime=settings.runtime,
                                          threads=settings.threads, batch=settings.batch,
                                          warmup=settings.warmup, repeats=settings.repeats)
                split[kind] = layer_times(times, attribute_nodes(graph, self._layers),
                                          self._layers, total_s=timings[kind].median_s)
        glue = split[FLOAT].glue_s
        extra = {kind: (split[kind].glue_s - glue) / max(1, len(self._layers))
                 for kind in self.classes}
        layers = {layer: {kind: (split[kind].layers[layer] + extra[kind]) / reference_s
                          for kind in self.classes} for layer in self._layers}
        uniform = {kind: timings[kind].median_s / reference_s for kind in self.classes}
        log.info("latency table at scale %g: %s of the float model", scale,
                 {str(kind): round(value, 3) for kind, value in uniform.items()})
        return LatencyTable(glue=glue / reference_s, layers=layers, uniform=uniform,
                            reference_s=reference_s)

    def export_untrained(self, scale: float, rank: Rank | None, bits: Mapping[str, Bits],
                         path: Path) -> Path:
        """The untrained model at ``scale`` and ``rank`` with layers at ``bits`` (``{layer:
        (weight, activation) or None}``; layers not named stay float), calibrated on random
        inputs, as a raw-to-raw ONNX graph: what is timed."""
        geometry = self.space.geometry
        network = self.space.network(rank)
        # A time-dependent solver's residual is one Add whatever the steps and fields: one
        # step of all output channels is timed the same.
        solver = ScaledSolver(network, data_shape=geometry.data_shape, scale=scale,
                              fields=geometry.out_channels, input_steps=1, target_steps=1,
                              steady=geometry.steady, in_channels=geometry.in_channels,
                              resample=self.space.spec.space.resample)
        config = TrialConfig.for_model(
            network, scale=scale, bits=bits, rank=rank, scheme=self.space.spec.space.scheme,
            resample=self.space.spec.space.resample,
            weight_granularity=self.space.spec.space.weight_granularity)
        if config.quantized_layers:
            dummy = torch.zeros(1, geometry.in_channels, *solver.net_shape)
            qnet = build_sim(network, config, dummy_input=dummy)
            generator = torch.Generator().manual_seed(0)
            calibrate(qnet, (torch.randn(4, geometry.in_channels, *solver.net_shape,
                                         generator=generator)
                             for _ in range(CALIBRATION_BATCHES)))
            solver.network = qnet.model
        return export_solver(solver.cpu(), path)
