"""The `paper` spaces against the paper's Table 2: each float network's FLOPs as DeepSpeed's
profiler reports them at batch 1 on the space's data grid (the paper's measure), and autoq's own
count of the same pass (FFTs, biases and the spectral mixing included) beside it.

    .venv/bin/python benchmarks/paper_sizes.py    # a Markdown table on stdout

Shapes come from the spaces' generation recipes (run from a directory without their data files
for exactly that); nothing is trained.
"""

from __future__ import annotations

from pathlib import Path

import autoq
from autoq.cost import PAPER_MFLOPS, deepspeed_flops
from autoq.search import SearchSpace
from autoq.search.spec import bundled_spaces, load_spec


def main() -> None:
    spaces = bundled_spaces(Path(autoq.__file__).parent / "search_spaces")
    print("| space | model | grid | in → out | DeepSpeed MFLOPs | Table 2 | ratio "
          "| autoq MFLOPs |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for name in sorted(name for name in spaces if name.endswith("-paper")):
        pde, arch, _ = name.split("-")
        spec = load_spec(spaces[name])
        space = SearchSpace(spec)
        shape = space.geometry
        flops = deepspeed_flops(space.reference_network, data_shape=shape.data_shape,
                                in_channels=shape.in_channels)
        ours = space.cost(space.regime("float", 1.0)).flops
        target = PAPER_MFLOPS[pde][arch]
        sizes = spec.model.model_dump(exclude={"arch"})
        model = ", ".join(f"{key} {value}" for key, value in sizes.items()
                          if type(value) is int)  # the sizes: no flags, no pad modes
        print(f"| {name} | {model} | {'×'.join(map(str, shape.data_shape))} | "
              f"{shape.in_channels} → {shape.out_channels} | {flops / 1e6:.1f} | {target} | "
              f"{flops / 1e6 / target:.2f} | {ours / 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()
