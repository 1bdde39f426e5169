"""The normalised layers in the lake: a warehouse adopting a lake copies what it holds
(once: a second time adds nothing), every ingest publishes its new versions, the DuckDB
tables stay the only thing queries read (no row counted twice), a worker reading the lake
builds the very conversations the warehouse gives, and neither an erasure nor a
redaction after intake leaves the old text in any lake file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from convolens.enrich.runner import enrich
from convolens.ingest.base import Parsed, RawRecord
from convolens.ingest.pipeline import ingest_paths
from convolens.model import Word
from convolens.store.lake import NORMALISED_LAYERS, Lake
from convolens.store.lake_normalised import (
    LakeConversations,
    publish_missing,
    stage_versions,
)
from convolens.store.reader import conversations_from, load_conversations
from convolens.store.warehouse import Warehouse
from convolens.store.writer import write_conversations

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHATS = EXAMPLES / "chats" / "support_chats.jsonl"


def _lake_rows(lake_dir: Path, layer: str) -> list[dict]:
    lake = Lake(str(lake_dir))
    return [row for path in lake.committed()[layer] for row in pq.read_table(path).to_pylist()]


def _all_lake_text(lake_dir: Path) -> str:
    """Every value of every Parquet file under the lake, committed or not."""
    return "\n".join(
        json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
        for path in sorted(lake_dir.rglob("*.parquet"))
    )


def _count(warehouse: Warehouse, table: str) -> int:
    row = warehouse.con.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_adopting_a_lake_copies_the_normalised_layers_once(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        ingest_paths(warehouse, [CHATS])
        warehouse.set_lake(str(lake_dir))
        for layer in ("conversations", "participants", "utterances"):
            files = Lake(str(lake_dir)).committed()[layer]
            assert files and all(f"/{layer}/run_id=" in f for f in files), layer
            assert len(_lake_rows(lake_dir, layer)) == _count(warehouse, layer) > 0
        # The tables are not shadowed: every query still counts each row once.
        assert _count(warehouse, "utterances") == len(_lake_rows(lake_dir, "utterances"))
        manifests = sorted((lake_dir / "_manifests").glob("*.json"))
        # Setting the same lake again (every `analyze --lake`) copies nothing again.
        warehouse.set_lake(str(lake_dir))
        assert publish_missing(warehouse) == 0
        assert sorted((lake_dir / "_manifests").glob("*.json")) == manifests


def test_an_ingest_publishes_its_new_versions(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.set_lake(str(lake_dir))
        assert not (lake_dir / "conversations").exists()
        ingest_paths(warehouse, [CHATS])
        ingest_paths(warehouse, [EXAMPLES / "tickets" / "zendesk_export.json"])
        keys = sorted(
            warehouse.con.execute("SELECT conversation_id, version FROM conversations").fetchall()
        )
        in_lake = sorted(
            (r["conversation_id"], r["version"]) for r in _lake_rows(lake_dir, "conversations")
        )
        assert in_lake == keys
        assert publish_missing(warehouse) == 0
        # Re-ingesting the same files writes no version, so nothing new in the lake.
        files = Lake(str(lake_dir)).committed()["conversations"]
        ingest_paths(warehouse, [CHATS])
        assert Lake(str(lake_dir)).committed()["conversations"] == files


def _write_timed_words(warehouse: Warehouse) -> None:
    """A transcript with word timings (what recordings give) without transcribing one."""
    (key,) = warehouse.con.execute(
        "SELECT conversation_id, version FROM utterances WHERE start_s IS NOT NULL "
        "ORDER BY 1 LIMIT 1"
    ).fetchall()
    (call,) = load_conversations(warehouse, [(key[0], key[1])])
    first = call.utterances[0]
    start = first.start or 0.0
    words = [
        Word(text=w, start=start + i * 0.3, end=start + i * 0.3 + 0.25, confidence=0.9)
        for i, w in enumerate(first.text.split()[:5])
    ]
    timed = call.model_copy(
        update={
            "conversation_id": "call-with-words",
            "utterances": [first.model_copy(update={"words": words}), *call.utterances[1:]],
        }
    )
    raw = [RawRecord("words.json", "0", b"{}", "utf-8")]
    write_conversations(warehouse, [Parsed(timed, raw, "json")], "test-run")


class _ObjectStoreLake(Lake):
    """A lake read the way an object store's is (Arrow datasets, not DuckDB's reader)."""

    @property
    def is_local(self) -> bool:
        return False


@pytest.mark.parametrize("lake_kind", [Lake, _ObjectStoreLake])
def test_a_worker_reading_the_lake_builds_the_warehouse_conversations(
    tmp_path: Path, lake_kind: type[Lake]
) -> None:
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        ingest_paths(warehouse, [CHATS, EXAMPLES / "tickets" / "zendesk_export.json"])
        ingest_paths(warehouse, [EXAMPLES / "calls"])
        _write_timed_words(warehouse)
        warehouse.set_lake(str(tmp_path / "lake"))
        keys = [
            (str(r[0]), int(r[1]))
            for r in warehouse.con.execute(
                "SELECT conversation_id, version FROM conversations ORDER BY 1 DESC"
            ).fetchall()
        ]
        expected = load_conversations(warehouse, keys)
    reader = LakeConversations(lake_kind(str(tmp_path / "lake")))
    try:
        assert any(u.words for c in expected for u in c.utterances)  # words travel too
        assert conversations_from(reader.select(keys), keys) == expected
        # A batch of a few: the range filter keeps the rows of those only.
        some = keys[3:6]
        assert conversations_from(reader.select(some), some) == expected[3:6]
    finally:
        reader.close()


def test_a_killed_publish_leaves_nothing_visible_and_is_repaired(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.set_lake(str(lake_dir))
        lake = warehouse.lake
        assert lake is not None
        warehouse.lake = None  # the ingest's lake write "fails": the file has them alone
        ingest_paths(warehouse, [CHATS])
        warehouse.lake = lake
        keys = warehouse.con.execute("SELECT conversation_id, version FROM conversations")
        # A job killed after staging: files, no manifest.
        stage_versions(warehouse, lake, "killed-run", [tuple(k) for k in keys.fetchall()])
        assert all(not lake.committed()[layer] for layer in NORMALISED_LAYERS)
        assert publish_missing(warehouse) == 10
        assert len(_lake_rows(lake_dir, "conversations")) == 10
        lake.vacuum()
        assert not (lake_dir / "_staging").exists()


def test_erasing_a_conversation_leaves_its_text_in_no_lake_file(tmp_path: Path) -> None:
    from convolens.store.erase import erase_conversation

    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.set_lake(str(lake_dir))
        ingest_paths(warehouse, [CHATS])
        gone = warehouse.resolve_id("chat-20260903-0001")
        texts = [
            r[0]
            for r in warehouse.con.execute(
                "SELECT text FROM utterances WHERE conversation_id = ? AND length(text) > 40",
                [gone],
            ).fetchall()
        ]
        assert texts and all(t in _all_lake_text(lake_dir) for t in texts)
        erased = erase_conversation(warehouse, gone)
        assert erased.rows["lake"] > 0
        assert len(_lake_rows(lake_dir, "conversations")) == 9
    everything = _all_lake_text(lake_dir)
    assert gone not in everything
    assert not [t for t in texts if t in everything]


NAME, EMAIL = "John Smith", "john.smith@example.com"


def _pii_chat(folder: Path) -> Path:
    path = folder / "pii_chat.json"
    messages = [
        {"author": "c", "text": f"Hi, this is {NAME}. I was charged twice!"},
        {"author": "a", "text": "Sorry about that. What is your email?"},
        {"author": "c", "text": f"It's {EMAIL}, thanks."},
    ]
    chat = {
        "id": "chat-pii-lake",
        "source": "intercom",
        "channel": "chat",
        "subject": f"Refund for {NAME}",
        "participants": [{"id": "c", "role": "customer"}, {"id": "a", "role": "agent"}],
        "messages": messages,
    }
    path.write_text(json.dumps(chat), encoding="utf-8")
    return path


@pytest.mark.parametrize("adopt_after_ingest", [False, True])
def test_redaction_after_intake_replaces_the_lake_copy(
    tmp_path: Path, adopt_after_ingest: bool
) -> None:
    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        if not adopt_after_ingest:
            warehouse.set_lake(str(lake_dir))
        # Stored unredacted (a warehouse filled before intake redaction), then labelled.
        ingest_paths(warehouse, [_pii_chat(tmp_path), CHATS], redact=False)
        enrich(warehouse, ["trackers"])
        if adopt_after_ingest:
            warehouse.set_lake(str(lake_dir))
        assert EMAIL in _all_lake_text(lake_dir)
        report = enrich(warehouse, ["pii"])
        assert report.labels["pii"] > 0
        texts = [r[0] for r in warehouse.con.execute("SELECT text FROM utterances").fetchall()]
        assert "It's <EMAIL_ADDRESS>, thanks." in texts
        lake_texts = {r["text"] for r in _lake_rows(lake_dir, "utterances")}
        assert lake_texts == set(texts)
        subjects = {r["subject"] for r in _lake_rows(lake_dir, "conversations")}
        assert "Refund for <PERSON>" in subjects
        assert len(_lake_rows(lake_dir, "conversations")) == 11
    everything = _all_lake_text(lake_dir)
    assert NAME not in everything and EMAIL not in everything


def test_erasing_a_person_leaves_them_in_no_lake_file(tmp_path: Path) -> None:
    from convolens.retention.erasure import Person, erase_person

    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        ingest_paths(warehouse, [CHATS], redact=False)
        warehouse.set_lake(str(lake_dir))
        assert "maria@brightlane.io" in _all_lake_text(lake_dir)
        erase_person(warehouse, Person(email="maria@brightlane.io"))
        left = len(_lake_rows(lake_dir, "conversations"))
        assert 0 < left == _count(warehouse, "conversations") < 10
    assert "maria@brightlane.io" not in _all_lake_text(lake_dir)


def test_a_redaction_killed_before_the_lake_commit_is_finished_by_the_next_run(
    tmp_path: Path,
) -> None:
    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.set_lake(str(lake_dir))
        ingest_paths(warehouse, [_pii_chat(tmp_path)], redact=False)

        def killed(_: int) -> None:
            raise KeyboardInterrupt  # after the file took the redacted text

        with pytest.raises(KeyboardInterrupt):
            enrich(warehouse, ["pii"], on_progress=killed)
        texts = [r[0] for r in warehouse.con.execute("SELECT text FROM utterances").fetchall()]
        assert "It's <EMAIL_ADDRESS>, thanks." in texts
        assert EMAIL in _all_lake_text(lake_dir)  # the lake copy was not replaced yet
        # The next labelling run (here on the local engine, which reads the file and so
        # finds nothing left to redact) replaces the copy from the note the killed run left.
        enrich(warehouse, ["trackers"])
        assert {r["text"] for r in _lake_rows(lake_dir, "utterances")} == set(texts)
        assert not (lake_dir / "_rewrites").exists() or not any((lake_dir / "_rewrites").iterdir())
    everything = _all_lake_text(lake_dir)
    assert NAME not in everything and EMAIL not in everything


def test_a_lake_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from convolens.cli import app

    db, blocker = tmp_path / "w.duckdb", tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(CHATS), "--db", str(db)]).exit_code == 0
    result = runner.invoke(app, ["analyze", "--db", str(db), "--lake", str(blocker / "lake")])
    assert result.exit_code == 2, result.output
    assert "cannot write" in result.output and "Traceback" not in result.output


def test_an_ingest_the_lake_refuses_is_stored_warned_and_copied_later(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.set_lake(str(lake_dir))
        lake_dir.mkdir(exist_ok=True)
        (lake_dir / "_staging").write_text("in the way", encoding="utf-8")
        report = ingest_paths(warehouse, [CHATS])
        assert report.written.new == 10 and _count(warehouse, "conversations") == 10
        assert any("lake's copy of this ingest is incomplete" in w for w in report.warnings)
        assert not Lake(str(lake_dir)).committed()["conversations"]
        (lake_dir / "_staging").unlink()
        # The next ingest (here: of nothing new) copies what the lake missed.
        again = ingest_paths(warehouse, [CHATS])
        assert not [w for w in again.warnings if "lake" in w]
        assert len(_lake_rows(lake_dir, "conversations")) == 10
