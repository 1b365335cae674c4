"""Request and response bodies of the REST API (one schema per direction).

Requests are validated strictly: JSON's types are the only ones a field takes (``"8"`` is not a
bitwidth, ``8.0`` not an integer, ``0`` not a boolean; an integer is a number), numbers are
finite and strings are Unicode text, wherever in the body they are.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from autoq.search import SearchSpec
from service.models import JobStatus

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def _unfit_values(value: Any, loc: tuple[str | int, ...] = ()
                  ) -> Iterator[InitErrorDetails]:
    """Every number that is not finite and every string that is not Unicode text (a lone
    surrogate, which JSON's escapes can spell) in a parsed JSON body, with its location."""
    if isinstance(value, float) and not math.isfinite(value):
        # Python's JSON parser reads NaN and Infinity, which JSON has not.
        yield InitErrorDetails(type="finite_number", loc=loc, input=value)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield InitErrorDetails(
                type=PydanticCustomError("unicode_invalid",
                                         "Input should be Unicode text (no lone surrogates)"),
                loc=loc, input=value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unfit_values(key, (*loc, key))
            yield from _unfit_values(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unfit_values(item, (*loc, index))


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _finite_numbers_and_text(cls, data: Any) -> Any:
        unfit = list(_unfit_values(data))
        if unfit:
            raise ValidationError.from_exception_data(cls.__name__, unfit)
        return data


class _SearchCreateBase(_Request):
    name: str | None = Field(None, min_length=1, max_length=128, pattern=NAME_PATTERN,
                             description="study name (default: the spec's name + job id)")
    trials: int | None = Field(None, ge=1, description="trial budget (default: the spec's); "
                                                      "at most AUTOQ_LIMIT_TRIALS")


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

    @field_validator("spec", mode="before")
    @classmethod
    def _strict_spec(cls, value: Any) -> Any:
        # The spec's models are the library's, lax for YAML files; a request gets none of
        # their coercions.
        if isinstance(value, SearchSpec):
            return value
        return SearchSpec.model_validate(value, strict=True)


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
    attempts: int = Field(description="claims by a worker that did not end in a graceful "
                          "release: above 1 after a worker crashed")
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
    cost: float | None = Field(description="the search's cost objective (search.objectives): "
                                           "bit-ops, or the measured latency relative to the "
                                           "float model at full resolution")
    bitops: float | None = Field(None, description="the configuration's bit-op count (also in "
                                                   "a latency search)")
    scale: float | None
    rank: int | float | None = Field(None, description="factorization rank, in a search over "
                                                      "ranks (space.ranks)")
    bits: dict[str, list[int] | Literal["float"]]
    baseline: bool
    regime: str | None = Field(None, description="the paper's uniform regime of a baseline")
    feasible: bool = Field(True, description="meets every constraint of the search "
                                             "(max_mse, max_cost, and full_fidelity: a trial "
                                             "screened on a prefix of its QAT is not); only "
                                             "feasible trials can be on the Pareto set or the "
                                             "operating point")
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


Responses = dict[int | str, dict[str, Any]]
"""FastAPI's type of a route's extra ``responses``."""

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait before trying again",
                          "schema": {"type": "integer", "minimum": 1}}},
}
_ERROR_DESCRIPTIONS = {
    400: "the body is not JSON",
    401: "missing or wrong bearer token",
    404: "no such search",
    409: "the request clashes with the current state",
    413: "the body is larger than AUTOQ_MAX_REQUEST_BYTES",
    422: "a field is invalid; loc names it",
    503: "the database does not answer; try again after Retry-After seconds",
}


def error_responses(*statuses: int, described: Mapping[int, str] | None = None) -> Responses:
    """The ``responses`` of the error statuses a route answers, all in the error shape
    (:class:`ErrorBody`), with the headers they carry; ``described`` replaces the generic
    description of some."""
    described = described or {}
    return {status: {"model": ErrorBody,
                     "description": described.get(status, _ERROR_DESCRIPTIONS[status]),
                     **({"headers": _ERROR_HEADERS[status]} if status in _ERROR_HEADERS else {})}
            for status in statuses}
