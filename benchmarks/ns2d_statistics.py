"""Statistics of a Navier–Stokes smoke data set, to set beside PDEArena's (issue 16).

Usage: python benchmarks/ns2d_statistics.py DATA [--samples 8]

DATA is anything autoq reads in PDEArena's layout: a directory of its train/valid/test files or
one file. Prints, over the first ``--samples`` trajectories, the |v| rms of every frame, the last
frame's smoke standard deviation and the share of its smoke in the top quarter of the box, the
smallest smoke value, and the largest |v| on the left wall and on the bottom wall (where
PDEArena stores its wall faces; cell-centred velocities show the flow next to the wall there).
PDEArena's generator at 128², frames 6 apart: |v| rms 1.20 → 0.31, std 0.38, 43 % on top,
velocity 0 on the walls.
"""

from __future__ import annotations

import argparse

import numpy as np

from autoq.data import Selection, read_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    data = read_data(args.data, "pdearena-ns2d", selection=Selection(max_samples=args.samples))
    values = data.trajectories.astype(np.float64)
    smoke, vx, vy = values[..., 0], values[..., 1], values[..., 2]
    speed = np.sqrt((vx**2 + vy**2).mean(axis=(-2, -1))).mean(axis=0)
    last = smoke[:, -1]
    top = last[..., 3 * last.shape[-1] // 4:].sum(axis=(-2, -1)) / last.sum(axis=(-2, -1))
    print(f"{args.data}: {data.samples} samples, {data.frames} frames, grid "
          f"{'×'.join(map(str, data.spatial_shape))}")
    print("|v| rms per frame:", " ".join(f"{value:.2f}" for value in speed))
    print(f"last frame: smoke std {last.std(axis=(-2, -1)).mean():.2f}, "
          f"{100 * top.mean():.0f} % in the top quarter")
    print(f"smoke minimum {smoke.min():.3g}")
    print(f"largest |vx| on the left wall {np.abs(vx[:, :, 0]).max():.3g}, "
          f"|vy| on the bottom wall {np.abs(vy[..., 0]).max():.3g}")


if __name__ == "__main__":
    main()
