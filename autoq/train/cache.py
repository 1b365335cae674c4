"""Float models, trained once per (data, split, model, recipe, scale, seed) and cached on disk.

A search of a hundred trials fine-tunes a handful of float models (one per scale factor and
rank); each is trained on first use and loaded afterwards. A user's checkpoint
(``model.checkpoint``) takes the place of training: used as it is at scale 1, and at a smaller
scale fine-tuned at the network's grid or used as it is, as the config says; saved at another
factorization rank, it is re-factorized to the model's and fine-tuned at every scale. With
``train.rescale_epochs`` the float model does the same for itself: the full-resolution model is
trained (or loaded) once, and each smaller scale starts from its weights for a short fine-tune,
which is most of a search's float training spared on a 2D problem. Entries
are keyed by a content hash, written under a temporary name and renamed, so concurrent writers
(parallel trials, several workers) can race without corrupting an entry: the last rename wins,
and every version is a complete model.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from autoq.bits import Resample
from autoq.device import default_device
from autoq.errors import SpecError
from autoq.models.config import FactoryConfig, ModelConfig
from autoq.models.factory import FactoryNetwork, build_user_module, refactorize, tensor_state
from autoq.settings import get_settings
from autoq.train.config import TrainConfig
from autoq.train.loop import evaluate, fit
from autoq.train.problem import Problem
from autoq.train.solver import ScaledSolver


def default_cache_dir() -> Path:
    """The settings' ``cache_dir``: ``$AUTOQ_CACHE_DIR``, else ``artifacts/float`` under the
    working directory."""
    return get_settings().cache_dir


@dataclass(frozen=True)
class FloatModel:
    """A trained float solver and what is known about it.

    Attributes:
        solver: the trained solver, in eval mode.
        val_mse: one-step validation MSE at the data resolution.
        train_seconds: wall time of the training run that produced it.
        loaded: True when it came from the cache rather than from training in this call.
        key: its cache key.
    """

    solver: ScaledSolver
    val_mse: float
    train_seconds: float
    loaded: bool
    key: str


class FloatModelCache:
    """Train-once storage of float models under ``root`` (one ``<key>.pt`` file each)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def key(
        self, problem: Problem, model: ModelConfig, train: TrainConfig, *, scale: float,
        seed: int, resample: Resample = "linear",
    ) -> str:
        """Content hash of everything that determines the trained weights (training runs
        through the resizes, so their method is one of them)."""
        split = {name: getattr(problem.split, name).tolist() for name in ("train", "val", "test")}
        # The recipe of a model trained from scratch leaves rescale_epochs out: the full
        # resolution model is the same with it or without, and the keys of earlier models hold.
        recipe = train.model_dump(
            mode="json",
            exclude=None if _rescale_epochs(model, train, scale) is not None
            else {"rescale_epochs"})
        payload = {
            "data": problem.data_digest,
            "split": hashlib.sha256(json.dumps(split).encode()).hexdigest(),
            "window": [problem.input_steps, problem.target_steps],
            "model": model.model_dump(mode="json"),
            "checkpoint": _checkpoint_digest(model),
            "train": recipe,
            "scale": scale,
            "seed": seed,
        }
        if resample != "linear":  # absent for linear: the keys of earlier models stay valid
            payload["resample"] = resample
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def get(
        self, problem: Problem, model: ModelConfig, train: TrainConfig, *, scale: float,
        seed: int = 0, description: str | None = None, resample: Resample = "linear",
    ) -> FloatModel:
        """The float model for these settings (resized by ``resample``): loaded if cached,
        else trained and stored (below scale 1 with ``train.rescale_epochs``, fine-tuned from
        the full-resolution model, itself got the same way first)."""
        key = self.key(problem, model, train, scale=scale, seed=seed, resample=resample)
        path = self.root / f"{key}.pt"
        torch.manual_seed(seed)
        solver = problem.build_solver(model, scale=scale, resample=resample).to(
            default_device())
        if path.is_file():
            entry = torch.load(path, map_location=default_device(), weights_only=True)
            solver.load_state_dict(entry["state_dict"])
            solver.eval()
            return FloatModel(solver, entry["val_mse"], entry["train_seconds"], True, key)
        epochs = train.epochs
        if isinstance(model, FactoryConfig) and model.checkpoint is not None:
            if not isinstance(solver.network, FactoryNetwork):
                raise SpecError(f"model.checkpoint: {type(solver.network).__name__} is not a "
                                f"user's model")
            if model.checkpoint_kwargs is not None:
                saved = build_user_module(model.model_copy(
                    update={"kwargs": model.checkpoint_kwargs, "checkpoint_kwargs": None}))
                load_checkpoint(saved, model.checkpoint)
                refactorize(solver.network.module, saved)
            else:
                load_checkpoint(solver.network.module, model.checkpoint)
            rescaled = scale < 1 and model.rescale == "finetune"
            epochs = model.finetune_epochs if rescaled or model.refactorized else 0
        elif (rescale_epochs := _rescale_epochs(model, train, scale)) is not None:
            full = self.get(problem, model, train, scale=1.0, seed=seed, resample=resample,
                            description=None if description is None else "float model, scale 1")
            solver.load_state_dict(full.solver.state_dict())
            epochs = rescale_epochs
        seconds = 0.0
        if epochs:
            seconds = fit(solver, problem.windows("train", unroll=train.unroll),
                          train.model_copy(update={"epochs": epochs}), seed=seed,
                          description=description).seconds
        val_mse = evaluate(solver, problem.val_windows)
        self._write(path, {"state_dict": tensor_state(solver), "val_mse": val_mse,
                           "train_seconds": seconds, "created": time.time()})
        return FloatModel(solver, val_mse, seconds, False, key)

    def _write(self, path: Path, entry: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            torch.save(entry, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def load_checkpoint(module: torch.nn.Module, checkpoint: str | os.PathLike[str]) -> None:
    """Load a user's ``state_dict`` (or ``{"state_dict": ...}``) into ``module``; a SpecError
    names ``model.checkpoint`` and the keys that do not fit."""
    path = Path(checkpoint)
    if not path.is_file():
        raise SpecError(f"model.checkpoint: file not found: {path}")
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise SpecError(f"model.checkpoint: {path} holds Python objects besides tensors (e.g. "
                        f"neuraloperator's '_metadata'), which autoq does not unpickle; save "
                        f"{{name: value for name, value in model.state_dict().items() if "
                        f"isinstance(value, torch.Tensor)}} instead") from e
    except Exception as e:
        raise SpecError(f"model.checkpoint: {path} is not a torch checkpoint "
                        f"({type(e).__name__}: {e})") from e
    state = entry.get("state_dict", entry) if isinstance(entry, dict) else None
    if not isinstance(state, dict):
        raise SpecError(f"model.checkpoint: {path} holds a {type(entry).__name__}, not a "
                        f"state_dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise SpecError(f"model.checkpoint: {path} does not fit {type(module).__name__}: "
                        f"{e}") from e


def _rescale_epochs(model: ModelConfig, train: TrainConfig, scale: float) -> int | None:
    """The epochs of fine-tuning the full-resolution float model to ``scale``, or None when
    the model at ``scale`` trains from scratch; a user's checkpoint has
    ``model.finetune_epochs`` for that."""
    checkpoint = isinstance(model, FactoryConfig) and model.checkpoint is not None
    return None if scale >= 1 or checkpoint else train.rescale_epochs


def _checkpoint_digest(model: ModelConfig) -> str | None:
    """SHA-256 of the user's checkpoint file: a changed file is a new float model."""
    if not isinstance(model, FactoryConfig) or model.checkpoint is None:
        return None
    path = Path(model.checkpoint)
    if not path.is_file():
        raise SpecError(f"model.checkpoint: file not found: {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()
