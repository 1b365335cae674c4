"""The Pareto set, the operating point and the hypervolume, held to their definitions."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoq.errors import SpecError
from autoq.search import TrialPoint, hypervolume, operating_point, pareto_front

VALUES = st.integers(min_value=1, max_value=12)


@st.composite
def trial_points(draw: st.DrawFn, *, min_size: int = 0, max_size: int = 12) -> list[TrialPoint]:
    """Trials numbered in order; most complete, some failed or running (no values). Small
    integer values so ties and duplicates happen often."""
    size = draw(st.integers(min_size, max_size))
    points = []
    for number in range(size):
        state = draw(st.sampled_from(["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "RUNNING"]))
        complete = state == "COMPLETE"
        points.append(TrialPoint(
            number=number, state=state,
            mse=float(draw(VALUES)) if complete else None,
            cost=float(draw(VALUES)) if complete else None,
            scale=1.0, bits={}))
    return points


def _dominates(a: TrialPoint, b: TrialPoint) -> bool:
    return (a.mse <= b.mse and a.cost <= b.cost) and (a.mse < b.mse or a.cost < b.cost)


@given(trial_points())
def test_pareto_front_is_exactly_the_non_dominated_complete_points(
    points: list[TrialPoint],
) -> None:
    complete = [p for p in points if p.complete]
    expected = {
        p.number for p in complete
        if not any(_dominates(q, p) for q in complete)
        # of equal points the first is kept
        and not any((q.mse, q.cost) == (p.mse, p.cost) and q.number < p.number
                    for q in complete)
    }
    front = pareto_front(points)
    assert {p.number for p in front} == expected
    assert all(p.complete for p in front)
    costs, mses = [p.cost for p in front], [p.mse for p in front]
    assert costs == sorted(costs)
    assert all(a > b for a, b in itertools.pairwise(mses))


@given(trial_points(), st.floats(min_value=0.5, max_value=13))
def test_operating_point_is_the_cheapest_complete_point_under_the_bound(
    points: list[TrialPoint], max_mse: float
) -> None:
    qualifying = [p for p in points if p.complete and p.mse <= max_mse]
    chosen = operating_point(points, max_mse)
    if not qualifying:
        assert chosen is None
        return
    assert chosen in qualifying
    assert all(chosen.cost < p.cost or (chosen.cost == p.cost and chosen.mse <= p.mse)
               for p in qualifying)
    assert (chosen.cost, chosen.mse) in {(p.cost, p.mse) for p in pareto_front(points)}


def test_operating_point_ignores_failed_trials_and_rejects_a_bad_bound() -> None:
    failed = TrialPoint(number=0, state="FAIL", mse=None, cost=None, scale=1.0, bits={})
    assert operating_point([failed], 1.0) is None
    with pytest.raises(SpecError, match="max_mse"):
        operating_point([failed], 0.0)


def _grid_hypervolume(points: list[TrialPoint], reference: tuple[int, int]) -> int:
    """The dominated area counted cell by cell: with integer values every unit cell below the
    reference is either wholly dominated or not at all."""
    complete = [p for p in points if p.complete]
    ref_cost, ref_mse = reference
    return sum(
        1
        for cost in range(ref_cost)
        for mse in range(ref_mse)
        if any(p.cost <= cost and p.mse <= mse for p in complete)
    )


@given(trial_points(), st.integers(1, 14), st.integers(1, 14))
def test_hypervolume_equals_a_grid_count(
    points: list[TrialPoint], ref_cost: int, ref_mse: int
) -> None:
    area = hypervolume(points, (ref_cost, ref_mse), log=False)
    assert area == pytest.approx(_grid_hypervolume(points, (ref_cost, ref_mse)))


@given(trial_points(), VALUES, VALUES)
def test_hypervolume_never_decreases_when_a_point_is_added(
    points: list[TrialPoint], cost: int, mse: int
) -> None:
    reference = (10.0, 10.0)
    added = TrialPoint(number=len(points), state="COMPLETE", mse=float(mse), cost=float(cost),
                       scale=1.0, bits={})
    for log in (False, True):
        before = hypervolume(points, reference, log=log)
        assert hypervolume([*points, added], reference, log=log) >= before - 1e-12


@given(trial_points())
def test_hypervolume_in_log_space_is_the_area_of_the_logged_points(
    points: list[TrialPoint],
) -> None:
    reference = (13.0, 13.0)
    logged = [p if not p.complete else
              TrialPoint(number=p.number, state=p.state, mse=math.log10(p.mse),
                         cost=math.log10(p.cost), scale=p.scale, bits=p.bits)
              for p in points]
    expected = hypervolume(logged, (math.log10(13.0), math.log10(13.0)), log=False)
    assert hypervolume(points, reference) == pytest.approx(expected)


def test_hypervolume_rejects_a_non_positive_reference() -> None:
    with pytest.raises(SpecError, match="reference"):
        hypervolume([], (0.0, 1.0))


def test_a_trial_reads_back_the_values_its_objective_returned() -> None:
    import optuna

    from autoq.search.records import BITS_ATTR, trial_point

    study = optuna.create_study(directions=["minimize", "minimize"])
    trial = study.ask()
    trial.suggest_categorical("scale", [0.5])
    trial.set_user_attr(BITS_ATTR, {"conv": [4, 8]})
    study.tell(trial, (2.5e-4, 7.0e9))  # (error, cost), as the objective returns them
    point = trial_point(study.trials[0])
    assert (point.mse, point.cost, point.scale) == (2.5e-4, 7.0e9, 0.5)
    assert point.bits == {"conv": [4, 8]} and point.to_json()["bits"]["conv"] == [4, 8]


def test_best_mse_point_is_the_lowest_error_not_the_cheapest() -> None:
    from autoq.search import best_mse_point

    points = [TrialPoint(number=0, state="COMPLETE", mse=3.0, cost=1.0, scale=1.0, bits={}),
              TrialPoint(number=1, state="COMPLETE", mse=1.0, cost=9.0, scale=1.0, bits={}),
              TrialPoint(number=2, state="COMPLETE", mse=1.0, cost=5.0, scale=1.0, bits={}),
              TrialPoint(number=3, state="FAIL", mse=None, cost=None, scale=1.0, bits={})]
    best = best_mse_point(points)
    assert best is not None and best.number == 2  # lowest MSE; of the tied, the cheaper


def test_default_reference_is_ten_percent_beyond_the_worst_complete_trial() -> None:
    from autoq.search import default_reference

    points = [TrialPoint(number=0, state="COMPLETE", mse=2.0, cost=10.0, scale=1.0, bits={}),
              TrialPoint(number=1, state="COMPLETE", mse=4.0, cost=5.0, scale=1.0, bits={}),
              TrialPoint(number=2, state="FAIL", mse=None, cost=None, scale=1.0, bits={})]
    assert default_reference(points) == pytest.approx((11.0, 4.4))


def _with_reference(number: int, state: str, reference: float | None) -> TrialPoint:
    details = {} if reference is None else {"float_reference": reference}
    complete = state == "COMPLETE"
    return TrialPoint(number=number, state=state, mse=1.0 if complete else None,
                      cost=1.0 if complete else None, scale=1.0, bits={}, details=details)


def test_float_reference_is_the_last_complete_trials_record() -> None:
    from autoq.search.results import float_reference

    assert float_reference([]) is None
    assert float_reference([_with_reference(0, "FAIL", 9.0)]) is None  # not complete
    points = [_with_reference(0, "COMPLETE", 2.0), _with_reference(1, "COMPLETE", None),
              _with_reference(2, "COMPLETE", 3.0), _with_reference(3, "FAIL", 7.0)]
    assert float_reference(points) == 3.0


def test_error_bound_is_max_mse_or_max_ratio_times_the_float_reference() -> None:
    from autoq.search.results import error_bound

    points = [_with_reference(0, "COMPLETE", 0.5)]
    assert error_bound(points, max_mse=0.25) == 0.25
    assert error_bound([], max_mse=0.25) == 0.25  # an absolute bound needs no trial
    assert error_bound(points, max_ratio=1.5) == 0.75
    for both_or_none in ({}, {"max_mse": 1.0, "max_ratio": 1.0}):
        with pytest.raises(SpecError) as caught:
            error_bound(points, **both_or_none)
        assert str(caught.value) == ("give exactly one of max_mse (an absolute bound) and "
                                     "max_ratio (relative to the float model's error)")
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(SpecError) as caught:
            error_bound(points, max_ratio=bad)
        assert str(caught.value) == f"max_ratio must be positive, got {bad!r}"
    with pytest.raises(SpecError) as caught:
        error_bound([_with_reference(0, "COMPLETE", None)], max_ratio=1.5)
    assert str(caught.value) == ("max_ratio needs the float model's error, which complete "
                                 "trials record; this search has none yet")


def test_the_cost_objective_is_named_by_the_studys_last_metric() -> None:
    from autoq.search.records import cost_objective_name, objective_names

    assert objective_names("mse") == ["mse", "cost"]
    assert objective_names("relative_l2", "latency") == ["relative_l2", "latency"]
    assert cost_objective_name(["mse", "latency"]) == "latency"
    assert cost_objective_name(["latency", "cost"]) == "cost"  # the last name, not any
    assert cost_objective_name(["mse", "cost"]) == "cost"
    assert cost_objective_name([]) == "cost" and cost_objective_name(None) == "cost"


def test_complete_trials_and_failed_ones_with_an_error_count_towards_the_budget() -> None:
    from optuna.trial import TrialState, create_trial

    from autoq.search.records import ERROR_ATTR, counts_towards_budget

    complete = create_trial(state=TrialState.COMPLETE, values=[1.0, 2.0])
    failed = create_trial(state=TrialState.FAIL, user_attrs={ERROR_ATTR: "TrialError: x"})
    died = create_trial(state=TrialState.FAIL)
    running = create_trial(state=TrialState.RUNNING, user_attrs={ERROR_ATTR: "TrialError: x"})
    assert [counts_towards_budget(t) for t in (complete, failed, died, running)] == [
        True, True, False, False]


def test_a_point_is_complete_only_with_its_state_and_both_values() -> None:
    from autoq.search.records import complete_points

    def point(state: str, mse: float | None, cost: float | None) -> TrialPoint:
        return TrialPoint(number=0, state=state, mse=mse, cost=cost, scale=1.0, bits={})

    partial = [point("COMPLETE", None, 1.0), point("COMPLETE", 1.0, None),
               point("FAIL", 1.0, 1.0), point("FAIL", None, 1.0)]
    assert complete_points(partial) == [] and not any(p.complete for p in partial)
    whole = point("COMPLETE", 1.0, 2.0)
    assert [(c.point, c.mse, c.cost) for c in complete_points([whole])] == [(whole, 1.0, 2.0)]


def test_the_rest_trial_shape_names_every_key() -> None:
    point = TrialPoint(number=4, state="COMPLETE", mse=0.5, cost=8.0, scale=0.5,
                       bits={"conv": [4, 8]}, baseline="w4a8", feasible=False, error="boom",
                       details={"bitops": 6.0, "deployed_error": 0.6, "latency": {"x": 1}},
                       rank=3)
    assert point.to_json() == {
        "number": 4, "state": "COMPLETE", "mse": 0.5, "cost": 8.0, "bitops": 6.0,
        "scale": 0.5, "rank": 3, "bits": {"conv": [4, 8]}, "baseline": True,
        "regime": "w4a8", "feasible": False, "error": "boom", "deployed_error": 0.6,
        "latency": {"x": 1}}
    plain = TrialPoint(number=0, state="FAIL", mse=None, cost=None, scale=None, bits={})
    assert plain.to_json()["baseline"] is False and plain.to_json()["bitops"] is None


def test_hypervolume_needs_a_positive_reference_in_both_objectives() -> None:
    for reference in ((1.0, 0.0), (0.0, 1.0), (1.0, -1.0)):
        with pytest.raises(SpecError) as caught:
            hypervolume([], reference)
        assert str(caught.value) == f"hypervolume reference must be positive, got {reference}"


def test_default_reference_needs_a_complete_trial() -> None:
    from autoq.search import default_reference

    with pytest.raises(SpecError) as caught:
        default_reference([TrialPoint(number=0, state="FAIL", mse=None, cost=None, scale=1.0,
                                      bits={})])
    assert str(caught.value) == "no complete trials yet: hypervolume needs at least one"


def test_a_frozen_trial_becomes_its_point_field_by_field() -> None:
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from autoq.search.records import trial_point

    trial = create_trial(
        state=TrialState.COMPLETE, values=[0.5, 8.0],
        params={"scale": 0.5, "rank": 3},
        distributions={"scale": CategoricalDistribution([0.5, 1.0]),
                       "rank": CategoricalDistribution([3, 6])},
        user_attrs={"bits": {"conv": [4, 8]}, "baseline": "w4a8", "error": "boom",
                    "orphaned": "gone", "timings": {"train": 1.0}},
        constraints={"max_mse": 0.0, "max_cost": -1.0})
    trial.number = 7
    point = trial_point(trial)
    assert point == TrialPoint(number=7, state="COMPLETE", mse=0.5, cost=8.0, scale=0.5,
                               bits={"conv": [4, 8]}, baseline="w4a8", feasible=True,
                               error="boom", rank=3,
                               details={"orphaned": "gone", "timings": {"train": 1.0}})
    failed = create_trial(state=TrialState.FAIL, user_attrs={"orphaned": "gone"},
                          constraints={"max_mse": 0.5})
    point = trial_point(failed)
    assert (point.mse, point.cost, point.bits, point.error, point.feasible, point.rank) == (
        None, None, {}, "gone", False, None)
    assert trial_point(create_trial(state=TrialState.COMPLETE, values=[1.0, 1.0],
                                    constraints={"max_cost": 1e-9})).feasible is False


def test_parameters_encode_and_decode_a_configuration() -> None:
    from autoq.search.records import decode_params, encode_params

    params = encode_params(0.5, {"a": (4, 8), "b": None}, rank=3)
    assert params == {"scale": 0.5, "rank": 3, "w_bits:a": 4, "a_bits:a": 8,
                      "w_bits:b": "float"}
    assert decode_params(params, ["a", "b"]) == (0.5, {"a": (4, 8), "b": None}, 3)
    assert decode_params(encode_params(1.0, {"a": None}), ["a"]) == (1.0, {"a": None}, None)


def test_recorded_params_read_the_per_layer_bits() -> None:
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from autoq.search.records import recorded_params

    def trial(bits: dict | None, scale: float | None = 0.5):
        params = {} if scale is None else {"scale": scale}
        dists = {} if scale is None else {"scale": CategoricalDistribution([0.5, 1.0])}
        attrs = {} if bits is None else {"bits": bits}
        return create_trial(state=TrialState.COMPLETE, values=[1.0, 1.0], params=params,
                            distributions=dists, user_attrs=attrs)

    groups = {"g": ["x", "y"], "h": ["z"]}
    assert recorded_params(trial({"x": [4, 8], "y": [4, 8], "z": "float"}), groups) == {
        "scale": 0.5, "w_bits:g": 4, "a_bits:g": 8, "w_bits:h": "float"}
    # A layer the record does not name is float.
    assert recorded_params(trial({"x": [4, 8], "y": [4, 8]}), groups) == {
        "scale": 0.5, "w_bits:g": 4, "a_bits:g": 8, "w_bits:h": "float"}
    assert recorded_params(trial({"x": [4, 8], "y": [8, 8]}), groups) is None
    assert recorded_params(trial(None), groups) is None
    assert recorded_params(trial({"x": [4, 8]}, scale=None), groups) is None


def test_parameters_encode_and_decode_the_transforms_of_groups() -> None:
    from autoq.search.records import decode_params, decode_transforms, encode_params

    params = encode_params(0.5, {"a": (4, 8), "b": (2, 3), "c": None},
                           group_transforms={"a": "dft", "b": "fft"})
    assert params == {"scale": 0.5, "w_bits:a": 4, "a_bits:a": 8, "w_bits:b": 2,
                      "a_bits:b": 3, "w_bits:c": "float", "transform:a": "dft",
                      "transform:b": "fft"}
    assert decode_transforms(params, ["a", "b", "c"]) == {"a": "dft", "b": "fft"}
    assert decode_params(params, ["a", "b", "c"]) == (0.5, {"a": (4, 8), "b": (2, 3), "c": None},
                                                      None)
    assert decode_transforms(encode_params(1.0, {"a": (4, 8)}), ["a"]) == {}


def test_recorded_params_read_the_per_layer_transforms() -> None:
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from autoq.search.records import recorded_params

    def trial(transforms: dict | None):
        attrs: dict = {"bits": {"x": [4, 8], "y": [4, 8], "z": [2, 3]}}
        if transforms is not None:
            attrs["transforms"] = transforms
        return create_trial(state=TrialState.COMPLETE, values=[1.0, 1.0], params={"scale": 1.0},
                            distributions={"scale": CategoricalDistribution([1.0])},
                            user_attrs=attrs)

    groups = {"g": ["x", "y"], "h": ["z"]}
    bits = {"scale": 1.0, "w_bits:g": 4, "a_bits:g": 8, "w_bits:h": 2, "a_bits:h": 3}
    # A group's transform is its spectral layers' (x here; y is not a spectral layer).
    assert recorded_params(trial({"x": "dft", "z": "fft"}), groups) == {
        **bits, "transform:g": "dft", "transform:h": "fft"}
    assert recorded_params(trial(None), groups) == bits
    assert recorded_params(trial({"x": "dft", "y": "fft"}), groups) is None
    assert recorded_params(trial({"x": "fht"}), groups) is None


def test_a_study_reads_as_its_points_in_trial_order_and_counts_its_budget() -> None:
    """``study_points`` gives one point per trial, numbered and valued as stored, whatever its
    state; ``finished_trials`` counts the complete ones and those our objective failed."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from autoq.search.records import ERROR_ATTR
    from autoq.search.results import finished_trials, study_points

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize", "minimize"])
    for trial in (create_trial(state=TrialState.COMPLETE, values=[3.0, 5.0]),
                  create_trial(state=TrialState.FAIL, user_attrs={ERROR_ATTR: "TrialError: x"}),
                  create_trial(state=TrialState.FAIL),
                  create_trial(state=TrialState.COMPLETE, values=[1.0, 9.0])):
        study.add_trial(trial)
    points = study_points(study)
    assert [(p.number, p.state, p.mse, p.cost) for p in points] == [
        (0, "COMPLETE", 3.0, 5.0), (1, "FAIL", None, None), (2, "FAIL", None, None),
        (3, "COMPLETE", 1.0, 9.0)]
    assert finished_trials(study) == 3
