"""File layouts (:data:`autoq.data.LAYOUTS`): each read from a hand-built file in its public
layout, files of another layout refused naming file, key and layout, and only the selected part
of a file ever read.

The hand-built files follow PDEBench's writers (``pdebench/data_gen``: ``Data_Merge.py`` for the
``tensor`` and CFD files, ``gen_diff_react.py`` / ``gen_radial_dam_break.py`` for the per-sample
groups) and its loader ``pdebench/models/fno/utils.py``: the same keys, dtypes and axis orders.
Expected values come from the arrays written, rearranged by hand, never from a reader.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml

from autoq.data import (
    LAYOUTS,
    PDES,
    Layout,
    Selection,
    burgers,
    family_layout,
    ns2d,
    read_data,
    read_pde_file,
)
from autoq.errors import DataError

RNG = np.random.default_rng(0)


# --- Writers of the public layouts (what PDEBench's own scripts write). -----------------------


def write_scalar_1d(path: Path, tensor: np.ndarray, **attrs: float) -> Path:
    """``tensor`` (N, T, X) float32, ``x-coordinate`` (X,), ``t-coordinate`` (T + 1,)."""
    _, frames, cells = tensor.shape
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=tensor.astype(np.float32))
        f.create_dataset("x-coordinate", data=(np.arange(cells) + 0.5) / cells, dtype="f4")
        f.create_dataset("t-coordinate", data=np.arange(frames + 1) * 0.01, dtype="f4")
        for name, value in attrs.items():
            f.attrs[name] = value
    return path


CFD_KEYS = {1: ("density", "pressure", "Vx"), 2: ("density", "pressure", "Vx", "Vy")}


def write_cfd(path: Path, fields: np.ndarray, **attrs: float) -> Path:
    """``fields`` (F, N, T, *space): one float32 dataset (N, T, *space) per field."""
    dims = fields.ndim - 3
    with h5py.File(path, "w") as f:
        for key, values in zip(CFD_KEYS[dims], fields, strict=True):
            f.create_dataset(key, data=values.astype(np.float32))
        for axis, n in zip("xy", fields.shape[3:], strict=False):
            f.create_dataset(f"{axis}-coordinate", data=np.linspace(0, 1, n), dtype="f4")
        f.create_dataset("t-coordinate", data=np.arange(fields.shape[2] + 1) * 0.05,
                         dtype="f4")
        for name, value in attrs.items():
            f.attrs[name] = value
    return path


def write_groups(path: Path, data: np.ndarray, config: dict[str, Any]) -> Path:
    """One group per sample: ``data`` (T, *space, F) float32 lzf, ``grid/x`` (``grid/y``),
    ``grid/t`` and the attribute ``config`` (YAML), as PDEBench's generators write them."""
    dims = data.ndim - 3
    with h5py.File(path, "w") as f:
        for i, sample in enumerate(data):
            key = str(i).zfill(4)
            f.create_dataset(f"{key}/data", data=sample, dtype="float32", compression="lzf")
            for axis, n in zip("xy", sample.shape[1:1 + dims], strict=False):
                f.create_dataset(f"{key}/grid/{axis}", data=np.linspace(-1, 1, n),
                                 dtype="float32", compression="lzf")
            f.create_dataset(f"{key}/grid/t", data=np.linspace(0, 5, sample.shape[0]),
                             dtype="float32", compression="lzf")
            f[key].attrs["config"] = yaml.safe_dump(config)
    return path


# --- One hand-built file per new layout, with the arrays it holds. -----------------------------


def _scalar(pattern: str, **attrs: float) -> Callable[[Path], tuple[Path, np.ndarray]]:
    def make(folder: Path) -> tuple[Path, np.ndarray]:
        tensor = RNG.normal(size=(5, 7, 12)).astype(np.float32)
        return write_scalar_1d(folder / pattern, tensor, **attrs), tensor[..., None]
    return make


def _cfd(dims: int, name: str, **attrs: float) -> Callable[[Path], tuple[Path, np.ndarray]]:
    def make(folder: Path) -> tuple[Path, np.ndarray]:
        fields = RNG.normal(size=(2 + dims, 4, 6, *(10, 8)[:dims])).astype(np.float32)
        # PDEBench's loader stacks the fields last: (N, T, *space, [density, pressure, Vx, Vy]).
        return write_cfd(folder / name, fields, **attrs), np.moveaxis(fields, 0, -1)
    return make


def _groups(fields: int, name: str, config: dict[str, Any]
            ) -> Callable[[Path], tuple[Path, np.ndarray]]:
    def make(folder: Path) -> tuple[Path, np.ndarray]:
        data = RNG.normal(size=(4, 6, 10, 8, fields)).astype(np.float32)
        return write_groups(folder / name, data, config), data
    return make


NEW_LAYOUTS: dict[str, tuple[Callable[[Path], tuple[Path, np.ndarray]], dict[str, float]]] = {
    "pdebench-advection": (_scalar("1D_Advection_Sols_beta0.4.hdf5", beta=0.4), {"beta": 0.4}),
    "pdebench-reacdiff1d": (_scalar("ReacDiff_Nu0.5_Rho1.0.hdf5", Nu=0.5, rho=1.0),
                            {"nu": 0.5, "rho": 1.0}),
    "pdebench-cfd1d": (_cfd(1, "1D_CFD_Rand_Eta0.01_Zeta0.01_periodic_Train.hdf5", eta=0.01,
                            zeta=0.01), {"eta": 0.01, "zeta": 0.01}),
    "pdebench-cfd2d": (_cfd(2, "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5",
                            eta=0.01, zeta=0.01, M=0.1), {"eta": 0.01, "zeta": 0.01, "M": 0.1}),
    "pdebench-reacdiff2d": (_groups(2, "2D_diff-react_NA_NA.h5", {
        "name": "2d_diff-react", "sim": {"Du": "1E-3", "Dv": "5E-3", "k": "5E-3", "t": 5}}),
        {"Du": 1e-3, "Dv": 5e-3, "k": 5e-3}),
    "pdebench-swe2d": (_groups(1, "2D_rdb_NA_NA.h5", {
        "name": "2d_rdb", "sim": {"T_end": 1.0, "gravity": 1.0, "dam_radius": 0.5}}),
        {"gravity": 1.0}),
}
"""Each new layout: a writer of a hand-built file (→ path, the trajectories it holds as
(N, T, *space, fields)) and the physical parameters its reader must find."""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, np.ndarray]]:
    """A small file of every layout but ``generic`` (families: written by their generators)."""
    folder = tmp_path_factory.mktemp("layouts")
    made = {name: make(folder) for name, (make, _) in NEW_LAYOUTS.items()}
    for pde, family in PDES.items():
        path = family.generate(folder / f"family-{pde}.h5", samples=3, resolution=8, seed=0,
                               frames=None if family.steady else 3)
        made[family_layout(pde)] = (path, family.read(path).trajectories)
    return made


# --- The registry. -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_is_registered_under_its_name(name: str) -> None:
    layout = LAYOUTS[name]
    assert isinstance(layout, Layout) and layout.name == name and layout.files
    assert layout.family is None or layout.family in PDES


@pytest.mark.parametrize("pde", sorted(PDES))
def test_every_family_has_exactly_one_layout(pde: str) -> None:
    assert [name for name, layout in LAYOUTS.items() if layout.family == pde] == [
        family_layout(pde)]


def test_every_layout_but_generic_is_read_by_a_test_file(
        files: dict[str, tuple[Path, np.ndarray]]) -> None:
    assert set(files) == set(LAYOUTS) - {"generic"}


# --- Each new layout read from its hand-built file. ---------------------------------------------


@pytest.mark.parametrize("name", sorted(NEW_LAYOUTS))
def test_new_layout_reads_hand_built_public_file(
    name: str, files: dict[str, tuple[Path, np.ndarray]]
) -> None:
    path, expected = files[name]
    data = read_data(path, name)
    assert data.trajectories.dtype == np.float32
    np.testing.assert_array_equal(data.trajectories, expected)
    assert data.attrs == pytest.approx(NEW_LAYOUTS[name][1])
    assert len(data.coords) == data.spatial_dims == expected.ndim - 3
    for axis, n in zip(data.coords, expected.shape[2:-1], strict=True):
        assert axis.shape == (n,) and np.all(np.diff(axis) > 0)
    assert data.times is not None and data.times.shape == (expected.shape[1],)
    assert np.all(np.diff(data.times) > 0) and not data.steady


def test_parameters_come_from_the_public_file_name_without_attributes(tmp_path: Path) -> None:
    tensor = np.zeros((2, 3, 8), np.float32)
    advection = write_scalar_1d(tmp_path / "1D_Advection_Sols_beta0.1.hdf5", tensor)
    reacdiff = write_scalar_1d(tmp_path / "ReacDiff_Nu2.0_Rho5.0.hdf5", tensor)
    assert read_data(advection, "pdebench-advection").attrs == {"beta": pytest.approx(0.1)}
    assert read_data(reacdiff, "pdebench-reacdiff1d").attrs == {
        "nu": pytest.approx(2.0), "rho": pytest.approx(5.0)}


def test_user_file_with_neither_attributes_nor_public_name_reads_in_any_1d_layout(
        tmp_path: Path) -> None:
    tensor = RNG.normal(size=(2, 3, 8)).astype(np.float32)
    path = write_scalar_1d(tmp_path / "mine.h5", tensor)
    for layout in ("pdebench-burgers", "pdebench-advection", "pdebench-reacdiff1d"):
        data = read_data(path, layout)
        np.testing.assert_array_equal(data.trajectories[..., 0], tensor)
        assert data.attrs == {}


# --- Files of another layout are refused naming the file, the key and the layout. --------------

_PAIRS = [(own, other) for own in sorted(set(LAYOUTS) - {"generic"})
          for other in sorted(set(LAYOUTS) - {"generic"}) if other != own]


@pytest.mark.parametrize(("own", "other"), _PAIRS)
def test_file_of_another_layout_is_refused_naming_file_and_layout(
    own: str, other: str, files: dict[str, tuple[Path, np.ndarray]]
) -> None:
    path = files[own][0]
    with pytest.raises(DataError) as caught:
        read_data(path, other)
    message = str(caught.value)
    assert path.name in message and repr(other) in message


@pytest.mark.parametrize(("own", "other", "key"), [
    # Same keys as Burgers: the parameter attribute names the layout.
    ("pdebench-advection", "pdebench-burgers", "'beta'"),
    ("pdebench-reacdiff1d", "pdebench-burgers", "'rho'"),
    ("pdebench-burgers", "pdebench-advection", "'Nu'"),
    ("pdebench-burgers", "pdebench-reacdiff1d", "'Nu'"),
    ("pdebench-cfd2d", "pdebench-cfd1d", "'density'"),
    ("pdebench-cfd1d", "pdebench-cfd2d", "'density'"),
    ("pdebench-reacdiff2d", "pdebench-swe2d", "'0000/data'"),
    ("pdebench-swe2d", "pdebench-reacdiff2d", "'0000/data'"),
    ("pdebench-swe2d", "pdebench-diffsorp", "'0000/data'"),
    ("pdebench-diffsorp", "pdebench-swe2d", "'0000/grid/y'"),
    ("pdebench-darcy", "pdebench-burgers", "'tensor'"),
    ("pdebench-burgers", "pdebench-cfd1d", "'density'"),
])
def test_refusal_names_the_mismatching_key(
    own: str, other: str, key: str, files: dict[str, tuple[Path, np.ndarray]]
) -> None:
    path = files[own][0]
    with pytest.raises(DataError, match=key) as caught:
        read_data(path, other)
    assert path.name in str(caught.value) and repr(other) in str(caught.value)


def test_public_advection_file_without_attributes_is_refused_as_burgers_by_its_name(
        tmp_path: Path) -> None:
    path = write_scalar_1d(tmp_path / "1D_Advection_Sols_beta0.4.hdf5",
                           np.zeros((2, 3, 8), np.float32))
    with pytest.raises(DataError, match="file name") as caught:
        read_data(path, "pdebench-burgers")
    assert "pdebench-advection" in str(caught.value)
    with pytest.raises(DataError, match=r"1D_Advection_Sols_beta0\.4"):
        read_pde_file(path, "burgers")
    with h5py.File(path, "r") as handle:
        assert not burgers.detect(handle)


def test_public_advection_file_is_not_taken_for_burgers_when_detecting(tmp_path: Path) -> None:
    path = write_scalar_1d(tmp_path / "adv.h5", np.zeros((2, 3, 8), np.float32), beta=1.0)
    with pytest.raises(DataError, match="not a known PDE layout"):
        read_pde_file(path)


# --- Only the selection is read. ---------------------------------------------------------------




SELECTION = Selection(max_samples=3, sample_stride=2, time_stride=2, space_stride=3)


def _selected(expected: np.ndarray, selection: Selection) -> np.ndarray:
    """The selection applied to the full arrays by hand."""
    samples = expected[::selection.sample_stride][:selection.max_samples]
    space = (slice(None, None, selection.space_stride),) * (expected.ndim - 3)
    return samples[:, ::selection.time_stride][(slice(None), slice(None), *space)]


@pytest.mark.parametrize("name", sorted(set(LAYOUTS) - {"generic"}))
def test_selection_reads_the_selected_samples_frames_and_points(
    name: str, files: dict[str, tuple[Path, np.ndarray]]
) -> None:
    path, expected = files[name]
    full = read_data(path, name)
    data = read_data(path, name, selection=SELECTION)
    truth = _selected(expected, SELECTION)
    if name == "pdearena-ns2d":  # the stride applies per split: here one sample each
        assert full.attrs["split"] == {"train": 1, "valid": 1, "test": 1}
        truth = _selected(expected, Selection(time_stride=2, space_stride=3))
    if full.steady:  # one frame whatever the time stride
        truth = _selected(expected, Selection(max_samples=3, sample_stride=2, space_stride=3))
        assert data.coefficients is not None and full.coefficients is not None
        np.testing.assert_array_equal(
            data.coefficients, full.coefficients[::2][:3, ::3, ::3])
    np.testing.assert_array_equal(data.trajectories, truth)
    for axis, whole in zip(data.coords, full.coords, strict=True):
        np.testing.assert_array_equal(axis, whole[::3])
    if full.times is not None:
        assert data.times is not None
        np.testing.assert_array_equal(data.times, full.times[::2])


def test_selection_of_ns2d_applies_to_each_split(tmp_path: Path) -> None:
    # Sample i holds the value i: train 0-4, valid 5-7, test 8-9.
    values = np.arange(10, dtype=float)[:, None, None, None] * np.ones((10, 3, 4, 4))
    path = tmp_path / "ns.h5"
    with h5py.File(path, "w") as f:
        for split, rows in (("train", slice(0, 5)), ("valid", slice(5, 8)),
                            ("test", slice(8, 10))):
            group = f.create_group(split)
            part = values[rows]
            for key in ns2d.FIELDS:
                group.create_dataset(key, data=part)
            count = part.shape[0]
            group.create_dataset("t", data=np.tile(np.arange(3.0), (count, 1)))
            group.create_dataset("x", data=np.tile(np.arange(4.0), (count, 1)))
            group.create_dataset("y", data=np.tile(np.arange(4.0), (count, 1)))
    # Every 3rd of each split; 7 shared out 5:3:2 (valid and test at least one each).
    for selection, rows in ((Selection(sample_stride=3), [0, 3, 5, 8]),
                            (Selection(max_samples=7), [0, 1, 2, 3, 5, 6, 8]),
                            (Selection(sample_stride=4, max_samples=2), [0, 4])):
        data = read_data(path, "pdearena-ns2d", selection=selection)
        assert data.trajectories[:, 0, 0, 0, 0].tolist() == rows, selection


def test_a_selection_of_a_large_file_reads_no_more_than_it_keeps(
    tmp_path: Path, peak_bytes: Callable[..., tuple[Any, int]]
) -> None:
    # 400 samples × 50 frames × 256 cells = 20 MB of float32; the selection keeps 10 KB.
    tensor = np.random.default_rng(1).normal(size=(400, 50, 256)).astype(np.float32)
    path = write_scalar_1d(tmp_path / "1D_Burgers_Sols_Nu0.01.hdf5", tensor, Nu=0.01)
    selection = Selection(max_samples=4, sample_stride=3, time_stride=5, space_stride=4)
    data, peak = peak_bytes(lambda: LAYOUTS["pdebench-burgers"].read(path, selection))
    np.testing.assert_array_equal(data.trajectories[..., 0], tensor[:12:3, ::5, ::4])
    assert peak < 1_000_000, peak
    # The same measure sees a whole read, so it would see one that sliced after reading.
    _, whole = peak_bytes(lambda: LAYOUTS["pdebench-burgers"].read(path, None))
    assert whole > tensor.nbytes


@pytest.mark.parametrize("name", sorted(NEW_LAYOUTS))
def test_one_sample_of_each_layout_allocates_about_one_sample(
    name: str, files: dict[str, tuple[Path, np.ndarray]],
    peak_bytes: Callable[..., tuple[Any, int]],
) -> None:
    path, expected = files[name]
    data, peak = peak_bytes(lambda: LAYOUTS[name].read(path, Selection(max_samples=1)))
    assert data.samples == 1
    assert peak < expected[0].nbytes + 200_000, (peak, expected[0].nbytes)
