"""Browser sign-in: an API key, kept in an HttpOnly cookie, checked on every request.

A browser cannot be asked to send `Authorization` headers on page loads, so the login
form takes the key and the server sets it as a cookie that page scripts cannot read
(HttpOnly), that other sites cannot make the browser send (SameSite=Strict), and that
only /dashboard receives (Path). The cookie holds the key itself rather than a session
id: the key is looked up (`auth.lookup`) on every request, so revoking it ends every
browser session at once and the server keeps no session state.

Who sees what is decided here, with the API's roles:
- admin, analyst: every page;
- agent: the overview, the list and the pages of their own conversations (aggregates
  across other agents' conversations are not theirs to see, as in /v1/aggregates);
- viewer: aggregate pages only (overview, topics, agents, accounts), no conversation text.
"""

from __future__ import annotations

from fastapi import Request, Response

from convolens.service.auth import Principal, Role, lookup
from convolens.store.warehouse import Warehouse

__all__ = [
    "COOKIE",
    "LoginRequired",
    "PageDenied",
    "allowed_pages",
    "clear_login",
    "principal_for",
    "require_page",
    "safe_next",
    "set_login",
]

COOKIE = "convolens_dashboard_key"
PATH = "/dashboard"
MAX_AGE_S = 12 * 3600

# page -> roles that may open it
PAGE_ROLES: dict[str, frozenset[Role]] = {
    "overview": frozenset(Role),
    "conversations": frozenset({Role.admin, Role.analyst, Role.agent}),
    "conversation": frozenset({Role.admin, Role.analyst, Role.agent}),
    "topics": frozenset({Role.admin, Role.analyst, Role.viewer}),
    "agents": frozenset({Role.admin, Role.analyst, Role.viewer}),
    "accounts": frozenset({Role.admin, Role.analyst, Role.viewer}),
}


class LoginRequired(Exception):
    """No key, or one that is unknown or revoked: the page answers with the login form."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


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


def set_login(response: Response, key: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE, key, max_age=MAX_AGE_S, path=PATH, httponly=True, samesite="strict", secure=secure
    )


def clear_login(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


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
