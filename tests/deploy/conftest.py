"""Fixtures of the deployment tests: tiny real specs, and the float-model cache kept in a
temporary folder."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(scope="session")
def deploy_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tiny specs' data files are generated (once per session)."""
    return tmp_path_factory.mktemp("deploy-data")


@pytest.fixture(autouse=True)
def float_cache(isolated_float_cache: Path) -> Path:
    """Every test here keeps its float models in the session's temporary cache."""
    return isolated_float_cache


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Tiny models run fastest on one thread, and stay fast when other processes share the
    two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


MODELS: dict[str, dict[str, Any]] = {
    "fno": {"arch": "fno", "width": 12, "modes": 6, "layers": 2, "projection_width": 24},
    "unet": {"arch": "unet", "width": 8, "levels": 2, "norm_groups": 4},
    "transformer": {"arch": "transformer", "width": 16, "heads": 2, "layers": 1, "patch": 4,
                    "feed_forward_width": 32},
}


@pytest.fixture
def tiny_payload(deploy_data_dir: Path) -> Callable[..., dict[str, Any]]:
    """``tiny_payload(arch=..., pde=..., scales=..., weight_bits=..., act_bits=...)``: a spec
    payload of :func:`payload` with its data in the session's data folder."""
    return functools.partial(payload, deploy_data_dir)


def payload(data_dir: Path, *, arch: str, pde: str, scales: list[float],
            weight_bits: list[int], act_bits: list[int]) -> dict[str, Any]:
    """A search spec small enough for a test: Burgers 24 samples × 64 cells × 11 frames
    (time-dependent: residual, 1D linear resizing) or Darcy 24 samples on 16² (steady:
    coefficient → solution, bilinear resizing); 2 float epochs, 1 QAT epoch."""
    data = {
        "burgers": {"pde": "burgers", "path": str(data_dir / "burgers.h5"), "input_steps": 4,
                    "target_steps": 1,
                    "generate": {"samples": 24, "resolution": 64, "frames": 11}},
        "darcy": {"pde": "darcy", "path": str(data_dir / "darcy.h5"), "input_steps": 1,
                  "target_steps": 1, "generate": {"samples": 24, "resolution": 16}},
    }[pde]
    return {
        "name": f"deploy-{arch}-{pde}",
        "data": data,
        "model": MODELS[arch],
        "train": {"epochs": 2, "lr": 3.0e-3, "batch_size": 16},
        "qat": {"epochs": 1, "lr": 1.0e-4, "batch_size": 16},
        "space": {"scales": scales, "weight_bits": weight_bits, "act_bits": act_bits,
                  "granularity": "uniform"},
        "search": {"sampler": "tpe", "trials": 2, "seed": 0},
    }
