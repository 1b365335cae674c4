"""The FastAPI app: REST API under ``/api/v1``, health checks, optuna-dashboard at
``/dashboard``, all on one port.

optuna-dashboard's routes are absolute (``/dashboard``, ``/api/studies``, ``/static/…``), so it
sits at ``/`` behind our routes and serves whatever path they do not match. Create the app with
:func:`create_app`; nothing connects to the database before the first request or startup.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import optuna_dashboard
from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi_typing import WSGIApp
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autoq import __version__
from autoq.search import bundled_spaces
from service.config import Settings, get_settings
from service.db import Database
from service.errors import (
    BodyTooLargeError,
    body_too_large_message,
    error_response,
    install_error_handlers,
)
from service.routes import api_router, health
from service.worker import StaleJobSweeper, WorkerPool

API_PREFIX = "/api/v1"
_DASHBOARD_API = "/api/"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with a 413, by their ``Content-Length`` or,
    for streamed bodies, as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            response = error_response(413, ["body"], body_too_large_message(self.max_bytes),
                                      "too_large")
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > self.max_bytes:
                # Answered by the app's handler of HTTP errors, in the same shape as above.
                raise BodyTooLargeError(self.max_bytes)
            return event

        await self.app(scope, counted, send)


class Dashboard:
    """optuna-dashboard on the app's storage, built on its first request: the app's fallback
    for every path our routes do not match (except under ``/api/v1``: a JSON 404). With an
    API token configured, requests that change something (notes, deleting studies) need the
    token too. While the database does not answer, its API answers a 503 like ours."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.token = settings.api_token
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    def _dashboard(self) -> ASGIApp:
        with self._lock:
            if self._app is None:
                self._app = _asgi(optuna_dashboard.wsgi(self.db.optuna_storage()))
            return self._app

    def _allowed(self, scope: Scope) -> bool:
        if self.token is None or scope.get("method") in _SAFE_METHODS:
            return True
        given = dict(scope["headers"]).get(b"authorization", b"")
        expected = b"Bearer " + self.token.get_secret_value().encode()
        return secrets.compare_digest(given, expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and f"{scope['path']}/".startswith(API_PREFIX + "/"):
            # An /api/v1 path none of our routes matched: a JSON 404, not the dashboard's page.
            response = error_response(404, [], f"no route {scope['path']}", "http_error")
            await response(scope, receive, send)
            return
        if scope["type"] == "http" and not self._allowed(scope):
            response = error_response(401, ["header", "Authorization"],
                                      "missing or wrong bearer token", "unauthorized",
                                      headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"].startswith(_DASHBOARD_API):
            # The dashboard answers its own database errors with a 500 page: a ping first lets
            # an outage raise here, where the app's handler answers it with a 503.
            await run_in_threadpool(self.db.ping)
        # Building the dashboard opens Optuna's storage: off the event loop, once.
        app = self._app
        if app is None:
            app = await run_in_threadpool(self._dashboard)
        await app(scope, receive, send)


def _asgi(wsgi_app: WSGIApp) -> ASGIApp:
    """A WSGI app (optuna-dashboard's) as an ASGI app, through a2wsgi."""
    # a2wsgi types ASGI scopes and messages as TypedDicts, Starlette as mappings: one protocol,
    # two incompatible typings (abersheeran/a2wsgi#44).
    return WSGIMiddleware(wsgi_app)  # type: ignore[return-value]


def create_app(settings: Settings | None = None, *, workers: int = 0) -> FastAPI:
    """The service app.

    Args:
        settings: defaults to :func:`~service.config.get_settings`.
        workers: job workers to run on threads of this process while the app runs.
    """
    settings = settings or get_settings()
    db = Database(settings.storage)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(db.migrate)
        pool = WorkerPool(db, settings, count=workers)
        pool.start()
        sweeper = StaleJobSweeper(db, settings).start()
        yield
        sweeper.stop()
        await run_in_threadpool(pool.shutdown)
        db.dispose()

    app = FastAPI(
        title="autoq",
        summary="The cheapest quantized, rescaled neural PDE solver under an MSE bound.",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(api_router, prefix=API_PREFIX)

    # The router's fallback rather than a mount at "/": a mount would match every path first,
    # and a method our route does not take would get the dashboard's 404 instead of a 405.
    app.router.default = Dashboard(db, settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.openapi = _with_server_choices(app.openapi, settings)  # type: ignore[method-assign]
    return app


# Where each limit applies in the OpenAPI document: (component, property) → the setting.
_LIMITED_PROPERTIES = {
    ("BundledSearchCreate", "trials"): "limit_trials",
    ("InlineSearchCreate", "trials"): "limit_trials",
    ("SearchSettings", "trials"): "limit_trials",
    ("SearchSettings", "timeout"): "limit_job_seconds",
    ("GenerateSpec", "samples"): "limit_samples",
    ("GenerateSpec", "resolution"): "limit_resolution",
    ("GenerateSpec", "frames"): "limit_frames",
    ("TrainConfig", "epochs"): "limit_train_epochs",
    ("TrainConfig", "rescale_epochs"): "limit_train_epochs",
    ("FactoryConfig", "finetune_epochs"): "limit_train_epochs",
    ("QATConfig", "epochs"): "limit_qat_epochs",
}


def _with_server_choices(build: Callable[[], dict[str, Any]], settings: Settings
                         ) -> Callable[[], dict[str, Any]]:
    """``build`` of the OpenAPI document, plus what this server accepts beyond the models:
    the bundled spaces as the enum of ``space``, and each limit as its field's ``maximum``."""
    names = sorted(bundled_spaces(settings.search_spaces))

    def openapi() -> dict[str, Any]:
        document = build()  # cached by FastAPI: the changes below are made once
        components = document["components"]["schemas"]
        components["BundledSearchCreate"]["properties"]["space"]["enum"] = names
        for (component, name), setting in _LIMITED_PROPERTIES.items():
            if component in components:
                _set_maximum(components[component]["properties"][name],
                             getattr(settings, setting))
        return document

    return openapi


def _set_maximum(schema: dict[str, Any], maximum: float) -> None:
    """``maximum`` on a numeric property's schema, or on its numeric choice when nullable."""
    for choice in schema.get("anyOf", [schema]):
        if choice.get("type") in ("integer", "number"):
            choice["maximum"] = maximum
