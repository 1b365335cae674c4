"""``space.transform``: the FNO's spectral transforms as FFTs, as quantized DFT matrix products,
or chosen per layer group by the search; real trials and searches on the tiny Burgers spec."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import onnx
import pytest
from optuna.trial import TrialState

from autoq.errors import SpecError
from autoq.search import load_study, parse_spec, run_search
from autoq.search.records import TRANSFORMS_ATTR, transform_param
from autoq.search.space import SearchSpace
from autoq.search.trial import TrialRunner

SPECTRAL = ["blocks.0.spectral", "blocks.1.spectral"]


def _payload(tiny_spec_payload: dict[str, Any], transform: str | None, **space: Any
             ) -> dict[str, Any]:
    payload = copy.deepcopy(tiny_spec_payload)
    payload["space"] = {**payload["space"], "granularity": "per_layer", **space}
    if transform is not None:
        payload["space"]["transform"] = transform
    return payload


def _space(tiny_spec_payload: dict[str, Any], transform: str | None, **space: Any
           ) -> SearchSpace:
    return SearchSpace(parse_spec(_payload(tiny_spec_payload, transform, **space)))


def _uniform(space: SearchSpace, bits: tuple[int, int] | None) -> dict[str, Any]:
    return {group: bits for group in space.groups}


def test_the_transform_defaults_to_fft_and_bad_values_are_named(
    tiny_spec_payload: dict[str, Any]
) -> None:
    space = _space(tiny_spec_payload, None)
    assert space.spec.space.transform == "fft"
    config = space.config(1.0, _uniform(space, (4, 8)))
    assert config.transforms == {} and "transforms" not in config.to_json()
    assert space.transform_choices == []
    with pytest.raises(SpecError, match=r"space\.transform: Input should be 'fft', 'dft' or "
                                        r"'search'"):
        parse_spec(_payload(tiny_spec_payload, "fast"))


def test_a_model_without_spectral_convolutions_refuses_the_dft(
    tiny_spec_payload: dict[str, Any]
) -> None:
    payload = _payload(tiny_spec_payload, "dft")
    payload["model"] = {"arch": "unet", "width": 8, "levels": 2, "norm_groups": 4}
    with pytest.raises(SpecError, match=r"space\.transform: 'dft' .* no layer group of this "
                                        r"model holds one"):
        SearchSpace(parse_spec(payload))
    payload["space"]["transform"] = "fft"
    SearchSpace(parse_spec(payload))


def test_dft_runs_every_quantized_spectral_layer_as_priced_matrix_products(
    tiny_spec_payload: dict[str, Any]
) -> None:
    fft_space = _space(tiny_spec_payload, "fft")
    dft_space = _space(tiny_spec_payload, "dft", allow_float=True)
    bits = _uniform(dft_space, (4, 8)) | {"blocks.1.spectral": None}
    config = dft_space.config(1.0, bits)
    # A float spectral layer keeps its FFTs (the dft runs at a layer's bits).
    assert config.transforms == {"blocks.0.spectral": "dft"}
    layers = dft_space.cost(config).layers
    assert {"blocks.0.spectral.dft", "blocks.0.spectral.idft", "blocks.1.spectral.fft",
            "blocks.1.spectral.ifft"} <= set(layers)
    assert "blocks.0.spectral.fft" not in layers
    assert (layers["blocks.0.spectral.dft"].weight_bits,
            layers["blocks.0.spectral.dft"].act_bits) == (4, 8)
    low = _uniform(dft_space, (4, 8))
    assert (dft_space.cost(dft_space.config(1.0, low)).total
            < fft_space.cost(fft_space.config(1.0, low)).total)


def test_search_takes_the_chosen_transform_or_else_the_cheaper_one(
    tiny_spec_payload: dict[str, Any]
) -> None:
    space = _space(tiny_spec_payload, "search", weight_bits=[4, 32], act_bits=[8, 32])
    assert list(space.spectral_groups) == SPECTRAL
    assert space.transform_choices == ["fft", "dft"]

    def transform_cost(bits: tuple[int, int], transform: str) -> int:
        config = space.config(1.0, _uniform(space, bits),
                              group_transforms=dict.fromkeys(SPECTRAL, transform))
        return sum(cost.cost for name, cost in space.cost(config).layers.items()
                   if name.endswith((".fft", ".ifft", ".dft", ".idft")))

    # 12 channels, 64 points, 6 modes: a real FFT of 64 points is 192 M and 288 A per line,
    # float work at 16/16 bits; its DFT is 2·64·6 = 768 M and A per line at the layer's bits:
    # cheaper at 4/8 bits, dearer at 32/32.
    assert transform_cost((4, 8), "dft") < transform_cost((4, 8), "fft")
    assert transform_cost((32, 32), "dft") > transform_cost((32, 32), "fft")
    low, high = _uniform(space, (4, 8)), _uniform(space, (32, 32))
    assert space.cheaper_transforms(1.0, low) == dict.fromkeys(SPECTRAL, "dft")
    assert space.cheaper_transforms(1.0, high) == dict.fromkeys(SPECTRAL, "fft")
    assert space.config(1.0, low).transforms == dict.fromkeys(SPECTRAL, "dft")
    chosen = space.config(1.0, low, group_transforms={"blocks.0.spectral": "fft"})
    assert chosen.transforms == {"blocks.0.spectral": "fft", "blocks.1.spectral": "dft"}
    params = {"scale": 1.0, **{f"w_bits:{g}": 4 for g in space.groups},
              **{f"a_bits:{g}": 8 for g in space.groups}, "transform:blocks.1.spectral": "fft"}
    assert space.from_params(params).transforms == {"blocks.0.spectral": "dft",
                                                    "blocks.1.spectral": "fft"}
    assert space.regime("w4a8", 1.0).transforms == dict.fromkeys(SPECTRAL, "dft")


def test_a_real_dft_trial_costs_less_than_the_fft_one_at_low_bits(
    tiny_spec_payload: dict[str, Any], tmp_path: Path
) -> None:
    """One QAT trial per transform at w2a3 on half the grid: the dft one is cheaper, trains to a
    finite error, and its deployable model passes the export check with a quantizer on every
    DFT product."""
    results = {}
    for transform in ("fft", "dft"):
        spec = parse_spec(_payload(tiny_spec_payload, transform, weight_bits=[2],
                                   act_bits=[3]))
        runner = TrialRunner(spec, artifact_dir=tmp_path / transform)
        config = runner.space.config(0.5, _uniform(runner.space, (2, 3)))
        results[transform] = runner.run(config, artifact_name="trial")
    fft, dft = results["fft"], results["dft"]
    assert dft.cost.total < fft.cost.total
    assert math.isfinite(dft.mse) and dft.mse > 0 and dft.mse != fft.mse
    assert dft.deploy_error is None and dft.deployed_error == pytest.approx(dft.mse, rel=1e-3)
    assert dft.deployable is not None
    manifest = (dft.deployable / "manifest.json").read_text()
    graph = onnx.load(str(dft.deployable / "model.onnx")).graph
    read = {name for node in graph.node for name in node.input}
    assert all(set(node.output) & read for node in graph.node if node.op_type == "Constant")
    for layer in SPECTRAL:
        assert f"{layer}/weight:dft_matrix_0" in manifest
        assert f"{layer}/input:2" in manifest


@pytest.mark.parametrize(("sampler", "chooses"), [("tpe", True), ("autoq", False)])
def test_a_search_records_each_groups_transform(
    tiny_spec_payload: dict[str, Any], sqlite_url: str, sampler: str, chooses: bool
) -> None:
    """TPE chooses each spectral group's transform as a parameter; autoq's sampler is not
    given one and the space takes the cheaper transform. Either way every trial records its
    per-layer transforms and is priced by them."""
    payload = _payload(tiny_spec_payload, "search", weight_bits=[4], act_bits=[8, 16],
                       scales=[0.5])
    payload["search"] = {**payload["search"], "sampler": sampler, "trials": 2}
    spec = parse_spec(payload)
    run_search(spec, storage=sqlite_url, trials=2)
    space = SearchSpace(spec)
    trials = load_study(spec.name, storage=sqlite_url).get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:
        transforms = trial.user_attrs[TRANSFORMS_ATTR]
        assert set(transforms) == set(SPECTRAL)
        if chooses:
            assert transforms == {g: trial.params[transform_param(g)] for g in SPECTRAL}
        else:
            assert not any(transform_param(g) in trial.params for g in SPECTRAL)
            bits = {g: (trial.params[f"w_bits:{g}"], trial.params[f"a_bits:{g}"])
                    for g in space.groups}
            assert transforms == space.cheaper_transforms(0.5, bits)
        breakdown = trial.user_attrs["cost_breakdown"]
        for layer, transform in transforms.items():
            suffixes = (".dft", ".idft") if transform == "dft" else (".fft", ".ifft")
            assert all(layer + suffix in breakdown for suffix in suffixes)
