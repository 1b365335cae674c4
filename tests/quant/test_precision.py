"""The trial configuration: layer groups of known models, names checked, the JSON record's
``[weight, activation]`` order."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter
from torch import nn

from autoq.errors import QuantizationError
from autoq.models import ModelConfig, build_model
from autoq.precision import TrialConfig, expand_groups, layer_groups


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
