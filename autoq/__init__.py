"""autoq: the cheapest way to run a neural PDE solver at the accuracy you need."""

__version__ = "0.1.0"
