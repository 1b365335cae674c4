"""``autoq serve`` and ``autoq worker``: subcommands the ``autoq`` command loads (entry-point
group ``autoq.commands``), and ``python -m service.cli serve|worker`` without it."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from autoq.errors import AutoqError
from autoq.extras import require
from service.config import Settings, get_settings

# What each command imports from the ``service`` extra, checked before anything imports it so
# that without the extra the user gets one line naming it, not a traceback.
_SERVE_NEEDS = ("fastapi", "uvicorn", "alembic", "optuna_dashboard", "a2wsgi")
_WORKER_NEEDS = ("fastapi", "alembic")


def _require_service(feature: str, modules: Sequence[str]) -> None:
    for module in modules:
        require(module, extra="service", feature=feature)


def _setup_logging() -> None:
    # Our INFO lines (jobs claimed, finished) yes; AIMET's per-trial chatter no.
    from autoq.quant import quiet_aimet_logs

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("service").setLevel(logging.INFO)
    quiet_aimet_logs()


def _settings(storage: str | None) -> Settings:
    settings = get_settings()
    return settings if storage is None else settings.model_copy(update={"storage": storage})


def _cmd_serve(args: argparse.Namespace) -> int:
    _require_service("autoq serve", _SERVE_NEEDS)

    import uvicorn

    from service.app import create_app

    _setup_logging()
    app = create_app(_settings(args.storage), workers=args.workers)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def add_serve(sub: argparse._SubParsersAction) -> None:
    """Add ``serve``: the REST API, in-process workers and optuna-dashboard on one port."""
    p = sub.add_parser("serve", help="REST API, in-process job workers, optuna-dashboard")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--storage", help="SQLAlchemy URL (default: $AUTOQ_STORAGE or "
                                     "sqlite:///autoq.db)")
    p.add_argument("--workers", type=int, default=1,
                   help="job workers in this process (0: API only, jobs run by `autoq worker`)")
    p.set_defaults(run=_cmd_serve)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # SIGTERM (docker stop) ends the worker like Ctrl-C: its job goes back to the queue now
    # rather than after a heartbeat timeout.
    raise KeyboardInterrupt


def _cmd_worker(args: argparse.Namespace) -> int:
    _require_service("autoq worker", _WORKER_NEEDS)

    from service.db import Database
    from service.worker import JobWorker, StaleJobSweeper, until_done

    _setup_logging()
    settings = _settings(args.storage)
    db = Database(settings.storage)
    worker = JobWorker(db, settings)
    signal.signal(signal.SIGTERM, _interrupt)
    logging.getLogger("service.cli").info("worker %s on %s", worker.name, db.engine.url)
    sweeper: StaleJobSweeper | None = None
    try:
        # A worker started while the database is down waits for it.
        until_done(db.migrate, stop=worker.stop, what="migrating the database")
        sweeper = StaleJobSweeper(db, settings).start()
        worker.run()
    except KeyboardInterrupt:
        worker.release()
        return 130
    finally:
        if sweeper is not None:
            sweeper.stop()
        db.dispose()
    return 0


def add_worker(sub: argparse._SubParsersAction) -> None:
    """Add ``worker``: run queued searches from a shared (PostgreSQL) database."""
    p = sub.add_parser("worker", help="run queued searches from a shared database")
    p.add_argument("--storage", help="SQLAlchemy URL (default: $AUTOQ_STORAGE or "
                                     "sqlite:///autoq.db)")
    p.set_defaults(run=_cmd_worker)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m service.cli serve|worker …``."""
    parser = argparse.ArgumentParser(prog="autoq")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve(sub)
    add_worker(sub)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except AutoqError as e:  # as the autoq command reports them
        print(f"autoq: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
