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

from pydantic import Discriminator, Field, Tag, TypeAdapter, ValidationError

from autoq.errors import SpecError, describe_validation_error
from autoq.models.config import (
    ArchConfig,
    FactoryConfig,
    FNOConfig,
    TransformerConfig,
    UNetConfig,
)

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

ARCHITECTURE_TAG, FACTORY_TAG = "architecture-config", "factory-config"
"""The two kinds of ``model:`` block: an architecture of :data:`MODELS` (told apart by ``arch``)
or the user's own model (:class:`~autoq.models.config.FactoryConfig`, told by ``factory``)."""
UNION_TAGS = frozenset({*MODELS, ARCHITECTURE_TAG, FACTORY_TAG})
"""The tags pydantic puts into error paths of a model block (the user wrote none of them)."""


def _model_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return FACTORY_TAG if "factory" in value else ARCHITECTURE_TAG
    return FACTORY_TAG if isinstance(value, FactoryConfig) else ARCHITECTURE_TAG


if TYPE_CHECKING:
    # A union built at run time is opaque to mypy; to it, an architecture's config is the base.
    ModelConfig: TypeAlias = ArchConfig | FactoryConfig
else:
    _ArchitectureConfig = Annotated[
        functools.reduce(operator.or_, (a.config for a in MODELS.values())),
        Field(discriminator="arch"),
    ]
    ModelConfig = Annotated[
        Annotated[_ArchitectureConfig, Tag(ARCHITECTURE_TAG)]
        | Annotated[FactoryConfig, Tag(FACTORY_TAG)],
        Discriminator(_model_kind),
    ]
"""Any ``model:`` block: a config of :data:`MODELS` (the ``arch`` key picks the class) or a
:class:`~autoq.models.config.FactoryConfig` (it has a ``factory`` key)."""

_MODEL_CONFIG_ADAPTER: TypeAdapter[ModelConfig] = TypeAdapter(ModelConfig)


def parse_model_config(data: Mapping[str, Any]) -> ModelConfig:
    """Validate a ``model:`` mapping (e.g. from YAML) into its config class.

    Raises:
        SpecError: unknown ``arch``, unknown key or bad value; the message names the key.
    """
    try:
        return _MODEL_CONFIG_ADAPTER.validate_python(data)
    except ValidationError as e:
        described = describe_validation_error(e, prefix="model", union_tags=UNION_TAGS,
                                              tag_choices=MODELS)
        raise SpecError(f"invalid model config: {described}") from e


def build_model(
    config: ModelConfig, *, spatial_dims: int, in_channels: int, out_channels: int,
    grid: tuple[int, ...] | None = None,
) -> nn.Module:
    """Build the model a config describes, for data of the given dimension and channels.

    Args:
        config: a model config (:class:`~autoq.models.config.FNOConfig`, ...), or the user's
            own model (:class:`~autoq.models.config.FactoryConfig`).
        spatial_dims: 1 or 2, from the data.
        in_channels: channels of the input (e.g. input steps × fields, plus coefficients).
        out_channels: channels of the output (target steps × fields).
        grid: the spatial shape a user's model is checked on (one forward pass); default 32
            points per axis. autoq's own architectures need no check.

    Returns:
        A module mapping ``(batch, in_channels, *spatial)`` to ``(batch, out_channels, *spatial)``.

    Raises:
        SpecError: unknown architecture, unsupported ``spatial_dims`` or bad channel counts; a
            user's factory that cannot be imported, raises, or breaks the shape contract.
    """
    if isinstance(config, FactoryConfig):
        from autoq.models.factory import FactoryNetwork

        return FactoryNetwork(config, spatial_dims=spatial_dims, in_channels=in_channels,
                              out_channels=out_channels, grid=grid)
    arch = getattr(config, "arch", None)
    if arch not in MODELS:
        raise SpecError(f"model arch must be one of {sorted(MODELS)}, got {arch!r}")
    return MODELS[arch].network_class()(
        config, spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels
    )


def first_and_last_layers(model: nn.Module) -> tuple[str, str]:
    """``named_modules()`` paths of a model's first and last matrix-multiplication layers.

    The paper keeps these two in floating point by default. autoq's architectures name them as
    class attributes, a user's model (:class:`~autoq.models.factory.FactoryNetwork`) per instance.

    Raises:
        SpecError: the model names no first and last layer.
    """
    first = getattr(model, "first_layer", None)
    last = getattr(model, "last_layer", None)
    if not isinstance(first, str) or not isinstance(last, str):
        raise SpecError(
            f"{type(model).__name__} names no first_layer/last_layer; models: {sorted(MODELS)}"
        )
    return first, last
