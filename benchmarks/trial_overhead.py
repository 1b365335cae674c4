"""Framework overhead of a search: wall time outside float training, calibration, QAT, evaluation.

Usage: python benchmarks/trial_overhead.py [--space burgers-fno-small] [--trials 20]
Runs a fresh search (new SQLite file, new float cache) and prints, from the trials' recorded
timings, the share of wall time spent in autoq/Optuna/storage rather than in the four phases of a
trial, and how many float models were trained versus reused (target: one per scale).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from autoq.device import configure_threads
from autoq.quant import quiet_aimet_logs
from autoq.search import TrialRunner, load_spec, prepare_run, study_points
from autoq.search.executors.local import LocalExecutor
from autoq.train import FloatModelCache

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("float", "calibration", "qat", "evaluation")


class CountingCache(FloatModelCache):
    """The float cache, counting trainings and loads."""

    trained = loaded = 0

    def get(self, *args, **kwargs):
        model = super().get(*args, **kwargs)
        if model.loaded:
            CountingCache.loaded += 1
        else:
            CountingCache.trained += 1
        return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="burgers-fno-small")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    configure_threads()
    quiet_aimet_logs()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(ROOT / "search_spaces" / f"{args.space}.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        runner = TrialRunner(spec, cache=CountingCache(Path(tmp) / "float"))
        setup = time.perf_counter() - started
        run = prepare_run(spec, storage=f"sqlite:///{tmp}/overhead.db", trials=args.trials)
        LocalExecutor(runner=runner).run(run, artifact_dir=None, callbacks=[], should_stop=None)
        study = run.study
        wall = time.perf_counter() - started
    points = [p for p in study_points(study) if "timings" in p.details]
    phases = {phase: sum(p.details["timings"].get(phase, 0.0) for p in points)
              for phase in PHASES}
    inside = sum(phases.values())
    overhead = wall - setup - inside
    print(f"{args.space}: {len(points)} trials, wall {wall:.1f} s (data set-up {setup:.1f} s)")
    for phase, seconds in phases.items():
        print(f"  {phase:12s} {seconds:8.1f} s  {100 * seconds / wall:5.1f} %")
    print(f"  {'overhead':12s} {overhead:8.1f} s  {100 * overhead / wall:5.1f} %  "
          f"(sampling, storage and bookkeeping between the timed phases)")
    distinct = len({p.scale for p in points})
    print(f"float models trained {CountingCache.trained}, loaded from disk "
          f"{CountingCache.loaded}, served from memory "
          f"{len(points) - CountingCache.trained - CountingCache.loaded}; distinct scales "
          f"{distinct}")


if __name__ == "__main__":
    main()
