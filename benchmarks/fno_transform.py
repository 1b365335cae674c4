"""The FNO's transforms as float FFTs or as quantized DFT matrix products (``space.transform``,
issue 17 item 3): what each costs, and one real trial of each.

Usage: python benchmarks/fno_transform.py [--space burgers-fno-small] [--trial-bits 4 8]
                                          [--trial-scale 0.5] [--no-trials]

1. Pricing (no training): at every scale of the space, the cost of its cheapest configuration
   (every group at the narrowest pair of its menus, first and last layers float as the space
   has them) with ``transform: fft`` and ``transform: dft``, the transforms' share of each, and
   the widest pair's costs; then, per scale, the bit pairs of the menus at which the FFT is the
   cheaper one (what ``transform: search`` gives autoq's sampler).
2. Trials: one QAT trial (seed 0) per transform at ``--trial-bits`` everywhere and
   ``--trial-scale``: the float model's error at that scale and at full scale, the trial's
   error and bit-op cost.
"""

from __future__ import annotations

import argparse
import time

from autoq.cost import CostReport
from autoq.device import configure_threads
from autoq.quant import quiet_aimet_logs
from autoq.search import SearchSpec, TrialRunner, load_spec
from autoq.search.space import SearchSpace

TRANSFORM_SUFFIXES = (".fft", ".ifft", ".dft", ".idft")


def with_transform(spec: SearchSpec, transform: str) -> SearchSpec:
    return spec.model_copy(update={"space": spec.space.model_copy(
        update={"transform": transform})})


def pricing(spec: SearchSpec) -> None:
    spaces = {t: SearchSpace(with_transform(spec, t)) for t in ("fft", "dft", "search")}
    narrow = (min(spec.space.weight_bits), min(spec.space.act_bits))
    wide = (max(spec.space.weight_bits), max(spec.space.act_bits))
    print(f"{spec.name}: every group at w{narrow[0]}a{narrow[1]} (the space's cheapest) and "
          f"at w{wide[0]}a{wide[1]}; transforms' share of the total")
    print(f"{'scale':>5}  {'fft':>9}  {'share':>5}  {'dft':>9}  {'share':>5}  {'dft/fft':>7}"
          f"  {'fft wide':>9}  {'dft wide':>9}")
    for scale in spec.space.scales:
        row = []
        for bits in (narrow, wide):
            for transform in ("fft", "dft"):
                space = spaces[transform]
                row.append(space.cost(space.config(scale, dict.fromkeys(space.groups, bits))))
        fft, dft, fft_wide, dft_wide = row

        def share(report: CostReport) -> float:
            return sum(c.cost for n, c in report.layers.items()
                       if n.endswith(TRANSFORM_SUFFIXES)) / report.total

        print(f"{scale:5g}  {fft.total:9.3e}  {share(fft):5.2f}  {dft.total:9.3e}  "
              f"{share(dft):5.2f}  {dft.total / fft.total:7.3f}  {fft_wide.total:9.3e}  "
              f"{dft_wide.total:9.3e}")
    search = spaces["search"]
    for scale in spec.space.scales:
        fft_cheaper = [f"w{w}a{a}" for w in spec.space.weight_bits for a in spec.space.act_bits
                       if "fft" in search.cheaper_transforms(
                           scale, dict.fromkeys(search.groups, (w, a))).values()]
        print(f"scale {scale:g}: fft cheaper at {', '.join(fft_cheaper) or 'no pair'}")


def trials(spec: SearchSpec, bits: tuple[int, int], scale: float) -> None:
    for transform in ("fft", "dft"):
        runner = TrialRunner(with_transform(spec, transform))
        config = runner.space.config(scale, dict.fromkeys(runner.space.groups, bits))
        started = time.perf_counter()
        result = runner.run(config, seed=0)
        ratio = result.mse / result.float_reference
        print(f"{transform}: w{bits[0]}a{bits[1]} at scale {scale:g}: MSE {result.mse:.4e} "
              f"(float at this scale {result.float_mse:.4e}, at full scale "
              f"{result.float_reference:.4e}; ratio to it {ratio:.3f}), cost "
              f"{result.cost.total:.4e}, {time.perf_counter() - started:.0f} s "
              f"(QAT {result.timings.get('qat', 0.0):.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="burgers-fno-small")
    parser.add_argument("--trial-bits", type=int, nargs=2, default=(4, 8))
    parser.add_argument("--trial-scale", type=float, default=0.5)
    parser.add_argument("--no-trials", action="store_true")
    args = parser.parse_args()
    configure_threads()
    quiet_aimet_logs()
    spec = load_spec(args.space)
    pricing(spec)
    if not args.no_trials:
        trials(spec, tuple(args.trial_bits), args.trial_scale)


if __name__ == "__main__":
    main()
