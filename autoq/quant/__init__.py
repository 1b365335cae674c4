"""AIMET integration: the paper's quantization scheme on autoq's networks, calibration, export.

Build a simulation of a trained float network with :func:`build_sim` (per-layer bits from a
:class:`~autoq.precision.TrialConfig`), set its ranges with :func:`calibrate`, fine-tune
``qnet.model`` like any module (QAT: the ranges are trainable), and keep the result with
:func:`export_artifact`; :func:`load_artifact` rebuilds it. AIMET is imported only in this package.

neuraloperator's spectral convolution (the ``neuralop`` extra) has its quantized definition in
:mod:`autoq.quant.neuralop`, which :func:`build_sim` imports when neuraloperator is imported.
"""

import warnings

from autoq.device import pin_deepspeed_accelerator

# AIMET imports DeepSpeed, which probes for an accelerator (and warns) at import time: choose it
# before the first AIMET import below.
pin_deepspeed_accelerator()

# Every forward pass of an AIMET 2.42 quantized module reads ``QuantizerBase._allow_overwrite``,
# which AIMET itself deprecated: a warning about AIMET's code, not ours, once per layer and step.
warnings.filterwarnings("ignore", message=r".*_allow_overwrite is deprecated",
                        category=DeprecationWarning, module=r"aimet_torch\.nn\.base")

from autoq.models.layers import dft_matrices  # noqa: E402
from autoq.quant.amp import AMPPoint, AMPResult, amp_front  # noqa: E402
from autoq.quant.artifact import (  # noqa: E402
    EXPORT_BITS,
    export_artifact,
    load_artifact,
    load_quantized,
)
from autoq.quant.logs import quiet_aimet_logs  # noqa: E402
from autoq.quant.modules import QuantizedMatMul, QuantizedSpectralConv  # noqa: E402
from autoq.quant.sim import (  # noqa: E402
    CALIBRATIONS,
    Calibration,
    QuantizedNetwork,
    build_sim,
    calibrate,
)

__all__ = [
    "CALIBRATIONS",
    "EXPORT_BITS",
    "AMPPoint",
    "AMPResult",
    "Calibration",
    "QuantizedMatMul",
    "QuantizedNetwork",
    "QuantizedSpectralConv",
    "amp_front",
    "build_sim",
    "calibrate",
    "dft_matrices",
    "export_artifact",
    "load_artifact",
    "load_quantized",
    "quiet_aimet_logs",
]
