"""The service's job runner on the Ray engine (CONVOLENS_ENGINE=ray): a real server
starts its own one-worker Ray cluster, a submitted conversation is measured there, and
the run says which engine did it."""

from __future__ import annotations

import json
from pathlib import Path

from live_server import EXAMPLES, Server, wait_job

from convolens.enrich.registry import DEFAULT_COMPONENTS
from convolens.store.warehouse import Warehouse


def test_jobs_run_on_ray_when_the_setting_says_so(tmp_path: Path) -> None:
    config = tmp_path / "components.toml"
    # Metrics only: the point is where the job runs, not the models (tested elsewhere).
    config.write_text(
        "".join(f"[components.{name}]\nenabled = false\n" for name in DEFAULT_COMPONENTS)
    )
    db = tmp_path / "w.duckdb"
    server = Server(
        db,
        tmp_path / "server.log",
        CONVOLENS_CONFIG=str(config),
        CONVOLENS_PRELOAD="0",
        CONVOLENS_ENGINE="ray",
        CONVOLENS_RAY_WORKERS="1",
        RAY_USAGE_STATS_ENABLED="0",
    )
    server.start()
    try:
        line = (EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines()[0]
        with server.client() as admin:
            accepted = admin.post("/v1/conversations", json=json.loads(line)).json()
            job = wait_job(admin, accepted["job_id"])
            assert job["status"] == "completed", job
            shown = admin.get(f"/v1/conversations/{accepted['conversation_id']}")
            assert shown.status_code == 200, shown.text
    finally:
        server.stop()
    with Warehouse(db, read_only=True) as warehouse:
        runs = warehouse.query(
            "SELECT args::JSON->>'engine' AS engine, stats::JSON->>'conversations' AS n "
            "FROM runs WHERE kind = 'analyze'"
        )
        talk = warehouse.query("SELECT word_count FROM metrics_participant")
    assert runs == [{"engine": "ray", "n": "1"}]
    assert talk, "the job measured nothing"
