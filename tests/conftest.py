"""Fixtures shared across the test suite: small real data sets made by autoq's own solvers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from autoq.data import get_family


@pytest.fixture(autouse=True, scope="session")
def _two_threads() -> None:
    torch.set_num_threads(2)


HEAVY_MODULES = ("torch", "aimet_torch", "deepspeed", "ray")


@pytest.fixture(scope="session")
def heavy_imports() -> Callable[..., list[str]]:
    """``heavy_imports("autoq.x", ...)``: which of :data:`HEAVY_MODULES` importing those modules
    in a fresh interpreter loads (the light modules must load none)."""

    def check(*modules: str) -> list[str]:
        code = (f"import sys\nimport {', '.join(modules)}\n"
                f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True)
        return result.stdout.split()

    return check


@pytest.fixture(scope="session")
def burgers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 Burgers trajectories, 64 cells, 21 frames over t ∈ [0, 2] (ν = 0.01): PDEBench's
    initial states (offsets, doubled wavenumbers) need twice the 48 that the earlier, gentler
    ones did for the tiny FNO to beat persistence 5× in 6 epochs."""
    path = tmp_path_factory.mktemp("data") / "1D_Burgers_Sols_Nu0.01.hdf5"
    return get_family("burgers").generate(path, samples=96, resolution=64, frames=21, seed=0)


@pytest.fixture(scope="session")
def darcy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 Darcy samples on a 16² grid (β = 1): PDEBench's coefficients (a = 1 on 0–90 % of the
    domain) spread the solutions' size tenfold, and 32 samples leave a validation split too
    small to learn it from."""
    path = tmp_path_factory.mktemp("data") / "2D_DarcyFlow_beta1.0_Train.hdf5"
    return get_family("darcy").generate(path, samples=64, resolution=16, seed=0)


@pytest.fixture(scope="session")
def _session_float_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("float-cache")


@pytest.fixture
def isolated_float_cache(monkeypatch: pytest.MonkeyPatch, _session_float_cache: Path) -> Path:
    """Float models go to a temporary cache shared by the session's tests (each tiny spec's
    float model is trained once), never to ``./artifacts/float``."""
    monkeypatch.setenv("AUTOQ_CACHE_DIR", str(_session_float_cache))
    return _session_float_cache
