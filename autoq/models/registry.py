"""The model registry: every architecture by name, the config union it defines, and the one way
to build a model.

Adding an architecture is one new module (its config class in :mod:`autoq.models.config`, its
network anywhere) plus one line in :data:`MODELS`; specs accept it through :data:`ModelConfig`,
and it joins the contract tests in ``tests/models`` through the same dict. Importing this module
does not import torch: a network's module is imported when a model is built.
"""

from __future__ import annotations

import functools
import importlib
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import Field, TypeAdapter, ValidationError

from autoq.errors import SpecError, describe_validation_error
from autoq.models.config import ArchConfig, FNOConfig, TransformerConfig, UNetConfig

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Architecture:
    """One architecture: its config class and where its network class lives.

    Attributes:
        config: the pydantic config class; its ``arch`` literal is the registry key.
        network: ``"module:Class"`` import path of the ``nn.Module``, imported on first build.
            The class takes ``(config, *, spatial_dims, in_channels, out_channels)`` and names its
            first and last matrix-multiplication layers in the class attributes ``first_layer``
            and ``last_layer``.
    """

    config: type[ArchConfig]
    network: str

    def network_class(self) -> type[nn.Module]:
        """The network class, imported from :attr:`network`."""
        module, _, name = self.network.partition(":")
        network: type[nn.Module] = getattr(importlib.import_module(module), name)
        return network


MODELS: dict[str, Architecture] = {
    "fno": Architecture(FNOConfig, "autoq.models.fno:FNO"),
    "unet": Architecture(UNetConfig, "autoq.models.unet:UNet"),
    "transformer": Architecture(TransformerConfig, "autoq.models.transformer:GalerkinTransformer"),
}
"""Every architecture by its config's ``arch``: the one list of them."""

if TYPE_CHECKING:
    # A union built at run time is opaque to mypy; to it, any model config is the common base.
    ModelConfig: TypeAlias = ArchConfig
else:
    ModelConfig = Annotated[
        functools.reduce(operator.or_, (a.config for a in MODELS.values())),
        Field(discriminator="arch"),
    ]
"""Any model config of :data:`MODELS`; the ``arch`` key picks the class."""

_MODEL_CONFIG_ADAPTER: TypeAdapter[ModelConfig] = TypeAdapter(ModelConfig)


def parse_model_config(data: Mapping[str, Any]) -> ModelConfig:
    """Validate a ``model:`` mapping (e.g. from YAML) into its config class.

    Raises:
        SpecError: unknown ``arch``, unknown key or bad value; the message names the key.
    """
    try:
        return _MODEL_CONFIG_ADAPTER.validate_python(data)
    except ValidationError as e:
        described = describe_validation_error(e, prefix="model", union_tags=MODELS)
        raise SpecError(f"invalid model config: {described}") from e


def build_model(
    config: ModelConfig, *, spatial_dims: int, in_channels: int, out_channels: int
) -> nn.Module:
    """Build the model a config describes, for data of the given dimension and channels.

    Args:
        config: a model config (:class:`~autoq.models.config.FNOConfig`, ...).
        spatial_dims: 1 or 2, from the data.
        in_channels: channels of the input (e.g. input steps × fields, plus coefficients).
        out_channels: channels of the output (target steps × fields).

    Returns:
        A module mapping ``(batch, in_channels, *spatial)`` to ``(batch, out_channels, *spatial)``.

    Raises:
        SpecError: unknown architecture, unsupported ``spatial_dims`` or bad channel counts.
    """
    arch = getattr(config, "arch", None)
    if arch not in MODELS:
        raise SpecError(f"model arch must be one of {sorted(MODELS)}, got {arch!r}")
    return MODELS[arch].network_class()(
        config, spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels
    )


def first_and_last_layers(model: nn.Module) -> tuple[str, str]:
    """``named_modules()`` paths of a model's first and last matrix-multiplication layers.

    The paper keeps these two in floating point by default.

    Raises:
        SpecError: the model is not one of :data:`MODELS` (it names no first and last layer).
    """
    first = getattr(type(model), "first_layer", None)
    last = getattr(type(model), "last_layer", None)
    if not isinstance(first, str) or not isinstance(last, str):
        raise SpecError(
            f"{type(model).__name__} names no first_layer/last_layer; models: {sorted(MODELS)}"
        )
    return first, last
