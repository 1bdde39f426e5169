"""Label review over HTTP (/v1/review): the queue, verdicts, quality figures, and the
taxonomy versions that reviewed corrections feed. Thin routes over `convolens.review`.

Who does what: reviewers are admin and analyst keys (no separate role: both read
conversation text already, which reviewing needs); viewers read the quality figures
(aggregates, no text); agents nothing here. Proposing, validating and activating a
taxonomy version is for admins, as storing one is (/v1/definitions).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from convolens.client.models import Accepted
from convolens.review import feedback
from convolens.review.figures import QualityReport, quality_report
from convolens.review.queue import (
    BatchSummary,
    QueueStatus,
    Review,
    ReviewError,
    ReviewInput,
    ReviewItem,
    SampleSpec,
    create_batch,
    get_item,
    next_item,
    queue_status,
    record_review,
)
from convolens.service.auth import Role, require
from convolens.service.errors import ApiError, ErrorResponse
from convolens.service.jobs import Job
from convolens.service.state import Caller, Db, get_service
from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = ["router", "run_validation_job"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422)
}
router = APIRouter(prefix="/v1/review", tags=["review"], responses=ERRORS)
REVIEWERS = (Role.admin, Role.analyst)
Name = Annotated[str | None, Query(max_length=100)]


class NextItem(BaseModel):
    item: ReviewItem | None = Field(description="None when nothing waits for this reviewer.")


class ActivateRequest(BaseModel):
    accept: bool = Field(description="The validation figures were read and are accepted.")


def _refused(exc: WarehouseError) -> ApiError:
    status = exc.status if isinstance(exc, ReviewError) else 422
    code = {404: "review_item_not_found", 409: "already_reviewed"}.get(status, "invalid_review")
    return ApiError(status, code, str(exc))


@router.post("/batches", status_code=201, response_model=BatchSummary)
def sample(caller: Caller, db: Db, body: Annotated[SampleSpec, Body()]) -> BatchSummary:
    """Sample labels to review per component, label and value: a random stratum (for
    precision) plus low-confidence and disagreement cases; a share gets a second reviewer."""
    require(caller, *REVIEWERS)
    return create_batch(db, body, created_by=caller.key_id)


@router.get("/batches", response_model=list[QueueStatus])
def batches(caller: Caller, db: Db) -> list[QueueStatus]:
    """Each batch, newest first, with how many items are reviewed and waiting."""
    require(caller, *REVIEWERS)
    return queue_status(db)


@router.get("/next", response_model=NextItem)
def next_for_me(caller: Caller, db: Db, batch_id: Name = None) -> NextItem:
    """The next item this key has not reviewed, with its evidence cut into marked pieces."""
    require(caller, *REVIEWERS)
    return NextItem(item=next_item(db, caller.key_id, batch_id))


@router.get("/items/{item_id}", response_model=ReviewItem)
def item(caller: Caller, db: Db, item_id: str) -> ReviewItem:
    require(caller, *REVIEWERS)
    try:
        return get_item(db, item_id)
    except WarehouseError as exc:
        raise _refused(exc) from None


@router.post("/items/{item_id}", status_code=201, response_model=Review)
def review(caller: Caller, db: Db, item_id: str, body: Annotated[ReviewInput, Body()]) -> Review:
    """Accept the label, correct it (`corrected_value`, and/or `missed_values` the model
    did not give) or skip it; one verdict per key and item (409 for a second)."""
    require(caller, *REVIEWERS)
    try:
        return record_review(db, item_id, caller.key_id, body, reviewer_name=caller.name)
    except WarehouseError as exc:
        raise _refused(exc) from None


@router.get("/quality", response_model=QualityReport)
def quality(
    caller: Caller,
    db: Db,
    component: Name = None,
    label: Name = None,
    bar: Annotated[float | None, Query(ge=0, le=1)] = None,
    min_reviews: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> QualityReport:
    """Per label value: precision with a 95 % interval (random stratum), recall where
    reviewers added missed labels, flags under the bar; per label: model-human and
    human-human agreement; per week."""
    require(caller, Role.admin, Role.analyst, Role.viewer)
    return quality_report(db, component=component, label=label, bar=bar, min_reviews=min_reviews)


@router.get("/candidates", response_model=list[feedback.Candidate])
def candidates(caller: Caller, db: Db) -> list[feedback.Candidate]:
    """Utterances reviewers relabelled: the examples `propose` adds to the taxonomy."""
    require(caller, *REVIEWERS)
    return feedback.candidates(db)


@router.get("/taxonomies", response_model=list[feedback.TaxonomyVersion])
def taxonomies(caller: Caller, db: Db) -> list[feedback.TaxonomyVersion]:
    """Stored taxonomy versions with status, approver and validation figures."""
    require(caller, *REVIEWERS)
    return feedback.taxonomy_versions(db)


@router.post("/taxonomies/propose", status_code=201, response_model=feedback.Proposal)
def propose(caller: Caller, db: Db) -> feedback.Proposal:
    """Store the next taxonomy version, with the corrected examples, as a draft."""
    require(caller, Role.admin)
    try:
        return feedback.propose(db, created_by=caller.key_id)
    except (WarehouseError, ValueError) as exc:
        raise ApiError(422, "nothing_to_propose", str(exc)) from None


@router.post("/taxonomies/{version}/validate", status_code=202, response_model=Accepted)
def validate(
    request: Request,
    caller: Caller,
    db: Db,
    version: int,
    folds: Annotated[int, Query(ge=2, le=10, description="Cross-validation folds.")] = 5,
) -> Accepted:
    """Cross-validate the draft on the reviewed items beside the active taxonomy, as a job
    (it trains a classifier per fold); the figures are its result and stay with the version."""
    require(caller, Role.admin)
    [row] = db.query(
        "SELECT count(*) AS n FROM definitions WHERE kind = 'taxonomy' AND version = ? "
        "AND status IN ('draft', 'validated')",
        [version],
    )
    if not row["n"]:
        raise ApiError(422, "cannot_validate", f"no draft taxonomy version {version}")
    job_id = get_service(request).queue.submit(
        db, "taxonomy_validate", {"version": version, "folds": folds}, created_by=caller.key_id
    )
    return Accepted(job_id=job_id, status_url=f"/v1/jobs/{job_id}")


def run_validation_job(
    db: Warehouse, job: Job, request: dict[str, Any], progress: Any
) -> dict[str, Any]:
    progress("cross-validating", 0.0)
    folds = int(request.get("folds", 5))
    return feedback.validate(db, int(request["version"]), folds=folds).model_dump()


@router.post("/taxonomies/{version}/activate", response_model=feedback.TaxonomyVersion)
def activate(
    request: Request,
    caller: Caller,
    db: Db,
    version: int,
    body: Annotated[ActivateRequest, Body()],
) -> feedback.TaxonomyVersion:
    """Activate a validated version whose figures are accepted; a job relabels with it."""
    require(caller, Role.admin)
    try:
        activated = feedback.activate(db, version, caller.name, accept=body.accept)
    except WarehouseError as exc:
        raise ApiError(422, "cannot_activate", str(exc)) from None
    from convolens.service.definitions import overrides

    config = overrides(db).get("intents", {})
    job_id = get_service(request).queue.submit(
        db, "reprocess", {"component": "intents", "config": config}, created_by=caller.key_id
    )
    activated.validation = {**(activated.validation or {}), "relabel_job_id": job_id}
    return activated
