"""Where an ONNX model's time goes, layer by layer: onnxruntime's profiler, attributed to the
network's layers.

A search with latency as its objective must predict the latency of a configuration before
training it, as it predicts bit-ops. Timing every configuration is out of the question; timing
each layer at each precision is not: a model at one uniform precision is profiled once, and the
per-node kernel times of onnxruntime's *optimised* graph (the one that runs: fused integer
kernels, layout transposes and all) are summed per layer.

Which layer a node belongs to is read from its name:

- ``/network/<layer path>/<op>`` — the torch exporter's names, kept by onnxruntime's
  fusions (``…/conv2/Conv_token_19`` is the fused ``QLinearConv`` of ``conv2``);
- ``qdq<n>_network.<layer>_<tensor>_…`` — the quantize/dequantize nodes of
  :mod:`autoq.deploy.qdq`;
- anything else (a layout ``Transpose`` onnxruntime inserted around an integer kernel, a
  ``Reorder`` of its blocked layout) goes to the layer of the node that feeds it, else of the
  node it feeds, else to no layer (the glue: resizing, normalisation, norms, activations).

Kernel times leave out the session's work between nodes, and the profiler adds its own: the
layers get their kernel times, scaled down when the profiled kernels add up to more than the
wall-clock median measured without the profiler, and the rest of that median is glue
(:func:`layer_times`).
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from autoq.deploy.latency import open_session, random_inputs

KERNEL_SUFFIX = "_kernel_time"


@dataclass(frozen=True)
class LayerTimes:
    """A model's median run time split over its layers.

    Attributes:
        total_s: the wall-clock median of a run (seconds, measured without the profiler).
        layers: seconds of each named layer (0 for a layer with no node in the graph).
        glue_s: the rest: nodes of no layer, and the session's own overhead.
    """

    total_s: float
    layers: dict[str, float]
    glue_s: float


def node_times(path: str | Path, *, runtime: str = "onnxruntime-cpu", threads: int = 1,
               batch: int = 1, warmup: int = 3, repeats: int = 20
               ) -> tuple[dict[str, float], onnx.GraphProto]:
    """Median kernel time of every node of onnxruntime's optimised graph of ``path``, in
    seconds, and that graph.

    Raises:
        RuntimeUnavailableError: the runtime cannot run here.
    """
    with tempfile.TemporaryDirectory(prefix="autoq-profile-") as folder:
        optimised = Path(folder) / "optimised.onnx"
        session = open_session(path, runtime=runtime, threads=threads,
                               profile_prefix=Path(folder) / "profile",
                               optimised_path=optimised)
        feed = random_inputs(session, batch, seed=0)
        for _ in range(warmup + repeats):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
        graph = onnx.load(str(optimised), load_external_data=False).graph
    durations: dict[str, list[float]] = defaultdict(list)
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith(KERNEL_SUFFIX):
            durations[name[:-len(KERNEL_SUFFIX)]].append(event["dur"] * 1e-6)
    # The first warm-up runs allocate and choose kernels: the median of the last ``repeats``.
    return ({name: statistics.median(values[-repeats:]) for name, values in durations.items()},
            graph)


def attribute_nodes(graph: onnx.GraphProto, layers: Sequence[str], *, prefix: str = "network"
                    ) -> dict[str, str | None]:
    """The layer (of ``layers``, module paths inside the submodule ``prefix``) each node of
    ``graph`` belongs to, ``None`` for glue (rules in the module docstring)."""
    by_path = sorted(layers, key=len, reverse=True)  # "blocks.1" must not take "blocks.10"
    scoped = [(layer, f".{prefix}.{layer}.") for layer in by_path]
    qdq = re.compile(rf"^qdq\d+_{re.escape(prefix)}\.(.+)$")

    def by_name(name: str) -> str | None:
        # The exporter joins module levels with '/' but a list's index with '.'
        # ("/network/encoders.0/conv2/Conv"): compared with dots only.
        dotted = name.replace("/", ".")
        for layer, scope in scoped:
            if dotted.startswith(scope):
                return layer
        match = qdq.match(name)
        if match:
            for layer in by_path:
                if match.group(1).startswith(f"{layer}_"):
                    return layer
        return None

    owner = {node.name: by_name(node.name) for node in graph.node}
    producer = {output: node.name for node in graph.node for output in node.output}
    consumers: dict[str, list[str]] = defaultdict(list)
    for node in graph.node:
        for tensor in node.input:
            consumers[tensor].append(node.name)
    named = dict(owner)
    for node in graph.node:
        if named[node.name] is not None:
            continue
        feeding = [named.get(producer.get(tensor, "")) for tensor in node.input]
        fed = [named.get(consumer) for tensor in node.output for consumer in consumers[tensor]]
        owner[node.name] = next((layer for layer in [*feeding, *fed] if layer is not None),
                                None)
    return owner


def layer_times(times: Mapping[str, float], owner: Mapping[str, str | None],
                layers: Sequence[str], *, total_s: float) -> LayerTimes:
    """Split ``total_s`` (a wall-clock median) over ``layers`` in the proportions of the
    profiled node ``times``; nodes the graph does not have (``owner``) are glue."""
    profiled = float(sum(times.values()))
    if profiled <= 0:
        raise ValueError("the profile holds no node time")
    share = np.zeros(len(layers))
    index = {layer: i for i, layer in enumerate(layers)}
    for node, seconds in times.items():
        layer = owner.get(node)
        if layer is not None:
            share[index[layer]] += seconds / profiled
    covered = min(1.0, profiled / total_s) if total_s > 0 else 1.0
    layer_seconds = share * total_s * covered
    return LayerTimes(total_s=total_s,
                      layers=dict(zip(layers, layer_seconds.tolist(), strict=True)),
                      glue_s=total_s - float(layer_seconds.sum()))
