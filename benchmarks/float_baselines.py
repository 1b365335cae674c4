"""Float baselines: the `small` config of every data set × architecture, trained at full scale.

Usage: python benchmarks/float_baselines.py [--spaces burgers-fno-small|FILE.yaml ...]
                                            [--cache DIR]
Prints validation MSE (and, for time-dependent data, the MSE of persisting the last input
state: the bar a model must clear), parameter count, float FLOPs (the cost model's M + A) and
seconds to train, beside the paper's Tables 1 and 2 (their data sets are larger, so orientation
only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autoq.cost import bitops
from autoq.device import configure_threads
from autoq.models.config import ArchConfig
from autoq.precision import TrialConfig
from autoq.quant import quiet_aimet_logs
from autoq.search import load_spec
from autoq.search.setup import load_spec_problem
from autoq.train import FloatModelCache, persistence_mse

ROOT = Path(__file__).resolve().parent.parent
# The paper's Table 1 (validation MSE) and Table 2 (MFLOPs) for its unquantized models.
PAPER = {
    ("diffsorp", "fno"): (4.12e-8, 15), ("diffsorp", "unet"): (4.26e-8, 7),
    ("diffsorp", "transformer"): (4.33e-8, 4),
    ("burgers", "fno"): (5.62e-4, 21), ("burgers", "unet"): (2.19e-3, 14),
    ("burgers", "transformer"): (1.40e-3, 9),
    ("ns2d", "fno"): (2.85e-3, 210), ("ns2d", "unet"): (1.10e-3, 181),
    ("ns2d", "transformer"): (5.36e-3, 118),
    ("darcy", "fno"): (1.52e-2, 150), ("darcy", "unet"): (6.92e-3, 34),
    ("darcy", "transformer"): (8.47e-3, 69),
}
SPACES = [f"{pde}-{arch}-small" for pde in ("diffsorp", "burgers", "ns2d", "darcy")
          for arch in ("fno", "unet", "transformer")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=SPACES)
    parser.add_argument("--cache", type=Path, default=None, help="float cache folder")
    args = parser.parse_args()
    threads = configure_threads()
    quiet_aimet_logs()
    cache = FloatModelCache(args.cache)
    print(f"float baselines, small configs, scale 1.0 ({threads} threads)")
    header = (f"{'space':26s} {'val MSE':>10s} {'persist.':>10s} {'params':>9s} {'MFLOPs':>8s} "
              f"{'train s':>8s} {'paper MSE':>10s} {'paper MFLOPs':>12s}")
    print(header)
    print("-" * len(header))
    for name in args.spaces:
        spec = load_spec(name if name.endswith(".yaml")
                         else ROOT / "search_spaces" / f"{name}.yaml")
        if spec.data.pde is None or not isinstance(spec.model, ArchConfig):
            parser.error(f"{name}: the paper's figures are of its PDEs and architectures")
        problem = load_spec_problem(spec, progress=False)
        model = cache.get(problem, spec.model, spec.train, scale=1.0)
        seconds = model.train_seconds  # as recorded when it was trained, if it came from the cache
        network = model.solver.network
        params = sum(p.numel() for p in network.parameters())
        float_config = TrialConfig.for_model(network, scale=1.0, bits={})
        flops = bitops(network, float_config, data_shape=problem.data.spatial_shape,
                       in_channels=problem.in_channels).flops
        paper_mse, paper_mflops = PAPER[(spec.data.pde, spec.model.arch)]
        persisted = persistence_mse(problem.val_windows)
        persisted_text = "—" if persisted is None else f"{persisted:.3e}"
        print(f"{spec.name:26s} {model.val_mse:10.3e} {persisted_text:>10s} {params:9d} "
              f"{flops / 1e6:8.2f} {seconds:8.1f} {paper_mse:10.2e} {paper_mflops:12d}",
              flush=True)


if __name__ == "__main__":
    main()
