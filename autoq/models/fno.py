"""Fourier neural operator (Li et al. 2021, "Fourier Neural Operator for Parametric Partial
Differential Equations", arXiv 2010.08895), one class for 1D and 2D."""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

import torch
from torch import nn

from autoq.errors import SpecError
from autoq.models.config import FNOConfig
from autoq.models.layers import SpectralConv, append_coordinates, check_io, conv


class FourierBlock(nn.Module):
    """One Fourier layer: ``σ(spectral(x) + pointwise(x))``.

    Args:
        spatial_dims: 1 or 2.
        width: channels in and out.
        modes: Fourier modes kept per axis.
        activation: apply GELU (Li et al. leave it out after the last layer).

    Shapes:
        ``(batch, width, *spatial) → (batch, width, *spatial)``.
    """

    def __init__(self, *, spatial_dims: int, width: int, modes: int, activation: bool) -> None:
        super().__init__()
        self.spectral = SpectralConv(width, width, (modes,) * spatial_dims)
        self.pointwise = conv(spatial_dims, width, width, 1)
        self.activation = nn.GELU() if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, width, *spatial) → (batch, width, *spatial)``."""
        return self.activation(self.spectral(x) + self.pointwise(x))


class FNO(nn.Module):
    """Fourier neural operator: lifting → Fourier layers → projection, at any resolution.

    The lifting is a 1×1 convolution of the input channels (plus the coordinate channels when
    ``config.coordinates``) to ``width``; each of the ``layers`` Fourier layers adds a spectral
    convolution on the lowest ``modes`` modes to a 1×1 convolution; the projection is
    1×1 conv → GELU → 1×1 conv. On grids with fewer than ``2 * modes`` points per axis the spectral
    convolutions use the modes the grid has.

    Module names: ``lifting``, ``blocks.{i}.spectral``, ``blocks.{i}.pointwise``,
    ``projection.hidden``, ``projection.output``.

    Args:
        config: the architecture's sizes.
        spatial_dims: 1 or 2.
        in_channels: input channels (e.g. input steps × fields, plus coefficient channels).
        out_channels: output channels (target steps × fields).

    Shapes:
        ``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``.
    """

    first_layer: ClassVar[str] = "lifting"
    last_layer: ClassVar[str] = "projection.output"

    def __init__(
        self, config: FNOConfig, *, spatial_dims: int, in_channels: int, out_channels: int
    ) -> None:
        super().__init__()
        check_io(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels)
        if not isinstance(config, FNOConfig):
            raise SpecError(f"FNO needs an FNOConfig, got {type(config).__name__}")
        self.config = config
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        lifted = in_channels + (spatial_dims if config.coordinates else 0)
        self.lifting = conv(spatial_dims, lifted, config.width, 1)
        self.blocks = nn.ModuleList(
            FourierBlock(
                spatial_dims=spatial_dims,
                width=config.width,
                modes=config.modes,
                activation=i < config.layers - 1,
            )
            for i in range(config.layers)
        )
        self.projection = nn.Sequential(
            OrderedDict(
                hidden=conv(spatial_dims, config.width, config.projection_width, 1),
                activation=nn.GELU(),
                output=conv(spatial_dims, config.projection_width, out_channels, 1),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *spatial) → (batch, out_channels, *spatial)``."""
        if self.config.coordinates:
            x = append_coordinates(x)
        x = self.lifting(x)
        for block in self.blocks:
            x = block(x)
        return self.projection(x)
