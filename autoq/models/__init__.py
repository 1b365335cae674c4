"""Neural PDE surrogates: FNO, UNet and Galerkin Transformer, for 1D and 2D grids.

Build one from its config with :func:`build_model`; every model maps
``(batch, in_channels, *spatial)`` to ``(batch, out_channels, *spatial)`` at any resolution.

Names are imported on first use (PEP 562), so the configs and the registry load without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoq._lazy import lazy_exports

if TYPE_CHECKING:
    from autoq.models.config import FNOConfig, TransformerConfig, UNetConfig
    from autoq.models.fno import FNO
    from autoq.models.layers import SPATIAL_DIMS, GalerkinAttention, MatMul, SpectralConv
    from autoq.models.registry import (
        MODELS,
        Architecture,
        ModelConfig,
        build_model,
        first_and_last_layers,
        parse_model_config,
    )
    from autoq.models.transformer import GalerkinTransformer
    from autoq.models.unet import UNet

__all__ = [
    "FNO",
    "MODELS",
    "SPATIAL_DIMS",
    "Architecture",
    "FNOConfig",
    "GalerkinAttention",
    "GalerkinTransformer",
    "MatMul",
    "ModelConfig",
    "SpectralConv",
    "TransformerConfig",
    "UNet",
    "UNetConfig",
    "build_model",
    "first_and_last_layers",
    "parse_model_config",
]

_SOURCES = {
    "FNO": "fno",
    "MODELS": "registry",
    "SPATIAL_DIMS": "layers",
    "Architecture": "registry",
    "FNOConfig": "config",
    "GalerkinAttention": "layers",
    "GalerkinTransformer": "transformer",
    "MatMul": "layers",
    "ModelConfig": "registry",
    "SpectralConv": "layers",
    "TransformerConfig": "config",
    "UNet": "unet",
    "UNetConfig": "config",
    "build_model": "registry",
    "first_and_last_layers": "registry",
    "parse_model_config": "registry",
}
"""Each public name → the submodule defining it."""


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
