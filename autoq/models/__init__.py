"""Neural PDE surrogates: FNO, UNet and Galerkin Transformer, for 1D and 2D grids.

Build one from its config with :func:`build_model`; every model maps
``(batch, in_channels, *spatial)`` to ``(batch, out_channels, *spatial)`` at any resolution.
"""

from autoq.models.config import (
    FNOConfig,
    ModelConfig,
    TransformerConfig,
    UNetConfig,
    parse_model_config,
)
from autoq.models.fno import FNO
from autoq.models.layers import SPATIAL_DIMS, GalerkinAttention, MatMul, SpectralConv
from autoq.models.registry import MODELS, build_model, first_and_last_layers
from autoq.models.transformer import GalerkinTransformer
from autoq.models.unet import UNet

__all__ = [
    "FNO",
    "MODELS",
    "SPATIAL_DIMS",
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
