"""Latency of a 64×64 UNet (width 16) under both schemes at three widths, against its float graph.

Untrained, calibrated on random inputs (latency does not depend on the weights), exported with
autoq's QDQ exporter and timed by :func:`autoq.deploy.latency.time_models` (onnxruntime CPU, 1
thread, batch 1, 40 interleaved rounds); the integer kernels of onnxruntime's optimised graph
are counted. Run: ``.venv/bin/python benchmarks/deploy_latency_table.py``. Figures in
docs/deploy.md ("Measured latency").
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import onnx
import onnxruntime
import torch

from autoq.bits import Scheme
from autoq.deploy import export_qdq_onnx
from autoq.deploy.latency import time_models
from autoq.models import UNetConfig, build_model
from autoq.precision import TrialConfig
from autoq.quant import build_sim, calibrate


def optimised_ops(path: Path, scratch: Path) -> collections.Counter[str]:
    """Op counts of onnxruntime's default-optimised graph of ``path``."""
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(scratch / "optimised.onnx")
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath)
                               .graph.node)


def main() -> None:
    torch.manual_seed(0)
    network = build_model(UNetConfig(width=16, levels=2, norm_groups=4), spatial_dims=2,
                          in_channels=1, out_channels=1).eval()
    x = torch.randn(4, 1, 64, 64)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        paths = {"float": scratch / "float.onnx"}
        export_qdq_onnx(network, x[:1], paths["float"])
        schemes: tuple[Scheme, ...] = ("paper", "integer")
        for scheme in schemes:
            for weight_bits, act_bits in ((8, 8), (6, 6), (4, 8)):
                uniform = TrialConfig.uniform(network, scale=1.0, weight_bits=weight_bits,
                                              act_bits=act_bits)
                qnet = build_sim(network, TrialConfig(scale=1.0, bits=uniform.bits,
                                                      scheme=scheme), dummy_input=x[:1])
                calibrate(qnet, [x])
                name = f"{scheme} w{weight_bits}a{act_bits}"
                paths[name] = scratch / f"{name.replace(' ', '-')}.onnx"
                export_qdq_onnx(qnet.model, x[:1], paths[name])
        timings = time_models(paths, threads=1, batch=1, warmup=5, repeats=40)
        for name, timing in timings.items():
            ops = optimised_ops(paths[name], scratch)
            print(f"{name:16s} {1e3 * timing.median_s:7.2f} ± {1e3 * timing.spread_s:5.2f} ms  "
                  f"× float {timings['float'].median_s / timing.median_s:5.2f}  "
                  f"QLinearConv {ops['QLinearConv']}  Conv {ops['Conv']}")


if __name__ == "__main__":
    main()
