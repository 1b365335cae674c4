"""The ``autoq`` command line.

Building the parser imports nothing heavy: each command imports what it needs when it runs, so
``autoq --help`` and the read commands (``studies``, ``trials``, ``pareto``, ``pick``) start
without torch, AIMET, DeepSpeed or Ray.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoq import __version__
from autoq.errors import AutoqError

if TYPE_CHECKING:
    import optuna
    from tqdm import tqdm

    from autoq.search.executors.plan import SearchRun
    from autoq.search.spec import SearchSpec


def _cmd_datagen(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from autoq.data import get_family

    family = get_family(args.pde)
    samples = args.samples if args.samples is not None else family.default_samples
    options = {} if args.frames is None else {"frames": args.frames}
    with tqdm(total=samples, desc=f"{family.name} → {args.out.name}", unit="sample") as bar:
        out = family.generate(
            args.out, samples=samples, resolution=args.resolution, seed=args.seed, progress=bar,
            **options,
        )
    print(describe_data_file(out))
    return 0


def describe_data_file(path: Path) -> str:
    """A short human summary of a data file: family, shapes, value range."""
    from autoq.data import read_pde_file

    data = read_pde_file(path)
    lines = [
        f"{path}: {data.pde}, {data.samples} samples, {data.frames} frames, "
        f"grid {'×'.join(map(str, data.spatial_shape))}, {data.fields} field(s)",
        f"  values in [{data.trajectories.min():.4g}, {data.trajectories.max():.4g}]",
    ]
    if data.coefficients is not None:
        lines.append(f"  coefficients in [{data.coefficients.min():.4g}, "
                     f"{data.coefficients.max():.4g}]")
    if data.attrs:
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in data.attrs.items()))
    return "\n".join(lines)


def _add_datagen(sub: argparse._SubParsersAction) -> None:
    from autoq.data import PDES

    p = sub.add_parser("datagen", help="generate a PDE data set in its public HDF5 layout")
    p.add_argument("pde", choices=sorted(PDES))
    p.add_argument("--out", type=Path, required=True,
                   help="HDF5 file to write; for ns2d a directory receives PDEArena's "
                        "train/valid/test files (a .h5 path: one file holding the three)")
    p.add_argument("--samples", type=int, help="trajectories (default: the public count)")
    p.add_argument("--resolution", type=int, help="grid points per axis (default: public)")
    p.add_argument("--frames", type=int, help="saved time frames (default: public)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_cmd_datagen)


def _importable_working_directory() -> None:
    """Let a space's ``model.factory`` name a module in the working directory, as ``python``
    run from there would (a console script's import path starts at its own folder)."""
    import os

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _cmd_cost(args: argparse.Namespace) -> int:
    import json

    from autoq.cost import format_cost_table, regime_costs
    from autoq.search.setup import geometry
    from autoq.search.spec import load_spec

    _importable_working_directory()
    spec = load_spec(args.spec)
    shape = geometry(spec)
    costs = regime_costs(
        spec.model, data_shape=shape.data_shape, in_channels=shape.in_channels,
        out_channels=shape.out_channels, scales=spec.space.scales,
        first_last_float=spec.space.first_last_float, resample=spec.space.resample,
    )
    if args.json:
        print(json.dumps({regime: {str(scale): {"total": report.total,
                                                "layers": report.to_json()["layers"]}
                                   for scale, report in by_scale.items()}
                          for regime, by_scale in costs.items()}, indent=2))
    else:
        print(f"{spec.name}: {spec.model.title} on {spec.data.layout} "
              f"{'×'.join(map(str, shape.data_shape))}, {shape.in_channels} → "
              f"{shape.out_channels} channels; bit operations per forward pass\n")
        print(format_cost_table(costs))
        print(f"\n{_paper_measure(spec)}")
    return 0


def _paper_measure(spec: SearchSpec) -> str:
    """The float model's FLOPs as the paper's Table 2 counts them (DeepSpeed's profiler, batch
    1, full resolution), beside Table 2's figure for the same PDE and architecture."""
    from autoq.cost import PAPER_MFLOPS, deepspeed_flops
    from autoq.search.space import SearchSpace

    space = SearchSpace(spec)
    flops = deepspeed_flops(space.reference_network, data_shape=space.geometry.data_shape,
                            in_channels=space.geometry.in_channels)
    line = f"float model: {flops / 1e6:.1f} MFLOPs as DeepSpeed counts them (Table 2's measure)"
    paper = PAPER_MFLOPS.get(spec.data.pde or "", {}).get(getattr(spec.model, "arch", ""))
    return line if paper is None else f"{line}; the paper's Table 2: {paper} MFLOPs"


def _add_cost(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cost", help="bit-op cost of the paper's uniform regimes, per layer")
    p.add_argument("spec", help="search space YAML, or a bundled space's name")
    p.add_argument("--json", action="store_true", help="{regime: {scale: {total, layers}}}")
    p.set_defaults(run=_cmd_cost)


def _quiet_libraries() -> None:
    """Keep the terminal for autoq's own progress: the libraries a search runs log warnings
    only (their warnings, as Python warnings, still show)."""
    import logging

    import optuna

    from autoq.quant import quiet_aimet_logs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet_aimet_logs()
    for name in ("DeepSpeed", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _storage_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="SQLAlchemy URL (default: $AUTOQ_STORAGE or "
                                     "sqlite:///autoq.db)")


def _progress_callback(bar: tqdm) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """After each trial: advance the bar, show the front's ends, print a failed trial's reason."""
    from optuna.trial import TrialState

    from autoq.search import pareto_front, study_points
    from autoq.search.records import ERROR_ATTR

    def update(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            reason = trial.user_attrs.get(ERROR_ATTR, "its process stopped responding")
            bar.write(f"trial {trial.number} failed: {reason}")
        front = pareto_front(study_points(study))
        bar.update()
        if front:
            best, cheapest = front[-1], front[0]
            bar.set_postfix_str(f"front {len(front)} pts | best MSE {best.mse:.2e} @ "
                                f"{best.cost:.2e} | cheapest {cheapest.cost:.2e} @ MSE "
                                f"{cheapest.mse:.2e}")
    return update


def _run_search(spec: Any, *, name: str | None, storage: str | None, trials: int | None,
                executor: str | None = None, ray_address: str | None = None,
                baseline_regimes: Sequence[str] = ()) -> tuple[SearchRun, int, int]:
    """Run (or resume) a search with a progress bar; returns the run, how many trials this call
    ran and how many of those completed."""
    from optuna.trial import TrialState
    from tqdm import tqdm

    from autoq.search.executors import ExecutorOptions
    from autoq.search.executors.plan import execute, prepare_run
    from autoq.search.storage import storage_url
    from autoq.settings import get_settings

    settings = get_settings()
    run = prepare_run(spec, name=name, storage=storage, trials=trials,
                      baseline_regimes=baseline_regimes)
    done, before = run.done, len(run.study.get_trials(deepcopy=False))
    print(f"search {run.study.study_name!r} in {storage_url(storage)}: {done} of {run.budget} "
          f"trials done" + (f", {run.queued} baseline trials queued" if run.queued else ""))
    with tqdm(total=run.budget, initial=min(done, run.budget), desc="trials", unit="trial") as bar:
        execute(run, executor=executor,
                options=ExecutorOptions(ray_address=ray_address or settings.ray_address),
                artifact_dir=settings.artifact_dir.resolve(),
                callbacks=[_progress_callback(bar)])
    ran = [t for t in run.study.get_trials(deepcopy=False)[before:]
           if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    return run, len(ran), sum(t.state == TrialState.COMPLETE for t in ran)


def _cmd_search(args: argparse.Namespace) -> int:
    from autoq.search import load_spec

    _quiet_libraries()
    _importable_working_directory()
    spec = load_spec(args.spec)
    run, ran, completed = _run_search(
        spec, name=args.name, storage=args.storage, trials=args.trials, executor=args.executor,
        ray_address=args.ray_address,
        baseline_regimes=_all_regimes() if args.baseline_grid else ())
    print(_pareto_text(run.study))
    if completed or not ran:
        return 0
    print(f"autoq: error: no trial of this run of {run.study.study_name!r} completed; "
          f"`autoq trials {run.study.study_name}` lists each trial's error", file=sys.stderr)
    return 1


def _all_regimes() -> tuple[str, ...]:
    from autoq.cost import REGIMES

    return tuple(REGIMES)


def _add_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="run or resume a search")
    p.add_argument("spec", help="search space YAML, or a bundled space's name "
                                "(e.g. burgers-fno-small)")
    p.add_argument("--name", help="study name (default: the spec's name)")
    _storage_arg(p)
    p.add_argument("--trials", type=int, help="budget of finished trials (default: the spec's)")
    p.add_argument("--executor", help="a registered executor: local, ray (default: the spec's)")
    p.add_argument("--ray-address", help="join this Ray cluster (executor ray; default: "
                                         "$AUTOQ_RAY_ADDRESS)")
    p.add_argument("--baseline-grid", action="store_true",
                   help="also run the paper's uniform grid (5 regimes × the space's scales)")
    p.set_defaults(run=_cmd_search)


def _pareto_text(study: optuna.Study) -> str:
    from autoq.search import default_reference, hypervolume, pareto_front, study_points
    from autoq.search.records import cost_objective_name
    from autoq.search.report import pareto_table
    from autoq.search.results import float_reference

    points = study_points(study)
    front = pareto_front(points)
    complete = sum(p.complete for p in points)
    if not front:
        if complete:
            return (f"search {study.study_name!r}: none of its {complete} complete trials meets "
                    f"the search's constraints")
        return f"search {study.study_name!r}: no complete trials yet"
    reference = default_reference(points)
    volume = hypervolume(points, reference)
    objective = cost_objective_name(study.metric_names)
    lines = [f"Pareto set of {study.study_name!r}: {len(front)} of {complete} complete trials "
             f"(hypervolume {volume:.3f} in log10 space, reference {objective} "
             f"{reference[0]:.3e}, MSE {reference[1]:.3e})",
             pareto_table(front, reference_mse=float_reference(points), objective=objective)]
    return "\n".join(lines)


def _cost_words(cost: float | None, objective: str) -> str:
    """A trial's cost as a sentence reads it: ``cost 6.035e+07 bit-ops`` or ``latency 0.312×
    the float model's``."""
    from autoq.search.records import LATENCY_OBJECTIVE

    if cost is None:
        return "no cost"
    if objective == LATENCY_OBJECTIVE:
        return f"latency {cost:.3f}× the float model's"
    return f"cost {cost:.3e} bit-ops"


def _cmd_pareto(args: argparse.Namespace) -> int:
    import json

    from autoq.search import (
        default_reference,
        hypervolume,
        load_study,
        pareto_front,
        study_points,
    )
    from autoq.search.records import cost_objective_name
    from autoq.search.report import plot_front

    study = load_study(args.name, storage=args.storage)
    points = study_points(study)
    front = pareto_front(points)
    if args.json:
        reference = default_reference(points) if front else None
        print(json.dumps({
            "search": study.study_name,
            "pareto": [p.to_json() for p in front],
            "hypervolume": hypervolume(points, reference) if reference else None,
            "reference": reference,
        }, indent=2))
    else:
        print(_pareto_text(study))
    if args.plot:
        out = plot_front(points, front, args.plot, x_axis=args.x_axis,
                         title=f"{study.study_name}: {args.x_axis} vs MSE",
                         objective=cost_objective_name(study.metric_names))
        print(f"plot written to {out}")
    return 0


def _add_pareto(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="the Pareto set of a search, sorted by cost")
    p.add_argument("name", help="search (study) name")
    _storage_arg(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", type=Path, help="write a log-log cost vs MSE plot (PNG)")
    p.add_argument("--x-axis", choices=["cost", "latency"], default="cost",
                   help="the plot's x-axis: bit-op cost, or the latency `autoq latency` "
                        "measured (timed trials only)")
    p.set_defaults(run=_cmd_pareto)


def _cmd_pick(args: argparse.Namespace) -> int:
    import json

    from autoq.search import best_mse_point, load_study, operating_point, study_points
    from autoq.search.records import (
        DEPLOYABLE_ATTR,
        DEPLOYED_ERROR_ATTR,
        LATENCY_ATTR,
        cost_objective_name,
    )
    from autoq.search.report import bits_summary
    from autoq.search.results import error_bound

    study = load_study(args.name, storage=args.storage)
    points = study_points(study)
    bound = error_bound(points, max_mse=args.max_mse, max_ratio=args.max_ratio)
    asked = (f"MSE ≤ {bound:g}" if args.max_ratio is None else
             f"MSE ≤ {args.max_ratio:g} × float = {bound:.3e}")
    chosen = operating_point(points, bound)
    if chosen is None:
        best = best_mse_point(points)
        if args.json:
            print(json.dumps({"operating_point": None,
                              "best_mse": best.to_json() if best else None}, indent=2))
        else:
            print(f"no trial of {study.study_name!r} has {asked}; "
                  + (f"the best is trial {best.number}: MSE {best.mse:.3e} at cost "
                     f"{best.cost:.3e}" if best else "no trial is complete yet"))
        return 1
    if args.json:
        print(json.dumps({"operating_point": chosen.to_json()}, indent=2))
    else:
        rank = "" if chosen.rank is None else f", rank {chosen.rank:g}"
        objective = cost_objective_name(study.metric_names)
        print(f"cheapest trial with {asked}: trial {chosen.number}, "
              f"{_cost_words(chosen.cost, objective)}, MSE {chosen.mse:.3e}, "
              f"scale {chosen.scale:g}{rank}, {bits_summary(chosen.bits)}")
        for layer, bits in chosen.bits.items():
            print(f"  {layer:40s} {bits if bits == 'float' else f'w{bits[0]}a{bits[1]}'}")
        details = chosen.details
        if "artifact" in details:
            print(f"  artifact: {details['artifact']}")
        if DEPLOYABLE_ATTR in details:
            deployed = details.get(DEPLOYED_ERROR_ATTR)
            print(f"  deployable ONNX model: {details[DEPLOYABLE_ATTR]}"
                  + ("" if deployed is None else f" (error under onnxruntime {deployed:.3e})"))
        latency = details.get(LATENCY_ATTR)
        if latency:
            print(f"  measured latency: {1e3 * latency['median_s']:.3g} ms per batch of "
                  f"{latency['batch']} ({latency['runtime']}, {latency['threads']} thread(s)), "
                  f"{latency['speedup']:.2f}× the float model at full resolution")
        else:
            print(f"  latency not measured: autoq latency {study.study_name}")
    return 0


def _add_pick(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pick", help="the cheapest trial whose MSE is within a bound")
    p.add_argument("name", help="search (study) name")
    bound = p.add_mutually_exclusive_group(required=True)
    bound.add_argument("--max-mse", type=float, help="an absolute bound on the error")
    bound.add_argument("--max-ratio", type=float,
                       help="a bound relative to the float model's error at full resolution "
                            "(1.1: within 10 %%)")
    _storage_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_cmd_pick)


def _cmd_studies(args: argparse.Namespace) -> int:
    import optuna

    from autoq.search.storage import storage_url

    url = storage_url(args.storage)
    summaries = optuna.get_all_study_summaries(url)
    if not summaries:
        print(f"no searches in {url}")
    for summary in summaries:
        print(f"{summary.study_name:40s} {summary.n_trials:5d} trials  started "
              f"{summary.datetime_start:%Y-%m-%d %H:%M}" if summary.datetime_start else
              f"{summary.study_name:40s} {summary.n_trials:5d} trials")
    return 0


def _add_studies(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("studies", help="the searches in a storage")
    _storage_arg(p)
    p.set_defaults(run=_cmd_studies)


def _cmd_trials(args: argparse.Namespace) -> int:
    import json

    from autoq.search import load_study, study_points
    from autoq.search.records import cost_objective_name
    from autoq.search.report import trials_table

    study = load_study(args.name, storage=args.storage)
    points = study_points(study)
    if args.json:
        print(json.dumps({"search": study.study_name, "trials": [p.to_json() for p in points]},
                         indent=2))
    else:
        print(f"{study.study_name!r}: {len(points)} trials")
        print(trials_table(points, objective=cost_objective_name(study.metric_names)))
    return 0


def _add_trials(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trials", help="every trial of a search: state, MSE, cost, scale, error")
    p.add_argument("name", help="search (study) name")
    _storage_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_cmd_trials)


def _cmd_export(args: argparse.Namespace) -> int:
    import json

    from autoq.deploy import export_trial

    _quiet_libraries()
    _importable_working_directory()
    out = export_trial(args.name, args.trial, args.out, storage=args.storage)
    manifest = json.loads((out / "manifest.json").read_text())
    check = manifest["check"]
    print(f"trial {args.trial} of {args.name!r} exported to {out}: {manifest['files']['onnx']} "
          f"{manifest['input']['shape']} → {manifest['output']['shape']}, opset "
          f"{manifest['onnx']['opset']}, network grid {manifest['network_shape']}; onnxruntime "
          f"matches torch grid by grid on {check['inputs']} validation windows "
          f"({check['ties']} rounding ties; end to end, relative difference "
          f"{check['relative_difference']:.1e})")
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="a trial as a deployable ONNX folder: raw input → raw "
                                      "output (normalisation, resizing, quantized network)")
    p.add_argument("name", help="search (study) name")
    p.add_argument("--trial", type=int, required=True, help="the trial's number")
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    _storage_arg(p)
    p.set_defaults(run=_cmd_export)


def _cmd_latency(args: argparse.Namespace) -> int:
    from optuna.trial import TrialState
    from tqdm import tqdm

    from autoq.bits import FLOAT
    from autoq.deploy import export_trial
    from autoq.deploy.latency import (
        RuntimeUnavailableError,
        check_runtime,
        export_float_models,
        measure_latency,
        store_trial_attr,
    )
    from autoq.errors import SpecError
    from autoq.search import load_study, pareto_front, study_points, study_spec
    from autoq.search.records import DEPLOYABLE_ATTR, LATENCY_ATTR
    from autoq.search.results import float_reference
    from autoq.settings import get_settings

    _quiet_libraries()
    _importable_working_directory()
    study = load_study(args.name, storage=args.storage)
    points = study_points(study)
    complete = [p for p in points if p.complete]
    if not complete:
        raise SpecError(f"search {study.study_name!r} has no complete trials: nothing to time")
    chosen = pareto_front(points) if args.trials == "pareto" else complete
    if not chosen:
        raise SpecError(f"search {study.study_name!r}: none of its {len(complete)} complete "
                        f"trials meets the search's constraints; --trials all times them all")
    try:
        check_runtime(args.runtime)
    except RuntimeUnavailableError as e:
        print(f"autoq: latency: skipped {args.runtime}: {e}", file=sys.stderr)
        return 1
    spec = study_spec(study)
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])}
    area = get_settings().artifact_dir.resolve() / "deployable" / study.study_name
    # A float trial has no quantized network to export: it is the float model at its scale.
    float_scales = {p.number: p.scale for p in chosen if p.scale is not None
                    and all(bits == FLOAT for bits in p.bits.values())}
    float_models = export_float_models(spec, area, [max(spec.space.scales),
                                                    *float_scales.values()])
    models = {number: float_models[scale] for number, scale in float_scales.items()}
    for point in tqdm([p for p in chosen if p.number not in models], desc="deployable models",
                      unit="trial", leave=False):
        recorded = trials[point.number].user_attrs.get(DEPLOYABLE_ATTR)
        if recorded is not None and (Path(recorded) / "model.onnx").is_file():
            models[point.number] = Path(recorded) / "model.onnx"
            continue
        folder = export_trial(study.study_name, point.number, area / f"trial-{point.number}",
                              storage=args.storage)
        store_trial_attr(study, trials[point.number]._trial_id, DEPLOYABLE_ATTR, str(folder))
        models[point.number] = folder / "model.onnx"
    with tqdm(total=args.repeats, desc=f"timing {len(models) + 1} models on {args.runtime}",
              unit="round", leave=False) as bar:
        results, float_timing = measure_latency(
            models, float_models[max(spec.space.scales)],
            runtime=args.runtime, threads=args.threads, batch=args.batch,
            warmup=args.warmup, repeats=args.repeats, progress=bar.update)
    for number, result in results.items():
        store_trial_attr(study, trials[number]._trial_id, LATENCY_ATTR, result.to_json())
    print(_latency_table(study.study_name, chosen, results, float_timing,
                         float_mse=float_reference(points), args=args))
    return 0


def _latency_table(name: str, chosen: Sequence[Any], results: dict[Any, Any],
                   float_timing: Any, *, float_mse: float | None,
                   args: argparse.Namespace) -> str:
    """The measured latencies by cost, the float reference first."""
    any_result = next(iter(results.values()))
    lines = [f"latency of {len(chosen)} trial(s) of {name!r}: {args.runtime}, "
             f"{args.threads} thread(s), batch {args.batch}, median ± interquartile range of "
             f"{any_result.runs} interleaved runs; {any_result.machine}",
             f"{'trial':>7}  {'cost':>10}  {'MSE':>10}  {'latency ms':>18}  {'× float':>8}",
             f"{'float':>7}  {'—':>10}  "
             f"{'—' if float_mse is None else f'{float_mse:.3e}':>10}  "
             f"{f'{1e3 * float_timing.median_s:.3f} ± {1e3 * float_timing.spread_s:.3f}':>18}"
             f"  {'1.00':>8}"]
    for point in sorted(chosen, key=lambda p: p.cost):
        result = results[point.number]
        lines.append(f"{point.number:>7}  {point.cost:>10.3e}  {point.mse:>10.3e}  "
                     f"{f'{1e3 * result.median_s:.3f} ± {1e3 * result.spread_s:.3f}':>18}  "
                     f"{result.speedup:>8.2f}")
    return "\n".join(lines)


def _add_latency(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="time the deployable models of a search against the "
                                       "float full-resolution model; stored on each trial")
    p.add_argument("name", help="search (study) name")
    p.add_argument("--trials", choices=["pareto", "all"], default="pareto",
                   help="the feasible Pareto set (default) or every complete trial")
    p.add_argument("--runtime", choices=["onnxruntime-cpu", "onnxruntime-gpu", "tensorrt"],
                   default="onnxruntime-cpu", help="onnxruntime's CPU, CUDA or TensorRT provider")
    p.add_argument("--batch", type=int, default=1, help="inputs per run (default 1)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--repeats", type=int, default=30, help="timed interleaved rounds")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs of each model first")
    _storage_arg(p)
    p.set_defaults(run=_cmd_latency)


def _cmd_demo(args: argparse.Namespace) -> int:
    from importlib.resources import files

    import yaml

    from autoq.search import operating_point, pareto_front, parse_spec, study_points
    from autoq.search.report import plot_front
    from autoq.search.results import float_reference

    _quiet_libraries()
    spec = parse_spec(yaml.safe_load(files("autoq").joinpath("demo.yaml").read_text()),
                      source="autoq/demo.yaml")
    print(f"autoq demo: {spec.description}")
    # The float model at every scale (no QAT, seconds each) anchors the table and the plot.
    run, _, _ = _run_search(spec, name=spec.name, storage=args.storage, trials=None,
                            baseline_regimes=["float"])
    study = run.study
    print(_pareto_text(study))
    points = study_points(study)
    reference = float_reference(points)
    if reference is not None:
        bound = 1.5 * reference
        chosen = operating_point(points, bound)
        if chosen is not None:
            print(f"\ncheapest configuration with MSE ≤ 1.5 × float ({bound:.3e}): trial "
                  f"{chosen.number}, cost {chosen.cost:.3e} bit-ops, MSE {chosen.mse:.3e}, "
                  f"scale {chosen.scale:g}")
    out = plot_front(points, pareto_front(points), args.plot, title=f"{spec.name}: cost vs MSE")
    print(f"plot written to {out}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a small real search on SQLite: table, pick and plot")
    _storage_arg(p)
    p.add_argument("--plot", type=Path, default=Path("autoq-demo-pareto.png"))
    p.set_defaults(run=_cmd_demo)


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_datagen, _add_cost, _add_search, _add_studies, _add_trials, _add_pareto, _add_pick,
    _add_export, _add_latency, _add_demo,
]


def _plugin_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Commands other packages register (the service's ``serve`` and ``worker``) through the
    ``autoq.commands`` entry-point group, so this package never imports them by name."""
    from importlib.metadata import entry_points

    return [entry.load() for entry in entry_points(group="autoq.commands")]


def build_parser() -> argparse.ArgumentParser:
    """The ``autoq`` parser with every command, the service's included when installed."""
    parser = argparse.ArgumentParser(
        prog="autoq",
        description="Find the cheapest quantized, rescaled neural PDE solver under an MSE bound.",
    )
    parser.add_argument("--version", action="version", version=f"autoq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in [*_COMMANDS, *_plugin_commands()]:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` names; returns the exit status (2: a clear error of autoq's)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except AutoqError as e:
        print(f"autoq: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autoq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
