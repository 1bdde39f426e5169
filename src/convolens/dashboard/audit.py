"""The dashboard's audit log page (admins only): the rows, filtered, and their CSV export.

The same reads as GET /v1/audit; the page and the export are audited themselves (the
middleware records "audit.read" and "audit.export").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from convolens.audit import ACTIONS, AuditFilter, query_audit
from convolens.audit.http import annotate
from convolens.dashboard.routes import PREFIX, Who, _PageRoute, render
from convolens.dashboard.session import PageDenied
from convolens.service.auth import Principal, Role
from convolens.service.errors import ApiError
from convolens.service.state import Db

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, route_class=_PageRoute, include_in_schema=False)

OUTCOMES = ("ok", "denied", "not_found", "rejected", "error")


def _admin(who: Principal) -> None:
    if who.role != Role.admin:
        raise PageDenied(who, "audit")


def _filter(
    action: str | None, actor: str | None, outcome: str | None, since: str | None
) -> AuditFilter:
    """The filter form's fields; an empty field means any (a browser sends them empty)."""
    if outcome and outcome not in OUTCOMES:
        raise ApiError(422, "invalid_outcome", f"outcome: one of {', '.join(OUTCOMES)}")
    start = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise ApiError(422, "invalid_since", "since: a date such as 2026-10-01") from None
    return AuditFilter(
        action=action or None,
        actor=actor or None,
        outcome=outcome or None,  # type: ignore[arg-type]  # checked above
        since=start,
        limit=1000,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    db: Db,
    who: Who,
    action: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    _admin(who)
    entries = query_audit(db, _filter(action, actor, outcome, since))
    annotate(request, details={"rows": len(entries)})
    # The export link carries the filters in use (the form sends empty fields too).
    query = urlencode({k: v for k, v in request.query_params.items() if v})
    return render(
        "audit.html", request, who, active="audit", entries=entries, actions=sorted(ACTIONS),
        chosen={"action": action or "", "actor": actor or "", "outcome": outcome or "",
                "since": since or ""},
        csv_href=f"{PREFIX}/audit.csv" + (f"?{query}" if query else ""),
    )  # fmt: skip


@router.get("/audit.csv", response_model=None)
def audit_export(
    request: Request,
    db: Db,
    who: Who,
    action: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    from convolens.service.routes_governance import audit_csv

    _admin(who)
    entries = query_audit(db, _filter(action, actor, outcome, since))
    annotate(request, details={"rows": len(entries), "format": "csv"})
    return Response(
        audit_csv(entries),
        media_type="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="audit.csv"',
            "Cache-Control": "no-store",
        },
    )
