"""The database: our engine and sessions, Optuna's storage on the same URL, migrations.

Nothing connects at import: a :class:`Database` makes its engine and Optuna storage on first use,
so the app starts (and ``/readyz`` can say so) before the database answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from alembic import command
from alembic.config import Config
from optuna.storages import BaseStorage
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from autoq.search.storage import rdb_storage

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "autoq_alembic_version"
SQLITE_BUSY_SECONDS = 30


def engine_options(url: str) -> dict[str, Any]:
    """``create_engine`` keywords for ``url``: SQLite waits for the writer lock instead of
    failing at once (API, workers and Optuna share one file); PostgreSQL gets a pool sized for
    the API's thread pool."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    return {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the API, the dashboard) proceed while a worker writes a trial.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class Database:
    """One SQL database shared by the service's tables and Optuna's studies.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///autoq.db`` or
            ``postgresql+psycopg://user@host:5432/autoq``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._storage: BaseStorage | None = None

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql``, …"""
        return make_url(self.url).get_backend_name()

    def _connect(self) -> tuple[Engine, sessionmaker[Session]]:
        with self._lock:
            if self._engine is None or self._sessions is None:
                self._engine = create_engine(self.url, **engine_options(self.url))
                if self.dialect == "sqlite":
                    event.listen(self._engine, "connect", _sqlite_wal)
                self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            return self._engine, self._sessions

    @property
    def engine(self) -> Engine:
        """Our engine, created on first use."""
        return self._connect()[0]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back (and re-raises) on error."""
        with self._connect()[1]() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        """Run ``SELECT 1``; raises if the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def optuna_storage(self) -> BaseStorage:
        """Optuna's storage on the same database, for reading studies (cached, shared by the
        API and the dashboard)."""
        with self._lock:
            if self._storage is None:
                rdb = rdb_storage(self.url, engine_kwargs=engine_options(self.url))
                self._storage = optuna.storages.get_storage(rdb)
            return self._storage

    def migrate(self) -> None:
        """Bring our tables to the newest migration (Alembic, own version table)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
