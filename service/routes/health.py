"""Liveness and readiness (outside ``/api/v1``, where orchestrators look for them)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from service.deps import DatabaseDep
from service.errors import UnavailableError
from service.schemas import ErrorBody, Status

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Status:
    """The process is up."""
    return Status(status="ok")


@router.get("/readyz", responses={503: {"model": ErrorBody}})
def readyz(db: DatabaseDep) -> Status:
    """The database answers."""
    try:
        db.ping()
    except SQLAlchemyError as e:
        raise UnavailableError(f"database unreachable: {type(e).__name__}",
                          loc=("settings", "storage")) from e
    return Status(status="ok")
