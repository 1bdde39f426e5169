import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from convolens.ingest.pipeline import ingest_paths
from convolens.store.export import ExportFormat, export_layer
from convolens.store.reader import ConversationFilter, list_conversations, load_conversation
from convolens.store.schema import LAYERS, MIGRATIONS
from convolens.store.warehouse import Warehouse, WarehouseError

DATA = Path(__file__).resolve().parents[1] / "data"


def _count(wh: Warehouse, relation: str) -> int:
    return wh.con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]


def test_new_file_is_migrated_and_records_its_schema_version(tmp_path):
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        assert wh.schema_version() == MIGRATIONS[-1].version
        assert wh.migrate() == []  # idempotent
    con = duckdb.connect(str(path))
    tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    assert {
        "raw_interactions",
        "conversations",
        "participants",
        "utterances",
        "words",
        "metrics_conversation",
        "metrics_participant",
        "enrichments",
        "rejects",
    } <= tables
    con.close()


def test_read_only_open_of_a_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(WarehouseError, match="convolens ingest"):
        Warehouse(tmp_path / "none.duckdb", read_only=True)


def test_reingest_changes_nothing(warehouse):
    first = ingest_paths(
        warehouse, [DATA / "json" / "chats.jsonl", DATA / "csv" / "chat_export.csv"]
    )
    assert first.written.new == 5
    counts = {t: _count(warehouse, t) for t in ("conversations", "utterances", "raw_interactions")}
    second = ingest_paths(
        warehouse, [DATA / "json" / "chats.jsonl", DATA / "csv" / "chat_export.csv"]
    )
    assert second.written.new == 0 and second.written.unchanged == 5
    assert {t: _count(warehouse, t) for t in counts} == counts
    # The rejects are reported again for the new run, not lost.
    assert len(second.rejects) == len(first.rejects) == 3


def test_changed_content_creates_a_new_version_and_keeps_the_old(warehouse, tmp_path):
    source = tmp_path / "chat.jsonl"
    record = {"id": "v-1", "messages": [{"author": "a", "text": "first words"}]}
    source.write_text(json.dumps(record))
    ingest_paths(warehouse, [source])
    record["messages"].append({"author": "b", "text": "a reply"})
    source.write_text(json.dumps(record))
    report = ingest_paths(warehouse, [source])
    assert report.written.new_versions == 1
    assert _count(warehouse, "conversations") == 2
    assert _count(warehouse, "conversations_current") == 1
    current = load_conversation(warehouse, "v-1")
    assert [u.text for u in current.utterances] == ["first words", "a reply"]
    old = load_conversation(warehouse, current.conversation_id, version=1)
    assert [u.text for u in old.utterances] == ["first words"]
    raw_versions = warehouse.con.execute(
        "SELECT version FROM raw_interactions ORDER BY version"
    ).fetchall()
    assert raw_versions == [(1,), (2,)]


def test_same_conversation_twice_in_one_batch_is_stored_once(warehouse, tmp_path):
    line = json.dumps({"id": "dup", "messages": [{"author": "a", "text": "hi"}]})
    (tmp_path / "a.jsonl").write_text(line)
    (tmp_path / "b.jsonl").write_text(line)
    report = ingest_paths(warehouse, [tmp_path])
    assert report.written.new == 1 and report.written.unchanged == 1
    assert _count(warehouse, "conversations") == 1


def test_round_trip_through_the_warehouse_is_lossless(warehouse):
    from convolens.ingest.base import SourceFile
    from convolens.ingest.json_conversations import JsonConversationAdapter

    # What the warehouse stores comes back as it went in: redaction at intake (which
    # rewrites text by design, tests/privacy/) is left out here.
    ingest_paths(warehouse, [DATA / "json" / "calls.json"], redact=False)
    parsed = [
        r for r in JsonConversationAdapter().parse(SourceFile.read(DATA / "json" / "calls.json"))
    ]
    original = parsed[0].conversation
    stored = load_conversation(warehouse, original.conversation_id)
    # Ingest adds each utterance's language (enrich/language.py); it is not content.
    assert {u.language for u in stored.utterances} == {"en"}
    for utterance in stored.utterances:
        utterance.language = None
    assert stored == original
    assert stored.content_hash() == original.content_hash()


def test_rejects_table_names_file_locator_and_reason(warehouse):
    ingest_paths(warehouse, [DATA / "json" / "chats.jsonl"])
    rows = warehouse.query("SELECT source_path, locator, reason FROM rejects ORDER BY locator")
    assert [(Path(r["source_path"]).name, r["locator"]) for r in rows] == [
        ("chats.jsonl", "line 3"),
        ("chats.jsonl", "line 4"),
    ]
    assert rows[0]["reason"] == "message 1: missing 'text'"


def test_list_filters(warehouse):
    ingest_paths(warehouse, [DATA / "json", DATA / "csv" / "chat_export.csv"])
    assert {
        r["source_id"] for r in list_conversations(warehouse, ConversationFilter(channel="call"))
    } == {"call-1", "call-2"}
    found = list_conversations(warehouse, ConversationFilter(text="charged twice"))
    assert [r["source_id"] for r in found] == ["lc-1"]
    assert [
        r["source_id"] for r in list_conversations(warehouse, ConversationFilter(tag="login"))
    ] == ["chat-1001"]


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_export_every_layer(warehouse, tmp_path, fmt):
    ingest_paths(warehouse, [DATA / "json" / "chats.jsonl"])
    for layer in LAYERS:
        out = tmp_path / f"{layer}.{fmt.value}"
        rows = export_layer(warehouse, layer, fmt, out)
        assert out.exists()
        if layer == "utterances":
            assert rows == 7
            if fmt is ExportFormat.parquet:
                assert pq.read_table(out).num_rows == 7
            elif fmt is ExportFormat.jsonl:
                lines = out.read_text().splitlines()
                assert len(lines) == 7 and json.loads(lines[0])["text"].startswith("I can't log in")
    if fmt is ExportFormat.csv:
        assert "I can't log in since the update" in (tmp_path / "raw.csv").read_text()


def test_unknown_layer_is_a_clear_error(warehouse, tmp_path):
    with pytest.raises(WarehouseError, match="unknown layer 'nope'; choose one of: raw"):
        export_layer(warehouse, "nope", ExportFormat.csv, tmp_path / "x.csv")


def test_a_file_from_a_newer_convolens_is_refused(tmp_path):
    path = tmp_path / "future.duckdb"
    Warehouse(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', now())")
    con.close()
    with pytest.raises(WarehouseError, match="newer than this convolens understands"):
        Warehouse(path)
