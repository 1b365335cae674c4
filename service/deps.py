"""Typed dependencies of the routes: settings, database session, Optuna storage, token check."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from optuna.storages import BaseStorage
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import Database
from service.errors import UnauthorizedError


def get_app_settings(request: Request) -> Settings:
    """The settings the app was made with (the CLI may have overridden the environment's)."""
    return request.app.state.settings


def get_database(request: Request) -> Database:
    """The app's database."""
    return request.app.state.db


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]


def get_session(db: DatabaseDep) -> Iterator[Session]:
    """A session committed when the route returns (before the response is sent)."""
    with db.session() as session:
        yield session


def get_storage(db: DatabaseDep) -> BaseStorage:
    """Optuna's storage on the app's database."""
    return db.optuna_storage()


_bearer = HTTPBearer(auto_error=False, description="required when AUTOQ_API_TOKEN is set")


def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse a mutating request without ``Authorization: Bearer <AUTOQ_API_TOKEN>`` (when a
    token is configured)."""
    if settings.api_token is None:
        return
    expected = settings.api_token.get_secret_value().encode()
    given = b"" if credentials is None else credentials.credentials.encode()
    if not secrets.compare_digest(given, expected):
        raise UnauthorizedError("missing or wrong bearer token", loc=("header", "Authorization"))


# The session commits before the response goes out, so a client that reads right after a
# write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
StorageDep = Annotated[BaseStorage, Depends(get_storage)]
TokenDep = Depends(require_token)
