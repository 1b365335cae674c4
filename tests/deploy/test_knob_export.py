"""Real trials with the knobs beyond the paper (issue 17) export from raw input to raw output and
pass the export check: each resize method (``cubic`` as its taps, ``fourier`` as one matrix per
axis) and per-channel weight grids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from autoq.deploy import load_deployable, read_manifest
from autoq.deploy.latency import export_solver
from autoq.precision import TrialConfig
from autoq.search import parse_spec
from autoq.search.trial import TrialRunner
from autoq.train import ScaledSolver

Payload = Callable[..., dict[str, Any]]


def _trial(tiny_payload: Payload, tmp_path: Path, *, arch: str, pde: str, **space: Any
           ) -> tuple[TrialRunner, Any]:
    """One real trial at scale 0.5, w4a8 on every layer the space quantizes, exported."""
    payload = tiny_payload(arch=arch, pde=pde, scales=[1.0, 0.5], weight_bits=[4], act_bits=[8])
    payload["space"].update(space)
    spec = parse_spec(payload)
    runner = TrialRunner(spec, artifact_dir=tmp_path / "trials")
    config = runner.space.config(0.5, {group: (4, 8) for group in runner.space.groups})
    return runner, runner.run(config, artifact_name="trial")


@pytest.mark.parametrize(("arch", "pde", "resample", "op"), [
    ("fno", "burgers", "cubic", "Gather"), ("fno", "burgers", "fourier", "MatMul"),
    ("unet", "darcy", "cubic", "Gather")])
def test_each_resize_method_exports_and_onnxruntime_reproduces_the_trial(
        tiny_payload: Payload, tmp_path: Path, arch: str, pde: str, resample: str,
        op: str) -> None:
    runner, result = _trial(tiny_payload, tmp_path, arch=arch, pde=pde, resample=resample)
    assert result.deploy_error is None and result.deployable is not None
    assert result.deployed_error == pytest.approx(result.mse, rel=1e-3)
    manifest = read_manifest(result.deployable)
    assert manifest["solver"]["resample"] == resample
    assert manifest["trial_config"]["resample"] == resample
    assert "Resize" not in manifest["onnx"]["ops"] and op in manifest["onnx"]["ops"]
    reloaded = load_deployable(result.deployable)
    assert reloaded.resample == resample
    windows = runner.problem.val_windows
    inputs = windows.batch(torch.arange(min(4, len(windows))))[0]
    solver = runner.float_model(0.5).solver
    assert solver.resample == resample
    with torch.no_grad():
        assert torch.equal(reloaded.to_network(inputs), solver.to_network(inputs))


def test_a_2d_fourier_resize_exports_as_one_matrix_per_axis(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = nn.Conv2d(2, 1, 3, padding=1, padding_mode="circular")
    solver = ScaledSolver(network, data_shape=(16, 12), scale=0.5, fields=1, input_steps=1,
                          target_steps=1, steady=True, in_channels=2, resample="fourier").eval()
    path = export_solver(solver, tmp_path / "f.onnx")
    x = torch.randn(3, 2, 16, 12)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = solver(x).numpy()
    assert np.abs(got - expected).max() < 1e-5 * np.abs(expected).max()


def test_a_per_channel_trial_exports_per_channel_grids_and_passes_the_check(
        tiny_payload: Payload, tmp_path: Path) -> None:
    runner, result = _trial(tiny_payload, tmp_path, arch="unet", pde="darcy",
                            weight_granularity="per_channel")
    assert result.deploy_error is None and result.deployable is not None
    manifest = read_manifest(result.deployable)
    assert manifest["check"]["quantizers"] > 0  # checked grid by grid on torch's inputs
    assert result.deployed_error == pytest.approx(result.mse, rel=1e-3)
    weights = [q for q in manifest["quantizers"] if "/weight:" in q["name"]]
    # Axis 0 of a convolution's weight (out, in, kh, kw), 1 of a transposed one's (in, out, …).
    modules = dict(runner.float_model(0.5).solver.named_modules())
    axes = {q["name"].split("/")[0]: q["axis"] for q in weights if len(q["scale"]) > 1}
    assert len(axes) == len(weights) and set(axes.values()) == {0, 1}
    assert axes == {name: int(isinstance(modules[name], nn.ConvTranspose2d)) for name in axes}
    assert all(q["axis"] is None for q in manifest["quantizers"] if "/input:" in q["name"])
    assert TrialConfig.from_json(manifest["trial_config"]).weight_granularity == "per_channel"
