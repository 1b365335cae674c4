"""How the cost responds to bitwidths, scale factors and the paper's regimes."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import autoq.cost
from autoq.cost import (
    REGIMES,
    CostReport,
    LayerCost,
    bitops,
    format_cost_table,
    regime_costs,
    uniform_regimes,
)
from autoq.cost._counts import Operations
from autoq.errors import SpecError
from autoq.models import FNOConfig, build_model, first_and_last_layers
from autoq.precision import FLOAT_EQUIVALENT_BITS, TrialConfig

FNO = FNOConfig(width=8, modes=4, layers=2, projection_width=16)


def fno(spatial_dims: int):
    return build_model(FNO, spatial_dims=spatial_dims, in_channels=3, out_channels=1)


def test_halving_weight_bits_halves_the_multiplication_term_only() -> None:
    model = fno(1)
    priced = {
        bits: bitops(
            model,
            TrialConfig.for_model(model, scale=1.0, bits={"blocks.1.pointwise": bits}),
            data_shape=(32,),
            in_channels=3,
        ).layers["blocks.1.pointwise"]
        for bits in [(8, 8), (4, 8)]
    }
    w8a8, w4a8 = priced[(8, 8)], priced[(4, 8)]
    add_term = w8a8.additions * 8
    assert w4a8.cost - add_term == (w8a8.cost - add_term) // 2
    assert w8a8.cost == w8a8.multiplications * 8 * 8 + add_term
    assert (w4a8.weight_bits, w4a8.act_bits, w4a8.quantized) == (4, 8, True)


def test_a_float_layer_is_priced_at_16_16() -> None:
    model = fno(1)
    config = TrialConfig.for_model(model, scale=1.0, bits={})
    layer = bitops(model, config, data_shape=(32,), in_channels=3).layers["blocks.0.spectral"]
    bits = FLOAT_EQUIVALENT_BITS
    assert (layer.weight_bits, layer.act_bits, layer.quantized) == (bits, bits, False)
    assert layer.cost == layer.multiplications * bits * bits + layer.additions * bits


@pytest.mark.parametrize(("spatial_dims", "factor"), [(1, 2), (2, 4)])
def test_pointwise_work_scales_with_the_number_of_grid_points(
    spatial_dims: int, factor: int
) -> None:
    model = fno(spatial_dims)
    data_shape = (32,) * spatial_dims
    full, half = (
        bitops(model, TrialConfig.for_model(model, scale=scale, bits={}),
               data_shape=data_shape, in_channels=3)
        for scale in (1.0, 0.5)
    )  # fmt: skip
    assert half.network_shape == (16,) * spatial_dims
    for name in ("lifting", "blocks.0.pointwise", "projection.hidden", "projection.output"):
        assert full.layers[name].multiplications == factor * half.layers[name].multiplications
        assert full.layers[name].additions == factor * half.layers[name].additions
        assert full.layers[name].cost == factor * half.layers[name].cost
    # 4 modes fit on 16 points: the spectral mixing does not shrink with the grid.
    assert full.layers["blocks.0.spectral"] == half.layers["blocks.0.spectral"]
    assert full.layers["blocks.0.spectral.fft"].cost > factor * (
        half.layers["blocks.0.spectral.fft"].cost
    )  # N log N: more than linear in the points


def test_regimes_keep_first_and_last_layers_float() -> None:
    model = fno(1)
    configs = uniform_regimes(model, scale=0.5)
    assert list(configs) == list(REGIMES) == ["float", "w8a16", "w8a8", "w4a8", "w4a4"]
    first, last = first_and_last_layers(model)
    for name, config in configs.items():
        assert config.scale == 0.5
        assert config.bits[first] is None and config.bits[last] is None
        inner = {bits for layer, bits in config.bits.items() if layer not in (first, last)}
        assert inner == {REGIMES[name]}
    all_quantized = uniform_regimes(model, scale=1.0, first_last_float=False)["w4a4"]
    assert set(all_quantized.bits.values()) == {(4, 4)}


def test_regime_costs_fall_with_bits_and_scale() -> None:
    costs = regime_costs(FNO, data_shape=(32,), in_channels=3, out_channels=1, scales=[1.0, 0.5])
    assert list(costs) == list(REGIMES)
    for scale in (1.0, 0.5):
        totals = [costs[regime][scale].total for regime in REGIMES]
        assert totals == sorted(totals, reverse=True)
        assert len({costs[regime][scale].flops for regime in REGIMES}) == 1
        first = costs["w4a4"][scale].layers["lifting"]
        assert (first.weight_bits, first.act_bits, first.quantized) == (16, 16, False)
    for regime in REGIMES:
        assert costs[regime][0.5].total < costs[regime][1.0].total


def test_report_json_has_totals_and_per_layer_costs() -> None:
    costs = regime_costs(FNO, data_shape=(32,), in_channels=3, out_channels=1, scales=[0.5])
    report = costs["w8a8"][0.5]
    payload = json.loads(json.dumps(report.to_json()))
    assert payload["total"] == report.total == sum(payload["layers"].values())
    assert payload["flops"] == report.flops
    assert payload["network_shape"] == [16]
    assert payload["operations"]["blocks.0.pointwise"]["bits"] == [8, 8]
    assert payload["operations"]["lifting"]["bits"] == "float"
    assert payload["operations"]["resize.in"] == {
        "multiplications": 3 * 16 * 2,
        "additions": 3 * 16 * 2,
        "bits": "float",
    }


def test_cost_table_lists_every_entry_and_total() -> None:
    costs = regime_costs(FNO, data_shape=(32,), in_channels=3, out_channels=1, scales=[1.0, 0.5])
    table = format_cost_table(costs)
    for name in costs["float"][0.5].layers:
        assert name in table
    for regime in REGIMES:
        assert regime in table
        assert f"{costs[regime][0.5].total:.3e}" in table
    assert "scale 0.5 (network grid 16)" in table


def test_paper_grid_imports_without_torch(heavy_imports: Callable[..., list[str]]) -> None:
    assert heavy_imports("autoq.cost") == []
    assert heavy_imports("autoq.cost._paper") == []


def test_package_names_resolve_lazily() -> None:
    for name in autoq.cost.__all__:
        assert getattr(autoq.cost, name) is not None, name


def _report(scale: float, grid: tuple[int, ...], bits_a: tuple[int, int] | None,
            a: tuple[int, int], b: tuple[int, int]) -> CostReport:
    layers = {"a": LayerCost.priced(Operations(*a), bits_a), "b": LayerCost.priced(
        Operations(*b), None)}
    return CostReport(scale=scale, network_shape=grid, layers=layers)


def test_cost_table_by_hand() -> None:
    # scale 1: a = 1000 M + 10 A, b = 2 M + 3 A; scale 0.5: a = 250 + 5, b = 1 + 1.
    # float: (1000·16 + 10)·16 = 256160, (2·16 + 3)·16 = 560; a at w4a8: (1000·4 + 10)·8 = 32080.
    costs = {
        "float": {1.0: _report(1.0, (4, 2), None, (1000, 10), (2, 3)),
                  0.5: _report(0.5, (2, 1), None, (250, 5), (1, 1))},
        "w4a8": {1.0: _report(1.0, (4, 2), (4, 8), (1000, 10), (2, 3)),
                 0.5: _report(0.5, (2, 1), (4, 8), (250, 5), (1, 1))},
    }
    assert format_cost_table(costs) == (
        "scale 1 (network grid 4×2)\n"
        "entry      M   A      float       w4a8\n"
        "a      1,000  10  2.562e+05  3.208e+04\n"
        "b          2   3  5.600e+02  5.600e+02\n"
        "total             2.567e+05  3.264e+04\n"
        "\n"
        "scale 0.5 (network grid 2×1)\n"
        "entry    M  A      float       w4a8\n"
        "a      250  5  6.408e+04  8.040e+03\n"
        "b        1  1  2.720e+02  2.720e+02\n"
        "total          6.435e+04  8.312e+03\n"
        "\n"
        "total bit operations\n"
        "regime           scale 1  scale 0.5\n"
        "float          2.567e+05  6.435e+04\n"
        "w4a8           3.264e+04  8.312e+03\n"
        "FLOPs (M + A)  1.015e+03  2.570e+02\n")
    one = format_cost_table({"w4a8": {0.5: costs["w4a8"][0.5]}})
    assert one.endswith("regime         scale 0.5\n"
                        "w4a8           8.312e+03\n"
                        "FLOPs (M + A)  2.570e+02\n")
    assert format_cost_table({}) == ""


def test_cost_report_json_by_hand() -> None:
    report = _report(0.5, (2, 1), (4, 8), (250, 5), (1, 1))
    assert report.to_json() == {
        "scale": 0.5, "network_shape": [2, 1], "total": 8040 + 272, "flops": 257,
        "unquantized": [], "layers": {"a": 8040, "b": 272},
        "operations": {"a": {"multiplications": 250, "additions": 5, "bits": [4, 8]},
                       "b": {"multiplications": 1, "additions": 1, "bits": "float"}}}


def test_regime_costs_need_a_scale_and_can_quantize_the_first_and_last_layer() -> None:
    with pytest.raises(SpecError) as caught:
        regime_costs(FNO, data_shape=(32,), in_channels=3, out_channels=1, scales=[])
    assert str(caught.value) == "scales must name at least one scale factor, got none"
    costs = regime_costs(FNO, data_shape=(32,), in_channels=3, out_channels=1, scales=[1.0],
                         first_last_float=False)
    lifting = costs["w4a4"][1.0].layers["lifting"]
    assert (lifting.weight_bits, lifting.act_bits, lifting.quantized) == (4, 4, True)
