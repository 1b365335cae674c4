"""Request and response bodies of the REST API (one schema per direction)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from autoq.search import SearchSpec
from service.models import JobStatus

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _SearchCreateBase(_Request):
    name: str | None = Field(None, min_length=1, max_length=128, pattern=NAME_PATTERN,
                             description="study name (default: the spec's name + job id)")
    trials: int | None = Field(None, ge=1, description="trial budget (default: the spec's)")


class BundledSearchCreate(_SearchCreateBase):
    """Submit a bundled search space, optionally with overrides deep-merged into it."""

    space: str = Field(max_length=128, description="a bundled search space name",
                       examples=["burgers-fno-small"])
    overrides: dict[str, Any] | None = Field(
        None, description="partial spec deep-merged into the bundled space",
        examples=[{"search": {"trials": 8}}])


class InlineSearchCreate(_SearchCreateBase):
    """Submit a whole search spec."""

    spec: SearchSpec


BUNDLED, INLINE = "bundled-space", "inline-spec"


def _submission_kind(body: Any) -> str:
    has_spec = "spec" in body if isinstance(body, dict) else isinstance(body, InlineSearchCreate)
    return INLINE if has_spec else BUNDLED


SearchCreate = Annotated[
    Annotated[BundledSearchCreate, Tag(BUNDLED)] | Annotated[InlineSearchCreate, Tag(INLINE)],
    Discriminator(_submission_kind),
]
"""A submission: ``{"space", "overrides"?}`` or ``{"spec"}``, plus optional name and budget."""


class SearchCreated(BaseModel):
    """A queued search."""

    id: uuid.UUID
    name: str
    status: JobStatus


class TrialCounts(BaseModel):
    """A search's progress, read from its Optuna study."""

    asked: int = Field(description="the trial budget")
    done: int = Field(description="trials that count towards the budget")
    complete: int
    failed: int
    running: int


class SearchPublic(BaseModel):
    """A search job: status, progress and timings (UTC)."""

    id: uuid.UUID
    name: str
    status: JobStatus
    cancel_requested: bool
    trials: TrialCounts
    error: str | None
    attempts: int = Field(description="claims by a worker; above 1 after a worker died")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    elapsed_seconds: float | None = Field(description="since the first start")


class SearchDetail(SearchPublic):
    """A search job with its spec."""

    spec: dict[str, Any]


class SearchesPublic(BaseModel):
    """A page of searches and the total matching the filter."""

    data: list[SearchPublic]
    count: int


class LatencyPublic(BaseModel):
    """A trial's measured latency: the deployable model and the float model at full
    resolution, timed in the same run on the same machine."""

    runtime: str
    threads: int | None
    batch: int
    machine: str
    median_s: float
    spread_s: float = Field(description="interquartile range of the timed runs, seconds")
    runs: int
    float_median_s: float
    speedup: float = Field(description="float_median_s / median_s")


class TrialPublic(BaseModel):
    """One trial: ``bits`` maps each layer to ``[weight_bits, act_bits]`` or ``"float"``."""

    number: int
    state: str
    mse: float | None
    cost: float | None
    scale: float | None
    rank: int | float | None = Field(None, description="factorization rank, in a search over "
                                                      "ranks (space.ranks)")
    bits: dict[str, list[int] | Literal["float"]]
    baseline: bool
    regime: str | None = Field(None, description="the paper's uniform regime of a baseline")
    feasible: bool = Field(True, description="meets every constraint of the search "
                                             "(max_mse, max_cost); only feasible trials can be "
                                             "on the Pareto set or the operating point")
    error: str | None = Field(None, description="why the trial failed, if it did")
    deployed_error: float | None = Field(
        None, description="the error of the trial's deployable ONNX model under onnxruntime, "
                          "in the search's metric")
    latency: LatencyPublic | None = Field(
        None, description="measured latency of the deployable model (autoq latency)")


class TrialsPublic(BaseModel):
    """Every trial of a search."""

    data: list[TrialPublic]
    count: int


class ReferencePoint(BaseModel):
    """The hypervolume's reference point (cost, MSE)."""

    cost: float
    mse: float


class ParetoPublic(BaseModel):
    """The non-dominated trials sorted by cost, and the hypervolume they dominate up to the
    reference point, in (log10 cost, log10 MSE); both null before any trial completes."""

    data: list[TrialPublic]
    count: int
    hypervolume: float | None
    reference: ReferencePoint | None


class OperatingPointPublic(BaseModel):
    """The cheapest trial within the error bound."""

    max_mse: float = Field(description="the absolute bound applied")
    max_ratio: float | None = Field(None, description="the bound relative to the float model's "
                                                      "error, when one was asked")
    trial: TrialPublic


class SearchSpacePublic(BaseModel):
    """A bundled search space."""

    name: str
    description: str
    pde: str
    arch: str
    trials: int
    spec: dict[str, Any]


class SearchSpacesPublic(BaseModel):
    """The bundled search spaces."""

    data: list[SearchSpacePublic]
    count: int


class Status(BaseModel):
    """Health and readiness."""

    status: Literal["ok"]


class ErrorItem(BaseModel):
    """One problem, at the field ``loc`` names."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error response."""

    detail: list[ErrorItem]


class NoOperatingPoint(ErrorBody):
    """No such search, or no complete trial meets the bound: then ``best`` is the lowest-MSE
    trial (null if none)."""

    best: TrialPublic | None = None
