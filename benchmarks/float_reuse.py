"""Float models below full resolution: trained from scratch, or fine-tuned from full resolution.

Usage: python benchmarks/float_reuse.py [--spaces ns2d-transformer-small|FILE.yaml ...]
                                        [--scales 0.7 0.5 ...] [--rescale-epochs 2 4 ...]
                                        [--cache DIR]

For each space and scale factor, the float model the space's recipe trains from scratch
(``train.epochs``) beside the one ``train.rescale_epochs`` makes (the full-resolution model
fine-tuned for that many epochs at the scale's grid): validation MSE at the data resolution and
the seconds of the training run that made it (the cache's record, so a model trained by an
earlier run shows its own run's seconds). The full-resolution model is trained once and shared
by both; its seconds are printed first, since every search pays them whatever the option.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autoq.device import configure_threads
from autoq.search import load_spec
from autoq.search.setup import load_spec_problem
from autoq.train import FloatModelCache

SPACES = ["ns2d-transformer-small", "ns2d-fno-small", "ns2d-unet-small"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=SPACES)
    parser.add_argument("--scales", nargs="+", type=float, default=[0.7, 0.5, 0.3, 0.2])
    parser.add_argument("--rescale-epochs", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--cache", type=Path, default=None, help="float cache folder")
    args = parser.parse_args()
    if not all(0 < scale < 1 for scale in args.scales):
        parser.error(f"--scales: each must lie in (0, 1), got {args.scales}")
    if not all(epochs >= 1 for epochs in args.rescale_epochs):
        parser.error(f"--rescale-epochs: each must be at least 1, got {args.rescale_epochs}")
    threads = configure_threads()
    cache = FloatModelCache(args.cache)
    print(f"float models from scratch vs fine-tuned from full resolution ({threads} threads)")
    for name in args.spaces:
        spec = load_spec(name)  # a file, or a bundled space's name
        problem = load_spec_problem(spec, progress=False)
        scratch = spec.train.model_copy(update={"rescale_epochs": None})
        full = cache.get(problem, spec.model, scratch, scale=1.0,
                         resample=spec.space.resample)
        print(f"\n{spec.name}: full resolution MSE {full.val_mse:.3e}, trained "
              f"{full.train_seconds:.0f} s ({scratch.epochs} epochs)")
        rescaled = {epochs: scratch.model_copy(update={"rescale_epochs": epochs})
                    for epochs in args.rescale_epochs}
        print(f"  {'scale':>5s}  {'scratch (' + str(scratch.epochs) + ' epochs)':>22s}  "
              + "  ".join(f"{'fine-tuned ' + str(epochs) + ' epochs':>30s}"
                          for epochs in rescaled))
        for scale in args.scales:
            base = cache.get(problem, spec.model, scratch, scale=scale,
                             resample=spec.space.resample)
            cells = [f"{base.val_mse:.3e} {base.train_seconds:6.0f} s"]
            for recipe in rescaled.values():
                model = cache.get(problem, spec.model, recipe, scale=scale,
                                  resample=spec.space.resample)
                cells.append(f"{model.val_mse:.3e} (×{model.val_mse / base.val_mse:.2f}) "
                             f"{model.train_seconds:6.0f} s")
            print(f"  {scale:5g}  {cells[0]:>22s}  "
                  + "  ".join(f"{cell:>30s}" for cell in cells[1:]), flush=True)

if __name__ == "__main__":
    main()
