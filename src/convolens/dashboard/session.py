"""Browser sign-in: an API key, kept in an HttpOnly cookie, checked on every request.

A browser cannot be asked to send `Authorization` headers on page loads, so the login
form takes the key and the server sets it as a cookie that page scripts cannot read
(HttpOnly), that other sites cannot make the browser send (SameSite=Strict), and that
only /dashboard receives (Path), and, over https, only over https (Secure). The cookie
holds the key itself rather than a session id: the key is looked up (`auth.lookup`) on
every request, so revoking it ends every browser session at once and the server keeps no
session state.

Forged requests (CSRF): another site can make a browser POST a form here -- to sign it in
with the attacker's key (login CSRF) or to sign it out. Every state-changing request
(anything but GET/HEAD/OPTIONS) must therefore come from a page of this dashboard:
`check_same_origin` refuses a foreign Origin / Referer / Sec-Fetch-Site, and `check_csrf`
wants the form's `csrf_token` to equal the `convolens_csrf` cookie (double submit: a page
elsewhere can neither read that cookie nor set it, so it cannot know the token).

Who sees what is decided here, with the API's roles:
- admin, analyst: every page;
- agent: the overview, the list and the pages of their own conversations (aggregates
  across other agents' conversations are not theirs to see, as in /v1/aggregates);
- viewer: aggregate pages only (overview, topics, agents, accounts), no conversation text.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

from convolens.service.auth import Principal, Role, lookup
from convolens.store.warehouse import Warehouse

__all__ = [
    "COOKIE",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CsrfRefused",
    "LoginRequired",
    "PageDenied",
    "allowed_pages",
    "check_csrf",
    "check_same_origin",
    "clear_login",
    "csrf_token",
    "is_https",
    "new_csrf_token",
    "principal_for",
    "require_page",
    "safe_next",
    "set_csrf",
    "set_login",
]

COOKIE = "convolens_dashboard_key"
CSRF_COOKIE = "convolens_csrf"
CSRF_FIELD = "csrf_token"
PATH = "/dashboard"
MAX_AGE_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# page -> roles that may open it
PAGE_ROLES: dict[str, frozenset[Role]] = {
    "overview": frozenset(Role),
    "conversations": frozenset({Role.admin, Role.analyst, Role.agent}),
    "conversation": frozenset({Role.admin, Role.analyst, Role.agent}),
    "topics": frozenset({Role.admin, Role.analyst, Role.viewer}),
    "agents": frozenset({Role.admin, Role.analyst, Role.viewer}),
    "accounts": frozenset({Role.admin, Role.analyst, Role.viewer}),
    # Agents see their own scores and coaching; viewers the aggregates only.
    "scorecards": frozenset(Role),
    "scorecard": frozenset({Role.admin, Role.analyst, Role.agent}),
    # Drift and intake health are aggregates over every source: not for agents.
    "data_health": frozenset({Role.admin, Role.analyst, Role.viewer}),
    # Who did what (convolens.audit): admins only.
    "audit": frozenset({Role.admin}),
    # Label review: reviewers are admins and analysts (no separate role: both read text);
    # the quality figures are aggregates, so viewers read them too.
    "review": frozenset({Role.admin, Role.analyst}),
    "quality": frozenset({Role.admin, Role.analyst, Role.viewer}),
    # Taxonomy versions (#17 item 3): read by reviewers; changed by admins (as the API).
    "taxonomies": frozenset({Role.admin, Role.analyst}),
    # Erasure and retention (#17 item 7): admins only, as /v1/erasure and /v1/retention.
    "erasure": frozenset({Role.admin}),
    # Files in through the API's upload (the roles POST /v1/uploads takes), and their jobs.
    "upload": frozenset({Role.admin, Role.analyst, Role.agent}),
}


class LoginRequired(Exception):
    """No key, or one that is unknown or revoked: the page answers with the login form."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class CsrfRefused(Exception):
    """A state-changing request that did not come from a dashboard page (a 403 page)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PageDenied(Exception):
    """A signed-in key whose role may not open this page (a 403 page)."""

    def __init__(self, principal: Principal, page: str) -> None:
        super().__init__(page)
        self.principal, self.page = principal, page


def principal_for(request: Request, db: Warehouse) -> Principal:
    key = request.cookies.get(COOKIE)
    if not key:
        raise LoginRequired()
    principal = lookup(db, key)
    if principal is None:
        raise LoginRequired("this key is unknown or has been revoked: sign in again")
    return principal


def require_page(principal: Principal, page: str) -> None:
    if principal.role not in PAGE_ROLES[page]:
        raise PageDenied(principal, page)


def allowed_pages(principal: Principal) -> set[str]:
    return {page for page, roles in PAGE_ROLES.items() if principal.role in roles}


def is_https(request: Request) -> bool:
    """Served over https: directly, or behind a proxy uvicorn trusts (its --proxy-headers and
    --forwarded-allow-ips, loopback by default) that says X-Forwarded-Proto: https."""
    return request.url.scheme in ("https", "wss")


def set_login(response: Response, key: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE, key, max_age=MAX_AGE_S, path=PATH, httponly=True, samesite="strict", secure=secure
    )


def clear_login(response: Response, *, secure: bool = False) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict", secure=secure)


def csrf_token(request: Request) -> tuple[str, bool]:
    """(the browser's CSRF token, whether it is new and must be set as its cookie)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32:
        return token, False
    return new_csrf_token(), True


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_csrf(response: Response, token: str, *, secure: bool) -> None:
    # HttpOnly: the page gets the token in its forms, scripts never need the cookie.
    response.set_cookie(
        CSRF_COOKIE, token, path=PATH, httponly=True, samesite="strict", secure=secure
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(request: Request) -> None:
    """CsrfRefused unless the request's Origin (or, without one, its Referer) is this
    server's own, and the browser does not call it cross-site (Sec-Fetch-Site)."""
    own = _origin(str(request.base_url))
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CsrfRefused(f"a {fetch_site} request")
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == "null" or _origin(origin) != own:
            raise CsrfRefused(f"a request from {origin}")
        return
    referer = request.headers.get("referer")
    if referer is not None and _origin(referer) != own:
        raise CsrfRefused("a request from another site")


def check_csrf(request: Request, form_token: str | None) -> None:
    """CsrfRefused unless the form's token matches the browser's CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not form_token or not hmac.compare_digest(cookie, form_token):
        raise CsrfRefused("a form without this browser's token")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path inside the dashboard (no open redirect)."""
    if (
        target
        and target.startswith(PATH)
        and not target.startswith("//")
        and "\\" not in target
        and "\n" not in target
        and "\r" not in target
    ):
        return target
    return PATH + "/"
