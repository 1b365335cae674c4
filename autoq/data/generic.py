"""Data in no public layout: one array ``(samples, time, *space, fields)``, from a file or memory.

The ``generic`` layout reads that array from an HDF5 file (the dataset named by ``key``), an
``.npy`` file or an ``.npz`` archive (the member named by ``key``), with optional arrays of the
same file holding the coordinates of each spatial axis (``coord_keys``), the frame times
(``time_key``) and, for a steady problem, the time-independent input (``coefficient_key``,
``(samples, *space, channels)``; the trajectories then hold one frame, the solution).

Only the selected part is read: HDF5 through h5py's slicing, ``.npy`` and uncompressed ``.npz``
members through memory maps, compressed ``.npz`` members by decompressing one sample at a time
and keeping the selected ones (a compressed member in Fortran order is the exception: numpy can
only read it whole).

:func:`from_arrays` builds the same :class:`~autoq.data._common.PDEData` from arrays in memory,
checked the same way.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np
from numpy.lib import format as npy_format

from autoq.data._common import (
    Layout,
    PDEData,
    Selection,
    cell_centres,
    open_h5,
    selected,
)
from autoq.errors import DataError, SpecError

OPTIONS = ("key", "coord_keys", "time_key", "coefficient_key")
"""The keyword options of :func:`read`, which a spec sets under ``data``."""

_REAL_KINDS = "fiu"  # floating point and integers: converted to float32


class _Array(Protocol):
    """What the reader needs of an array on disk: h5py datasets and numpy memory maps have it."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...

    @property
    def ndim(self) -> int: ...

    def __getitem__(self, index: Any) -> Any: ...


def from_arrays(
    trajectories: Any,
    *,
    coords: Sequence[Any] | None = None,
    times: Any | None = None,
    coefficients: Any | None = None,
    name: str = "custom",
) -> PDEData:
    """A data set from arrays in memory, checked like a file.

    Args:
        trajectories: ``(samples, time, *space, fields)`` real numbers (any array-like; kept
            without a copy when already a C-ordered float32 array). A steady problem holds one
            frame, the solution.
        coords: one 1D array per spatial axis, as long as that axis; ``None``: cell centres on
            [0, 1).
        times: ``(time,)`` frame times; ``None``: the frame indices (steady problems: none).
        coefficients: ``(samples, *space, channels)`` time-independent input of a steady
            problem (coefficient → solution); ``None`` for time stepping.
        name: what the data are, named in messages (``PDEData.pde``).

    Returns:
        The ``PDEData``, float32 throughout.

    Raises:
        DataError: an array has the wrong rank, shape or dtype, or holds NaN or infinity; the
            message names the argument.
        SpecError: ``name`` is not a non-empty string.
    """
    if not isinstance(name, str) or not name:
        raise SpecError(f"from_arrays: name={name!r}: must be a non-empty string")
    labels = {"trajectories": "from_arrays: trajectories", "coords": "from_arrays: coords",
              "times": "from_arrays: times", "coefficients": "from_arrays: coefficients"}
    values = _real(trajectories, labels["trajectories"])
    _check_trajectories(values.shape, labels["trajectories"])
    axes = None if coords is None else _coordinate_list(coords, values.ndim - 3, labels["coords"])
    return _assemble(name, values, axes, times, coefficients, labels=labels)


def read(
    path: str | os.PathLike[str],
    selection: Selection | None = None,
    *,
    key: str | None = None,
    coord_keys: Sequence[str] | None = None,
    time_key: str | None = None,
    coefficient_key: str | None = None,
) -> PDEData:
    """Read the selected part of one ``(samples, time, *space, fields)`` array from a file.

    Args:
        path: an HDF5 file, an ``.npy`` file or an ``.npz`` archive (told apart by the suffix;
            anything but ``.npy``/``.npz`` is read as HDF5).
        selection: the samples, frames and grid points to read; ``None`` reads everything.
        key: the array's name (an HDF5 dataset path or an ``.npz`` member); an ``.npy`` file
            holds one array and takes none.
        coord_keys: names of the 1D coordinate arrays, one per spatial axis; ``None``: cell
            centres on [0, 1).
        time_key: name of the ``(time,)`` frame times; ``None``: frame indices.
        coefficient_key: name of the ``(samples, *space, channels)`` input of a steady problem.

    Returns:
        ``PDEData`` named after the file's stem.

    Raises:
        SpecError: a key is missing from the arguments or given to an ``.npy`` file.
        DataError: the file is missing or unreadable, a named array is absent, or an array has
            the wrong rank, shape or dtype; the message names the file and the key.
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"data file not found: {source}")
    select = selection or Selection()
    options = {"key": key, "coord_keys": coord_keys, "time_key": time_key,
               "coefficient_key": coefficient_key}
    with _arrays(source) as (arrays, kind):
        if kind == "npy":
            given = sorted(option for option, value in options.items() if value is not None)
            if given:
                raise SpecError(f"{source}: an .npy file holds one array; {given} cannot name "
                                f"others (use an .npz or HDF5 file)")
            key = ""
        elif key is None:
            raise SpecError(f"{source}: the generic layout needs key, the name of the "
                            f"(samples, time, *space, fields) array; arrays here: "
                            f"{sorted(arrays)[:20]}")
        label = f"{source}: {key!r}" if key else str(source)
        labels = {"trajectories": label, "coords": f"{source}: coord_keys",
                  "times": f"{source}: {time_key!r}",
                  "coefficients": f"{source}: {coefficient_key!r}"}
        main = _named(arrays, key, source)
        _check_trajectories(main.shape, label)
        samples, frames, *grid = main.shape[:-1]
        space = select.space(tuple(grid))
        rows = select.samples(samples)
        time = select.frames(frames)
        trajectories = _take(main, (rows, time, *space, slice(None)), label)
        axes: list[np.ndarray] = [cell_centres(n)[part] for n, part in zip(grid, space,
                                                                            strict=True)]
        if coord_keys is not None:
            if isinstance(coord_keys, str) or len(coord_keys) != len(grid):
                raise DataError(f"{source}: coord_keys={coord_keys!r}: need one name per spatial "
                                f"axis, {len(grid)} for {label} of shape {main.shape}")
            axes = []
            for axis, (name, n, part) in enumerate(zip(coord_keys, grid, space, strict=True)):
                array = _named(arrays, name, source)
                if array.shape != (n,):
                    raise DataError(f"{source}: {name!r} has shape {array.shape}, expected "
                                    f"({n},): the length of spatial axis {axis} of {label}")
                axes.append(_take(array, (part,), f"{source}: {name!r}"))
        times: np.ndarray | None = np.arange(frames, dtype=np.float32)[time]
        if time_key is not None:
            array = _named(arrays, time_key, source)
            if array.shape != (frames,):
                raise DataError(f"{source}: {time_key!r} has shape {array.shape}, expected "
                                f"({frames},): the frames of {label}")
            times = _take(array, (time,), labels["times"])
        coefficients = None
        if coefficient_key is not None:
            array = _named(arrays, coefficient_key, source)
            if array.ndim != len(grid) + 2 or tuple(array.shape[:-1]) != (samples, *grid):
                raise DataError(f"{source}: {coefficient_key!r} has shape {array.shape}, "
                                f"expected ({samples}, {', '.join(map(str, grid))}, channels) "
                                f"to match {label} {main.shape}")
            coefficients = _take(array, (rows, *space, slice(None)), labels["coefficients"])
            if time_key is None:
                times = None  # a steady problem has no frame times
    return _assemble(source.stem, trajectories, axes, times, coefficients, labels=labels)


LAYOUT = Layout("generic", read, "one (samples, time, *space, fields) array in an HDF5, .npy "
                "or .npz file", options=OPTIONS)


# ---------------------------------------------------------------------------------------------
# Checks shared by files and arrays.


def _check_trajectories(shape: tuple[int, ...], label: str) -> None:
    if len(shape) < 4:
        raise DataError(f"{label} has shape {shape}, expected (samples, time, *space, fields) "
                        f"with at least one spatial axis")
    if 0 in shape:
        raise DataError(f"{label} has shape {shape}: every axis needs at least one entry")


def _check_real_dtype(dtype: np.dtype[Any], label: str) -> None:
    if dtype.kind not in _REAL_KINDS:
        raise DataError(f"{label} has dtype {dtype}, expected real numbers (float or integer)")


def _real(values: Any, label: str) -> np.ndarray:
    """``values`` as a float32 array (no copy when it is one already)."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as e:
        raise DataError(f"{label} is not an array of numbers: {e}") from e
    _check_real_dtype(array.dtype, label)
    return np.ascontiguousarray(array, dtype=np.float32)


def _coordinate_list(coords: Sequence[Any], spatial_dims: int, label: str) -> list[Any]:
    if isinstance(coords, str | bytes) or not isinstance(coords, Sequence | np.ndarray):
        raise DataError(f"{label} must be a sequence of {spatial_dims} 1D arrays, got "
                        f"{type(coords).__name__}")
    if len(coords) != spatial_dims:
        raise DataError(f"{label} has {len(coords)} array(s), the data have {spatial_dims} "
                        f"spatial axes")
    return list(coords)


def _assemble(
    pde: str,
    trajectories: np.ndarray,
    coords: Sequence[Any] | None,
    times: Any | None,
    coefficients: Any | None,
    *,
    labels: dict[str, str],
) -> PDEData:
    """Check the (selected) arrays against each other and build the ``PDEData``."""
    trajectories = _real(trajectories, labels["trajectories"])
    _check_finite(trajectories, labels["trajectories"])
    samples, frames, *grid = trajectories.shape[:-1]
    if coords is None:
        axes = tuple(cell_centres(n) for n in grid)
    else:
        axes = tuple(_vector(values, n, f"{labels['coords']}[{i}]", f"spatial axis {i}")
                     for i, (values, n) in enumerate(zip(coords, grid, strict=True)))
    if coefficients is not None:
        coefficients = _real(coefficients, labels["coefficients"])
        expected = (samples, *grid)
        if coefficients.ndim != len(grid) + 2 or coefficients.shape[:-1] != expected:
            raise DataError(f"{labels['coefficients']} has shape {coefficients.shape}, expected "
                            f"({', '.join(map(str, expected))}, channels) to match the "
                            f"trajectories {trajectories.shape}")
        if 0 in coefficients.shape:
            raise DataError(f"{labels['coefficients']} has shape {coefficients.shape}: it needs "
                            f"at least one channel")
        _check_finite(coefficients, labels["coefficients"])
        if frames != 1:
            raise DataError(f"{labels['trajectories']}: coefficients make a steady problem "
                            f"(coefficient → solution), so the trajectories must hold one "
                            f"frame, the solution; they hold {frames}")
        if times is not None:
            raise DataError(f"{labels['times']}: a steady problem (coefficients given) has no "
                            f"frame times")
        frame_times = None
    elif times is None:
        frame_times = np.arange(frames, dtype=np.float32)
    else:
        frame_times = _vector(times, frames, labels["times"], "frames")
    return PDEData(pde=pde, trajectories=trajectories, coords=axes, times=frame_times,
                   coefficients=coefficients)


def _vector(values: Any, length: int, label: str, what: str) -> np.ndarray:
    array = _real(values, label)
    if array.shape != (length,):
        raise DataError(f"{label} has shape {array.shape}, expected ({length},): the {what}")
    _check_finite(array, label)
    return array


def _check_finite(array: np.ndarray, label: str) -> None:
    if not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{label} holds {bad} NaN or infinite value(s)")


# ---------------------------------------------------------------------------------------------
# The arrays of a file, without reading them.


@contextmanager
def _arrays(source: Path) -> Iterator[tuple[dict[str, _Array], str]]:
    """The arrays of an HDF5, .npy or .npz file by name, opened lazily, and the file's kind."""
    suffix = source.suffix.lower()
    if suffix == ".npy":
        yield {"": _memory_map(source, source)}, "npy"
        return
    if suffix == ".npz":
        with ExitStack() as stack:
            try:
                archive = stack.enter_context(zipfile.ZipFile(source))
            except (zipfile.BadZipFile, OSError) as e:
                raise DataError(f"{source} is not a readable .npz file: {e}") from e
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()
                       if info.filename.endswith(".npy")}
            yield {name: _npz_member(source, archive, info) for name, info in members.items()
                   }, "npz"
        return
    with open_h5(source) as handle:
        datasets: dict[str, _Array] = {}
        handle.visititems(lambda name, item: datasets.update({name: item})
                          if isinstance(item, h5py.Dataset) else None)
        yield datasets, "hdf5"


def _named(arrays: dict[str, _Array], key: str, source: Path) -> _Array:
    if key not in arrays:
        raise DataError(f"{source}: missing key {key!r} (found: {sorted(arrays)[:20]})")
    return arrays[key]


def _take(array: _Array, index: tuple[Any, ...], label: str) -> np.ndarray:
    """The selected part of an array on disk, in memory as float32."""
    _check_real_dtype(array.dtype, label)
    if isinstance(array, h5py.Dataset):
        # HDF5 converts while reading, so a float64 dataset never sits in memory as float64.
        return np.ascontiguousarray(array.astype(np.float32)[index])
    if isinstance(array, np.memmap):
        # A copy, so the data live in memory like every other read, not in the mapped file.
        return np.array(array[index], dtype=np.float32, order="C")
    return np.ascontiguousarray(array[index], dtype=np.float32)


def _header(handle: Any, source: Path) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """``(shape, fortran_order, dtype)`` of the .npy stream at ``handle``'s position."""
    try:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(handle)
        else:
            raise DataError(f"{source}: .npy format version {version} is not supported")
    except ValueError as e:
        raise DataError(f"{source}: not a readable .npy array: {e}") from e
    if dtype.hasobject:
        raise DataError(f"{source}: holds Python objects, not numbers")
    return tuple(shape), bool(fortran), dtype


def _memory_map(path: Path, source: Path, offset: int = 0) -> np.memmap:
    """The .npy array starting at byte ``offset`` of ``path``, memory-mapped read-only."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        shape, fortran, dtype = _header(handle, source)
        start = handle.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=start, shape=shape,
                     order="F" if fortran else "C")


def _npz_member(source: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Array:
    """One member of an .npz archive: memory-mapped when stored, streamed when compressed."""
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        # A stored member's bytes are the .npy file itself, after the local header (30 bytes,
        # then the file name and the extra field, whose lengths it gives).
        with open(source, "rb") as handle:
            handle.seek(info.header_offset)
            header = handle.read(30)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        return _memory_map(source, source, info.header_offset + 30 + name_length + extra_length)
    return _CompressedMember(archive, info, source)


class _CompressedMember:
    """An .npz member stored compressed: read by decompressing it once, sample by sample
    (along the first axis), keeping only the selected samples."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: Path) -> None:
        self.archive, self.info, self.source = archive, info, source
        with archive.open(info) as handle:
            self.shape, self.fortran, self.dtype = _header(handle, source)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index: tuple[Any, ...]) -> np.ndarray:
        if self.fortran or self.ndim < 2:
            # Fortran order puts the first axis last in memory; 1D arrays are small: read whole.
            with self.archive.open(self.info) as handle:
                return np.asarray(npy_format.read_array(handle, allow_pickle=False)[index])
        with self.archive.open(self.info) as handle:
            _header(handle, self.source)
            rows = range(self.shape[0])[index[0]]
            rest = index[1:]
            row_shape = self.shape[1:]
            out = np.empty((len(rows), *(selected(part, n) for part, n in zip(rest, row_shape,
                                                                               strict=True))),
                           dtype=self.dtype)
            row_bytes = math.prod(row_shape) * self.dtype.itemsize
            wanted = dict(zip(rows, range(len(rows)), strict=True))
            for i in range(rows[-1] + 1 if rows else 0):
                row = handle.read(row_bytes)
                if len(row) != row_bytes:
                    raise DataError(f"{self.source}: {self.info.filename!r} is truncated")
                if i in wanted:
                    out[wanted[i]] = np.frombuffer(row, dtype=self.dtype).reshape(
                        row_shape)[rest]
            return out
