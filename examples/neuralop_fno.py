"""A neuraloperator FNO, trained with its own loop, searched by autoq from its checkpoint.

Writes ``neuralop_fno/fno.pt`` (the trained weights) and ``neuralop_fno/space.yaml`` (a search
space whose model is ``factory: neuralop.models:FNO`` with that checkpoint) for 1D Burgers at
256 cells, then prints the commands that search it::

    python examples/neuralop_fno.py                 # trains for about a minute on 2 CPU cores
    autoq search neuralop_fno/space.yaml --trials 12
    autoq pareto neuralop-fno-burgers --plot neuralop_fno/front.png
    autoq pick neuralop-fno-burgers --max-ratio 1.1

Needs the ``neuralop`` extra (``pip install 'autoq[neuralop]'``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from autoq.extras import require
from autoq.models.factory import tensor_state
from autoq.search import parse_spec
from autoq.search.setup import ensure_data
from autoq.train import load_problem

FNO_KWARGS = {"n_modes": [16], "hidden_channels": 32, "in_channels": 10, "out_channels": 1,
              "n_layers": 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("neuralop_fno"))
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    args = parser.parse_args()
    models = require("neuralop.models", extra="neuralop", feature="this example")

    space = {
        "name": "neuralop-fno-burgers",
        "description": "neuraloperator's FNO on 1D Burgers, from its trained checkpoint",
        "data": {"pde": "burgers", "path": "data/burgers_small.h5", "input_steps": 10,
                 "target_steps": 1, "generate": {"samples": 128, "resolution": 256,
                                                 "frames": 41}},
        "model": {"factory": "neuralop.models:FNO", "kwargs": FNO_KWARGS,
                  "checkpoint": str(args.out / "fno.pt"), "rescale": "finetune",
                  "finetune_epochs": 2},
        "train": {"epochs": 5, "lr": 1.0e-3, "batch_size": 32},
        "qat": {"epochs": 1, "lr": 1.0e-4, "batch_size": 32},
        "space": {"scales": [1.0, 0.7, 0.5, 0.3], "weight_bits": [2, 4, 8],
                  "act_bits": [4, 8, 16], "granularity": "per_layer"},
        "search": {"sampler": "autoq", "trials": 12, "seed": 0},
    }
    spec = parse_spec(space)
    problem = load_problem(ensure_data(spec), pde="burgers", input_steps=10, target_steps=1)
    windows = problem.train_windows
    fno = models.FNO(**{**FNO_KWARGS, "n_modes": tuple(FNO_KWARGS["n_modes"])})
    optimiser = torch.optim.Adam(fno.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps)
    generator = torch.Generator().manual_seed(0)
    for step in range(args.steps):
        inputs, targets = windows.batch(torch.randint(len(windows), (32,), generator=generator))
        loss = F.mse_loss(fno(inputs), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step}: training MSE {loss.item():.3e}")

    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(tensor_state(fno), args.out / "fno.pt")
    (args.out / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    print(f"\nwrote {args.out / 'fno.pt'} and {args.out / 'space.yaml'}; now:\n"
          f"  autoq search {args.out / 'space.yaml'} --trials 12\n"
          f"  autoq pareto {space['name']}\n"
          f"  autoq pick {space['name']} --max-ratio 1.1")


if __name__ == "__main__":
    main()
