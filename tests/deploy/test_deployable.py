"""A real trial's solver exported from raw input to raw output: onnxruntime reproduces the
trial's validation error, for each architecture, at a reduced grid, 1D and 2D."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

from autoq.deploy import (
    DeploymentInfo,
    OnnxSolver,
    export_deployable,
    load_deployable,
    read_manifest,
)
from autoq.errors import QuantizationError
from autoq.precision import TrialConfig
from autoq.quant import QuantizedNetwork, load_artifact, load_quantized
from autoq.search import parse_spec
from autoq.search.trial import TrialResult, TrialRunner
from autoq.train import ScaledSolver

# (architecture, data, scale, weight bits, activation bits): each a width AIMET's own exporter
# refuses (3, 6) or writes as int2 (2), and each a grid coarser than the data's.
CASES = {
    "fno-burgers": ("fno", "burgers", 0.5, 3, 6),
    "unet-darcy": ("unet", "darcy", 0.5, 2, 3),
    "transformer-darcy": ("transformer", "darcy", 0.75, 6, 4),
}


Payload = Callable[..., dict[str, Any]]


def run_trial(tiny_payload: Payload, artifact_dir: Path, case: str
              ) -> tuple[TrialRunner, TrialResult, ScaledSolver, QuantizedNetwork]:
    """One real trial (float model, calibration, QAT, evaluation) of ``case`` through the
    search's own TrialRunner, and the solver rebuilt around its exported network as ``autoq
    export`` rebuilds it."""
    arch, pde, scale, weight_bits, act_bits = CASES[case]
    spec = parse_spec(tiny_payload(arch=arch, pde=pde, scales=[1.0, scale],
                                   weight_bits=[weight_bits], act_bits=[act_bits]))
    runner = TrialRunner(spec, artifact_dir=artifact_dir)
    network = runner.float_model(scale).solver.network
    config = TrialConfig.uniform(network, scale=scale, weight_bits=weight_bits,
                                 act_bits=act_bits)
    result = runner.run(config, artifact_name=case)
    assert result.artifact is not None
    qnet = load_quantized(result.artifact)
    solver = runner.problem.build_solver(spec.model, scale=scale)
    solver.network = qnet.model
    return runner, result, solver, qnet


@pytest.mark.parametrize("case", list(CASES))
def test_onnxruntime_reproduces_the_trials_error(case: str, tiny_payload: Payload,
                                                 tmp_path: Path) -> None:
    runner, result, solver, qnet = run_trial(tiny_payload, tmp_path / "trials", case)
    windows = runner.problem.val_windows
    check = windows.batch(torch.arange(min(8, len(windows))))[0]
    info = DeploymentInfo(search=runner.spec.name, trial=3, metric=runner.spec.metric,
                          error=result.mse, float_error=result.float_mse,
                          float_reference=result.float_reference, cost=result.cost.total)
    out = export_deployable(solver, qnet, tmp_path / "deploy", info=info,
                            model_config=runner.spec.model, check_inputs=check)

    deployed = runner.metric(OnnxSolver(out), runner.problem)
    print(f"{case}: trial {result.mse:.6e}, onnxruntime {deployed:.6e}")
    assert abs(deployed - result.mse) < 1e-3 * result.mse
    assert deployed != pytest.approx(result.float_mse, rel=1e-6)  # the quantized model ran

    manifest = read_manifest(out)
    data_shape = list(runner.problem.data.spatial_shape)
    assert manifest["input"]["shape"] == ["batch", runner.problem.in_channels, *data_shape]
    assert manifest["output"]["shape"] == ["batch", runner.problem.out_channels, *data_shape]
    assert manifest["network_shape"] == list(solver.net_shape) != data_shape
    assert (manifest["search"], manifest["trial"], manifest["error"]) == (
        runner.spec.name, 3, result.mse)
    assert manifest["scale"] == CASES[case][2]
    assert manifest["trial_config"] == qnet.config.to_json()
    assert manifest["onnx"]["opset"] == 21
    assert {"QuantizeLinear", "DequantizeLinear", "Resize"} <= set(manifest["onnx"]["ops"])
    assert manifest["check"]["relative_difference"] < 1e-3
    # The graph as written is checked; what onnxruntime's optimisations change is measured apart
    # (the paper's scheme: no integer kernels, so the same values).
    assert manifest["check"]["optimisations"] == "disabled"
    runtime = manifest["check"]["runtime"]
    assert runtime["relative_difference"] < 1e-3 and runtime["integer_kernels"] == {}
    assert {"onnxruntime", "torch", "aimet_torch", "onnx", "autoq"} <= set(manifest["versions"])
    widths = {q["bits"] for q in manifest["quantizers"]}
    assert widths == set(CASES[case][3:])
    encodings = json.loads((out / "model.encodings").read_text())
    assert encodings["param_encodings"] and encodings["activation_encodings"]

    # The graph is the whole solver: raw data-grid tensors in and out, batch free.
    graph = onnx.load(str(out / "model.onnx")).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == manifest["input"]["shape"]

    # The torch solver reloads exactly, from the folder alone, and so does the bare network.
    reloaded = load_deployable(out)
    inputs, _ = windows.batch(torch.arange(len(windows)))
    with torch.no_grad():
        assert torch.equal(reloaded(inputs), solver.eval()(inputs))
    network = load_artifact(out / "network")
    with torch.no_grad():
        net_in = torch.randn(2, *qnet.input_shape)
        assert torch.equal(network(net_in), qnet.model(net_in))


def test_export_needs_the_quantized_network_inside_the_solver(tiny_payload: Payload,
                                                              tmp_path: Path) -> None:
    runner, _, _, qnet = run_trial(tiny_payload, tmp_path / "trials", "fno-burgers")
    float_solver = runner.float_model(0.5).solver
    with pytest.raises(QuantizationError, match=r"qnet\.model"):
        export_deployable(float_solver, qnet, tmp_path / "wrong",
                          info=DeploymentInfo(search="x"))
    assert not (tmp_path / "wrong").exists()


def test_a_graph_that_disagrees_with_torch_is_refused(tiny_payload: Payload,
                                                      tmp_path: Path) -> None:
    runner, _, solver, qnet = run_trial(tiny_payload, tmp_path / "trials", "fno-burgers")
    windows = runner.problem.val_windows
    check = windows.batch(torch.arange(4))[0]
    # Change the torch solver's normalisation after tracing: onnxruntime now runs another model.
    original = ScaledSolver.forward

    def shifted(self: ScaledSolver, x: torch.Tensor) -> torch.Tensor:
        out = original(self, x)
        return out if torch.onnx.is_in_onnx_export() else out + 0.1 * out.abs().mean()

    ScaledSolver.forward = shifted  # type: ignore[method-assign]
    try:
        with pytest.raises(QuantizationError, match="differs from the torch solver"):
            export_deployable(solver, qnet, tmp_path / "bad", info=DeploymentInfo(search="x"),
                              check_inputs=check)
    finally:
        ScaledSolver.forward = original  # type: ignore[method-assign]


def test_neuraloperator_spectral_layers_are_refused_by_name(tmp_path: Path) -> None:
    pytest.importorskip("neuralop", reason="needs the neuralop extra")
    from autoq.models import build_model
    from autoq.models.config import FactoryConfig
    from autoq.quant import build_sim, calibrate

    config = FactoryConfig(factory="neuralop.models:FNO", kwargs={
        "n_modes": [8], "in_channels": 2, "out_channels": 1, "hidden_channels": 8,
        "n_layers": 2})
    network = build_model(config, spatial_dims=1, in_channels=2, out_channels=1, grid=(32,))
    x = torch.randn(4, 2, 32)
    qnet = build_sim(network, TrialConfig.uniform(network, scale=1.0, weight_bits=8,
                                                  act_bits=8), dummy_input=x[:1])
    calibrate(qnet, [x])
    solver = ScaledSolver(qnet.model, data_shape=(32,), scale=1.0, fields=1, input_steps=2,
                          target_steps=1, steady=False, in_channels=2)
    with pytest.raises(QuantizationError, match=r"fno_blocks\.convs\.0.*torch\.fft"):
        export_deployable(solver, qnet, tmp_path / "neuralop", info=DeploymentInfo(search="x"))
    assert not (tmp_path / "neuralop").exists()
    assert np.isfinite(solver(torch.randn(1, 2, 32)).detach().numpy()).all()
