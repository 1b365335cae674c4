"""PDE data: classical-solver generators, readers of the public layouts, windows, resampling."""

from autoq.data._common import PDEData, PDEFamily
from autoq.data.dataset import (
    RandomStartSampler,
    Split,
    TrajectoryWindows,
    check_window,
    split_samples,
)
from autoq.data.resample import check_scale, network_shape, resize

__all__ = [
    "PDEData",
    "PDEFamily",
    "RandomStartSampler",
    "Split",
    "TrajectoryWindows",
    "check_scale",
    "check_window",
    "network_shape",
    "resize",
    "split_samples",
]
