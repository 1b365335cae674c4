"""Errors as JSON: every error body is ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``.

``loc`` names the field (``["body", "spec", "space", "weight_bits", 0]``,
``["query", "max_mse"]``, ``["header", "Authorization"]``), as FastAPI's own 422s do. The
service's errors are :class:`~autoq.errors.AutoqError`\\ s carrying their status and field, and
one handler turns every ``AutoqError`` into a response.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
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


def error_item(loc: Loc, msg: str, kind: str) -> dict[str, Any]:
    """One entry of an error body's ``detail`` list."""
    return {"loc": list(loc), "msg": msg, "type": kind}


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


class UnavailableError(ServiceError):
    """The database does not answer."""

    status_code = 503
    kind = "unavailable"


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
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else None
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)
    status = 422 if isinstance(exc, ValueError) else 400
    return JSONResponse({"detail": [error_item([], str(exc), type(exc).__name__)]},
                        status_code=status)


def _request_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [_located(e, ()) for e in exc.errors()]
    return JSONResponse({"detail": items}, status_code=422)


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 lists the methods of the first route on the path only; a path served by
    # several routes (GET and POST /searches) takes all of theirs.
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return JSONResponse({"detail": [error_item([], str(exc.detail), "http_error")]},
                        status_code=exc.status_code, headers=headers)


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": [error_item([], "internal server error", "internal")]},
                        status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies for our errors, request validation, HTTP errors and anything unexpected."""
    app.add_exception_handler(AutoqError, _autoq_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
