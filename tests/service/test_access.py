"""Every endpoint against every role: admin, analyst, agent (own conversations), viewer
(aggregates only), and no key: the status, and the body read for the conversations' text.

The routes come from the app itself (`route_table`): a route that MATRIX does not call and
ELSEWHERE does not name fails `test_every_route_is_in_the_matrix`. Dashboard pages are
called with the sign-in cookie, API routes with the key; both are sent on every call.
test_viewer_text.py reads every GET route and page for a planted phrase as well.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import pytest
from live_server import EXAMPLES, Server, wait_job
from route_table import app_routes

from convolens import __version__

ROLES = ("admin", "analyst", "agent", "viewer", "none")
COOKIE = "convolens_dashboard_key"
OWN, OTHER = "chat-20260903-0001", "chat-20260914-0003"


@pytest.fixture(scope="module")
def keys(admin: httpx.Client) -> dict[str, str | None]:
    out: dict[str, str | None] = {"admin": admin.headers["Authorization"].split()[1], "none": None}
    for role in ("analyst", "agent", "viewer"):
        body = {"name": f"test {role}", "role": role}
        if role == "agent":
            body["agent"] = "Sam Patel"  # the agent of chat-20260903-0001, not of ...0003
        response = admin.post("/v1/keys", json=body)
        assert response.status_code == 201, response.text
        out[role] = response.json()["key"]
    return out


def _records() -> dict[str, dict[str, Any]]:
    lines = (EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines) if r["id"] in (OWN, OTHER)}


@pytest.fixture(scope="module")
def conversations(admin: httpx.Client) -> dict[str, str]:
    ids = {}
    for source_id, record in _records().items():
        accepted = admin.post("/v1/conversations", json=record).json()
        assert wait_job(admin, accepted["job_id"])["status"] == "completed"
        ids[source_id] = accepted["conversation_id"]
    return ids


def _snippets(record: dict[str, Any]) -> list[str]:
    """Pieces of a conversation's text that only it holds: the start of each long sentence
    (PII-free ones: a redacted name or number would not match the stored text anyway)."""
    sentences = [
        s.strip() for m in record["messages"] for s in re.split(r"(?<=[.?!])\s", m["text"])
    ]
    return [s[:32] for s in sentences if len(s) >= 32]


TEXT = {source_id: _snippets(record) for source_id, record in _records().items()}


def _call(server: Server, key: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
    with server.client(key) as client:
        if key:
            client.cookies.set(COOKIE, key)  # the dashboard's sign-in
        return client.request(method, path, **kw)


def _text_in(body: str, source_id: str) -> list[str]:
    return [s for s in TEXT[source_id] if s in body or html.escape(s) in body]


# (method, path template, expected status per role: admin, analyst, agent, viewer, none)
# {own}: a conversation of the agent key's agent; {other}: someone else's.
MATRIX = [
    ("GET", "/v1/conversations", (200, 200, 200, 403, 401)),
    ("GET", "/v1/conversations/{own}", (200, 200, 200, 403, 401)),
    ("GET", "/v1/conversations/{other}", (200, 200, 404, 403, 401)),
    ("GET", "/v1/conversations/{own}/utterances", (200, 200, 200, 403, 401)),
    ("GET", "/v1/conversations/{other}/utterances", (200, 200, 404, 403, 401)),
    ("GET", "/v1/conversations/{own}/metrics", (200, 200, 200, 403, 401)),
    ("GET", "/v1/conversations/{own}/sentiment", (200, 200, 200, 403, 401)),
    ("GET", "/v1/conversations/{other}/summary", (200, 200, 404, 403, 401)),
    ("GET", "/v1/conversations/{own}/raw?confirm=true", (200, 403, 403, 403, 401)),
    # Recordings (a chat has none: 404); tests/privacy/test_audio_redaction.py calls both
    # routes on a real recording, as every role, raw original included.
    ("GET", "/v1/conversations/{own}/audio", (404, 404, 404, 403, 401)),
    ("GET", "/dashboard/audio/{own}", (404, 404, 404, 403, 401)),
    ("GET", "/v1/aggregates", (200, 200, 200, 200, 401)),
    ("GET", "/v1/jobs", (200, 200, 200, 200, 401)),
    ("GET", "/v1/keys", (200, 403, 403, 403, 401)),
    ("POST", "/v1/keys", (201, 403, 403, 403, 401)),
    ("DELETE", "/v1/keys/nonexistent", (404, 403, 403, 403, 401)),
    # Conversations redaction could not pass (#12): their file, record and reason.
    ("GET", "/v1/quarantine", (200, 403, 403, 403, 401)),
    ("GET", "/v1/webhooks", (200, 403, 403, 403, 401)),
    ("GET", "/v1/webhooks/deliveries", (200, 403, 403, 403, 401)),
    ("POST", "/v1/webhooks", (201, 403, 403, 403, 401)),
    ("DELETE", "/v1/webhooks/nonexistent", (404, 403, 403, 403, 401)),
    ("POST", "/v1/webhooks/deliveries/nonexistent/redeliver", (404, 403, 403, 403, 401)),
    ("GET", "/v1/definitions/taxonomy", (200, 200, 403, 403, 401)),
    ("POST", "/v1/definitions/trackers", (201, 403, 403, 403, 401)),
    ("POST", "/v1/conversations", (202, 202, 202, 403, 401)),
    ("POST", "/v1/uploads", (202, 202, 202, 403, 401)),
    ("DELETE", "/v1/conversations/cv-nonexistent", (404, 403, 403, 403, 401)),
    ("GET", "/v1/jobs/job_nonexistent", (404, 404, 404, 404, 401)),
    # Analytics are aggregates: viewers read them, agents (team-wide data) do not.
    ("GET", "/v1/analytics/trends?dimension=intent", (200, 200, 403, 200, 401)),
    ("GET", "/v1/analytics/spikes?dimension=channel&min_count=1", (200, 200, 403, 200, 401)),
    (
        "GET",
        "/v1/analytics/before-after?at=2026-09-10&dimension=channel&value=chat",
        (200, 200, 403, 200, 401),
    ),
    ("GET", "/v1/analytics/agents", (200, 200, 403, 200, 401)),
    ("GET", "/v1/analytics/human-vs-ai", (200, 200, 403, 200, 401)),
    ("GET", "/v1/analytics/clusters", (200, 200, 403, 200, 401)),
    ("GET", "/v1/analytics/friction", (200, 200, 403, 200, 401)),
    ("GET", "/v1/analytics/campaigns", (200, 200, 403, 200, 401)),
    # No accounts imported on this server: a 422 that says what to run.
    ("GET", "/v1/analytics/lift", (422, 422, 403, 422, 401)),
    ("GET", "/v1/analytics/issues", (422, 422, 403, 422, 401)),
    ("GET", "/v1/analytics/trends?dimension=nonsense", (422, 422, 403, 422, 401)),
    ("POST", "/v1/analytics/clusters/refresh", (202, 202, 403, 403, 401)),
    ("GET", "/v1/analytics/clusters/k-none/members", (404, 404, 403, 403, 401)),
    # Scorecards: agents their own conversations' scores and coaching; viewers aggregates
    # (calibration figures, coaching means) with no evidence; QA reviews for analysts.
    ("GET", "/v1/scorecards", (200, 200, 200, 200, 401)),
    ("POST", "/v1/scorecards/validate", (200, 200, 403, 403, 401)),
    ("POST", "/v1/scorecards/score", (202, 202, 403, 403, 401)),
    ("GET", "/v1/scorecards/conversations/{own}", (200, 200, 200, 403, 401)),
    ("GET", "/v1/scorecards/conversations/{other}", (200, 200, 404, 403, 401)),
    ("POST", "/v1/scorecards/conversations/{own}/review", (200, 200, 403, 403, 401)),
    ("GET", "/v1/scorecards/calibration", (200, 200, 403, 200, 401)),
    ("GET", "/v1/scorecards/coaching", (200, 200, 200, 200, 401)),
    (
        "GET",
        "/v1/scorecards/coaching/impact?agent=Sam%20Patel&at=2026-09-10",
        (200, 200, 200, 403, 401),
    ),
    ("GET", "/v1/scorecards/support/diff", (404, 404, 403, 403, 401)),
    # Drift and intake data health (#17): aggregates for viewers too, not for agents; a
    # check that stores figures and sends alerts for analysts.
    ("GET", "/v1/drift", (200, 200, 403, 200, 401)),
    ("POST", "/v1/drift/check", (200, 200, 403, 403, 401)),
    ("GET", "/v1/drift/checks", (200, 200, 403, 200, 401)),
    ("GET", "/v1/data-health", (200, 200, 403, 200, 401)),
    ("GET", "/v1/data-health?format=csv", (200, 200, 403, 200, 401)),
    ("GET", "/v1/data-health/sources", (200, 200, 403, 200, 401)),
    ("GET", "/dashboard/data-health", (200, 200, 403, 200, 303)),
    # Label review: reviewers are admins and analysts; viewers read the quality figures;
    # taxonomy versions (propose, validate, activate) are for admins.
    ("POST", "/v1/review/batches", (201, 201, 403, 403, 401)),
    ("GET", "/v1/review/batches", (200, 200, 403, 403, 401)),
    ("GET", "/v1/review/next", (200, 200, 403, 403, 401)),
    ("GET", "/v1/review/items/ri-none", (404, 404, 403, 403, 401)),
    ("POST", "/v1/review/items/ri-none", (404, 404, 403, 403, 401)),
    ("GET", "/v1/review/quality", (200, 200, 403, 200, 401)),
    ("GET", "/v1/review/candidates", (200, 200, 403, 403, 401)),
    ("GET", "/v1/review/taxonomies", (200, 200, 403, 403, 401)),
    ("POST", "/v1/review/taxonomies/propose", (422, 403, 403, 403, 401)),
    ("POST", "/v1/review/taxonomies/99/validate", (422, 403, 403, 403, 401)),
    ("POST", "/v1/review/taxonomies/99/activate", (422, 403, 403, 403, 401)),
    # Public: liveness and the API's own description.
    ("GET", "/v1/health", (200, 200, 200, 200, 200)),
    ("GET", "/openapi.json", (200, 200, 200, 200, 200)),
    ("GET", "/docs", (200, 200, 200, 200, 200)),
    ("GET", "/docs/oauth2-redirect", (200, 200, 200, 200, 200)),
    ("GET", "/redoc", (200, 200, 200, 200, 200)),
    ("GET", "/docs-assets/swagger-ui.css", (200, 200, 200, 200, 200)),
    # The CLI's way into a running server takes the server's local token, never a key.
    ("POST", "/_local/cli", (403, 403, 403, 403, 403)),
    # Dashboard pages: no key -> to the sign-in form (303); a refused role -> a 403 page.
    ("GET", "/dashboard", (307, 307, 307, 307, 307)),
    ("GET", "/dashboard/", (200, 200, 200, 200, 303)),
    ("GET", "/dashboard/login", (200, 200, 200, 200, 200)),
    ("GET", "/dashboard/conversations", (200, 200, 200, 403, 303)),
    ("GET", "/dashboard/conversations/{own}", (200, 200, 200, 403, 303)),
    ("GET", "/dashboard/conversations/{other}", (200, 200, 404, 403, 303)),
    ("GET", "/dashboard/topics", (200, 200, 403, 200, 303)),
    ("GET", "/dashboard/topics?dimension=topic", (200, 200, 403, 200, 303)),
    ("GET", "/dashboard/agents", (200, 200, 403, 200, 303)),
    ("GET", "/dashboard/accounts", (200, 200, 403, 200, 303)),
    ("GET", "/dashboard/scorecards", (200, 200, 200, 200, 303)),
    ("GET", "/dashboard/scorecards/{own}", (200, 200, 200, 403, 303)),
    ("GET", "/dashboard/scorecards/{other}", (200, 200, 404, 403, 303)),
    # Governance (#17): the audit log, retention and erasure are for admins only.
    ("GET", "/v1/audit", (200, 403, 403, 403, 401)),
    ("GET", "/v1/audit?format=csv", (200, 403, 403, 403, 401)),
    ("GET", "/v1/retention", (200, 403, 403, 403, 401)),
    ("POST", "/v1/retention/run", (200, 403, 403, 403, 401)),
    ("POST", "/v1/erasure", (200, 403, 403, 403, 401)),
    ("GET", "/dashboard/audit", (200, 403, 403, 403, 303)),
    ("GET", "/dashboard/audit.csv", (200, 403, 403, 403, 303)),
    ("GET", "/dashboard/static/app.js", (200, 200, 200, 200, 200)),
    ("GET", "/dashboard/review", (200, 200, 403, 403, 303)),
    ("GET", "/dashboard/quality", (200, 200, 403, 200, 303)),
    ("GET", "/dashboard/review/keys.js", (200, 200, 200, 200, 200)),
    # Taxonomy versions: reviewers read them (admins change them); erasure and retention:
    # admins only.
    ("GET", "/dashboard/taxonomies", (200, 200, 403, 403, 303)),
    ("GET", "/dashboard/erasure", (200, 403, 403, 403, 303)),
    # Enrolled voices (#14): admins only; the admin's upload here is not audio (422).
    # tests/service/test_speakers_api.py enrols real voices and tries hostile requests.
    ("POST", "/v1/speakers", (422, 403, 403, 403, 401)),
    ("GET", "/v1/speakers", (200, 403, 403, 403, 401)),
    ("DELETE", "/v1/speakers/nonexistent", (404, 403, 403, 403, 401)),
    # Uploads from the dashboard: the roles that may POST /v1/uploads, and their jobs.
    ("GET", "/dashboard/upload", (200, 200, 200, 403, 303)),
    ("GET", "/dashboard/jobs/no-such-job", (404, 404, 404, 403, 303)),
    ("GET", "/dashboard/jobs/no-such-job/status", (404, 404, 404, 403, 303)),
    # A page's table as CSV: whoever may open the page, with what it shows them.
    ("GET", "/dashboard/csv/overview/channels", (200, 200, 200, 200, 303)),
    ("GET", "/dashboard/csv/agents/scorecards", (200, 200, 403, 200, 303)),
]
# Routes the matrix does not call, and where they are tested instead.
ELSEWHERE = {
    ("WEBSOCKET", "/v1/stream"): "test_stream.py (a key on connect, agents their own calls)",
    ("POST", "/dashboard/login"): "tests/dashboard/test_csrf.py (sign-in needs the CSRF token)",
    ("POST", "/dashboard/logout"): "tests/dashboard/test_csrf.py (sign-out needs the CSRF token)",
    ("POST", "/dashboard/review/{item_id}"): (
        "tests/review/test_review_dashboard.py (verdicts need the CSRF token; reviewers only)"
    ),
    ("POST", "/dashboard/review/sample"): (
        "tests/review/test_review_dashboard.py (sampling needs the CSRF token; reviewers only)"
    ),
    **{
        ("POST", f"/dashboard/{path}"): f"tests/governance/test_governance_pages.py ({why})"
        for path, why in [
            ("taxonomies/propose", "CSRF token; admins only"),
            ("taxonomies/{version}/validate", "CSRF token; admins only"),
            ("taxonomies/{version}/activate", "CSRF token; admins only; figures accepted"),
            ("erasure/preview", "CSRF token; admins only"),
            ("erasure", "CSRF token; admins only; confirmed"),
            ("retention/run", "CSRF token; admins only"),
        ]
    },
    ("POST", "/dashboard/upload"): (
        "tests/dashboard/test_dashboard_firstrun.py (the upload form needs the CSRF token)"
    ),
    ("POST", "/dashboard/scorecards/{ref}/review"): (
        "tests/scorecards/test_dashboard.py (the QA form needs the CSRF token; analysts only)"
    ),
}
BODIES: dict[str, Any] = {
    "/v1/keys": {"json": {"name": "made in access test", "role": "viewer"}},
    "/v1/webhooks": {"json": {"url": "http://127.0.0.1:9/hook", "events": ["job.completed"]}},
    "/v1/definitions/trackers": {
        "json": {"content": [{"name": "refund_words", "phrases": ["refund"]}]}
    },
    # One id per role: another caller's id would be a 409 (not theirs to version).
    "/v1/conversations": lambda role: {
        "json": {"id": f"access-test-{role}", "messages": [{"author": "c", "text": "Hello"}]}
    },
    "/_local/cli": {"json": {"args": ["list"], "version": __version__, "cwd": "/"}},
    "/v1/scorecards/score": {"json": {}},
    "/v1/review/batches": {"json": {"per_value": 1, "low_confidence": 0, "disagreement": 0}},
    "/v1/review/items/ri-none": {"json": {"verdict": "accept"}},
    "/v1/review/taxonomies/99/activate": {"json": {"accept": True}},
    "/v1/erasure": {"json": {"email": "nobody@access-test.example"}},
    "/v1/speakers": {
        "data": {"name": "Access Test"},
        "files": {"file": ("voice.wav", b"not audio at all", "audio/wav")},
    },
    "/v1/scorecards/validate": {
        "json": {
            "content": "name: mini\nversion: '1'\nsections:\n  - name: a\n    criteria:\n"
            "      - {id: hi, description: Greets., check: {kind: say, phrases: [hi]}}\n"
        }
    },
    "/v1/scorecards/conversations/{own}/review": {
        "json": {"scorecard": "support", "outcomes": [{"criterion": "greeting", "outcome": "pass"}]}
    },
    "/v1/uploads": {
        "files": {"file": ("a.json", b'{"id": "u", "messages": [{"text": "hi"}]}', "text/json")}
    },
}


@pytest.mark.parametrize(("method", "path", "expected"), MATRIX)
def test_access(
    server: Server,
    keys: dict[str, str | None],
    conversations: dict[str, str],
    method: str,
    path: str,
    expected: tuple[int, ...],
) -> None:
    url = path.format(own=conversations[OWN], other=conversations[OTHER])
    responses = {}
    for role in ROLES:
        body = BODIES.get(path, {})
        responses[role] = _call(
            server, keys[role], method, url, **(body(role) if callable(body) else body)
        )
    got = tuple(r.status_code for r in responses.values())
    assert got == expected, dict(zip(ROLES, got, strict=True))
    # The bodies: no conversation text for viewers or without a key, and none of another
    # agent's conversation for the agent key, whatever the status.
    leaks = {
        (role, source_id): _text_in(responses[role].text, source_id)
        for role, sources in (("viewer", TEXT), ("none", TEXT), ("agent", [OTHER]))
        for source_id in sources
        if _text_in(responses[role].text, source_id)
    }
    assert not leaks, leaks


def test_the_body_check_sees_text(
    server: Server, keys: dict[str, str | None], conversations: dict[str, str]
) -> None:
    """The snippets are found where text belongs, so their absence above means something."""
    for source_id in (OWN, OTHER):
        assert len(TEXT[source_id]) >= 3
        page = _call(
            server, keys["analyst"], "GET", f"/dashboard/conversations/{conversations[source_id]}"
        )
        api = _call(
            server, keys["admin"], "GET", f"/v1/conversations/{conversations[source_id]}/utterances"
        )
        assert _text_in(page.text, source_id) and _text_in(api.text, source_id)
    own = _call(server, keys["agent"], "GET", f"/v1/conversations/{conversations[OWN]}/utterances")
    assert _text_in(own.text, OWN)


def _pattern(template: str) -> str:
    """A route template as a regex: {name} is one path segment, {name:path} the rest."""
    parts = re.split(r"(\{[^}]+\})", template)
    return "".join(
        (".+" if p.endswith(":path}") else "[^/]+") if p.startswith("{") else re.escape(p)
        for p in parts
    )


def test_every_route_is_in_the_matrix(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A new route fails here until MATRIX says who may call it (or ELSEWHERE, where)."""
    called = [(method, path.split("?", 1)[0]) for method, path, _ in MATRIX]
    missing = [
        f"{method} {template}"
        for method, template in sorted(app_routes(tmp_path_factory.mktemp("routes")))
        if (method, template) not in ELSEWHERE
        and not any(m == method and re.fullmatch(_pattern(template), p) for m, p in called)
    ]
    assert not missing, f"routes no access test calls: {missing}"
