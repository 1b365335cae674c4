"""A learning problem: a data set (from a file or from memory), its split and the window shape,
and solvers built for it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from autoq.bits import Resample
from autoq.data import (
    PDEData,
    Selection,
    Split,
    TrajectoryWindows,
    check_window,
    detect_family,
    family_layout,
    read_data,
)
from autoq.data.dataset import split_of
from autoq.errors import SpecError
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
        data_digest: SHA-256 of the data (of the file when it was read whole, else of the
            arrays), part of every cache key built on it.
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

    def build_solver(self, model: ModelConfig, *, scale: float, resample: Resample = "linear"
                     ) -> ScaledSolver:
        """A fresh network for ``model`` wrapped at ``scale`` (resized by ``resample``),
        normalised on the training set."""
        network = build_model(model, spatial_dims=self.data.spatial_dims,
                              in_channels=self.in_channels, out_channels=self.out_channels)
        solver = ScaledSolver(
            network, data_shape=self.data.spatial_shape, scale=scale, fields=self.data.fields,
            input_steps=self.input_steps, target_steps=self.target_steps,
            steady=self.data.steady, in_channels=self.in_channels, resample=resample,
        )
        solver.fit_normalisation(self.train_windows)
        return solver


def load_problem(
    path: str | os.PathLike[str],
    *,
    pde: str | None = None,
    layout: str | None = None,
    selection: Selection | None = None,
    options: Mapping[str, Any] | None = None,
    input_steps: int,
    target_steps: int,
    split_seed: int = 0,
) -> Problem:
    """Read the data file at ``path`` in its layout and split it; errors name the file or
    argument.

    Args:
        path: the data file (or PDEArena's directory of Navier–Stokes files).
        pde: a family of :data:`~autoq.data.PDES`: the file holds its layout.
        layout: a key of :data:`~autoq.data.LAYOUTS`; with neither, the family's layout is
            detected.
        selection: the samples, frames and grid points to read; ``None`` reads everything.
        options: the layout's options (the generic layout's array names).
        input_steps: past states the model sees.
        target_steps: future states it predicts per pass.
        split_seed: seed of the train/val/test split by sample, for data without their own
            split (PDEArena's files have theirs).

    Returns:
        The problem. Its ``data_digest`` is the file's SHA-256 when the whole file was read
        without options (as before selections existed, so cached float models stay valid),
        else the SHA-256 of the arrays read.
    """
    if pde is not None:
        named = family_layout(pde)
        if layout is not None and layout != named:
            raise SpecError(f"pde={pde!r} reads layout {named!r}, not layout={layout!r}")
        layout = named
    if layout is None:
        layout = family_layout(detect_family(path).name)
    options = {name: value for name, value in (options or {}).items() if value is not None}
    data = read_data(path, layout, selection=selection, **options)
    whole = (selection is None or selection.everything) and not options and Path(path).is_file()
    return problem_from_data(data, input_steps=input_steps, target_steps=target_steps,
                             split_seed=split_seed,
                             digest=file_digest(path) if whole else None)


def problem_from_data(
    data: PDEData,
    *,
    input_steps: int,
    target_steps: int,
    split_seed: int = 0,
    digest: str | None = None,
) -> Problem:
    """A problem on data already in memory (e.g. from :func:`autoq.data.from_arrays`).

    Args:
        data: the data set.
        input_steps: past states the model sees (1 for steady data).
        target_steps: future states it predicts per pass (1 for steady data).
        split_seed: seed of the train/val/test split by sample (at least 3 samples), for data
            without their own split (:func:`autoq.data.dataset.split_of`).
        digest: the data's identity in the float-model cache; ``None``: the SHA-256 of its
            arrays (:func:`data_digest`).

    Raises:
        SpecError: the window does not fit the trajectories, or too few samples to split.
    """
    check_window(data, input_steps=input_steps, target_steps=target_steps)
    return Problem(data=data, split=split_of(data, seed=split_seed),
                   input_steps=input_steps, target_steps=target_steps,
                   data_digest=digest if digest is not None else data_digest(data))


def data_digest(data: PDEData) -> str:
    """SHA-256 of what training sees of a data set: the trajectories and the coefficients
    (shape, dtype and values)."""
    sha = hashlib.sha256()
    for name, array in (("trajectories", data.trajectories), ("coefficients", data.coefficients)):
        if array is None:
            continue
        values = np.ascontiguousarray(array)
        sha.update(f"{name}:{values.dtype.str}:{values.shape};".encode())
        sha.update(values.data)
    return sha.hexdigest()


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
