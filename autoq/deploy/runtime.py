"""Running a deployable folder's ``model.onnx`` with onnxruntime.

onnxruntime is imported when a session is opened, so ``import autoq.deploy`` stays light.
:class:`OnnxSolver` makes a session look like a :class:`~autoq.train.ScaledSolver` to autoq's
metrics (``solver(inputs)`` on torch tensors), so the deployed graph is scored by exactly the
code that scored the trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from autoq.deploy.export import read_manifest

if TYPE_CHECKING:
    import onnxruntime


def onnx_session(directory: str | Path, *, threads: int | None = None
                 ) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session of a deployable folder's ONNX model, with onnxruntime's
    default graph optimisations.

    Args:
        directory: written by :func:`autoq.deploy.export_deployable`.
        threads: intra-op threads (default: onnxruntime's choice).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    path = Path(directory) / read_manifest(directory)["files"]["onnx"]
    return onnxruntime.InferenceSession(str(path), sess_options=options,
                                        providers=["CPUExecutionProvider"])


class OnnxSolver(nn.Module):
    """A deployable folder's ONNX model as a module: raw ``(batch, in_channels, *data)`` →
    raw ``(batch, out_channels, *data)``, computed by onnxruntime on the CPU.

    For scoring with autoq's one-step metrics (``mse``, ``relative_l2``, a callable); it has no
    ``rollout`` and trains nothing.
    """

    def __init__(self, directory: str | Path, *, threads: int | None = None) -> None:
        super().__init__()
        self.session = onnx_session(directory, threads=threads)
        self.input_name = self.session.get_inputs()[0].name
        # The metrics ask a solver for its device through its parameters.
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """onnxruntime's output for ``x`` (moved to the CPU as float32)."""
        array = x.detach().cpu().numpy().astype(np.float32)
        out, = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(out).to(x.device)
