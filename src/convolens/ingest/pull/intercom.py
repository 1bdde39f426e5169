"""Intercom: conversations updated since the last pull, each with its parts.

`GET /conversations?per_page=N` is paged with `pages.next.starting_after`; every listed
conversation whose `updated_at` is after the stored watermark (or `--since` on the first
pull) is read whole (`GET /conversations/{id}`: its source message and
`conversation_parts`). The watermark stored is the latest `updated_at` seen, so the next
pull reads only what changed. Listing pages are cheap; only changed conversations cost a
request each.

Each conversation becomes a record of the conversation JSON format (docs/formats.md):
the source message and every part with a body, in order (notes as internal messages),
authors as participants (admin -> agent, bot -> bot, user/lead/contact -> customer),
HTML bodies as text, times from Unix seconds. Assignment, open and close events carry no
words and are left out. The records go through the JSON reader, so a pulled conversation
is validated, rejected and versioned as a file would be.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from convolens.ingest.helpdesk import html_to_text
from convolens.ingest.pull.client import HelpdeskClient, PullError

__all__ = ["API_VERSION", "FORMAT", "auth_headers", "fetch", "to_record"]

FORMAT = "json"
API_VERSION = "2.11"
PER_PAGE = 50
MAX_PAGES = 100_000
_ROLES = {"admin": "agent", "bot": "bot", "user": "customer", "lead": "customer",
          "contact": "customer"}  # fmt: skip
_SPOKEN = {"comment", "note", "conversation_rating_changed", "quick_reply"}


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Intercom-Version": API_VERSION}


def fetch(
    client: HelpdeskClient, watermark: str | None, since: datetime | None
) -> tuple[list[dict[str, Any]], str | None, int]:
    """(records, the watermark to store, conversations changed) after `watermark`."""
    try:
        floor = int(watermark) if watermark else int(since.timestamp()) if since else 0
    except ValueError:
        raise PullError(f"intercom: the stored cursor {watermark!r} is not a time") from None
    newest = floor
    changed: list[str] = []
    params: dict[str, Any] = {"per_page": PER_PAGE}
    for _ in range(MAX_PAGES):
        page = client.get_json("/conversations", params)
        for item in page.get("conversations") or []:
            if not isinstance(item, dict) or "id" not in item:
                continue
            updated = _seconds(item.get("updated_at")) or 0
            if updated > floor and str(item["id"]) not in changed:
                changed.append(str(item["id"]))
                newest = max(newest, updated)
        pages = page.get("pages")
        following = pages.get("next") if isinstance(pages, dict) else None
        after = following.get("starting_after") if isinstance(following, dict) else None
        if not isinstance(after, str) or not after:
            break
        params = {"per_page": PER_PAGE, "starting_after": after}
    else:
        raise PullError(f"intercom: the conversation list did not end after {MAX_PAGES} pages")
    records = [to_record(client.get_json(f"/conversations/{cid}")) for cid in changed]
    stored = str(newest) if newest > 0 else watermark
    return records, stored, len(changed)


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _iso(value: Any) -> str | None:
    seconds = _seconds(value)
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def to_record(conversation: dict[str, Any]) -> dict[str, Any]:
    """One Intercom conversation (as GET /conversations/{id} returns it) as a record of
    the conversation JSON format."""
    participants: dict[str, dict[str, Any]] = {}

    def author(raw: Any) -> str:
        who = raw if isinstance(raw, dict) else {}
        kind = str(who.get("type") or "unknown")
        key = f"{kind}-{who.get('id') or 'unknown'}"
        if key not in participants:
            entry: dict[str, Any] = {"id": key, "role": _ROLES.get(kind, "unknown")}
            if who.get("name"):
                entry["name"] = str(who["name"])
            if who.get("email"):
                entry["email"] = str(who["email"])
            participants[key] = entry
        return key

    messages: list[dict[str, Any]] = []
    given = conversation.get("source")
    source: dict[str, Any] = given if isinstance(given, dict) else {}
    body = html_to_text(str(source.get("body") or ""))
    if body:
        first: dict[str, Any] = {"author": author(source.get("author")), "text": body}
        if at := _iso(conversation.get("created_at")):
            first["sent_at"] = at
        messages.append(first)
    listed = conversation.get("conversation_parts")
    parts = listed.get("conversation_parts") if isinstance(listed, dict) else None
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or part.get("part_type") not in _SPOKEN:
            continue
        text = html_to_text(str(part.get("body") or ""))
        if not text:
            continue
        message: dict[str, Any] = {"author": author(part.get("author")), "text": text}
        if at := _iso(part.get("created_at")):
            message["sent_at"] = at
        if part.get("part_type") == "note":
            message["internal"] = True
        messages.append(message)
    agents = [p.get("name") for p in participants.values() if p["role"] == "agent"]
    record: dict[str, Any] = {
        "id": str(conversation.get("id")),
        "source": "intercom",
        "channel": "email" if source.get("type") == "email" else "chat",
        "participants": list(participants.values()),
        "messages": messages,
    }
    if started := _iso(conversation.get("created_at")):
        record["started_at"] = started
    if subject := html_to_text(str(source.get("subject") or "")):
        record["subject"] = subject
    if agents and agents[0]:
        record["agent"] = agents[0]
    tags = conversation.get("tags")
    names = tags.get("tags") if isinstance(tags, dict) else None
    if isinstance(names, list):
        record["tags"] = [str(t["name"]) for t in names if isinstance(t, dict) and t.get("name")]
    if conversation.get("state"):
        record["meta"] = {"state": str(conversation["state"])}
    return record
