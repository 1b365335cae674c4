"""autoq: the cheapest way to run a neural PDE solver at the accuracy you need."""

__version__ = "0.1.0"
"""The one version string: the package metadata, ``autoq --version`` and the REST API's
OpenAPI document read it from here."""
