"""A checkpoint saved at one factorization of neuraloperator's spectral weights, loaded into the
same model built with another (``model.checkpoint_kwargs``): a search over ranks starts every
rank from the user's trained weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autoq.errors import SpecError
from autoq.models.config import FactoryConfig
from autoq.models.factory import build_user_module, refactorize, tensor_state

neuralop = pytest.importorskip("neuralop.models", reason="the neuralop extra is not installed")

KWARGS = {"n_modes": [8], "hidden_channels": 8, "in_channels": 2, "out_channels": 1,
          "n_layers": 2}
SPECTRAL = ["fno_blocks.convs.0.weight", "fno_blocks.convs.1.weight"]


def _tfno(**kwargs: object) -> torch.nn.Module:
    torch.manual_seed(len(kwargs))
    return build_user_module(FactoryConfig(factory="neuralop.models:TFNO",
                                           kwargs={**KWARGS, **kwargs}))


def _dense(module: torch.nn.Module, name: str) -> torch.Tensor:
    return module.get_submodule(name).to_tensor().detach()


def test_a_dense_copy_of_a_factorized_model_computes_the_same_function() -> None:
    source = _tfno(factorization="tucker", rank=0.3)
    target = _tfno(factorization=None)
    refactorize(target, source)
    x = torch.randn(3, 2, 32)
    with torch.no_grad():
        assert torch.allclose(target(x), source(x), atol=1e-5)


def test_a_lower_rank_keeps_the_other_weights_and_the_best_truncation() -> None:
    source = _tfno(factorization="tucker", rank=1.0)
    target = _tfno(factorization="tucker", rank=0.1)
    fresh = _tfno(factorization="tucker", rank=0.1)
    refactorize(target, source)
    kept = {k: v for k, v in tensor_state(source).items()
            if not k.startswith(tuple(f"{name}." for name in SPECTRAL))}
    assert all(torch.equal(tensor_state(target)[k], v) for k, v in kept.items())
    for name in SPECTRAL:
        dense = _dense(source, name)
        truncated = (_dense(target, name) - dense).norm() / dense.norm()
        untouched = (_dense(fresh, name) - dense).norm() / dense.norm()
        assert truncated < 0.9 * untouched
    # The factorization is the target's: its rank, its parameter count.
    assert sum(p.numel() for p in target.parameters()) == sum(
        p.numel() for p in fresh.parameters())


def test_a_checkpoint_of_another_width_is_refused_naming_the_field() -> None:
    source = _tfno(factorization="tucker", rank=0.5, hidden_channels=6)
    target = _tfno(factorization="tucker", rank=0.5)
    with pytest.raises(SpecError, match=r"model\.checkpoint_kwargs: 'fno_blocks\.convs\.0\."
                                        r"weight' is \(6, 6, 5\)"):
        refactorize(target, source)


def test_with_kwargs_keeps_the_kwargs_the_checkpoint_was_saved_with(tmp_path: Path) -> None:
    saved = FactoryConfig(factory="neuralop.models:TFNO", kwargs={**KWARGS, "rank": 0.5},
                          checkpoint=str(tmp_path / "tfno.pt"))
    lower = saved.with_kwargs(rank=0.1)
    assert lower.kwargs["rank"] == 0.1 and lower.checkpoint_kwargs == saved.kwargs
    assert lower.with_kwargs(rank=0.2).checkpoint_kwargs == saved.kwargs
    # Back at the checkpoint's own kwargs, nothing is re-factorized.
    assert lower.with_kwargs(rank=0.5).checkpoint_kwargs is None
    assert not saved.model_copy(update={"checkpoint": None}).with_kwargs(rank=0.1).refactorized
