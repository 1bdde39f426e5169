"""Erasure by person (#17 item 7): one person planted in ten conversations across every
channel, erased by email and phone, and nothing of them left outside the audit receipt.

The person (a name, an email, a phone number and a customer id) is in: chats submitted as
JSON (as a participant with their email and customer id; by phone only in the text; by
customer id only), a CSV chat export, an email, a Zendesk ticket export, a WebVTT call
transcript and a plain-text transcript (linked by their customer id in the sidecar), and a
real recording (transcribed here; its sidecar names them). One conversation with someone
else must survive. Webhook deliveries of every event are kept, so the person also sits in
a tracker.hit payload. After POST /v1/erasure, no file under the server's data folder
(the DuckDB file and its WAL read as bytes, while the server runs and after it stops, the
spool) and no table row holds any of the person's data; the receipt in the audit log
holds counts and hashed ids only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import ROOT, Receiver, Server, wait_job

from convolens.enrich.registry import DEFAULT_COMPONENTS
from convolens.store.warehouse import Warehouse

NAME = "Quillon Varga"
EMAIL = "quillon.varga@erase-test.example"
PHONE = "+1 (415) 555-0199"
CUSTOMER = "CUST-884213"
# Every way the person can be written down in what is planted below.
NEEDLES = [
    b"quillon", b"varga", EMAIL.encode(), b"555-0199", b"555 0199", b"5550199", CUSTOMER.encode(),
]  # fmt: skip
OTHER_TEXT = "My invoice from Brightwater shows the wrong VAT number."


def _chat(source_id: str, customer: dict, text: str) -> dict:
    return {
        "id": source_id,
        "source": "crm",
        "channel": "chat",
        "started_at": "2026-10-02T10:00:00Z",
        "participants": [customer, {"id": "a", "name": "Dana Ruiz", "role": "agent"}],
        "messages": [
            {"author": customer["id"], "text": text, "sent_at": "2026-10-02T10:00:00Z"},
            {"author": "a", "text": "I can help with that.", "sent_at": "2026-10-02T10:01:00Z"},
        ],
    }


PERSON = {"id": "c", "name": NAME, "role": "customer", "email": EMAIL,
          "external_ids": {"customer_id": CUSTOMER}}  # fmt: skip
ANON = {"id": "c", "role": "customer"}


def _eml() -> bytes:
    return (
        f"From: {NAME} <{EMAIL}>\r\nTo: support@northwind.example\r\n"
        "Subject: Cannot log in\r\nDate: Tue, 06 Oct 2026 09:00:00 +0000\r\n"
        "Message-ID: <erase-eml-1@mail.example>\r\nContent-Type: text/plain\r\n\r\n"
        f"Hello, I cannot log in since yesterday. Call me on {PHONE}.\r\n{NAME}\r\n"
    ).encode()


def _zendesk() -> bytes:
    return json.dumps(
        {
            "tickets": [{
                "id": 7001, "subject": "Refund please", "status": "open",
                "created_at": "2026-10-03T08:00:00Z", "requester_id": 1, "assignee_id": 2,
                "comments": [
                    {"id": 1, "author_id": 1, "public": True, "created_at": "2026-10-03T08:00:00Z",
                     "body": "I was charged twice, please refund one."},
                    {"id": 2, "author_id": 2, "public": True, "created_at": "2026-10-03T09:00:00Z",
                     "body": f"Sorry {NAME.split()[0]}, refunded."},
                ],
            }],
            "users": [{"id": 1, "name": NAME, "email": EMAIL, "role": "end-user"},
                      {"id": 2, "name": "Sam Patel", "email": "sam@acme.example", "role": "agent"}],
        }
    ).encode()  # fmt: skip


def _sidecar(source_id: str, channel: str) -> str:
    return json.dumps(
        {"id": source_id, "source": "dialer", "channel": channel,
         "started_at": "2026-10-05T10:00:00Z", "links": {"user_id": CUSTOMER},
         "roles": {NAME: "customer"}}
    )  # fmt: skip


VTT = (
    "WEBVTT\n\n1\n00:00:00.500 --> 00:00:03.000\n<v Dana Ruiz>Thank you for calling, how can "
    "I help?\n\n2\n00:00:03.500 --> 00:00:07.000\n<v " + NAME + ">My router keeps dropping "
    "the connection every evening.\n"
)
TXT = f"Dana Ruiz: Good morning, support here.\n{NAME}: My parcel never arrived.\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("erasure-data")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.http.shutdown()


@pytest.fixture(scope="module")
def server(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Only the tracker component labels (its hits go out as webhooks, with the text): the
    # erasure is about copies, not about models. The log lives outside the data folder.
    side = tmp_path_factory.mktemp("erasure-side")
    config = side / "components.toml"
    config.write_text(
        "".join(
            f"[components.{n}]\nenabled = false\n" for n in DEFAULT_COMPONENTS if n != "trackers"
        )
    )
    running = Server(data / "erasure.duckdb", side / "server.log", CONVOLENS_CONFIG=str(config))
    running.env["CONVOLENS_PRELOAD"] = "0"
    running.start()
    yield running
    running.stop()


def _holders(folder: Path) -> dict[str, list[str]]:
    """File -> the needles its bytes hold (case-insensitive)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes().lower()
            hits = [n.decode() for n in NEEDLES if n.lower() in data]
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def _submit_all(admin) -> tuple[list[str], str]:  # type: ignore[no-untyped-def]
    jobs = []
    chats = [
        _chat("erase-chat-1", PERSON, "I want to cancel my subscription please."),
        _chat("erase-chat-2", ANON, f"I want to cancel my subscription, call me on {PHONE}."),
        _chat("erase-chat-3", {"id": "c", "name": NAME, "role": "customer",
                               "external_ids": {"crm": CUSTOMER}}, "Is my order shipped yet?"),
    ]  # fmt: skip
    for body in chats:
        jobs.append(admin.post("/v1/conversations", json=body))
    uploads = [
        ("chat.csv", (
            "conversation_id,sent_at,author,role,text\n"
            f"erase-csv-1,2026-10-04T10:00:00Z,{NAME},customer,My email is {EMAIL} and it bounces\n"
            "erase-csv-1,2026-10-04T10:01:00Z,Sam Patel,agent,Let me check that for you.\n"
        ).encode(), None),
        ("message.eml", _eml(), None),
        ("tickets.json", _zendesk(), None),
        ("call.vtt", VTT.encode(), _sidecar("erase-vtt-1", "call")),
        ("meeting.txt", TXT.encode(), _sidecar("erase-txt-1", "call")),
        ("recording.mp3", (ROOT / "tests/data/audio/call.mp3").read_bytes(),
         _sidecar("erase-rec-1", "call")),
    ]  # fmt: skip
    for name, content, sidecar in uploads:
        form = {"metadata": sidecar} if sidecar else {}
        jobs.append(admin.post("/v1/uploads", files={"file": (name, content)}, data=form))
    # The tenth: a second version of the first chat (two raw records, two versions).
    again = _chat("erase-chat-1", PERSON, f"Still waiting. My number is {PHONE}.")
    jobs.append(admin.post("/v1/conversations", json=again))
    other = admin.post(
        "/v1/conversations",
        json=_chat("keep-chat-1", {"id": "c", "name": "Mara Ellison", "role": "customer",
                                   "email": "mara@keep.example"}, OTHER_TEXT),
    )  # fmt: skip
    ids: set[str] = set()
    for accepted in jobs:
        assert accepted.status_code == 202, accepted.text
        job = wait_job(admin, accepted.json()["job_id"])
        assert job["status"] == "completed", job
        ids |= set(job["result"]["conversation_ids"])
    assert wait_job(admin, other.json()["job_id"])["status"] == "completed"
    return sorted(ids), other.json()["conversation_id"]


def test_erasure_leaves_nothing_of_the_person(
    server: Server, data: Path, receiver: Receiver
) -> None:
    with server.client() as admin:
        hook = admin.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]})
        assert hook.status_code == 201, hook.text
        ids, keep = _submit_all(admin)
        assert len(ids) == 9, ids  # nine conversations; erase-chat-1 in two versions
        channels = {
            admin.get(f"/v1/conversations/{cid}").json()["conversation"]["channel"] for cid in ids
        }
        assert {"chat", "email", "call"} <= channels, channels
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(b"555-0199" in b for b in receiver.bodies):
            time.sleep(0.3)
        events = [json.loads(b).get("event") for b in receiver.bodies]
        assert any(b"555-0199" in b for b in receiver.bodies), f"no delivery had it: {events}"

        before = _holders(data)
        assert any(name.endswith(".duckdb") or name.endswith(".wal") for name in before), before
        assert any(".uploads" in name for name in before), before  # the spool holds them too

        erased = admin.post("/v1/erasure", json={"email": EMAIL, "phone": PHONE})
        assert erased.status_code == 200, erased.text
        receipt = erased.json()
        assert receipt["conversations"] == 9 and receipt["identifiers"] == ["email", "phone"]
        assert receipt["rows"]["conversations"] == 10, receipt  # the chat's two versions
        assert receipt["rows"]["raw_interactions"] >= 10 and receipt["rows"]["jobs"] >= 10
        assert receipt["rows"]["webhook_deliveries"] >= 1 and receipt["files"] >= 9, receipt

        assert _holders(data) == {}, "the person survived the erasure"
        for cid in ids:
            assert admin.get(f"/v1/conversations/{cid}").status_code == 404
        kept = admin.get(f"/v1/conversations/{keep}")
        assert kept.status_code == 200 and OTHER_TEXT in kept.text
        # The receipt is in the audit log, with the admin who asked, and no person data.
        logged = admin.get("/v1/audit", params={"action": "erasure"}).json()
        assert len(logged) == 1 and logged[0]["actor_role"] == "admin", logged
        assert logged[0]["details"]["conversations"] == 9
        assert sorted(logged[0]["details"]["conversation_hashes"]) == sorted(
            receipt["conversation_hashes"]
        )
        assert not any(n.decode() in json.dumps(logged).lower() for n in NEEDLES)
        # Asked again: nothing is left to find.
        again = admin.post("/v1/erasure", json={"email": EMAIL, "phone": PHONE}).json()
        assert again["conversations"] == 0 and again["rows"] == {} and again["files"] == 0
    server.stop()
    assert _holders(data) == {}, "the person came back at shutdown"
    with Warehouse(data / "erasure.duckdb", read_only=True) as warehouse:
        tables = [
            r["table_name"]
            for r in warehouse.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                "AND table_type = 'BASE TABLE'"
            )
        ]
        pattern = "|".join(re.escape(n.decode()) for n in NEEDLES)
        for table in tables:
            text = "lower(CAST(t AS VARCHAR))"
            if table == "raw_interactions":
                text = "lower(coalesce(try(decode(t.payload)), '') || CAST(t AS VARCHAR))"
            found = warehouse.query(
                f"SELECT count(*) AS n FROM {table} t WHERE regexp_matches({text}, ?)", [pattern]
            )
            assert found[0]["n"] == 0, table
        assert (
            warehouse.query(
                "SELECT count(*) AS n FROM utterances WHERE contains(text, ?)", [OTHER_TEXT]
            )[0]["n"]
            == 1
        )
