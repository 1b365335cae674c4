"""Samples per second of each classical-solver generator at the public resolution.

Usage: python benchmarks/datagen.py [--samples N]
Prints one row per PDE: resolution, frames, samples generated, seconds, samples/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from autoq.data import PDES, read_pde_file
from autoq.device import configure_threads

# Few samples of the slow generators keep the whole run to minutes on 2 cores.
DEFAULT_SAMPLES = {"burgers": 16, "diffsorp": 16, "darcy": 16, "ns2d": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="samples per generator (default: per PDE)")
    args = parser.parse_args()
    threads = configure_threads()
    print(f"generator throughput at the public resolution ({threads} threads)")
    print(f"{'pde':10s} {'grid':>10s} {'frames':>7s} {'samples':>8s} {'seconds':>9s} "
          f"{'samples/s':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, family in PDES.items():
            samples = args.samples or DEFAULT_SAMPLES[name]
            path = Path(tmp) / f"{name}.h5"
            started = time.perf_counter()
            family.generate(path, samples=samples, seed=0)
            seconds = time.perf_counter() - started
            data = read_pde_file(path)
            grid = "×".join(map(str, data.spatial_shape))
            print(f"{name:10s} {grid:>10s} {data.frames:7d} {samples:8d} {seconds:9.2f} "
                  f"{samples / seconds:10.2f}")


if __name__ == "__main__":
    main()
