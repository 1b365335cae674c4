"""neuraloperator's FNO and TFNO, trained here, searched from their checkpoints through a spec's
``factory:``: the bits reach the spectral weights and the Fourier coefficients, and the trial's
exported network, reloaded, reproduces the trial's error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autoq
from autoq.models.factory import tensor_state
from autoq.precision import TrialConfig
from autoq.quant import load_artifact
from autoq.search.records import ARTIFACT_ATTR
from autoq.search.setup import ensure_data
from autoq.search.space import SearchSpace
from autoq.train import load_problem
from autoq.train.metrics import mse

neuralop = pytest.importorskip("neuralop.models", reason="the neuralop extra is not installed")


def _train_briefly(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        loss = F.mse_loss(model(inputs), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def _search(payload: dict[str, Any], model: dict[str, Any], storage: str, artifacts: Path
            ) -> autoq.SearchResult:
    spec = {**payload, "model": model,
            "space": {**payload["space"], "granularity": "per_layer", "scales": [1.0]},
            "search": {**payload["search"], "sampler": "random"}}
    return autoq.search(spec, trials=2, storage=storage, artifact_dir=artifacts)


def _reloaded_error(result: autoq.SearchResult, number: int) -> float:
    spec = result.spec
    problem = load_problem(ensure_data(spec), layout=spec.data.layout,
                           input_steps=spec.data.input_steps,
                           target_steps=spec.data.target_steps)
    solver = problem.build_solver(spec.model, scale=1.0)
    trial = next(t for t in result.trials() if t.number == number)
    solver.network = load_artifact(trial.details[ARTIFACT_ATTR])
    return mse(solver, problem)


def _check(result: autoq.SearchResult, spectral: list[str]) -> None:
    trials = result.trials()
    assert [t.state for t in trials] == ["COMPLETE", "COMPLETE"], [t.error for t in trials]
    for trial in trials:
        for layer in spectral:
            weight, act = trial.bits[layer]
            assert weight in (4, 8) and act in (8, 16)
        assert _reloaded_error(result, trial.number) == pytest.approx(trial.mse, rel=1e-3)
        # The spectral contraction is priced at the trial's bits.
        assert all(result.trials()[trial.number].details["cost_breakdown"][layer] > 0
                   for layer in spectral)


def test_neuralop_fno_1d_searched_from_its_checkpoint(
    tiny_spec_payload: dict[str, Any], sqlite_url: str, tmp_path: Path
) -> None:
    spec = autoq.search.parse_spec(tiny_spec_payload)
    problem = load_problem(ensure_data(spec), pde="burgers", input_steps=4, target_steps=1)
    inputs, targets = problem.train_windows.batch(torch.arange(64))
    fno = neuralop.FNO(n_modes=(8,), hidden_channels=12, in_channels=4, out_channels=1,
                       n_layers=2)
    _train_briefly(fno, inputs, targets)
    checkpoint = tmp_path / "fno.pt"
    torch.save(tensor_state(fno), checkpoint)
    model = {"factory": "neuralop.models:FNO", "checkpoint": str(checkpoint),
             "kwargs": {"n_modes": [8], "hidden_channels": 12, "in_channels": 4,
                        "out_channels": 1, "n_layers": 2}}
    result = _search({**tiny_spec_payload, "name": "neuralop-fno"}, model, sqlite_url,
                     tmp_path / "artifacts")
    _check(result, ["module.fno_blocks.convs.0", "module.fno_blocks.convs.1"])


def test_neuralop_tfno_2d_searched_from_its_checkpoint(
    darcy_file: Path, sqlite_url: str, tmp_path: Path
) -> None:
    problem = load_problem(darcy_file, pde="darcy", input_steps=1, target_steps=1)
    inputs, targets = problem.train_windows.batch(torch.arange(16))
    kwargs = {"n_modes": [6, 6], "hidden_channels": 8, "in_channels": 1, "out_channels": 1,
              "n_layers": 2, "factorization": "tucker", "rank": 0.5}
    tfno = neuralop.TFNO(**{**kwargs, "n_modes": (6, 6)})
    _train_briefly(tfno, inputs, targets)
    checkpoint = tmp_path / "tfno.pt"
    torch.save(tensor_state(tfno), checkpoint)
    payload = {"name": "neuralop-tfno", "data": {"pde": "darcy", "path": str(darcy_file)},
               "train": {"epochs": 1, "batch_size": 8}, "qat": {"epochs": 1, "batch_size": 8},
               "space": {"weight_bits": [4, 8], "act_bits": [8, 16]},
               "search": {"seed": 0}}
    model = {"factory": "neuralop.models:TFNO", "checkpoint": str(checkpoint), "kwargs": kwargs}
    result = _search(payload, model, sqlite_url, tmp_path / "artifacts")
    _check(result, ["module.fno_blocks.convs.0", "module.fno_blocks.convs.1"])


def _tfno_1d_checkpoint(tiny_spec_payload: dict[str, Any], tmp_path: Path, rank: float
                        ) -> tuple[dict[str, Any], Path]:
    spec = autoq.search.parse_spec(tiny_spec_payload)
    problem = load_problem(ensure_data(spec), pde="burgers", input_steps=4, target_steps=1)
    inputs, targets = problem.train_windows.batch(torch.arange(64))
    kwargs = {"n_modes": [8], "hidden_channels": 12, "in_channels": 4, "out_channels": 1,
              "n_layers": 2, "factorization": "tucker", "rank": rank}
    torch.manual_seed(0)
    tfno = neuralop.TFNO(**{**kwargs, "n_modes": (8,)})
    _train_briefly(tfno, inputs, targets)
    checkpoint = tmp_path / "tfno.pt"
    torch.save(tensor_state(tfno), checkpoint)
    return kwargs, checkpoint


def test_tfno_factorization_rank_is_searched_beside_bits_and_scale(
    tiny_spec_payload: dict[str, Any], sqlite_url: str, tmp_path: Path
) -> None:
    kwargs, checkpoint = _tfno_1d_checkpoint(tiny_spec_payload, tmp_path, rank=0.5)
    spectral = ["module.fno_blocks.convs.0", "module.fno_blocks.convs.1"]
    spec = {**tiny_spec_payload, "name": "neuralop-tfno-ranks",
            "model": {"factory": "neuralop.models:TFNO", "checkpoint": str(checkpoint),
                      "kwargs": kwargs, "finetune_epochs": 1},
            "space": {**tiny_spec_payload["space"], "scales": [1.0], "ranks": [0.5, 0.05],
                      "granularity": "per_layer"},
            "search": {**tiny_spec_payload["search"], "sampler": "autoq"}}
    result = autoq.search(spec, trials=4, storage=sqlite_url, artifact_dir=tmp_path / "art")
    trials = result.trials()
    assert [t.state for t in trials] == ["COMPLETE"] * 4, [t.error for t in trials]
    assert {t.rank for t in trials} <= {0.5, 0.05} and 0.05 in {t.rank for t in trials}
    float_mse = {t.rank: t.details["float_mse"] for t in trials}
    # The relative bounds compare with the float model at the largest rank, the checkpoint's,
    # which every trial measures whatever its own rank.
    [reference] = {t.details["float_reference"] for t in trials}
    print(float_mse, reference)
    assert float_mse.get(0.5, reference) == reference
    # Each rank starts from the checkpoint (re-factorized) and is fine-tuned one more epoch: the
    # lowest rank ends below the checkpoint's error (from a fresh initialisation it stays above).
    # autoq's sampler learns that from the float models' errors the first trial records: rank
    # 0.05 is cheaper and as accurate, so it may spend no trial at 0.5.
    assert float_mse[0.05] < reference
    # The spectral contraction of the same bits costs less at the lower rank.
    space = SearchSpace(result.spec)
    eight_bits = {group: (8, 8) for group in space.groups}
    at_rank = {rank: space.cost(space.config(1.0, eight_bits, rank)) for rank in (0.5, 0.05)}
    for layer in spectral:
        assert at_rank[0.05].layers[layer].cost < at_rank[0.5].layers[layer].cost
    for trial in trials:
        config = TrialConfig.from_json({"scale": trial.scale, "bits": trial.bits,
                                        "rank": trial.rank})
        assert trial.cost == pytest.approx(space.cost(config).total, rel=1e-12)
        # The artifact is the network at the trial's rank: reloaded, it reproduces the error.
        assert _reloaded_error(result, trial.number) == pytest.approx(trial.mse, rel=1e-3)
