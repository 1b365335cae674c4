"""The model registry: architecture name → class, and the one way to build a model.

Adding an architecture is one new module plus one line in :data:`MODELS`; the new class joins
the contract tests in ``tests/models`` through the same dict.
"""

from __future__ import annotations

from torch import nn

from autoq.errors import SpecError
from autoq.models.config import ModelConfig
from autoq.models.fno import FNO
from autoq.models.transformer import GalerkinTransformer
from autoq.models.unet import UNet

MODELS: dict[str, type[nn.Module]] = {
    "fno": FNO,
    "unet": UNet,
    "transformer": GalerkinTransformer,
}
"""Every architecture by its config's ``arch``. Each class takes
``(config, *, spatial_dims, in_channels, out_channels)`` and names its first and last
matrix-multiplication layers in the class attributes ``first_layer`` and ``last_layer``."""


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
    return MODELS[arch](
        config, spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels
    )


def first_and_last_layers(model: nn.Module) -> tuple[str, str]:
    """``named_modules()`` paths of a model's first and last matrix-multiplication layers.

    The paper keeps these two in floating point by default.

    Raises:
        SpecError: the model is not one of :data:`MODELS` (it names no first and last layer).
    """
    try:
        return type(model).first_layer, type(model).last_layer
    except AttributeError as e:
        raise SpecError(
            f"{type(model).__name__} names no first_layer/last_layer; models: {sorted(MODELS)}"
        ) from e
