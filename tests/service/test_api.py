"""The REST API against a real server: submit, jobs, results with evidence, filters,
aggregates, errors, delete."""

from __future__ import annotations

import json

import httpx
import pytest
from live_server import EXAMPLES, Server, wait_job


def _sample(source_id: str) -> dict:
    for line in (EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["id"] == source_id:
            return record
    raise KeyError(source_id)


@pytest.fixture(scope="module")
def submitted(admin: httpx.Client) -> dict[str, dict]:
    jobs = {}
    for source_id in ("chat-20261106-0010", "chat-20260903-0001"):
        response = admin.post("/v1/conversations", json=_sample(source_id))
        assert response.status_code == 202, response.text
        jobs[source_id] = response.json()
    for accepted in jobs.values():
        job = wait_job(admin, accepted["job_id"])
        assert job["status"] == "completed", job
        assert job["result"]["conversation_ids"] == [accepted["conversation_id"]]
    return jobs


def test_submitted_conversation_has_every_part_with_evidence(
    admin: httpx.Client, submitted: dict[str, dict]
) -> None:
    cid = submitted["chat-20261106-0010"]["conversation_id"]
    full = admin.get(f"/v1/conversations/{cid}", params={"words": True}).json()
    assert full["conversation"]["source_id"] == "chat-20261106-0010"
    assert len(full["utterances"]) == full["conversation"]["utterance_count"]
    assert full["metrics"]["conversation"] is not None
    (primary,) = [r for r in full["intents"] if r["label"] == "intent.primary"]
    assert primary["value"]["intent"] == "cancel_subscription"
    assert primary["component"] == "intents" and primary["taxonomy_version"]
    assert {s["value"]["signal"] for s in full["signals"]} >= {"churn_risk"}
    texts = {u["utterance_id"]: u["text"] for u in full["utterances"]}
    for row in primary["evidence"]:
        assert 0 <= row["start"] < row["end"] <= len(texts[row["utterance_id"]])
    # One part alone answers the same as in the full result.
    assert admin.get(f"/v1/conversations/{cid}/signals").json() == full["signals"]
    assert admin.get("/v1/conversations/chat-20261106-0010/intents").json() == full["intents"]


def test_resubmitting_is_idempotent(admin: httpx.Client, submitted: dict[str, dict]) -> None:
    again = admin.post("/v1/conversations", json=_sample("chat-20260903-0001")).json()
    assert again["conversation_id"] == submitted["chat-20260903-0001"]["conversation_id"]
    job = wait_job(admin, again["job_id"])
    assert job["status"] == "completed" and job["result"]["unchanged"] == 1
    listed = admin.get("/v1/conversations", params={"q": "charged twice"}).json()
    assert listed["total"] == 1


def test_list_filters(admin: httpx.Client, submitted: dict[str, dict]) -> None:
    by_intent = admin.get("/v1/conversations", params={"intent": "cancel_subscription"}).json()
    assert [c["source_id"] for c in by_intent["items"]] == ["chat-20261106-0010"]
    assert by_intent["items"][0]["primary_intent"] == "cancel_subscription"
    by_signal = admin.get("/v1/conversations", params={"signal": "churn_risk"}).json()
    assert "chat-20261106-0010" in {c["source_id"] for c in by_signal["items"]}
    assert admin.get("/v1/conversations", params={"channel": "email"}).json()["total"] == 0
    future = admin.get("/v1/conversations", params={"since": "2030-01-01T00:00:00Z"}).json()
    assert future["total"] == 0
    aggregates = admin.get("/v1/aggregates").json()
    assert aggregates["conversations"] >= 2
    assert aggregates["primary_intents"]["cancel_subscription"] == 1


def test_upload_a_chat_export(admin: httpx.Client) -> None:
    path = EXAMPLES / "csv" / "chat_export.csv"
    with path.open("rb") as handle:
        response = admin.post("/v1/uploads", files={"file": (path.name, handle, "text/csv")})
    assert response.status_code == 202, response.text
    job = wait_job(admin, response.json()["job_id"])
    assert job["status"] == "completed", job
    assert job["result"]["conversations"] >= 1 and job["result"]["labels"]


def test_bad_input_fails_the_job_with_the_reason(admin: httpx.Client) -> None:
    response = admin.post(
        "/v1/uploads",
        files={"file": ("broken.json", b'{"id": "x", "messages": [', "application/json")},
    )
    assert response.status_code == 202
    job = wait_job(admin, response.json()["job_id"])
    assert job["status"] == "failed" and job["attempts"] == 1  # bad input: no retry
    assert job["error"]["code"] == "bad_input" and job["error"]["message"]


def test_errors_are_json_with_a_stable_code(server: Server, admin: httpx.Client) -> None:
    with server.client(key=None) as anonymous:
        r = anonymous.get("/v1/conversations")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    with server.client(key="clk_nope_" + "x" * 30) as wrong:
        assert wrong.get("/v1/conversations").json()["error"]["code"] == "invalid_api_key"
    r = admin.post("/v1/conversations", json={"id": "x", "messages": []})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert "messages" in r.json()["error"]["message"]
    r = admin.get("/v1/conversations/cv-doesnotexist")
    assert r.status_code == 404 and r.json()["error"]["code"] == "conversation_not_found"
    r = admin.get("/v1/jobs/job_missing")
    assert r.json()["error"]["code"] == "job_not_found"
    r = admin.post("/v1/uploads", files={"file": ("empty.json", b"", "application/json")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_upload"


def test_raw_text_only_for_admin_when_asked(admin: httpx.Client, submitted: dict) -> None:
    cid = submitted["chat-20260903-0001"]["conversation_id"]
    r = admin.get(f"/v1/conversations/{cid}/raw")
    assert r.status_code == 422 and r.json()["error"]["code"] == "confirm_required"
    raw = admin.get(f"/v1/conversations/{cid}/raw", params={"confirm": True}).json()
    assert "Maria" in raw[0]["payload"]  # unredacted, as received
    redacted = admin.get(f"/v1/conversations/{cid}/utterances").json()
    assert not any("Maria" in u["text"] for u in redacted)


def test_delete_removes_everything_derived(admin: httpx.Client) -> None:
    record = {**_sample("chat-20260903-0001"), "id": "to-delete-1"}
    accepted = admin.post("/v1/conversations", json=record).json()
    assert wait_job(admin, accepted["job_id"])["status"] == "completed"
    cid = accepted["conversation_id"]
    deleted = admin.delete(f"/v1/conversations/{cid}").json()
    assert deleted["rows"]["enrichments"] > 0 and deleted["rows"]["raw_interactions"] == 1
    assert admin.get(f"/v1/conversations/{cid}").status_code == 404
    assert admin.get("/v1/conversations", params={"q": "to-delete-1"}).json()["total"] == 0


def test_openapi_spec_lists_the_endpoints(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/v1/conversations", "/v1/uploads", "/v1/jobs/{job_id}", "/v1/keys",
                 "/v1/webhooks", "/v1/definitions/{kind}", "/v1/aggregates"):  # fmt: skip
        assert path in spec["paths"], path
