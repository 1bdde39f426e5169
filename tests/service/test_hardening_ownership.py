"""An agent key cannot write over another key's conversation (issue #11 item 3).

A new version of a conversation may only come from a key allowed to write it: admins and
analysts, or the agent it belongs to. Anyone else gets a 409 that says no more than a
generic conflict: not whose it is, nor that another agent holds it. The check runs at
submit and again when a job writes (an export's conversations are only known then)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from live_server import Server, wait_job

from convolens.model import conversation_id_for

AUDIO = Path(__file__).parents[1] / "data" / "audio" / "telephony_8k.wav"


def _conversation(source_id: str, source: str, text: str, agent: str = "") -> dict:
    return {
        "id": source_id,
        "source": source,
        "channel": "chat",
        "agent": agent or None,
        "started_at": "2026-10-01T09:00:00Z",
        "participants": [
            {"id": "c", "name": "Customer", "role": "customer"},
            {"id": "a", "name": "Agent", "role": "agent"},
        ],
        "messages": [
            {"author": "c", "text": text, "sent_at": "2026-10-01T09:00:00Z"},
            {"author": "a", "text": "Thanks, looking into it.", "sent_at": "2026-10-01T09:01:00Z"},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def agents(server: Server, admin: httpx.Client) -> dict[str, httpx.Client]:
    clients = {}
    for name in ("Alice Owner", "Bob Other", "Carol Nobody"):
        created = admin.post("/v1/keys", json={"name": name, "role": "agent", "agent": name})
        assert created.status_code == 201, created.text
        clients[name.split()[0].lower()] = server.client(created.json()["key"])
    yield clients
    for client in clients.values():
        client.close()


def _submit(client: httpx.Client, body: dict) -> dict:
    response = client.post("/v1/conversations", json=body)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"])
    assert job["status"] == "completed", job
    return response.json()


@pytest.fixture(scope="module")
def alices(agents: dict[str, httpx.Client]) -> str:
    accepted = _submit(agents["alice"], _conversation("own-1", "crm", "My router keeps dropping."))
    return accepted["conversation_id"]


def test_another_agent_gets_a_bare_409_and_the_owner_keeps_it(
    agents: dict[str, httpx.Client], admin: httpx.Client, alices: str
) -> None:
    bob, alice = agents["bob"], agents["alice"]
    taken = bob.post("/v1/conversations", json=_conversation("own-1", "crm", "Overwritten!"))
    assert taken.status_code == 409, taken.text
    error = taken.json()["error"]
    assert error["code"] == "conflict" and error["detail"] is None
    assert "alice" not in taken.text.lower() and "agent" not in taken.text.lower()
    # Same answer as for a conversation nobody's agent holds: nothing tells them apart.
    _submit(admin, _conversation("admins-1", "crm", "Filed by an admin, no agent."))
    also = bob.post("/v1/conversations", json=_conversation("admins-1", "crm", "Overwritten!"))
    assert also.status_code == 409 and also.json() == taken.json()
    # The owner still reads the one version she wrote.
    mine = alice.get(f"/v1/conversations/{alices}")
    assert mine.status_code == 200, mine.text
    header = mine.json()["conversation"]
    assert header["version"] == 1 and header["agent"] == "Alice Owner"
    assert "Overwritten" not in mine.text
    # She may change her own conversation: a second version, still hers.
    _submit(alice, _conversation("own-1", "crm", "My router keeps dropping, twice a day."))
    again = alice.get(f"/v1/conversations/{alices}").json()["conversation"]
    assert again["version"] == 2 and again["agent"] == "Alice Owner"


def test_an_upload_cannot_become_a_version_of_anothers_call(
    agents: dict[str, httpx.Client], server: Server
) -> None:
    alice, bob = agents["alice"], agents["bob"]
    _submit(alice, _conversation("call-own-2", "audio", "I need help with my internet."))
    cid = conversation_id_for("audio", "call-own-2")
    spool = server.db.with_name(server.db.stem + ".uploads")
    before = sorted(p.name for p in spool.rglob("*") if p.is_file())
    refused = bob.post(
        "/v1/uploads",
        files={"file": (AUDIO.name, AUDIO.read_bytes(), "audio/wav")},
        data={"metadata": json.dumps({"id": "call-own-2"})},
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "conflict"
    # Refused before anything was kept of it.
    assert sorted(p.name for p in spool.rglob("*") if p.is_file()) == before
    assert alice.get(f"/v1/conversations/{cid}").json()["conversation"]["version"] == 1


def test_an_export_is_checked_conversation_by_conversation_when_written(
    agents: dict[str, httpx.Client], alices: str
) -> None:
    """An export's conversations are only known when its job reads it: the job files
    the caller's as theirs and refuses the one that is someone else's."""
    alice, bob = agents["alice"], agents["bob"]
    before = alice.get(f"/v1/conversations/{alices}").json()["conversation"]
    lines = [
        _conversation("own-1", "crm", "words written over the owner's", agent="Alice Owner"),
        _conversation("bobs-new-1", "crm", "A new one, said to be Alice's", agent="Alice Owner"),
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    accepted = bob.post("/v1/uploads", files={"file": ("export.jsonl", body, "application/json")})
    assert accepted.status_code == 202, accepted.text
    job = wait_job(bob, accepted.json()["job_id"])
    assert job["status"] == "completed", job
    (reject,) = job["result"]["rejects"]
    assert reject["reason"].startswith("conflict") and "alice" not in reject["reason"].lower()
    after = alice.get(f"/v1/conversations/{alices}").json()["conversation"]
    assert after["version"] == before["version"] and after["agent"] == "Alice Owner"
    (new_id,) = job["result"]["conversation_ids"]
    filed = bob.get(f"/v1/conversations/{new_id}")
    assert filed.status_code == 200 and filed.json()["conversation"]["agent"] == "Bob Other"
    assert alice.get(f"/v1/conversations/{new_id}").status_code == 404


def test_an_export_of_only_anothers_conversation_fails_with_the_reason(
    agents: dict[str, httpx.Client], alices: str
) -> None:
    body = json.dumps(_conversation("own-1", "crm", "words from the wrong key")).encode()
    accepted = agents["bob"].post("/v1/uploads", files={"file": ("one.json", body)})
    job = wait_job(agents["bob"], accepted.json()["job_id"])
    assert job["status"] == "failed" and job["error"]["message"].startswith("conflict"), job
    assert "wrong key" not in agents["alice"].get(f"/v1/conversations/{alices}").text


def test_lookups_by_source_id_do_not_reveal_other_agents_ids(
    agents: dict[str, httpx.Client], admin: httpx.Client
) -> None:
    """The same source id in two systems: each agent finds their own, a third gets 404,
    and only a key that sees both is told the id is ambiguous."""
    _submit(agents["alice"], _conversation("T-100", "crm", "a ticket about the router"))
    _submit(agents["bob"], _conversation("T-100", "zendesk", "a ticket about the invoice"))
    assert "a ticket about the router" in agents["alice"].get("/v1/conversations/T-100").text
    assert "a ticket about the invoice" in agents["bob"].get("/v1/conversations/T-100").text
    nobody = agents["carol"].get("/v1/conversations/T-100")
    assert nobody.status_code == 404 and nobody.json()["error"]["code"] == "conversation_not_found"
    missing = agents["carol"].get("/v1/conversations/T-does-not-exist")
    assert (
        missing.json()["error"]["message"].replace("T-does-not-exist", "T-100")
        == (nobody.json()["error"]["message"])
    )
    both = admin.get("/v1/conversations/T-100")
    assert both.status_code == 409 and both.json()["error"]["code"] == "ambiguous_id"
