"""A spec's ``data`` block: layout and pde, the generic keys, the selection, and how the search
set-up (``ensure_data``, ``geometry``, ``load_spec_problem``) follows them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from autoq.data import LAYOUTS, PDES, Selection, family_layout
from autoq.errors import DataError, SpecError
from autoq.search import parse_spec
from autoq.search.setup import ensure_data, geometry, load_spec_problem
from autoq.search.spec import DataSpec, SearchSpec


def _spec(data: dict[str, Any]) -> SearchSpec:
    return parse_spec({"name": "data-spec", "data": data, "model": {"arch": "fno"}})


def _edited(**data: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"pde": "burgers", "path": "x.h5"}
    base.update(data)
    return {key: value for key, value in base.items() if value is not ...}


@pytest.mark.parametrize("pde", sorted(PDES))
def test_pde_stands_for_its_layout_and_a_family_layout_names_its_pde(pde: str) -> None:
    layout = family_layout(pde)
    assert _spec({"pde": pde, "path": "x.h5"}).data.layout == layout
    assert _spec({"layout": layout, "path": "x.h5"}).data.pde == pde
    assert _spec({"pde": pde, "layout": layout, "path": "x.h5"}).data.layout == layout


def test_layout_without_generator_has_no_pde() -> None:
    data = _spec({"layout": "pdebench-advection", "path": "x.h5"}).data
    assert (data.layout, data.pde) == ("pdebench-advection", None)


@pytest.mark.parametrize("data", [
    {"layout": "generic", "path": "x.h5", "key": "u", "coord_keys": ["x"], "time_key": "t",
     "max_samples": 64, "sample_stride": 2, "time_stride": 5, "space_stride": 4},
    {"pde": "darcy", "path": "x.h5", "max_samples": 10,
     "generate": {"samples": 12, "resolution": 16}},
    {"layout": "pdebench-cfd2d", "path": "x.h5"},
])
def test_spec_round_trips_through_its_dump(data: dict[str, Any]) -> None:
    spec = _spec(data)
    assert parse_spec(spec.model_dump(mode="json")).data == spec.data


@pytest.mark.parametrize(("data", "named"), [
    (_edited(pde=..., path="x.h5"), "give layout"),
    (_edited(layout="pdebench-advection"), "pde 'burgers' reads layout 'pdebench-burgers'"),
    (_edited(pde=..., layout="pdebench-burgers2"), "data.layout: unknown layout"),
    (_edited(key="u"), "'pdebench-burgers' takes no key"),
    (_edited(pde=..., layout="pdebench-swe2d", coord_keys=["x", "y"]), "takes no coord_keys"),
    (_edited(pde=..., layout="pdebench-advection", generate={"samples": 8}),
     "no generator for layout 'pdebench-advection'"),
    (_edited(max_samples=2), "data.max_samples"),
    (_edited(space_stride=0), "data.space_stride"),
    (_edited(pde=..., layout="generic", key=""), "data.key"),
])
def test_bad_data_block_is_a_spec_error_naming_the_key(data: dict[str, Any], named: str
                                                       ) -> None:
    with pytest.raises(SpecError, match=named):
        _spec(data)


def test_layout_enum_and_options_come_from_the_registry() -> None:
    schema = SearchSpec.model_json_schema()
    layout = schema["$defs"]["DataSpec"]["properties"]["layout"]
    assert layout["enum"] == sorted(LAYOUTS)
    options = {option for entry in LAYOUTS.values() for option in entry.options}
    assert options == set(DataSpec.LAYOUT_OPTIONS) <= set(DataSpec.model_fields)


def test_selection_and_read_options_of_a_spec() -> None:
    data = _spec({"layout": "generic", "path": "x.h5", "key": "u", "max_samples": 8,
                  "time_stride": 2}).data
    assert data.selection == Selection(max_samples=8, time_stride=2)
    assert data.read_options == {"key": "u"}


# --- The set-up follows the layout and the selection. --------------------------------------------


def _generic_file(path: Path) -> np.ndarray:
    values = np.random.default_rng(0).normal(size=(40, 12, 32, 1)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("fields/u", data=values)
    return values


def test_setup_reads_only_the_selection_in_the_spec_layout(tmp_path: Path) -> None:
    values = _generic_file(tmp_path / "mine.h5")
    spec = _spec({"layout": "generic", "path": str(tmp_path / "mine.h5"), "key": "fields/u",
                  "max_samples": 10, "sample_stride": 3, "time_stride": 2, "space_stride": 4,
                  "input_steps": 2, "target_steps": 1})
    problem = load_spec_problem(spec, progress=False)
    np.testing.assert_array_equal(problem.data.trajectories, values[0:30:3, ::2, ::4])
    assert geometry(spec).data_shape == (8,)
    assert (geometry(spec).in_channels, geometry(spec).out_channels) == (2, 1)
    assert problem.split.train.size + problem.split.val.size + problem.split.test.size == 10


def test_geometry_of_a_file_to_generate_follows_the_space_stride(tmp_path: Path) -> None:
    spec = _spec({"pde": "darcy", "path": str(tmp_path / "later.h5"), "space_stride": 3,
                  "generate": {"samples": 4, "resolution": 16}})
    assert geometry(spec).data_shape == (6, 6)  # points 0, 3, …, 15 of 16
    ensure_data(spec, progress=False)
    assert geometry(spec).data_shape == (6, 6)


def test_missing_file_without_generator_names_path_and_layout(tmp_path: Path) -> None:
    spec = _spec({"layout": "pdebench-cfd1d", "path": str(tmp_path / "nope.hdf5")})
    with pytest.raises(DataError, match=r"nope\.hdf5.*'pdebench-cfd1d'"):
        ensure_data(spec, progress=False)
    with pytest.raises(DataError, match=r"nope\.hdf5.*'pdebench-cfd1d'"):
        geometry(spec)


def test_spec_layout_refuses_a_file_of_another_layout(tmp_path: Path) -> None:
    path = tmp_path / "1D_Advection_Sols_beta0.4.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=np.zeros((4, 5, 8), np.float32))
        f.create_dataset("x-coordinate", data=np.linspace(0, 1, 8), dtype="f4")
        f.create_dataset("t-coordinate", data=np.linspace(0, 1, 6), dtype="f4")
        f.attrs["beta"] = 0.4
    spec = _spec({"pde": "burgers", "path": str(path), "input_steps": 2})
    with pytest.raises(DataError, match=r"1D_Advection_Sols_beta0\.4\.hdf5.*'beta'.*"
                                        r"'pdebench-burgers'"):
        load_spec_problem(spec, progress=False)
    advection = copy.deepcopy(spec.data.model_dump())
    advection.update(pde=None, layout="pdebench-advection")
    problem = load_spec_problem(_spec(advection), progress=False)
    assert problem.data.pde == "advection" and problem.data.attrs == {"beta": 0.4}
