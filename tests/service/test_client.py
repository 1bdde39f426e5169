"""The Python SDK (`convolens.client`) against a real server: submit, wait, typed results
with evidence and lineage, uploads, failed jobs, API errors, and the async client.

Conversations are submitted under ids of their own and deleted at the end, so the other
service tests (which count intents and search text on the shared server) see the same
warehouse whichever order the files run in.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import ADMIN_KEY, EXAMPLES, Server
from pydantic import BaseModel

from convolens.client import ApiError, AsyncClient, Client, JobFailed, JobTimeout
from convolens.client import models as cm

RUN = uuid.uuid4().hex[:6]  # ids unique to this session's server


def _sample(source_id: str, new_id: str) -> dict:
    for line in (EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["id"] == source_id:
            return {**record, "id": new_id}
    raise KeyError(source_id)


@pytest.fixture(scope="module")
def sdk(server: Server) -> Iterator[Client]:
    with Client(server.url, ADMIN_KEY) as admin_sdk:
        yield admin_sdk


@pytest.fixture(scope="module")
def created(sdk: Client) -> Iterator[list[str]]:
    """Conversation ids the tests made; deleted (with everything derived) afterwards."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        assert sdk.delete(cid).rows["conversations"] >= 1


@pytest.fixture(scope="module")
def analyst(server: Server, sdk: Client) -> Iterator[Client]:
    key = sdk.create_key(f"sdk-analyst-{RUN}", "analyst")
    assert key.role == "analyst" and key.key.startswith("clk_")
    with Client(server.url, key.key, timeout=30) as client:
        yield client
    sdk.revoke_key(key.key_id)


def test_submit_wait_and_typed_results(analyst: Client, created: list[str]) -> None:
    accepted = analyst.submit_conversation(_sample("chat-20261106-0010", f"sdk-cancel-{RUN}"))
    assert isinstance(accepted, cm.Accepted) and accepted.conversation_id
    created.append(accepted.conversation_id)
    job = analyst.wait(accepted, timeout=120)
    assert job.status == "completed" and job.result
    assert job.result["conversation_ids"] == [accepted.conversation_id]

    result = analyst.conversation(accepted.conversation_id, words=True)
    assert result.header.source_id == f"sdk-cancel-{RUN}"
    assert len(result.utterances) == result.header.utterance_count > 0
    assert result.metrics.conversation is not None
    assert result.primary_intent == "cancel_subscription"
    (primary,) = result.labels("intent.primary")
    assert isinstance(primary, cm.Label) and primary.value["intent"] == "cancel_subscription"
    assert primary.lineage.component == "intents" and primary.lineage.taxonomy_version
    assert primary.lineage.run_id and primary.evidence
    for span in primary.evidence:
        assert isinstance(span, cm.Evidence) and result.text(span).strip()
    assert "churn_risk" in {s.value["signal"] for s in result.signals or []}
    # One part alone is the same list of labels; unrequested parts are None.
    assert analyst.part(accepted.conversation_id, "intents") == result.intents
    only = analyst.conversation(accepted.conversation_id, parts=["intents", "signals"])
    assert only.sentiment is None and set(only.parts()) == {"intents", "signals"}

    listed = analyst.conversations(intent="cancel_subscription", limit=500)
    assert isinstance(listed, cm.ConversationList)
    mine = [c for c in listed.items if c.conversation_id == accepted.conversation_id]
    assert [c.primary_intent for c in mine] == ["cancel_subscription"]
    other = analyst.conversations(intent="refund_request", limit=500).items
    assert accepted.conversation_id not in {c.conversation_id for c in other}
    assert analyst.aggregates().primary_intents["cancel_subscription"] >= 1


def test_upload_a_path_and_bytes(analyst: Client, created: list[str], tmp_path: Path) -> None:
    path = tmp_path / "login.jsonl"
    path.write_text(json.dumps(_sample("chat-20260908-0002", f"sdk-path-{RUN}")) + "\n")
    from_path = analyst.upload(path)
    raw = json.dumps(_sample("chat-20260914-0003", f"sdk-bytes-{RUN}")).encode()
    from_bytes = analyst.upload(raw, filename="crash.json", format="json")
    for accepted in (from_path, from_bytes):
        job = analyst.wait(accepted.job_id, timeout=120)
        (cid,) = job.result["conversation_ids"] if job.result else []
        created.append(cid)
    assert analyst.conversation(f"sdk-bytes-{RUN}").header.source_id == f"sdk-bytes-{RUN}"
    with pytest.raises(ValueError, match="filename"):
        analyst.upload(raw)


def test_broken_input_raises_job_failed(analyst: Client) -> None:
    accepted = analyst.upload(b'{"id": "x", "messages": [', filename="broken.json")
    with pytest.raises(JobFailed) as failed:
        analyst.wait(accepted, timeout=60)
    assert failed.value.job.status == "failed" and failed.value.code == "bad_input"
    assert failed.value.message and failed.value.job.attempts == 1


def test_api_errors_carry_the_stable_code(server: Server, analyst: Client, sdk: Client) -> None:
    with pytest.raises(ApiError) as missing:
        analyst.conversation("cv-doesnotexist")
    assert missing.value.status == 404 and missing.value.code == "conversation_not_found"
    with pytest.raises(ApiError) as bad_url:
        sdk.submit_conversation(_sample("chat-20260908-0002", "x"), webhook_url="ftp://x")
    assert (bad_url.value.status, bad_url.value.code) == (422, "invalid_webhook_url")
    with pytest.raises(ApiError) as not_analysts:  # per-job webhooks are for admin keys
        analyst.submit_conversation(
            _sample("chat-20260908-0002", "x"), webhook_url="https://x.example"
        )
    assert (not_analysts.value.status, not_analysts.value.code) == (403, "webhook_url_forbidden")
    with pytest.raises(ApiError) as invalid:
        analyst.submit_conversation({"id": "x", "messages": []})
    assert (invalid.value.status, invalid.value.code) == (422, "invalid_request")
    assert invalid.value.detail[0]["where"] == "body.messages"
    with pytest.raises(ApiError) as empty:
        analyst.upload(b"", filename="empty.json")
    assert empty.value.code == "empty_upload"
    with pytest.raises(ApiError) as not_admin:
        analyst.create_key("nope", "admin")
    assert not_admin.value.status == 403 and not_admin.value.code == "forbidden"
    with Client(server.url, "clk_nope_" + "x" * 30) as wrong, pytest.raises(ApiError) as refused:
        wrong.aggregates()
    assert refused.value.code == "invalid_api_key"
    viewer = sdk.create_key(f"sdk-viewer-{RUN}", "viewer")
    with Client(server.url, viewer.key) as client:
        assert client.aggregates().conversations >= 0
        with pytest.raises(ApiError, match="forbidden"):
            client.conversations()
    sdk.revoke_key(viewer.key_id)


def test_admin_calls(sdk: Client) -> None:
    hook = sdk.create_webhook("http://127.0.0.1:9/hook", ["job.failed"], rule={"channel": "chat"})
    try:
        assert hook.secret and hook.events == ["job.failed"]
        assert hook.hook_id in {h.hook_id for h in sdk.webhooks()}
    finally:
        sdk.delete_webhook(hook.hook_id)
    trackers = [{"name": f"sdk_refund_{RUN}", "phrases": ["refund please"]}]
    made = sdk.create_definition("trackers", trackers, name=f"sdk-{RUN}")
    assert made.version == 1 and not made.active
    listed = sdk.definitions("trackers", content=True)
    assert any(d.name == f"sdk-{RUN}" and d.content == trackers for d in listed)


def test_async_client_same_flow(server: Server, created: list[str]) -> None:
    async def flow() -> None:
        async with AsyncClient(server.url, ADMIN_KEY) as api:
            record = _sample("chat-20261106-0010", f"sdk-async-{RUN}")
            other = json.dumps(_sample("chat-20260908-0002", f"sdk-async-upload-{RUN}"))
            submitted, uploaded, broken = await asyncio.gather(
                api.submit_conversation(cm.ConversationIn.model_validate(record)),
                api.upload(other.encode(), filename="login.jsonl"),
                api.upload(b'{"id": "x", "messages": [', filename="broken.json"),
            )
            with pytest.raises(JobTimeout):
                await api.wait(submitted, timeout=0)
            done = await api.wait(submitted, timeout=120)
            assert submitted.conversation_id
            created.append(submitted.conversation_id)
            assert done.result and done.result["conversation_ids"] == [submitted.conversation_id]
            result = await api.conversation(submitted.conversation_id, parts="intents")
            assert result.primary_intent == "cancel_subscription"
            assert await api.part(submitted.conversation_id, "intents") == result.intents
            loaded = await api.wait(uploaded, timeout=120)
            created.extend(loaded.result["conversation_ids"] if loaded.result else [])
            assert len(created) >= 2 and created[-1] != submitted.conversation_id
            with pytest.raises(JobFailed):
                await api.wait(broken, timeout=60)
            with pytest.raises(ApiError) as missing:
                await api.job("job_missing")
            assert missing.value.code == "job_not_found"

    asyncio.run(flow())


def test_models_match_the_service() -> None:
    """The SDK's models have the fields the service sends (they are kept apart so the SDK
    needs no FastAPI: this catches one changing without the other)."""
    from convolens.service import auth, definitions, jobs, results, routes_admin
    from convolens.service import routes_conversations as rc

    pairs: list[tuple[type[BaseModel], type[BaseModel]]] = [
        (cm.Accepted, rc.Accepted), (cm.Job, jobs.Job), (cm.ConversationIn, rc.ConversationIn),
        (cm.ConversationList, rc.ConversationList),
        (cm.ConversationSummary, rc.ConversationSummary), (cm.Aggregates, rc.Aggregates),
        (cm.Deleted, rc.Deleted), (cm.ApiKeyCreated, auth.ApiKeyCreated),
        (cm.WebhookCreated, routes_admin.WebhookCreated), (cm.Definition, definitions.Definition),
    ]  # fmt: skip
    for ours, theirs in pairs:
        assert set(ours.model_fields) == set(theirs.model_fields), ours.__name__
    assert tuple(results.PARTS) == cm.PARTS


def test_sdk_needs_only_httpx_and_pydantic() -> None:
    code = (
        "import sys\n"
        "for m in ('fastapi', 'starlette', 'duckdb', 'pyarrow', 'uvicorn'): sys.modules[m] = None\n"
        "from convolens.client import Client, AsyncClient\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
