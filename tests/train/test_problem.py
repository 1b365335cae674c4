"""Problems from files (a layout, a selection) and from data in memory, and the digest that
keys the float-model cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from autoq.data import Selection, from_arrays, read_data, resize
from autoq.errors import SpecError
from autoq.models.config import FNOConfig
from autoq.train import FloatModelCache, TrainConfig, load_problem
from autoq.train.problem import data_digest, problem_from_data

TINY_FNO = FNOConfig(width=8, modes=4, layers=1, projection_width=16)


def test_whole_file_problem_is_keyed_by_the_file_bytes(burgers_file: Path) -> None:
    problem = load_problem(burgers_file, pde="burgers", input_steps=2, target_steps=1)
    assert problem.data_digest == hashlib.sha256(burgers_file.read_bytes()).hexdigest()
    same = load_problem(burgers_file, layout="pdebench-burgers", input_steps=2, target_steps=1)
    assert same.data_digest == problem.data_digest


def test_selected_problem_holds_the_selection_and_its_own_digest(burgers_file: Path) -> None:
    whole = load_problem(burgers_file, pde="burgers", input_steps=2, target_steps=1)
    selection = Selection(max_samples=10, sample_stride=2, time_stride=2, space_stride=2)
    part = load_problem(burgers_file, pde="burgers", selection=selection, input_steps=2,
                        target_steps=1)
    np.testing.assert_array_equal(part.data.trajectories,
                                  whole.data.trajectories[0:20:2, ::2, ::2])
    assert part.data_digest != whole.data_digest
    assert part.data_digest == problem_from_data(part.data, input_steps=2,
                                                 target_steps=1).data_digest
    other = load_problem(burgers_file, pde="burgers", input_steps=2, target_steps=1,
                         selection=Selection(max_samples=10, sample_stride=2, time_stride=2))
    assert other.data_digest != part.data_digest


def test_pde_and_layout_must_agree(burgers_file: Path) -> None:
    with pytest.raises(SpecError, match=r"'pdebench-burgers'.*'pdebench-advection'"):
        load_problem(burgers_file, pde="burgers", layout="pdebench-advection", input_steps=2,
                     target_steps=1)


def test_data_digest_follows_the_values_shapes_and_coefficients() -> None:
    values = np.random.default_rng(0).normal(size=(4, 3, 8, 1)).astype(np.float32)
    digest = data_digest(from_arrays(values))
    assert digest == data_digest(from_arrays(values.copy(), name="renamed"))
    changed = values.copy()
    changed[3, 2, 7, 0] += 1e-3
    assert data_digest(from_arrays(changed)) != digest
    assert data_digest(from_arrays(values.reshape(4, 3, 4, 2))) != digest
    steady = from_arrays(values[:, :1], coefficients=values[:, 0])
    other = from_arrays(values[:, :1], coefficients=values[:, 0] + 1)
    assert data_digest(steady) != data_digest(other)


def test_problem_from_data_splits_checks_the_window_and_takes_a_digest() -> None:
    data = from_arrays(np.zeros((10, 6, 8, 1), np.float32))
    problem = problem_from_data(data, input_steps=3, target_steps=2, split_seed=1,
                                digest="mine")
    assert problem.data_digest == "mine" and problem.data is data
    subsets = [problem.split.train, problem.split.val, problem.split.test]
    assert sorted(np.concatenate(subsets).tolist()) == list(range(10))
    assert problem_from_data(data, input_steps=3, target_steps=2).data_digest == data_digest(
        data)
    with pytest.raises(SpecError, match="exceeds the 6 frames"):
        problem_from_data(data, input_steps=5, target_steps=2)
    with pytest.raises(SpecError, match="at least 3 samples"):
        problem_from_data(from_arrays(np.zeros((2, 6, 8, 1))), input_steps=1, target_steps=1)


def test_float_model_trains_on_data_from_memory_and_is_cached_by_its_digest(
        burgers_file: Path, tmp_path: Path) -> None:
    data = from_arrays(read_data(burgers_file, "pdebench-burgers").trajectories[:16])
    problem = problem_from_data(data, input_steps=4, target_steps=1)
    cache = FloatModelCache(tmp_path)
    recipe = TrainConfig(epochs=1, batch_size=16)
    first = cache.get(problem, TINY_FNO, recipe, scale=1.0)
    assert np.isfinite(first.val_mse) and not first.loaded
    again = cache.get(problem_from_data(from_arrays(data.trajectories.copy()), input_steps=4,
                                        target_steps=1), TINY_FNO, recipe, scale=1.0)
    assert again.loaded and again.key == first.key


def test_the_resize_method_is_part_of_the_float_models_identity(burgers_file: Path,
                                                                tmp_path: Path) -> None:
    # Float training runs through the resizes, so each method trains a model of its own.
    problem = load_problem(burgers_file, pde="burgers", input_steps=4, target_steps=1,
                           selection=Selection(max_samples=12))
    cache = FloatModelCache(tmp_path)
    recipe = TrainConfig(epochs=1, batch_size=16)
    keys = {method: cache.key(problem, TINY_FNO, recipe, scale=0.5, seed=0, resample=method)
            for method in ("linear", "cubic", "fourier")}
    assert len(set(keys.values())) == 3
    assert keys["linear"] == cache.key(problem, TINY_FNO, recipe, scale=0.5, seed=0)
    model = cache.get(problem, TINY_FNO, recipe, scale=0.5, resample="fourier")
    assert (model.key, model.solver.resample, model.loaded) == (keys["fourier"], "fourier", False)
    inputs = problem.val_windows.batch(torch.arange(2))[0]
    expected = resize(inputs, model.solver.net_shape, "fourier")
    assert torch.equal(model.solver.to_network(inputs), expected)
    again = cache.get(problem, TINY_FNO, recipe, scale=0.5, resample="fourier")
    assert again.loaded and again.solver.resample == "fourier"
