"""Float training on real generated data, the scale factor, rollouts and the float cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autoq.errors import SpecError
from autoq.models.config import FNOConfig, UNetConfig
from autoq.train import (
    FloatModelCache,
    TrainConfig,
    evaluate,
    evaluate_rollout,
    load_problem,
    persistence_mse,
)
from autoq.train import cache as cache_module

TINY_FNO = FNOConfig(width=16, modes=8, layers=2, projection_width=32)
RECIPE = TrainConfig(epochs=6, lr=3e-3, batch_size=16)


def test_persistence_mse_repeats_the_last_input_state(burgers_file: Path) -> None:
    problem = load_problem(burgers_file, pde="burgers", input_steps=3, target_steps=2)
    inputs, targets = problem.val_windows.batch(torch.arange(len(problem.val_windows)))
    last = inputs[:, -1:]  # one field: the last input state is the last channel
    by_hand = torch.mean((torch.cat([last, last], dim=1) - targets) ** 2).item()
    assert persistence_mse(problem.val_windows) == pytest.approx(by_hand, rel=1e-5)


def test_fno_learns_burgers_well_below_persistence(burgers_file: Path, tmp_path: Path) -> None:
    problem = load_problem(burgers_file, pde="burgers", input_steps=4, target_steps=1)
    model = FloatModelCache(tmp_path).get(problem, TINY_FNO, RECIPE, scale=1.0)
    baseline = persistence_mse(problem.val_windows)
    print(f"val MSE {model.val_mse:.3e} vs persistence {baseline:.3e}")
    assert model.val_mse < 0.2 * baseline
    assert model.val_mse == pytest.approx(evaluate(model.solver, problem.val_windows))
    rollout = evaluate_rollout(model.solver, problem.data, problem.split.val, horizon=8)
    assert model.val_mse < rollout < 100 * baseline


def test_half_scale_runs_at_half_resolution_and_is_scored_at_data_resolution(
    burgers_file: Path, tmp_path: Path
) -> None:
    problem = load_problem(burgers_file, input_steps=4, target_steps=2)
    model = FloatModelCache(tmp_path).get(problem, TINY_FNO, RECIPE, scale=0.5)
    assert model.solver.net_shape == (32,)
    seen = []
    model.solver.network.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    inputs, targets = problem.val_windows.batch(torch.arange(3))
    prediction = model.solver(inputs)
    assert seen[-1] == (3, 2, 32)
    assert prediction.shape == targets.shape == (3, 2, 64)
    assert model.val_mse < 0.5 * persistence_mse(problem.val_windows)


def test_unet_learns_darcy_coefficient_to_solution(darcy_file: Path, tmp_path: Path) -> None:
    problem = load_problem(darcy_file, pde="darcy", input_steps=1, target_steps=1)
    recipe = TrainConfig(epochs=30, lr=3e-3, batch_size=8)
    model = FloatModelCache(tmp_path).get(problem, UNetConfig(width=8, levels=2), recipe,
                                          scale=1.0)
    targets = problem.val_windows.batch(torch.arange(len(problem.val_windows)))[1]
    mean_predictor = torch.var(targets, correction=0).item()
    assert model.val_mse < 0.5 * mean_predictor


def test_pushforward_unrolled_training_runs(burgers_file: Path, tmp_path: Path) -> None:
    problem = load_problem(burgers_file, input_steps=4, target_steps=1)
    recipe = TrainConfig(epochs=2, batch_size=16, unroll=3, pushforward=True)
    model = FloatModelCache(tmp_path).get(problem, TINY_FNO, recipe, scale=1.0)
    assert model.val_mse < persistence_mse(problem.val_windows)


def test_cache_returns_identical_weights_without_training_again(
    burgers_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = load_problem(burgers_file, input_steps=4, target_steps=1)
    recipe = TrainConfig(epochs=1, batch_size=16)
    cache = FloatModelCache(tmp_path)
    first = cache.get(problem, TINY_FNO, recipe, scale=0.5)

    def no_training(*args, **kwargs):
        raise AssertionError("the cache trained a model it already had")

    monkeypatch.setattr(cache_module, "fit", no_training)
    second = cache.get(problem, TINY_FNO, recipe, scale=0.5)
    assert (first.loaded, second.loaded) == (False, True)
    assert first.key == second.key
    for name, tensor in first.solver.state_dict().items():
        assert torch.equal(tensor, second.solver.state_dict()[name]), name
    assert second.val_mse == first.val_mse
    other_scale = cache.key(problem, TINY_FNO, recipe, scale=0.7, seed=0)
    assert other_scale != first.key
    assert list(tmp_path.glob("*.tmp")) == [] and len(list(tmp_path.glob("*.pt"))) == 1


def test_window_longer_than_the_trajectory_is_a_clear_error(burgers_file: Path) -> None:
    with pytest.raises(SpecError, match="exceeds the 21 frames"):
        load_problem(burgers_file, input_steps=20, target_steps=2)


def test_rescale_epochs_fine_tunes_the_full_resolution_model_at_a_smaller_scale(
    burgers_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = load_problem(burgers_file, input_steps=4, target_steps=1)
    scratch = TrainConfig(epochs=2, batch_size=16)
    reuse = scratch.model_copy(update={"rescale_epochs": 1})
    cache = FloatModelCache(tmp_path)
    fits: list[tuple[tuple[int, ...], int, dict[str, torch.Tensor]]] = []
    real_fit = cache_module.fit

    def recording_fit(solver, windows, config, **kwargs):
        start = {name: value.clone() for name, value in solver.state_dict().items()}
        fits.append((solver.net_shape, config.epochs, start))
        return real_fit(solver, windows, config, **kwargs)

    monkeypatch.setattr(cache_module, "fit", recording_fit)
    half = cache.get(problem, TINY_FNO, reuse, scale=0.5)
    full = cache.get(problem, TINY_FNO, scratch, scale=1.0)
    assert [(shape, epochs) for shape, epochs, _ in fits] == [((64,), 2), ((32,), 1)]
    assert full.loaded  # the full-resolution model is the one a search from scratch uses
    for name, tensor in full.solver.state_dict().items():
        assert torch.equal(fits[1][2][name], tensor), name
    assert not torch.equal(half.solver.state_dict()["network.lifting.weight"],
                           full.solver.state_dict()["network.lifting.weight"])
    assert half.key != cache.key(problem, TINY_FNO, scratch, scale=0.5, seed=0)
    assert cache.key(problem, TINY_FNO, reuse, scale=1.0, seed=0) == full.key
    assert half.val_mse < persistence_mse(problem.val_windows)
