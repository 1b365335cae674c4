"""autoq's settings, read from ``AUTOQ_*`` environment variables (or a ``.env`` file).

One object for the library; the service's settings (:class:`service.config.ServiceSettings`)
extend it. Read through :func:`get_settings` at the moment a value is needed, never at import,
so a process sees its environment as it is then (tests and the CLI set it first).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from autoq.errors import SettingsError, describe_validation_error

DEFAULT_STORAGE = "sqlite:///autoq.db"
S = TypeVar("S", bound="AutoqSettings")


def bundled_spaces_dir() -> Path:
    """The search spaces shipped inside the package (``autoq/search_spaces``)."""
    return Path(str(files("autoq").joinpath("search_spaces")))


class AutoqSettings(BaseSettings):
    """Everything the library is configured by.

    Attributes:
        storage: SQLAlchemy URL of the database holding the searches (Optuna's studies).
        device: torch device to compute on (``cpu``, ``cuda``, ``cuda:1``); unset: CUDA when a
            GPU is visible, else the CPU.
        threads: torch intra-op threads; unset: every core this process may run on.
        cache_dir: where float models are cached (trained once per scale).
        artifact_dir: where the CLI's searches export each trial's quantized network.
        search_spaces: the folder of search-space YAML files that bundled names refer to.
        trial_heartbeat_seconds: Optuna's trial heartbeat: a trial whose process stops stamping
            for two intervals is failed and retried. Must be the same in every process of a
            search.
        ray_address: Ray cluster for searches whose executor is ``ray`` (unset: a local Ray).
    """

    model_config = SettingsConfigDict(env_prefix="AUTOQ_", env_file=".env", extra="ignore")

    storage: str = DEFAULT_STORAGE
    device: str | None = None
    threads: int | None = Field(None, ge=1)
    cache_dir: Path = Path("artifacts/float")
    artifact_dir: Path = Path("artifacts/trials")
    search_spaces: Path = Field(default_factory=bundled_spaces_dir)
    trial_heartbeat_seconds: int = Field(30, ge=1)
    ray_address: str | None = None

    @field_validator("device", "threads", "ray_address", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose files and shells pass unset variables as empty strings.
        return None if value == "" else value


_RENAMED = {
    "AUTOQ_HEARTBEAT_SECONDS": "AUTOQ_TRIAL_HEARTBEAT_SECONDS (Optuna's trial heartbeat, whole "
                               "seconds) or AUTOQ_JOB_HEARTBEAT_SECONDS (the service's job "
                               "heartbeat)",
    "AUTOQ_HEARTBEAT_TIMEOUT": "AUTOQ_JOB_HEARTBEAT_TIMEOUT",
}
"""Variables earlier versions read, and what replaced them: set, they would be ignored."""


def read_settings(cls: type[S]) -> S:
    """Settings of class ``cls`` from the environment; a SettingsError names every bad
    variable (``AUTOQ_TRIAL_HEARTBEAT_SECONDS: Input should be a valid integer…``) and every
    variable that was renamed."""
    renamed = [f"{old} is no longer read: use {new}" for old, new in _RENAMED.items()
               if old in os.environ]
    if renamed:
        raise SettingsError("environment: " + "; ".join(renamed))
    try:
        return cls()
    except ValidationError as e:
        prefix = str(cls.model_config.get("env_prefix", ""))
        raise SettingsError(
            f"environment: {describe_validation_error(e, env_prefix=prefix)}") from e


def get_settings() -> AutoqSettings:
    """The library's settings from the environment as it is now (cheap: a few env reads)."""
    return read_settings(AutoqSettings)
