"""A learning problem: a data file, its split and the window shape, and solvers built for it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

from autoq.data import PDEData, Split, TrajectoryWindows, check_window, read_pde_file
from autoq.data import split_samples as make_split
from autoq.models import build_model
from autoq.models.config import ModelConfig
from autoq.train.solver import ScaledSolver

Subset = Literal["train", "val", "test"]


@dataclass(frozen=True)
class Problem:
    """A data set with its train/val/test split and the input/target window.

    Attributes:
        data: the trajectories.
        split: sample indices per subset.
        input_steps: past states the model sees.
        target_steps: future states it predicts per pass.
        data_digest: SHA-256 of the data file, part of every cache key built on it.
    """

    data: PDEData
    split: Split
    input_steps: int
    target_steps: int
    data_digest: str

    def windows(self, subset: Subset, *, unroll: int = 1) -> TrajectoryWindows:
        """Every window of ``subset``; ``unroll`` passes' worth of targets per window."""
        return TrajectoryWindows(self.data, getattr(self.split, subset),
                                 input_steps=self.input_steps,
                                 target_steps=self.target_steps * unroll)

    @cached_property
    def train_windows(self) -> TrajectoryWindows:
        return self.windows("train")

    @cached_property
    def val_windows(self) -> TrajectoryWindows:
        return self.windows("val")

    @property
    def in_channels(self) -> int:
        return self.train_windows.in_channels

    @property
    def out_channels(self) -> int:
        return self.train_windows.out_channels

    def build_solver(self, model: ModelConfig, *, scale: float) -> ScaledSolver:
        """A fresh network for ``model`` wrapped at ``scale``, normalised on the training set."""
        network = build_model(model, spatial_dims=self.data.spatial_dims,
                              in_channels=self.in_channels, out_channels=self.out_channels)
        solver = ScaledSolver(
            network, data_shape=self.data.spatial_shape, scale=scale, fields=self.data.fields,
            input_steps=self.input_steps, target_steps=self.target_steps,
            steady=self.data.steady, in_channels=self.in_channels,
        )
        solver.fit_normalisation(self.train_windows)
        return solver


def load_problem(
    path: str | os.PathLike[str],
    *,
    pde: str | None = None,
    input_steps: int,
    target_steps: int,
    split_seed: int = 0,
) -> Problem:
    """Read the data file at ``path`` and split it; errors name the file or argument."""
    data = read_pde_file(path, pde)
    check_window(data, input_steps=input_steps, target_steps=target_steps)
    return Problem(data=data, split=make_split(data.samples, seed=split_seed),
                   input_steps=input_steps, target_steps=target_steps,
                   data_digest=file_digest(path))


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, computed once per (path, size, modification time)."""
    source = Path(path).resolve()
    stat = source.stat()
    return _digest(str(source), stat.st_size, stat.st_mtime_ns)


@cache
def _digest(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            sha.update(chunk)
    return sha.hexdigest()
