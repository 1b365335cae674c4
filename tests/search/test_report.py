"""The Pareto table shows what a search measured: a rank column in a search over ranks, latency
and speed-up once ``autoq latency`` has timed the trials; the REST shape carries the same."""

from __future__ import annotations

from typing import Any

from autoq.search.records import DEPLOYED_ERROR_ATTR, LATENCY_ATTR, TrialPoint
from autoq.search.report import pareto_table, trials_table

LATENCY = {"runtime": "onnxruntime-cpu", "threads": 1, "batch": 1, "machine": "test",
           "median_s": 0.0025, "spread_s": 0.0001, "runs": 20, "float_median_s": 0.01,
           "speedup": 4.0}


def _point(number: int, *, rank: float | None = None, **details: Any) -> TrialPoint:
    return TrialPoint(number=number, state="COMPLETE", mse=1e-3 * (number + 1),
                      cost=1e6 / (number + 1), scale=0.5, bits={"a": [8, 8], "b": "float"},
                      details=details, rank=rank)


def test_table_has_a_rank_column_only_in_a_search_over_ranks() -> None:
    plain = pareto_table([_point(0), _point(1)])
    assert "rank" not in plain.splitlines()[0]
    ranked = pareto_table([_point(0, rank=0.5), _point(1, rank=0.05)])
    header, _, first, second = ranked.splitlines()
    assert "rank" in header.split()
    assert "0.5" in first.split() and "0.05" in second.split()
    assert "rank" in trials_table([_point(0, rank=0.5)]).splitlines()[0]


def test_table_shows_measured_latency_and_speedup() -> None:
    untimed = pareto_table([_point(0)])
    assert "latency" not in untimed
    table = pareto_table([_point(0, **{LATENCY_ATTR: LATENCY}), _point(1)])
    header, _, timed, blank = table.splitlines()
    assert "latency (ms)" in header and "speed-up" in header
    assert "2.5" in timed.split() and "4.00×" in timed.split()
    assert "4.00×" not in blank and "2.5" not in blank.split()


def test_rest_trial_shape_carries_rank_latency_and_deployed_error() -> None:
    from service.schemas import TrialPublic

    point = _point(0, rank=0.5, **{LATENCY_ATTR: LATENCY, DEPLOYED_ERROR_ATTR: 1.0001e-3})
    public = TrialPublic(**point.to_json())
    assert public.rank == 0.5 and public.deployed_error == 1.0001e-3
    assert public.latency is not None and public.latency.speedup == 4.0
    assert TrialPublic(**_point(1).to_json()).latency is None
