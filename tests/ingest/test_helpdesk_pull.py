"""`convolens pull zendesk|intercom` against recorded responses served on loopback.

A real HTTP server (http.server, in a thread) answers with the JSON files under
tests/data/helpdesk_pull/ (their links re-pointed at it), checks the token on every
request and logs what was asked. The CLI runs as a subprocess on a real warehouse: the
first pull reads everything since --since, the second only what changed (the cursor is
in the warehouse), and bad pages, refused tokens and unreachable sites end with a clear
message, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from convolens.ingest.pull import PullError, pull, read_cursor
from convolens.store.warehouse import Warehouse

DATA = Path(__file__).resolve().parents[1] / "data" / "helpdesk_pull"
TOKEN = "zd-test-token-5f2b9c"
Route = Callable[[str, dict[str, list[str]]], str | None]


class Recorded:
    """A loopback HTTP server answering GETs from recorded files chosen by `route`."""

    def __init__(self, route: Route, *, auth: str, recorded_host: str) -> None:
        self.route, self.auth, self.recorded_host = route, auth, recorded_host
        self.requests: list[str] = []
        self.status_override: int | None = None
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append(self.path)
                if recorder.status_override is not None:
                    return self._send(recorder.status_override, b'{"error": "nope"}')
                if self.headers.get("Authorization") != recorder.auth:
                    return self._send(401, b'{"error": "Couldn\'t authenticate you"}')
                parts = urlsplit(self.path)
                name = recorder.route(parts.path, parse_qs(parts.query))
                if name is None:
                    return self._send(404, b'{"error": "RecordNotFound"}')
                body = (DATA / name).read_text("utf-8")
                return self._send(200, body.replace(recorder.recorded_host, recorder.url).encode())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Recorded:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _zendesk_route(later: dict[str, bool]) -> Route:
    def route(path: str, query: dict[str, list[str]]) -> str | None:
        if path == "/api/v2/incremental/tickets/cursor.json":
            cursor = query.get("cursor", [""])[0]
            if "start_time" in query:
                return "zendesk_export_1.json"
            return {
                "MTAyLjE3MzA2NDY2MDA": "zendesk_export_2.json",
                "MTA0LjE3MzA3MDcyMDA": "zendesk_export_3.json",
            }.get(cursor)
        if path == "/api/v2/tickets/101/comments.json":
            return f"zendesk_comments_101_{query.get('page', ['1'])[0]}.json"
        if path == "/api/v2/tickets/102/comments.json":
            return (
                "zendesk_comments_102_updated.json" if later["on"] else "zendesk_comments_102.json"
            )
        if path == "/api/v2/tickets/104/comments.json":
            return "zendesk_comments_104.json"
        return None

    return route


def _intercom_route(later: dict[str, bool]) -> Route:
    def route(path: str, query: dict[str, list[str]]) -> str | None:
        if path == "/conversations":
            if later["on"]:
                return "intercom_list_later.json"
            return "intercom_list_2.json" if "starting_after" in query else "intercom_list_1.json"
        if path == "/conversations/215466930384501":
            return (
                "intercom_conversation_1_later.json"
                if later["on"]
                else ("intercom_conversation_1.json")
            )
        if path == "/conversations/215466930384502":
            return "intercom_conversation_2.json"
        return None

    return route


def _cli(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), *args, "--db", str(db)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})},
    )  # fmt: skip


@pytest.fixture
def zendesk_site() -> Iterator[tuple[Recorded, dict[str, bool]]]:
    later = {"on": False}
    with Recorded(
        _zendesk_route(later), auth=f"Bearer {TOKEN}", recorded_host="https://acme.zendesk.com"
    ) as site:
        yield site, later


def _conversations(db: Path) -> dict[str, dict[str, Any]]:
    with Warehouse(db, read_only=True) as wh:
        rows = wh.query(
            "SELECT c.source_system, c.source_id, c.subject, c.agent, c.version, "
            "c.utterance_count, list(u.text ORDER BY u.seq) AS texts, "
            "list(u.internal ORDER BY u.seq) AS internal "
            "FROM conversations_current c JOIN utterances_current u USING (conversation_id) "
            "GROUP BY ALL ORDER BY c.source_id"
        )
    return {r["source_id"]: r for r in rows}


def test_zendesk_pull_reads_tickets_with_comments_then_only_changes(
    tmp_path: Path, zendesk_site: tuple[Recorded, dict[str, bool]]
) -> None:
    site, later = zendesk_site
    db = tmp_path / "w.duckdb"
    env = {"ZENDESK_TOKEN": TOKEN}
    first = _cli(db, "pull", "zendesk", "--url", site.url, "--token-env", "ZENDESK_TOKEN",
                 "--since", "2026-11-01", env=env)  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    # Tickets 101 and 102 in; 103 was deleted (left out); 104 has no comment with words.
    assert "4 changed since the last pull" in first.stdout
    assert "ticket 104" in first.stdout and "Traceback" not in first.stdout + first.stderr
    stored = _conversations(db)
    assert set(stored) == {"101", "102"}
    refund = stored["101"]
    assert refund["source_system"] == "zendesk" and refund["agent"] == "Sam Patel"
    assert refund["subject"] == "Charged twice for the annual plan"
    # Both comment pages, in order; the private comment is an internal note.
    assert refund["utterance_count"] == 4
    assert refund["texts"][-1] == "Thanks, the refund arrived. All good."
    assert refund["internal"] == [False, False, True, False]
    start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    assert site.requests[0].startswith(
        f"/api/v2/incremental/tickets/cursor.json?start_time={start}"
    )
    with Warehouse(db, read_only=True) as wh:
        assert read_cursor(wh, "zendesk", site.url) == "MTA0LjE3MzA3MDcyMDA"

    # Second pull: from the stored cursor, only ticket 102 (a new reply): a new version.
    site.requests.clear()
    later["on"] = True
    second = _cli(db, "pull", "zendesk", "--url", site.url, "--token-env", "ZENDESK_TOKEN",
                  env=env)  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 changed since the last pull" in second.stdout
    assert site.requests == [
        "/api/v2/incremental/tickets/cursor.json?cursor=MTA0LjE3MzA3MDcyMDA&include=users",
        "/api/v2/tickets/102/comments.json?include=users",
    ]
    stored = _conversations(db)
    assert stored["102"]["version"] == 2 and stored["102"]["utterance_count"] == 3
    assert stored["101"]["version"] == 1
    with Warehouse(db, read_only=True) as wh:
        assert read_cursor(wh, "zendesk", site.url) == "MTAyLjE3MzA4MDA4MDA"


def test_intercom_pull_pages_with_starting_after_and_stores_a_watermark(
    tmp_path: Path,
) -> None:
    later = {"on": False}
    token = "ic-test-token-77aa"
    with Recorded(
        _intercom_route(later), auth=f"Bearer {token}", recorded_host="https://api.intercom.io"
    ) as site:
        db = tmp_path / "w.duckdb"
        env = {"INTERCOM_TOKEN": token}
        first = _cli(db, "pull", "intercom", "--url", site.url, "--token-env",
                     "INTERCOM_TOKEN", "--since", "2026-11-01", env=env)  # fmt: skip
        assert first.returncode == 0, first.stdout + first.stderr
        assert "2 changed since the last pull" in first.stdout
        # Two list pages (the second by starting_after); the September one is older
        # than --since and is not read whole.
        assert site.requests[:2] == [
            "/conversations?per_page=50",
            "/conversations?per_page=50&starting_after=WzE3NjI1MDU4MDAwMDAsMjE1NDY2OTMwMzg0NTAxXQ%3D%3D",
        ]
        assert "/conversations/215466930384503" not in site.requests
        stored = _conversations(db)
        assert set(stored) == {"215466930384501", "215466930384502"}
        sso = stored["215466930384501"]
        assert sso["source_system"] == "intercom" and sso["agent"] == "Ana Ruiz"
        # Source message, then the parts with words (assignment and close have none).
        assert sso["texts"][0].startswith("I can't log in since the SSO change.")
        assert sso["utterance_count"] == 5
        assert sso["internal"] == [False, False, False, True, False]
        with Warehouse(db, read_only=True) as wh:
            roles = {r["name"]: r["role"] for r in wh.query("SELECT name, role FROM participants")}
            watermark = read_cursor(wh, "intercom", site.url)
        assert roles["Ana Ruiz"] == "agent" and roles["Fin"] == "bot"
        assert watermark == "1794042180"  # conversation 2's updated_at, the latest

        site.requests.clear()
        later["on"] = True
        second = _cli(db, "pull", "intercom", "--url", site.url, "--token-env",
                      "INTERCOM_TOKEN", env=env)  # fmt: skip
        assert second.returncode == 0, second.stdout + second.stderr
        assert site.requests == ["/conversations?per_page=50", "/conversations/215466930384501"]
        assert _conversations(db)["215466930384501"]["utterance_count"] == 6


def test_pull_errors_are_clear_and_store_no_cursor(
    tmp_path: Path, zendesk_site: tuple[Recorded, dict[str, bool]]
) -> None:
    site, _ = zendesk_site
    db = tmp_path / "w.duckdb"
    refused = _cli(db, "pull", "zendesk", "--url", site.url, "--token-env", "BAD",
                   env={"BAD": "wrong"})  # fmt: skip
    assert refused.returncode == 1
    assert "the token was refused (HTTP 401)" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout and "wrong" not in refused.stderr
    unset = _cli(db, "pull", "zendesk", "--url", site.url, "--token-env", "NOT_SET_ANYWHERE")
    assert unset.returncode == 2 and "NOT_SET_ANYWHERE is not set" in unset.stderr
    with Warehouse(db) as wh:
        with pytest.raises(PullError, match="not an http"):
            pull(wh, "zendesk", "file:///etc/passwd", TOKEN)
        with pytest.raises(PullError, match="must not hold credentials"):
            pull(wh, "zendesk", "https://user:pw@acme.zendesk.com", TOKEN)
        # A server error is retried, then reported with the request that failed.
        site.status_override = 503
        waits: list[float] = []
        with pytest.raises(
            PullError, match=r"GET /api/v2/incremental/tickets/cursor.json: HTTP 503"
        ):
            pull(wh, "zendesk", site.url, TOKEN, sleep=waits.append)
        assert len(waits) == 4
        site.status_override = None
        # Nothing listens here: unreachable, said so.
        with pytest.raises(PullError, match="cannot reach"):
            pull(wh, "intercom", "http://127.0.0.1:9", TOKEN, sleep=lambda _: None)
        assert wh.query("SELECT count(*) AS n FROM pull_cursors")[0]["n"] == 0
