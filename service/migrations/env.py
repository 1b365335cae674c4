"""Alembic environment of the service's tables.

Run from code (:meth:`service.db.Database.migrate` hands over a connection) or from the command
line (``alembic -c service/alembic.ini upgrade head``, URL from ``AUTOQ_STORAGE``). Optuna keeps
its own tables and ``alembic_version`` in the same database: ours use ``autoq_alembic_version``,
and autogenerate looks only at ``autoq_*`` tables so it never proposes dropping Optuna's.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, text

from service.config import get_settings
from service.db import VERSION_TABLE
from service.models import Base

# Any constant works; it only has to be the same for every process migrating this database.
_PG_MIGRATION_LOCK = 0x6175_746F_71


def _ours(name: str | None, type_: str, _parent_names: object) -> bool:
    return type_ != "table" or (name or "").startswith("autoq_")


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # An API and a worker starting together must not both create the tables.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": _PG_MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=Base.metadata,
                      version_table=VERSION_TABLE, include_name=_ours)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url")
                           or get_settings().storage)
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


_main()
