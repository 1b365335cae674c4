"""What a trial's ``timings`` charge to ``float``: every float model the trial needs, so that a
benchmark that subtracts it from the trial's duration is left with the trial's own work."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from autoq.search import parse_spec
from autoq.search.trial import TrialRunner
from autoq.train import FloatModel, FloatModelCache


class _TimedCache(FloatModelCache):
    """A float-model cache that adds up the seconds spent getting models (trained or loaded)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.seconds = 0.0
        self.scales: list[float] = []

    def get(self, *args: Any, **kwargs: Any) -> FloatModel:
        started = time.perf_counter()
        model = super().get(*args, **kwargs)
        self.seconds += time.perf_counter() - started
        self.scales.append(kwargs["scale"])
        return model


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_float_timing_covers_every_float_model_the_trial_needs(
        tiny_spec_payload: dict[str, Any], tmp_path: Path, scale: float) -> None:
    cache = _TimedCache(tmp_path / "float")
    runner = TrialRunner(parse_spec(tiny_spec_payload), cache=cache)
    config = runner.space.config(scale, {group: (8, 8) for group in runner.space.groups})
    result = runner.run(config)
    # A first trial below full resolution trains the full-resolution reference as well.
    assert sorted(cache.scales) == sorted({scale, 1.0})
    assert result.timings["float"] >= cache.seconds > 0
    assert result.float_reference == runner.float_error(1.0)
    assert result.float_mse == runner.float_error(scale)
