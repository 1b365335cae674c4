"""Lazy package attributes (PEP 562): a package names what it exports, and each name is imported
from its submodule on first use, so importing the package stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, sources: Mapping[str, str], exported: Sequence[str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__``.
        sources: each public name → the module defining it, relative to the package
            (``"registry"``) or absolute (``"autoq.search.records"``).
        exported: the package's ``__all__``.
    """
    namespace = importlib.import_module(package).__dict__

    def attribute(name: str) -> Any:
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        source = sources[name]
        module = source if source.startswith("autoq.") else f"{package}.{source}"
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def listing() -> list[str]:
        return sorted({*namespace, *exported})

    return attribute, listing
