"""/openapi.json describes what the API takes and sends: every parameter has a
description, a conversation and its parts are typed objects with examples, and the
real responses of a running server match those types.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from live_server import EXAMPLES, Server, unlabelled_server, wait_job

from convolens.service.schemas import ConversationOut, LabelOut, UtteranceOut


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    record = json.loads((EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines()[0])
    with unlabelled_server(tmp_path_factory.mktemp("openapi")) as server:
        with server.client() as admin:
            accepted = admin.post("/v1/conversations", json=record).raise_for_status().json()
            assert wait_job(admin, accepted["job_id"])["status"] == "completed"
        yield server, accepted["conversation_id"]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_every_parameter_is_described(running: tuple[Server, str]) -> None:
    server, _ = running
    with server.client(None) as anonymous:
        spec = anonymous.get("/openapi.json").raise_for_status().json()
    parameters = [
        (method.upper(), path, parameter["name"], parameter.get("description", ""))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
    ]
    assert len(parameters) > 100  # the whole API, not an empty schema
    assert [p[:3] for p in parameters if not p[3].strip()] == []
    # A route's own description wins over the shared one.
    words = next(p for p in parameters if p[1] == "/v1/conversations/{conversation_id}"
                 and p[2] == "words")  # fmt: skip
    assert words[3] == "Include word timings."


def test_conversation_and_part_responses_are_typed_with_examples(
    running: tuple[Server, str],
) -> None:
    server, _ = running
    with server.client(None) as anonymous:
        spec = anonymous.get("/openapi.json").raise_for_status().json()

    def ok(path: str) -> dict[str, Any]:
        response = spec["paths"][path]["get"]["responses"]["200"]
        return _resolve(spec, response["content"]["application/json"]["schema"])

    conversation = ok("/v1/conversations/{conversation_id}")
    assert conversation.get("type") == "object" and conversation["examples"]
    assert {"conversation", "utterances", "metrics", "sentiment", "trackers"} <= set(
        conversation["properties"]
    )
    header = _resolve(spec, conversation["properties"]["conversation"])
    assert {"conversation_id", "channel", "participants"} <= set(header["properties"])
    part = ok("/v1/conversations/{conversation_id}/{part}")
    assert part["type"] == "array"
    label = _resolve(spec, part["items"])
    assert {"label", "value", "evidence", "component", "run_id"} <= set(label["properties"])
    assert label["examples"][0]["label"] == "tracker.match"
    evidence = _resolve(spec, label["properties"]["evidence"]["items"])
    assert evidence["required"] == ["utterance_id", "start", "end"]
    utterances = ok("/v1/conversations/{conversation_id}/utterances")
    assert _resolve(spec, utterances["items"])["properties"]["text"]["type"] == "string"
    part_parameter = next(
        p for p in spec["paths"]["/v1/conversations/{conversation_id}/{part}"]["get"]["parameters"]
        if p["name"] == "part"
    )  # fmt: skip
    assert "trackers" in part_parameter["description"]


def test_real_responses_match_the_schema(running: tuple[Server, str]) -> None:
    server, cid = running
    with server.client() as admin:
        whole = admin.get(f"/v1/conversations/{cid}").raise_for_status().json()
        chosen = admin.get(f"/v1/conversations/{cid}", params={"parts": "trackers"}).json()
        utterances = admin.get(f"/v1/conversations/{cid}/utterances").json()
        pii = admin.get(f"/v1/conversations/{cid}/pii").raise_for_status().json()
    parsed = ConversationOut.model_validate(whole)
    assert parsed.conversation.conversation_id == cid
    assert parsed.conversation.source_id == "chat-20260903-0001"
    assert len(parsed.utterances) == parsed.conversation.utterance_count > 0
    # Times stay as the warehouse wrote them; parts not asked for are absent, not null.
    assert whole["conversation"]["started_at"].startswith("2026-09-03T09:12:00")
    assert set(chosen) == {"conversation", "utterances", "metrics", "trackers"}
    assert "words" not in utterances[0]
    for row in utterances:
        UtteranceOut.model_validate(row)
    for row in pii:
        LabelOut.model_validate(row)
