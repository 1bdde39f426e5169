"""Retention with backdated rows (library, `convolens retention run`, and the server's own
schedule), and the governance CLI: `convolens erase` and `convolens audit` exports."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_server import Server

from convolens.audit import AuditFilter, query_audit
from convolens.ingest.pipeline import ingest_paths
from convolens.retention import RetentionPolicy, apply_retention
from convolens.store.warehouse import Warehouse

OLD, STALE_RAW, RECENT = "ret-old", "ret-stale-raw", "ret-recent"
WORDS = {OLD: "vexillum", STALE_RAW: "quarzite", RECENT: "pellucid"}  # one made-up word each


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _chat(source_id: str, text: str, email: str | None = None) -> dict:
    customer = {"id": "c", "name": "Customer", "role": "customer"}
    if email:
        customer["email"] = email
    return {
        "id": source_id,
        "channel": "chat",
        "started_at": "2026-11-20T10:00:00Z",
        "participants": [customer, {"id": "a", "name": "Agent", "role": "agent"}],
        "messages": [
            {"author": "c", "text": text, "sent_at": "2026-11-20T10:00:00Z"},
            {"author": "a", "text": "Thanks, on it.", "sent_at": "2026-11-20T10:01:00Z"},
        ],
    }


def _warehouse(folder: Path) -> Path:
    """Three chats; OLD started 800 days ago, STALE_RAW's raw record arrived 100 days ago,
    RECENT is new; an audit row 400 days old."""
    source = folder / "chats.jsonl"
    source.write_text(
        "\n".join(json.dumps(_chat(s, f"Question about {w} please.")) for s, w in WORDS.items())
    )
    db = folder / "ret.duckdb"
    with Warehouse(db) as wh:
        ingest_paths(wh, [source])
        wh.con.execute(
            "UPDATE conversations SET started_at = now() - INTERVAL 800 DAY WHERE source_id = ?",
            [OLD],
        )
        wh.con.execute(
            "UPDATE raw_interactions SET received_at = now() - INTERVAL 100 DAY WHERE "
            "conversation_id IN (SELECT conversation_id FROM conversations WHERE source_id = ?)",
            [STALE_RAW],
        )
        wh.con.execute(
            "INSERT INTO audit_log (audit_id, occurred_at, via, action, outcome, details) "
            "VALUES ('au_old', now() - INTERVAL 400 DAY, 'cli', 'export', 'ok', '{}')"
        )
        wh.con.execute("CHECKPOINT")
    source.unlink()  # only the warehouse holds the words now
    return db


def _counts(db: Path) -> dict[str, int]:
    with Warehouse(db, read_only=True) as wh:
        row = wh.query(
            "SELECT (SELECT count(*) FROM conversations) AS conversations, "
            "(SELECT count(*) FROM raw_interactions) AS raw, "
            "(SELECT count(*) FROM audit_log WHERE audit_id = 'au_old') AS old_audit"
        )
        return {k: int(v) for k, v in row[0].items()}


def _texts(db: Path, source_ids: list[str]) -> list[str]:
    with Warehouse(db, read_only=True) as wh:
        rows = wh.query(
            "SELECT u.text FROM utterances u JOIN conversations c USING (conversation_id) "
            "WHERE list_contains(?, c.source_id) ORDER BY c.source_id, u.seq",
            [source_ids],
        )
    return [r["text"] for r in rows]


def test_policy_from_environment() -> None:
    assert not RetentionPolicy.from_env({}).enabled
    on = RetentionPolicy.from_env({"CONVOLENS_RETENTION": "on"})
    assert (on.raw_days, on.text_days, on.audit_days) == (90, 730, None)
    assert on.describe() == {
        "raw": "90 days", "text": "730 days", "aggregates": "forever", "audit": "forever"
    }  # fmt: skip
    mixed = RetentionPolicy.from_env(
        {"CONVOLENS_RETENTION": "on", "CONVOLENS_RETENTION_RAW_DAYS": "30",
         "CONVOLENS_RETENTION_TEXT_DAYS": "forever", "CONVOLENS_RETENTION_AUDIT_DAYS": "365"}
    )  # fmt: skip
    assert (mixed.raw_days, mixed.text_days, mixed.audit_days) == (30, None, 365)
    with pytest.raises(ValueError, match="CONVOLENS_RETENTION_RAW_DAYS"):
        RetentionPolicy.from_env({"CONVOLENS_RETENTION_RAW_DAYS": "ninety"})


def test_retention_removes_what_is_past_its_time(tmp_path: Path) -> None:
    db = _warehouse(tmp_path)
    assert _counts(db) == {"conversations": 3, "raw": 3, "old_audit": 1}
    before = db.read_bytes()
    assert all(w.encode() in before for w in WORDS.values())  # the grep below can see them
    kept_text = _texts(db, [STALE_RAW, RECENT])
    policy = RetentionPolicy(raw_days=90, text_days=730, audit_days=365)
    with Warehouse(db) as wh:
        report = apply_retention(wh, policy)
    assert report.conversations == 1 and report.audit_rows == 1
    # OLD whole (its raw record too) and STALE_RAW's raw record; RECENT untouched.
    assert report.rows["conversations"] == 1 and report.rows["raw_interactions"] == 2
    assert _counts(db) == {"conversations": 2, "raw": 1, "old_audit": 0}
    assert WORDS[OLD].encode() not in db.read_bytes()  # gone to the byte, not just unlinked
    assert _texts(db, [STALE_RAW, RECENT]) == kept_text and len(kept_text) == 4
    with Warehouse(db) as wh:
        runs = query_audit(wh, AuditFilter(action="retention.run"))
        assert len(runs) == 1 and runs[0].details["conversations"] == 1
        assert [e.action for e in query_audit(wh, AuditFilter(action="audit."))] == [
            "audit.retention"
        ]
        again = apply_retention(wh, policy)  # nothing more to do
    assert again.conversations == 0 and again.rows == {} and again.audit_rows == 0


def test_retention_cli(tmp_path: Path) -> None:
    db = _warehouse(tmp_path)
    off = _cli("retention", "run", "--db", str(db))
    assert off.returncode == 0 and "retention is off" in off.stdout
    assert _counts(db)["conversations"] == 3
    done = _cli("retention", "run", "--db", str(db), "--raw-days", "90", "--text-days", "730")
    assert done.returncode == 0, done.stderr
    assert "1 conversation(s)" in done.stdout and "raw_interactions" in done.stdout
    assert _counts(db) == {"conversations": 2, "raw": 1, "old_audit": 1}
    exported = _cli("audit", "--db", str(db), "--action", "retention.run", "--format", "json")
    assert exported.returncode == 0, exported.stderr
    rows = json.loads(exported.stdout)
    assert len(rows) == 1 and rows[0]["via"] == "cli" and rows[0]["actor_role"] == "local"


def test_erase_and_audit_cli(tmp_path: Path) -> None:
    source = tmp_path / "chats.jsonl"
    source.write_text(
        json.dumps(_chat("p-1", "My card ending 4242 was declined.", email="ines@cli.example"))
        + "\n"
        + json.dumps(_chat("p-2", "Other question", email="someone@else.example"))
    )
    db = tmp_path / "cli.duckdb"
    with Warehouse(db) as wh:
        ingest_paths(wh, [source])
    source.unlink()
    # Reading a conversation and exporting a layer from the CLI are audited too.
    assert _cli("show", "p-2", "--db", str(db)).returncode == 0
    table = tmp_path / "utterances.csv"
    exported = _cli(
        "export", "--layer", "utterances", "-f", "csv", "-o", str(table), "--db", str(db)
    )
    assert exported.returncode == 0, exported.stderr
    with Warehouse(db, read_only=True) as wh:
        read = query_audit(wh, AuditFilter(action="conversation.read"))
        export = query_audit(wh, AuditFilter(action="export"))
    assert len(read) == 1 and read[0].via == "cli" and read[0].actor_role == "local"
    assert len(export) == 1 and export[0].target_id == "utterances"
    assert export[0].details["rows"] == 4
    table.unlink()
    bad = _cli("erase", "--db", str(db))
    assert bad.returncode == 2 and "name the person" in bad.stderr
    dry = _cli("erase", "--db", str(db), "--email", "INES@cli.example")
    assert dry.returncode == 0 and "1 conversation(s)" in dry.stdout
    assert b"ines@cli.example" in db.read_bytes()  # a dry run erases nothing
    done = _cli("erase", "--db", str(db), "--email", "INES@cli.example", "--yes")
    assert done.returncode == 0, done.stderr
    assert "erased 1 conversation(s)" in done.stdout and "ines" not in done.stdout.lower()
    assert b"ines@cli.example" not in db.read_bytes().lower()
    assert b"someone@else.example" in db.read_bytes()
    out = tmp_path / "audit.csv"
    exported = _cli("audit", "--db", str(db), "--format", "csv", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    erasure = [r for r in rows if r["action"] == "erasure"]
    assert len(erasure) == 1 and erasure[0]["actor_role"] == "local"
    assert json.loads(erasure[0]["details"])["conversations"] == 1
    assert "ines" not in out.read_text().lower()
    # The export itself is in the log now, as the table read will show.
    table = _cli("audit", "--db", str(db), "--action", "audit.")
    assert table.returncode == 0 and "audit.export" in table.stdout


def test_server_applies_retention_on_its_schedule(tmp_path: Path) -> None:
    db = _warehouse(tmp_path)
    server = Server(
        db, tmp_path / "server.log", CONVOLENS_RETENTION="on",
        CONVOLENS_RETENTION_INTERVAL_S="1", CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0",
    )  # fmt: skip
    server.env["CONVOLENS_PRELOAD"] = "0"
    server.start()
    try:
        with server.client() as admin:
            assert admin.get("/v1/retention").json()["raw"] == "90 days"
            deadline = time.monotonic() + 60
            runs: list[dict] = []
            while time.monotonic() < deadline and not runs:
                runs = admin.get("/v1/audit", params={"action": "retention.run"}).json()
                time.sleep(0.5)
            assert runs and runs[-1]["via"] == "scheduler", runs
            first = runs[-1]["details"]
            assert first["conversations"] == 1 and first["rows"]["raw_interactions"] == 2
            listed = admin.get("/v1/conversations", params={"limit": 50}).json()
            assert OLD not in json.dumps(listed) and RECENT in json.dumps(listed)
    finally:
        server.stop()
