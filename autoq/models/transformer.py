"""Galerkin Transformer (Cao 2021, "Choose a Transformer: Fourier or Galerkin",
arXiv 2105.14995) on patches of the grid, one class for 1D and 2D."""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

import torch
from torch import nn

from autoq.errors import SpecError
from autoq.models.config import TransformerConfig
from autoq.models.layers import (
    GalerkinAttention,
    append_coordinates,
    check_io,
    conv,
    conv_transpose,
    crop,
    pad_to_multiple,
)


class GalerkinBlock(nn.Module):
    """Galerkin attention and a feed-forward MLP, each with a residual connection.

    As in Cao's Galerkin Transformer, the normalisation sits inside the attention (on keys and
    values), not on the residual path.

    Module names: ``attention.*`` (see :class:`GalerkinAttention`), ``feed_forward.hidden``,
    ``feed_forward.output``.

    Args:
        width: token channels.
        heads: attention heads.
        feed_forward_width: hidden channels of the MLP.

    Shapes:
        ``(batch, tokens, width) → (batch, tokens, width)``.
    """

    def __init__(self, *, width: int, heads: int, feed_forward_width: int) -> None:
        super().__init__()
        self.attention = GalerkinAttention(width, heads)
        self.feed_forward = nn.Sequential(
            OrderedDict(
                hidden=nn.Linear(width, feed_forward_width),
                activation=nn.GELU(),
                output=nn.Linear(feed_forward_width, width),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, tokens, width) → (batch, tokens, width)``."""
        x = x + self.attention(x)
        return x + self.feed_forward(x)


class GalerkinTransformer(nn.Module):
    """Patch embedding → Galerkin attention blocks → un-patching, at any resolution.

    The input, with its cell-centre coordinates appended as channels (the position encoding), is
    padded (``config.pad_mode``) at the end of each axis to a multiple of ``patch`` and cut into
    ``patch``-point (1D) or ``patch × patch`` (2D) patches by a convolution with kernel = stride =
    ``patch``; each patch is a token. After the blocks, a transposed convolution with the same
    kernel and stride turns every token back into its patch's points, and the output is cropped.

    Module names: ``patch_embedding``, ``blocks.{i}.attention.query|key|value|output``,
    ``blocks.{i}.attention.key_value_product``, ``blocks.{i}.attention.query_product``,
    ``blocks.{i}.feed_forward.hidden|output``, ``unpatch``.

    Args:
        config: the architecture's sizes.
        spatial_dims: 1 or 2.
        in_channels: input channels.
        out_channels: output channels.

    Shapes:
        ``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``.
    """

    first_layer: ClassVar[str] = "patch_embedding"
    last_layer: ClassVar[str] = "unpatch"

    def __init__(
        self,
        config: TransformerConfig,
        *,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
    ) -> None:
        super().__init__()
        check_io(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels)
        if not isinstance(config, TransformerConfig):
            raise SpecError(
                f"GalerkinTransformer needs a TransformerConfig, got {type(config).__name__}"
            )
        self.config = config
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        patch = config.patch
        self.patch_embedding = conv(
            spatial_dims, in_channels + spatial_dims, config.width, patch, stride=patch
        )
        self.blocks = nn.ModuleList(
            GalerkinBlock(
                width=config.width,
                heads=config.heads,
                feed_forward_width=config.feed_forward_width,
            )
            for _ in range(config.layers)
        )
        self.unpatch = conv_transpose(
            spatial_dims, config.width, out_channels, patch, stride=patch
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``."""
        spatial = x.shape[2:]
        x = pad_to_multiple(append_coordinates(x), self.config.patch, self.config.pad_mode)
        patches = self.patch_embedding(x)
        batch, width, *patch_grid = patches.shape
        tokens = patches.flatten(2).transpose(1, 2)
        for block in self.blocks:
            tokens = block(tokens)
        patches = tokens.transpose(1, 2).reshape(batch, width, *patch_grid)
        return crop(self.unpatch(patches), spatial)
