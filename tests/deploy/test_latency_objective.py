"""Latency as the search's cost objective: the spec, the latency table the sampler prices with,
and a real search whose trials time their own exported models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from autoq.bits import FLOAT
from autoq.deploy.latency import RuntimeUnavailableError
from autoq.deploy.profile import attribute_nodes, node_times
from autoq.errors import SpecError
from autoq.search import SearchSpace, parse_spec, run_search
from autoq.search.executors.plan import execute, prepare_run
from autoq.search.latency import LatencyModel, container_class
from autoq.search.records import (
    BITOPS_ATTR,
    COST_BREAKDOWN_ATTR,
    LATENCY_ATTR,
    encode_params,
    trial_point,
)
from autoq.search.spec import LatencySettings
from autoq.search.storage import study_exists

QUICK = {"warmup": 1, "repeats": 5}


@pytest.fixture
def latency_payload(tiny_payload: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """A tiny Darcy UNet search under the integer scheme with latency as its cost."""
    payload = tiny_payload(arch="unet", pde="darcy", scales=[1.0, 0.5], weight_bits=[4, 8],
                           act_bits=[8, 16])
    payload["space"].update(granularity="per_block", scheme="integer")
    payload["search"].update(objectives=["error", "latency"], sampler="autoq", trials=3,
                             latency=QUICK)
    return payload


def test_spec_takes_an_error_and_one_cost_objective(latency_payload: dict[str, Any]) -> None:
    assert parse_spec(latency_payload).search.cost_objective == "latency"
    latency_payload["search"].pop("objectives")
    assert parse_spec(latency_payload).search.cost_objective == "bitops"
    for wrong in (["latency", "error"], ["error"], ["error", "bitops", "latency"]):
        latency_payload["search"]["objectives"] = wrong
        with pytest.raises(SpecError, match=r"search\.objectives"):
            parse_spec(latency_payload)


def test_latency_table_splits_each_timed_model_over_its_layers(
        latency_payload: dict[str, Any]) -> None:
    space = SearchSpace(parse_spec(latency_payload))
    model = LatencyModel(space, LatencySettings(**QUICK))
    table = model.table(1.0)
    layers = [layer for group in space.groups.values() for layer in group]
    assert set(table.layers) == set(layers)
    # Every class the menus hold (8-bit weights with 8- and 16-bit inputs), and float.
    assert set(table.uniform) == {FLOAT, (8, 8), (8, 16)}
    for layer in layers:
        assert table.layers[layer][FLOAT] > 0
    # A uniform configuration is predicted as its model was timed: the glue and the layers
    # add up to the whole.
    for bits in [(8, 8), (4, 16)]:
        params = encode_params(1.0, {group: bits for group in space.groups})
        assert model.params_cost(params) == pytest.approx(table.uniform[container_class(bits)],
                                                          rel=1e-9)


def test_profiled_nodes_of_the_integer_graph_belong_to_their_layers(
        latency_payload: dict[str, Any], tmp_path: Path) -> None:
    space = SearchSpace(parse_spec(latency_payload))
    model = LatencyModel(space, LatencySettings(**QUICK))
    layers = [layer for group in space.groups.values() for layer in group]
    path = model.export_untrained(1.0, None, dict.fromkeys(layers, (8, 8)),
                                  tmp_path / "w8a8.onnx")
    times, graph = node_times(path, warmup=1, repeats=3)
    owner = attribute_nodes(graph, layers)
    assert set(times) <= set(owner)
    assert set(owner.values()) - {None} == set(layers)
    # onnxruntime's fused integer kernels keep their layer's name; the quantize nodes autoq
    # writes and the layout transposes onnxruntime adds around them belong to that layer too.
    integer = [node for node in graph.node if node.op_type in ("QLinearConv", "ConvInteger")]
    assert integer and all(owner[node.name] is not None for node in integer)
    ours = [node for node in graph.node if node.name.startswith("qdq")]
    assert ours and all(owner[node.name] is not None for node in ours)
    transposes = [node for node in graph.node if node.op_type == "Transpose"]
    assert transposes and all(owner[node.name] is not None for node in transposes)


def test_latency_search_times_every_trial_against_the_float_model(
        latency_payload: dict[str, Any], tmp_path: Path) -> None:
    spec = parse_spec(latency_payload)
    storage = f"sqlite:///{tmp_path / 'latency.db'}"
    run = prepare_run(spec, storage=storage, baseline_regimes=["float"])
    study = execute(run, artifact_dir=tmp_path / "artifacts")
    assert study.metric_names == ["mse", "latency"]
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 3  # two float baselines, one sampled by autoq's sampler
    for trial in trials:
        latency = trial.user_attrs[LATENCY_ATTR]
        assert latency["runtime"] == "onnxruntime-cpu" and latency["threads"] == 1
        assert latency["runs"] == QUICK["repeats"]
        assert trial.values[1] == pytest.approx(latency["median_s"] / latency["float_median_s"])
        assert trial.user_attrs[BITOPS_ATTR] == pytest.approx(
            sum(trial.user_attrs[COST_BREAKDOWN_ATTR].values()))
        shown = trial_point(trial).to_json()  # what the CLI's --json and the REST API return
        assert shown["cost"] == trial.values[1]
        assert shown["bitops"] == trial.user_attrs[BITOPS_ATTR]
    sampled = [t for t in trials if "baseline" not in t.user_attrs]
    # Timed either way (above); which configuration the sampler picks follows the latency it
    # measures, and the export check refuses some (recorded as the trial's deploy_error).
    assert len(sampled) == 1
    assert ("deployable" in sampled[0].user_attrs) != ("deploy_error" in sampled[0].user_attrs)


def test_pareto_table_of_a_latency_search_names_its_cost(
        latency_payload: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from autoq.cli import main

    latency_payload["search"]["trials"] = 2
    spec = parse_spec(latency_payload)
    storage = f"sqlite:///{tmp_path / 'latency.db'}"
    run_search(spec, storage=storage, name="timed")
    capsys.readouterr()
    assert main(["pareto", "timed", "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert "latency (× float)" in out and "bit-ops" in out and "speed-up" in out


def test_unavailable_runtime_is_refused_before_any_study_exists(
        latency_payload: dict[str, Any], tmp_path: Path) -> None:
    latency_payload["search"]["latency"] = {"runtime": "tensorrt"}
    spec = parse_spec(latency_payload)
    storage = f"sqlite:///{tmp_path / 'latency.db'}"
    with pytest.raises(RuntimeUnavailableError, match="tensorrt"):
        run_search(spec, storage=storage, name="never")
    assert not study_exists(optuna.storages.RDBStorage(storage), "never")
