"""Drift and intake data health over HTTP: `/v1/drift` and `/v1/data-health`.

Thin routes over `convolens.health`, the functions `convolens drift` / `convolens health`
and the dashboard's Data health page call. They are aggregates: admins, analysts and
viewers read them; agents may not (they would see the whole team's intake through them).
A drift check that stores figures and sends alerts is for admins and analysts. Viewers get
drift figures without the per-value distribution (a value could come from conversation
text in a custom component).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from convolens.health import drift, store
from convolens.health.intake_checks import CHECKS, HealthFinding
from convolens.service.auth import Principal, Role, require
from convolens.service.errors import ApiError, ErrorResponse
from convolens.service.params import Day
from convolens.service.state import Caller, Db, get_service

__all__ = ["router"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 422)
}
router = APIRouter(tags=["data health"], responses=ERRORS)
READERS = (Role.admin, Role.analyst, Role.viewer)


def _settings(
    recent_days: int,
    reference_days: int,
    until: date | None,
    component: list[str] | None,
    psi_threshold: float,
    series_points: int,
    embeddings: bool,
) -> drift.DriftSettings:
    try:
        return drift.DriftSettings(
            recent_days=recent_days,
            reference_days=reference_days,
            until=until,
            components=component or None,
            psi_threshold=psi_threshold,
            series_points=series_points,
            embeddings=embeddings,
        )
    except ValidationError as exc:
        raise ApiError(422, "invalid_drift_request", str(exc.errors()[0]["msg"])) from None


def _shaped(report: drift.DriftReport, caller: Principal) -> drift.DriftReport:
    if not caller.reads_text:
        for component in report.components:
            component.distribution = []
    return report


RecentDays = Annotated[int, Query(ge=1, le=366, description="Days in the recent window.")]
ReferenceDays = Annotated[int, Query(ge=1, le=3660, description="Days in the reference window.")]
Until = Annotated[Day | None, Query(description="Last day of the recent window.")]
Components = Annotated[list[str] | None, Query(description="Only these components.")]
Psi = Annotated[float, Query(gt=0, le=10, description="PSI above this is drift.")]
Points = Annotated[int, Query(ge=0, le=104, description="Earlier windows for the series.")]
Embeddings = Annotated[
    bool, Query(description="Also the centroid shift of customer statements (embeds them).")
]


@router.get("/v1/drift", response_model=drift.DriftReport)
def get_drift(
    db: Db,
    caller: Caller,
    recent_days: RecentDays = 7,
    reference_days: ReferenceDays = 28,
    until: Until = None,
    component: Components = None,
    psi_threshold: Psi = 0.2,
    series_points: Points = 8,
    embeddings: Embeddings = False,
) -> drift.DriftReport:
    """Per component: label distribution (PSI, chi-square) and mean confidence of the
    recent window against the reference window, the PSI series of earlier windows, and
    optionally the embedding centroid shift of customer statements. Nothing is stored."""
    require(caller, *READERS)
    settings = _settings(
        recent_days, reference_days, until, component, psi_threshold, series_points, embeddings
    )
    return _shaped(drift.drift_report(db, settings), caller)


@router.post("/v1/drift/check", response_model=drift.DriftReport)
def post_drift_check(
    request: Request,
    db: Db,
    caller: Caller,
    recent_days: RecentDays = 7,
    reference_days: ReferenceDays = 28,
    until: Until = None,
    component: Components = None,
    psi_threshold: Psi = 0.2,
    series_points: Points = 8,
    embeddings: Embeddings = False,
    repeat_alerts: Annotated[
        bool, Query(description="Alert figures that were drifted at the last check too.")
    ] = False,
) -> drift.DriftReport:
    """As GET /v1/drift, and the figures are stored (`drift_results`) and each figure that
    newly drifted (or every drifted one, with `repeat_alerts`) is sent as a `drift`
    webhook event to the hooks whose rules match it."""
    require(caller, Role.admin, Role.analyst)
    settings = _settings(
        recent_days, reference_days, until, component, psi_threshold, series_points, embeddings
    )
    report = drift.check_drift(db, settings, repeat_alerts=repeat_alerts)
    if report.alerts:
        get_service(request).webhooks.notify()
    return report


@router.get("/v1/drift/checks", response_model=list[dict[str, Any]])
def get_drift_checks(
    db: Db, caller: Caller, limit: Annotated[int, Query(ge=1, le=10_000)] = 200
) -> list[dict[str, Any]]:
    """Stored drift figures (one per check, component and metric), newest first."""
    require(caller, *READERS)
    return drift.stored_checks(db, limit=limit)


@router.get(
    "/v1/data-health",
    response_model=list[HealthFinding],
    responses={
        200: {
            "description": "The findings (JSON), or with format=csv a CSV file of them.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def get_data_health(
    db: Db,
    caller: Caller,
    run_id: Annotated[str | None, Query(max_length=200)] = None,
    source: Annotated[str | None, Query(max_length=300)] = None,
    check: Annotated[str | None, Query(max_length=100, description=", ".join(CHECKS))] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 500,
    format: Literal["json", "csv"] = "json",
) -> list[HealthFinding] | Response:
    """What ingest runs got wrong against their sources' history (schema drift, fill-rate
    drops, volume, language mix, duplicates, PII in fields not meant for it), newest
    first; `format=csv` exports them."""
    require(caller, *READERS)
    if check is not None and check not in CHECKS:
        raise ApiError(422, "invalid_check", f"unknown check {check!r}; known: {', '.join(CHECKS)}")
    found = store.list_findings(db, run_id=run_id, source=source, check=check, limit=limit)
    if format == "csv":
        return Response(
            store.export_findings(found, "csv"),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="data-health.csv"'},
        )
    return found


@router.get("/v1/data-health/sources", response_model=list[store.SourceHealth])
def get_data_health_sources(db: Db, caller: Caller) -> list[store.SourceHealth]:
    """Per source: the fields and fill rates expected of it (learnt from its recent ingest
    runs), its language mix and the volume of its runs."""
    require(caller, *READERS)
    return store.source_health(db)
