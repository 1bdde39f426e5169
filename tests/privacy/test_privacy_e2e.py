"""Plant and grep, end to end (#12 items 1 and 4): a real `convolens serve` with every
labelling component, PII planted in every field of a chat, an email, a ticket, a call
transcript and a live chat stream, submitted every way there is (the CLI through the
server's bridge, POST /v1/conversations, POST /v1/uploads, WS /v1/stream). While the
labelling jobs run, the analyst, agent and viewer keys keep reading; afterwards every GET
route of the app is read as each of them, the non-raw layers are exported, and the webhook
deliveries, the server's log and the stream's events are searched too. Nothing but the raw
layer (admin, confirm) may hold a planted value.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from live_server import Receiver, Server, role_keys, wait_job
from privacy_corpus import AGENT, CARD, EMAIL, NAME, PHONE_WORDS, chat, email, leaks, ticket
from privacy_corpus import transcript as call_transcript
from route_table import app_routes
from websockets.sync.client import connect

from convolens.service.results import PARTS

COOKIE = "convolens_dashboard_key"
ROLES = ("analyst", "agent", "viewer")
# Templates whose parameters name files shipped with the server, not data.
STATIC = {"/docs-assets/{asset}", "/dashboard/static/{name}"}
CSV_TABLES = [
    "overview/alerts", "overview/rising", "overview/channels", "topics/clusters",
    "topics/spikes?dimension=topic", "topics/topics", "agents/scorecards",
    "accounts/accounts", "accounts/issues", "scorecards/coaching",
    "conversations/conversations",
]  # fmt: skip
STREAM_TURNS = [
    ("Customer", f"Hi, I'm {NAME} and my card {CARD} was charged twice."),
    (AGENT, "Sorry about that. What number can we reach you on?"),
    ("Customer", f"Call me on {PHONE_WORDS}, or email {EMAIL}."),
    (AGENT, "Thanks, I've refunded it and sent a confirmation."),
]


@dataclass
class World:
    server: Server
    folder: Path
    keys: dict[str, str]
    ids: list[str]
    jobs: list[str]
    receiver: Receiver
    stream_events: list[str]
    # (role, url, status, body) read while a labelling job was running
    during: list[tuple[str, str, int, str]] = field(default_factory=list)
    review_items: list[str] = field(default_factory=list)
    reads: dict[str, tuple[int, list[tuple[str, list[str]]]]] = field(default_factory=dict)
    polls_while_running: int = 0


def _bridge(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """A CLI command run the way a user runs it while the server holds the warehouse: the
    CLI finds the server and the command runs inside it (/_local/cli)."""
    command = [str(Path(sys.executable).with_name("convolens")), *args, "--db", str(server.db)]
    done = subprocess.run(
        command, capture_output=True, text=True, env=server.env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _stream(server: Server, key: str) -> tuple[list[str], str]:
    """A live chat over the WebSocket: every event frame as sent, and the stored job."""
    url = server.url.replace("http://", "ws://") + "/v1/stream"
    frames: list[str] = []
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        ws.send(
            json.dumps(
                {
                    "type": "start",
                    "channel_kind": "chat",
                    "source_id": "privacy-stream-1",
                    "agent": AGENT,
                    "speakers": [
                        {"name": "Customer", "role": "customer"},
                        {"name": AGENT, "role": "agent"},
                    ],
                }
            )
        )
        for speaker, text in STREAM_TURNS:
            ws.send(json.dumps({"type": "message", "speaker": speaker, "text": text}))
        ws.send(json.dumps({"type": "stop"}))
        frames.extend(str(m) for m in ws)
    stored = [json.loads(f) for f in frames if json.loads(f)["type"] == "stored"]
    assert stored, frames[-3:]
    return frames, stored[0]["job_id"]


class _Poller(threading.Thread):
    """Reads conversations as each role while jobs run, noting whether one was running."""

    def __init__(self, world: World, jobs: list[str]) -> None:
        super().__init__(daemon=True)
        self.world, self.jobs, self.stop = world, jobs, threading.Event()

    def run(self) -> None:
        server, keys = self.world.server, self.world.keys
        clients = {
            role: httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {keys[role]}"},
                cookies={COOKIE: keys[role]},
                timeout=60,
            )
            for role in ("admin", *ROLES)
        }
        try:
            while not self.stop.is_set():
                running = any(
                    clients["admin"].get(f"/v1/jobs/{j}").json().get("status") == "running"
                    for j in list(self.jobs)
                )
                for role in ROLES:
                    listed = clients[role].get("/v1/conversations")
                    urls = ["/v1/conversations", "/dashboard/conversations"]
                    if listed.status_code == 200:
                        for item in listed.json().get("items", []):
                            cid = item["conversation_id"]
                            urls += [
                                f"/v1/conversations/{cid}",
                                f"/v1/conversations/{cid}/utterances",
                                f"/v1/conversations/{cid}/summary",
                                f"/dashboard/conversations/{cid}",
                            ]
                    for url in urls:
                        response = clients[role].get(url)
                        if running:
                            self.world.during.append(
                                (role, url, response.status_code, response.text)
                            )
                self.world.polls_while_running += running
                time.sleep(0.2)
        finally:
            for client in clients.values():
                client.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("privacy_e2e")
    calls = folder / "calls"
    calls.mkdir()
    vtt, sidecar = call_transcript()
    (calls / "call.vtt").write_text(vtt, encoding="utf-8")
    (calls / "call.meta.json").write_text(json.dumps(sidecar), encoding="utf-8")
    receiver = Receiver()
    server = Server(folder / "w.duckdb", folder / "server.log").start(timeout=300)
    try:
        keys = role_keys(server, agent=AGENT, name="privacy")
        world = World(server, folder, keys, [], [], receiver, [])
        with server.client() as admin:
            hook = admin.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]})
            assert hook.status_code == 201, hook.text
            # The CLI through the server's bridge: stored now, labelled by the next job.
            _bridge(server, "ingest", str(calls))
            poller = _Poller(world, world.jobs)
            poller.start()
            submitted = [admin.post("/v1/conversations", json=chat())]
            for name, content in (("thread.eml", email()), ("tickets.json", json.dumps(ticket()))):
                submitted.append(
                    admin.post("/v1/uploads", files={"file": (name, content.encode())})
                )
            for accepted in submitted:
                assert accepted.status_code == 202, accepted.text
                world.jobs.append(accepted.json()["job_id"])
            frames, stream_job = _stream(server, keys["admin"])
            world.stream_events = frames
            world.jobs.append(stream_job)
            for job_id in list(world.jobs):
                job = wait_job(admin, job_id, timeout=900)
                assert job["status"] == "completed", job
            refresh = admin.post("/v1/analytics/clusters/refresh")
            assert refresh.status_code == 202, refresh.text
            world.jobs.append(refresh.json()["job_id"])
            assert wait_job(admin, world.jobs[-1], timeout=600)["status"] == "completed"
            poller.stop.set()
            poller.join(120)
            listed = admin.get("/v1/conversations", params={"limit": 100}).json()
            world.ids = [c["conversation_id"] for c in listed["items"]]
            # A label review batch: its items quote the labels' evidence text.
            batch = admin.post("/v1/review/batches", json={"per_value": 2, "seed": 7})
            assert batch.status_code == 201, batch.text
            item = admin.get("/v1/review/next").json()["item"]
            world.review_items = [item["item_id"]] if item else []
        # Deliveries go out after the jobs: give the dispatcher a moment to finish.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(receiver.bodies) < len(world.jobs):
            time.sleep(0.3)
        yield world
    finally:
        server.stop()
        receiver.http.shutdown()


def _urls(world: World) -> list[str]:
    """Every GET route of the app, its parameters filled with this corpus' ids."""
    (world.folder / "routes").mkdir(exist_ok=True)
    with world.server.client() as admin:
        clusters = admin.get("/v1/analytics/clusters").json()
    fill = {
        "conversation_id": world.ids,
        "ref": world.ids,
        "ref:path": world.ids,
        "job_id": world.jobs,
        "part": sorted(PARTS),
        "kind": ["taxonomy?content=true", "trackers?content=true"],
        "name": ["support"],
        "cluster_id": [c["cluster_id"] for c in clusters],
        "item_id": world.review_items or ["no-such-item"],
    }
    urls: list[str] = []
    unfilled = []
    for method, template in sorted(app_routes(world.folder / "routes")):
        if method != "GET" or template in STATIC:
            continue
        if template == "/dashboard/csv/{page}/{table}":
            urls += [f"/dashboard/csv/{t}" for t in CSV_TABLES]
            continue
        found = [template]
        for param in re.findall(r"\{([^}]+)\}", template):
            if param not in fill:
                unfilled.append(template)
                found = []
                break
            found = [u.replace(f"{{{param}}}", v) for u in found for v in fill[param]]
        urls += found
    assert not unfilled, f"GET routes this test cannot fill: {unfilled}"
    return urls


def test_nothing_read_during_the_labelling_jobs_holds_a_planted_value(world: World) -> None:
    assert world.polls_while_running >= 1, "no read happened while a job was running"
    texts = [body for _, _, status, body in world.during if status == 200]
    assert texts, "nothing was read during the jobs"
    leaked = [(role, url, leaks(body)) for role, url, _, body in world.during if leaks(body)]
    assert leaked == []


def _read_all(world: World, role: str) -> tuple[int, list[tuple[str, list[str]]]]:
    """(routes answered 200, [(url, planted values in its body)]) for one role's key."""
    if role in world.reads:
        return world.reads[role]
    key = world.keys[role]
    leaked = []
    read = 0
    with httpx.Client(
        base_url=world.server.url,
        headers={"Authorization": f"Bearer {key}"},
        cookies={COOKIE: key},
        timeout=120,
    ) as client:
        for url in _urls(world):
            response = client.get(url)
            read += response.status_code == 200
            found = leaks(response.text)
            if found:
                leaked.append((url, found))
    world.reads[role] = (read, leaked)
    return read, leaked


@pytest.mark.parametrize("role", ROLES)
def test_no_get_route_shows_a_planted_value(world: World, role: str) -> None:
    read, leaked = _read_all(world, role)
    assert read > 20
    assert leaked == []


def test_the_text_readers_do_read_the_redacted_text(world: World) -> None:
    # The corpus is there, redacted, for the analyst: the test reads real content.
    with world.server.client(world.keys["analyst"]) as analyst:
        texts = [
            u["text"]
            for cid in world.ids
            for u in analyst.get(f"/v1/conversations/{cid}/utterances").json()
        ]
    joined = "\n".join(texts)
    for tag in ("<PERSON>", "<CREDIT_CARD>", "<PHONE_NUMBER>", "<EMAIL_ADDRESS>"):
        assert tag in joined
    assert len(world.ids) == 5  # chat, email, ticket, call transcript, stream


def test_exports_webhooks_log_and_stream_events_hold_no_planted_value(world: World) -> None:
    for layer in ("conversations", "participants", "utterances", "words", "labels"):
        out = world.folder / f"{layer}.jsonl"
        _bridge(world.server, "export", "--layer", layer, "--format", "jsonl", "--out", str(out))
        exported = out.read_text(encoding="utf-8")
        assert exported.strip() or layer == "words", layer  # no source here has word timings
        assert leaks(exported) == [], layer
    assert world.receiver.bodies, "no webhook was delivered"
    for body in world.receiver.bodies:
        assert leaks(body.decode("utf-8", "replace")) == [], body[:300]
    assert any(json.loads(f)["type"] == "transcript.final" for f in world.stream_events)
    for frame in world.stream_events:
        assert leaks(frame) == [], frame
    log = world.server.log.read_text(encoding="utf-8", errors="replace")
    assert log.strip()
    assert leaks(log) == []


def test_the_raw_layer_keeps_the_originals_for_admins_only(world: World) -> None:
    with world.server.client() as admin:
        raws = [
            admin.get(f"/v1/conversations/{cid}/raw", params={"confirm": "true"})
            for cid in world.ids
        ]
    assert all(r.status_code == 200 for r in raws)
    assert {"card", "surname"} <= set(leaks("".join(r.text for r in raws)))
    with world.server.client(world.keys["analyst"]) as analyst:
        refused = analyst.get(f"/v1/conversations/{world.ids[0]}/raw", params={"confirm": "true"})
    assert refused.status_code == 403
