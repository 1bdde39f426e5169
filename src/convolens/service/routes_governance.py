"""Governance (#17 items 6-7): the audit log, retention and erasure by person. Admins only.

The audit rows for these routes (and every other audited one) are written by
convolens.audit.http.AuditMiddleware; erasure and retention write their own, with the
receipt, through the library.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from convolens.audit import AuditEntry, AuditFilter, query_audit
from convolens.audit.http import annotate, request_id
from convolens.audit.log import Via
from convolens.retention import ErasureReceipt, Person, RetentionReport, erase_person
from convolens.retention.enforce import RetentionScheduler
from convolens.retention.erasure import find_person
from convolens.service.auth import Role, require
from convolens.service.errors import ApiError, ErrorResponse
from convolens.service.state import Caller, Db, Service, get_service

__all__ = ["AUDIT_COLUMNS", "audit_csv", "router", "scheduler"]

router = APIRouter(
    prefix="/v1",
    tags=["governance"],
    responses={code: {"model": ErrorResponse} for code in (401, 403, 422)},
)

AUDIT_COLUMNS = [
    "audit_id", "occurred_at", "actor_key_id", "actor_name", "actor_role", "via", "action",
    "target_type", "target_id", "outcome", "status", "request_id", "route", "details",
]  # fmt: skip


def audit_csv(entries: list[AuditEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for entry in entries:
        row = entry.model_dump(mode="json")
        writer.writerow(
            [row[c] if c != "details" else _json(row["details"]) for c in AUDIT_COLUMNS]
        )
    return out.getvalue()


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


@router.get("/audit", response_model=list[AuditEntry])
def audit_log(
    request: Request,
    db: Db,
    caller: Caller,
    action: Annotated[str | None, Query(max_length=100, description="'key.' for a prefix")] = None,
    actor: Annotated[str | None, Query(max_length=200, description="key id or name")] = None,
    target_id: Annotated[str | None, Query(max_length=300)] = None,
    outcome: Literal["ok", "denied", "not_found", "rejected", "error"] | None = None,
    via: Literal["api", "dashboard", "cli", "scheduler", "library"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 500,
    format: Literal["json", "csv"] = "json",
) -> list[AuditEntry] | Response:
    """The audit log, newest first: who did what to which target, when, and how it went.
    `format=csv` exports it (an "audit.export" row records that)."""
    require(caller, Role.admin)
    where = AuditFilter(
        action=action, actor=actor, target_id=target_id, outcome=outcome, via=via,
        since=since, until=until, limit=limit,
    )  # fmt: skip
    entries = query_audit(db, where)
    annotate(request, details={"rows": len(entries), "format": format})
    if format == "csv":
        annotate(request, action="audit.export")
        return Response(
            audit_csv(entries),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    return entries


def _no_running_jobs(db: Db, ids: list[str]) -> None:
    """A running job on one of these conversations would write it again after the erase."""
    if ids and db.query(
        "SELECT 1 FROM jobs WHERE status = 'running' AND (list_contains(?, conversation_id) OR "
        "len(list_filter(?::VARCHAR[], lambda c: contains(coalesce(CAST(request AS VARCHAR), "
        "''), c))) > 0) LIMIT 1",
        [ids, ids],
    ):
        raise ApiError(
            409,
            "job_running",
            "a job is processing one of this person's conversations: erase once it has ended",
        )


@router.post("/erasure", response_model=ErasureReceipt)
def erasure(body: Person, request: Request, db: Db, caller: Caller) -> ErasureReceipt:
    """Erase a person (by email, phone, customer id or account id) from every layer: their
    conversations whole, every row and spooled file that mentions them, and the freed
    bytes of the warehouse. The receipt (counts, hashed conversation ids; never the
    person's data) is returned and kept in the audit log."""
    require(caller, Role.admin)
    return run_erasure(request, db, body, caller, via="api")


def run_erasure(
    request: Request, db: Db, person: Person, actor: object, via: Via
) -> ErasureReceipt:
    """Erase `person` for the API or the dashboard: refused while a job holds one of their
    conversations, run under the label lock so no labelling job writes meanwhile, audited."""
    service = get_service(request)
    ids, _ = find_person(db, person, spool=service.settings.spool_dir())
    _no_running_jobs(db, ids)
    with service.pipeline.label_lock:
        receipt = erase_person(
            db, person, spool=service.settings.spool_dir(), actor=actor, via=via,
            request_id=request_id(request),
        )  # fmt: skip
    annotate(request, recorded=True)
    return receipt


@router.get("/retention")
def retention_policy(request: Request, caller: Caller) -> dict[str, str]:
    """How long each layer is kept (CONVOLENS_RETENTION*; docs/governance.md)."""
    require(caller, Role.admin)
    return _scheduler(request).policy.describe()


@router.post("/retention/run", response_model=RetentionReport)
def retention_run(request: Request, caller: Caller) -> RetentionReport:
    """Apply the retention policy now (the server also does on its schedule)."""
    require(caller, Role.admin)
    report = _scheduler(request).run_now(actor=caller, via="api", request_id=request_id(request))
    annotate(request, recorded=True)
    return report


def _scheduler(request: Request) -> RetentionScheduler:
    found: RetentionScheduler = request.app.state.retention
    return found


def scheduler(app: FastAPI, service: Service) -> RetentionScheduler:
    """The server's retention job (started by the app's lifespan when a policy is set)."""
    made = RetentionScheduler(
        service.db,
        service.settings.retention,
        service.settings.spool_dir(),
        lock=service.pipeline.label_lock,
    )
    app.state.retention = made
    return made
