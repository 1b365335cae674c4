"""autoq: the cheapest way to run a neural PDE solver at the accuracy you need.

The Python API, on the same engine as the ``autoq`` command and the REST service::

    import autoq

    result = autoq.search("burgers-fno-small", trials=20)   # a YAML file, a bundled name, a dict
    result.pareto()                                        # feasible trials, sorted by cost
    result.pick(max_ratio=1.1)                             # cheapest within 1.1 × float error

Bring your own model (``model=``: an ``nn.Module``, a factory, or a config), data
(``dataset=autoq.from_arrays(...)``) and metric (``metric=``): see :func:`autoq.api.search`.
``import autoq`` is light: names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from autoq._lazy import lazy_exports

__version__ = "0.1.0"
"""The one version string: the package metadata, ``autoq --version`` and the REST API's
OpenAPI document read it from here."""

if TYPE_CHECKING:
    from autoq import search
    from autoq.api import SearchResult, load
    from autoq.data import PDEData, from_arrays
    from autoq.models.config import FactoryConfig

__all__ = ["FactoryConfig", "PDEData", "SearchResult", "from_arrays", "load", "search"]

_SOURCES = {
    "FactoryConfig": "autoq.models.config",
    "PDEData": "autoq.data",
    "SearchResult": "autoq.api",
    "from_arrays": "autoq.data",
    "load": "autoq.api",
}

_attribute, __dir__ = lazy_exports(__name__, _SOURCES, __all__)


def __getattr__(name: str) -> Any:
    if name == "search":  # the subpackage, callable as the API's entry point
        return importlib.import_module("autoq.search")
    return _attribute(name)
