"""QAT on a tiny real problem, and the exported artifact reproducing the trained sim."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from torch import nn

from autoq.errors import QuantizationError
from autoq.models import FNOConfig, TransformerConfig, build_model
from autoq.precision import TrialConfig
from autoq.quant import QuantizedNetwork, build_sim, calibrate, export_artifact, load_artifact

POINTS = 32


def advection_diffusion_pairs(samples: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact one-step pairs of u_t + c u_x = ν u_xx on the periodic unit interval.

    Initial states are sums of five sines ``a_k sin(2πk x + φ_k)`` (k = 1..5, a_k ~ N(0, 1/k²));
    each mode is shifted by ``c Δt`` and damped by ``exp(-ν (2πk)² Δt)``.

    Returns:
        ``(u(t), u(t + Δt))``, each ``(samples, 1, POINTS)`` float32.
    """
    rng = np.random.default_rng(seed)
    x = (np.arange(POINTS) + 0.5) / POINTS
    k = np.arange(1, 6)[None, :, None]
    amplitude = rng.normal(size=(samples, 5, 1)) / k
    phase = rng.uniform(0, 2 * np.pi, size=(samples, 5, 1))
    nu, c, dt = 0.01, 0.2, 0.5
    u0 = (amplitude * np.sin(2 * np.pi * k * x + phase)).sum(1)
    damped = amplitude * np.exp(-nu * (2 * np.pi * k) ** 2 * dt)
    u1 = (damped * np.sin(2 * np.pi * k * (x - c * dt) + phase)).sum(1)
    return (torch.tensor(u0[:, None], dtype=torch.float32),
            torch.tensor(u1[:, None], dtype=torch.float32))


TRAIN = advection_diffusion_pairs(256, seed=0)
VALID = advection_diffusion_pairs(64, seed=1)
CALIBRATION = TRAIN[0][: len(TRAIN[0]) // 5].split(26)  # 20% of the training inputs


def adam(model: nn.Module, *, steps: int, lr: float, seed: int) -> None:
    """Plain Adam on the training pairs, batches of 32."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(TRAIN[0]), (32,), generator=generator)
        loss = ((model(TRAIN[0][index]) - TRAIN[1][index]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def validation_mse(model: nn.Module) -> float:
    model.eval()
    with torch.no_grad():
        return float(((model(VALID[0]) - VALID[1]) ** 2).mean())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train fastest on one thread, and stay fast when other processes share the
    cores (two threads per process oversubscribe a 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class Trained:
    qnet: QuantizedNetwork
    float_mse: float
    calibrated_mse: float
    qat_mse: float
    calibrated_ranges: dict[str, tuple[float, float]]


def train_and_quantize(network: nn.Module, *, float_steps: int, qat_steps: int,
                       weight_bits: int, act_bits: int) -> Trained:
    adam(network, steps=float_steps, lr=1e-2, seed=0)
    config = TrialConfig.uniform(network, scale=1.0, weight_bits=weight_bits, act_bits=act_bits)
    qnet = build_sim(network, config, dummy_input=TRAIN[0][:1])
    calibrate(qnet, CALIBRATION)
    calibrated = validation_mse(qnet.model)
    ranges = _ranges(qnet)
    adam(qnet.model, steps=qat_steps, lr=1e-3, seed=1)
    return Trained(qnet, validation_mse(network), calibrated, validation_mse(qnet.model), ranges)


def _ranges(qnet: QuantizedNetwork) -> dict[str, tuple[float, float]]:
    return {f"{layer}/{slot}": (q.min.item(), q.max.item())
            for layer, slot, q in qnet.quantizers()}


@pytest.fixture(scope="module")
def fno() -> Trained:
    torch.manual_seed(0)
    network = build_model(FNOConfig(width=8, modes=4, layers=2, projection_width=16),
                          spatial_dims=1, in_channels=1, out_channels=1)
    return train_and_quantize(network, float_steps=150, qat_steps=60, weight_bits=4, act_bits=8)


@pytest.fixture(scope="module")
def transformer() -> Trained:
    torch.manual_seed(0)
    network = build_model(TransformerConfig(width=8, heads=2, layers=2, patch=4,
                                            feed_forward_width=16),
                          spatial_dims=1, in_channels=1, out_channels=1)
    return train_and_quantize(network, float_steps=40, qat_steps=10, weight_bits=8, act_bits=8)


def test_qat_beats_calibration_alone_at_w4a8(fno: Trained) -> None:
    print(f"float {fno.float_mse:.3g}, calibrated w4a8 {fno.calibrated_mse:.3g}, "
          f"after QAT {fno.qat_mse:.3g}")
    assert fno.float_mse < 1e-3  # the float model learned the map
    assert fno.calibrated_mse > 1.2 * fno.float_mse  # 4-bit weights cost accuracy
    assert fno.qat_mse < 0.7 * fno.calibrated_mse


def test_qat_trains_the_ranges(fno: Trained) -> None:
    parameters = [p for _, _, q in fno.qnet.quantizers() for p in (q.min, q.max)]
    assert parameters and all(isinstance(p, nn.Parameter) and p.requires_grad for p in parameters)
    moved = [name for name, (low, high) in _ranges(fno.qnet).items()
             if (low, high) != fno.calibrated_ranges[name]]
    assert len(moved) == len(fno.calibrated_ranges)


@pytest.mark.parametrize("arch", ["fno", "transformer"])
def test_artifact_reproduces_the_qat_model(arch: str, request: pytest.FixtureRequest,
                                           tmp_path: Path) -> None:
    trained: Trained = request.getfixturevalue(arch)
    directory = export_artifact(trained.qnet, tmp_path / arch,
                                metadata={"val_mse": trained.qat_mse})
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["trial"] == trained.qnet.config.to_json()
    assert manifest["model"]["arch"] == arch
    for name in ("state_dict.pt", "model.onnx", "model.encodings", "model_qdq.onnx"):
        assert (directory / name).is_file()

    reloaded = load_artifact(directory)
    mse = validation_mse(reloaded)
    assert abs(mse - trained.qat_mse) <= 1e-5 * trained.qat_mse

    # The QDQ graph (for the FNO: spectral layers as DFT matrix products) computes the same.
    onnx_out, = ReferenceEvaluator(str(directory / "model_qdq.onnx")).run(
        None, {"input": VALID[0][:8].numpy()})
    with torch.no_grad():
        sim_out = trained.qnet.model(VALID[0][:8]).numpy()
    assert np.linalg.norm(onnx_out - sim_out) <= 1e-3 * np.linalg.norm(sim_out)


def test_artifact_refuses_bits_onnx_cannot_carry(tmp_path: Path) -> None:
    network = build_model(FNOConfig(width=8, modes=4, layers=2, projection_width=16),
                          spatial_dims=1, in_channels=1, out_channels=1)
    config = TrialConfig.for_model(network, scale=1.0, bits={"blocks.0.pointwise": (6, 8)})
    qnet = build_sim(network, config, dummy_input=TRAIN[0][:1])
    with pytest.raises(QuantizationError, match="calibrate before exporting"):
        export_artifact(qnet, tmp_path / "six")
    calibrate(qnet, CALIBRATION[:1])
    with pytest.raises(QuantizationError, match=r"blocks\.0\.pointwise.*6"):
        export_artifact(qnet, tmp_path / "six")
    assert not (tmp_path / "six").exists()
    assert (export_artifact(qnet, tmp_path / "six", onnx=False) / "state_dict.pt").is_file()
