"""A float FNO exports to ONNX (its spectral convolution as real DFT matrix products), so the
float reference of `autoq latency` exists for FNO searches too."""

from __future__ import annotations

from pathlib import Path

import onnxruntime
import pytest
import torch

from autoq.deploy import export_qdq_onnx
from autoq.models import FNOConfig, build_model


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_float_fno_exports_and_matches_torch(spatial_dims: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = build_model(FNOConfig(width=8, modes=4, layers=2, projection_width=16),
                          spatial_dims=spatial_dims, in_channels=2, out_channels=1).eval()
    x = torch.randn(3, 2, *(32,) * spatial_dims)
    export_qdq_onnx(network, x[:1], tmp_path / "float.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "float.onnx"),
                                           providers=["CPUExecutionProvider"])
    out, = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = network(x)
    torch.testing.assert_close(torch.from_numpy(out), expected, rtol=1e-4, atol=1e-5)
