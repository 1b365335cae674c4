"""The ``autoq`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from autoq.errors import AutoqError


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
    p.add_argument("--out", type=Path, required=True, help="HDF5 file to write")
    p.add_argument("--samples", type=int, help="trajectories (default: the public count)")
    p.add_argument("--resolution", type=int, help="grid points per axis (default: public)")
    p.add_argument("--frames", type=int, help="saved time frames (default: public)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_cmd_datagen)


def _cmd_cost(args: argparse.Namespace) -> int:
    import json

    from autoq.cost import format_cost_table, regime_costs
    from autoq.search.setup import geometry
    from autoq.search.spec import load_spec

    spec = load_spec(args.spec)
    shape = geometry(spec)
    costs = regime_costs(
        spec.model, data_shape=shape.data_shape, in_channels=shape.in_channels,
        out_channels=shape.out_channels, scales=spec.space.scales,
        first_last_float=spec.space.first_last_float,
    )
    if args.json:
        print(json.dumps({regime: {str(scale): {"total": report.total,
                                                "layers": report.to_json()["layers"]}
                                   for scale, report in by_scale.items()}
                          for regime, by_scale in costs.items()}, indent=2))
    else:
        print(f"{spec.name}: {spec.model.arch} on {spec.data.pde} "
              f"{'×'.join(map(str, shape.data_shape))}, {shape.in_channels} → "
              f"{shape.out_channels} channels; bit operations per forward pass\n")
        print(format_cost_table(costs))
    return 0


def _add_cost(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cost", help="bit-op cost of the paper's uniform regimes, per layer")
    p.add_argument("spec", type=Path, help="search space YAML")
    p.add_argument("--json", action="store_true", help="{regime: {scale: {total, layers}}}")
    p.set_defaults(run=_cmd_cost)


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_datagen, _add_cost]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoq",
        description="Find the cheapest quantized, rescaled neural PDE solver under an MSE bound.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
