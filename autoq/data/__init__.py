"""PDE data: classical-solver generators, readers of the public layouts, windows, resampling.

Names are imported on first use (PEP 562): the families, the layouts, their registries and the
readers load with numpy, scipy and h5py only; windows and resampling bring torch when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoq._lazy import lazy_exports

if TYPE_CHECKING:
    from autoq.data._common import Layout, PDEData, PDEFamily, Selection
    from autoq.data.dataset import (
        RandomStartSampler,
        Split,
        TrajectoryWindows,
        check_window,
        split_samples,
    )
    from autoq.data.generic import from_arrays
    from autoq.data.registry import (
        LAYOUTS,
        PDES,
        detect_family,
        family_layout,
        get_family,
        get_layout,
        read_data,
        read_pde_file,
        solver_options,
    )
    from autoq.data.resample import check_scale, network_shape, resize

__all__ = [
    "LAYOUTS",
    "PDES",
    "Layout",
    "PDEData",
    "PDEFamily",
    "RandomStartSampler",
    "Selection",
    "Split",
    "TrajectoryWindows",
    "check_scale",
    "check_window",
    "detect_family",
    "family_layout",
    "from_arrays",
    "get_family",
    "get_layout",
    "network_shape",
    "read_data",
    "read_pde_file",
    "resize",
    "solver_options",
    "split_samples",
]

_SOURCES = {
    "LAYOUTS": "registry",
    "PDES": "registry",
    "Layout": "_common",
    "PDEData": "_common",
    "PDEFamily": "_common",
    "RandomStartSampler": "dataset",
    "Selection": "_common",
    "Split": "dataset",
    "TrajectoryWindows": "dataset",
    "check_scale": "resample",
    "check_window": "dataset",
    "detect_family": "registry",
    "family_layout": "registry",
    "from_arrays": "generic",
    "get_family": "registry",
    "get_layout": "registry",
    "network_shape": "resample",
    "read_data": "registry",
    "read_pde_file": "registry",
    "resize": "resample",
    "solver_options": "registry",
    "split_samples": "dataset",
}
"""Each public name → the submodule defining it."""


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
