"""Liveness and readiness (outside ``/api/v1``, where orchestrators look for them)."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import DatabaseDep
from service.schemas import Status, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Status:
    """The process is up."""
    return Status(status="ok")


@router.get("/readyz", responses=error_responses(503))
def readyz(db: DatabaseDep) -> Status:
    """The database answers (a 503 with ``Retry-After`` while it does not)."""
    db.ping()
    return Status(status="ok")
