"""Every endpoint against every role: admin, analyst, agent (own conversations), viewer
(aggregates only), and no key."""

from __future__ import annotations

import json

import httpx
import pytest
from live_server import EXAMPLES, Server, wait_job

ROLES = ("admin", "analyst", "agent", "viewer", "none")


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


@pytest.fixture(scope="module")
def conversations(admin: httpx.Client) -> dict[str, str]:
    ids = {}
    for line in (EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["id"] in ("chat-20260903-0001", "chat-20260914-0003"):
            accepted = admin.post("/v1/conversations", json=record).json()
            assert wait_job(admin, accepted["job_id"])["status"] == "completed"
            ids[record["id"]] = accepted["conversation_id"]
    return ids


def _status(server: Server, key: str | None, method: str, path: str, **kw: object) -> int:
    with server.client(key) as client:
        return client.request(method, path, **kw).status_code  # type: ignore[arg-type]


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
    ("GET", "/v1/aggregates", (200, 200, 200, 200, 401)),
    ("GET", "/v1/jobs", (200, 200, 200, 200, 401)),
    ("GET", "/v1/keys", (200, 403, 403, 403, 401)),
    ("POST", "/v1/keys", (201, 403, 403, 403, 401)),
    ("DELETE", "/v1/keys/nonexistent", (404, 403, 403, 403, 401)),
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
]
BODIES = {
    "/v1/keys": {"json": {"name": "made in access test", "role": "viewer"}},
    "/v1/webhooks": {"json": {"url": "http://127.0.0.1:9/hook", "events": ["job.completed"]}},
    "/v1/definitions/trackers": {
        "json": {"content": [{"name": "refund_words", "phrases": ["refund"]}]}
    },
    "/v1/conversations": {
        "json": {"id": "access-test", "messages": [{"author": "c", "text": "Hello there"}]}
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
    url = path.format(
        own=conversations["chat-20260903-0001"], other=conversations["chat-20260914-0003"]
    )
    got = tuple(_status(server, keys[role], method, url, **BODIES.get(path, {})) for role in ROLES)
    assert got == expected, dict(zip(ROLES, got, strict=True))


def test_agent_lists_only_own_conversations(
    server: Server, keys: dict[str, str | None], conversations: dict[str, str]
) -> None:
    with server.client(keys["agent"]) as agent:
        listed = agent.get("/v1/conversations").json()
        aggregates = agent.get("/v1/aggregates").json()
    assert listed["items"] and {c["agent"] for c in listed["items"]} == {"Sam Patel"}
    assert "chat-20260914-0003" not in {c["source_id"] for c in listed["items"]}
    assert aggregates["conversations"] == listed["total"]


def test_revoked_key_is_refused(server: Server, admin: httpx.Client) -> None:
    created = admin.post("/v1/keys", json={"name": "short-lived", "role": "analyst"}).json()
    with server.client(created["key"]) as client:
        assert client.get("/v1/aggregates").status_code == 200
        assert admin.delete(f"/v1/keys/{created['key_id']}").status_code == 204
        refused = client.get("/v1/aggregates")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    listed = {k["key_id"]: k for k in admin.get("/v1/keys").json()}
    assert listed[created["key_id"]]["revoked"] is True
    assert "key" not in listed[created["key_id"]]  # never shown again
