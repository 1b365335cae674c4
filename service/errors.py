"""Errors as JSON: every error body, whatever its status, is
``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``.

``loc`` names the field (``["body", "spec", "space", "weight_bits", 0]``,
``["query", "max_mse"]``, ``["header", "Authorization"]``), as FastAPI's own 422s do, and is
empty when no field is at fault (a database outage, an unknown route). The service's errors are
:class:`~autoq.errors.AutoqError`\\ s carrying their status and field, and one handler turns
every ``AutoqError`` into a response; request validation, HTTP errors, database outages and
anything unexpected get handlers that answer in the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from optuna.exceptions import StorageInternalError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from autoq.errors import AutoqError, SpecError
from autoq.models.registry import UNION_TAGS
from service.schemas import BUNDLED, INLINE

log = logging.getLogger(__name__)

Loc = Sequence[str | int]
# Tags of discriminated unions (model kinds and architectures, submission kinds): pydantic puts
# them in an error's location, but they are not keys of the request.
_UNION_TAGS = {*UNION_TAGS, BUNDLED, INLINE}
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
RETRY_AFTER_SECONDS = 5
"""What a 503 asks clients to wait before trying again (its ``Retry-After`` header)."""


def error_item(loc: Loc, msg: str, kind: str) -> dict[str, Any]:
    """One entry of an error body's ``detail`` list."""
    return {"loc": list(loc), "msg": msg, "type": kind}


def error_response(status: int, loc: Loc, msg: str, kind: str, *,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A response with one problem in the error shape (for code outside the exception
    handlers: middleware and the dashboard fallback)."""
    return JSONResponse({"detail": [error_item(loc, msg, kind)]}, status_code=status,
                        headers=headers)


class ServiceError(AutoqError):
    """An error the API answers with ``status_code`` and a body naming the field.

    Args:
        message: what is wrong, for people.
        loc: the field, e.g. ``("body", "spec", "data", "path")``.
        extra: more top-level keys of the body (e.g. the best trial next to a 404).
        errors: several ``detail`` entries at once (overrides ``message``/``loc``).
    """

    status_code = 400
    kind = "bad_request"
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, message: str, *, loc: Loc = (), extra: dict[str, Any] | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [error_item(loc, message, self.kind)]
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The response body."""
        return {"detail": self.errors, **self.extra}


class InvalidRequestError(ServiceError, SpecError):
    """A request field is invalid (a bad spec, a path outside the data root, a budget too big)."""

    status_code = 422
    kind = "invalid"


class NotFoundError(ServiceError):
    """No such search, search space, or no trial meeting a bound."""

    status_code = 404
    kind = "not_found"


class ConflictError(ServiceError):
    """The request clashes with the current state (a taken name, a finished job)."""

    status_code = 409
    kind = "conflict"


class UnauthorizedError(ServiceError):
    """A mutating request without the right bearer token."""

    status_code = 401
    kind = "unauthorized"
    headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}


class UnavailableError(ServiceError):
    """The database does not answer: clients should retry after ``Retry-After`` seconds."""

    status_code = 503
    kind = "unavailable"
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class BodyTooLargeError(HTTPException):
    """A request body over the size limit, found while it streams in.

    An ``HTTPException`` because FastAPI lets only those through from reading a body (anything
    else becomes a 400 "error parsing the body").
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, body_too_large_message(max_bytes))


def body_too_large_message(max_bytes: int) -> str:
    """The message of a 413, whether the size was declared or counted."""
    return f"request body larger than {max_bytes} bytes (AUTOQ_MAX_REQUEST_BYTES)"


def _located(error: Any, prefix: Loc) -> dict[str, Any]:
    # A bad tag is reported at its key (``arch``).
    loc = [p for p in error["loc"] if p not in _UNION_TAGS]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc.append(str(error.get("ctx", {}).get("discriminator", "arch")).strip("'"))
    return error_item([*prefix, *loc], error["msg"], error["type"])


def validation_errors(error: ValidationError, prefix: Loc) -> list[dict[str, Any]]:
    """A pydantic error as ``detail`` entries, their ``loc`` under ``prefix``."""
    return [_located(item, prefix) for item in error.errors(include_url=False)]


def _autoq_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ServiceError):
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=dict(exc.headers))
    status = 422 if isinstance(exc, ValueError) else 400
    return error_response(status, [], str(exc), type(exc).__name__)


def _request_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    undecodable = next((e for e in errors if e["type"] == "json_invalid"), None)
    if undecodable is not None:
        # Not JSON at all is a malformed request (400), not an invalid field (422).
        at = undecodable["loc"][-1]
        reason = undecodable.get("ctx", {}).get("error", "JSON decode error")
        return error_response(400, ["body"], f"the body is not valid JSON: {reason} at "
                                             f"character {at}", "json_invalid")
    return JSONResponse({"detail": [_located(e, ()) for e in errors]}, status_code=422)


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 names no methods, and FastAPI's routers nest (an included router is one
    # route): ask each route whether it takes each method on this path.
    allowed = {method for method in _METHODS for route in request.app.router.routes
               if route.matches({**request.scope, "method": method})[0] == Match.FULL}
    return ", ".join(sorted(allowed))


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    if exc.status_code == 413:
        return error_response(413, ["body"], str(exc.detail), "too_large", headers=headers)
    # FastAPI raises a 400 for one reason: a body it could not decode.
    loc = ["body"] if exc.status_code == 400 else []
    return error_response(exc.status_code, loc, str(exc.detail), "http_error", headers=headers)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (refused or lost connections, an
    exhausted pool, Optuna's wrapper of those), rather than that a statement was wrong."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    if isinstance(exc, StorageInternalError):
        return exc.__cause__ is None or is_outage(exc.__cause__)
    return False


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_outage(exc):
        return _unexpected_error(request, exc)
    # One line, no traceback: an outage answers every request with this until it ends.
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    unavailable = UnavailableError(
        f"the database does not answer ({type(exc).__name__}); retry in "
        f"{RETRY_AFTER_SECONDS} s")
    return _autoq_error(request, unavailable)


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, [], "internal server error", "internal")


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies for our errors, request validation, HTTP errors, database outages and
    anything unexpected."""
    app.add_exception_handler(AutoqError, _autoq_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for database_error in (DBAPIError, PoolTimeoutError, StorageInternalError):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
