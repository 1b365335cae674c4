"""Deployment speed: the bit-op proxy against latency measured with onnxruntime on the CPU.

For each small space (Burgers-FNO, Darcy-UNet, Darcy-Transformer) and each quantization scheme
(``space.scheme``: ``paper`` = weights and inputs quantized, outputs float; ``integer`` = outputs
too, so onnxruntime can fuse integer kernels):

1. run a search with autoq's sampler (``--trials`` proposals, plus the paper's uniform regimes
   of ``--baselines`` queued first so that the set holds points near the float error), each in
   its own study of one SQLite file under ``--out``; a finished study is read, not re-run;
2. export the float model at full resolution (the space's largest scale) from raw input to raw
   output once per space: the reference of every ratio;
3. time every complete trial's deployable ONNX model (``<artifact>/deploy/model.onnx``, written
   by the trial) together with the float reference in interleaved rounds
   (:func:`autoq.deploy.latency.measure_latency`), onnxruntime CPU, at every
   ``--threads`` × ``--batches`` setting;
4. report per (space, scheme, threads, batch): each point's bit-op ratio to float and measured
   latency ratio to float, the Spearman rank correlation of the two over the Pareto set (what
   the issue asks) and over every measured trial, and, under 1.1× and 2× the float model's
   error at full resolution (the trials' ``float_reference``): the measured speed-up of the
   cheapest Pareto point by bit-ops (what ``autoq pick --max-ratio`` returns) and of the
   fastest measured point.

Outputs: a table on stdout, every figure in ``<out>/deploy_speed.json`` (with the machine, the
onnxruntime version and the load average before and after each timing block), and the plot
``--plot`` (default ``benchmarks/deploy_speed.png``): bit-op ratio vs measured latency ratio,
log-log, one panel per space, a marker per scheme, a colour per (threads, batch), the y = x
line. Measurements already in the JSON are reused unless ``--remeasure``.

Run from the repository root; data, float-model cache, trials and studies all go under
``--out``. Most of the time is float training and QAT: on 2 shared cores the four Darcy searches
of the defaults took 29 minutes and the timing 4; the Burgers-FNO searches take longer (one
float model per scale) and its float reference does not export yet (``torch.fft``), so that
space is searched but skipped, with the reason, when timing. ``AUTOQ_THREADS=1`` helps on a
loaded machine::

    .venv/bin/python benchmarks/deploy_speed.py                 # everything, defaults below
    .venv/bin/python benchmarks/deploy_speed.py --spaces darcy-unet-small --schemes integer \\
        --trials 4 --threads 1 --batches 1 --repeats 10 --out /tmp/ds

Figures and discussion: ``benchmarks/RESULTS.md``, "Deployment speed: bit-ops vs measured
latency".
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPACES = ("burgers-fno-small", "darcy-unet-small", "darcy-transformer-small")
SCHEMES = ("paper", "integer")
BASELINES = "w8a8@1.0,w8a8@0.5,w8a8@0.3"
BOUNDS = (1.1, 2.0)
STARTED = time.monotonic()


def log(message: str) -> None:
    """A progress line with the elapsed wall time and the 1-minute load average."""
    elapsed = time.monotonic() - STARTED
    print(f"[{elapsed / 60:6.1f} min, load {os.getloadavg()[0]:.2f}] {message}", flush=True)


@dataclass
class Point:
    """One measured trial of a search: its proxy and, per timing setting, its latency."""

    number: int
    scale: float
    bits: str
    baseline: str | None
    mse: float | None
    error_ratio: float | None
    deployed_error_ratio: float | None
    cost: float
    cost_ratio: float
    pareto: bool
    onnx: str
    check_failed: float | None = None
    """The export check's relative difference when it refused the trial (no error on
    record)."""
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    """``"T<threads>-B<batch>"`` → ``{median_s, spread_s, ratio, speedup}``."""


def setting_key(threads: int, batch: int) -> str:
    return f"T{threads}-B{batch}"


def bits_summary(bits: dict[str, Any]) -> str:
    """``{layer: [w, a] | "float"}`` as counts, most frequent first: ``w8a8×9 float×2``."""
    counts = collections.Counter(
        "float" if value == "float" else f"w{value[0]}a{value[1]}" for value in bits.values())
    return " ".join(f"{name}×{n}" for name, n in counts.most_common())


def parse_baselines(text: str) -> list[tuple[str, float]]:
    """``"w8a8@1.0,w4a8@0.5"`` → ``[("w8a8", 1.0), ("w4a8", 0.5)]``; empty text: none."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        regime, _, scale = item.partition("@")
        pairs.append((regime, float(scale)))
    return pairs


def search_payload(space: str, scheme: str, trials: int, out: Path) -> dict[str, Any]:
    """The bundled ``space`` under ``scheme``, named for this benchmark, its data under
    ``out``."""
    from autoq.search import load_spec

    payload = load_spec(space).model_dump(mode="json")
    payload["name"] = f"deploy-speed-{space}-{scheme}"
    payload["space"]["scheme"] = scheme
    payload["search"]["trials"] = trials
    payload["data"]["path"] = str((out / "data" / Path(payload["data"]["path"]).name).resolve())
    return payload


def run_one_search(payload: dict[str, Any], *, trials: int, baselines: list[tuple[str, float]],
                   storage: str, artifacts: Path) -> None:
    """Run (or resume, or just read) one search: ``baselines`` queued first, then autoq's
    sampler, ``trials + len(baselines)`` finished trials in all."""
    import optuna

    from autoq.search import execute, parse_spec, prepare_run
    from autoq.search.executors.plan import enqueue_baseline_grid

    spec = parse_spec(payload, source="deploy_speed")
    run = prepare_run(spec, name=spec.name, storage=storage, trials=trials + len(baselines))
    for regime, scale in baselines:
        enqueue_baseline_grid(run.study, spec, regimes=(regime,), scales=(scale,))
    if run.remaining == 0:
        log(f"{spec.name}: finished study reused ({run.done} trials)")
        return
    log(f"{spec.name}: {run.done} finished, running {run.remaining} more")

    def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        values = "" if trial.values is None else \
            f"mse {trial.values[0]:.3e}, cost {trial.values[1]:.3e}"
        log(f"{spec.name}: trial {trial.number} {trial.state.name} scale "
            f"{trial.params.get('scale')} {trial.user_attrs.get('baseline') or ''} {values}")

    execute(run, artifact_dir=artifacts.resolve(), callbacks=[progress])
    log(f"{spec.name}: done, {run.done} finished trials")


def float_reference(payload: dict[str, Any], out: Path) -> tuple[Path, float]:
    """The float full-resolution ONNX model of the space (exported once) and its bit-op
    cost."""
    from autoq.deploy.latency import export_float_reference
    from autoq.search import SearchSpace, parse_spec

    spec = parse_spec(payload, source="deploy_speed")
    space = SearchSpace(spec)
    cost = space.cost(space.regime("float", max(spec.space.scales))).total
    path = out / "float" / f"{payload['name'].rsplit('-', 1)[0]}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        log(f"exporting the float reference {path.name}")
        export_float_reference(spec, path)
    return path, cost


CHECK_FAILED = re.compile(r"output of (\S+model\.onnx) \(graph optimisations disabled\) "
                          r"differs from the torch solver's by (\S+) ")
"""The export check's refusal: the trial failed, but its ONNX model was written."""


def search_points(payload: dict[str, Any], storage: str, float_cost: float
                  ) -> tuple[list[Point], float]:
    """The trials of a search that have an ONNX model, and the float model's error at full
    resolution.

    Complete trials with a deployable model come with their error and may be picked. Trials
    that failed only because the export check refused their written ONNX graph (onnxruntime
    with optimisations disabled differs from the simulation by more than 1e-3) have no error
    on record; they are timed too (their bit-op cost is known before training) and count in
    ρ over all points, never in the picks."""
    from autoq.search import SearchSpace, load_study, pareto_front, parse_spec
    from autoq.search.records import trial_point

    name = payload["name"]
    study = load_study(name, storage=storage)
    space = SearchSpace(parse_spec(payload, source="deploy_speed"))
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    points = [trial_point(t) for t in trials.values()]
    complete = [p for p in points if p.complete]
    reference = next(float(p.details["float_reference"]) for p in complete)
    front = {p.number for p in pareto_front(complete)}
    found = []
    for p in points:
        deployable = p.details.get("deployable")
        onnx = Path(deployable) / "model.onnx" if deployable else None
        refused = CHECK_FAILED.search(p.error or "")
        if p.complete and onnx is not None and onnx.is_file() and p.mse is not None \
                and p.cost is not None:
            deployed = p.details.get("deployed_error")
            found.append(Point(
                number=p.number, scale=float(p.scale or 1.0), bits=bits_summary(p.bits),
                baseline=p.baseline, mse=p.mse, error_ratio=p.mse / reference,
                deployed_error_ratio=None if deployed is None else float(deployed) / reference,
                cost=p.cost, cost_ratio=p.cost / float_cost, pareto=p.number in front,
                onnx=str(onnx)))
        elif refused and Path(refused.group(1)).is_file():
            params = trials[p.number].params
            config = space.regime(p.baseline, params["scale"]) if p.baseline \
                else space.from_params(params)
            cost = space.cost(config).total
            found.append(Point(
                number=p.number, scale=float(params["scale"]), bits=bits_summary(p.bits),
                baseline=p.baseline, mse=None, error_ratio=None, deployed_error_ratio=None,
                cost=cost, cost_ratio=cost / float_cost, pareto=False, onnx=refused.group(1),
                check_failed=float(refused.group(2))))
        else:
            log(f"{name}: trial {p.number} ({p.state}) has no ONNX model; not timed")
    return found, reference


def measure(points: list[Point], reference: Path, *, threads: int, batch: int, warmup: int,
            repeats: int) -> dict[str, Any]:
    """Time every point with the float reference in the same rounds; fills each point's
    ``latency`` and returns the block's float timing and load averages."""
    from autoq.deploy.latency import measure_latency

    load_before = os.getloadavg()
    results, float_timing = measure_latency(
        {p.number: p.onnx for p in points}, reference, runtime="onnxruntime-cpu",
        threads=threads, batch=batch, warmup=warmup, repeats=repeats)
    load_after = os.getloadavg()
    for p in points:
        r = results[p.number]
        p.latency[setting_key(threads, batch)] = {
            "median_s": r.median_s, "spread_s": r.spread_s,
            "ratio": r.median_s / float_timing.median_s, "speedup": r.speedup}
    return {"float_median_s": float_timing.median_s, "float_spread_s": float_timing.spread_s,
            "runs": float_timing.runs, "load_before": list(load_before),
            "load_after": list(load_after)}


def spearman(xs: Sequence[float], ys: Sequence[float]) -> tuple[float | None, float | None]:
    """Spearman's ρ and its p-value; ``None`` with fewer than 3 points or a constant side."""
    from scipy.stats import spearmanr

    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None, None
    result = spearmanr(xs, ys)
    rho, p_value = float(result.statistic), float(result.pvalue)
    return (None, None) if math.isnan(rho) else (rho, p_value)


def pick(points: Iterable[Point], bound: float, key: str) -> dict[str, Any] | None:
    """Under ``bound`` × the float error: the cheapest Pareto point by bit-ops and the fastest
    measured point at setting ``key``, each with its measured speed-up."""
    within = [p for p in points if p.error_ratio is not None and p.error_ratio <= bound]
    if not within:
        return None
    # The cheapest trial under a bound is on the Pareto set by definition (autoq pick's answer).
    cheapest = min(within, key=lambda p: (p.cost, p.error_ratio or 0.0))
    fastest = min(within, key=lambda p: p.latency[key]["median_s"])

    def describe(p: Point) -> dict[str, Any]:
        return {"trial": p.number, "scale": p.scale, "bits": p.bits,
                "error_ratio": p.error_ratio, "deployed_error_ratio": p.deployed_error_ratio,
                "cost_ratio": p.cost_ratio, "latency_ratio": p.latency[key]["ratio"],
                "speedup": p.latency[key]["speedup"]}

    return {"cheapest": describe(cheapest), "fastest": describe(fastest)}


def summarise(points: list[Point], key: str) -> dict[str, Any]:
    """ρ over the Pareto set and over all measured points, and the picks of every bound."""
    front = [p for p in points if p.pareto]
    rho, p_value = spearman([p.cost_ratio for p in front],
                            [p.latency[key]["ratio"] for p in front])
    rho_all, p_all = spearman([p.cost_ratio for p in points],
                              [p.latency[key]["ratio"] for p in points])
    return {"pareto_points": len(front), "points": len(points), "rho_pareto": rho,
            "p_pareto": p_value, "rho_all": rho_all, "p_all": p_all,
            "picks": {str(bound): pick(points, bound, key) for bound in BOUNDS}}


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def pick_cell(entry: dict[str, Any] | None, which: str) -> str:
    if entry is None:
        return "none"
    p = entry[which]
    return f"#{p['trial']} {p['speedup']:.2f}×"


def print_tables(report: dict[str, Any]) -> None:
    """Per point (proxy vs measured at each setting), then per (space, scheme, setting)."""
    settings = report["settings"]
    for run in report["runs"]:
        print(f"\n{run['space']} · {run['scheme']}: float MSE at full resolution "
              f"{run['float_reference']:.3e}, float bit-ops {run['float_cost']:.3e}; "
              f"latency ratio = median / float median (same rounds); P: * Pareto, "
              f"x export check refused (no error on record)")
        head = (f"{'trial':>5} {'P':1} {'scale':>5} {'MSE/fl':>7} {'ORT/fl':>7} {'bitops/fl':>9} "
                + " ".join(f"{s:>9}" for s in settings) + "  bits")
        print(head)
        for p in sorted(run["points"], key=lambda p: p["cost"]):
            cells = " ".join(f"{p['latency'][s]['ratio']:9.3f}" for s in settings)
            mark = "*" if p["pareto"] else "x" if p.get("check_failed") else " "
            print(f"{p['number']:5d} {mark} {p['scale']:5.2f} "
                  f"{fmt(p['error_ratio'], '7.3f'):>7} "
                  f"{fmt(p['deployed_error_ratio'], '7.3f'):>7} "
                  f"{p['cost_ratio']:9.4f} {cells}  {p['bits']}"
                  + (f" ({p['baseline']})" if p["baseline"] else "")
                  + (f" [export check refused: {p['check_failed']:.2g}]"
                     if p.get("check_failed") else ""))
        floats = " ".join(f"{run['timing'][s]['float_median_s'] * 1e3:7.2f}ms" for s in settings)
        print(f"{'float':>5}   {1.0:5.2f} {'':7} {'':7} {1.0:9.4f} {floats}")
    print("\nsummary: ρ = Spearman(bit-op ratio, latency ratio); picks under 1.1× / 2× the float "
          "error: cheapest Pareto point by bit-ops, fastest measured point (trial, speed-up)")
    print(f"{'space':24} {'scheme':7} {'T':>2} {'B':>3} {'load':>9} {'n(P)':>5} {'ρ P':>6} "
          f"{'ρ all':>6} {'pick≤1.1':>12} {'fast≤1.1':>12} {'pick≤2':>12} {'fast≤2':>12}")
    for run in report["runs"]:
        for s in settings:
            summary, timing = run["summary"][s], run["timing"][s]
            load = f"{timing['load_before'][0]:.1f}/{timing['load_after'][0]:.1f}"
            picks = summary["picks"]
            threads, batch = s[1:].split("-B")
            print(f"{run['space']:24} {run['scheme']:7} {threads:>2} {batch:>3} {load:>9} "
                  f"{summary['points']:>2}({summary['pareto_points']}) "
                  f"{fmt(summary['rho_pareto']):>6} {fmt(summary['rho_all']):>6} "
                  f"{pick_cell(picks['1.1'], 'cheapest'):>12} "
                  f"{pick_cell(picks['1.1'], 'fastest'):>12} "
                  f"{pick_cell(picks['2.0'], 'cheapest'):>12} "
                  f"{pick_cell(picks['2.0'], 'fastest'):>12}")


def plot(report: dict[str, Any], path: Path) -> None:
    """Bit-op ratio vs latency ratio, log-log, one panel per space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spaces = list(dict.fromkeys(run["space"] for run in report["runs"]))
    settings = report["settings"]
    colours = dict(zip(settings, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    markers = {"paper": "o", "integer": "s"}
    figure, axes = plt.subplots(1, len(spaces), figsize=(5.2 * len(spaces), 4.8), squeeze=False)
    for ax, space in zip(axes[0], spaces, strict=True):
        low, high = 1.0, 1.0
        for run in (r for r in report["runs"] if r["space"] == space):
            for s in settings:
                for pareto in (True, False):
                    chosen = [p for p in run["points"] if p["pareto"] is pareto]
                    if not chosen:
                        continue
                    xs = [p["cost_ratio"] for p in chosen]
                    ys = [p["latency"][s]["ratio"] for p in chosen]
                    low, high = min(low, *xs, *ys), max(high, *xs, *ys)
                    ax.scatter(xs, ys, marker=markers.get(run["scheme"], "^"), s=36,
                               facecolors=colours[s] if pareto else "none",
                               edgecolors=colours[s], linewidths=1.0, alpha=0.85)
        ax.plot([low / 1.5, high * 1.5], [low / 1.5, high * 1.5], color="grey", lw=1, ls="--")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.axhline(1 / 3, color="black", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(space)
        ax.set_xlabel("bit-op cost / float full resolution")
        ax.set_ylabel("measured latency / float full resolution")
        ax.grid(True, which="both", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker=m, color="black", label=f"scheme {scheme}")
               for scheme, m in markers.items()]
    handles += [Line2D([], [], ls="", marker="o", color=c,
                       label=f"{s[1:].replace('-B', ' thread(s), batch ')}")
                for s, c in colours.items()]
    handles += [Line2D([], [], ls="", marker="o", markerfacecolor="none", color="black",
                       label="not on the Pareto set, or no error on record"),
                Line2D([], [], ls="--", color="grey", label="y = x (proxy exact)"),
                Line2D([], [], ls=":", color="black", label="3× faster than float (target)")]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5),
                  fontsize="small", frameon=False)
    figure.suptitle("onnxruntime CPU latency vs bit-op proxy (ratios to the float model at "
                    "full resolution)")
    figure.tight_layout(rect=(0, 0.1, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def read_runs(path: Path) -> list[dict[str, Any]]:
    """The runs stored in the JSON at ``path`` (none when it does not exist)."""
    return list(json.loads(path.read_text())["runs"]) if path.is_file() else []


def write_run(path: Path, run: dict[str, Any]) -> None:
    """Store ``run`` in the JSON at ``path``, replacing the run of its (space, scheme)."""
    runs = [r for r in read_runs(path)
            if (r["space"], r["scheme"]) != (run["space"], run["scheme"])]
    order = {(space, scheme): i for i, (space, scheme) in
             enumerate((a, b) for a in SPACES for b in SCHEMES)}
    runs = sorted([*runs, run], key=lambda r: order.get((r["space"], r["scheme"]), len(order)))
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"runs": runs}, indent=1))
    temporary.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", nargs="+", default=list(SPACES))
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    parser.add_argument("--trials", type=int, default=6,
                        help="autoq-sampler trials per search (baselines come on top)")
    parser.add_argument("--baselines", default=BASELINES,
                        help="paper regimes queued first, REGIME@SCALE,… ('' for none)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("artifacts/deploy_speed"))
    parser.add_argument("--plot", type=Path, default=Path("benchmarks/deploy_speed.png"))
    parser.add_argument("--remeasure", action="store_true",
                        help="time again what the JSON already holds")
    parser.add_argument("--report-only", action="store_true",
                        help="print the tables and draw the plot from the JSON; no search, "
                             "no timing")
    args = parser.parse_args(argv)

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "deploy_speed.json"
    settings = [setting_key(t, b) for t in args.threads for b in args.batches]
    if args.report_only:
        stored = {(r["space"], r["scheme"]): r for r in read_runs(json_path)}
        runs = [stored[space, scheme] for space in args.spaces for scheme in args.schemes
                if (space, scheme) in stored]
        report_only = {"settings": settings, "runs": runs}
        print_tables(report_only)
        plot(report_only, args.plot)
        log(f"wrote {args.plot} from {json_path}")
        return 0
    # Float models trained once per space and scale, shared by both schemes, kept with the run.
    os.environ.setdefault("AUTOQ_CACHE_DIR", str(out / "float-cache"))
    storage = f"sqlite:///{out / 'deploy_speed.db'}"
    baselines = parse_baselines(args.baselines)
    log(f"out {out}, storage {storage}, float cache {os.environ['AUTOQ_CACHE_DIR']}")

    payloads = {(space, scheme): search_payload(space, scheme, args.trials, out)
                for space in args.spaces for scheme in args.schemes}
    for payload in payloads.values():
        run_one_search(payload, trials=args.trials, baselines=baselines, storage=storage,
                       artifacts=out / "trials")

    import onnxruntime

    from autoq.deploy.latency import machine_description

    done = {(r["space"], r["scheme"]): r for r in read_runs(json_path)}
    about = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
             "machine": machine_description(), "onnxruntime": onnxruntime.__version__,
             "trials": args.trials, "baselines": args.baselines, "repeats": args.repeats,
             "warmup": args.warmup}
    report: dict[str, Any] = {"settings": settings, "runs": []}
    references: dict[str, tuple[Path, float]] = {}
    unavailable: dict[str, str] = {}
    for (space, scheme), payload in payloads.items():
        if space not in references and space not in unavailable:
            try:
                references[space] = float_reference(payload, out)
            except Exception as error:  # reported; the other spaces go on
                unavailable[space] = f"{type(error).__name__}: {error}"
        if space in unavailable:
            log(f"{space} {scheme}: not timed: the float reference did not export "
                f"({unavailable[space][:200]})")
            continue
        onnx_path, float_cost = references[space]
        points, float_error = search_points(payload, storage, float_cost)
        old = done.get((space, scheme))
        old_points = {p["number"]: p for p in old["points"]} if old else {}
        timing: dict[str, Any] = {}
        for threads in args.threads:
            for batch in args.batches:
                key = setting_key(threads, batch)
                if (old and not args.remeasure and key in old["timing"]
                        and all(key in old_points.get(p.number, {}).get("latency", {})
                                for p in points)):
                    for p in points:
                        p.latency[key] = old_points[p.number]["latency"][key]
                    timing[key] = old["timing"][key]
                    log(f"{space} {scheme} {key}: reused from {json_path.name}")
                    continue
                log(f"{space} {scheme} {key}: timing {len(points)} models + float, "
                    f"{args.repeats} rounds")
                timing[key] = measure(points, onnx_path, threads=threads, batch=batch,
                                      warmup=args.warmup, repeats=args.repeats)
                timing[key]["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        run = {"space": space, "scheme": scheme, "study": payload["name"], **about,
               "float_reference": float_error, "float_cost": float_cost,
               "float_onnx": str(onnx_path), "timing": timing,
               "points": [asdict(p) for p in points],
               "summary": {key: summarise(points, key) for key in settings}}
        report["runs"].append(run)
        # Written after every block (merged with what another invocation wrote meanwhile):
        # an interrupted run keeps what it measured.
        write_run(json_path, run)
    print_tables(report)
    plot(report, args.plot)
    log(f"wrote {json_path} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
