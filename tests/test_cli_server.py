"""The command line while `convolens serve` holds the warehouse: real server, real CLI
processes on the same DuckDB file, and the CLI on its own again once the server stops."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from convolens.service.local import LocalServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONVOLENS = str(Path(sys.executable).with_name("convolens"))
# A fixed admin key as strong as a generated one (weak keys are refused at start).
ADMIN_KEY = "clk_cliserver_Qm7vT2xLpZ9aKd4RwE8nYc1JhU6sGf3BtV0oXiN5Ay"
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "COLUMNS": "200",
    "NO_COLOR": "1",
}
ENV.pop("CONVOLENS_DB", None)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONVOLENS, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600
    )


def ok(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = cli(*args, cwd=cwd)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def json_lines(text: str) -> list[dict]:
    # `list --json` prints one pretty-printed JSON object per row.
    decoder, rows, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        row, end = decoder.raw_decode(text, at)
        rows.append(row)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return rows


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    shutil.copy(EXAMPLES / "chats" / "sales_chats.json", folder)
    shutil.copy(EXAMPLES / "tickets" / "zendesk_export.json", folder)
    return folder


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    running = LocalServer(
        tmp_path / "shared.duckdb",
        tmp_path / "server.log",
        args=["--no-preload", "--workers", "1"],
        CONVOLENS_ADMIN_KEY=ADMIN_KEY,
        HF_HUB_OFFLINE="1",
    ).start()
    try:
        yield running
    finally:
        running.stop()


def test_every_command_runs_through_the_server_then_alone_once_it_stops(
    server: LocalServer, inbox: Path, tmp_path: Path
) -> None:
    db = str(server.db)
    discovery = server.db.with_name("shared.duckdb.server.json")
    assert discovery.stat().st_mode & 0o777 == 0o600  # the token: the server's user only
    through = f"held by the server at {server.url}; running this command through it"

    ingested = ok("ingest", str(inbox), "--db", db)
    assert through in ingested.stderr
    assert "0 of " in ingested.stdout and "records rejected" in ingested.stdout
    # A recording: transcribed inside the server, the CLI waiting on the stream meanwhile.
    recording = ok("ingest", str(EXAMPLES / "recordings"), "--model", "tiny.en", "--db", db)
    assert "by format: audio 1" in recording.stdout
    again = ok("ingest", str(inbox), "--db", db)  # idempotent through the server as well
    assert "unchanged (already ingested)" in again.stdout

    analyzed = ok("analyze", "--db", db, "-c", "sentiment")
    assert through in analyzed.stderr
    assert re.search(r"^sentiment v\d+: \d+ labels$", analyzed.stdout, re.M), analyzed.stdout
    assert "labelled" in analyzed.stdout

    # Two commands at once in the server: each caller gets its own output, nothing mixed.
    relabel = subprocess.Popen(
        [CONVOLENS, "analyze", "--recompute", "-c", "sentiment", "--db", db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    during = ok("list", "--json", "--limit", "100", "--db", db)
    relabelled, _ = relabel.communicate(timeout=600)
    assert relabel.returncode == 0
    assert "labelled" in relabelled and "conversation_id" not in relabelled
    assert "labelled" not in during.stdout

    listed = json_lines(during.stdout)
    ids = {row["conversation_id"] for row in listed}
    assert len(ids) >= 6  # 4 sales chats, the tickets and the call
    assert any(row["channel"] == "call" for row in listed)
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as api:
        page = api.get("/v1/conversations", params={"limit": 100}).json()
        assert {c["conversation_id"] for c in page["items"]} == ids
        chat = next(r for r in listed if r["channel"] == "chat")
        # What the CLI's analyze wrote, the API reads: metrics and sentiment labels.
        metrics = api.get(f"/v1/conversations/{chat['conversation_id']}/metrics").json()
        assert metrics["conversation"]["message_count"] == chat["utterance_count"]
        sentiment = api.get(f"/v1/conversations/{chat['conversation_id']}/sentiment")
        assert sentiment.status_code == 200 and sentiment.json()

    # The warehouse named relative to the caller's cwd, or through a link: the same server.
    (tmp_path / "link.duckdb").symlink_to(server.db)
    for name in ("shared.duckdb", "link.duckdb"):
        counted = ok("list", "--limit", "100", "--db", name, cwd=tmp_path)
        assert f"{name} is {through}" in counted.stderr
        assert f"{len(ids)} conversation(s)" in counted.stdout

    shown = ok("show", chat["conversation_id"], "--db", db)
    assert chat["conversation_id"] in shown.stdout
    assert "no metrics yet" not in shown.stdout

    # Paths are the caller's: an explicit one, and export's default in the caller's cwd.
    parquet = tmp_path / "out" / "conversations.parquet"
    parquet.parent.mkdir()
    ok("export", "--layer", "conversations", "--format", "parquet", "--out", str(parquet),
       "--db", db)  # fmt: skip
    assert set(pq.read_table(parquet).column("conversation_id").to_pylist()) == ids
    here = tmp_path / "cwd"
    here.mkdir()
    exported = ok("export", "--layer", "utterances", "--format", "csv", "--db", db, cwd=here)
    assert "wrote" in exported.stdout
    with (here / "utterances.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert (
        sum(r["conversation_id"] == chat["conversation_id"] for r in rows)
        == (chat["utterance_count"])
    )

    # A command that fails says so in one line, with its exit code, as without a server.
    missing = cli("show", "no-such-conversation", "--db", db)
    assert missing.returncode == 1
    assert "no conversation matches 'no-such-conversation'" in missing.stderr
    assert "Traceback" not in missing.stderr

    server.stop()
    assert not discovery.exists()  # removed on a clean shutdown
    alone = ok("list", "--json", "--limit", "100", "--db", db)
    assert "through" not in alone.stderr
    assert {row["conversation_id"] for row in json_lines(alone.stdout)} == ids


def test_the_route_takes_only_the_local_token(server: LocalServer) -> None:
    token = json.loads(server.db.with_name("shared.duckdb.server.json").read_text())["token"]
    body = {"args": ["list", f"--db={server.db}"], "version": "0", "cwd": "/"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert "/_local" not in http.get("/openapi.json").text
        assert http.post("/_local/cli", json=body).status_code == 403
        wrong = {"X-Convolens-Local-Token": "x" * len(token)}
        assert http.post("/_local/cli", json=body, headers=wrong).status_code == 403
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert http.post("/_local/cli", json=body, headers=admin).status_code == 403
        local = {"X-Convolens-Local-Token": token}
        # The same installation only: another version could parse the arguments otherwise.
        mismatch = http.post("/_local/cli", json=body, headers=local)
        assert mismatch.status_code == 409
        assert "runs convolens" in mismatch.json()["error"]["message"]


def test_another_warehouse_is_refused_through_the_server(server: LocalServer) -> None:
    from convolens import __version__

    token = json.loads(server.db.with_name("shared.duckdb.server.json").read_text())["token"]
    other = server.db.with_name("other.duckdb")
    body = {"args": ["list", f"--db={other}"], "version": __version__, "cwd": "/"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        reply = http.post("/_local/cli", json=body, headers={"X-Convolens-Local-Token": token})
    messages = [json.loads(line) for line in reply.text.splitlines() if line.strip()]
    assert messages[-1] == {"exit": 1}
    said = "".join(m.get("stderr", "") for m in messages)
    assert "serves another warehouse" in said
    assert not other.exists()


def test_a_stale_discovery_file_is_ignored(tmp_path: Path, inbox: Path) -> None:
    db = tmp_path / "alone.duckdb"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = {"url": "http://127.0.0.1:9", "pid": gone.pid, "token": "t", "version": "0",
             "db": str(db.resolve())}  # fmt: skip
    left = db.with_name("alone.duckdb.server.json")
    left.write_text(json.dumps(stale))
    left.chmod(0o600)  # as a server writes it: only the dead pid gives it away
    done = ok("ingest", str(inbox), "--db", str(db))
    assert "through" not in done.stderr and "Ingest summary" in done.stdout


def test_a_locked_warehouse_is_one_clear_line_naming_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    ok("ingest", str(EXAMPLES / "chats" / "sales_chats.json"), "--db", str(db))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        for args in (["list"], ["ingest", str(EXAMPLES / "chats")], ["serve", "--no-preload"]):
            done = cli(*args, "--db", str(db))
            assert done.returncode == 1, done
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, done.stderr
            assert f"held.duckdb: in use by another process (PID {holder.pid}: " in lines[0]
            assert "Traceback" not in done.stderr
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(10)
