"""The autoq error family.

Every error autoq raises on purpose derives from :class:`AutoqError`, so callers (the CLI, the
REST service) can map them to a clear message in one place. Errors about bad input also derive from
:class:`ValueError` and say which file, key or argument is wrong.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class AutoqError(Exception):
    """Base class of every error autoq raises on purpose."""


class SpecError(AutoqError, ValueError):
    """A search space, config or argument is invalid; the message names the key."""


class DataError(AutoqError, ValueError):
    """A data file is missing, or its keys or shapes are not a known layout."""


class QuantizationError(AutoqError, ValueError):
    """A quantization request cannot be honoured (unknown layer, unsupported bitwidth)."""


class TrialError(AutoqError):
    """A trial could not produce a result (e.g. its loss became NaN)."""


class SettingsError(AutoqError, ValueError):
    """An ``AUTOQ_*`` environment variable has a value autoq cannot use."""


def describe_validation_error(error: ValidationError, *, prefix: str = "",
                              union_tags: Collection[str] = (),
                              tag_choices: Collection[str] | None = None,
                              env_prefix: str | None = None) -> str:
    """Every problem of a pydantic error as ``key.path: message``, joined by ``; ``.

    The one formatter of validation errors (specs, model configs, settings). ``union_tags`` are
    the discriminator values of tagged unions: pydantic puts them in the path
    (``model.fno.width``), the user wrote none (``model.width``); ``tag_choices`` are the values
    a user may write for the discriminator (default: ``union_tags``). With ``env_prefix`` the
    key is the environment variable a settings field is read from (``AUTOQ_THREADS``).
    """
    parts = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"] if str(p) not in union_tags]
        # A validator's own ValueError already says what is wrong, without pydantic's prefix.
        message = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            discriminator = str(item.get("ctx", {}).get("discriminator", "arch")).strip("'")
            loc.append(discriminator)
            known = sorted(union_tags if tag_choices is None else tag_choices)
            message = (f"must be one of {known}, got {item['ctx']['tag']!r}"
                       if item["type"] == "union_tag_invalid" else
                       f"missing; must be one of {known}")
        if env_prefix is not None:
            key = env_prefix + "_".join(loc).upper()
        else:
            key = ".".join(([prefix] if prefix else []) + loc) or "(root)"
        parts.append(f"{key}: {message}")
    return "; ".join(parts)
