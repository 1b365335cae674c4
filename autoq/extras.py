"""Optional dependencies: import one, or say which extra of autoq installs it.

autoq's core (data, models, quantization, cost, searches on SQLite) needs only the packages in
``[project] dependencies``. The rest comes with extras (``pyproject.toml``):

- ``service``: ``autoq serve`` and ``autoq worker`` (fastapi, uvicorn, psycopg, alembic,
  optuna-dashboard, a2wsgi);
- ``ray``: searches whose executor is ``ray`` (``ray[tune]``).

Code that needs one of them imports it through :func:`require`, at the moment it is needed,
so that a user without the extra gets one clear line instead of a traceback::

    fastapi = require("fastapi", extra="service", feature="autoq serve")

This module imports nothing heavy: the CLI may load it before it knows the command.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from autoq.errors import AutoqError

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(AutoqError, ImportError):
    """A feature needs an optional dependency that is not installed.

    Also an :class:`ImportError`, so code that guards an import with ``except ImportError``
    keeps working. The message names the feature, the missing module and the extra to install.

    Attributes:
        module: the module the feature imports (``fastapi``).
        missing: the module that could not be found: ``module``, one of its parent packages, or a
            dependency of it (an extra installed only in part).
        extra: the extra of autoq that installs it (``service``).
        feature: what needs it, as the user asked for it (``autoq serve``).
    """

    def __init__(self, *, module: str, missing: str, extra: str, feature: str) -> None:
        what = (f"{missing} is not installed" if missing == module
                or module.startswith(missing + ".")
                else f"{missing}, needed by {module}, is not installed")
        super().__init__(f"{feature} needs the {extra!r} extra ({what}): "
                         f"pip install 'autoq[{extra}]'", name=missing)
        self.module = module
        self.missing = missing
        self.extra = extra
        self.feature = feature

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments: rebuild from them (errors cross process boundaries in workers).
        return (_rebuild, (self.module, self.missing, self.extra, self.feature))


def _rebuild(module: str, missing: str, extra: str, feature: str) -> MissingExtraError:
    return MissingExtraError(module=module, missing=missing, extra=extra, feature=feature)


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (dotted names too) and return it.

    Args:
        module: the module to import, e.g. ``"fastapi"`` or ``"ray.tune"``.
        extra: the extra of autoq that installs it, e.g. ``"service"``.
        feature: what needs it, for the message, e.g. ``"autoq serve"``.

    Returns:
        The imported module (from ``sys.modules`` when it was imported before).

    Raises:
        MissingExtraError: the module, a parent package of it or one of its own dependencies is
            not installed. The original :class:`ModuleNotFoundError` is its ``__cause__``.
            Other import failures (an installed package that is broken or of the wrong version)
            propagate unchanged: installing the extra would not fix them.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = error.name or module
        raise MissingExtraError(module=module, missing=missing, extra=extra,
                                feature=feature) from error
