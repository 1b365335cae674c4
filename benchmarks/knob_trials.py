"""One real trial per setting of the resample and per-channel knobs (issue 17 item 3).

Usage: python benchmarks/knob_trials.py [--cases NAME ...] [--cache artifacts/float]

Cases (each one QAT trial, seed 0, every group the space quantizes at the same bits, first and
last layers float as the `small` spaces have them):

- ``burgers-linear``, ``burgers-cubic``, ``burgers-fourier``: ``burgers-fno-small`` at w4a8,
  scale 0.5, with ``space.resample`` set (each method trains its own float model at 0.5);
- ``darcy-per-tensor``, ``darcy-per-channel``: ``darcy-unet-small`` at w4a4, scale 0.5, with
  ``space.weight_granularity`` set (one float model, shared).

Prints, per case, the float model's validation MSE at that scale, the trial's MSE, the bit-op
cost and its resize entries, and the seconds of float training (0 when cached) and QAT.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from autoq.cost import RESIZE_IN, RESIZE_OUT
from autoq.device import configure_threads
from autoq.quant import quiet_aimet_logs
from autoq.search import TrialRunner, load_spec, parse_spec
from autoq.train import FloatModelCache

CASES = {
    "burgers-linear": ("burgers-fno-small", {"resample": "linear"}, (4, 8)),
    "burgers-cubic": ("burgers-fno-small", {"resample": "cubic"}, (4, 8)),
    "burgers-fourier": ("burgers-fno-small", {"resample": "fourier"}, (4, 8)),
    "darcy-per-tensor": ("darcy-unet-small", {"weight_granularity": "per_tensor"}, (4, 4)),
    "darcy-per-channel": ("darcy-unet-small", {"weight_granularity": "per_channel"}, (4, 4)),
}
SCALE = 0.5


def run_case(name: str, cache: FloatModelCache) -> dict[str, object]:
    space_name, knob, bits = CASES[name]
    payload = load_spec(space_name).model_dump(mode="json")
    spec = parse_spec({**payload, "space": {**payload["space"], **knob}}, source=space_name)
    runner = TrialRunner(spec, cache=cache)
    started = time.perf_counter()
    float_model = runner.float_model(SCALE)
    float_seconds = time.perf_counter() - started
    config = runner.space.config(SCALE, dict.fromkeys(runner.space.groups, bits))
    result = runner.run(config, seed=0)
    resizes = result.cost.layers[RESIZE_IN].cost + result.cost.layers[RESIZE_OUT].cost
    return {"case": name, "float_mse": result.float_mse, "mse": result.mse,
            "cost": result.cost.total, "resize_cost": resizes,
            "float_trained_s": 0.0 if float_model.loaded else float_model.train_seconds,
            "float_wall_s": float_seconds, "qat_s": result.timings.get("qat", 0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--cache", type=Path, default=None,
                        help="float-model cache (default: the settings' cache_dir)")
    args = parser.parse_args()
    configure_threads()
    quiet_aimet_logs()
    cache = FloatModelCache(args.cache)
    print("case                float MSE    trial MSE    bit-ops      resize bit-ops  "
          "float train s  QAT s", flush=True)
    for name in args.cases:
        row = run_case(name, cache)
        print(f"{name:<19} {row['float_mse']:.4e}   {row['mse']:.4e}   {row['cost']:.4e}   "
              f"{row['resize_cost']:.4e}      {row['float_trained_s']:>8.1f}     "
              f"{row['qat_s']:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
