"""The PDE families autoq knows and the file layouts it reads, by name, and reading a data file.

:data:`PDES` holds the families autoq can generate (a classical solver and the public layout it
writes); :data:`LAYOUTS` every file layout autoq reads: the four families' and more of PDEBench's
public files, read as they are, plus ``generic`` for one ``(samples, time, *space, fields)``
array in an HDF5, ``.npy`` or ``.npz`` file. :func:`read_data` reads a file in a named layout,
only the selected part of it; PDEArena's Navier–Stokes layout also reads a directory of its
train/valid/test files.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from autoq.data import burgers, darcy, diffsorp, generic, ns2d, pdebench
from autoq.data._common import Layout, PDEData, PDEFamily, Selection, open_h5
from autoq.errors import DataError, SpecError

PDES: dict[str, PDEFamily] = {
    "burgers": burgers.FAMILY,
    "diffsorp": diffsorp.FAMILY,
    "darcy": darcy.FAMILY,
    "ns2d": ns2d.FAMILY,
}

LAYOUTS: dict[str, Layout] = {
    "pdebench-burgers": burgers.LAYOUT,
    "pdebench-diffsorp": diffsorp.LAYOUT,
    "pdebench-darcy": darcy.LAYOUT,
    "pdearena-ns2d": ns2d.LAYOUT,
    "pdebench-advection": pdebench.ADVECTION,
    "pdebench-reacdiff1d": pdebench.REACDIFF_1D,
    "pdebench-reacdiff2d": pdebench.REACDIFF_2D,
    "pdebench-swe2d": pdebench.SWE_2D,
    "pdebench-cfd1d": pdebench.CFD_1D,
    "pdebench-cfd2d": pdebench.CFD_2D,
    "generic": generic.LAYOUT,
}
"""Every file layout autoq reads, by the name a spec's ``data.layout`` takes."""

DIRECTORY_LAYOUTS = frozenset({"pdearena-ns2d"})
"""Layouts whose data may be a directory: PDEArena's loader takes its Navier–Stokes files by
name from a directory, one file per split (:func:`autoq.data.ns2d.split_files`)."""


def get_family(name: str) -> PDEFamily:
    """The family registered as ``name``; a SpecError lists the known names otherwise."""
    try:
        return PDES[name]
    except KeyError:
        raise SpecError(f"unknown pde {name!r}; known: {sorted(PDES)}") from None


_GENERATOR_ARGUMENTS = {"out", "samples", "resolution", "seed", "progress", "frames"}


def solver_options(name: str) -> list[str]:
    """The physical parameters the family's generator takes beyond the common arguments
    (``nu``, ``frame_dt``, …), which a spec may set under ``data.generate.options``."""
    parameters = inspect.signature(get_family(name).generate).parameters.values()
    return [p.name for p in parameters if p.kind is p.KEYWORD_ONLY
            and p.name not in _GENERATOR_ARGUMENTS]


def detect_family(path: str | os.PathLike[str]) -> PDEFamily:
    """The family whose public layout the file (or PDEArena file set) at ``path`` follows."""
    if Path(path).is_dir():
        if ns2d.is_file_set(path):
            return ns2d.FAMILY
        raise DataError(f"{path} is a directory without PDEArena train/valid/test files; "
                        f"only ns2d data may be a directory")
    with open_h5(path) as handle:
        for family in PDES.values():
            if family.detect(handle):
                return family
        keys = sorted(handle.keys())[:10]
    raise DataError(f"{path}: not a known PDE layout (top-level keys: {keys}); expected one of "
                    f"{sorted(PDES)} in the PDEBench/PDEArena layout")


def get_layout(name: str) -> Layout:
    """The layout registered as ``name``; a SpecError lists the known names otherwise."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise SpecError(f"unknown layout {name!r}; known: {sorted(LAYOUTS)}") from None


def family_layout(pde: str) -> str:
    """The name of the layout family ``pde``'s generator writes (``burgers`` →
    ``pdebench-burgers``)."""
    get_family(pde)
    return next(name for name, layout in LAYOUTS.items() if layout.family == pde)


def read_data(
    path: str | os.PathLike[str],
    layout: str,
    *,
    selection: Selection | None = None,
    **options: Any,
) -> PDEData:
    """Read the selected part of a data file in the named layout.

    Reads are cached per (path, size, modification time, layout, selection, options), so a
    search that builds many trials on the same file reads it once per process.

    Args:
        path: the data file (or directory, for :data:`DIRECTORY_LAYOUTS`).
        layout: a key of :data:`LAYOUTS`.
        selection: the samples, frames and grid points to read; ``None`` reads everything.
        **options: the layout's options (the generic layout's ``key``, ``coord_keys``,
            ``time_key``, ``coefficient_key``); ``None`` values are left out.

    Raises:
        SpecError: an unknown layout, or an option the layout does not take.
        DataError: the file is missing, or does not hold the layout; the message names the
            file, the key and the layout.
    """
    entry = get_layout(layout)
    given = {name: value for name, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(entry.options))
    if unknown:
        takers = sorted(name for name, other in LAYOUTS.items() if other.options)
        raise SpecError(f"layout {layout!r} takes no {', '.join(unknown)} (only {takers} do)")
    source = Path(path)
    if source.is_dir() and layout not in DIRECTORY_LAYOUTS:
        raise DataError(f"{source} is a directory; layout {layout!r} reads one file (only "
                        f"{sorted(DIRECTORY_LAYOUTS)} read a directory)")
    if not source.exists():
        raise DataError(f"data file not found: {source}")
    frozen = tuple(sorted((name, _hashable(value)) for name, value in given.items()))
    return _read_cached(str(source.resolve()), _version(source), layout,
                        selection or Selection(), frozen)


def _version(source: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when the data at ``source`` change: size and modification time of the file,
    or of every file in the directory (rewriting a file leaves its directory's time alone)."""
    files = sorted(source.iterdir()) if source.is_dir() else [source]
    return tuple((path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files)


def _hashable(value: Any) -> Any:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(value)
    return value


@lru_cache(maxsize=8)
def _read_cached(path: str, version: tuple[tuple[str, int, int], ...], layout: str,
                 selection: Selection, options: tuple[tuple[str, Any], ...]) -> PDEData:
    entry = LAYOUTS[layout]
    try:
        return entry.read(Path(path), selection, **dict(options))
    except DataError as e:
        raise DataError(f"{e} (read as layout {layout!r}: {entry.files})") from e


def read_pde_file(path: str | os.PathLike[str], pde: str | None = None) -> PDEData:
    """Read a whole data file (or PDEArena file set) of a PDE family: the layout of ``pde`` when
    given, else the family whose layout the data follow (detected).

    Reads are cached like :func:`read_data`'s.
    """
    source = Path(path)
    if not source.exists():
        raise DataError(f"data file not found: {source}")
    family = pde if pde is not None else detect_family(source).name
    return read_data(source, family_layout(family))
