"""The cost model on every architecture, its cache, and a clean profiler afterwards."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autoq.cost._profile as cost_profile
from autoq.cost import FFT_SUFFIX, IFFT_SUFFIX, RESIZE_IN, RESIZE_OUT, bitops, clear_cache
from autoq.errors import QuantizationError, SpecError
from autoq.models import (
    FNOConfig,
    SpectralConv,
    TransformerConfig,
    UNetConfig,
    build_model,
)
from autoq.precision import TrialConfig, quantizable_layers

CONFIGS = {
    "fno": FNOConfig(width=8, modes=4, layers=2, projection_width=16),
    "unet": UNetConfig(width=4, levels=2, norm_groups=2),
    "transformer": TransformerConfig(width=8, heads=2, layers=2, patch=4, feed_forward_width=16),
}


@pytest.mark.parametrize("spatial_dims", [1, 2])
@pytest.mark.parametrize("arch", list(CONFIGS))
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_every_quantizable_layer_is_priced_and_the_total_is_the_sum(
    arch: str, spatial_dims: int, scale: float
) -> None:
    model = build_model(CONFIGS[arch], spatial_dims=spatial_dims, in_channels=3, out_channels=2)
    layers = quantizable_layers(model)
    config = TrialConfig.for_model(model, scale=scale, bits={name: (4, 8) for name in layers[1:]})
    report = bitops(model, config, data_shape=(32,) * spatial_dims, in_channels=3)
    for name in layers:
        assert report.layers[name].multiplications > 0
        assert report.layers[name].quantized == (name != layers[0])
    for name, module in model.named_modules():
        if isinstance(module, SpectralConv):
            assert report.layers[name + FFT_SUFFIX].multiplications > 0
            assert report.layers[name + IFFT_SUFFIX].multiplications > 0
    assert (RESIZE_IN in report.layers) == (RESIZE_OUT in report.layers) == (scale < 1.0)
    assert report.total == sum(layer.cost for layer in report.layers.values())
    assert report.flops == sum(
        layer.multiplications + layer.additions for layer in report.layers.values()
    )


def test_pricing_many_configs_profiles_once_per_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    calls = []
    profile = cost_profile._profile
    monkeypatch.setattr(
        cost_profile,
        "_profile",
        lambda *args, **kwargs: calls.append(1) or profile(*args, **kwargs),
    )
    config = CONFIGS["fno"]
    model = build_model(config, spatial_dims=1, in_channels=3, out_channels=1)
    layers = quantizable_layers(model)
    totals = set()
    for i in range(50):
        bits = {name: (2 + (i + j) % 7, 4 + i % 5) for j, name in enumerate(layers)}
        config_i = TrialConfig.for_model(model, scale=0.5, bits=bits)
        totals.add(bitops(model, config_i, data_shape=(64,), in_channels=3).total)
    assert len(calls) == 1 and len(totals) > 1
    rebuilt = build_model(config, spatial_dims=1, in_channels=3, out_channels=1)
    bitops(rebuilt, TrialConfig.uniform(rebuilt, scale=0.5, weight_bits=8, act_bits=8),
           data_shape=(64,), in_channels=3)  # fmt: skip
    assert len(calls) == 1
    bitops(
        model, TrialConfig.for_model(model, scale=1.0, bits={}), data_shape=(64,), in_channels=3
    )
    assert len(calls) == 2


def test_profiling_leaves_torch_and_the_model_as_they_were() -> None:
    clear_cache()
    patched = {
        "F.linear": lambda: F.linear,
        "F.conv1d": lambda: F.conv1d,
        "torch.matmul": lambda: torch.matmul,
        "torch.einsum": lambda: torch.einsum,
        "Tensor.__matmul__": lambda: torch.Tensor.__matmul__,
        "torch.fft.rfft": lambda: torch.fft.rfft,
    }
    before = {name: get() for name, get in patched.items()}
    model = build_model(CONFIGS["transformer"], spatial_dims=1, in_channels=3, out_channels=1)
    model.train()
    model.blocks[0].eval()
    fno = build_model(CONFIGS["fno"], spatial_dims=1, in_channels=3, out_channels=1)
    for network in (model, fno):
        bitops(network, TrialConfig.for_model(network, scale=0.5, bits={}),
               data_shape=(32,), in_channels=3)  # fmt: skip
    assert {name: get() for name, get in patched.items()} == before
    for module in [*model.modules(), *fno.modules()]:
        assert not hasattr(module, "__flops__")
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert model.training and not model.blocks[0].training and model.blocks[1].training


def test_a_layer_the_network_does_not_have_is_an_error() -> None:
    model = build_model(CONFIGS["fno"], spatial_dims=1, in_channels=3, out_channels=1)
    config = TrialConfig(scale=1.0, bits={"blocks.9.spectral": (8, 8)})
    with pytest.raises(QuantizationError, match=r"blocks\.9\.spectral"):
        bitops(model, config, data_shape=(32,), in_channels=3)


def test_wrong_input_channels_or_shape_is_a_spec_error() -> None:
    model = nn.Sequential(nn.Conv1d(3, 4, 1))
    config = TrialConfig.for_model(model, scale=1.0, bits={})
    with pytest.raises(SpecError, match="in_channels=5"):
        bitops(model, config, data_shape=(32,), in_channels=5)
    with pytest.raises(SpecError, match="data_shape"):
        bitops(model, config, data_shape=(0,), in_channels=3)
