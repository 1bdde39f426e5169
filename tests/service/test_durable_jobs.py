"""A server killed mid-job: on restart the job is retried and completes exactly once —
one conversation, one set of labels, one completion webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from live_server import EXAMPLES, Server, wait_job

from convolens.service.webhooks import verify_signature


class Receiver:
    """A webhook receiver on localhost that records what it is sent."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.http.shutdown()


def test_killed_mid_job_completes_exactly_once_after_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    server = Server(tmp_path / "durable.duckdb", tmp_path / "server.log").start()
    recording = EXAMPLES / "recordings" / "call-20261117-0031.flac"
    metadata = (EXAMPLES / "recordings" / "call-20261117-0031.meta.json").read_text()
    try:
        with server.client() as client, recording.open("rb") as audio:
            accepted = client.post(
                "/v1/uploads",
                files={"file": (recording.name, audio, "audio/flac")},
                data={"metadata": metadata, "webhook_url": receiver.url},
            ).json()
            job_id = accepted["job_id"]
            deadline = time.monotonic() + 120
            while client.get(f"/v1/jobs/{job_id}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        server.kill()  # SIGKILL: no shutdown, the job row stays 'running'
    except BaseException:
        server.kill()
        raise
    server.start()
    try:
        with server.client() as client:
            job = wait_job(client, job_id)
            assert job["status"] == "completed", job
            assert job["attempts"] == 2  # the killed run, then the retry
            cid = accepted["conversation_id"]
            assert job["result"]["conversation_ids"] == [cid]
            listed = client.get("/v1/conversations", params={"q": ""}).json()
            assert [c["conversation_id"] for c in listed["items"]] == [cid]
            full = client.get(f"/v1/conversations/{cid}").json()
            assert full["conversation"]["source_id"] == "call-20261117-0031"
            primaries = [r for r in full["intents"] if r["label"] == "intent.primary"]
            summaries = full["summary"]
            assert len(primaries) == 1 and len(summaries) == 1
            deadline = time.monotonic() + 30
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # would a second completion arrive?
    finally:
        server.stop()
    completions = [
        r for r in receiver.requests if r["headers"]["X-Convolens-Event"] == "job.completed"
    ]
    assert len(completions) == 1
    body = completions[0]["body"]
    assert json.loads(body)["data"]["job_id"] == job_id
    secret = (tmp_path / "durable.duckdb.webhook-secret").read_text().strip()
    headers = completions[0]["headers"]
    assert verify_signature(
        secret, headers["X-Convolens-Timestamp"], body, headers["X-Convolens-Signature"]
    )
