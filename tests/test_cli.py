"""The command line, end to end on real files and a real warehouse file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from convolens.cli import app

DATA = Path(__file__).resolve().parent / "data"
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.duckdb"


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_ingest_prints_summary_and_rejects(db):
    out = _run("ingest", str(DATA / "json"), str(DATA / "csv" / "chat_export.csv"), "--db", str(db))
    assert "Ingest summary" in out
    assert "4 of 16 records rejected" in out
    assert "chat_export.csv line 6: missing 'text'" in out
    again = _run("ingest", str(DATA / "json"), "--db", str(db))
    assert "unchanged (already ingested)" in again


def test_analyze_then_show_displays_transcript_and_metrics(db):
    _run("ingest", str(DATA / "json" / "calls.json"), "--db", str(db))
    assert "metrics: 2 conversation(s)" in _run("analyze", "--db", str(db))
    assert "nothing was missing" in _run("analyze", "--db", str(db))
    out = _run("show", "call-1", "--db", str(db))
    assert "Dana Ruiz" in out and "Let me walk you through" in out
    assert "metrics" in out and "talk_share" in out and "longest_monologue_s" in out
    canonical = json.loads(_run("show", "call-1", "--db", str(db), "--json"))
    assert canonical["source"]["source_id"] == "call-1"


def test_list_filters_and_json(db):
    _run("ingest", str(DATA / "json"), "--db", str(db))
    out = _run("list", "--channel", "call", "--db", str(db))
    assert "2 conversation(s)" in out
    assert "0 conversation(s)" in _run("list", "--search", "no such words", "--db", str(db))


def test_report_groups(db):
    _run("ingest", str(DATA / "json"), str(DATA / "csv" / "chat_export.csv"), "--db", str(db))
    _run("analyze", "--db", str(db))
    out = _run("report", "--db", str(db))
    for title in ("by channel", "by agent", "by queue", "by week"):
        assert title in out
    assert "2026-08-31" in out  # the ISO week (Monday) of 2026-09-01


def test_export_parquet(db, tmp_path):
    _run("ingest", str(DATA / "json" / "chats.jsonl"), "--db", str(db))
    target = tmp_path / "u.parquet"
    out = _run(
        "export", "--layer", "utterances", "--format", "parquet", "-o", str(target), "--db", str(db)
    )
    assert "wrote 7 rows" in out
    assert pq.read_table(target).num_rows == 7


def test_errors_are_clear_and_exit_non_zero(db, tmp_path):
    result = runner.invoke(app, ["show", "nope", "--db", str(tmp_path / "absent.duckdb")])
    assert result.exit_code == 1 and "run 'convolens ingest PATH' first" in result.output
    result = runner.invoke(app, ["ingest", str(DATA), "--format", "xml", "--db", str(db)])
    assert result.exit_code == 2 and "unknown format 'xml'" in result.output
    result = runner.invoke(app, ["ingest", str(DATA), "--map", "oops", "--db", str(db)])
    assert result.exit_code == 2 and "use FIELD=COLUMN" in result.output


def test_csv_mapping_options(db):
    out = _run(
        "ingest", str(DATA / "csv" / "latin1.csv"), "--map", "conversation_id=chat",
        "--map", "sent_at=when", "--db", str(db),
    )  # fmt: skip
    assert "0 of 2 records rejected" in out


def test_installed_entry_point_runs(db):
    exe = Path(sys.executable).parent / "convolens"
    env = {**os.environ, "CONVOLENS_DB": str(db), "COLUMNS": "200"}
    done = subprocess.run(
        [str(exe), "formats"], capture_output=True, text=True, env=env, check=True
    )
    for name in ("json", "csv", "email", "subtitles", "zendesk"):
        assert name in done.stdout
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=env, check=True)
    assert "ingest" in done.stdout and "export" in done.stdout
