"""Delete means every copy (issue #11 item 5).

A unique word is planted in a conversation three ways: a JSON submit, a second version
uploaded as a file (spooled, and named with the word, which the ingest run records), and
the text of a tracker.hit webhook delivery. After
DELETE, no file in the server's data folder (the DuckDB file included, read as bytes
while the server runs and again after it stops) and no table of the warehouse holds it,
and the conversation's jobs and deliveries are gone."""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import Receiver, Server, wait_job

from convolens.store.warehouse import Warehouse

# A made-up lower-case word: no PII detector takes it for a name, number or address, so
# the redacted text, the raw layer and the webhook all carry it verbatim.
PLANTED = "zorbl" + "".join(random.Random(11).choices(string.ascii_lowercase, k=12))


def _conversation(source_id: str, text: str) -> dict:
    return {
        "id": source_id,
        "source": "crm",
        "channel": "chat",
        "started_at": "2026-10-02T10:00:00Z",
        "participants": [
            {"id": "c", "name": "Customer", "role": "customer"},
            {"id": "a", "name": "Agent", "role": "agent"},
        ],
        "messages": [
            {"author": "c", "text": text, "sent_at": "2026-10-02T10:00:00Z"},
            {"author": "a", "text": "I can help with that.", "sent_at": "2026-10-02T10:01:00Z"},
        ],
    }


def _holders(folder: Path, needle: str) -> list[str]:
    """Every file under `folder` whose bytes contain `needle` (binary-safe)."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and needle.encode() in p.read_bytes()
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("erase-data")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.http.shutdown()


@pytest.fixture(scope="module")
def erasing(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The log lives outside the data folder; the data folder is what is grepped.
    log = tmp_path_factory.mktemp("erase-log") / "server.log"
    server = Server(data / "erase.duckdb", log, CONVOLENS_WEBHOOK_ALLOW_HOSTS="127.0.0.1")
    server.start()
    yield server
    server.stop()


def test_delete_leaves_no_copy_anywhere(erasing: Server, data: Path, receiver: Receiver) -> None:
    with erasing.client() as admin:
        hook = admin.post("/v1/webhooks", json={"url": receiver.url, "events": ["tracker.hit"]})
        assert hook.status_code == 201, hook.text
        # 1. submitted as JSON; 2. a second version uploaded as a file (spooled).
        first = admin.post(
            "/v1/conversations",
            json=_conversation("erase-me", f"I want to cancel my subscription, {PLANTED}."),
            params={"webhook_url": receiver.url},
        )
        assert first.status_code == 202, first.text
        cid = first.json()["conversation_id"]
        done = wait_job(admin, first.json()["job_id"])
        assert done["status"] == "completed", done["error"]
        second = _conversation("erase-me", f"Please cancel my subscription now, {PLANTED} again.")
        upload = admin.post(
            "/v1/uploads", files={"file": (f"erase-me-{PLANTED}.json", json.dumps(second).encode())}
        )
        assert upload.status_code == 202, upload.text
        job = wait_job(admin, upload.json()["job_id"])
        assert job["status"] == "completed" and job["result"]["conversation_ids"] == [cid], job
        # A neighbour that must survive, and a throwaway whose delete checkpoints the
        # warehouse: from then on the planted word is in the DuckDB file itself, not only
        # in its write-ahead log, so the grep below tests the file's blocks.
        keep = admin.post("/v1/conversations", json=_conversation("keep-me", "My bill is wrong."))
        throwaway = admin.post("/v1/conversations", json=_conversation("throw", "Hello there."))
        for accepted in (keep, throwaway):
            assert wait_job(admin, accepted.json()["job_id"])["status"] == "completed"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            PLANTED.encode() in b for b in receiver.bodies
        ):
            time.sleep(0.2)
        assert any(PLANTED.encode() in b for b in receiver.bodies), "no delivery carried the word"
        assert admin.delete(f"/v1/conversations/{throwaway.json()['conversation_id']}").is_success

        before = _holders(data, PLANTED)
        assert "erase.duckdb" in before, before  # the control: the grep can see it there
        assert any(".uploads" in name for name in before), before
        deliveries = admin.get("/v1/webhooks/deliveries", params={"limit": 1000}).text
        assert PLANTED in deliveries

        deleted = admin.delete(f"/v1/conversations/{cid}")
        assert deleted.status_code == 200, deleted.text
        rows = deleted.json()["rows"]
        assert rows["conversations"] == 2 and rows["raw_interactions"] == 2, rows
        assert rows["jobs"] >= 2 and rows["webhook_deliveries"] >= 1, rows

        assert _holders(data, PLANTED) == [], "a copy survived the delete"
        assert admin.get(f"/v1/conversations/{cid}").status_code == 404
        for accepted in (first, upload):
            assert admin.get(f"/v1/jobs/{accepted.json()['job_id']}").status_code == 404
        assert PLANTED not in admin.get("/v1/webhooks/deliveries", params={"limit": 1000}).text
        assert cid not in admin.get("/v1/jobs", params={"limit": 500}).text
        # The neighbour is untouched.
        kept = admin.get(f"/v1/conversations/{keep.json()['conversation_id']}")
        assert kept.status_code == 200 and "My bill is wrong." in kept.text
    erasing.stop()
    assert _holders(data, PLANTED) == [], "a copy came back at shutdown"
    with Warehouse(data / "erase.duckdb", read_only=True) as warehouse:
        tables = [
            r["table_name"]
            for r in warehouse.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                "AND table_type = 'BASE TABLE'"
            )
        ]
        assert {"conversations", "raw_interactions", "jobs", "webhook_deliveries"} <= set(tables)
        for table in tables:
            found = warehouse.query(
                f"SELECT count(*) AS n FROM {table} t WHERE contains(CAST(t AS VARCHAR), ?)",
                [PLANTED],
            )
            assert found[0]["n"] == 0, table
        assert (
            warehouse.query("SELECT count(*) AS n FROM conversations WHERE source_id = 'keep-me'")[
                0
            ]["n"]
            == 1
        )
