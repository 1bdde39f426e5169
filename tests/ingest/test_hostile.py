"""The hostile corpus (tests/data/hostile, written by make_hostile.py) through the real CLI
into a real DuckDB file: no crash, no good conversation lost, every reject names its
file, record and reason, and ingesting the same batch again changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from convolens.cli import app
from convolens.ingest.base import SourceFile
from convolens.ingest.json_conversations import JsonConversationAdapter
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

DATA = Path(__file__).resolve().parents[1] / "data"
HOSTILE = DATA / "hostile"
EXPECTED: dict[str, dict] = json.loads((HOSTILE / "expected.json").read_text())
GOOD = DATA / "json" / "calls.json"  # two complete, timed calls
runner = CliRunner()


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _batch(tmp_path: Path) -> Path:
    """The whole corpus plus a good file, in one folder (as a user's export folder)."""
    folder = tmp_path / "batch"
    shutil.copytree(HOSTILE, folder, ignore=shutil.ignore_patterns("*.py", "expected.json"))
    shutil.copy(GOOD, folder / "good_calls.json")
    return folder


def _good_conversations() -> dict[str, int]:
    """source id -> utterance count of the good file, as the adapter reads it alone."""
    parsed = JsonConversationAdapter().parse(SourceFile.read(GOOD))
    return {p.conversation.source.source_id: len(p.conversation.utterances) for p in parsed}


def test_hostile_corpus_beside_a_good_file_through_the_cli(tmp_path):
    folder, db = _batch(tmp_path), tmp_path / "w.duckdb"
    result = runner.invoke(app, ["ingest", str(folder), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output

    # Nothing good lost: both calls of the good file, with every utterance.
    stored = dict(
        _rows(db, "SELECT source_id, utterance_count FROM conversations WHERE version = 1")
    )
    for source_id, utterances in _good_conversations().items():
        assert stored[source_id] == utterances
    total = _rows(db, "SELECT count(*) FROM conversations")[0][0]
    assert total == sum(e["stored"] for e in EXPECTED.values()) + len(_good_conversations())

    # Every hostile file that holds nothing good is in the rejects table, with a reason
    # holding the expected words, and never a traceback or a server path.
    rejects = _rows(db, "SELECT source_path, locator, reason FROM rejects")
    by_file: dict[str, list[tuple[str, str]]] = {}
    for path, locator, reason in rejects:
        assert reason and "Traceback" not in reason and str(tmp_path) not in reason
        by_file.setdefault(Path(path).relative_to(folder).as_posix(), []).append((locator, reason))
    for name, expected in EXPECTED.items():
        if expected["stored"] == 0:
            assert name in by_file, f"{name} was neither stored nor rejected"
        for _, reason in by_file.get(name, []):
            assert all(word in reason for word in expected["reason_words"]), (name, reason)
    # Records inside a file are named: line, record or ticket.
    assert any(loc.startswith("record 2") for loc, _ in by_file["json/wrong_types.json"])
    assert by_file["json/surrogate.jsonl"][0][0] == "line 1"
    assert {loc for loc, _ in by_file["helpdesk/wrong_types.json"]} >= {"ticket 1", "ticket 2"}
    # The summary names rejects with file and reason.
    assert "records rejected: " in result.output.replace("\n", " ")

    # The same batch again changes nothing: no version, no reject row, no raw record.
    counts = "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM rejects), "
    counts += "(SELECT count(*) FROM raw_interactions), (SELECT max(version) FROM conversations)"
    before = _rows(db, counts)
    again = runner.invoke(app, ["ingest", str(folder), "--db", str(db)])
    assert again.exit_code == 0, again.output
    assert _rows(db, counts) == before
    assert before[0][3] == 1


@pytest.mark.parametrize(
    "name", sorted(name for name, e in EXPECTED.items() if e["stored"] == 0 and "dup_" not in name)
)
def test_each_hostile_file_alone_is_rejected_by_name_and_exits_non_zero(tmp_path, name):
    db = tmp_path / "w.duckdb"
    path = tmp_path / Path(name).name
    shutil.copy(HOSTILE / name, path)
    sidecar = (HOSTILE / name).with_name(f"{Path(name).stem}.meta.json")
    if sidecar.exists():
        shutil.copy(sidecar, tmp_path / sidecar.name)
    result = runner.invoke(app, ["ingest", str(path), "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert "nothing ingested" in result.output
    rejects = _rows(db, "SELECT source_path, reason FROM rejects")
    assert rejects and all(Path(p).name == path.name and reason for p, reason in rejects)
    assert _rows(db, "SELECT count(*) FROM conversations") == [(0,)]


def test_exit_code_is_zero_when_something_good_went_in(tmp_path):
    db = tmp_path / "w.duckdb"
    result = runner.invoke(
        app, ["ingest", str(HOSTILE / "json" / "links_list.json"), str(GOOD), "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "links_list.json record 1: 'links' must be an object" in " ".join(result.output.split())


def test_one_id_in_two_files_first_kept_second_rejected_and_stable_across_runs(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    shutil.copy(HOSTILE / "json" / "dup_a.json", first)
    shutil.copy(HOSTILE / "json" / "dup_b.json", second)
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        for _ in range(3):
            report = ingest_paths(warehouse, [tmp_path])
            (reject,) = report.rejects
            assert reject.source_path.endswith("b.json") and "a.json record 1" in reject.reason
            assert "duplicate conversation id 'dup'" in reject.reason
        versions = warehouse.con.execute("SELECT version FROM conversations").fetchall()
        assert versions == [(1,)]
        texts = warehouse.con.execute("SELECT text FROM utterances").fetchall()
        assert texts == [("hello",)]
        assert warehouse.con.execute("SELECT count(*) FROM rejects").fetchall() == [(1,)]
        # The same content twice in one batch is read once, without a reject.
        shutil.copy(first, tmp_path / "c.json")
        second.unlink()
        report = ingest_paths(warehouse, [tmp_path])
        assert not report.rejects and report.written.unchanged == 2
        # Ingested on its own, the other content is a new version, as documented.
        report = ingest_paths(warehouse, [HOSTILE / "json" / "dup_b.json"])
        assert report.written.new_versions == 1


def test_same_id_twice_in_one_file_keeps_the_first(tmp_path):
    path = tmp_path / "twice.jsonl"
    path.write_text(
        '{"id": "x", "messages": [{"author": "a", "text": "one"}]}\n'
        '{"id": "x", "messages": [{"author": "a", "text": "two"}]}\n'
    )
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        for _ in range(2):
            report = ingest_paths(warehouse, [path])
            assert [r.locator for r in report.rejects] == ["line 2"]
            assert "twice.jsonl line 1" in report.rejects[0].reason
        assert warehouse.con.execute("SELECT max(version) FROM conversations").fetchall() == [(1,)]


def test_files_too_big_for_their_format_are_rejected_with_the_limit(tmp_path):
    from convolens.ingest.base import IngestOptions

    path = tmp_path / "chat.csv"
    path.write_text("author,text\n" + "ann,hello there\n" * 2000)
    options = IngestOptions(max_file_mb=0.01)
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        report = ingest_paths(warehouse, [path, GOOD], options=options)
    (reject,) = report.rejects
    assert "over the 0.01 MiB limit for csv files" in reject.reason
    assert report.written.new == 2  # the good JSON streams: no whole-file limit
