"""A search with latency as its objective, end to end, on a space small enough for a laptop.

A Darcy UNet (width 8, 2 levels) on 64² coefficient fields (24 samples), the integer scheme,
per-block bits from {4, 8, 16} × {8, 16}, scales 1.0 and 0.5, autoq's sampler, 8 trials, each
timed against the float model at full resolution (onnxruntime CPU, 1 thread, batch 1). Prints
per trial: the configuration, the error, the measured latency relative to float, what the
latency table predicted for it (a table measured again here, before any correction), whether
its graph is deployable, and its export check (onnxruntime against torch end to end, and the
grid integers that rounded the other way on ties when checked on torch's inputs,
``docs/deploy.md``).

    .venv/bin/python benchmarks/latency_search.py [--trials N] [--out DIR]

Data, float models, trials and the study go under ``--out`` (default a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SPACE: dict[str, Any] = {
    "name": "latency-search",
    "data": {"pde": "darcy", "path": "darcy.h5", "generate": {"samples": 24, "resolution": 64}},
    "model": {"arch": "unet", "width": 8, "levels": 2, "norm_groups": 4},
    "train": {"epochs": 4, "lr": 3.0e-3, "batch_size": 16},
    "qat": {"epochs": 1, "lr": 1.0e-4, "batch_size": 16},
    "space": {"scales": [1.0, 0.5], "weight_bits": [4, 8, 16], "act_bits": [8, 16],
              "granularity": "per_block", "scheme": "integer"},
    "search": {"sampler": "autoq", "objectives": ["error", "latency"], "seed": 0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="autoq-latency-search-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AUTOQ_CACHE_DIR", str(out / "float"))
    os.chdir(out)

    import optuna
    import torch

    from autoq.search import SearchSpace, parse_spec, run_search
    from autoq.search.latency import LatencyModel
    from autoq.search.records import DEPLOY_ERROR_ATTR, DEPLOYABLE_ATTR, LATENCY_ATTR
    from autoq.search.report import bits_summary

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = parse_spec({**SPACE, "search": {**SPACE["search"], "trials": args.trials}})
    study = run_search(spec, storage=f"sqlite:///{out / 'search.db'}", artifact_dir=out / "trials")
    table = LatencyModel(SearchSpace(spec), spec.search.latency)
    print(f"load average {os.getloadavg()[0]:.1f}; study in {out / 'search.db'}")
    print("trial scale  MSE        measured  predicted  deployable  ORT−torch  ties     bits")
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        predicted = table.params_cost(trial.params)
        check: dict[str, float] = {}
        folder = attrs.get(DEPLOYABLE_ATTR)
        if folder is not None:
            check = json.loads((Path(folder) / "manifest.json").read_text())["check"]
        latency = attrs[LATENCY_ATTR]
        print(f"{trial.number:5d} {trial.params['scale']:5.2f}  {trial.values[0]:.3e}  "
              f"{latency['median_s'] / latency['float_median_s']:8.3f}  {predicted:9.3f}  "
              f"{'yes' if folder else 'no: ' + attrs.get(DEPLOY_ERROR_ATTR, '')[:30]:10s}  "
              f"{check.get('relative_difference', float('nan')):9.2e}  "
              f"{check.get('ties', '-')!s:>7}  "
              f"{bits_summary(attrs['bits'])}")


if __name__ == "__main__":
    main()
