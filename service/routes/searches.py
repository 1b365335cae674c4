"""Searches: submit, list, inspect, read results, cancel."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Response
from optuna.storages import BaseStorage
from sqlalchemy.orm import Session

from autoq.errors import SpecError
from autoq.search import (
    best_mse_point,
    default_reference,
    hypervolume,
    operating_point,
    pareto_front,
)
from autoq.search.records import DEPLOYABLE_ATTR
from autoq.search.results import error_bound
from service import jobs
from service.deps import SessionDep, SettingsDep, StorageDep, TokenDep
from service.errors import InvalidRequestError, NotFoundError
from service.models import Job, utcnow
from service.schemas import (
    JobStatus,
    NoOperatingPoint,
    OperatingPointPublic,
    ParetoPublic,
    ReferencePoint,
    SearchCreate,
    SearchCreated,
    SearchDetail,
    SearchesPublic,
    SearchPublic,
    TrialCounts,
    TrialPublic,
    TrialsPublic,
    error_responses,
)
from service.specs import public_spec, submitted_spec, trial_budget
from service.studies import Progress, study_trials, trial_counts

# Every route reads the database (503 while it does not answer) and takes parameters (422).
router = APIRouter(prefix="/searches", tags=["searches"], responses=error_responses(422, 503))

PositiveFloat = Annotated[float, Query(gt=0, allow_inf_nan=False)]
_UNKNOWN = error_responses(404)


def _public(job: Job, progress: Progress) -> SearchPublic:
    elapsed = None
    if job.started_at is not None:
        elapsed = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
    return SearchPublic(
        id=uuid.UUID(job.id), name=job.name, status=job.status,
        cancel_requested=job.cancel_requested,
        trials=TrialCounts(asked=job.trials, done=progress.done, complete=progress.complete,
                           failed=progress.failed, running=progress.running),
        error=job.error, attempts=job.attempts, created_at=job.created_at,
        started_at=job.started_at, finished_at=job.finished_at, heartbeat_at=job.heartbeat_at,
        elapsed_seconds=elapsed)


def _one_public(session: Session, storage: BaseStorage, job: Job) -> SearchPublic:
    return _public(job, trial_counts(session, storage, [job.name])[job.name])


@router.post("", status_code=202, dependencies=[TokenDep],
             responses=error_responses(400, 401, 409, 413, described={409: "name taken"}))
def submit_search(body: SearchCreate, session: SessionDep, settings: SettingsDep
                  ) -> SearchCreated:
    """Queue a search: a bundled ``space`` with ``overrides``, or a whole ``spec``."""
    spec = submitted_spec(body, settings)
    job = jobs.create_job(session, spec=spec, trials=trial_budget(body, spec, settings),
                          name=body.name)
    return SearchCreated(id=uuid.UUID(job.id), name=job.name, status=job.status)


@router.get("")
def list_searches(
    session: SessionDep,
    storage: StorageDep,
    status: JobStatus | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchesPublic:
    """Searches, newest first; ``count`` is the total matching ``status``."""
    page, count = jobs.list_jobs(session, status=status, offset=offset, limit=limit)
    progress = trial_counts(session, storage, [job.name for job in page])
    return SearchesPublic(data=[_public(job, progress[job.name]) for job in page], count=count)


@router.get("/{search_id}", responses=_UNKNOWN)
def get_search(search_id: uuid.UUID, session: SessionDep, storage: StorageDep,
               settings: SettingsDep) -> SearchDetail:
    """Status, trials done of asked, timings, error, and the spec (its paths relative to the
    data root)."""
    job = jobs.get_job(session, job_id=str(search_id))
    return SearchDetail(**_one_public(session, storage, job).model_dump(),
                        spec=public_spec(job.spec, settings.data_root))


@router.get("/{search_id}/trials", responses=_UNKNOWN)
def list_trials(search_id: uuid.UUID, session: SessionDep, storage: StorageDep
                ) -> TrialsPublic:
    """Every trial of the search, in trial order."""
    job = jobs.get_job(session, job_id=str(search_id))
    points = study_trials(session, storage, name=job.name)
    return TrialsPublic(data=[TrialPublic(**p.to_json()) for p in points], count=len(points))


@router.get("/{search_id}/pareto", responses=_UNKNOWN)
def get_pareto(
    search_id: uuid.UUID,
    session: SessionDep,
    storage: StorageDep,
    ref_cost: PositiveFloat | None = None,
    ref_mse: PositiveFloat | None = None,
) -> ParetoPublic:
    """The non-dominated trials, sorted by cost, with the hypervolume they dominate.

    The reference point defaults to 1.1 × the largest cost and MSE among complete trials;
    ``ref_cost`` and ``ref_mse`` fix either coordinate (fix both to compare searches).
    """
    job = jobs.get_job(session, job_id=str(search_id))
    points = study_trials(session, storage, name=job.name)
    front = [TrialPublic(**p.to_json()) for p in pareto_front(points)]
    if not front:
        return ParetoPublic(data=[], count=0, hypervolume=None, reference=None)
    default_cost, default_mse = default_reference(points)
    reference = (ref_cost or default_cost, ref_mse or default_mse)
    return ParetoPublic(data=front, count=len(front), hypervolume=hypervolume(points, reference),
                        reference=ReferencePoint(cost=reference[0], mse=reference[1]))


@router.get("/{search_id}/operating-point",
            responses={404: {"model": NoOperatingPoint,
                             "description": "no such search, or no trial within the bound"}})
def get_operating_point(search_id: uuid.UUID, session: SessionDep, storage: StorageDep,
                        max_mse: PositiveFloat | None = None,
                        max_ratio: PositiveFloat | None = None) -> OperatingPointPublic:
    """The cheapest complete, feasible trial whose error is at most ``max_mse``, or at most
    ``max_ratio`` × the float model's error at full resolution (give one of the two). When none
    is, a 404 whose body carries the lowest-error trial as ``best``."""
    job = jobs.get_job(session, job_id=str(search_id))
    points = study_trials(session, storage, name=job.name)
    loc = ("query", "max_mse" if max_ratio is None else "max_ratio")
    try:
        bound = error_bound(points, max_mse=max_mse, max_ratio=max_ratio)
    except SpecError as e:
        raise InvalidRequestError(str(e), loc=loc) from e
    chosen = operating_point(points, bound)
    if chosen is None:
        best = best_mse_point(points)
        message = (f"no complete trial has MSE ≤ {bound:g}" if best is None else
                   f"no complete trial has MSE ≤ {bound:g}; the best MSE is {best.mse:g}")
        raise NotFoundError(message, loc=loc,
                            extra={"best": None if best is None else best.to_json()})
    return OperatingPointPublic(max_mse=bound, max_ratio=max_ratio,
                                trial=TrialPublic(**chosen.to_json()))


@router.get("/{search_id}/trials/{number}/artifact", response_class=Response,
            responses={200: {"content": {"application/zip": {}},
                             "description": "the trial's deployable folder as a zip"},
                       **error_responses(404, described={
                           404: "no such search or trial, or no deployable model"})})
def get_artifact(search_id: uuid.UUID, number: int, session: SessionDep, storage: StorageDep,
                 settings: SettingsDep) -> Response:
    """The trial's deployable model as a zip: ``model.onnx`` (raw input to raw output),
    ``model.encodings``, ``manifest.json`` and the quantized network (``network/``)."""
    job = jobs.get_job(session, job_id=str(search_id))
    points = study_trials(session, storage, name=job.name)
    point = next((p for p in points if p.number == number), None)
    loc = ("path", "number")
    if point is None:
        raise NotFoundError(f"search {job.name!r} has no trial {number}", loc=loc)
    recorded = point.details.get(DEPLOYABLE_ATTR)
    if recorded is None:
        why = (f"it is {point.state}" if not point.complete else
               "its network has no ONNX form, or it quantizes no layer")
        raise NotFoundError(f"trial {number} of {job.name!r} has no deployable model: {why}",
                            loc=loc)
    folder, root = Path(recorded).resolve(), settings.artifact_dir.resolve()
    # The path comes from the database: serve only what this server's workers wrote.
    if not folder.is_relative_to(root) or not (folder / "model.onnx").is_file():
        raise NotFoundError(f"trial {number} of {job.name!r}: its deployable model is not in "
                            f"this server's artifact folder", loc=loc)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    filename = f"{job.name}-trial-{number}.zip"
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.post("/{search_id}/cancel", status_code=202, dependencies=[TokenDep],
             responses=error_responses(401, 404, 409, described={409: "already finished"}))
def cancel_search(search_id: uuid.UUID, session: SessionDep, storage: StorageDep
                  ) -> SearchPublic:
    """Cancel: a queued search at once, a running one at its next trial boundary."""
    job = jobs.request_cancel(session, job_id=str(search_id))
    return _one_public(session, storage, job)
