"""Fixtures of the search tests: a tiny real search spec, and SQLite and PostgreSQL storages."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import FrozenTrial, TrialState

from autoq.models import build_model
from autoq.precision import quantizable_layers
from autoq.search import SearchSpec, parse_spec
from autoq.search.setup import geometry

POSTGRES = "host=127.0.0.1 port=5432 dbname=postgres connect_timeout=3"
POSTGRES_USERS = ("postgres", "root")


@pytest.fixture(scope="session")
def search_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tiny spec's data file is generated (once per session, by the first search)."""
    return tmp_path_factory.mktemp("search-data")


@pytest.fixture(autouse=True)
def float_cache(isolated_float_cache: Path) -> Path:
    """Every test here keeps its float models in the session's temporary cache."""
    return isolated_float_cache


@pytest.fixture
def tiny_spec_payload(search_data_dir: Path) -> dict[str, Any]:
    """A search small enough for a test: Burgers 24 samples × 64 cells × 11 frames, FNO of
    width 12, 2 float epochs, 1 QAT epoch, 2 scales × {4, 8} weight × {8, 16} activation bits."""
    return {
        "name": "tiny-burgers-fno",
        "data": {
            "pde": "burgers",
            "path": str(search_data_dir / "burgers_tiny.h5"),
            "input_steps": 4,
            "target_steps": 1,
            "generate": {"samples": 24, "resolution": 64, "frames": 11},
        },
        "model": {"arch": "fno", "width": 12, "modes": 6, "layers": 2, "projection_width": 24},
        "train": {"epochs": 2, "lr": 3.0e-3, "batch_size": 16},
        "qat": {"epochs": 1, "lr": 1.0e-4, "batch_size": 16},
        "space": {"scales": [1.0, 0.5], "weight_bits": [4, 8], "act_bits": [8, 16],
                  "granularity": "per_block"},
        "search": {"sampler": "tpe", "trials": 4, "seed": 0},
    }


@pytest.fixture
def tiny_spec(tiny_spec_payload: dict[str, Any]) -> SearchSpec:
    return parse_spec(tiny_spec_payload)


@pytest.fixture
def assert_full_record(tiny_spec: SearchSpec) -> Callable[[FrozenTrial], None]:
    """A check that a complete trial carries everything a search records about it."""
    shape = geometry(tiny_spec)
    network = build_model(tiny_spec.model, spatial_dims=len(shape.data_shape),
                          in_channels=shape.in_channels, out_channels=shape.out_channels)
    layers = set(quantizable_layers(network))

    def check(trial: FrozenTrial) -> None:
        assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("error")
        mse, cost = trial.values
        assert mse > 0 and cost > 0
        attrs = trial.user_attrs
        assert set(attrs["bits"]) == layers
        assert any(bits != "float" for bits in attrs["bits"].values())
        assert trial.params["scale"] in tiny_spec.space.scales
        assert set(attrs["timings"]) == {"float", "calibration", "qat", "evaluation", "export"}
        assert all(seconds >= 0 for seconds in attrs["timings"].values())
        assert attrs["timings"]["qat"] > 0
        assert set(attrs["cost_breakdown"]) >= layers
        assert sum(attrs["cost_breakdown"].values()) == pytest.approx(cost)
        assert attrs["float_mse"] > 0

    return check


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'search.db'}"


def _postgres_user() -> str | None:
    """A user the local server lets in (trust auth), or None when no server answers."""
    import psycopg

    for user in POSTGRES_USERS:
        try:
            with psycopg.connect(f"{POSTGRES} user={user}"):
                return user
        except psycopg.OperationalError:
            continue
    return None


def _start_postgres() -> None:
    """Start the Debian cluster if this machine has one (it does not start on boot here)."""
    config = Path("/etc/postgresql")
    versions = sorted(config.glob("*")) if config.is_dir() else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        return
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main",
                    "start"], check=False, capture_output=True, timeout=60)
    time.sleep(1)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432 for one test, dropped afterwards.

    Starts the local server if it is down; skips when there is no server to start.
    """
    import psycopg

    user = _postgres_user()
    if user is None:
        _start_postgres()
        user = _postgres_user()
    if user is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 (and none to start)")
    database = f"autoq_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES} user={user}", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield f"postgresql+psycopg://{user}@127.0.0.1:5432/{database}"
    finally:
        with psycopg.connect(f"{POSTGRES} user={user}", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
