"""``autoq serve`` and ``autoq worker``: the contract's flags, through the ``autoq`` parser that
loads them from the ``autoq.commands`` entry points, and through ``service.cli`` directly."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from autoq.cli import build_parser
from service.cli import add_serve, add_worker


def _service_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoq")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve(sub)
    add_worker(sub)
    return parser


@pytest.mark.parametrize("make_parser", [_service_parser, build_parser],
                         ids=["service.cli", "autoq"])
def test_serve_and_worker_take_the_contract_flags(
    make_parser: Callable[[], argparse.ArgumentParser],
) -> None:
    parser = make_parser()
    serve = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "9000", "--storage",
                               "postgresql+psycopg://db/autoq", "--workers", "3"])
    assert (serve.host, serve.port, serve.storage, serve.workers) == (
        "0.0.0.0", 9000, "postgresql+psycopg://db/autoq", 3)
    defaults = parser.parse_args(["serve"])
    assert (defaults.host, defaults.port, defaults.storage, defaults.workers) == (
        "127.0.0.1", 8000, None, 1)
    worker = parser.parse_args(["worker", "--storage", "sqlite:///jobs.db"])
    assert worker.storage == "sqlite:///jobs.db"
    assert callable(serve.run) and callable(worker.run) and serve.run is not worker.run
