"""Resolution operators: run a network at a fraction of the data's grid.

The paper (section 3.4) resizes with linear interpolation in 1D and bilinear in 2D, before the
network and after it, in training and evaluation alike, so gradients flow through both resizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from autoq.errors import SpecError

_MODES = {1: "linear", 2: "bilinear"}


def check_scale(scale: float) -> float:
    """Return ``scale`` if it lies in (0, 1], else raise a SpecError naming it."""
    if not (isinstance(scale, int | float) and 0.0 < scale <= 1.0):
        raise SpecError(f"scale factor must lie in (0, 1], got {scale!r}")
    return float(scale)


def network_shape(data_shape: tuple[int, ...], scale: float) -> tuple[int, ...]:
    """The grid a network runs on at ``scale``: every axis scaled and rounded, at least 2 points.

    Args:
        data_shape: the data's spatial shape, e.g. ``(256,)`` or ``(64, 64)``.
        scale: the spatial scale factor in (0, 1].
    """
    check_scale(scale)
    return tuple(max(2, math.floor(n * scale + 0.5)) for n in data_shape)


def resize(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(Bi)linear resize of ``(batch, channels, *space)`` to ``(batch, channels, *size)``.

    Uses ``align_corners=False`` (cell-centred grids, like the data files); the identity when the
    size is unchanged.
    """
    spatial_dims = x.ndim - 2
    if spatial_dims not in _MODES:
        raise SpecError(f"resize supports 1 or 2 spatial dimensions, got tensor of shape "
                        f"{tuple(x.shape)}")
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode=_MODES[spatial_dims], align_corners=False)
