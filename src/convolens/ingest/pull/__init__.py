"""Helpdesk pull connectors: conversations straight from a helpdesk's REST API, no export.

`pull(warehouse, "zendesk" | "intercom", url, token, since=...)` reads what changed since
the cursor stored for that site (`pull_cursors`), writes it as the file a person would
have exported (a Zendesk ticket export, conversation JSONL for Intercom) into a private
temporary folder, ingests that file through the ordinary pipeline (redaction, rejects,
versions, idempotence), and only then stores the new cursor. A second pull with nothing
new fetches the changes only and stores nothing new.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from convolens.ingest.pipeline import IngestReport, ingest_paths
from convolens.ingest.pull import intercom, zendesk
from convolens.ingest.pull.client import HelpdeskClient, PullError, site_of
from convolens.store.private import private_dir, private_file
from convolens.store.warehouse import Warehouse

if TYPE_CHECKING:
    import httpx

__all__ = ["SOURCES", "PullError", "PullReport", "pull", "read_cursor"]

Source = Literal["zendesk", "intercom"]
SOURCES: tuple[Source, ...] = ("zendesk", "intercom")


@dataclass
class PullReport:
    source: str
    site: str
    changed: int  # tickets/conversations the API said changed
    cursor_before: str | None
    cursor_after: str | None
    requests: int
    ingest: IngestReport | None  # None when nothing changed

    def summary_line(self) -> str:
        head = f"{self.source} {self.site}: {self.changed} changed since the last pull"
        if self.ingest is None:
            return head + "; nothing to ingest"
        return f"{head}; {self.ingest.summary_line()}"


def read_cursor(warehouse: Warehouse, source: str, site: str) -> str | None:
    rows = warehouse.query(
        "SELECT cursor FROM pull_cursors WHERE source = ? AND site = ?", [source, site]
    )
    return str(rows[0]["cursor"]) if rows else None


def _save_cursor(
    warehouse: Warehouse, source: str, site: str, cursor: str, conversations: int
) -> None:
    warehouse.con.execute(
        "INSERT OR REPLACE INTO pull_cursors VALUES (?, ?, ?, ?, ?)",
        [source, site, cursor, datetime.now(UTC), conversations],
    )


def pull(
    warehouse: Warehouse,
    source: str,
    url: str,
    token: str,
    *,
    since: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] | None = None,
) -> PullReport:
    """Pull what changed at `url` since the stored cursor (or `since`, the first time)."""
    if source not in SOURCES:
        raise PullError(f"unknown source {source!r}; choose one of: {', '.join(SOURCES)}")
    if not token.strip():
        raise PullError(f"{source}: the token is empty")
    site = site_of(url)
    before = read_cursor(warehouse, source, site)
    module: Any = zendesk if source == "zendesk" else intercom
    client = HelpdeskClient(
        source, site, module.auth_headers(token.strip()), transport=transport,
        sleep=sleep or time.sleep,
    )  # fmt: skip
    with client:
        if source == "zendesk":
            document, after, changed = zendesk.fetch(client, before, since)
            payload = json.dumps(document, ensure_ascii=False).encode("utf-8")
            items = len(document["tickets"])
            name = "zendesk-pull.json"
        else:
            records, after, changed = intercom.fetch(client, before, since)
            payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode(
                "utf-8"
            )
            items = len(records)
            name = "intercom-pull.jsonl"
        requests = client.requests
    report = None
    if items:
        # The pulled text is conversation text: an owner-only folder, gone afterwards.
        with tempfile.TemporaryDirectory(prefix="convolens-pull-") as folder:
            path = private_dir(Path(folder)) / name
            with private_file(path) as out:
                out.write(payload)
            report = ingest_paths(warehouse, [path], fmt=module.FORMAT)
    if after is not None:
        _save_cursor(warehouse, source, site, after, report.conversations if report else 0)
    return PullReport(
        source=source, site=site, changed=changed, cursor_before=before,
        cursor_after=after, requests=requests, ingest=report,
    )  # fmt: skip
