"""The export check holds every grid of a written graph to torch's integers on torch's own inputs
(:func:`autoq.deploy.export.check_graph`). A rounding tie that lands the other way is no export
error however far a network's norms spread it, and a wrongly written grid is refused however
little it moves the output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from autoq.deploy import DeploymentInfo, export_deployable, export_qdq_onnx, read_manifest
from autoq.deploy import export as deploy_export
from autoq.deploy.export import check_graph
from autoq.errors import QuantizationError
from autoq.models import UNetConfig, build_model
from autoq.precision import TrialConfig
from autoq.quant import build_sim, calibrate
from autoq.search import SearchSpace, parse_spec
from autoq.search.trial import TrialRunner
from autoq.train import ScaledSolver

# A configuration the latency search's sampler picks (tests/deploy/test_latency_objective.py):
# trained on the tiny Darcy data at scale 1 with seed 2, onnxruntime's graph as written differed
# from torch by 6.5e-3 end to end, and torch itself, every activation quantizer's input moved by
# a relative 1e-6, by 0 to 6.8e-3: one 8-bit step flipped by float32 noise, spread by the norms.
MIXED: dict[str, tuple[int, int] | None] = {
    "encoders.0": (4, 16), "encoders.1": (8, 8), "bottleneck": (4, 8), "upsamplers.0": (4, 16),
    "upsamplers.1": (8, 8), "decoders.0": (4, 16), "decoders.1": (8, 8)}


def test_a_trained_mixed_width_darcy_unet_is_deployable(
        tiny_payload: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    payload = tiny_payload(arch="unet", pde="darcy", scales=[1.0, 0.5], weight_bits=[4, 8],
                           act_bits=[8, 16])
    payload["space"].update(granularity="per_block", scheme="integer")
    spec = parse_spec(payload)
    runner = TrialRunner(spec, artifact_dir=tmp_path)
    result = runner.run(SearchSpace(spec).config(1.0, MIXED), artifact_name="mixed", seed=2)
    assert result.deploy_error is None and result.deployable is not None
    manifest = read_manifest(result.deployable)
    runtime = [q for q in manifest["quantizers"] if q["form"] != "constant"]
    assert manifest["check"]["quantizers"] == len(runtime) > 0


def _unet_solver(act_bits: int) -> tuple[ScaledSolver, Any, torch.Tensor]:
    """A small calibrated UNet under the integer scheme (4-bit weights) inside a solver."""
    torch.manual_seed(0)
    network = build_model(UNetConfig(width=8, levels=2, norm_groups=4), spatial_dims=2,
                          in_channels=1, out_channels=1).eval()
    x = torch.randn(4, 1, 16, 16)
    uniform = TrialConfig.uniform(network, scale=1.0, weight_bits=4, act_bits=act_bits)
    qnet = build_sim(network, TrialConfig(scale=1.0, bits=uniform.bits, scheme="integer"),
                     dummy_input=x[:1])
    calibrate(qnet, [x])
    solver = ScaledSolver(qnet.model, data_shape=(16, 16), scale=1.0, fields=1, input_steps=1,
                          target_steps=1, steady=True, in_channels=1)
    return solver, qnet, x


def test_a_grid_written_with_a_slightly_wrong_scale_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    solver, qnet, x = _unet_solver(act_bits=16)
    # Untrained, this UNet's output moves by 1e-3 or more on rounding ties alone. A scale off
    # by a relative 1e-5 moves a 16-bit grid's integers by at most one step, as a tie would,
    # but on elements that are no ties.
    wrong = "network.encoders.1.conv1/output:0"

    def skewed(*args: Any, **kwargs: Any) -> Any:
        encodings = export_qdq_onnx(*args, **kwargs)
        path = Path(args[2])
        model = onnx.load(str(path))
        grid = next(e for e in encodings if e.name == wrong)
        scale_name = next(node.input[1] for node in model.graph.node if node.name == grid.node)
        scale = next(t for t in model.graph.initializer if t.name == scale_name)
        scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * (1 + 1e-5),
                                               scale_name))
        onnx.save(model, str(path))
        return encodings

    monkeypatch.setattr(deploy_export, "export_qdq_onnx", skewed)
    with pytest.raises(QuantizationError, match=f"quantizer {wrong} .* no rounding ties"):
        export_deployable(solver, qnet, tmp_path / "skewed", info=DeploymentInfo(search="x"),
                          check_inputs=x)
    monkeypatch.undo()
    export_deployable(solver, qnet, tmp_path / "right", info=DeploymentInfo(search="x"),
                      check_inputs=x)


def test_inputs_on_rounding_ties_are_accepted_whichever_way_each_side_rounds(
        tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False)).eval()
    calibration = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8)
    qnet = build_sim(network, TrialConfig(scale=1.0, bits={"0": (8, 16)}, scheme="integer"),
                     dummy_input=calibration)
    calibrate(qnet, [calibration])
    path = tmp_path / "one.onnx"
    encodings = export_qdq_onnx(qnet.model, calibration, path)
    grid = next(e for e in encodings if e.name.endswith("/input:0"))
    assert isinstance(grid.scale, float)
    # Every input a few float32 steps from a half-way point of the input grid: torch rounds
    # x·fl(1/s), onnxruntime x/s, and they part on some of these.
    step = torch.tensor(grid.scale, dtype=torch.float32)
    halves = (torch.arange(-32768, 32768, 8, dtype=torch.float32) + 0.5) * step
    near = torch.stack([halves, torch.nextafter(halves, halves + 1),
                        torch.nextafter(halves, halves - 1)])
    x = near.reshape(-1, 1, 8, 8)
    check = check_graph(qnet.model, path, x, encodings)
    assert check["quantizers"] == 2 and check["ties"] > 0
