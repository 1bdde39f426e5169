"""The server as `make demo` and `convolens serve` start it, with nothing added (issue #11
items 2 and 12): an uploaded recording is transcribed with the default Whisper model, and
every file holding raw text or a secret is readable by its owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import ADMIN_KEY, ROOT, wait_job

from convolens.service.local import LocalServer
from convolens.service.settings import ServiceSettings
from convolens.speech.models import check_whisper_model
from convolens.store.warehouse import Warehouse

AUDIO = ROOT / "tests" / "data" / "audio" / "telephony_8k.wav"
CONVOLENS = str(Path(sys.executable).with_name("convolens"))


def _plain_env() -> dict[str, str]:
    """This process's environment without any CONVOLENS_* setting (as in a fresh shell)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONVOLENS_")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """`CONVOLENS_ADMIN_KEY=... convolens serve --db DB --port PORT`, as the Makefile's
    demo target runs it: no model option, no other setting."""
    folder = tmp_path_factory.mktemp("demo")
    server = LocalServer(folder / "demo.duckdb", folder.parent / f"{folder.name}-server.log")
    server.env = {**_plain_env(), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    server.env["CONVOLENS_ADMIN_KEY"] = ADMIN_KEY
    server.start(timeout=180)
    yield server
    server.stop()


def test_an_uploaded_recording_is_transcribed_with_the_defaults(demo: LocalServer) -> None:
    with httpx.Client(
        base_url=demo.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
    ) as client:
        accepted = client.post(
            "/v1/uploads", files={"file": (AUDIO.name, AUDIO.read_bytes(), "audio/wav")}
        )
        assert accepted.status_code == 202, accepted.text
        job = wait_job(client, accepted.json()["job_id"], timeout=600)
        assert job["status"] == "completed", job
        (cid,) = job["result"]["conversation_ids"]
        utterances = client.get(f"/v1/conversations/{cid}/utterances").json()
    said = " ".join(u["text"] for u in utterances).lower()
    assert "internet connection" in said, said


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_raw_text_and_secrets_are_owner_only(demo: LocalServer) -> None:
    with httpx.Client(
        base_url=demo.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
    ) as client:
        body = {"id": "modes-1", "messages": [{"author": "c", "text": "My card was charged."}]}
        assert client.post("/v1/conversations", json=body).status_code == 202
        client.post("/v1/uploads", files={"file": ("notes.json", b'{"id": "m2", "messages": []}')})
    secret = demo.db.with_name(demo.db.name + ".webhook-secret")
    spool = demo.db.with_name(demo.db.stem + ".uploads")
    assert _mode(demo.db) == 0o600
    assert _mode(secret) == 0o600
    wal = demo.db.with_name(demo.db.name + ".wal")
    if wal.exists():
        assert _mode(wal) == 0o600
    spooled = list(spool.rglob("*"))
    assert [p for p in spooled if p.is_file()], "nothing spooled"
    assert _mode(spool) == 0o700
    for path in spooled:
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_the_cli_creates_an_owner_only_warehouse(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    done = subprocess.run(
        [CONVOLENS, "ingest", str(ROOT / "examples" / "chats"), "--db", str(db)],
        env={**_plain_env(), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _mode(db) == 0o600


def test_the_webhook_secret_is_git_ignored() -> None:
    patterns = (ROOT / ".gitignore").read_text().splitlines()
    assert "*.webhook-secret" in patterns and "*.duckdb" in patterns


def test_the_default_model_is_one_the_product_ships(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("CONVOLENS_")]:
        monkeypatch.delenv(name)
    settings = ServiceSettings()
    check_whisper_model(settings.asr_model)
    check_whisper_model(settings.stream_asr_model)
    monkeypatch.setenv("CONVOLENS_ASR_MODEL", "base.en")
    with pytest.raises(ValueError, match=r"unknown Whisper model 'base\.en'"):
        ServiceSettings()


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--asr-model", "base.en"], {}), ([], {"CONVOLENS_ASR_MODEL": "large-v9"})],
)
def test_serve_refuses_an_unknown_model_at_start(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    done = subprocess.run(
        [CONVOLENS, "serve", "--db", str(tmp_path / "x.duckdb"), "--port", "1", *args],
        env={**_plain_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    message = " ".join(done.stderr.split())
    assert "unknown Whisper model" in message and "'base', 'tiny.en'" in message, message
    assert not (tmp_path / "x.duckdb").exists()  # refused before anything was made


@pytest.mark.parametrize("limit", ["99999999999999999999", "-5"])
def test_cli_list_limit_is_bounded(tmp_path: Path, limit: str) -> None:
    done = subprocess.run(
        [CONVOLENS, "list", "--db", str(tmp_path / "none.duckdb"), "--limit", limit],
        env=_plain_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--limit" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_files_from_an_older_server_are_made_owner_only(tmp_path: Path) -> None:
    """A warehouse, spool and secret left readable by an older version are owner-only
    once the server has started on them."""
    db = tmp_path / "old.duckdb"
    Warehouse(db).close()
    spool = tmp_path / "old.uploads" / "20260101"
    spool.mkdir(parents=True)
    (spool / "abc-chat.json").write_text('{"id": "x"}')
    secret = tmp_path / "old.duckdb.webhook-secret"
    secret.write_text("0" * 64)
    for path, mode in ((db, 0o644), (spool.parent, 0o755), (spool, 0o755), (secret, 0o644),
                       (spool / "abc-chat.json", 0o644)):  # fmt: skip
        path.chmod(mode)
    server = LocalServer(db, tmp_path / "server.log")
    server.env = {**_plain_env(), "CONVOLENS_ADMIN_KEY": ADMIN_KEY, "CONVOLENS_WORKERS": "0"}
    server.env["CONVOLENS_PRELOAD"] = "0"
    server.start()
    try:
        assert _mode(db) == 0o600 and _mode(secret) == 0o600
        assert _mode(spool.parent) == 0o700 and _mode(spool) == 0o700
        assert _mode(spool / "abc-chat.json") == 0o600
    finally:
        server.stop()
