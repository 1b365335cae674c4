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
from autoq.quant import load_artifact
from autoq.search.records import ARTIFACT_ATTR
from autoq.search.setup import ensure_data
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
