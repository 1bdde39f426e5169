"""The dashboard's routes under /dashboard: sign-in, the pages, and their static files.

Every page runs through `_PageRoute`, which turns the ways a page can be refused into
pages rather than JSON: no (valid) key -> the login form, a role that may not see the
page -> a 403 page, an API error (an unknown or ambiguous conversation id) -> its status
with the API's message, and a state-changing request (login, logout) that did not come
from a dashboard page -> a 403 page that sets no cookie (session.py: CSRF). Routes are
left out of the OpenAPI schema: they are for people, not API clients.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from convolens.dashboard import charts, corpus, data, export, intake, pages, scorecards
from convolens.dashboard.daterange import DateRange, latest_day
from convolens.dashboard.session import (
    COOKIE,
    CSRF_FIELD,
    SAFE_METHODS,
    CsrfRefused,
    LoginRequired,
    PageDenied,
    allowed_pages,
    check_csrf,
    check_same_origin,
    clear_login,
    csrf_token,
    is_https,
    new_csrf_token,
    principal_for,
    require_page,
    safe_next,
    set_csrf,
    set_login,
)
from convolens.service.auth import Principal, lookup
from convolens.service.errors import ApiError
from convolens.service.params import Day
from convolens.service.state import Db

__all__ = ["router"]

HERE = Path(__file__).resolve().parent
ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["chart"] = charts.figure_json
ENV.filters["fmt"] = pages.fmt
ENV.filters["duration"] = pages.duration
ENV.filters["clock"] = pages.clock
ENV.filters["pct"] = pages.pct

# Pages carry conversation text: no caching, no framing, scripts only from here.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; frame-ancestors 'none'; form-action 'self'"
    ),
}


def render(
    template: str,
    request: Request,
    principal: Principal | None,
    *,
    status: int = 200,
    set_cookies: bool = True,
    **context: Any,
) -> HTMLResponse:
    # Every page's forms (login, sign out) carry the browser's CSRF token.
    token, new = csrf_token(request)
    html = ENV.get_template(template).render(
        request=request,
        principal=principal,
        nav_pages=allowed_pages(principal) if principal else set(),
        path=request.url.path,
        csrf_field=CSRF_FIELD,
        csrf_token=token if set_cookies or not new else "",
        # The date range travels with the navigation: every page reads the same days.
        range_query=DateRange(
            since=request.query_params.get("since", ""),
            until=request.query_params.get("until", ""),
        ).query(),
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if new and set_cookies:
        set_csrf(response, token, secure=is_https(request))
    return response


class _PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                if request.method not in SAFE_METHODS:
                    check_same_origin(request)
                    form = await request.form()  # read once; the handler gets it cached
                    token = form.get(CSRF_FIELD)
                    check_csrf(request, token if isinstance(token, str) else None)
                return await handler(request)
            except CsrfRefused:
                return render(
                    "error.html", request, None, status=403, set_cookies=False,
                    title="Form refused",
                    message="This form did not come from this dashboard (or the page is too "
                    "old): open the page again and retry.",
                )  # fmt: skip
            except LoginRequired as exc:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if exc.message or request.method != "GET":
                    return render(
                        "login.html", request, None, status=401, error=exc.message,
                        next=safe_next(target),
                    )  # fmt: skip
                return RedirectResponse(
                    f"{PREFIX}/login?next={quote(target, safe='/')}", status_code=303
                )
            except PageDenied as exc:
                return render(
                    "error.html", request, exc.principal, status=403, title="Not for this key",
                    message=f"A {exc.principal.role.value} key cannot open this page"
                    + (" (viewer keys see aggregates only, no conversation text)."
                       if exc.principal.role.value == "viewer" else "."),
                )  # fmt: skip
            except ApiError as exc:
                return render(
                    "error.html", request, _quiet_principal(request), status=exc.status,
                    title="Not found" if exc.status == 404 else "Cannot show this",
                    message=exc.message,
                )  # fmt: skip

        return run


def _quiet_principal(request: Request) -> Principal | None:
    """The signed-in key for an error page's navigation (None when it cannot be read)."""
    key = request.cookies.get(COOKIE)
    if not key:
        return None
    db = request.app.state.service.db()
    try:
        return lookup(db, key)
    finally:
        db.close()


PREFIX = "/dashboard"
router = APIRouter(prefix=PREFIX, route_class=_PageRoute, include_in_schema=False)


def _principal(request: Request, db: Db) -> Principal:
    return principal_for(request, db)


Who = Annotated[Principal, Depends(_principal)]


# -- sign-in ----------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render("login.html", request, None, next=safe_next(next), error="")


@router.post("/login", response_model=None)
def login(
    request: Request,
    db: Db,
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    key = api_key.strip()
    principal = lookup(db, key) if key else None
    if principal is None:
        return render(
            "login.html", request, None, status=401, next=safe_next(next),
            error="This key is unknown or has been revoked." if key else "Enter an API key.",
        )  # fmt: skip
    response = RedirectResponse(safe_next(next), status_code=303)
    secure = is_https(request)
    set_login(response, key, secure=secure)
    # A new token for the signed-in session: one seen before signing in is no use after.
    set_csrf(response, new_csrf_token(), secure=secure)
    return response


@router.post("/logout", response_model=None)
def logout(request: Request) -> Response:
    # Reached only with this browser's CSRF token (the route class checks it).
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    clear_login(response, secure=is_https(request))
    return response


# -- static files -----------------------------------------------------------------------
_STATIC = {
    "dashboard.css": (HERE / "static" / "dashboard.css", "text/css"),
    "app.js": (HERE / "static" / "app.js", "text/javascript"),
    "player.js": (HERE / "static" / "player.js", "text/javascript"),
}


def _plotly_js() -> Path:
    # The plotly.js bundle the Python package ships (its package_data): no CDN needed.
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@router.get("/static/{name}", response_model=None)
def static(name: str) -> Response:
    if name == "plotly.min.js":
        path, media = _plotly_js(), "text/javascript"
    elif name in _STATIC:
        path, media = _STATIC[name]
    else:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=3600"})


# -- pages ------------------------------------------------------------------------------
@router.get("", response_model=None)
def root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


Dates = Annotated[DateRange, Depends()]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, db: Db, who: Who, dates: Dates) -> HTMLResponse:
    require_page(who, "overview")
    if pages.warehouse_empty(db):
        # First run: upload files (keys that may), rather than empty charts.
        return render("first_run.html", request, who, active="overview", **intake.first_run(who))
    return render(
        "overview.html", request, who, active="overview", **pages.overview(db, who, dates)
    )


@router.get("/conversations", response_class=HTMLResponse)
def conversations(
    request: Request,
    db: Db,
    who: Who,
    filters: Annotated[data.ListFilters, Depends()],
) -> HTMLResponse:
    require_page(who, "conversations")
    return render(
        "conversations.html", request, who, active="conversations",
        **pages.conversation_list(db, who, filters),
    )  # fmt: skip


@router.get("/conversations/{ref:path}", response_class=HTMLResponse)
def conversation(request: Request, db: Db, who: Who, ref: str) -> HTMLResponse:
    require_page(who, "conversation")
    return render(
        "conversation.html", request, who, active="conversations",
        **pages.conversation(db, who, ref),
    )  # fmt: skip


@router.get("/topics", response_class=HTMLResponse)
def topics(
    request: Request,
    db: Db,
    who: Who,
    query: Annotated[corpus.TrendQuery, Depends()],
    dates: Dates,
) -> HTMLResponse:
    require_page(who, "topics")
    return render(
        "topics.html", request, who, active="topics", **corpus.topics(db, who, query, dates)
    )


@router.get("/agents", response_class=HTMLResponse)
def agents(request: Request, db: Db, who: Who, dates: Dates) -> HTMLResponse:
    require_page(who, "agents")
    return render("agents.html", request, who, active="agents", **corpus.agents(db, who, dates))


@router.get("/accounts", response_class=HTMLResponse)
def accounts(request: Request, db: Db, who: Who, dates: Dates) -> HTMLResponse:
    require_page(who, "accounts")
    return render(
        "accounts.html", request, who, active="accounts", **corpus.accounts(db, who, dates)
    )


@router.get("/scorecards", response_class=HTMLResponse)
def scorecard_team(
    request: Request,
    db: Db,
    who: Who,
    dates: Dates,
    scorecard: Annotated[str | None, Query(max_length=100)] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    coached_on: Annotated[Day | None, Query()] = None,
) -> HTMLResponse:
    require_page(who, "scorecards")
    return render(
        "scorecards.html", request, who, active="scorecards", dates=dates,
        presets=dates.presets(latest_day(db, who)),
        **scorecards.team_page(db, who, scorecard, agent, coached_on, dates=dates),
    )  # fmt: skip


@router.get("/scorecards/{ref}", response_class=HTMLResponse)
def scorecard_conversation(request: Request, db: Db, who: Who, ref: str) -> HTMLResponse:
    require_page(who, "scorecard")
    return render(
        "scorecard.html", request, who, active="scorecards",
        **scorecards.conversation_page(db, who, ref),
    )  # fmt: skip


@router.post("/scorecards/{ref}/review", response_model=None)
async def scorecard_review(request: Request, db: Db, who: Who, ref: str) -> Response:
    # The CSRF token was checked by _PageRoute before this runs (a state-changing form).
    require_page(who, "scorecard")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    cid = scorecards.review(db, who, ref, form)
    return RedirectResponse(f"{PREFIX}/scorecards/{quote(cid, safe='')}", status_code=303)


# -- first run: upload, job progress ---------------------------------------------------
@router.get("/upload", response_class=HTMLResponse)
def upload_form(request: Request, db: Db, who: Who) -> HTMLResponse:
    require_page(who, "upload")
    return render("first_run.html", request, who, active="upload", **intake.first_run(who))


@router.post("/upload", response_model=None)
async def upload(request: Request, db: Db, who: Who) -> Response:
    # The CSRF token was checked by _PageRoute (a state-changing form); the file goes
    # through the API's own upload (same checks, limits, spool and job).
    require_page(who, "upload")
    job_id = intake.submit(request, db, who, await request.form())
    return RedirectResponse(f"{PREFIX}/jobs/{quote(job_id, safe='')}", status_code=303)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, db: Db, who: Who, job_id: str) -> HTMLResponse:
    require_page(who, "upload")
    return render("job.html", request, who, active="upload", job=intake.job(db, who, job_id))


@router.get("/jobs/{job_id}/status", response_model=None)
def job_status(db: Db, who: Who, job_id: str) -> Response:
    """The job as JSON for the progress page's script (same visibility as /v1/jobs)."""
    require_page(who, "upload")
    return JSONResponse(intake.job_state(db, who, job_id), headers=SECURITY_HEADERS)


# -- CSV export of a page's table ------------------------------------------------------
@router.get("/csv/{page}/{table}", response_model=None)
def table_csv(request: Request, db: Db, who: Who, page: str, table: str) -> Response:
    """A table of a page as CSV: the page is built for this key from the same query string
    and its table read back, so the file holds exactly what the page shows this key."""
    html = _page_html(page, request, db, who)
    if html.status_code != 200:
        return html
    text = export.table_csv(bytes(html.body).decode("utf-8"), table)
    if text is None:
        raise ApiError(404, "not_found", f"the {page} page has no table {table!r}")
    filename = export.filename(page, table, request.query_params.get("since", ""),
                               request.query_params.get("until", ""))  # fmt: skip
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _page_html(page: str, request: Request, db: Db, who: Principal) -> HTMLResponse:
    query = dict(request.query_params)
    dates = DateRange(since=query.get("since", ""), until=query.get("until", ""))
    try:
        if page == "overview":
            return overview(request, db, who, dates)
        if page == "conversations":
            return conversations(request, db, who, data.ListFilters.model_validate(query))
        if page == "topics":
            return topics(request, db, who, corpus.TrendQuery.model_validate(query), dates)
        if page == "agents":
            return agents(request, db, who, dates)
        if page == "accounts":
            return accounts(request, db, who, dates)
        if page == "scorecards":
            coached_on = query.get("coached_on")
            return scorecard_team(
                request, db, who, dates, query.get("scorecard"), query.get("agent"),
                date.fromisoformat(coached_on) if coached_on else None,
            )  # fmt: skip
    except (ValidationError, ValueError):
        raise ApiError(422, "invalid_query", "the page's query string is not valid") from None
    raise ApiError(404, "not_found", f"no page {page!r} to export")
