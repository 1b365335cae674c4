"""UNet for PDE surrogates (Ronneberger et al. 2015, arXiv 1505.04597; as used for PDEs in
PDEBench, Takamoto et al. 2022, and PDEArena, Gupta and Brandstetter 2022), one class for 1D and
2D."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from autoq.errors import SpecError
from autoq.models.config import UNetConfig
from autoq.models.layers import check_io, conv, conv_transpose, crop, max_pool, pad_to_multiple


class ConvBlock(nn.Module):
    """Two rounds of 3-point (1D) or 3×3 (2D) convolution → GroupNorm → GELU.

    Args:
        spatial_dims: 1 or 2.
        in_channels: input channels.
        out_channels: output channels.
        norm_groups: GroupNorm groups, reduced to a divisor of ``out_channels``.

    Shapes:
        ``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``.
    """

    def __init__(
        self, *, spatial_dims: int, in_channels: int, out_channels: int, norm_groups: int
    ) -> None:
        super().__init__()
        groups = math.gcd(norm_groups, out_channels)
        self.conv1 = conv(spatial_dims, in_channels, out_channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(groups, out_channels)
        self.conv2 = conv(spatial_dims, out_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``."""
        x = self.activation(self.norm1(self.conv1(x)))
        return self.activation(self.norm2(self.conv2(x)))


class UNet(nn.Module):
    """Encoder–decoder with skip connections; any resolution by padding and cropping.

    Level ``i`` of the encoder has ``width · 2**i`` channels; after each of the ``levels`` encoder
    blocks, a 2× max-pool; a bottleneck block; then per level a 2× transposed-convolution
    up-sampling, concatenation with the encoder's output at that level and a decoder block; a 1×1
    convolution to the output channels. Inputs are padded (``config.pad_mode``) at the end of each
    axis to a multiple of ``2**levels`` and the output is cropped back.

    Module names: ``encoders.{i}.conv1|conv2``, ``bottleneck.conv1|conv2``, ``upsamplers.{i}``,
    ``decoders.{i}.conv1|conv2`` (decoder ``i`` runs at encoder level ``levels - 1 - i``),
    ``head``.

    Args:
        config: the architecture's sizes.
        spatial_dims: 1 or 2.
        in_channels: input channels.
        out_channels: output channels.

    Shapes:
        ``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``.
    """

    first_layer: ClassVar[str] = "encoders.0.conv1"
    last_layer: ClassVar[str] = "head"

    def __init__(
        self, config: UNetConfig, *, spatial_dims: int, in_channels: int, out_channels: int
    ) -> None:
        super().__init__()
        check_io(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels)
        if not isinstance(config, UNetConfig):
            raise SpecError(f"UNet needs a UNetConfig, got {type(config).__name__}")
        self.config = config
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        channels = [config.width * 2**i for i in range(config.levels + 1)]

        def block(c_in: int, c_out: int) -> ConvBlock:
            return ConvBlock(
                spatial_dims=spatial_dims,
                in_channels=c_in,
                out_channels=c_out,
                norm_groups=config.norm_groups,
            )

        self.encoders = nn.ModuleList(
            block(c_in, c_out)
            for c_in, c_out in zip([in_channels, *channels[:-2]], channels[:-1], strict=True)
        )
        self.pool = max_pool(spatial_dims, 2)
        self.bottleneck = block(channels[-2], channels[-1])
        decoder_levels = list(reversed(range(config.levels)))
        self.upsamplers = nn.ModuleList(
            conv_transpose(spatial_dims, channels[i + 1], channels[i], 2, stride=2)
            for i in decoder_levels
        )
        self.decoders = nn.ModuleList(block(2 * channels[i], channels[i]) for i in decoder_levels)
        self.head = conv(spatial_dims, channels[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``."""
        spatial = x.shape[2:]
        x = pad_to_multiple(x, 2**self.config.levels, self.config.pad_mode)
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for upsampler, decoder, skip in zip(
            self.upsamplers, self.decoders, reversed(skips), strict=True
        ):
            x = decoder(torch.cat([upsampler(x), skip], dim=1))
        return crop(self.head(x), spatial)
