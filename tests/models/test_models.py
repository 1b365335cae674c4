"""Contract tests every model in the registry joins, in 1D and 2D."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from autoq.errors import SpecError
from autoq.models import (
    MODELS,
    FNOConfig,
    MatMul,
    SpectralConv,
    TransformerConfig,
    UNetConfig,
    build_model,
    first_and_last_layers,
)

# Smaller than the defaults, so the contract tests stay fast.
TINY_CONFIGS = {
    "fno": FNOConfig(width=8, modes=6, layers=2, projection_width=16),
    "unet": UNetConfig(width=4, levels=2),
    "transformer": TransformerConfig(width=16, heads=2, layers=2, patch=4, feed_forward_width=32),
}
# Per dimension: a power of two, a size that is no multiple of 2**levels or the patch, and a
# grid coarser than 2·modes.
RESOLUTIONS = {1: [(32,), (37,), (10,)], 2: [(16, 16), (19, 13), (7, 9)]}
IN_CHANNELS, OUT_CHANNELS = 3, 2

MATMUL_MODULES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    SpectralConv,
    MatMul,
)
MATMUL_FUNCTIONS = {
    "linear",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "matmul",
    "__matmul__",
    "__rmatmul__",
    "mm",
    "bmm",
    "addmm",
    "baddbmm",
    "einsum",
    "tensordot",
}

ARCH_DIMS = [(arch, dims) for arch in MODELS for dims in (1, 2)]


def _tiny_model(arch: str, dims: int) -> nn.Module:
    torch.manual_seed(0)
    return build_model(
        TINY_CONFIGS[arch], spatial_dims=dims, in_channels=IN_CHANNELS, out_channels=OUT_CHANNELS
    )


def test_every_registered_arch_has_a_tiny_config() -> None:
    assert set(TINY_CONFIGS) == set(MODELS)


@pytest.mark.parametrize(("arch", "dims"), ARCH_DIMS)
def test_model_output_has_input_resolution(arch: str, dims: int) -> None:
    model = _tiny_model(arch, dims)
    for spatial in RESOLUTIONS[dims]:
        out = model(torch.randn(2, IN_CHANNELS, *spatial))
        assert out.shape == (2, OUT_CHANNELS, *spatial)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize(("arch", "dims"), ARCH_DIMS)
def test_model_gradients_reach_every_parameter(arch: str, dims: int) -> None:
    model = _tiny_model(arch, dims)
    spatial = RESOLUTIONS[dims][0]
    out = model(torch.randn(2, IN_CHANNELS, *spatial))
    (out * torch.randn_like(out)).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


@contextmanager
def _record_matmuls(model: nn.Module) -> Iterator[tuple[list[str], list[tuple[str, Any]]]]:
    """Record the matmul-type modules in call order, and every matmul-type torch function call
    with the innermost module running at that moment."""
    names = {module: name for name, module in model.named_modules()}
    stack: list[nn.Module] = []
    layer_order: list[str] = []
    calls: list[tuple[str, Any]] = []

    def enter(module: nn.Module, _args: Any) -> None:
        stack.append(module)
        if isinstance(module, MATMUL_MODULES):
            layer_order.append(names[module])

    def leave(_module: nn.Module, _args: Any, _out: Any) -> None:
        stack.pop()

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in MATMUL_FUNCTIONS:
                calls.append((func.__name__, stack[-1] if stack else None))
            return func(*args, **(kwargs or {}))

    handles = [m.register_forward_pre_hook(enter) for m in model.modules()]
    handles += [m.register_forward_hook(leave) for m in model.modules()]
    try:
        with Recorder():
            yield layer_order, calls
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize(("arch", "dims"), ARCH_DIMS)
def test_every_matmul_runs_inside_its_own_named_module(arch: str, dims: int) -> None:
    model = _tiny_model(arch, dims)
    with _record_matmuls(model) as (layer_order, calls):
        model(torch.randn(2, IN_CHANNELS, *RESOLUTIONS[dims][0]))
    assert calls
    for function, module in calls:
        assert isinstance(module, MATMUL_MODULES), (function, type(module).__name__)
    matmul_layers = {n for n, m in model.named_modules() if isinstance(m, MATMUL_MODULES)}
    assert set(layer_order) == matmul_layers  # each runs, none is dead
    first, last = first_and_last_layers(model)
    assert (layer_order[0], layer_order[-1]) == (first, last)
    modules = dict(model.named_modules())
    assert isinstance(modules[first], nn.Conv1d | nn.Conv2d | nn.Linear)
    assert isinstance(modules[last], MATMUL_MODULES)


@pytest.mark.parametrize("dims", [1, 2])
def test_module_names_are_stable_per_layer(dims: int) -> None:
    names = {name for name, _ in _tiny_model("fno", dims).named_modules()}
    assert {"lifting", "blocks.1.spectral", "blocks.1.pointwise", "projection.output"} <= names
    names = {name for name, _ in _tiny_model("transformer", dims).named_modules()}
    expected = {
        "blocks.0.attention.key_value_product",
        "blocks.0.attention.query_product",
        "blocks.1.feed_forward.hidden",
    }
    assert expected <= names


@pytest.mark.parametrize(("arch", "dims"), [("fno", 1), ("unet", 2), ("transformer", 2)])
def test_default_config_builds_and_runs(arch: str, dims: int) -> None:
    torch.manual_seed(0)
    config = type(TINY_CONFIGS[arch])()
    model = build_model(config, spatial_dims=dims, in_channels=1, out_channels=1)
    with torch.no_grad():
        out = model(torch.randn(1, 1, *(64,) * dims))
    assert out.shape == (1, 1, *(64,) * dims)


def test_build_model_rejects_unknown_arch() -> None:
    with pytest.raises(SpecError, match=r"model arch must be one of .*'resnet'"):
        config = FNOConfig.model_construct(arch="resnet")  # skips validation, like a stale spec
        build_model(config, spatial_dims=1, in_channels=1, out_channels=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spatial_dims": 3, "in_channels": 1, "out_channels": 1}, r"spatial_dims .* got 3"),
        ({"spatial_dims": 1, "in_channels": 0, "out_channels": 1}, r"in_channels .* got 0"),
        ({"spatial_dims": 2, "in_channels": 1, "out_channels": -1}, r"out_channels .* got -1"),
    ],
)
@pytest.mark.parametrize("arch", list(MODELS))
def test_build_model_rejects_bad_io(arch: str, kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        build_model(TINY_CONFIGS[arch], **kwargs)


def test_model_rejects_another_archs_config() -> None:
    with pytest.raises(SpecError, match="FNO needs an FNOConfig"):
        MODELS["fno"].network_class()(UNetConfig(), spatial_dims=1, in_channels=1, out_channels=1)


def test_first_and_last_layers_of_a_foreign_model_is_an_error() -> None:
    with pytest.raises(SpecError, match="Sequential names no first_layer"):
        first_and_last_layers(nn.Sequential(nn.Linear(2, 2)))
