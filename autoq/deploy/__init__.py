"""Deployable models: a trial's solver from raw input to raw output as one ONNX graph.

:func:`export_deployable` writes the folder (ONNX model with the normalisation, the resizing and
the quantized network inside; AIMET's encodings; a manifest; the reloadable network);
:func:`export_trial` does it for a stored trial of a search (``autoq export``);
:func:`load_deployable` rebuilds the torch solver; :class:`OnnxSolver` and :func:`onnx_session`
run the ONNX model with onnxruntime; :func:`export_qdq_onnx` exports any module holding AIMET
quantizers at any bitwidth (:mod:`autoq.deploy.qdq`); :func:`measure_latency` times models
against the float reference (:mod:`autoq.deploy.latency`, ``autoq latency``).
Names load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autoq._lazy import lazy_exports

if TYPE_CHECKING:
    from autoq.deploy.export import (
        DeploymentInfo,
        export_deployable,
        load_deployable,
        read_manifest,
    )
    from autoq.deploy.latency import (
        LatencyResult,
        RuntimeUnavailableError,
        export_float_reference,
        measure_latency,
        time_models,
    )
    from autoq.deploy.qdq import QDQEncoding, container, export_qdq_onnx
    from autoq.deploy.runtime import OnnxSolver, onnx_session
    from autoq.deploy.trial import export_trial

__all__ = [
    "DeploymentInfo",
    "LatencyResult",
    "OnnxSolver",
    "QDQEncoding",
    "RuntimeUnavailableError",
    "container",
    "export_deployable",
    "export_float_reference",
    "export_qdq_onnx",
    "export_trial",
    "load_deployable",
    "measure_latency",
    "onnx_session",
    "read_manifest",
    "time_models",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "DeploymentInfo": "export",
    "export_deployable": "export",
    "load_deployable": "export",
    "read_manifest": "export",
    "QDQEncoding": "qdq",
    "container": "qdq",
    "export_qdq_onnx": "qdq",
    "OnnxSolver": "runtime",
    "onnx_session": "runtime",
    "export_trial": "trial",
    "LatencyResult": "latency",
    "RuntimeUnavailableError": "latency",
    "export_float_reference": "latency",
    "measure_latency": "latency",
    "time_models": "latency",
}, __all__)
