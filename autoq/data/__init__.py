"""PDE data: classical-solver generators, readers of the public layouts, windows, resampling."""

from autoq.data._common import PDEData, PDEFamily
from autoq.data.dataset import (
    RandomStartSampler,
    Split,
    TrajectoryWindows,
    check_window,
    split_samples,
)
from autoq.data.registry import (
    PDES,
    detect_family,
    get_family,
    read_pde_file,
    solver_options,
)
from autoq.data.resample import check_scale, network_shape, resize

__all__ = [
    "PDES",
    "PDEData",
    "PDEFamily",
    "RandomStartSampler",
    "Split",
    "TrajectoryWindows",
    "check_scale",
    "check_window",
    "detect_family",
    "get_family",
    "network_shape",
    "read_pde_file",
    "resize",
    "solver_options",
    "split_samples",
]
