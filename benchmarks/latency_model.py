"""How well the latency table predicts measured latency, against the bit-op proxy.

A search with ``objectives: [error, latency]`` lets autoq's sampler price candidates by the
latency table (:class:`autoq.search.latency.LatencyModel`): per scale, one model per container
class is timed and profiled, and a configuration's latency is predicted as the float model's
glue plus each layer's time in its class. This benchmark checks that prediction before any
correction by measurements:

1. for each space and scheme, build the table (timings of one run of the table, as a search
   does), then draw ``--configs`` random configurations of the space (random scale, random bits
   per group, as the sampler's random candidates are);
2. export every configuration (untrained: speed does not depend on the weights' values) and
   time them all together with the float full-resolution reference in interleaved rounds;
3. report, over the configurations: the Spearman rank correlation of the prediction with the
   measured latency ratio, and of the bit-op ratio with it (the proxy the paper uses); the
   median and largest factor between predicted and measured (``exp|log(pred / measured)|``).
   The scale dominates both rankings, so the correlations are also given over as many
   configurations drawn at the full scale only, where only the bits differ: the part of the
   ranking the bit-op proxy gets wrong when narrower grids run in the same 8-bit kernels.

Run from the repository root (no data or training needed; about a minute per space and
scheme on 2 cores)::

    .venv/bin/python benchmarks/latency_model.py
    .venv/bin/python benchmarks/latency_model.py --spaces darcy-unet-small --configs 12

Figures and discussion: ``benchmarks/RESULTS.md``, "Latency table".
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

SPACES = ("darcy-unet-small", "darcy-transformer-small", "burgers-fno-small")
SCHEMES = ("paper", "integer")


def measure(space_name: str, scheme: str, configs: int, repeats: int, seed: int, *,
            full_scale_only: bool = False) -> dict[str, float]:
    """Predicted, bit-op and measured ratios of ``configs`` random configurations (at the
    space's largest scale only, with ``full_scale_only``)."""
    from autoq.deploy.latency import time_models
    from autoq.search import SearchSpace, load_spec
    from autoq.search.latency import LatencyModel
    from autoq.search.records import encode_params

    spec = load_spec(space_name)
    spec = spec.model_copy(update={"space": spec.space.model_copy(update={"scheme": scheme})})
    space = SearchSpace(spec)
    model = LatencyModel(space, spec.search.latency.model_copy(update={"repeats": repeats}))
    rng = np.random.default_rng(seed)
    chosen = []
    for _ in range(configs):
        scale = max(space.scales) if full_scale_only else float(rng.choice(space.scales))
        bits = {group: (int(rng.choice(space.spec.space.weight_bits)),
                        int(rng.choice(space.act_choices))) for group in space.groups}
        chosen.append((scale, bits))
    started = time.perf_counter()
    predicted = [model.params_cost(encode_params(scale, bits)) for scale, bits in chosen]
    table_s = time.perf_counter() - started
    reference_bitops = space.cost(space.config(max(space.scales), dict.fromkeys(space.groups))
                                  ).total
    bitops = [space.cost(space.config(scale, bits)).total / reference_bitops
              for scale, bits in chosen]
    with tempfile.TemporaryDirectory() as folder:
        paths: dict[object, Path] = {"reference": model.export_untrained(
            max(space.scales), space.ranks[0], {}, Path(folder) / "reference.onnx")}
        for index, (scale, bits) in enumerate(chosen):
            config = space.config(scale, bits)
            paths[index] = model.export_untrained(scale, None, config.bits,
                                                  Path(folder) / f"{index}.onnx")
        timings = time_models(paths, repeats=repeats)
    reference_s = timings["reference"].median_s
    measured = [timings[index].median_s / reference_s for index in range(configs)]
    factors = np.exp(np.abs(np.log(np.array(predicted) / np.array(measured))))
    return {"spearman_table": float(spearmanr(predicted, measured).statistic),
            "spearman_bitops": float(spearmanr(bitops, measured).statistic),
            "median_factor": float(np.median(factors)), "max_factor": float(factors.max()),
            "measured_min": min(measured), "measured_max": max(measured),
            "table_seconds": table_s, "reference_ms": 1e3 * reference_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=list(SPACES))
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    parser.add_argument("--configs", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    header = ("space", "scheme", "ρ table", "ρ bit-ops", "median ×", "worst ×",
              "measured range", "ρ table, full scale", "ρ bit-ops, full scale", "table s",
              "float ms")
    print(" | ".join(header))
    for space_name in args.spaces:
        for scheme in args.schemes:
            r = measure(space_name, scheme, args.configs, args.repeats, args.seed)
            full = measure(space_name, scheme, args.configs, args.repeats, args.seed + 1,
                           full_scale_only=True)
            print(f"{space_name} | {scheme} | {r['spearman_table']:.2f} | "
                  f"{r['spearman_bitops']:.2f} | {r['median_factor']:.2f} | "
                  f"{r['max_factor']:.2f} | {r['measured_min']:.2f}–{r['measured_max']:.2f} | "
                  f"{full['spearman_table']:.2f} | {full['spearman_bitops']:.2f} | "
                  f"{r['table_seconds']:.0f} | {r['reference_ms']:.2f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
