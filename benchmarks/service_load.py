"""Service latency under load: p50/p99 of GET …/pareto and GET /searches at many jobs while a
search runs.

Usage: python benchmarks/service_load.py [--clients 50] [--requests 3000] [--seconds 90]
                                         [--jobs 200] [--trials-per-job 20]
                                         [--worker-threads 1] [--storage URL]
Starts ``autoq serve --workers 0`` (API only) on a free loopback port with a fresh SQLite file
(or ``--storage``) and one separate ``autoq worker`` process, as ``docker/compose.yaml`` runs
them. Submits the bundled ``burgers-fno-small`` space with small overrides and waits for its
first complete trial; then adds ``--jobs`` − 1 finished jobs older than it, each with a study
of ``--trials-per-job`` trials copied from that trial (one in ten failed), so that every job on
the first page has a study. Then ``--clients`` concurrent httpx clients alternate the two GETs
(the running search's Pareto set, the first page of searches) until ``--requests`` are done or
``--seconds`` pass; before them one client alone does the same (the cost of one request), and
after them as many clients send ``GET /healthz`` (no database: the floor of the HTTP stack on
this machine). Prints per-endpoint p50/p99 latency, throughput and errors, the load average
before and after, and the trials the search finished during the load (it must keep running).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import select

from autoq.search.records import DIRECTIONS, ERROR_ATTR
from autoq.search.storage import rdb_storage
from service.db import Database, engine_options
from service.models import Job, utcnow

OVERRIDES = {
    "data": {"path": "burgers_load.h5", "input_steps": 2,
             "generate": {"samples": 24, "resolution": 64, "frames": 11}},
    "model": {"width": 12, "modes": 6, "layers": 2, "projection_width": 24},
    "train": {"epochs": 2},
    "qat": {"epochs": 1},
    "space": {"scales": [1.0, 0.5], "weight_bits": [4, 8], "act_bits": [8, 16],
              "granularity": "per_block"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _wait(client: httpx.Client, check: Callable[[httpx.Client], Any], what: str,
          timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check(client)
        except httpx.TransportError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def _copy(template: FrozenTrial, rng: random.Random, *, failed: bool) -> FrozenTrial:
    """A trial shaped like ``template`` (its parameters and attributes) with other values."""
    if failed:
        return optuna.trial.create_trial(
            state=TrialState.FAIL, params=template.params, distributions=template.distributions,
            user_attrs={**template.user_attrs, ERROR_ATTR: "TrialError: seeded failure"},
            system_attrs=template.system_attrs)
    mse, cost = template.values
    return optuna.trial.create_trial(
        state=TrialState.COMPLETE, values=[mse * rng.uniform(0.5, 4), cost * rng.uniform(0.2, 1)],
        params=template.params, distributions=template.distributions,
        user_attrs=template.user_attrs, system_attrs=template.system_attrs)


def _seed_finished_jobs(storage: str, running_name: str, *, jobs: int, trials: int) -> None:
    """``jobs`` succeeded jobs created before the running one, each with a study of ``trials``
    trials copied from the running search's first complete trial."""
    db = Database(storage)
    optuna_storage = rdb_storage(storage, engine_kwargs=engine_options(storage))
    running = optuna.load_study(study_name=running_name, storage=optuna_storage)
    template = next(t for t in running.get_trials() if t.state == TrialState.COMPLETE)
    with db.session() as session:
        spec = session.scalars(select(Job.spec).where(Job.name == running_name)).one()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per seeded study
    rng = random.Random(0)
    oldest = utcnow() - timedelta(days=1)
    for i in range(jobs):
        name = f"load-done-{i:03d}"
        study = optuna.create_study(storage=optuna_storage, study_name=name,
                                    directions=list(DIRECTIONS))
        study.add_trials([_copy(template, rng, failed=n % 10 == 9) for n in range(trials)])
        created = oldest + timedelta(minutes=i)
        with db.session() as session:
            session.add(Job(name=name, spec=spec, trials=trials, status="succeeded", attempts=1,
                            created_at=created, started_at=created,
                            finished_at=created + timedelta(minutes=1)))
    db.dispose()


async def _load(url: str, paths: dict[str, str], *, clients: int, requests: int,
                seconds: float) -> tuple[dict[str, list[float]], list[str]]:
    """``clients`` concurrent clients, each taking the ``paths`` in turn from its own start."""
    names = list(paths)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    errors: list[str] = []
    issued = 0
    deadline = time.monotonic() + seconds
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends: a request sent on a
    # connection as the server closes it fails with a ReadError.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients,
                          keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one_client(index: int) -> None:
            nonlocal issued
            turn = index
            while issued < requests and time.monotonic() < deadline:
                issued += 1
                name = names[turn % len(names)]
                turn += 1
                started = time.perf_counter()
                try:
                    response = await client.get(paths[name])
                except httpx.TransportError as e:
                    errors.append(f"{name}: {type(e).__name__}")
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    errors.append(f"{name}: {response.status_code}")
                latencies[name].append(elapsed)

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return latencies, errors


def _report(what: str, result: dict[str, list[float]], errors: list[str], wall: float) -> None:
    total = sum(len(v) for v in result.values())
    print(f"  {what}: {total} requests in {wall:.1f} s ({total / wall:.0f} req/s), "
          f"{len(errors)} errors {dict(Counter(errors))}")
    for name, values in result.items():
        ms = [1000 * v for v in values]
        print(f"    GET {name:<9} n={len(ms):5d}  p50 {_percentile(ms, 50):7.1f} ms  "
              f"p99 {_percentile(ms, 99):7.1f} ms  max {max(ms):7.1f} ms")


def _start(args: list[str], *, storage: str, workdir: Path, env: dict[str, str], log: str
           ) -> subprocess.Popen[bytes]:
    with (workdir / log).open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "service.cli", *args, "--storage", storage],
                                cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the database in all")
    parser.add_argument("--trials-per-job", type=int, default=20,
                        help="trials of each finished job's study")
    parser.add_argument("--worker-threads", default="1",
                        help="torch threads of the worker (AUTOQ_THREADS; the API keeps a core)")
    parser.add_argument("--storage", help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="autoq-load-"))
    storage = args.storage or f"sqlite:///{workdir / 'load.db'}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AUTOQ_DATA_ROOT": str(workdir),
           "AUTOQ_CACHE_DIR": os.environ.get("AUTOQ_CACHE_DIR", str(workdir / "cache"))}
    env.pop("AUTOQ_API_TOKEN", None)
    server = _start(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "0"],
                    storage=storage, workdir=workdir, env=env, log="serve.log")
    processes = [server]
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            _wait(client, lambda c: c.get("/readyz").status_code == 200, "the server", 120)
            created = client.post("/api/v1/searches", json={
                "space": "burgers-fno-small", "name": "load-running", "trials": 200,
                "overrides": OVERRIDES}).json()
            processes.append(_start(["worker"], storage=storage, workdir=workdir,
                                    env={**env, "AUTOQ_THREADS": args.worker_threads},
                                    log="worker.log"))
            search = f"/api/v1/searches/{created['id']}"

            def completed(c: httpx.Client) -> int:
                return c.get(search).json()["trials"]["complete"]

            _wait(client, completed, "a first complete trial", 300)
            seeding = time.perf_counter()
            _seed_finished_jobs(storage, created["name"], jobs=args.jobs - 1,
                                trials=args.trials_per_job)
            seeded = time.perf_counter() - seeding
            before = completed(client)
            load = {"pareto": f"{search}/pareto", "searches": "/api/v1/searches"}
            load_before = _load_average()
            phases = {}
            for what, paths, clients in (
                    ("one client (the cost of a request)", load, 1),
                    (f"{args.clients} clients", load, args.clients),
                    (f"{args.clients} clients, the floor", {"healthz": "/healthz"},
                     args.clients)):
                started = time.perf_counter()
                result, errors = asyncio.run(_load(url, paths, clients=clients,
                                                   requests=args.requests,
                                                   seconds=args.seconds))
                phases[what] = (result, errors, time.perf_counter() - started)
            load_after = _load_average()
            job = client.get(search).json()
            listed = client.get("/api/v1/searches").json()["count"]
            client.post(f"{search}/cancel")
        print(f"service load: {args.clients} clients, storage {storage.split(':')[0]}; API only "
              f"(--workers 0) and one worker process ({args.worker_threads} torch thread(s)) "
              f"running a search")
        print(f"  {listed} jobs ({args.jobs - 1} finished with {args.trials_per_job} trials each, "
              f"seeded in {seeded:.0f} s); load average (1, 5, 15 min) before {load_before}, "
              f"after {load_after}")
        for what, (result, errors, wall) in phases.items():
            _report(what, result, errors, wall)
        print(f"  search during the load: {job['status']}, complete trials {before} → "
              f"{job['trials']['complete']}")
    finally:
        _stop(processes)


if __name__ == "__main__":
    main()
