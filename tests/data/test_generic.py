"""The generic layout (one ``(samples, time, *space, fields)`` array in an HDF5, .npy or .npz
file) and :func:`autoq.data.from_arrays`: what they read, what they refuse, and that a selection
is all they read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from autoq.data import LAYOUTS, Selection, from_arrays, read_data
from autoq.errors import DataError, SpecError

RNG = np.random.default_rng(0)
TRAJECTORIES = RNG.normal(size=(6, 5, 8, 4, 2)).astype(np.float32)  # (N, T, X, Y, F)
X, Y, T = np.linspace(0, 2, 8), np.linspace(-1, 1, 4), np.linspace(0, 0.4, 5)
SELECTION = Selection(max_samples=2, sample_stride=2, time_stride=2, space_stride=3)




def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``arrays`` in an HDF5 file (dataset paths), an .npz archive (stored; ``.z.npz``:
    compressed) or, for one array, an .npy file."""
    if path.suffix == ".npy":
        (array,) = arrays.values()
        np.save(path, array)
    elif path.name.endswith(".z.npz"):
        np.savez_compressed(path, **arrays)
    elif path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        with h5py.File(path, "w") as f:
            for key, array in arrays.items():
                f.create_dataset(key, data=array)
    return path


@pytest.mark.parametrize("name", ["data.h5", "data.npz", "data.z.npz"])
def test_generic_reads_the_named_array_with_its_coordinates(tmp_path: Path, name: str) -> None:
    key = "fields/u" if name.endswith(".h5") else "u"
    path = _write(tmp_path / name, {key: TRAJECTORIES.astype(np.float64), "x": X, "y": Y,
                                    "t": T, "other": np.zeros(3)})
    data = read_data(path, "generic", key=key, coord_keys=["x", "y"], time_key="t")
    assert data.pde == path.stem and data.trajectories.dtype == np.float32
    np.testing.assert_array_equal(data.trajectories, TRAJECTORIES)
    np.testing.assert_allclose(data.coords[0], X, rtol=1e-6)
    np.testing.assert_allclose(data.coords[1], Y, rtol=1e-6)
    np.testing.assert_allclose(data.times, T, rtol=1e-6)
    assert not data.steady


@pytest.mark.parametrize("name", ["data.h5", "data.npy", "data.npz", "data.z.npz"])
def test_generic_selection_matches_slicing_by_hand(tmp_path: Path, name: str) -> None:
    arrays = {"u": TRAJECTORIES} if name.endswith(".npy") else {"u": TRAJECTORIES, "x": X,
                                                                  "y": Y, "t": T}
    path = _write(tmp_path / name, arrays)
    keys: dict[str, Any] = ({} if name.endswith(".npy") else
                            {"key": "u", "coord_keys": ["x", "y"], "time_key": "t"})
    data = read_data(path, "generic", selection=SELECTION, **keys)
    np.testing.assert_array_equal(data.trajectories, TRAJECTORIES[0:4:2, ::2, ::3, ::3])
    if keys:
        np.testing.assert_allclose(data.coords[0], X[::3], rtol=1e-6)
        np.testing.assert_allclose(data.coords[1], Y[::3], rtol=1e-6)
        np.testing.assert_allclose(data.times, T[::2], rtol=1e-6)
    else:  # defaults: the full grid's cell centres on [0, 1) and frame indices, selected
        np.testing.assert_allclose(data.coords[0], [1 / 16, 7 / 16, 13 / 16], rtol=1e-6)
        np.testing.assert_allclose(data.coords[1], [1 / 8, 7 / 8], rtol=1e-6)
        np.testing.assert_array_equal(data.times, [0.0, 2.0, 4.0])


@pytest.mark.parametrize("name", ["big.h5", "big.npy", "big.npz", "big.z.npz"])
def test_generic_selection_of_a_large_file_reads_no_more_than_it_keeps(
        tmp_path: Path, name: str, peak_bytes: Callable[..., tuple[Any, int]]) -> None:
    # 300 samples × 20 frames × 64 × 16 × 1 float32 = 24.6 MB; the selection keeps 8 KB.
    big = np.random.default_rng(2).normal(size=(300, 20, 64, 16, 1)).astype(np.float32)
    path = _write(tmp_path / name, {"u": big})
    keys = {} if name.endswith(".npy") else {"key": "u"}
    selection = Selection(max_samples=4, sample_stride=50, time_stride=4, space_stride=4)
    read = LAYOUTS["generic"].read
    data, peak = peak_bytes(lambda: read(path, selection, **keys))
    np.testing.assert_array_equal(data.trajectories, big[0:200:50, ::4, ::4, ::4])
    assert peak < 1_500_000, peak
    _, whole = peak_bytes(lambda: read(path, None, **keys))
    assert whole > big.nbytes


def test_generic_steady_problem_from_its_coefficients(tmp_path: Path) -> None:
    solution = RNG.normal(size=(5, 1, 6, 6, 1)).astype(np.float32)
    coefficient = RNG.normal(size=(5, 6, 6, 1)).astype(np.float32)
    path = _write(tmp_path / "darcy-like.h5", {"u": solution, "a": coefficient})
    data = read_data(path, "generic", key="u", coefficient_key="a",
                     selection=Selection(max_samples=3, space_stride=2))
    assert data.steady and data.times is None
    np.testing.assert_array_equal(data.trajectories, solution[:3, :, ::2, ::2])
    assert data.coefficients is not None
    np.testing.assert_array_equal(data.coefficients, coefficient[:3, ::2, ::2])


@pytest.mark.parametrize(("arrays", "keys", "error", "named"), [
    ({"u": TRAJECTORIES}, {}, SpecError, "needs key"),
    ({"u": TRAJECTORIES}, {"key": "v"}, DataError, "'v'"),
    ({"u": TRAJECTORIES[..., 0, 0]}, {"key": "u"}, DataError, "'u'"),
    ({"u": TRAJECTORIES.astype(np.complex64)}, {"key": "u"}, DataError, "dtype"),
    ({"u": TRAJECTORIES, "x": X}, {"key": "u", "coord_keys": ["x"]}, DataError, "coord_keys"),
    ({"u": TRAJECTORIES, "x": X, "y": X}, {"key": "u", "coord_keys": ["x", "y"]}, DataError,
     "'y'"),
    ({"u": TRAJECTORIES, "t": T[:3]}, {"key": "u", "time_key": "t"}, DataError, "'t'"),
    ({"u": TRAJECTORIES, "a": np.zeros((6, 8, 5, 1))}, {"key": "u", "coefficient_key": "a"},
     DataError, "'a'"),
    ({"u": TRAJECTORIES, "a": np.zeros((6, 8, 4, 1))}, {"key": "u", "coefficient_key": "a"},
     DataError, "one frame"),
])
def test_generic_refuses_naming_file_and_key(
    tmp_path: Path, arrays: dict[str, np.ndarray], keys: dict[str, Any],
    error: type[Exception], named: str,
) -> None:
    path = _write(tmp_path / "bad.h5", arrays)
    with pytest.raises(error, match=named) as caught:
        read_data(path, "generic", **keys)
    assert "bad.h5" in str(caught.value)


def test_generic_npy_takes_no_keys(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.npy", {"u": TRAJECTORIES})
    with pytest.raises(SpecError, match=r"one\.npy.*\['key'\]"):
        read_data(path, "generic", key="u")


def test_other_layouts_take_no_generic_keys(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.h5", {"u": TRAJECTORIES})
    with pytest.raises(SpecError, match="'pdebench-burgers' takes no key"):
        read_data(path, "pdebench-burgers", key="u")


# --- from_arrays ---------------------------------------------------------------------------------


def test_from_arrays_defaults_and_no_copy() -> None:
    data = from_arrays(TRAJECTORIES, name="mine")
    assert data.pde == "mine" and np.shares_memory(data.trajectories, TRAJECTORIES)
    assert (data.samples, data.frames, data.spatial_shape, data.fields) == (6, 5, (8, 4), 2)
    np.testing.assert_allclose(data.coords[0], (np.arange(8) + 0.5) / 8)
    np.testing.assert_allclose(data.coords[1], (np.arange(4) + 0.5) / 4)
    np.testing.assert_array_equal(data.times, np.arange(5))
    assert not data.steady


def test_from_arrays_keeps_given_coordinates_times_and_coefficients() -> None:
    data = from_arrays(TRAJECTORIES.astype(np.float64).tolist(), coords=[X, Y], times=T)
    np.testing.assert_array_equal(data.trajectories, TRAJECTORIES)
    assert data.trajectories.dtype == np.float32
    np.testing.assert_allclose(data.coords[1], Y, rtol=1e-6)
    np.testing.assert_allclose(data.times, T, rtol=1e-6)
    steady = from_arrays(TRAJECTORIES[:, :1], coefficients=TRAJECTORIES[:, 0, ..., :1])
    assert steady.steady and steady.times is None and steady.coefficients is not None
    assert steady.coefficients.shape == (6, 8, 4, 1)


@pytest.mark.parametrize(("arguments", "named"), [
    ({"trajectories": np.zeros((6, 5, 2))}, "trajectories has shape"),
    ({"trajectories": np.zeros((6, 0, 8, 1))}, "trajectories has shape"),
    ({"trajectories": np.full((2, 3, 4, 1), "a")}, "trajectories has dtype"),
    ({"trajectories": np.zeros((2, 3, 4, 1), np.complex64)}, "trajectories has dtype"),
    ({"trajectories": np.full((2, 3, 4, 1), np.nan)}, "trajectories holds 24 NaN"),
    ({"trajectories": TRAJECTORIES, "coords": [X]}, "coords has 1 array"),
    ({"trajectories": TRAJECTORIES, "coords": [X, X]}, r"coords\[1\] has shape \(8,\)"),
    ({"trajectories": TRAJECTORIES, "coords": "xy"}, "coords must be a sequence"),
    ({"trajectories": TRAJECTORIES, "times": T[:4]}, r"times has shape \(4,\)"),
    ({"trajectories": TRAJECTORIES, "times": [0, 1, np.inf, 3, 4]}, "times holds 1 NaN"),
    ({"trajectories": TRAJECTORIES[:, :1], "coefficients": np.zeros((6, 8, 5, 1))},
     "coefficients has shape"),
    ({"trajectories": TRAJECTORIES, "coefficients": np.zeros((6, 8, 4, 1))},
     "one frame"),
    ({"trajectories": TRAJECTORIES[:, :1], "coefficients": np.zeros((6, 8, 4, 1)),
      "times": [0.0]}, "no frame times"),
])
def test_from_arrays_refuses_naming_the_argument(arguments: dict[str, Any], named: str) -> None:
    with pytest.raises(DataError, match=named) as caught:
        from_arrays(arguments.pop("trajectories"), **arguments)
    assert str(caught.value).startswith("from_arrays:")


def test_from_arrays_name_must_be_text() -> None:
    with pytest.raises(SpecError, match="name"):
        from_arrays(TRAJECTORIES, name="")
