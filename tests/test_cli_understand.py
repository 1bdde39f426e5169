"""Reprocessing from the command line: component settings, runs, and `convolens diff`."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from convolens.cli import app

DATA = Path(__file__).resolve().parent / "data"
runner = CliRunner(env={"COLUMNS": "200"})

TRACKERS_V1 = """
[[tracker]]
name = "login_trouble"
phrases = ["log in"]
"""
# v2 adds a phrase: the login chat now also matches "update", and a new tracker appears.
TRACKERS_V2 = """
[[tracker]]
name = "login_trouble"
phrases = ["log in", "the update"]

[[tracker]]
name = "order_status"
phrases = ["where is my order"]
"""


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _cells(table: str, key: str) -> list[str]:
    line = next(row for row in table.splitlines() if key in row)
    return [cell.strip() for cell in line.strip("│ ").split("│")]


@pytest.fixture
def configured(tmp_path: Path) -> tuple[Path, Path, Path]:
    db = tmp_path / "cli.duckdb"
    trackers = tmp_path / "trackers.toml"
    trackers.write_text(TRACKERS_V1, encoding="utf-8")
    config = tmp_path / "convolens.toml"
    config.write_text(
        '[components.trackers]\ndefinitions = "trackers.toml"\n'
        "[components.sentiment]\nenabled = false\n",
        encoding="utf-8",
    )
    _run("ingest", str(DATA / "json" / "chats.jsonl"), "--db", str(db))
    return db, trackers, config


def test_new_taxonomy_writes_beside_the_old_and_diff_shows_what_moved(configured):
    db, trackers, config = configured
    first = _run("analyze", "--db", str(db), "--config", str(config), "--skip", "pii")
    assert "trackers v" in first and "sentiment v" not in first and "pii v" not in first
    # Up to date: nothing to label.
    assert "labelled 0 conversation(s)" in _run(
        "analyze", "--db", str(db), "--config", str(config), "--skip", "pii"
    )
    trackers.write_text(TRACKERS_V2, encoding="utf-8")
    second = _run("analyze", "--db", str(db), "--config", str(config), "--skip", "pii")
    assert "labelled 3 conversation(s)" in second
    listed = _run("runs", "--db", str(db))
    assert listed.count("enrich-") == 3
    # Only the trackers: "order_status" is also an intent of the default taxonomy.
    out = _run("diff", "--db", str(db), "--component", "trackers")
    assert "login_trouble" in out and "order_status" in out
    # login_trouble: "log in" once before; "log in" + "the update" after.
    assert _cells(out, "login_trouble")[-3:] == ["1", "2", "+1"]
    assert _cells(out, "order_status")[-3:] == ["0", "1", "+1"]
    show = _run("show", "chat-1002", "--db", str(db))
    assert "order_status" in show


def test_bad_settings_and_runs_are_clear_errors(configured, tmp_path):
    db, _, _ = configured
    bad = tmp_path / "bad.toml"
    bad.write_text("[components.sentimnet]\nenabled = false\n", encoding="utf-8")
    out = _run("analyze", "--db", str(db), "--config", str(bad), code=2)
    assert "unknown component 'sentimnet'" in out
    assert "no run matches 'nope'" in _run("diff", "--from", "nope", "--db", str(db), code=1)
