"""Service latency under load: p50/p99 of GET …/pareto and GET /searches while a search runs.

Usage: python benchmarks/service_load.py [--clients 50] [--requests 3000] [--seconds 90]
                                         [--storage URL]
Starts ``autoq serve`` (one in-process worker) on a free loopback port with a fresh SQLite file
(or ``--storage``), submits the bundled ``burgers-fno-small`` space with small overrides and a
few more searches that stay queued, waits for the first complete trial, then has ``--clients``
concurrent httpx clients alternate the two GETs until ``--requests`` are done or ``--seconds``
pass. Prints per-endpoint p50/p99 latency, throughput and errors, and the trials the search
finished during the load (it must keep running).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

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


async def _load(url: str, search_id: str, *, clients: int, requests: int, seconds: float
                ) -> tuple[dict[str, list[float]], list[str]]:
    paths = {"pareto": f"/api/v1/searches/{search_id}/pareto", "searches": "/api/v1/searches"}
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    errors: list[str] = []
    issued = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one_client(index: int) -> None:
            nonlocal issued
            turn = index
            while issued < requests and time.monotonic() < deadline:
                issued += 1
                name = "pareto" if turn % 2 == 0 else "searches"
                turn += 1
                started = time.perf_counter()
                response = await client.get(paths[name])
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    errors.append(f"{name}: {response.status_code}")
                latencies[name].append(elapsed)

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--storage", help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="autoq-load-"))
    storage = args.storage or f"sqlite:///{workdir / 'load.db'}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AUTOQ_DATA_ROOT": str(workdir),
           "AUTOQ_CACHE_DIR": os.environ.get("AUTOQ_CACHE_DIR", str(workdir / "cache"))}
    env.pop("AUTOQ_API_TOKEN", None)
    log = (workdir / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--storage", storage, "--workers", "1"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            _wait(client, lambda c: c.get("/readyz").status_code == 200, "the server", 120)
            created = client.post("/api/v1/searches", json={
                "space": "burgers-fno-small", "name": "load-running", "trials": 200,
                "overrides": OVERRIDES}).json()
            for i in range(9):
                client.post("/api/v1/searches", json={
                    "space": "burgers-fno-small", "name": f"load-queued-{i}",
                    "overrides": OVERRIDES})
            search = f"/api/v1/searches/{created['id']}"

            def completed(c: httpx.Client) -> int:
                return c.get(search).json()["trials"]["complete"]

            before = _wait(client, completed, "a first complete trial", 300)
            started = time.perf_counter()
            result, errors = asyncio.run(_load(url, created["id"], clients=args.clients,
                                       requests=args.requests, seconds=args.seconds))
            wall = time.perf_counter() - started
            job = client.get(search).json()
            client.post(f"{search}/cancel")
        total = sum(len(v) for v in result.values())
        print(f"service load: {args.clients} clients, {total} requests in {wall:.1f} s "
              f"({total / wall:.0f} req/s), {len(errors)} errors, storage "
              f"{storage.split(':')[0]}, a search running in the same process")
        for name, values in result.items():
            ms = [1000 * v for v in values]
            print(f"  GET {name:<9} n={len(ms):5d}  p50 {_percentile(ms, 50):7.1f} ms  "
                  f"p99 {_percentile(ms, 99):7.1f} ms  max {max(ms):7.1f} ms")
        print(f"  search during the load: {job['status']}, complete trials {before} → "
              f"{job['trials']['complete']}")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


if __name__ == "__main__":
    main()
