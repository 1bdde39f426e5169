"""Zendesk: tickets changed since the cursor, each with its comments and their authors.

The incremental ticket export (cursor-based, `GET /api/v2/incremental/tickets/cursor.json`)
is read from `start_time` (the first pull, `--since`) or from the stored `after_cursor`
until `end_of_stream`; Zendesk says the last `after_cursor` is where the next pull starts,
so that is what is stored. Each ticket's comments come from
`GET /api/v2/tickets/{id}/comments.json?include=users` (paged by `next_page`), the users
side-loaded with them name the authors and their roles.

The result is a ticket export in the shape `ingest/helpdesk.py` reads (`{"tickets": [...
with "comments"], "users": [...]}`), so a pulled ticket is stored exactly as the same
ticket exported to a file: same conversation id, same rejects, a new version when it
changed. Deleted tickets are left out; a ticket whose comments are gone (404) keeps no
comments and is rejected by the reader with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from convolens.ingest.pull.client import HelpdeskClient, PullError

__all__ = ["EXPORT_PATH", "FORMAT", "auth_headers", "fetch"]

FORMAT = "zendesk"
EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
MAX_PAGES = 100_000  # a cursor that never ends would be a site's bug: stop, say so


def auth_headers(token: str) -> dict[str, str]:
    """An API token as Zendesk takes it: "email/token:TOKEN" is basic auth, anything
    else an OAuth access token (Bearer)."""
    import base64

    if "/token:" in token:
        email, secret = token.split("/token:", 1)
        pair = f"{email}/token:{secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {"Authorization": f"Bearer {token}"}


def fetch(
    client: HelpdeskClient, cursor: str | None, since: datetime | None
) -> tuple[dict[str, Any], str | None, int]:
    """(the ticket export, the cursor to store, tickets seen) since `cursor` (or `since`)."""
    if cursor:
        params: dict[str, Any] = {"cursor": cursor}
    else:
        start = since or datetime(1970, 1, 2, tzinfo=UTC)
        params = {"start_time": int(start.timestamp())}
    params["include"] = "users"
    tickets: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    stored = cursor
    for _ in range(MAX_PAGES):
        page = client.get_json(EXPORT_PATH, params)
        for ticket in _objects(page.get("tickets")):
            if "id" in ticket:
                tickets[str(ticket["id"])] = ticket  # a later page has its newer state
        _add_users(users, page.get("users"))
        after = page.get("after_cursor")
        if isinstance(after, str) and after:
            stored = after
        if page.get("end_of_stream") is True or not isinstance(after, str) or not after:
            break
        params = {"cursor": after, "include": "users"}
    else:
        raise PullError(f"zendesk: the export did not end after {MAX_PAGES} pages")
    kept = [t for t in tickets.values() if t.get("status") != "deleted"]
    for ticket in kept:
        ticket["comments"] = _comments(client, ticket["id"], users)
    return {"tickets": kept, "users": list(users.values())}, stored, len(tickets)


def _comments(
    client: HelpdeskClient, ticket_id: Any, users: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    path, params = f"/api/v2/tickets/{ticket_id}/comments.json", {"include": "users"}
    comments: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        try:
            page = client.get_json(path, params)
        except PullError as exc:
            if "HTTP 404" in str(exc):  # deleted between the export and now
                return comments
            raise
        comments += _objects(page.get("comments"))
        _add_users(users, page.get("users"))
        following = page.get("next_page")
        if not isinstance(following, str) or not following:
            return comments
        path, params = client.follow(following)
    raise PullError(f"zendesk: ticket {ticket_id}'s comments did not end")


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _add_users(users: dict[str, dict[str, Any]], found: Any) -> None:
    for user in _objects(found):
        if "id" in user:
            users[str(user["id"])] = user
