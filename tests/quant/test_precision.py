"""The trial configuration: layer groups of known models, names checked, the JSON record's
``[weight, activation]`` order."""

from __future__ import annotations

import inspect
import os
import warnings

import pytest
import torch
from pydantic import TypeAdapter
from torch import nn

from autoq.errors import QuantizationError
from autoq.models import ModelConfig, build_model
from autoq.precision import (
    TrialConfig,
    UnquantizedWeightWarning,
    expand_groups,
    layer_groups,
    unquantized_weight_modules,
    warn_unquantized,
)


def _model(**config: object) -> nn.Module:
    return build_model(TypeAdapter(ModelConfig).validate_python(config), spatial_dims=1,
                       in_channels=2, out_channels=1)


def test_per_block_groups_of_a_unet_are_its_blocks_without_the_first_and_last_layer() -> None:
    unet = _model(arch="unet", width=8, levels=2, norm_groups=4)
    assert layer_groups(unet, "per_block") == {
        "encoders.0": ["encoders.0.conv2"],
        "encoders.1": ["encoders.1.conv1", "encoders.1.conv2"],
        "bottleneck": ["bottleneck.conv1", "bottleneck.conv2"],
        "upsamplers.0": ["upsamplers.0"],
        "upsamplers.1": ["upsamplers.1"],
        "decoders.0": ["decoders.0.conv1", "decoders.0.conv2"],
        "decoders.1": ["decoders.1.conv1", "decoders.1.conv2"],
    }


def test_per_block_groups_of_an_fno_keep_each_block_apart() -> None:
    fno = _model(arch="fno", width=12, modes=6, layers=2, projection_width=24)
    assert layer_groups(fno, "per_block") == {
        "blocks.0": ["blocks.0.spectral", "blocks.0.pointwise"],
        "blocks.1": ["blocks.1.spectral", "blocks.1.pointwise"],
        "projection": ["projection.hidden"],
    }
    assert layer_groups(fno, "uniform") == {"all": [
        "blocks.0.spectral", "blocks.0.pointwise", "blocks.1.spectral", "blocks.1.pointwise",
        "projection.hidden"]}
    assert list(layer_groups(fno, "per_layer", first_last_float=False)) == [
        "lifting", "blocks.0.spectral", "blocks.0.pointwise", "blocks.1.spectral",
        "blocks.1.pointwise", "projection.hidden", "projection.output"]


def test_a_misspelled_layer_is_refused_by_its_name() -> None:
    fno = _model(arch="fno", width=12, modes=6, layers=2, projection_width=24)
    with pytest.raises(QuantizationError, match=r"'blocks\.0\.pointwse'"):
        TrialConfig.for_model(fno, scale=1.0, bits={"blocks.0.pointwse": (4, 8)})
    with pytest.raises(QuantizationError, match=r"'blocks\.1'"):
        expand_groups(layer_groups(fno, "per_block"), {"blocks.0": (4, 8), "projection": None})


def test_the_json_record_keeps_weight_bits_first() -> None:
    fno = _model(arch="fno", width=12, modes=6, layers=2, projection_width=24)
    config = TrialConfig.for_model(fno, scale=0.5, bits={"blocks.0.spectral": (4, 8),
                                                        "blocks.1.pointwise": (16, 2)})
    record = config.to_json()
    assert record["bits"]["blocks.0.spectral"] == [4, 8]
    assert record["bits"]["blocks.1.pointwise"] == [16, 2]
    assert record["bits"]["lifting"] == "float"
    assert TrialConfig.from_json(record) == config


def test_the_json_record_round_trips_rank_and_scheme() -> None:
    fno = _model(arch="fno", width=12, modes=6, layers=2, projection_width=24)
    config = TrialConfig.for_model(fno, scale=0.5, bits={"lifting": (8, 8)}, rank=3,
                                   scheme="integer")
    record = config.to_json()
    assert (record["rank"], record["scheme"]) == (3, "integer")
    assert TrialConfig.from_json(record) == config
    plain = TrialConfig.from_json({"scale": 1.0, "bits": {"lifting": "float"}})
    assert (plain.rank, plain.scheme) == (None, "paper")


def test_the_json_record_round_trips_transforms_and_refuses_bad_ones() -> None:
    fno = _model(arch="fno", width=12, modes=6, layers=2, projection_width=24)
    config = TrialConfig.for_model(fno, scale=0.5, bits={"blocks.0.spectral": (4, 8),
                                                        "blocks.1.spectral": (2, 3)},
                                   transforms={"blocks.0.spectral": "dft",
                                               "blocks.1.spectral": "fft"})
    record = config.to_json()
    assert record["transforms"] == {"blocks.0.spectral": "dft", "blocks.1.spectral": "fft"}
    assert config.dft_layers == ["blocks.0.spectral"]
    assert TrialConfig.from_json(record) == config
    assert "transforms" not in TrialConfig.for_model(fno, scale=0.5, bits={}).to_json()
    assert TrialConfig.from_json({"scale": 1.0, "bits": {}}).transforms == {}
    with pytest.raises(QuantizationError, match=r"'blocks\.0\.pointwise', which is not one of "
                                                r"FNO's spectral convolutions"):
        TrialConfig.for_model(fno, scale=1.0, bits={"blocks.0.pointwise": (4, 8)},
                              transforms={"blocks.0.pointwise": "dft"})
    with pytest.raises(QuantizationError, match=r"transform of layer 'blocks\.0\.spectral' must "
                                                r"be one of \['fft', 'dft'\], got 'fht'"):
        TrialConfig(scale=1.0, bits={"blocks.0.spectral": (4, 8)},
                    transforms={"blocks.0.spectral": "fht"})  # type: ignore[dict-item]
    with pytest.raises(QuantizationError, match=r"'blocks\.1\.spectral': the dft transform runs "
                                                r"at the layer's bits, and the layer is float"):
        TrialConfig.for_model(fno, scale=1.0, bits={"blocks.0.spectral": (4, 8)},
                              transforms={"blocks.1.spectral": "dft"})


def test_uniform_keeps_the_first_and_last_layer_float_and_none_bits_mean_float() -> None:
    fno = _model(arch="fno", width=12, modes=6, layers=2, projection_width=24)
    config = TrialConfig.uniform(fno, scale=1.0, weight_bits=4, act_bits=8)
    assert config.bits["lifting"] is None and config.bits["projection.output"] is None
    assert config.bits["blocks.0.spectral"] == (4, 8)
    every = TrialConfig.uniform(fno, scale=1.0, weight_bits=4, act_bits=8,
                                first_last_float=False)
    assert set(every.quantized_layers) == set(config.bits)
    for weight_bits, act_bits in ((4, None), (None, 8), (None, None)):
        floats = TrialConfig.uniform(fno, scale=1.0, weight_bits=weight_bits, act_bits=act_bits)
        assert floats.quantized_layers == {}


class _Pair(nn.Module):
    """A (2, 2) weight matrix: the smallest matrix a product runs over."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2, 2))
        self.gate = nn.Parameter(torch.ones(1, 3, 1))  # a broadcast scale, not a matrix


class _Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.ones(1, 3, 1))
        self.bias = nn.Parameter(torch.ones(3))


class _Holder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.own = nn.Parameter(torch.ones(3, 2))
        self.pair = _Pair()
        self.gated = _Gated()


def _warn_for(model: nn.Module, names: list[str] | None = None) -> list[str]:
    return warn_unquantized(model, names)


def _assert_at(warning: warnings.WarningMessage, line: int) -> None:
    """The warning points at ``line`` of this file; under mutmut (``make mutation``) a wrapper
    frame of its own stands between a caller and autoq's functions, so only: not at autoq's."""
    if "MUTANT_UNDER_TEST" in os.environ:
        assert not warning.filename.endswith("precision.py")
    else:
        assert (warning.filename, warning.lineno) == (__file__, line)


def test_unquantized_weights_are_named_in_one_warning_at_the_callers_line() -> None:
    model = _Holder()
    assert unquantized_weight_modules(model) == ["", "pair"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        assert _warn_for(model) == ["", "pair"]
    assert len(caught) == 1 and caught[0].category is UnquantizedWeightWarning
    _assert_at(caught[0], line)
    here = _Holder.__module__
    assert str(caught[0].message) == (
        f"_Holder has 2 module(s) that multiply by learned weights autoq does not quantize: "
        f"'(root)' ({here}._Holder), 'pair' ({here}._Pair). They stay float in every trial, and "
        f"their products are priced as float work (16/16 bits) in the cost breakdown, under "
        f"their paths.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        warn_unquantized(model, ["pair"], stacklevel=1)
    _assert_at(caught[0], line)
    assert "has 1 module(s)" in str(caught[0].message)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _warn_for(model, []) == []  # names given: not looked up again
        assert _warn_for(_Gated()) == []
    assert caught == []


def test_the_json_record_round_trips_resample_and_weight_granularity() -> None:
    fno = _model(arch="fno", width=12, modes=6, layers=2, projection_width=24)
    config = TrialConfig.for_model(fno, scale=0.5, bits={"lifting": (8, 8)}, resample="fourier",
                                   weight_granularity="per_channel")
    record = config.to_json()
    assert (record["resample"], record["weight_granularity"]) == ("fourier", "per_channel")
    assert TrialConfig.from_json(record) == config
    # The defaults are left out of the record, so records of earlier searches are unchanged.
    plain = TrialConfig.for_model(fno, scale=0.5, bits={"lifting": (8, 8)})
    assert "resample" not in plain.to_json() and "weight_granularity" not in plain.to_json()
    assert (plain.resample, plain.weight_granularity) == ("linear", "per_tensor")
    with pytest.raises(QuantizationError, match=r"resample must be one of \['linear', 'cubic', "
                                                r"'fourier'\], got 'nearest'"):
        TrialConfig(scale=1.0, bits={}, resample="nearest")  # type: ignore[arg-type]
    with pytest.raises(QuantizationError, match=r"weight_granularity must be one of "
                                                r"\['per_tensor', 'per_channel'\], got 'per_row'"):
        TrialConfig(scale=1.0, bits={}, weight_granularity="per_row")  # type: ignore[arg-type]
