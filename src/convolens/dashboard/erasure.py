"""The dashboard's erasure and retention page (#17 item 7), admins only: the retention
policy in force with a "run now" button, and erasure of a person in two posts.

The first post (preview) only counts what would go: the conversations that name the
person, found by `find_person`, the search `erase_person` itself makes. The second,
confirmed post erases through `erase_person` and shows the receipt (counts and hashed
ids, never the person's data), which the library records in the audit log. Both are
CSRF-checked form posts (the route class checks the token), and both run under the same
guards as POST /v1/erasure and /v1/retention/run.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from convolens.audit.http import annotate, request_id
from convolens.dashboard.routes import PREFIX, Who, _PageRoute, render
from convolens.dashboard.session import require_page
from convolens.retention import Person
from convolens.retention.erasure import find_person
from convolens.service.errors import ApiError
from convolens.service.routes_governance import _scheduler, run_erasure
from convolens.service.state import Db, get_service

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, route_class=_PageRoute, include_in_schema=False)
FIELDS = ("email", "phone", "customer_id", "account_id")


def _page(request: Request, who: Any, **context: Any) -> HTMLResponse:
    policy = _scheduler(request).policy
    return render(
        "erasure.html", request, who, active="erasure",
        policy=policy.describe(), policy_enabled=policy.enabled,
        **{"person": {}, "preview": None, "receipt": None, "report": None, **context},
    )  # fmt: skip


async def _person(request: Request) -> tuple[Person, dict[str, str]]:
    form = await request.form()
    given = {k: v.strip() for k in FIELDS if isinstance(v := form.get(k), str) and v.strip()}
    try:
        return Person.model_validate(given), given
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "invalid person")).removeprefix("Value error, ")
        raise ApiError(422, "invalid_person", message) from None


@router.get("/erasure", response_class=HTMLResponse)
def erasure_page(request: Request, who: Who) -> HTMLResponse:
    require_page(who, "erasure")
    return _page(request, who)


@router.post("/retention/run", response_class=HTMLResponse)
def retention_run(request: Request, who: Who) -> HTMLResponse:
    # The CSRF token was checked by _PageRoute before this runs.
    require_page(who, "erasure")
    report = _scheduler(request).run_now(actor=who, via="dashboard", request_id=request_id(request))
    annotate(request, recorded=True)  # run_now wrote the audit row, with the report
    return _page(request, who, report=report)


@router.post("/erasure/preview", response_class=HTMLResponse)
async def erasure_preview(request: Request, db: Db, who: Who) -> HTMLResponse:
    """What an erasure would remove, and nothing removed: the confirm form carries the
    same identifiers to the second post."""
    require_page(who, "erasure")
    person, given = await _person(request)
    ids, _ = find_person(db, person, spool=get_service(request).settings.spool_dir())
    utterances = (
        db.query(
            "SELECT count(*) AS n FROM utterances WHERE list_contains(?, conversation_id)", [ids]
        )[0]["n"]
        if ids
        else 0
    )
    preview = {"conversations": len(ids), "utterances": utterances, "identifiers": person.kinds()}
    return _page(request, who, person=given, preview=preview)


@router.post("/erasure", response_class=HTMLResponse)
async def erasure_run(request: Request, db: Db, who: Who) -> HTMLResponse:
    require_page(who, "erasure")
    if (await request.form()).get("confirm") != "yes":
        raise ApiError(422, "not_confirmed", "preview the erasure first, then confirm it")
    person, _ = await _person(request)
    receipt = run_erasure(request, db, person, who, via="dashboard")
    return _page(request, who, receipt=receipt)
