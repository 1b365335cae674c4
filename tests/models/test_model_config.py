"""Model configs: the discriminated union on ``arch`` and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from autoq.errors import SpecError
from autoq.models import (
    MODELS,
    FNOConfig,
    TransformerConfig,
    UNetConfig,
    parse_model_config,
)


@pytest.mark.parametrize("config", [FNOConfig(), UNetConfig(), TransformerConfig()])
def test_config_round_trips_through_its_mapping(config: Any) -> None:
    assert parse_model_config(config.model_dump()) == config
    assert config.arch in MODELS


def test_config_picks_the_class_by_arch() -> None:
    config = parse_model_config({"arch": "fno", "width": 16, "modes": 8})
    assert isinstance(config, FNOConfig)
    assert (config.width, config.modes, config.layers) == (16, 8, 4)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"arch": "resnet"}, r"model\.arch: .*'resnet'"),
        ({"width": 32}, r"model\.arch"),
        ({"arch": "fno", "width": 0}, r"model\.width: .*greater than 0"),
        ({"arch": "unet", "levels": 0}, r"model\.levels"),
        ({"arch": "transformer", "patch": -4}, r"model\.patch"),
        ({"arch": "fno", "widht": 32}, r"model\.widht: Extra inputs"),
        ({"arch": "unet", "pad_mode": "circular"}, r"model\.pad_mode"),
        ({"arch": "transformer", "width": 30, "heads": 4}, r"heads=4 must divide width=30"),
    ],
)
def test_config_error_names_the_key(data: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_model_config(data)
