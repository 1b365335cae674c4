"""The service's own table: search jobs. Optuna's tables hold the studies and their trials.

Optuna's RDB storage owns generic table names (``studies``, ``trials``, …) and Alembic's default
version table in the same database, so ours carry an ``autoq_`` prefix. A job records only what
Optuna does not: the request, the queue state, who runs it and since when. Trial counts and
values are always read from the study.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, CheckConstraint, DateTime, Index, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
"""A job's state (the table's check constraint allows these only)."""
JOB_STATES: tuple[JobStatus, ...] = get_args(JobStatus)
FINAL_STATES: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite keeps no zone, so one is put
    back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the service's tables (and nothing of Optuna's)."""


class Job(Base):
    """A submitted search and its place in the queue.

    Attributes:
        id: the job id (UUID text).
        name: the Optuna study name; unique, so two jobs never write one study.
        spec: the validated spec, data path resolved, as JSON.
        trials: the budget of finished trials.
        status: ``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``.
        cancel_requested: set by ``POST …/cancel``; the worker stops at the next trial boundary.
        error: why the job failed.
        worker: the worker that holds the job while it runs.
        attempts: claims that did not end in a graceful release (more than one: a worker
            died); a job fails when its worker died ``max_attempts`` times.
        created_at, started_at, finished_at: timings; ``started_at`` is the first claim.
        heartbeat_at: the holding worker's last stamp.
    """

    __tablename__ = "autoq_jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATES!r}", name="autoq_jobs_status"),
        Index("autoq_jobs_queue", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    trials: Mapped[int]
    status: Mapped[JobStatus] = mapped_column(String(16), default="queued")
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
