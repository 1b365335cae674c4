"""A neuraloperator FNO, trained with its own loop, searched by autoq from its checkpoint.

Writes ``neuralop_fno/fno.pt`` (the trained weights) and ``neuralop_fno/space.yaml`` (a search
space whose model is ``factory: neuralop.models:FNO`` with that checkpoint) for 1D Burgers at
256 cells, then prints the commands that search it::

    python examples/neuralop_fno.py                 # trains for about a minute on 2 CPU cores
    autoq search neuralop_fno/space.yaml --trials 12
    autoq pareto neuralop-fno-burgers --plot neuralop_fno/front.png
    autoq pick neuralop-fno-burgers --max-ratio 1.1

With ``--factorization tucker --ranks 0.5 0.2 0.05`` it trains a TFNO at the first rank instead
and the space searches the factorization rank beside bits and scale (the checkpoint is
re-factorized to each rank and fine-tuned); the search is then ``neuralop-tfno-burgers``.

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
    parser.add_argument("--factorization", choices=["tucker", "cp", "tt"], default=None,
                        help="train a TFNO with factorized spectral weights")
    parser.add_argument("--ranks", type=float, nargs="+", default=None,
                        help="factorization ranks to search (fractions; the first is trained)")
    args = parser.parse_args()
    models = require("neuralop.models", extra="neuralop", feature="this example")
    if args.ranks and not args.factorization:
        parser.error("--ranks needs --factorization")
    kwargs: dict[str, object] = dict(FNO_KWARGS)
    name = "neuralop-fno-burgers"
    if args.factorization:
        ranks = args.ranks or [0.5]
        kwargs.update(factorization=args.factorization, rank=ranks[0])
        name = "neuralop-tfno-burgers"

    space = {
        "name": name,
        "description": "neuraloperator's FNO on 1D Burgers, from its trained checkpoint",
        "data": {"pde": "burgers", "path": "data/burgers_small.h5", "input_steps": 10,
                 "target_steps": 1, "generate": {"samples": 128, "resolution": 256,
                                                 "frames": 41}},
        "model": {"factory": "neuralop.models:FNO", "kwargs": kwargs,
                  "checkpoint": str(args.out / "fno.pt"), "rescale": "finetune",
                  "finetune_epochs": 2},
        "train": {"epochs": 5, "lr": 1.0e-3, "batch_size": 32},
        "qat": {"epochs": 1, "lr": 1.0e-4, "batch_size": 32},
        "space": {"scales": [1.0, 0.7, 0.5, 0.3], "weight_bits": [2, 4, 8],
                  "act_bits": [4, 8, 16], "granularity": "per_layer"},
        "search": {"sampler": "autoq", "trials": 12, "seed": 0},
    }
    if args.ranks:
        space["space"]["ranks"] = args.ranks  # type: ignore[index]
    spec = parse_spec(space)
    problem = load_problem(ensure_data(spec), pde="burgers", input_steps=10, target_steps=1)
    windows = problem.train_windows
    torch.manual_seed(0)
    fno = models.FNO(**{**kwargs, "n_modes": tuple(FNO_KWARGS["n_modes"])})
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
