"""The dashboard's taxonomy versions page (#17 item 3): every stored intent taxonomy with
its status, approver and validation figures, and the three steps that change them.

Admins and analysts read it (as GET /v1/review/taxonomies); proposing, validating and
activating are for admins, as over the API. Each step is a CSRF-checked form post (the
route class checks the token) that calls the API's own route function, so the page, the
API and the CLI share one gate: a draft is validated by a job, and only a validated
version whose figures the admin says were read becomes active.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from convolens.dashboard.routes import PREFIX, Who, _PageRoute, render
from convolens.dashboard.session import require_page
from convolens.review import feedback
from convolens.service import routes_review
from convolens.service.auth import Role, require
from convolens.service.errors import ApiError
from convolens.service.state import Db

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, route_class=_PageRoute, include_in_schema=False)
PAGE = f"{PREFIX}/taxonomies"
UNFINISHED = ("scheduled", "running")


def _validation_jobs(db: Db) -> dict[int, dict[str, Any]]:
    """The latest validation job of each version: its progress shows while it runs."""
    latest: dict[int, dict[str, Any]] = {}
    for row in db.query(
        "SELECT job_id, status, stage, progress, CAST(request AS VARCHAR) AS request, "
        "CAST(error AS VARCHAR) AS error FROM jobs WHERE kind = 'taxonomy_validate' "
        "ORDER BY created_at"
    ):
        request = json.loads(row["request"]) if row["request"] else {}
        error = json.loads(row["error"]) if row["error"] else {}
        if isinstance(request.get("version"), int):
            latest[request["version"]] = {
                **row,
                # The message only: the page is not a debugging tool.
                "error": error.get("message") if isinstance(error, dict) else None,
            }
    return latest


@router.get("/taxonomies", response_class=HTMLResponse)
def taxonomies_page(request: Request, db: Db, who: Who) -> HTMLResponse:
    require_page(who, "taxonomies")
    versions = sorted(feedback.taxonomy_versions(db), key=lambda v: v.version, reverse=True)
    jobs = _validation_jobs(db)
    return render(
        "taxonomies.html", request, who, active="taxonomies",
        versions=versions, jobs=jobs, figures={},
        reports={v.version: feedback.validation_figures(v) for v in versions},
        may_change=who.role == Role.admin,
        waiting=any(j["status"] in UNFINISHED for j in jobs.values()),
        candidates=len(feedback.candidates(db)),
    )  # fmt: skip


@router.post("/taxonomies/propose", response_model=None)
def taxonomy_propose(db: Db, who: Who) -> Response:
    # The CSRF token was checked by _PageRoute before this runs.
    require_page(who, "taxonomies")
    require(who, Role.admin)
    proposal = routes_review.propose(who, db)
    return RedirectResponse(f"{PAGE}#v{proposal.version.version}", status_code=303)


@router.post("/taxonomies/{version}/validate", response_model=None)
async def taxonomy_validate(request: Request, db: Db, who: Who, version: int) -> Response:
    require_page(who, "taxonomies")
    require(who, Role.admin)
    given = (await request.form()).get("folds") or "5"
    if not isinstance(given, str) or not given.isdigit() or not 2 <= int(given) <= 10:
        raise ApiError(422, "invalid_folds", "folds: a whole number from 2 to 10")
    routes_review.validate(request, who, db, version, folds=int(given))
    return RedirectResponse(f"{PAGE}#v{version}", status_code=303)


@router.post("/taxonomies/{version}/activate", response_model=None)
async def taxonomy_activate(request: Request, db: Db, who: Who, version: int) -> Response:
    require_page(who, "taxonomies")
    require(who, Role.admin)
    accept = (await request.form()).get("accept") == "yes"
    if not accept:
        raise ApiError(
            422,
            "not_accepted",
            f'taxonomy version {version}: tick "I have read these figures" to activate it',
        )
    body = routes_review.ActivateRequest(accept=accept)
    routes_review.activate(request, who, db, version, body)
    return RedirectResponse(f"{PAGE}#v{version}", status_code=303)
