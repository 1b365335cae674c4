"""The training loop shared by float training and QAT, and the evaluation metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from autoq.data import PDEData, RandomStartSampler, TrajectoryWindows
from autoq.errors import TrialError
from autoq.train.config import TrainConfig
from autoq.train.solver import ScaledSolver


@dataclass(frozen=True)
class FitResult:
    """What a training run did: mean training loss per epoch and wall time."""

    epoch_losses: tuple[float, ...]
    seconds: float


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Equation (5) of the paper: the squared error averaged over space, steps and fields."""
    return torch.mean((prediction - target) ** 2)


def _batches(indices: list[int], batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(indices), batch_size):
        yield torch.tensor(indices[start:start + batch_size])


def fit(
    solver: ScaledSolver,
    windows: TrajectoryWindows,
    config: TrainConfig,
    *,
    seed: int = 0,
    description: str | None = None,
) -> FitResult:
    """Train ``solver`` (its network, or a quantization sim inside it) on ``windows``.

    Adam (AdamW when weight decay is set), linear warm-up then cosine annealing per optimiser
    step, the paper's random-start epochs. ``windows`` must hold ``config.unroll *
    solver.target_steps`` target steps. A non-finite loss raises :class:`TrialError`.
    """
    run = TrainingRun(solver, windows, config, seed=seed, description=description)
    return run.advance()


class TrainingRun:
    """One run of :func:`fit`'s schedule that can pause after any optimiser step and go on.

    Running it to step ``k``, doing anything else that draws no training state (evaluating the
    solver), then on to the end is the same run as :func:`fit`: the schedule, the optimiser's
    state, the batches and torch's random stream carry over, so a pause wastes no step. The
    search's multi-fidelity trials screen a configuration on a prefix of its QAT this way and
    continue the promising ones.

    Args:
        solver: the solver to train (its network, or a quantization sim inside it).
        windows: the training windows.
        config: the recipe; its epochs fix the schedule's length.
        seed: seed of the batches and of torch's random stream.
        description: a progress bar's title (none when ``None``).
    """

    def __init__(self, solver: ScaledSolver, windows: TrajectoryWindows, config: TrainConfig,
                 *, seed: int = 0, description: str | None = None) -> None:
        self.solver = solver
        self.windows = windows
        self.config = config
        self.seed = seed
        self.description = description
        self.steps_per_epoch = math.ceil(
            len(RandomStartSampler(windows, seed=seed)) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.steps_done = 0
        self.epoch_losses: list[float] = []
        self.seconds = 0.0
        self._steps: Iterator[None] | None = None
        self._rng_state: torch.Tensor | None = None

    def advance(self, until: int | None = None) -> FitResult:
        """Train up to optimiser step ``until`` (default: the end of the schedule; never
        back), then leave the solver in eval mode; what the run did so far."""
        target = self.total_steps if until is None else min(until, self.total_steps)
        if target > self.steps_done:
            started = time.perf_counter()
            if self._steps is None:
                torch.manual_seed(self.seed)
                self._steps = self._run()
            else:
                assert self._rng_state is not None  # saved when the last advance paused
                torch.set_rng_state(self._rng_state)
            self.solver.train()
            while self.steps_done < target:
                next(self._steps)
            if self.steps_done == self.total_steps:
                next(self._steps, None)  # the last epoch's loss and the bar's close
            self._rng_state = torch.get_rng_state()
            self.seconds += time.perf_counter() - started
        self.solver.eval()
        return FitResult(tuple(self.epoch_losses), self.seconds)

    def _run(self) -> Iterator[None]:
        """The schedule's optimiser steps, yielding after each."""
        solver, windows, config = self.solver, self.windows, self.config
        device = next(solver.parameters()).device
        sampler = RandomStartSampler(windows, seed=self.seed)
        warmup_steps = round(config.warmup * self.total_steps)
        parameters = [p for p in solver.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: _warmup_cosine(step, warmup_steps, self.total_steps)
        )
        bar = tqdm(total=self.total_steps, desc=self.description, leave=False,
                   disable=self.description is None)
        for _ in range(config.epochs):
            running, count = 0.0, 0
            for batch in _batches(list(sampler), config.batch_size):
                inputs, targets = (t.to(device) for t in windows.batch(batch))
                if config.unroll == 1:
                    prediction = solver(inputs)
                else:
                    prediction = solver.rollout(inputs, config.unroll,
                                                grad_last_only=config.pushforward)
                    if config.pushforward:
                        keep = solver.target_steps * solver.fields
                        prediction, targets = prediction[:, -keep:], targets[:, -keep:]
                loss = mse(prediction, targets)
                if not torch.isfinite(loss):
                    raise TrialError(f"training loss became {loss.item()} after "
                                     f"{len(self.epoch_losses)} epoch(s)")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                running += loss.item() * len(batch)
                count += len(batch)
                bar.update()
                self.steps_done += 1
                yield
            self.epoch_losses.append(running / count)
            bar.set_postfix(loss=f"{self.epoch_losses[-1]:.3g}")
        bar.close()


def _warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def evaluate(solver: nn.Module, windows: TrajectoryWindows, *, batch_size: int = 64) -> float:
    """One-step validation MSE over every window, at the data resolution."""
    solver.eval()
    device = next(solver.parameters()).device
    total, count = 0.0, 0
    for batch in _batches(list(range(len(windows))), batch_size):
        inputs, targets = (t.to(device) for t in windows.batch(batch))
        total += torch.sum((solver(inputs) - targets) ** 2).item()
        count += targets.numel()
    return total / count


@torch.no_grad()
def persistence_mse(windows: TrajectoryWindows, *, batch_size: int = 256) -> float | None:
    """MSE of the trivial forecast that repeats the last input state for every target step —
    the bar a time-stepping model must clear; ``None`` for steady problems."""
    if windows.coefficients is not None:
        return None
    total, count = 0.0, 0
    for batch in _batches(list(range(len(windows))), batch_size):
        inputs, targets = windows.batch(batch)
        last = inputs[:, -windows.fields:].repeat(1, windows.target_steps,
                                                  *([1] * len(windows.spatial_shape)))
        total += torch.sum((last - targets) ** 2).item()
        count += targets.numel()
    return total / count


@torch.no_grad()
def evaluate_rollout(
    solver: ScaledSolver, data: PDEData, samples: np.ndarray, *, horizon: int | None = None,
    batch_size: int = 64,
) -> float:
    """Rollout MSE: from the first ``input_steps`` frames, predict autoregressively up to
    ``horizon`` frames (default: the rest of the trajectory) and average the squared error over
    every predicted frame, at the data resolution. Steady problems: the one-step MSE."""
    available = data.frames - solver.input_steps
    horizon = available if horizon is None else min(horizon, available)
    passes = max(1, math.ceil(horizon / solver.target_steps)) if not data.steady else 1
    windows = TrajectoryWindows(data, samples, input_steps=solver.input_steps,
                                target_steps=1 if data.steady else passes * solver.target_steps)
    if data.steady:
        return evaluate(solver, windows, batch_size=batch_size)
    device = next(solver.parameters()).device
    keep = horizon * solver.fields
    total, count = 0.0, 0
    first_windows = torch.arange(len(samples)) * windows.starts_per_sample
    for batch in first_windows.split(batch_size):
        inputs, targets = (t.to(device) for t in windows.batch(batch))
        prediction = solver.rollout(inputs, passes)[:, :keep]
        total += torch.sum((prediction - targets[:, :keep]) ** 2).item()
        count += prediction.numel()
    return total / count
