"""Your own model: a module defined here (not in autoq) searched through the Python API and a
spec's ``factory:``, its checkpoint in place of float training, and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autoq
from autoq.errors import SpecError
from autoq.search.setup import ensure_data
from autoq.train import load_problem, persistence_mse
from autoq.train.metrics import relative_l2


class SmallConvNet(nn.Module):
    """A user's 1D model in physical units: the last input state plus a learned correction."""

    def __init__(self, in_channels: int = 4, out_channels: int = 1, width: int = 12) -> None:
        super().__init__()
        self.lift = nn.Conv1d(in_channels, width, 1)
        self.body = nn.Conv1d(width, width, 5, padding=2)
        self.project = nn.Conv1d(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1:] + self.project(F.gelu(self.body(F.gelu(self.lift(x)))))


def raises_in_init(width: int = 3) -> nn.Module:
    raise ValueError(f"width {width} is odd")


def _payload(payload: dict[str, Any], *, space: dict[str, Any] | None = None,
             **changes: Any) -> dict[str, Any]:
    return {**payload, "name": "own-model", **changes,
            "space": {**payload["space"], "granularity": "per_layer", **(space or {})}}


def test_own_model_class_is_searched_with_real_qat(tiny_spec_payload: dict[str, Any],
                                                   sqlite_url: str) -> None:
    result = autoq.search(_payload(tiny_spec_payload), model=SmallConvNet, trials=2,
                          storage=sqlite_url)
    trials = result.trials()
    assert [t.state for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        # First and last layer by execution order stay float; the body carries the asked bits.
        assert trial.bits["module.lift"] == "float" and trial.bits["module.project"] == "float"
        weight, act = trial.bits["module.body"]
        assert weight in (4, 8) and act in (8, 16)
        assert trial.details["timings"]["qat"] > 0
    assert result.pareto() and {p.number for p in result.pareto()} <= {0, 1}
    assert result.spec.model.factory == "test_own_model:SmallConvNet"


def test_module_instance_is_the_float_model_at_full_resolution(
    tiny_spec_payload: dict[str, Any], sqlite_url: str
) -> None:
    persistence = SmallConvNet()
    with torch.no_grad():  # the correction is zero: the model repeats the last state
        persistence.project.weight.zero_()
        persistence.project.bias.zero_()
    payload = _payload(tiny_spec_payload, space={"scales": [1.0]})
    result = autoq.search(payload, model=persistence, trials=1, storage=sqlite_url)
    spec = result.spec
    problem = load_problem(ensure_data(spec), pde="burgers", input_steps=spec.data.input_steps,
                           target_steps=spec.data.target_steps)
    # Not trained from scratch: the float model's error is the instance's own.
    assert result.float_error() == pytest.approx(persistence_mse(problem.val_windows), rel=1e-5)
    assert spec.model.checkpoint is not None and Path(spec.model.checkpoint).is_file()


def test_factory_in_a_spec_starts_from_its_checkpoint(
    tiny_spec_payload: dict[str, Any], sqlite_url: str, tmp_path: Path
) -> None:
    trained = SmallConvNet(width=8)
    checkpoint = tmp_path / "mine.pt"
    torch.save({"state_dict": trained.state_dict()}, checkpoint)
    model = {"factory": "test_own_model:SmallConvNet", "kwargs": {"width": 8},
             "checkpoint": str(checkpoint), "rescale": "as_is"}
    payload = _payload(tiny_spec_payload, model=model, space={"scales": [0.5]})
    result = autoq.search(payload, trials=2, storage=sqlite_url, metric="relative_l2")
    assert result.study.metric_names == ["relative_l2", "cost"]
    assert all(t.complete for t in result.trials())
    # As is at half resolution: the float model there is the checkpoint's weights, untrained.
    spec = result.spec
    problem = load_problem(ensure_data(spec), pde="burgers", input_steps=spec.data.input_steps,
                           target_steps=spec.data.target_steps)
    solver = problem.build_solver(spec.model, scale=0.5)
    solver.network.module.load_state_dict(trained.state_dict())
    assert result.float_error() == pytest.approx(relative_l2(solver, problem), rel=1e-6)


@pytest.mark.parametrize(("model", "message"), [
    ({"factory": "not a path"}, "model.factory: String should match pattern"),
    ({"factory": "no_such_package_x:Net"}, "model.factory: cannot import 'no_such_package_x'"),
    ({"factory": "test_own_model:Missing"}, "model.factory: module 'test_own_model' has no "
                                             "attribute 'Missing'"),
    ({"factory": "test_own_model:raises_in_init"}, "model.factory: test_own_model:raises_in_init"
                                                    "(**{}) raised ValueError: width 3 is odd"),
    ({"factory": "test_own_model:SmallConvNet", "kwargs": {"out_channels": 2}},
     "model: the model maps (1, 4, 64) to (1, 2, 64); expected (1, 1, 64)"),
    ({"factory": "test_own_model:SmallConvNet", "kwargs": {"in_channels": 3}},
     "model: a forward pass on (1, 4, 64) = (batch, input_steps·fields, *space) raised"),
    ({"factory": "test_own_model:SmallConvNet", "first_layer": "nope"},
     "model.first_layer: SmallConvNet has no layer 'nope'"),
])
def test_bad_own_model_is_an_error_naming_the_field(
    tiny_spec_payload: dict[str, Any], sqlite_url: str, model: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as error:
        autoq.search(_payload(tiny_spec_payload, model=model), trials=1, storage=sqlite_url)
    assert message in str(error.value)
    with pytest.raises(SpecError, match="no search named"):
        autoq.load("own-model", storage=sqlite_url)  # nothing stored


def test_callable_metric_names_the_objective(tiny_spec_payload: dict[str, Any],
                                             sqlite_url: str) -> None:
    def max_abs_error(prediction: torch.Tensor, target: torch.Tensor) -> float:
        return float((prediction - target).abs().max())

    result = autoq.search(_payload(tiny_spec_payload), model=SmallConvNet, trials=1,
                          storage=sqlite_url, metric=max_abs_error)
    assert result.spec.metric == "custom:max_abs_error"
    assert result.study.metric_names == ["custom:max_abs_error", "cost"]
    (trial,) = result.trials()
    assert trial.complete and trial.mse > 0


class ChannelsLastMLP(nn.Module):
    """A pointwise model written for ``(batch, *space, channels)``."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 8)
        self.outer = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., -1:] + self.outer(F.gelu(self.inner(x)))


def test_channels_last_model_is_adapted() -> None:
    from autoq.models import build_model
    from autoq.models.config import FactoryConfig

    config = FactoryConfig(factory="test_own_model:ChannelsLastMLP", channels_last=True)
    network = build_model(config, spatial_dims=1, in_channels=4, out_channels=1)
    x = torch.randn(2, 4, 64)
    expected = network.module(x.movedim(1, -1)).movedim(-1, 1)
    assert torch.equal(network(x), expected) and network(x).shape == (2, 1, 64)
    assert (network.first_layer, network.last_layer) == ("module.inner", "module.outer")
    with pytest.raises(SpecError, match=r"model: a forward pass on \(1, 4, 32\)"):
        build_model(config.model_copy(update={"channels_last": False}), spatial_dims=1,
                    in_channels=4, out_channels=1)
