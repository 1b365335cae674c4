"""PDE data: classical-solver generators, readers of the public layouts, windows, resampling.

Names are imported on first use (PEP 562): the families, their registry and the readers load with
numpy, scipy and h5py only; windows and resampling bring torch when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoq._lazy import lazy_exports

if TYPE_CHECKING:
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

_SOURCES = {
    "PDES": "registry",
    "PDEData": "_common",
    "PDEFamily": "_common",
    "RandomStartSampler": "dataset",
    "Split": "dataset",
    "TrajectoryWindows": "dataset",
    "check_scale": "resample",
    "check_window": "dataset",
    "detect_family": "registry",
    "get_family": "registry",
    "network_shape": "resample",
    "read_pde_file": "registry",
    "resize": "resample",
    "solver_options": "registry",
    "split_samples": "dataset",
}
"""Each public name → the submodule defining it."""


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
