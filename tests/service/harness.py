"""Helpers of the service tests: service processes on loopback, an API client, and a tiny real
search (Burgers, 24 samples × 64 cells, a 2-layer FNO: ~20–40 s for 3 trials,
a few seconds per trial once its float models are cached)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
from optuna.storages import BaseStorage

from autoq.search.results import finished_trials
from service.studies import Progress

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = "test-token"


def tiny_spec(name: str = "tiny", *, trials: int = 3, path: str = "burgers_tiny.h5"
              ) -> dict[str, Any]:
    """A real search small enough for tests; its data file is generated on first use."""
    return {
        "name": name,
        "data": {"pde": "burgers", "path": path, "input_steps": 2,
                 "generate": {"samples": 24, "resolution": 64, "frames": 11}},
        "model": {"arch": "fno", "width": 12, "modes": 6, "layers": 2, "projection_width": 24},
        "train": {"epochs": 2},
        "qat": {"epochs": 1},
        "space": {"scales": [1.0, 0.5], "weight_bits": [4, 8], "act_bits": [8, 16],
                  "granularity": "per_block"},
        "search": {"trials": trials, "seed": 0},
    }


def study_progress(storage: BaseStorage, *, name: str) -> Progress:
    """The definition the service's counts must agree with: the study read whole through
    Optuna (all zero when it does not exist yet)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return Progress()
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return Progress(done=finished_trials(study),
                    complete=states.count(optuna.trial.TrialState.COMPLETE),
                    failed=states.count(optuna.trial.TrialState.FAIL),
                    running=states.count(optuna.trial.TrialState.RUNNING))


def wait_for(condition: Callable[[], Any], *, timeout: float, interval: float = 0.5,
             what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Proc:
    """A service process started by a test (``python -m service.cli …``)."""

    process: subprocess.Popen[bytes]
    log: Path
    interrupted: bool = False

    def interrupt(self) -> None:
        """Ctrl-C, once: a second one would cut the process's shutdown short."""
        if not self.interrupted and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.interrupted = True

    def stop(self) -> None:
        self.interrupt()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def terminate(self) -> int:
        """SIGTERM (``docker stop``, a rolling restart); its exit code once it has exited."""
        self.process.terminate()
        return self.process.wait(timeout=60)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Service:
    """Starts ``serve`` and ``worker`` processes on one database; stops them all at the end.

    Attributes:
        storage: SQLAlchemy URL of the database.
        env: the environment every process gets (tmp data root, float cache, settings).
    """

    storage: str
    env: dict[str, str]
    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def _start(self, *args: str, name: str) -> Proc:
        log = self.workdir / f"{name}-{len(self.procs)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", *args, "--storage", self.storage],
                cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        proc = Proc(process, log)
        self.procs.append(proc)
        return proc

    def api(self, *, workers: int = 1) -> Api:
        """``autoq serve`` on a free port, once ``/readyz`` answers."""
        port = free_port()
        proc = self._start("serve", "--host", "127.0.0.1", "--port", str(port),
                           "--workers", str(workers), name="serve")
        api = Api(f"http://127.0.0.1:{port}", proc)

        def ready() -> bool:
            if proc.process.poll() is not None:
                pytest.fail(f"server exited:\n{proc.output()[-3000:]}")
            try:
                return api.client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=90, what="the server to be ready")
        return api

    def worker(self) -> Proc:
        """``autoq worker`` on this database."""
        return self._start("worker", name="worker")

    def close(self) -> None:
        # Interrupt all first: each takes a few seconds to shut down, in parallel.
        for proc in self.procs:
            proc.interrupt()
        for proc in self.procs:
            proc.stop()


class Api:
    """An httpx client on a running server, sending the test token."""

    def __init__(self, url: str, proc: Proc) -> None:
        self.url = url
        self.proc = proc
        self.client = httpx.Client(base_url=url, timeout=30,
                                   headers={"Authorization": f"Bearer {TOKEN}"})

    def submit(self, **body: Any) -> dict[str, Any]:
        response = self.client.post("/api/v1/searches", json=body)
        assert response.status_code == 202, response.text
        return response.json()

    def search(self, search_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/searches/{search_id}")
        # A 5xx is explained in the server's log, not in its response.
        assert response.status_code == 200, f"{response.text}\n{self.proc.output()[-4000:]}"
        return response.json()

    def wait_status(self, search_id: str, statuses: set[str], *, timeout: float = 240
                    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.search(search_id)
            return job if job["status"] in statuses else None

        return wait_for(reached, timeout=timeout, what=f"search {search_id} to be {statuses}")


def service_env(workdir: Path, storage: str, cache: Path, **settings: str) -> dict[str, str]:
    """The environment of service processes: tmp paths, fast heartbeats, a token."""
    (workdir / "data").mkdir(exist_ok=True)
    env = {**os.environ,
           "AUTOQ_STORAGE": storage,
           "AUTOQ_CACHE_DIR": str(cache),
           "AUTOQ_DATA_ROOT": str(workdir / "data"),
           "AUTOQ_ARTIFACT_DIR": str(workdir / "artifacts"),
           "AUTOQ_API_TOKEN": TOKEN,
           "AUTOQ_JOB_HEARTBEAT_SECONDS": "1",
           "AUTOQ_TRIAL_HEARTBEAT_SECONDS": "1",
           "AUTOQ_POLL_SECONDS": "0.2"}
    env.update({f"AUTOQ_{key.upper()}": value for key, value in settings.items()})
    return env


def verify_results(api: Api, search_id: str, *, trials: int) -> None:
    """A finished search's trials, Pareto set and operating point agree with each other."""
    job = api.search(search_id)
    assert job["trials"]["asked"] == job["trials"]["done"] == trials
    points = api.client.get(f"/api/v1/searches/{search_id}/trials").json()["data"]
    complete = [p for p in points if p["state"] == "COMPLETE"]
    assert len(complete) == trials
    for point in complete:
        assert set(point) >= {"number", "state", "mse", "cost", "scale", "bits", "baseline"}
        assert point["mse"] > 0 and point["cost"] > 0 and point["scale"] in (1.0, 0.5)
        assert all(bits == "float" or (len(bits) == 2 and bits[0] in (4, 8)
                                        and bits[1] in (8, 16)) for bits in point["bits"].values())

    pareto = api.client.get(f"/api/v1/searches/{search_id}/pareto").json()
    costs = [p["cost"] for p in pareto["data"]]
    assert costs == sorted(costs) and pareto["count"] == len(costs) >= 1
    mses = [p["mse"] for p in pareto["data"]]
    assert mses == sorted(mses, reverse=True)  # cheaper points on the front are less accurate
    assert pareto["reference"]["cost"] > max(p["cost"] for p in complete)
    assert pareto["reference"]["mse"] > max(p["mse"] for p in complete)
    assert pareto["hypervolume"] > 0

    best = min(complete, key=lambda p: p["mse"])
    loosest = max(p["mse"] for p in complete)
    chosen = api.client.get(f"/api/v1/searches/{search_id}/operating-point",
                            params={"max_mse": loosest})
    assert chosen.status_code == 200
    assert chosen.json()["trial"]["cost"] == min(p["cost"] for p in complete)
    missed = api.client.get(f"/api/v1/searches/{search_id}/operating-point",
                            params={"max_mse": best["mse"] / 2})
    assert missed.status_code == 404
    assert missed.json()["best"]["number"] == best["number"]
    assert missed.json()["detail"][0]["loc"] == ["query", "max_mse"]
