"""AIMET's log output, turned down for interactive use."""

from __future__ import annotations

import logging

from aimet_torch.common.utils import AimetLogger


def quiet_aimet_logs(level: int = logging.ERROR) -> None:
    """Only AIMET messages at ``level`` or above: its per-sim INFO and graph WARNING lines
    (e.g. "Unable to isolate model outputs" for our multi-output spectral layers) would bury a
    search's progress bar."""
    for area in AimetLogger.LogAreas:
        logging.getLogger(area.value).setLevel(level)
