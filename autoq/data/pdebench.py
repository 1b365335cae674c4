"""PDEBench's public file layouts, read as they are, and the readers they share.

PDEBench (Takamoto et al., NeurIPS 2022 Datasets and Benchmarks) publishes its data in three kinds
of HDF5 file. Keys, dtypes and axis orders below are those of PDEBench's writers
(``pdebench/data_gen``: ``Data_Merge.py``, ``gen_diff_react.py``, ``gen_radial_dam_break.py``)
and of its loader (``pdebench/models/fno/utils.py``):

- **One** ``tensor`` float32 ``(samples, time, x)`` with ``x-coordinate`` ``(x,)`` and
  ``t-coordinate`` (one entry longer than the frames): 1D Burgers ``1D_Burgers_Sols_Nu{ν}.hdf5``
  (file attribute ``Nu``), 1D Advection ``1D_Advection_Sols_beta{β}.hdf5`` (``beta``) and 1D
  Reaction–Diffusion ``ReacDiff_Nu{ν}_Rho{ρ}.hdf5`` (``Nu`` and ``rho``). Their keys are the same;
  the parameter attributes and the file names tell them apart, so a file whose attributes or
  name belong to another of the three is refused rather than read with, say, an advection
  speed taken for a viscosity.
- **Compressible Navier–Stokes** ``1D_CFD_*.hdf5`` and ``2D_CFD_*.hdf5``: ``density``,
  ``pressure``, ``Vx`` (and ``Vy``) float32 ``(samples, time, x[, y])``, ``x-coordinate``
  (``y-coordinate``), ``t-coordinate``; attributes ``eta``, ``zeta`` (and ``M``). The fields are
  read in the order of PDEBench's loader: density, pressure, Vx[, Vy].
- **One group per sample** (``"0000"``, ``"0001"``, …) holding ``data`` float32
  ``(time, *space, fields)``, ``grid/x`` (``grid/y``), ``grid/t`` and the attribute ``config``
  (the run's settings as YAML): 1D diffusion–sorption ``1D_diff-sorp_NA_NA.h5`` (one field), 2D
  Reaction–Diffusion ``2D_diff-react_NA_NA.h5`` (two: the activator u and the inhibitor v) and 2D
  shallow water ``2D_rdb_NA_NA.h5`` (one: the water depth h).

Every reader takes a :class:`~autoq.data._common.Selection` and hands its slices to h5py, so only
the selected samples, frames and grid points are read from disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import yaml

from autoq.data._common import (
    Layout,
    PDEData,
    Selection,
    open_h5,
    read_float,
    require_dataset,
    require_float,
    selected,
)
from autoq.errors import DataError

# ---------------------------------------------------------------------------------------------
# One ``tensor`` (samples, time, x): Burgers, Advection, Reaction–Diffusion in 1D.


@dataclass(frozen=True)
class Scalar1D:
    """What tells one of PDEBench's 1D ``tensor`` layouts from the others.

    Attributes:
        layout: the layout's registry name.
        pde: ``PDEData.pde`` of what it reads.
        parameters: ``(file attribute, token in the file name, our attrs key)`` of each physical
            parameter, in PDEBench's spelling (``("rho", "Rho", "rho")``).
        file_name: matches the public file names of this layout.
        files: the public files, for messages.
    """

    layout: str
    pde: str
    parameters: tuple[tuple[str, str, str], ...]
    file_name: re.Pattern[str]
    files: str

    @property
    def attributes(self) -> tuple[str, ...]:
        """The file attributes of the parameters, sorted."""
        return tuple(sorted(attribute for attribute, _, _ in self.parameters))


SCALAR_1D = {
    kind.layout: kind
    for kind in (
        Scalar1D("pdebench-burgers", "burgers", (("Nu", "Nu", "nu"),),
                 re.compile(r"1D_Burgers_Sols_Nu"), "PDEBench 1D_Burgers_Sols_Nu{ν}.hdf5"),
        Scalar1D("pdebench-advection", "advection", (("beta", "beta", "beta"),),
                 re.compile(r"1D_Advection_Sols_beta"),
                 "PDEBench 1D_Advection_Sols_beta{β}.hdf5"),
        Scalar1D("pdebench-reacdiff1d", "reacdiff1d", (("Nu", "Nu", "nu"), ("rho", "Rho", "rho")),
                 re.compile(r"ReacDiff_Nu.*_Rho"), "PDEBench ReacDiff_Nu{ν}_Rho{ρ}.hdf5"),
    )
}
"""The 1D ``tensor`` layouts, by name."""

_PARAMETER_ATTRIBUTES = frozenset(attribute for kind in SCALAR_1D.values()
                                  for attribute, _, _ in kind.parameters)
_SUFFIX = re.compile(r"\.(hdf5|h5)$")


def scalar_1d_evidence(handle: h5py.File, file_name: str) -> list[tuple[str, str | None]]:
    """What in an open 1D ``tensor`` file names its layout: ``(evidence, layout)`` pairs.

    The parameter attributes present (``Nu``, ``beta``, ``rho``) name the layout whose set they
    are (``None`` for a set no layout has); a public file name names its layout. A file with
    neither (a user's own) names none, and any of the three layouts reads it.
    """
    found: list[tuple[str, str | None]] = []
    present = tuple(sorted(_PARAMETER_ATTRIBUTES & set(handle.attrs)))
    if present:
        owner = next((kind.layout for kind in SCALAR_1D.values() if kind.attributes == present),
                     None)
        found.append((f"file attribute(s) {list(present)}", owner))
    for kind in SCALAR_1D.values():
        if kind.file_name.match(file_name):
            found.append((f"file name {file_name!r}", kind.layout))
    return found


def _check_scalar_1d(handle: h5py.File, source: Path, kind: Scalar1D) -> None:
    for evidence, owner in scalar_1d_evidence(handle, source.name):
        if owner == kind.layout:
            continue
        if owner is None:
            raise DataError(f"{source}: {evidence} belong to no PDEBench 1D layout; "
                            f"{kind.layout} files carry {list(kind.attributes)}")
        other = SCALAR_1D[owner]
        raise DataError(f"{source}: {evidence} mark a {owner} file ({other.files}); "
                        f"{kind.layout} files carry {list(kind.attributes)}")


def _parameters(handle: h5py.File, source: Path, kind: Scalar1D) -> dict[str, float]:
    """The physical parameters from the file attributes, else from the public file name."""
    stem = _SUFFIX.sub("", source.name)
    values = {}
    for attribute, token, ours in kind.parameters:
        if attribute in handle.attrs:
            values[ours] = float(handle.attrs[attribute])
            continue
        match = re.search(rf"_{token}([0-9][0-9.eE+-]*?)(?=_|$)", stem)
        if match is None:
            continue
        try:
            values[ours] = float(match.group(1))
        except ValueError:
            continue
    return values


def read_scalar_1d(path: str | Path, selection: Selection | None, *, layout: str) -> PDEData:
    """Read the selected part of a PDEBench 1D ``tensor`` file of ``layout``.

    Args:
        path: HDF5 file with ``tensor`` ``(N, T, X)``, ``x-coordinate`` ``(X,)`` and
            ``t-coordinate`` with at least T entries.
        selection: what to read (``None``: everything).
        layout: one of :data:`SCALAR_1D`.

    Returns:
        ``PDEData`` with ``trajectories`` ``(n, t, x, 1)`` float32, ``times`` the selected
        entries of the first T of ``t-coordinate`` and ``attrs`` the parameters (``nu``,
        ``beta``, ``rho``) from the file's attributes or, failing those, its public name.

    Raises:
        DataError: the file is missing or unreadable, a key is missing or mis-shaped, or its
            attributes or name are another layout's; the message names the file and the key.
    """
    kind, source = SCALAR_1D[layout], Path(path)
    select = selection or Selection()
    with open_h5(source) as handle:
        tensor = require_dataset(handle, "tensor", ndim=3, source=source)
        x = require_dataset(handle, "x-coordinate", ndim=1, source=source)
        t = require_dataset(handle, "t-coordinate", ndim=1, source=source)
        # The keys are those of all three 1D layouts; the attributes and name tell which.
        _check_scalar_1d(handle, source, kind)
        samples, frames, cells = tensor.shape
        if x.shape[0] != cells:
            raise DataError(
                f"{source}: 'x-coordinate' has {x.shape[0]} entries, 'tensor' has {cells} cells"
            )
        if t.shape[0] < frames:
            raise DataError(
                f"{source}: 't-coordinate' has {t.shape[0]} entries, fewer than the "
                f"{frames} frames of 'tensor'"
            )
        if samples == 0:
            raise DataError(f"{source}: 'tensor' holds no samples")
        space = select.space((cells,))
        time = select.frames(frames)
        trajectories = read_float(tensor, (select.samples(samples), time, *space), key="tensor",
                                  source=source)[..., np.newaxis]
        coords = (read_float(x, space, key="x-coordinate", source=source),)
        times = read_float(t, (time,), key="t-coordinate", source=source)
        attrs = _parameters(handle, source, kind)
    return PDEData(pde=kind.pde, trajectories=trajectories, coords=coords, times=times,
                   attrs=attrs)


def read_advection(path: str | Path, selection: Selection | None = None) -> PDEData:
    """A PDEBench 1D Advection file (``1D_Advection_Sols_beta{β}.hdf5``); ``attrs["beta"]``
    is the advection speed. See :func:`read_scalar_1d`."""
    return read_scalar_1d(path, selection, layout="pdebench-advection")


def read_reacdiff_1d(path: str | Path, selection: Selection | None = None) -> PDEData:
    """A PDEBench 1D Reaction–Diffusion file (``ReacDiff_Nu{ν}_Rho{ρ}.hdf5``), u_t = ν u_xx +
    ρ u (1 − u); ``attrs`` ``nu`` and ``rho``. See :func:`read_scalar_1d`."""
    return read_scalar_1d(path, selection, layout="pdebench-reacdiff1d")


# ---------------------------------------------------------------------------------------------
# Compressible Navier–Stokes: one dataset per field.

CFD_FIELDS = {1: ("density", "pressure", "Vx"), 2: ("density", "pressure", "Vx", "Vy")}
"""The field datasets of the CFD files per spatial dimension, in the order they are read."""
_AXES = ("x", "y")


def read_cfd(path: str | Path, selection: Selection | None, *, dims: int) -> PDEData:
    """Read the selected part of a PDEBench compressible Navier–Stokes file.

    Args:
        path: HDF5 file with ``density``, ``pressure``, ``Vx`` (``Vy``) ``(N, T, X[, Y])``,
            ``x-coordinate`` (``y-coordinate``) and ``t-coordinate`` (at least T entries).
        selection: what to read (``None``: everything).
        dims: 1 or 2 spatial dimensions.

    Returns:
        ``PDEData`` with ``trajectories`` ``(n, t, *space, 2 + dims)`` float32, fields
        (density, pressure, Vx[, Vy]); ``attrs`` ``eta``, ``zeta`` (``M``) when the file has them.
    """
    source, select = Path(path), selection or Selection()
    keys = CFD_FIELDS[dims]
    with open_h5(source) as handle:
        fields = [require_dataset(handle, key, ndim=2 + dims, source=source) for key in keys]
        shape = fields[0].shape
        for key, field in zip(keys[1:], fields[1:], strict=True):
            if field.shape != shape:
                raise DataError(f"{source}: {key!r} has shape {field.shape}, 'density' has "
                                f"{shape}")
        samples, frames, *grid = shape
        coords = []
        space = select.space(tuple(grid))
        for axis, n, part in zip(_AXES, grid, space, strict=False):
            key = f"{axis}-coordinate"
            coordinate = require_dataset(handle, key, ndim=1, source=source)
            if coordinate.shape[0] != n:
                raise DataError(f"{source}: {key!r} has {coordinate.shape[0]} entries, "
                                f"'density' has {n} along {axis}")
            coords.append(read_float(coordinate, (part,), key=key, source=source))
        t = require_dataset(handle, "t-coordinate", ndim=1, source=source)
        if t.shape[0] < frames:
            raise DataError(f"{source}: 't-coordinate' has {t.shape[0]} entries, fewer than the "
                            f"{frames} frames of 'density'")
        if samples == 0:
            raise DataError(f"{source}: 'density' holds no samples")
        index = (select.samples(samples), select.frames(frames), *space)
        out = np.empty((*(selected(part, n) for part, n in zip(index, shape, strict=True)),
                        len(keys)), dtype=np.float32)
        for i, (key, field) in enumerate(zip(keys, fields, strict=True)):
            require_float(field, key=key, source=source)
            field.read_direct(out, source_sel=index, dest_sel=np.s_[..., i])
        times = read_float(t, (select.frames(frames),), key="t-coordinate", source=source)
        attrs = {name: float(handle.attrs[name]) for name in ("eta", "zeta", "M")
                 if name in handle.attrs}
    return PDEData(pde=f"cfd{dims}d", trajectories=out, coords=tuple(coords), times=times,
                   attrs=attrs)


def read_cfd_1d(path: str | Path, selection: Selection | None = None) -> PDEData:
    """A PDEBench 1D compressible Navier–Stokes file (``1D_CFD_*.hdf5``). See :func:`read_cfd`."""
    return read_cfd(path, selection, dims=1)


def read_cfd_2d(path: str | Path, selection: Selection | None = None) -> PDEData:
    """A PDEBench 2D compressible Navier–Stokes file (``2D_CFD_*.hdf5``). See :func:`read_cfd`."""
    return read_cfd(path, selection, dims=2)


# ---------------------------------------------------------------------------------------------
# One group per sample: diffusion–sorption (1D), reaction–diffusion and shallow water (2D).


def sample_keys(handle: h5py.File) -> list[str]:
    """The sample groups of an open file, in sample order (numerically when all are numbers)."""
    keys = [key for key in handle if isinstance(handle[key], h5py.Group)]
    if all(key.isdigit() for key in keys):
        return sorted(keys, key=int)
    return sorted(keys)


def config_parameters(group: h5py.Group, source: Path, key: str,
                      names: dict[str, str]) -> dict[str, float]:
    """Physical parameters from a sample group's ``config`` attribute (PDEBench's YAML).

    Args:
        group: the sample group.
        source: the file, for messages.
        key: the group's name, for messages.
        names: our name → PDEBench's name under ``sim`` in the config.

    Returns:
        The parameters found (missing or non-numeric ones are left out).
    """
    text = group.attrs.get("config")
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode()
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DataError(f"{source}: '{key}' attribute 'config' is not YAML: {e}") from e
    sim = config.get("sim") if isinstance(config, dict) else None
    if not isinstance(sim, dict):
        return {}
    parameters = {}
    for ours, theirs in names.items():
        # PyYAML reads PDEBench's ``5E-4`` (no dot) as text, hence float() on strings too.
        try:
            parameters[ours] = float(sim[theirs])
        except (KeyError, TypeError, ValueError):
            continue
    return parameters


def read_sample_groups(
    path: str | Path, selection: Selection | None, *, pde: str, spatial_dims: int, fields: int,
    field_names: str, config: dict[str, str],
) -> PDEData:
    """Read the selected samples of a PDEBench file with one group per sample.

    Args:
        path: HDF5 file whose groups each hold ``data`` ``(T, *space, fields)``, ``grid/x``
            (``grid/y``) and ``grid/t``, all samples on the grid and times of the first.
        selection: what to read (``None``: everything); only the selected groups are opened.
        pde: ``PDEData.pde`` of the result.
        spatial_dims: 1 or 2.
        fields: the fields on the last axis of ``data``.
        field_names: what they are, for messages (``"u, v"``).
        config: our parameter name → PDEBench's name in the groups' ``config`` YAML.

    Returns:
        ``PDEData`` with ``trajectories`` ``(n, t, *space, fields)`` float32 in sample order,
        grid and times from the first selected group and ``attrs`` its ``config`` parameters.

    Raises:
        DataError: no sample groups, or a selected group's key is missing or mis-shaped; the
            message names the file and the key.
    """
    source, select = Path(path), selection or Selection()
    with open_h5(source) as handle:
        keys = sample_keys(handle)
        if not keys:
            raise DataError(f"{source}: no sample groups (found: {sorted(handle.keys())})")
        chosen = keys[select.samples(len(keys))]
        first = chosen[0]
        axes = [require_dataset(handle, f"{first}/grid/{axis}", ndim=1, source=source)
                for axis in _AXES[:spatial_dims]]
        t = require_dataset(handle, f"{first}/grid/t", ndim=1, source=source)
        grid = tuple(axis.shape[0] for axis in axes)
        shape = (t.shape[0], *grid, fields)
        space = select.space(grid)
        index = (select.frames(shape[0]), *space, slice(None))
        out = np.empty((len(chosen), *(selected(part, n) for part, n in zip(index, shape,
                                                                             strict=True))),
                       dtype=np.float32)
        for i, key in enumerate(chosen):
            data = require_dataset(handle, f"{key}/data", ndim=spatial_dims + 2, source=source)
            if data.shape != shape:
                raise DataError(
                    f"{source}: '{key}/data' has shape {data.shape}, expected {shape} "
                    f"(time, {', '.join(_AXES[:spatial_dims])}, fields: {field_names}) "
                    f"from grid/t, the grid and {fields} field(s)"
                )
            require_float(data, key=f"{key}/data", source=source)
            data.read_direct(out, source_sel=index, dest_sel=np.s_[i])
        coords = tuple(read_float(axis, (part,), key=f"{first}/grid/{name}", source=source)
                       for axis, part, name in zip(axes, space, _AXES, strict=False))
        times = read_float(t, (index[0],), key=f"{first}/grid/t", source=source)
        attrs = config_parameters(handle[first], source, first, config)
    return PDEData(pde=pde, trajectories=out, coords=coords, times=times, attrs=attrs)


def read_reacdiff_2d(path: str | Path, selection: Selection | None = None) -> PDEData:
    """A PDEBench 2D Reaction–Diffusion file (``2D_diff-react_NA_NA.h5``): FitzHugh–Nagumo
    activator u and inhibitor v, ``data`` ``(T, X, Y, 2)`` per sample; ``attrs`` ``Du``, ``Dv``,
    ``k`` from ``config``. See :func:`read_sample_groups`."""
    return read_sample_groups(path, selection, pde="reacdiff2d", spatial_dims=2, fields=2,
                              field_names="u, v", config={"Du": "Du", "Dv": "Dv", "k": "k"})


def read_swe_2d(path: str | Path, selection: Selection | None = None) -> PDEData:
    """A PDEBench 2D shallow-water (radial dam break) file (``2D_rdb_NA_NA.h5``): the water
    depth h, ``data`` ``(T, X, Y, 1)`` per sample; ``attrs["gravity"]`` from ``config``. See
    :func:`read_sample_groups`."""
    return read_sample_groups(path, selection, pde="swe2d", spatial_dims=2, fields=1,
                              field_names="h", config={"gravity": "gravity"})


ADVECTION = Layout("pdebench-advection", read_advection, SCALAR_1D["pdebench-advection"].files,
                   periodic=True)
REACDIFF_1D = Layout("pdebench-reacdiff1d", read_reacdiff_1d,
                     SCALAR_1D["pdebench-reacdiff1d"].files, periodic=True)
REACDIFF_2D = Layout("pdebench-reacdiff2d", read_reacdiff_2d, "PDEBench 2D_diff-react_NA_NA.h5",
                     periodic=False)  # no-flow (Neumann) boundaries
SWE_2D = Layout("pdebench-swe2d", read_swe_2d, "PDEBench 2D_rdb_NA_NA.h5")
CFD_1D = Layout("pdebench-cfd1d", read_cfd_1d, "PDEBench 1D_CFD_*.hdf5")
CFD_2D = Layout("pdebench-cfd2d", read_cfd_2d, "PDEBench 2D_CFD_*.hdf5")
