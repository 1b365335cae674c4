"""The PDE families autoq knows, by name, and reading a data file of any of them."""

from __future__ import annotations

import inspect
import os
from functools import lru_cache
from pathlib import Path

from autoq.data import burgers, darcy, diffsorp, ns2d
from autoq.data._common import PDEData, PDEFamily, open_h5
from autoq.errors import DataError, SpecError

PDES: dict[str, PDEFamily] = {
    "burgers": burgers.FAMILY,
    "diffsorp": diffsorp.FAMILY,
    "darcy": darcy.FAMILY,
    "ns2d": ns2d.FAMILY,
}


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
    """The family whose public layout the file at ``path`` follows."""
    with open_h5(path) as handle:
        for family in PDES.values():
            if family.detect(handle):
                return family
        keys = sorted(handle.keys())[:10]
    raise DataError(f"{path}: not a known PDE layout (top-level keys: {keys}); expected one of "
                    f"{sorted(PDES)} in the PDEBench/PDEArena layout")


def read_pde_file(path: str | os.PathLike[str], pde: str | None = None) -> PDEData:
    """Read a data file, checking it against ``pde`` when given, else detecting its layout.

    Reads are cached per (path, size, modification time), so a search that builds many trials on
    the same file reads it once per process.
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"data file not found: {source}")
    stat = source.stat()
    return _read_cached(str(source.resolve()), stat.st_size, stat.st_mtime_ns, pde)


@lru_cache(maxsize=8)
def _read_cached(path: str, size: int, mtime_ns: int, pde: str | None) -> PDEData:
    family = detect_family(path)
    if pde is not None and family.name != pde:
        raise DataError(f"{path} holds {family.name!r} data, but the spec says pde={pde!r}")
    return family.read(Path(path))
