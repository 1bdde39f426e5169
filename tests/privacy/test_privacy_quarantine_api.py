"""Quarantine over the service and the CLI (#12): a server whose redaction policy cannot load
(its NER model is missing) stores nothing it was sent, says so to the submitter without the
reason, shows the reason to admins only, and releases the entry once a fixed server stores
the conversation sent again.
"""

from __future__ import annotations

import json
from pathlib import Path

from live_server import Server, role_keys, wait_job
from privacy_corpus import chat, leaks
from typer.testing import CliRunner

from convolens.cli import app
from convolens.enrich.registry import DEFAULT_COMPONENTS


def _config(folder: Path, pii: str) -> Path:
    """Only `pii` on (labelling is not what is tested), with the given table body."""
    path = folder / f"components-{len(list(folder.glob('components-*')))}.toml"
    path.write_text(
        "".join(f"[components.{n}]\nenabled = false\n" for n in DEFAULT_COMPONENTS if n != "pii")
        + f"[components.pii]\n{pii}"
    )
    return path


def _server(folder: Path, config: Path) -> Server:
    server = Server(folder / "w.duckdb", folder / "server.log", CONVOLENS_CONFIG=str(config))
    server.env["CONVOLENS_PRELOAD"] = "0"
    return server.start()


def test_quarantined_over_the_api_and_released_by_a_fixed_server(tmp_path: Path) -> None:
    broken = _config(tmp_path, f'ner_model = "{tmp_path / "no-model"}"\n')
    server = _server(tmp_path, broken)
    try:
        keys = role_keys(server, name="quarantine")
        with server.client() as admin:
            accepted = admin.post("/v1/conversations", json=chat())
            assert accepted.status_code == 202, accepted.text
            job = wait_job(admin, accepted.json()["job_id"])
            # The submitter learns it was quarantined, not why (the reason is for admins).
            assert job["status"] == "failed" and "quarantined" in json.dumps(job), job
            assert "FileNotFoundError" not in json.dumps(job)
            cid = accepted.json()["conversation_id"]
            assert admin.get(f"/v1/conversations/{cid}").status_code == 404
            held = admin.get("/v1/quarantine").json()
            assert len(held) >= 1 and {h["conversation_id"] for h in held} == {cid}
            assert held[0]["record"] and "FileNotFoundError" in held[0]["reason"]
            assert str(tmp_path) not in json.dumps(held)  # no server paths
            for role in ("analyst", "agent", "viewer"):
                with server.client(keys[role]) as other:
                    assert other.get("/v1/quarantine").status_code == 403
        log = server.log.read_text(encoding="utf-8", errors="replace")
        assert leaks(log) == []
    finally:
        server.stop()

    # The CLI shows the same rows to whoever holds the warehouse file.
    shown = CliRunner().invoke(app, ["quarantine", "--db", str(tmp_path / "w.duckdb")])
    assert shown.exit_code == 0, shown.output
    assert "FileNotFoundError" in shown.output and "quarantined" in shown.output

    server = _server(tmp_path, _config(tmp_path, ""))
    try:
        with server.client() as admin:
            accepted = admin.post("/v1/conversations", json=chat())
            assert wait_job(admin, accepted.json()["job_id"])["status"] == "completed"
            assert admin.get("/v1/quarantine").json() == []
            released = admin.get("/v1/quarantine", params={"include_released": "true"}).json()
            assert released and all(r["released_at"] for r in released)
            utterances = admin.get(f"/v1/conversations/{cid}/utterances").json()
            assert utterances and not leaks(json.dumps(utterances))
    finally:
        server.stop()
    listed = CliRunner().invoke(
        app, ["quarantine", "--all", "--json", "--db", str(tmp_path / "w.duckdb")]
    )
    rows = [json.loads(line) for line in listed.output.splitlines() if line.strip()]
    assert rows and all(r["released_at"] for r in rows)
