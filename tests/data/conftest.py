"""Fixtures of the data tests."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

PeakBytes = Callable[[Callable[[], Any]], tuple[Any, int]]


@pytest.fixture
def peak_bytes() -> PeakBytes:
    """``peak_bytes(read)``: ``read()`` and the peak of the Python/numpy memory it allocated,
    to check that a selection reads only what it keeps."""

    def measure(read: Callable[[], Any]) -> tuple[Any, int]:
        tracemalloc.start()
        try:
            result = read()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return result, peak

    return measure
