"""Knobs of a search space beyond the paper's (issue 17): the resize method, per-channel weight
grids and the first and last layers in the search, from the spec to the configurations a
search runs and prices."""

from __future__ import annotations

import copy
from typing import Any

import optuna
import pytest

from autoq.cost import RESIZE_IN, RESIZE_OUT
from autoq.errors import SpecError
from autoq.models import first_and_last_layers
from autoq.search import parse_spec
from autoq.search.objective import suggest_group_bits
from autoq.search.records import weight_param
from autoq.search.samplers import CostAwareSampler, SamplerSettings
from autoq.search.space import SearchSpace


def _with_space(payload: dict[str, Any], **space: Any) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    payload["space"].update(space)
    return payload


def test_the_defaults_are_todays_linear_resize_and_per_tensor_grids(
        tiny_spec_payload: dict[str, Any]) -> None:
    spec = parse_spec(tiny_spec_payload)
    assert (spec.space.resample, spec.space.weight_granularity) == ("linear", "per_tensor")
    config = SearchSpace(spec).config(0.5, {"blocks.0": (4, 8), "blocks.1": (4, 8),
                                            "projection": (4, 8)})
    assert (config.resample, config.weight_granularity) == ("linear", "per_tensor")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("resample", "nearest", "space.resample: Input should be 'linear', 'cubic' or 'fourier'"),
    ("weight_granularity", "per_row",
     "space.weight_granularity: Input should be 'per_tensor' or 'per_channel'"),
])
def test_a_bad_knob_is_refused_naming_its_key(tiny_spec_payload: dict[str, Any], key: str,
                                              value: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(_with_space(tiny_spec_payload, **{key: value}))


def test_fourier_is_refused_on_data_known_not_to_be_periodic(
        tiny_spec_payload: dict[str, Any]) -> None:
    parse_spec(_with_space(tiny_spec_payload, resample="fourier"))  # Burgers is periodic
    darcy = _with_space(tiny_spec_payload, resample="fourier")
    darcy["data"] = {"pde": "darcy", "path": "darcy.h5", "generate": {"samples": 8,
                                                                       "resolution": 16}}
    with pytest.raises(SpecError, match=r"space\.resample: fourier takes the grid as one "
                                        r"period, and layout 'pdebench-darcy' is not periodic"):
        parse_spec(darcy)
    parse_spec({**darcy, "space": {**darcy["space"], "resample": "cubic"}})
    unknown = _with_space(tiny_spec_payload, resample="fourier")  # a generic file: not known
    unknown["data"] = {"layout": "generic", "path": "mine.npy", "input_steps": 2}
    parse_spec(unknown)


def test_the_space_prices_its_resize_method(tiny_spec_payload: dict[str, Any]) -> None:
    bits = {"blocks.0": (4, 8), "blocks.1": (4, 8), "projection": (4, 8)}
    costs = {}
    for method in ("linear", "cubic", "fourier"):
        space = SearchSpace(parse_spec(_with_space(tiny_spec_payload, resample=method,
                                                   weight_granularity="per_channel")))
        config = space.config(0.5, bits)
        assert (config.resample, config.weight_granularity) == (method, "per_channel")
        report = space.cost(config)
        costs[method] = report.layers[RESIZE_IN].cost, report.layers[RESIZE_OUT].cost
    # 64 → 32 cells, 4 input and 1 output channels, float work at 16 × 16 bits: linear 2 taps
    # and cubic 4 taps per point (one MAC, M·16·16 + A·16 each).
    per_mac = 16 * 16 + 16
    assert costs["linear"] == (4 * 32 * 2 * per_mac, 1 * 64 * 2 * per_mac)
    assert costs["cubic"] == (4 * 32 * 4 * per_mac, 1 * 64 * 4 * per_mac)
    assert len(set(costs.values())) == 3


def test_first_and_last_layers_become_groups_the_sampler_searches(
        tiny_spec_payload: dict[str, Any]) -> None:
    spec = parse_spec(_with_space(tiny_spec_payload, first_last_float=False,
                                  granularity="per_layer", weight_bits=[2, 4, 8],
                                  act_bits=[4, 8]))
    space = SearchSpace(spec)
    first, last = first_and_last_layers(space.reference_network)
    assert first in space.groups and last in space.groups
    sampler = CostAwareSampler.for_space(space, SamplerSettings(trials=6), seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    configs = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        scale = trial.suggest_categorical("scale", list(space.scales))
        config = space.config(scale, suggest_group_bits(trial, space))
        configs.append(config)
        return 1e-3 * (1 + sum(16 / w for w, _ in config.quantized_layers.values())), float(
            space.cost(config).total)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=6)
    for trial, config in zip(study.trials, configs, strict=True):
        assert weight_param(first) in trial.params and weight_param(last) in trial.params
        for layer in (first, last):
            assert config.bits[layer] is not None  # no float menu: always quantized
            entry = space.cost(config).layers[layer]
            assert (entry.weight_bits, entry.act_bits) == config.bits[layer]
    # The search varies them: not one precision every trial.
    assert len({config.bits[first] for config in configs}) > 1
