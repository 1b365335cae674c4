"""The contract every architecture in :data:`autoq.models.MODELS` joins by being registered.

Each case builds the architecture from its default config, in 1D and in 2D; nothing here names
an architecture, so a new entry of ``MODELS`` is tested without touching this file.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from pydantic import TypeAdapter
from torch import nn

import autoq.models
from autoq.errors import SpecError
from autoq.models import MODELS, ModelConfig, build_model, first_and_last_layers
from autoq.models.registry import Architecture, parse_model_config
from autoq.precision import quantizable_layers

# Small and unequal per axis (and no power of two), so a swapped or dropped axis shows.
GRIDS = {1: (20,), 2: (12, 10)}
IN_CHANNELS, OUT_CHANNELS = 3, 2


@pytest.fixture(params=sorted(MODELS))
def arch(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(params=sorted(GRIDS))
def dims(request: pytest.FixtureRequest) -> int:
    value: int = request.param
    return value


def _default_model(architecture: Architecture, dims: int) -> nn.Module:
    torch.manual_seed(0)
    return build_model(
        architecture.config(), spatial_dims=dims, in_channels=IN_CHANNELS,
        out_channels=OUT_CHANNELS,
    )


def test_registry_key_is_the_config_arch(arch: str) -> None:
    architecture = MODELS[arch]
    assert architecture.config().arch == arch
    assert issubclass(architecture.network_class(), nn.Module)


def test_default_model_maps_the_grid_to_itself(arch: str, dims: int) -> None:
    model = _default_model(MODELS[arch], dims)
    assert isinstance(model, MODELS[arch].network_class())
    with torch.no_grad():
        out = model(torch.randn(2, IN_CHANNELS, *GRIDS[dims]))
    assert out.shape == (2, OUT_CHANNELS, *GRIDS[dims])
    assert torch.isfinite(out).all()


def test_first_and_last_layers_exist_and_are_quantizable(arch: str, dims: int) -> None:
    model = _default_model(MODELS[arch], dims)
    first, last = first_and_last_layers(model)
    layers = quantizable_layers(model)
    assert first != last
    assert first in layers, (first, layers)
    assert last in layers, (last, layers)


def test_default_config_round_trips_through_the_union(arch: str) -> None:
    config = MODELS[arch].config()
    parsed = parse_model_config(config.model_dump())
    assert type(parsed) is MODELS[arch].config
    assert parsed == config
    adapter: TypeAdapter[ModelConfig] = TypeAdapter(ModelConfig)
    assert adapter.validate_json(adapter.dump_json(config)) == config


def test_unknown_arch_is_refused_naming_every_known_one() -> None:
    with pytest.raises(SpecError, match=r"model\.arch") as parsed:
        parse_model_config({"arch": "resnet"})
    stale = MODELS[sorted(MODELS)[0]].config.model_construct(arch="resnet")  # like a stale spec
    with pytest.raises(SpecError, match="'resnet'") as built:
        build_model(stale, spatial_dims=1, in_channels=1, out_channels=1)
    for message in (str(parsed.value), str(built.value)):
        assert all(repr(name) in message for name in MODELS), message


def test_registry_and_configs_import_without_torch(
    heavy_imports: Callable[..., list[str]],
) -> None:
    assert heavy_imports("autoq.models.registry", "autoq.models.config") == []


def test_package_names_resolve_lazily() -> None:
    for name in autoq.models.__all__:
        assert getattr(autoq.models, name) is not None, name
    assert autoq.models.config.ModelConfig is ModelConfig
    assert autoq.models.config.parse_model_config is parse_model_config
