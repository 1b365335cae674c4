"""AIMET's log output and warnings, turned down for interactive use."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from aimet_torch.common.utils import AimetLogger


def quiet_aimet_logs(level: int = logging.ERROR) -> None:
    """Only AIMET messages at ``level`` or above: its per-sim INFO and graph WARNING lines
    (e.g. "Unable to isolate model outputs" for our multi-output spectral layers) would bury a
    search's progress bar."""
    for area in AimetLogger.LogAreas:
        logging.getLogger(area.value).setLevel(level)


@contextmanager
def known_aimet_warnings() -> Iterator[None]:
    """Silence the warnings AIMET 2.42 raises about its own code, and only those, while AIMET
    builds a simulation, computes encodings or runs AMP:

    - ``torch.tensor(tensor)`` copies in its bias-overflow check (torch's UserWarning; the
      copy is correct);
    - ``float()`` of a trainable range while it writes encodings out (torch's UserWarning
      about scalars of tensors that require grad; the values are read, not differentiated);
    - its internal calls of APIs it deprecated itself (``QuantizationSimModel.quant_wrappers``,
      the ``aimet_torch.v2`` import path; ``_allow_overwrite``, read on every forward pass, is
      filtered where :mod:`autoq.quant` imports AIMET).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="To copy construct from a tensor",
                                category=UserWarning, module=r"aimet_torch\.")
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True",
                                category=UserWarning, module=r"aimet_torch\.")
        for deprecated in (r".*quant_wrappers is deprecated", r"All modules in `aimet_torch.v2`"):
            warnings.filterwarnings("ignore", message=deprecated, category=DeprecationWarning,
                                    module=r"aimet_torch\.")
        yield
