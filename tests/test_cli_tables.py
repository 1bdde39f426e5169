"""CLI tables fit the terminal (columns left out by priority, never squeezed to nothing)
and progress bars show the time remaining."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from convolens.cli import app
from convolens.cli import main as cli_main
from convolens.render import fit_columns

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "t.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(EXAMPLES / "chats"), "--db", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.mark.parametrize("width", [80, 90, 100, 110])
def test_list_fits_the_terminal_with_whole_ids(db: Path, width: int) -> None:
    # A real process: the console takes its width from the terminal (COLUMNS) at start.
    exe = Path(sys.executable).with_name("convolens")
    env = {**os.environ, "COLUMNS": str(width)}
    done = subprocess.run(
        [str(exe), "list", "--db", str(db), "--limit", "5"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    header = next(line for line in lines if "┃ id" in line)
    for column in ("id", "channel", "started", "msgs"):
        assert f" {column} " in header
    # Ids and dates are whole (not folded onto two lines or cut): they are what you type next.
    rows = [line for line in lines if line.startswith("│ cv-")]
    assert len(rows) == 5
    assert all(len(line.split("│")[1].strip()) == 23 for line in rows)
    if width < 110:
        assert "left out to fit" in done.stdout


def test_fit_columns_drops_lowest_priority_first() -> None:
    rows = [{"id": "x" * 20, "a": "y" * 20, "b": "z" * 20, "c": 1}]
    kept, dropped = fit_columns(rows, 55, ["id", "c", "a"])
    assert dropped == ["b"] and list(kept[0]) == ["id", "a", "c"]
    kept, dropped = fit_columns(rows, 10, ["id"])
    assert list(kept[0]) == ["id"]  # one column always stays


def test_progress_shows_time_remaining() -> None:
    progress = cli_main._progress()
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    task = progress.add_task("Labelling", total=100)
    progress.start_task(task)
    progress.update(task, advance=10)
    progress.update(task, advance=10)
    console.print(progress.get_renderable())
    text = out.getvalue()
    assert "Labelling" in text and "20/100" in text and "eta" in text
    # TimeRemainingColumn renders h:mm:ss (or -:--:-- before the speed is known).
    assert any(mark in text for mark in ("0:00:", "-:--:--"))


def test_ingest_with_a_recording_among_files_reports_each(tmp_path: Path) -> None:
    """The recording's progress line (shown before its first words) does not outlive it."""
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    chats = EXAMPLES / "chats" / "support_chats.jsonl"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["ingest", str(tmp_path / "broken.wav"), str(chats), "--db", str(tmp_path / "p.db")]
    )
    assert result.exit_code == 0, result.output
    assert "broken.wav" in result.output and "of " in result.output
