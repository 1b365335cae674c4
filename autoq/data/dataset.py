"""Trajectory windows and train/validation/test splits for training neural PDE solvers.

Channel layout used everywhere downstream: a window of ``k`` states with ``f`` fields is a tensor
``(k * f, *space)``, time-major (channel ``step * f + field``). Steady problems (Darcy) map the
coefficient channels to the solution.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from autoq.data._common import PDEData
from autoq.data.ns2d import SPLIT_ATTR
from autoq.errors import SpecError


@dataclass(frozen=True)
class Split:
    """Sample indices of the three subsets, disjoint and sorted."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_of(data: PDEData, *, seed: int = 0) -> Split:
    """The data's own train/val/test split when it carries one (PDEArena's train/valid/test
    files or groups, in that order: ``attrs["split"]``), else :func:`split_samples` with
    ``seed``; data with their own split are never re-split."""
    own = data.attrs.get(SPLIT_ATTR)
    if own is None:
        return split_samples(data.samples, seed=seed)
    bounds = np.cumsum([own["train"], own["valid"], own["test"]])
    if bounds[-1] != data.samples:
        raise SpecError(f"the {data.pde} data's split {own} does not add up to its "
                        f"{data.samples} samples")
    rows = np.arange(data.samples)
    return Split(train=rows[:bounds[0]], val=rows[bounds[0]:bounds[1]], test=rows[bounds[1]:])


def split_samples(
    samples: int, *, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> Split:
    """Split ``samples`` trajectories by sample (never by time) with a seeded permutation.

    Every subset gets at least one sample; the training set gets the rest.
    """
    if samples < 3:
        raise SpecError(f"a train/val/test split needs at least 3 samples, the data has {samples}")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 0.5:
            raise SpecError(f"{name} must lie in (0, 0.5), got {value!r}")
    order = np.random.default_rng(seed).permutation(samples)
    n_val = max(1, round(samples * val_fraction))
    n_test = max(1, round(samples * test_fraction))
    return Split(
        train=np.sort(order[n_val + n_test:]),
        val=np.sort(order[:n_val]),
        test=np.sort(order[n_val:n_val + n_test]),
    )


class TrajectoryWindows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Every window of ``input_steps`` past states and ``target_steps`` future states.

    Item ``i`` is ``(inputs, targets)``: ``inputs`` ``(input_steps * fields [+ coefficient
    channels], *space)``, ``targets`` ``(target_steps * fields, *space)``, both float32 at the
    data resolution. For steady data the inputs are the coefficient channels and the target the
    solution; ``input_steps``/``target_steps`` must then be 1.

    Args:
        data: the data set.
        samples: indices of the trajectories to draw from (e.g. ``split.train``).
        input_steps: number of past states the model sees.
        target_steps: number of future states it predicts.
    """

    def __init__(
        self, data: PDEData, samples: np.ndarray, *, input_steps: int, target_steps: int
    ) -> None:
        check_window(data, input_steps=input_steps, target_steps=target_steps)
        self.data = data
        self.samples = np.asarray(samples, dtype=np.int64)
        self.input_steps = input_steps
        self.target_steps = target_steps
        # (samples, time, fields, *space): channel-first once, so items are plain views.
        states = np.moveaxis(data.trajectories[self.samples], -1, 2)
        self.states = torch.from_numpy(np.ascontiguousarray(states, dtype=np.float32))
        self.coefficients = (
            None
            if data.coefficients is None
            else torch.from_numpy(
                np.ascontiguousarray(np.moveaxis(data.coefficients[self.samples], -1, 1),
                                     dtype=np.float32)
            )
        )
        self.starts_per_sample = 1 if data.steady else data.frames - input_steps - target_steps + 1

    def __len__(self) -> int:
        return len(self.samples) * self.starts_per_sample

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample, start = divmod(index, self.starts_per_sample)
        return self.window(sample, start)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` stacked: ``(batch, in_channels, *space)``, ``(batch, out_channels,
        *space)``, gathered in one indexing operation rather than item by item."""
        samples = torch.div(indices, self.starts_per_sample, rounding_mode="floor")
        starts = indices % self.starts_per_sample
        if self.coefficients is not None:
            return self.coefficients[samples], self.states[samples, 0]
        offsets = torch.arange(self.input_steps + self.target_steps)
        frames = self.states[samples[:, None], starts[:, None] + offsets]
        inputs = frames[:, :self.input_steps].flatten(1, 2)
        return inputs, frames[:, self.input_steps:].flatten(1, 2)

    def window(self, sample: int, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The window of local sample ``sample`` whose first input state is frame ``start``."""
        if self.coefficients is not None:
            return self.coefficients[sample], self.states[sample, 0]
        inputs = self.states[sample, start:start + self.input_steps]
        end = start + self.input_steps
        targets = self.states[sample, end:end + self.target_steps]
        return inputs.flatten(0, 1), targets.flatten(0, 1)

    @property
    def fields(self) -> int:
        return self.states.shape[2]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.states.shape[3:])

    @property
    def in_channels(self) -> int:
        if self.coefficients is not None:
            return self.coefficients.shape[1]
        return self.input_steps * self.fields

    @property
    def out_channels(self) -> int:
        return self.target_steps * self.fields


class RandomStartSampler(Sampler[int]):
    """One epoch of the paper's training schedule (section 3.2).

    Each pass draws, for every trajectory, one random start time; the pass is repeated
    ``ceil((N_t - input_steps) / target_steps)`` times, so in expectation every frame is a target
    once per epoch.
    """

    def __init__(self, windows: TrajectoryWindows, *, seed: int = 0) -> None:
        self.windows = windows
        self.generator = torch.Generator().manual_seed(seed)
        frames = windows.states.shape[1]
        self.repeats = (
            1 if windows.coefficients is not None
            else math.ceil((frames - windows.input_steps) / windows.target_steps)
        )

    def __len__(self) -> int:
        return len(self.windows.samples) * self.repeats

    def __iter__(self) -> Iterator[int]:
        n = len(self.windows.samples)
        per_sample = self.windows.starts_per_sample
        for _ in range(self.repeats):
            order = torch.randperm(n, generator=self.generator)
            starts = torch.randint(per_sample, (n,), generator=self.generator)
            yield from (order * per_sample + starts).tolist()


def check_window(data: PDEData, *, input_steps: int, target_steps: int) -> None:
    """Raise a SpecError naming the argument when the window does not fit the trajectories."""
    for name, value in (("input_steps", input_steps), ("target_steps", target_steps)):
        if not isinstance(value, int) or value < 1:
            raise SpecError(f"{name} must be a positive integer, got {value!r}")
    if data.steady:
        if (input_steps, target_steps) != (1, 1):
            raise SpecError(f"{data.pde} is a steady problem (coefficient → solution): "
                            f"input_steps and target_steps must be 1, got {input_steps} and "
                            f"{target_steps}")
        return
    if input_steps + target_steps > data.frames:
        raise SpecError(f"input_steps + target_steps = {input_steps} + {target_steps} exceeds the "
                        f"{data.frames} frames of the {data.pde} trajectories")
