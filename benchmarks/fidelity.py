"""Multi-fidelity QAT and warm-started QAT against autoq's plain search (issue 17, item 2).

Usage:
    python benchmarks/fidelity.py [--space burgers-fno-small] [--trials 25] [--seed 0]
        [--screening 0.25] [--margin 0.25] [--keep 16] [--sensitivity-bits 4]
        [--variants off fidelity fidelity+warm sensitivity]

autoq's sampler searches the space once per variant, at the same budget of trials and seed:
``off`` (every trial runs the whole QAT: today's search), ``fidelity`` (``search.fidelity``:
every sampled trial screened on the first ``--screening`` of its QAT, promoted by the rule of
:mod:`autoq.search.fidelity`), ``fidelity+warm`` (also ``search.warm_start``) and
``sensitivity`` (``search.sensitivity``: a calibration-only sensitivity pass at
``--sensitivity-bits`` before the first trial as the sampler's prior; its wall time includes
the pass). Every float
model of the space is trained (or loaded from the float-model cache) once, first; each variant
loads them from that cache, so its wall time holds its trials and sampler, no float training.

Per variant it prints the hypervolume of the full-length trials (log10 cost × log10 MSE,
reference: the float model's cost at full resolution and 10 × its MSE, as in
``benchmarks/search_quality.py``), the seconds spent in QAT and in the whole search, the QAT
optimiser steps, the sampled trials promoted to full length, the seconds of the sensitivity
pass, and the seconds (from the search's start, so a pass before the first trial counts, to
the trials' completion times) and the trials each variant took to reach the hypervolume ``off``
reached at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import optuna

from autoq.device import configure_threads
from autoq.quant import quiet_aimet_logs
from autoq.search import SearchSpec, TrialRunner, hypervolume, load_spec, prepare_run
from autoq.search.executors.local import LocalExecutor
from autoq.search.records import (
    BASELINE_ATTR,
    FIDELITY_ATTR,
    QAT_STEPS_ATTR,
    SCREENED,
    TIMINGS_ATTR,
    WARM_START_ATTR,
    recorded_sensitivities,
    trial_point,
)

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("off", "fidelity", "fidelity+warm", "sensitivity")


@dataclass(frozen=True)
class Outcome:
    """What one variant's search measured."""

    variant: str
    hypervolume: float
    wall_seconds: float
    qat_seconds: float
    qat_steps: int
    sampled: int
    promoted: int
    warm_started: int
    sensitivity_seconds: float | None
    """The sensitivity pass's seconds (``None``: no pass)."""
    curve: list[tuple[float, float]]
    """(seconds since the search started, hypervolume of the trials complete by then)."""

    def seconds_to(self, target: float) -> float | None:
        """When the hypervolume first reached ``target`` (``None``: never)."""
        return next((seconds for seconds, volume in self.curve if volume >= target - 1e-12),
                    None)

    def trials_to(self, target: float) -> int | None:
        """How many trials it took to reach the hypervolume ``target`` (``None``: never): the
        machine's load does not move this one."""
        return next((done for done, (_, volume) in enumerate(self.curve, start=1)
                     if volume >= target - 1e-12), None)


def variant_spec(spec: SearchSpec, variant: str, *, trials: int, seed: int, screening: float,
                 margin: float, keep: int, sensitivity_bits: int = 4) -> SearchSpec:
    """``spec`` with autoq's sampler at ``trials`` and ``seed``, and the variant's options."""
    search: dict[str, object] = {"sampler": "autoq", "trials": trials, "seed": seed}
    if variant.startswith("fidelity"):
        search["fidelity"] = {"screening": screening, "margin": margin}
    if variant == "fidelity+warm":
        search["warm_start"] = {"keep": keep}
    if variant == "sensitivity":
        search["sensitivity"] = {"bits": sensitivity_bits}
    payload = spec.model_dump(mode="json")
    payload["search"] = {**payload["search"], **search}
    return SearchSpec.model_validate(payload)


def run_variant(spec: SearchSpec, base: TrialRunner, variant: str, *, storage: str,
                reference: tuple[float, float]) -> Outcome:
    """One search of ``spec`` on ``base``'s data and float models; its figures."""
    # The float models come from the cache ``base`` filled: loaded, not trained again.
    runner = TrialRunner(spec, cache=base.cache, problem=base.problem, space=base.space)
    run = prepare_run(spec, name=f"{spec.name}-{variant}", storage=storage)
    # Optuna stamps trials with naive local times: the search's start is taken the same way.
    first = datetime.now()
    started = time.perf_counter()
    LocalExecutor(runner=runner).run(run, artifact_dir=None, callbacks=[], should_stop=None)
    wall = time.perf_counter() - started
    completed = sorted(((t.datetime_complete, t) for t in run.study.get_trials(deepcopy=False)
                        if t.datetime_complete is not None), key=lambda pair: pair[0])
    trials = [trial for _, trial in completed]
    measured = recorded_sensitivities(run.study.user_attrs)
    curve = []
    for done in range(1, len(trials) + 1):
        elapsed = (completed[done - 1][0] - first).total_seconds()
        curve.append((elapsed, hypervolume([trial_point(t) for t in trials[:done]], reference)))
    sampled = [t for t in trials if BASELINE_ATTR not in t.user_attrs]
    return Outcome(
        variant=variant,
        hypervolume=hypervolume([trial_point(t) for t in trials], reference),
        wall_seconds=wall,
        qat_seconds=sum(t.user_attrs.get(TIMINGS_ATTR, {}).get("qat", 0.0) for t in trials),
        qat_steps=sum(t.user_attrs.get(QAT_STEPS_ATTR, 0) for t in trials),
        sampled=len(sampled),
        promoted=sum(t.user_attrs.get(FIDELITY_ATTR) != SCREENED for t in sampled),
        warm_started=sum(WARM_START_ATTR in t.user_attrs for t in trials),
        sensitivity_seconds=None if measured is None else measured.seconds,
        curve=curve)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="burgers-fno-small")
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--screening", type=float, default=0.25,
                        help="fraction of the QAT a configuration is screened on")
    parser.add_argument("--margin", type=float, default=0.25, help="the promotion rule's margin")
    parser.add_argument("--keep", type=int, default=16, help="warm starts held in memory")
    parser.add_argument("--sensitivity-bits", type=int, default=4,
                        help="the bits each group is measured at in the sensitivity pass")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    threads = configure_threads()
    quiet_aimet_logs()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(args.space)
    print(f"{spec.name}: autoq's sampler, {args.trials} trials, seed {args.seed}, screening "
          f"{args.screening:g} of the QAT, margin {args.margin:g}, {threads} thread(s), load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    base = TrialRunner(spec)
    started = time.perf_counter()
    for scale in spec.space.scales:
        base.float_model(scale)
    print(f"float models of {len(spec.space.scales)} scales trained or loaded once: "
          f"{time.perf_counter() - started:.0f} s (not in any variant's wall time)", flush=True)
    full = max(spec.space.scales)
    reference = (base.space.cost(base.space.regime("float", full)).total,
                 10 * base.float_model(full).val_mse)
    print(f"hypervolume reference (cost, MSE) = ({reference[0]:.3e}, {reference[1]:.3e})")
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/fidelity.db"
        for variant in args.variants:
            spec_of = variant_spec(spec, variant, trials=args.trials, seed=args.seed,
                                   screening=args.screening, margin=args.margin, keep=args.keep,
                                   sensitivity_bits=args.sensitivity_bits)
            outcome = run_variant(spec_of, base, variant, storage=storage, reference=reference)
            outcomes.append(outcome)
            print(f"  {variant}: hypervolume {outcome.hypervolume:.3f}, wall "
                  f"{outcome.wall_seconds:.0f} s, load "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    target = outcomes[0]
    header = ("variant", "hypervolume", "wall s", "QAT s", "QAT steps", "promoted",
              "warm-started", "pass s", f"s to {target.variant}'s hv",
              f"trials to {target.variant}'s hv", "wall / " + target.variant)
    rows = []
    for outcome in outcomes:
        reached = outcome.seconds_to(target.hypervolume)
        trials = outcome.trials_to(target.hypervolume)
        rows.append((outcome.variant, f"{outcome.hypervolume:.3f}",
                     f"{outcome.wall_seconds:.0f}", f"{outcome.qat_seconds:.0f}",
                     str(outcome.qat_steps), f"{outcome.promoted}/{outcome.sampled}",
                     str(outcome.warm_started),
                     "-" if outcome.sensitivity_seconds is None
                     else f"{outcome.sensitivity_seconds:.1f}",
                     "never" if reached is None else f"{reached:.0f}",
                     "never" if trials is None else str(trials),
                     f"{outcome.wall_seconds / target.wall_seconds:.2f}"))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
