"""Service settings: the library's (:class:`autoq.settings.AutoqSettings`) and the service's
own, read from ``AUTOQ_*`` environment variables (or a ``.env`` file).

Read through :func:`get_settings` (cached), never at import, so tests and the CLI can set the
environment first; the CLI passes an updated copy to the app for its ``--storage`` flag.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from autoq.errors import SettingsError
from autoq.settings import AutoqSettings, read_settings


class Settings(AutoqSettings):
    """Everything the API and the workers are configured by, beyond the library's settings.

    Attributes:
        api_token: when set (and not empty), mutating endpoints need
            ``Authorization: Bearer <token>``.
        data_root: every data path of a submitted spec must lie inside this directory; relative
            paths resolve against it.
        limit_trials: largest trial budget a job may ask for.
        limit_job_seconds: wall-time cap of a job, from its first start; a job that reaches it
            stops at the next trial boundary and fails with a message saying so. A spec's
            ``search.timeout`` may not ask for more.
        limit_samples, limit_resolution, limit_frames: largest ``data.generate`` a spec may
            ask for: samples, grid points per axis (an omitted resolution is the public data
            set's, checked too), saved frames per trajectory.
        limit_train_epochs: largest ``train.epochs`` (and ``train.rescale_epochs``, and a
            user model's ``model.finetune_epochs``).
        limit_qat_epochs: largest ``qat.epochs``.
        max_request_bytes: largest request body accepted.
        job_heartbeat_seconds: how often a worker stamps the job it runs.
        job_heartbeat_timeout: a running job whose stamp is older goes back to the queue.
        max_attempts: a job whose worker died this many times fails instead of re-queueing.
        poll_seconds: how long an idle worker sleeps between looks at the queue.
        allowed_factories: modules (and their submodules) whose callables a submitted spec
            may name as ``model.factory``; comma-separated in the environment. Empty: none.
    """

    api_token: SecretStr | None = None
    data_root: Path = Path(".")
    # Defaults: the largest values of the bundled spaces (their paper sizes), which a 2-core
    # server runs, in days rather than hours (benchmarks/RESULTS.md).
    limit_trials: int = Field(500, ge=1)
    limit_job_seconds: float = Field(7 * 24 * 3600.0, gt=0)
    limit_samples: int = Field(2000, ge=3)
    limit_resolution: int = Field(1024, ge=8)
    limit_frames: int = Field(201, ge=2)
    limit_train_epochs: int = Field(100, ge=1)
    limit_qat_epochs: int = Field(10, ge=0)
    max_request_bytes: int = Field(1 << 20, ge=1024)
    job_heartbeat_seconds: float = Field(10.0, gt=0)
    job_heartbeat_timeout: float = Field(60.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    poll_seconds: float = Field(1.0, gt=0)
    allowed_factories: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("allowed_factories", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        # Compose files pass unset variables as empty strings; an empty token must not be a
        # token everyone knows.
        return None if value == "" else value


_RENAMED = {"AUTOQ_MAX_TRIALS": "AUTOQ_LIMIT_TRIALS",
            "AUTOQ_MAX_JOB_SECONDS": "AUTOQ_LIMIT_JOB_SECONDS"}
"""Variables earlier versions of the service read: set, they would be ignored silently."""


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once per process.

    Raises:
        SettingsError: a variable is invalid, or one that was renamed is set.
    """
    renamed = [f"{old} is no longer read: use {new}" for old, new in _RENAMED.items()
               if old in os.environ]
    if renamed:
        raise SettingsError("environment: " + "; ".join(renamed))
    return read_settings(Settings)
