"""Splits, trajectory windows and the paper's random-start epoch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autoq.data import PDEData, RandomStartSampler, TrajectoryWindows, split_samples
from autoq.errors import SpecError


def _trajectories(samples: int = 6, frames: int = 9, size: int = 16, fields: int = 2) -> PDEData:
    # Value = 1000·sample + 10·frame + field, so a window's content tells where it came from.
    s, t, _, f = np.meshgrid(
        np.arange(samples), np.arange(frames), np.arange(size), np.arange(fields), indexing="ij"
    )
    values = (1000 * s + 10 * t + f).astype(np.float32)
    return PDEData(pde="toy", trajectories=values, coords=(np.linspace(0, 1, size),),
                   times=np.arange(frames, dtype=np.float32))


def test_split_samples_is_disjoint_complete_and_seeded() -> None:
    split = split_samples(50, seed=3)
    joined = np.concatenate([split.train, split.val, split.test])
    assert sorted(joined.tolist()) == list(range(50))
    assert (len(split.val), len(split.test)) == (5, 5)
    again = split_samples(50, seed=3)
    assert np.array_equal(split.val, again.val)
    assert not np.array_equal(split.val, split_samples(50, seed=4).val)


def test_windows_shapes_and_content_are_time_major() -> None:
    data = _trajectories()
    windows = TrajectoryWindows(data, np.array([2, 4]), input_steps=3, target_steps=2)
    assert len(windows) == 2 * (9 - 3 - 2 + 1)
    assert (windows.in_channels, windows.out_channels) == (6, 4)
    inputs, targets = windows[windows.starts_per_sample + 1]  # sample 4, start frame 1
    assert inputs.shape == (6, 16) and targets.shape == (4, 16)
    # channel = step * fields + field
    assert inputs[:, 0].tolist() == [4010, 4011, 4020, 4021, 4030, 4031]
    assert targets[:, 0].tolist() == [4040, 4041, 4050, 4051]


def test_steady_windows_map_coefficient_to_solution() -> None:
    solution = np.random.default_rng(0).random((4, 1, 8, 8, 1), dtype=np.float32)
    coefficient = np.random.default_rng(1).random((4, 8, 8, 1), dtype=np.float32)
    data = PDEData(pde="darcy", trajectories=solution, coords=(np.arange(8),) * 2,
                   coefficients=coefficient)
    windows = TrajectoryWindows(data, np.arange(4), input_steps=1, target_steps=1)
    inputs, targets = windows[2]
    assert inputs.shape == (1, 8, 8) and targets.shape == (1, 8, 8)
    assert torch.equal(inputs[0], torch.from_numpy(coefficient[2, ..., 0]))
    assert torch.equal(targets[0], torch.from_numpy(solution[2, 0, ..., 0]))
    with pytest.raises(SpecError, match="input_steps"):
        TrajectoryWindows(data, np.arange(4), input_steps=2, target_steps=1)


def test_window_longer_than_trajectory_names_the_arguments() -> None:
    with pytest.raises(SpecError, match=r"input_steps \+ target_steps = 7 \+ 3 exceeds the 9"):
        TrajectoryWindows(_trajectories(), np.arange(3), input_steps=7, target_steps=3)
    with pytest.raises(SpecError, match="target_steps must be a positive integer"):
        TrajectoryWindows(_trajectories(), np.arange(3), input_steps=1, target_steps=0)


def test_random_start_epoch_repeats_to_cover_the_trajectory() -> None:
    data = _trajectories(samples=5, frames=9)
    windows = TrajectoryWindows(data, np.arange(5), input_steps=2, target_steps=3)
    sampler = RandomStartSampler(windows, seed=0)
    indices = list(sampler)
    assert len(indices) == len(sampler) == 5 * math.ceil((9 - 2) / 3)
    assert all(0 <= i < len(windows) for i in indices)
    # each pass visits every trajectory exactly once
    per_pass = [sorted(i // windows.starts_per_sample for i in indices[k:k + 5])
                for k in range(0, len(indices), 5)]
    assert all(p == list(range(5)) for p in per_pass)
    assert len({i % windows.starts_per_sample for i in indices}) > 1


def test_batch_gathers_the_same_windows_as_items() -> None:
    windows = TrajectoryWindows(_trajectories(), np.array([0, 3, 5]), input_steps=2,
                                target_steps=3)
    indices = torch.tensor([0, 7, 3, len(windows) - 1])
    inputs, targets = windows.batch(indices)
    for row, index in enumerate(indices.tolist()):
        item_inputs, item_targets = windows[index]
        assert torch.equal(inputs[row], item_inputs)
        assert torch.equal(targets[row], item_targets)
