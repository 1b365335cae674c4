"""Your own model and your own data through autoq's Python API.

A 1D heat equation, u_t = ν u_xx on the periodic unit interval, solved exactly (each Fourier mode
decays as exp(-ν (2πk)² t)), stands for "your data"; a small convolutional network that you train
with your own loop stands for "your model". autoq then searches per-layer bitwidths and the grid
scale for that trained network, each trial a real QAT fine-tune, and answers: the cheapest
configuration within 10 % of your float model's error.

Run it::

    python examples/own_model_and_data.py            # ~3 minutes on 2 CPU cores
    python examples/own_model_and_data.py --small    # the size the test suite runs (~1 minute)
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import autoq

NU = 0.002  # diffusivity
DT = 0.5  # time between saved frames


def heat_trajectories(samples: int, points: int, frames: int, *, seed: int = 0) -> np.ndarray:
    """Exact solutions ``(samples, frames, points, 1)``: random sums of four decaying modes."""
    rng = np.random.default_rng(seed)
    x = (np.arange(points) + 0.5) / points
    t = np.arange(frames) * DT
    k = np.arange(1, 5)
    amplitude = rng.uniform(-1, 1, (samples, k.size)) / k
    phase = rng.uniform(0, 2 * math.pi, (samples, k.size))
    decay = np.exp(-NU * (2 * math.pi * k) ** 2 * t[:, None])  # (frames, modes)
    waves = np.sin(2 * math.pi * k[None, :, None] * x[None, None, :]
                   + phase[:, :, None])  # (samples, modes, points)
    u = np.einsum("sm,tm,smx->stx", amplitude, decay, waves)
    return u[..., None].astype(np.float32)


class HeatStepper(nn.Module):
    """Your model: two past states in, the next state out, in physical units (the contract:
    ``(batch, input_steps·fields, x)`` → ``(batch, target_steps·fields, x)``)."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.lift = nn.Conv1d(2, width, 1)
        self.mix = nn.Conv1d(width, width, 5, padding=2, padding_mode="circular")
        self.mix2 = nn.Conv1d(width, width, 5, padding=2, padding_mode="circular")
        self.project = nn.Conv1d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.lift(x))
        h = F.gelu(self.mix(h)) + h
        h = F.gelu(self.mix2(h)) + h
        return x[:, -1:] + 0.1 * self.project(h)


def train(model: nn.Module, trajectories: np.ndarray, steps: int) -> nn.Module:
    """Your own training loop: random windows of two states → the next one."""
    data = torch.from_numpy(trajectories[..., 0])  # (samples, frames, points)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        sample = torch.randint(len(data), (32,), generator=generator)
        start = torch.randint(data.shape[1] - 2, (32,), generator=generator)
        window = torch.stack([data[s, t:t + 3] for s, t in zip(sample, start, strict=True)])
        loss = F.mse_loss(model(window[:, :2]), window[:, 2:])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="fewer samples, steps and trials")
    parser.add_argument("--storage", help="SQLAlchemy URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    samples, steps, trials = (24, 150, 3) if args.small else (64, 600, 10)

    trajectories = heat_trajectories(samples, points=128, frames=12)
    model = train(HeatStepper(), trajectories, steps)
    dataset = autoq.from_arrays(trajectories, name="heat")

    space = {
        "name": "heat-own-model-small" if args.small else "heat-own-model",
        "data": {"layout": "generic", "path": "in-memory", "input_steps": 2,
                 "target_steps": 1},
        # The recipe of fine-tuning your model at coarser grids (your weights at full grid).
        "train": {"epochs": 2, "batch_size": 16},
        "qat": {"epochs": 1, "lr": 1.0e-4, "batch_size": 16},
        "space": {"scales": [1.0, 0.5], "weight_bits": [4, 8], "act_bits": [8, 16],
                  "granularity": "per_layer"},
        "search": {"sampler": "autoq", "seed": 0},
    }
    with tempfile.TemporaryDirectory() as folder:
        storage = args.storage or f"sqlite:///{Path(folder) / 'example.db'}"
        result = autoq.search(space, model=model, dataset=dataset, trials=trials,
                              storage=storage, metric="relative_l2",
                              artifact_dir=Path(folder) / "artifacts")
        print(f"\n{len(result.trials())} trials; float model's relative L2 error at full "
              f"resolution: {result.float_error():.4e}")
        print("Pareto set (cost in bit-operations per step):")
        for point in result.pareto():
            print(f"  trial {point.number}: cost {point.cost:.3e}, relative L2 {point.mse:.4e}, "
                  f"scale {point.scale:g}")
        chosen = result.pick(max_ratio=1.1)
        if chosen is None:
            best = result.best()
            print(f"no trial within 1.1 × the float error; the closest is trial "
                  f"{best.number if best else '-'}")
        else:
            print(f"cheapest within 1.1 × float: trial {chosen.number}, cost {chosen.cost:.3e}, "
                  f"scale {chosen.scale:g}, bits {chosen.bits}")


if __name__ == "__main__":
    main()
