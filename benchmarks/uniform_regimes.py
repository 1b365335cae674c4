"""The paper's uniform regimes × scale factors on the `small` Burgers-FNO and Darcy-UNet spaces.

Usage: python benchmarks/uniform_regimes.py [--spaces NAME|FILE.yaml ...] [--plot-dir benchmarks]
For each space: float, w8a16, w8a8, w4a8, w4a4 at scales 1.0, 0.7, 0.5, 0.3, 0.2 — each a real
calibration + QAT run from the cached float model at that scale — printed as a table of MSE and
bit-op cost, and plotted cost vs MSE on log scales (the paper's Figure 4). The regimes run in
the paper's setting (first and last layers float, per-tensor weights, bilinear resizes, FFTs)
whatever the space's own defaults (``autoq.search.spec.paper_setting``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autoq.cost import PAPER_SCALES, REGIMES
from autoq.device import configure_threads
from autoq.quant import quiet_aimet_logs
from autoq.search import TrialPoint, TrialRunner, load_spec, pareto_front
from autoq.search.report import plot_front
from autoq.search.spec import paper_setting

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["burgers-fno-small", "darcy-unet-small"])
    parser.add_argument("--plot-dir", type=Path, default=ROOT / "benchmarks")
    args = parser.parse_args()
    configure_threads()
    quiet_aimet_logs()
    for name in args.spaces:
        spec = paper_setting(load_spec(name if name.endswith(".yaml")
                                       else ROOT / "search_spaces" / f"{name}.yaml"))
        runner = TrialRunner(spec)
        points: list[TrialPoint] = []
        print(f"\n{spec.name}: validation MSE / bit-op cost")
        columns = " ".join(f"{'scale ' + format(s, 'g'):>22s}" for s in PAPER_SCALES)
        print(f"{'regime':8s} {columns}")
        for regime in REGIMES:
            cells = []
            for scale in PAPER_SCALES:
                result = runner.run(runner.space.regime(regime, scale))
                points.append(TrialPoint(number=len(points), state="COMPLETE", mse=result.mse,
                                         cost=result.cost.total, scale=scale, bits={},
                                         baseline=regime))
                cells.append(f"{result.mse:.2e} / {result.cost.total:.2e}")
            print(f"{regime:8s} " + " ".join(f"{c:>22s}" for c in cells), flush=True)
        front = pareto_front(points)
        print("Pareto-optimal: " + ", ".join(f"{p.baseline}@{p.scale:g}" for p in front))
        out = plot_front(points, front, args.plot_dir / f"uniform_regimes_{spec.name}.png",
                         title=f"{spec.name}: uniform regimes × scales")
        print(f"plot: {out}")


if __name__ == "__main__":
    main()
