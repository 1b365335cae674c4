"""What every PDE data family and file layout shares: the in-memory form, the selection of what
to read, and safe HDF5 writing/reading."""

from __future__ import annotations

import json
import math
import numbers
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from autoq import __version__
from autoq.errors import DataError, SpecError


@dataclass(frozen=True)
class PDEData:
    """A PDE data set in memory, whatever file layout it came from.

    Attributes:
        pde: what the data are: the family name (``burgers``, ``diffsorp``, ``darcy``, ``ns2d``),
            the PDE of another public layout (``advection``, ``cfd2d``, …) or a user's name.
        trajectories: ``(samples, time, *space, fields)`` float32. Steady problems (Darcy) hold
            the solution as a single frame: ``(samples, 1, *space, fields)``.
        coords: one 1D array of cell-centre coordinates per spatial axis.
        times: ``(time,)`` frame times (frame indices when the source has none), or ``None``
            for steady problems.
        coefficients: ``(samples, *space, channels)`` time-independent model input (Darcy's
            a(x)), or ``None`` for time-dependent problems.
        attrs: physical parameters read from the file (``nu``, ``beta``, ...).
    """

    pde: str
    trajectories: np.ndarray
    coords: tuple[np.ndarray, ...]
    times: np.ndarray | None = None
    coefficients: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return self.trajectories.shape[0]

    @property
    def frames(self) -> int:
        return self.trajectories.shape[1]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.trajectories.shape[2:-1])

    @property
    def spatial_dims(self) -> int:
        return self.trajectories.ndim - 3

    @property
    def fields(self) -> int:
        return self.trajectories.shape[-1]

    @property
    def steady(self) -> bool:
        """True when the task is coefficient → solution rather than time stepping."""
        return self.coefficients is not None


class Progress(Protocol):
    """Anything with tqdm's ``update(n)``; generators report finished samples through it."""

    def update(self, n: int = 1) -> Any: ...


@dataclass(frozen=True)
class PDEFamily:
    """One PDE: its classical-solver generator and the reader of its public layout.

    Attributes:
        name: registry key and ``autoq datagen`` argument.
        spatial_dims: 1 or 2.
        generate: ``generate(out, *, samples, resolution, seed, progress, **params) -> Path``;
            writes the public layout atomically. ``resolution=None`` means the public default.
        read: ``read(path, selection=None) -> PDEData`` for a file in this family's public
            layout (all of it, or the selected part).
        detect: ``detect(h5file) -> bool``: does an open file look like this family's layout?
        default_resolution: the public data set's grid size per axis.
        default_samples: the public data set's sample count.
        fields: physical fields per state (Navier–Stokes: smoke, vx, vy).
        coefficient_channels: channels of the time-independent input of a steady problem
            (Darcy's a(x)); 0 for time-dependent problems.
    """

    name: str
    spatial_dims: int
    generate: Callable[..., Path]
    read: Callable[..., PDEData]
    detect: Callable[[h5py.File], bool]
    default_resolution: int
    default_samples: int
    fields: int
    coefficient_channels: int = 0

    @property
    def steady(self) -> bool:
        """True when the task is coefficient → solution rather than time stepping."""
        return self.coefficient_channels > 0


@dataclass(frozen=True)
class Selection:
    """Which part of a data file to read; everything by default.

    Every ``sample_stride``-th sample from the first, at most ``max_samples`` of them; every
    ``time_stride``-th frame from the first; every ``space_stride``-th grid point from the first,
    along each spatial axis. Readers pass these as slices to h5py (or to a memory map), so only
    the selected values are ever read from disk.

    Raises:
        SpecError: a value is not a positive integer; the message names it.
    """

    max_samples: int | None = None
    sample_stride: int = 1
    time_stride: int = 1
    space_stride: int = 1

    def __post_init__(self) -> None:
        if self.max_samples is not None:
            check_int("max_samples", self.max_samples, minimum=1)
        for name in ("sample_stride", "time_stride", "space_stride"):
            check_int(name, getattr(self, name), minimum=1)

    @property
    def everything(self) -> bool:
        """True when the selection is the whole file."""
        return self == Selection()

    def samples(self, count: int) -> slice:
        """The selected samples of ``count``."""
        stop = count if self.max_samples is None else min(count,
                                                          self.max_samples * self.sample_stride)
        return slice(0, stop, self.sample_stride)

    def frames(self, count: int) -> slice:
        """The selected frames of ``count``."""
        return slice(0, count, self.time_stride)

    def space(self, spatial_shape: tuple[int, ...]) -> tuple[slice, ...]:
        """The selected grid points, one slice per spatial axis."""
        return tuple(slice(0, n, self.space_stride) for n in spatial_shape)


def selected(part: slice, count: int) -> int:
    """How many of ``count`` items the slice ``part`` selects."""
    return len(range(count)[part])


@dataclass(frozen=True)
class Layout:
    """A public file layout autoq reads as it is (keys, dtypes and axis orders of the files).

    Attributes:
        name: registry key and the spec's ``data.layout`` (``pdebench-burgers``).
        read: ``read(path, selection, **options) -> PDEData``, reading only the selected part;
            a file that does not hold this layout is a DataError naming the file and the key.
        files: the public files in this layout, named in messages.
        family: the :data:`~autoq.data.registry.PDES` family whose generator writes this
            layout, or ``None`` when autoq has no generator for it.
        options: the keyword options ``read`` takes beyond the selection (the generic layout's
            array names); other layouts take none.
        periodic: whether the data are periodic in space (``None``: not known, e.g. PDEBench's
            CFD files come with either boundary); the ``fourier`` resize is refused on data
            known not to be.
    """

    name: str
    read: Callable[..., PDEData]
    files: str
    family: str | None = None
    options: tuple[str, ...] = ()
    periodic: bool | None = None


@contextmanager
def atomic_h5(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Open ``path`` for writing so that it appears only when complete.

    The file is written under a hidden temporary name in the same folder and renamed at the end;
    on any error or interrupt the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with h5py.File(tmp, "w") as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


GENERATOR_ATTR = "autoq_generator"
"""Root attribute of every file autoq's generators write: ``"autoq <version> <family> solver"``."""
PARAMETERS_ATTR = "autoq_parameters"
"""Root attribute beside :data:`GENERATOR_ATTR`: the generator's arguments as JSON."""


def write_label(handle: h5py.File, family: str, parameters: Mapping[str, Any]) -> None:
    """Mark an open file as written by autoq's ``family`` solver with ``parameters``.

    autoq's files share the public layouts key for key, so only these root attributes tell them
    from PDEBench's or PDEArena's own files. Readers never look at them.

    Args:
        handle: the file being written.
        family: the PDE family whose solver wrote it (``burgers``).
        parameters: the generator's arguments (samples, resolution, seed, frames, physics):
            numbers, strings, ``None`` or numpy scalars; stored as JSON with sorted keys.
    """
    handle.attrs[GENERATOR_ATTR] = f"autoq {__version__} {family} solver"
    # Arguments may arrive as numpy scalars (np.int64 is no int to json); .item() unwraps them.
    handle.attrs[PARAMETERS_ATTR] = json.dumps(dict(parameters), sort_keys=True,
                                               default=lambda value: value.item())


@contextmanager
def open_h5(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading, with a :class:`DataError` naming it when that fails."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"data file not found: {source}")
    try:
        handle = h5py.File(source, "r")
    except OSError as e:
        raise DataError(f"{source} is not a readable HDF5 file: {e}") from e
    with handle:
        yield handle


def require_dataset(
    handle: h5py.File | h5py.Group, key: str, *, ndim: int, source: str | os.PathLike[str]
) -> h5py.Dataset:
    """Return ``handle[key]`` if it is a dataset of rank ``ndim``, else a DataError naming both."""
    if key not in handle:
        raise DataError(f"{source}: missing key {key!r} (found: {sorted(handle.keys())})")
    item = handle[key]
    if not isinstance(item, h5py.Dataset):
        raise DataError(f"{source}: {key!r} is a group, expected a dataset")
    if item.ndim != ndim:
        raise DataError(f"{source}: {key!r} has shape {item.shape}, expected {ndim} axes")
    return item


def read_float(
    dataset: h5py.Dataset, index: tuple[Any, ...], *, key: str, source: str | os.PathLike[str]
) -> np.ndarray:
    """``dataset[index]`` as float32, converted by HDF5 while reading (no float64 copy).

    Raises:
        DataError: the dataset does not hold real floating-point numbers; names file and key.
    """
    require_float(dataset, key=key, source=source)
    return np.asarray(dataset.astype(np.float32)[index])


def require_float(dataset: h5py.Dataset, *, key: str, source: str | os.PathLike[str]) -> None:
    """A DataError naming file and key unless ``dataset`` holds real floating-point numbers."""
    if dataset.dtype.kind != "f":
        raise DataError(f"{source}: {key!r} has dtype {dataset.dtype}, expected floating point")


def cell_centres(n: int, length: float = 1.0) -> np.ndarray:
    """Cell-centre coordinates ``(i + 0.5) * length / n`` of a uniform grid, float32."""
    return ((np.arange(n) + 0.5) * (length / n)).astype(np.float32)


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """``value`` as an int if it is an integer ``>= minimum``; a SpecError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise SpecError(f"{name}={value!r}: must be an integer >= {minimum}")
    return int(value)


def check_real(
    name: str, value: Any, *, minimum: float | None = None, strict: bool = False
) -> float:
    """``value`` as a float if it is finite and ``>= minimum`` (``> minimum`` when ``strict``);
    a SpecError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise SpecError(f"{name}={value!r}: must be a finite number")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise SpecError(f"{name}={value!r}: must be {'>' if strict else '>='} {minimum}")
    return float(value)
