"""The autoq error family.

Every error autoq raises on purpose derives from :class:`AutoqError`, so callers (the CLI, the
REST service) can map them to a clear message in one place. Errors about bad input also derive from
:class:`ValueError` and say which file, key or argument is wrong.
"""

from __future__ import annotations


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
