"""Fixtures of the service tests: real SQLite and PostgreSQL databases, service processes."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from harness import Service, service_env, wait_for

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def float_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One float-model cache for the session: every test search trains the same tiny FNO."""
    return tmp_path_factory.mktemp("float-cache")


def _pg_running() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server on 127.0.0.1:5432 (started if it is installed but down)."""
    if not _pg_running():
        versions = Path("/etc/postgresql")
        if not versions.is_dir():
            pytest.skip("no PostgreSQL server installed")
        for version in sorted(p.name for p in versions.iterdir()):
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                            "start"], check=False)
        wait_for(_pg_running, timeout=30, what="PostgreSQL to start")
    return PG_ADMIN


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database of this test, dropped afterwards."""
    name = f"autoq_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def service_on(tmp_path: Path, float_cache: Path
               ) -> Iterator[Callable[..., Service]]:
    """Make a :class:`Service` on a storage URL; its processes stop when the test ends."""
    made: list[Service] = []

    def make(storage: str, **settings: str) -> Service:
        service = Service(storage, service_env(tmp_path, storage, float_cache, **settings),
                          tmp_path)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()

