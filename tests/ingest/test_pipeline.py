"""The whole intake over a real folder of every format, good and malformed files mixed."""

import shutil
from pathlib import Path

from convolens.ingest.pipeline import discover_files, ingest_paths

DATA = Path(__file__).resolve().parents[1] / "data"
FORMAT_FOLDERS = ("json", "csv", "email", "subtitles", "helpdesk")


def _count(warehouse, sql: str) -> int:
    return warehouse.con.execute(sql).fetchone()[0]


def test_mixed_folder_every_format_nothing_lost_nothing_duplicated(warehouse):
    folders = [DATA / name for name in FORMAT_FOLDERS]
    report = ingest_paths(warehouse, folders)
    assert set(report.per_format) == {"json", "csv", "email", "subtitles", "zendesk"}
    channels = {
        row[0] for row in warehouse.con.execute("SELECT channel FROM conversations").fetchall()
    }
    assert {"chat", "call", "email", "ticket"} <= channels

    # Every conversation the adapters produced is stored once.
    stored = _count(warehouse, "SELECT count(*) FROM conversations")
    assert stored == report.written.new == report.conversations - report.written.unchanged
    assert _count(warehouse, "SELECT count(DISTINCT conversation_id) FROM conversations") == stored
    # Every rejected record is in the rejects table, with a file and a reason.
    assert report.rejects
    assert _count(warehouse, "SELECT count(*) FROM rejects") == len(report.rejects)
    assert _count(warehouse, "SELECT count(*) FROM rejects WHERE reason = ''") == 0
    # Each stored conversation has its raw records.
    assert (
        _count(
            warehouse,
            "SELECT count(*) FROM conversations c WHERE NOT EXISTS "
            "(SELECT 1 FROM raw_interactions r "
            "WHERE r.conversation_id = c.conversation_id AND r.version = c.version)",
        )
        == 0
    )

    snapshot = {
        table: _count(warehouse, f"SELECT count(*) FROM {table}")
        for table in ("conversations", "participants", "utterances", "raw_interactions")
    }
    again = ingest_paths(warehouse, folders)
    assert again.written.new == 0 and again.written.new_versions == 0
    assert again.written.unchanged == report.conversations
    assert {t: _count(warehouse, f"SELECT count(*) FROM {t}") for t in snapshot} == snapshot


def test_files_in_folders_with_unknown_suffixes_are_skipped_not_rejected(tmp_path):
    shutil.copy(DATA / "json" / "chats.jsonl", tmp_path / "chats.jsonl")
    (tmp_path / "notes.txt").write_text("not a conversation")
    (tmp_path / ".hidden.json").write_text("{}")
    (tmp_path / "call.meta.json").write_text("{}")
    files, skipped, missing = discover_files([tmp_path, tmp_path / "absent.csv"])
    assert [f.name for f in files] == ["chats.jsonl"]
    assert [f.name for f in skipped] == ["notes.txt"]
    assert [m.name for m in missing] == ["absent.csv"]


def test_a_folder_with_an_ignore_marker_is_not_read(tmp_path):
    shutil.copy(DATA / "json" / "chats.jsonl", tmp_path / "chats.jsonl")
    business = tmp_path / "business"
    business.mkdir()
    (business / "accounts.csv").write_text("account_id,name\nACC-1,Acme\n")
    (business / ".convolensignore").write_text("# not conversations\n")
    files, skipped, _ = discover_files([tmp_path])
    assert [f.name for f in files] == ["chats.jsonl"] and skipped == []
    # Named explicitly, a file is still read.
    files, _, _ = discover_files([business / "accounts.csv"])
    assert [f.name for f in files] == ["accounts.csv"]


def test_a_named_file_of_unknown_format_is_rejected_with_the_fix(warehouse, tmp_path):
    odd = tmp_path / "notes.txt"
    odd.write_text("just some notes")
    report = ingest_paths(warehouse, [odd, tmp_path / "absent.csv"])
    reasons = sorted(r.reason for r in report.rejects)
    assert reasons[0] == "no such file or folder"
    assert reasons[1].startswith("unrecognised format; pass --format")


def test_summary_line_counts_records(warehouse):
    report = ingest_paths(warehouse, [DATA / "csv" / "chat_export.csv"])
    assert report.summary_line() == (
        "1 of 7 records rejected: chat_export.csv line 6: missing 'text'"
    )
