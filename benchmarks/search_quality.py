"""Search quality side by side: the paper's grid, generic samplers, AIMET AMP and autoq's sampler.

Usage:
    python benchmarks/search_quality.py [--spaces burgers-fno-small darcy-unet-small]
        [--budget 25] [--seeds 0 1 2] [--methods grid random nsga2 tpe amp autoq]
        [--amp-points 5] [--plot-dir benchmarks]

Every method searches the same space with the same float model per scale (trained once, shared)
and the same trial (calibration + QAT + validation MSE + bit-op cost), at the same budget of
trials. Per method it prints the hypervolume (log10 cost × log10 MSE, one fixed reference point
per space: the float model's cost at full resolution and 10 × its MSE), the cheapest cost at MSE
≤ 1.1× and ≤ 2× the float full-resolution MSE, trials and wall time — median and range over
seeds — and plots every method's front (first seed) on one log-log figure.

The paper's grid is its regimes at its scale factors (those in the space), 25 trials. AIMET AMP
runs per paper scale factor (brute force, whole curve, score −MSE) on the float model; its
calibration-only evaluations are counted, and then up to ``--amp-points`` points of its curves
(spread over the cost range) are QAT-fine-tuned and scored like every other trial. AMP's own
evaluations are far more than the budget for per-layer spaces; the table shows both counts. Last,
the space's cost floor per scale shows what any method could reach at all.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import optuna
import torch

from autoq.cost import PAPER_SCALES, REGIMES
from autoq.device import configure_threads
from autoq.precision import TrialConfig
from autoq.quant import quiet_aimet_logs
from autoq.search import (
    SearchSpec,
    TrialPoint,
    TrialRunner,
    enqueue_baseline_grid,
    hypervolume,
    load_spec,
    operating_point,
    pareto_front,
    prepare_run,
    study_points,
)
from autoq.search.executors.local import LocalExecutor
from autoq.search.report import bits_summary, save_cost_mse_figure
from autoq.train import evaluate

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("grid", "random", "nsga2", "tpe", "amp", "autoq")
PAPER_CANDIDATES = [(16, 16), (8, 16), (8, 8), (4, 8), (4, 4)]


def run_sampler(method: str, spec: SearchSpec, runner: TrialRunner, *, budget: int, seed: int,
                storage: str) -> tuple[list[TrialPoint], int, float]:
    """A search with one of Optuna's samplers, autoq's, or the paper's grid (its regimes at its
    scale factors, enqueued; the budget is the grid's size). Returns the points, the trials and
    the search's wall time from its trials' timestamps (so a search finished by an earlier run
    on the same ``--storage`` is reported as it ran, not re-run)."""
    sampler = "random" if method == "grid" else method
    variant = spec.model_copy(update={"search": spec.search.model_copy(
        update={"sampler": sampler, "seed": seed, "trials": budget})})
    name = f"{spec.name}-{method}-seed{seed}"
    if method == "grid":
        scales = [s for s in PAPER_SCALES if s in spec.space.scales]
        budget = len(REGIMES) * len(scales)
    run = prepare_run(variant, name=name, storage=storage, trials=budget)
    if method == "grid":
        enqueue_baseline_grid(run.study, variant, scales=scales)
    # The shared runner keeps the data and the float models in memory across all searches.
    if run.remaining:
        LocalExecutor(runner=runner).run(run, artifact_dir=None, callbacks=[], should_stop=None)
    study = run.study
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    wall = (max(t.datetime_complete for t in trials)
            - min(t.datetime_start for t in trials)).total_seconds()
    return study_points(study), budget, wall


def run_amp(spec: SearchSpec, runner: TrialRunner, *, points: int) -> tuple[list[TrialPoint],
                                                                            int]:
    """AIMET AMP per scale, then QAT on up to ``points`` of its curves' points.

    AMP's brute-force phase costs 2·layers·(candidates − 1) evaluations per scale, so it runs at
    the paper's scales with the paper's regimes as candidates, plus the space's narrowest
    (weight, activation) pair so that its curve reaches the space's cheapest corner."""
    from autoq.quant import amp_front

    space = runner.space
    problem = runner.problem
    layers = [layer for group in space.groups.values() for layer in group]
    narrowest = (min(spec.space.weight_bits), min(spec.space.act_bits))
    candidates = list(dict.fromkeys([*PAPER_CANDIDATES, narrowest]))
    curve = []
    evaluations = 0
    for scale in [s for s in PAPER_SCALES if s in spec.space.scales]:
        solver = runner.float_model(scale).solver
        windows = problem.train_windows
        chosen = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0))
        chosen = chosen[:max(1, round(spec.qat.calibration_fraction * len(windows)))]

        def batches(solver=solver, chosen=chosen, windows=windows):
            with torch.no_grad():
                for batch in chosen.split(spec.qat.batch_size):
                    yield solver.normalise(solver.to_network(windows.batch(batch)[0]))

        def score(network, solver=solver) -> float:
            original = solver.network
            solver.network = network
            try:
                return -evaluate(solver, problem.val_windows)
            finally:
                solver.network = original

        result = amp_front(solver.network,
                           dummy_input=torch.zeros(1, windows.in_channels, *solver.net_shape),
                           calibration_batches=batches, score=score,
                           candidates=candidates, layers=layers)
        evaluations += result.evaluations
        curve += [TrialConfig.for_model(space.reference_network, scale=scale, bits=point.bits)
                  for point in result.curve]
    # QAT on points spread evenly over the curves' cost range, cheapest to dearest.
    curve.sort(key=lambda config: space.cost(config).total)
    picked = dict.fromkeys(round(k * (len(curve) - 1) / max(1, points - 1))
                           for k in range(min(points, len(curve))))
    results = []
    for number, index in enumerate(picked):
        outcome = runner.run(curve[index], seed=number)
        results.append(TrialPoint(number=number, state="COMPLETE", mse=outcome.mse,
                                  cost=outcome.cost.total, scale=curve[index].scale,
                                  bits=curve[index].to_json()["bits"]))
    return results, evaluations + len(results)


def floor_report(spec: SearchSpec, runner: TrialRunner, bounds: dict[float, float | None]
                 ) -> list[str]:
    """What the space allows at all: per scale, the cost of its cheapest configuration (every
    group at the lowest bitwidths) and the float model's MSE there; per MSE bound, half the
    grid's cheapest cost beside the cheapest floor among the scales whose float model meets
    the bound (QAT moves a model's MSE by a few per cent at most, so those are the scales a
    configuration under the bound can run at)."""
    space = runner.space
    lowest = (min(spec.space.weight_bits), min(spec.space.act_bits))
    floors = {scale: space.cost(space.config(scale, dict.fromkeys(space.groups, lowest))).total
              for scale in spec.space.scales}
    float_mse = {scale: runner.float_model(scale).val_mse for scale in spec.space.scales}
    full = float_mse[max(spec.space.scales)]
    per_scale = "; ".join(f"{scale:g}: {floors[scale]:.3g} / {float_mse[scale]:.3g}"
                          for scale in floors)
    lines = [f"cost floor (w{lowest[0]}a{lowest[1]} everywhere) / float MSE per scale: "
             f"{per_scale}"]
    for factor, grid_cost in bounds.items():
        if grid_cost is None:
            continue
        reachable = [floors[s] for s in floors if float_mse[s] <= factor * full]
        floor = f"{min(reachable):.3g}" if reachable else "none"
        lines.append(f"MSE ≤ {factor:g}× float: half the grid's cheapest = {grid_cost / 2:.3g}; "
                     f"lowest floor at a scale whose float model meets the bound = {floor}")
    return lines


def summarise(values: Sequence[float]) -> str:
    """Median and range of a metric over seeds."""
    finite = [v for v in values if v is not None]
    if not finite:
        return "—"
    if len(finite) == 1:
        return f"{finite[0]:.3g}"
    return f"{statistics.median(finite):.3g} [{min(finite):.3g}, {max(finite):.3g}]"


def plot_fronts(fronts: dict[str, list[TrialPoint]], float_point: tuple[float, float],
                path: Path, title: str) -> Path:
    """Every method's front on one log-log figure, with the float model at full resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    for method, front in fronts.items():
        if front:
            ax.step([p.cost for p in front], [p.mse for p in front], where="post", lw=1.4,
                    marker="o", ms=3.5, label=method)
    ax.scatter([float_point[0]], [float_point[1]], marker="*", s=180, c="gold",
               edgecolors="k", zorder=5, label="float, full resolution")
    return save_cost_mse_figure(fig, ax, path, title=title)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["burgers-fno-small", "darcy-unet-small"])
    parser.add_argument("--budget", type=int, default=25, help="trials per method and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--amp-points", type=int, default=5,
                        help="AMP curve points fine-tuned with QAT")
    parser.add_argument("--plot-dir", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--storage", help="SQLAlchemy URL (default: a temporary SQLite file); "
                        "searches already finished there are read, not re-run")
    args = parser.parse_args()
    threads = configure_threads()
    quiet_aimet_logs()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"search quality, budget {args.budget} trials, seeds {args.seeds}, {threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        storage = args.storage or f"sqlite:///{tmp}/search_quality.db"
        for name in args.spaces:
            spec = load_spec(name if name.endswith(".yaml")
                             else ROOT / "search_spaces" / f"{name}.yaml")
            runner = TrialRunner(spec)
            float_model = runner.float_model(max(spec.space.scales))
            float_cost = runner.space.cost(runner.space.regime("float", 1.0)).total
            reference = (float_cost, 10 * float_model.val_mse)
            print(f"\n{name}: float model at full resolution: MSE {float_model.val_mse:.3e}, "
                  f"cost {float_cost:.3e}; hypervolume reference (cost, MSE) = "
                  f"({reference[0]:.3e}, {reference[1]:.3e})")
            rows, fronts, grid_cheapest = [], {}, {1.1: None, 2.0: None}
            for method in args.methods:
                seeds = [0] if method in ("grid", "amp") else args.seeds
                volumes, cheap11, cheap2, walls, counts = [], [], [], [], []
                for seed in seeds:
                    if method == "amp":
                        started = time.perf_counter()
                        points, count = run_amp(spec, runner, points=args.amp_points)
                        wall = time.perf_counter() - started
                    else:
                        points, count, wall = run_sampler(method, spec, runner,
                                                          budget=args.budget, seed=seed,
                                                          storage=storage)
                    walls.append(wall)
                    counts.append(count)
                    volumes.append(hypervolume(points, reference))
                    for bound, sink in ((1.1, cheap11), (2.0, cheap2)):
                        chosen = operating_point(points, bound * float_model.val_mse)
                        sink.append(None if chosen is None else chosen.cost)
                    if seed == seeds[0]:
                        fronts[method] = pareto_front(points)
                if method == "grid":
                    grid_cheapest = {1.1: cheap11[0], 2.0: cheap2[0]}
                rows.append((method, summarise(counts), summarise(volumes), summarise(cheap11),
                             summarise(cheap2), summarise(walls)))
                print(f"  {method:7s} done: hypervolume {summarise(volumes)}", flush=True)
            header = ("method", "trials", "hypervolume", "cost @ MSE≤1.1×float",
                      "cost @ MSE≤2×float", "wall s")
            widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
            for row in [header, *rows]:
                print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
            for method, front in fronts.items():
                print(f"  {method} front (first seed): " + "; ".join(
                    f"{p.cost:.2e}/{p.mse:.2e}@{p.scale:g} {bits_summary(p.bits)}"
                    for p in front))
            for line in floor_report(spec, runner, grid_cheapest):
                print("  " + line)
            out = plot_fronts(fronts, (float_cost, float_model.val_mse),
                              args.plot_dir / f"search_quality_{spec.name}.png",
                              title=f"{name}: fronts at {args.budget} trials")
            print(f"  plot: {out}")


if __name__ == "__main__":
    main()
