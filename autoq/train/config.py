"""Training recipes: float training and QAT fine-tuning (the paper, section 4.1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    """Float training: Adam with weight decay, cosine annealing after a linear warm-up.

    Attributes:
        epochs: passes of the paper's random-start schedule over the training trajectories.
        lr: peak learning rate.
        weight_decay: Adam's (decoupled, AdamW) weight decay.
        warmup: fraction of all optimiser steps spent warming up linearly.
        batch_size: windows per optimiser step.
        unroll: autoregressive steps per training window (1: one step, or bundled targets).
        pushforward: with ``unroll > 1``, back-propagate only through the last step
            (Brandstetter et al. 2022), the earlier ones run without gradients.
        rescale_epochs: at a scale factor below 1, start from the full-resolution float model
            and fine-tune it for this many epochs instead of training from scratch for
            ``epochs`` (the networks are resolution-agnostic, so its weights fit any grid).
            ``None`` (the default): every scale from scratch, as the paper trains them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(20, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup: float = Field(0.05, ge=0, lt=1)
    batch_size: int = Field(32, ge=1)
    unroll: int = Field(1, ge=1)
    pushforward: bool = False
    rescale_epochs: int | None = Field(None, ge=1)


class QATConfig(BaseModel):
    """QAT fine-tuning: like float training, but no weight decay, a smaller learning rate and
    fewer epochs; encodings first calibrated on ``calibration_fraction`` of the training set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(3, ge=0)
    lr: float = Field(1e-4, gt=0)
    warmup: float = Field(0.05, ge=0, lt=1)
    batch_size: int = Field(32, ge=1)
    calibration_fraction: float = Field(0.2, gt=0, le=1)

    def as_train_config(self) -> TrainConfig:
        """The fine-tuning recipe in the shape the training loop takes."""
        return TrainConfig(epochs=max(self.epochs, 1), lr=self.lr, weight_decay=0.0,
                           warmup=self.warmup, batch_size=self.batch_size)
