"""Webhook delivery against a real HTTP receiver on localhost and a real DuckDB file."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from convolens.service import webhook_dispatch
from convolens.service.jobs import Job
from convolens.service.webhook_dispatch import WebhookDispatcher, dispatch_due
from convolens.service.webhook_targets import TargetPolicy, TargetRefused
from convolens.service.webhooks import (
    DeliverySettings,
    WebhookCreate,
    create_webhook,
    delete_webhook,
    enqueue,
    enqueue_url,
    get_delivery,
    get_webhook,
    list_deliveries,
    list_webhooks,
    redeliver,
    verify_signature,
)
from convolens.store.warehouse import Warehouse

SERVER_SECRET = "server-default-secret-0123456789"
# The receiver listens on loopback, which webhooks may only reach when an operator allows it.
LOOPBACK = TargetPolicy.parse("127.0.0.1")
LOCAL: dict[str, Any] = {"default_secret": SERVER_SECRET, "policy": LOOPBACK}
FAST = DeliverySettings(backoff_base_s=0.05, timeout_s=2.0, lease_s=10.0, poll_interval_s=0.02)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Records every POST; answers 500 while `fail[path]` > 0, after `delay` seconds."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                             time.monotonic())
                )  # fmt: skip
                state.active += 1
                state.max_active = max(state.max_active, state.active)
                failing = state.fail.get(self.path, 0) > 0
                if failing:
                    state.fail[self.path] -= 1
            time.sleep(state.delay)
            with state.lock:
                state.active -= 1
            reply = b"receiver broke" if failing else b"ok"
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def hook(wh: Warehouse, url: str, events: list[str], **extra: Any) -> tuple[str, str]:
    created, secret = create_webhook(wh, WebhookCreate(url=url, events=events, **extra), "admin")
    return created.hook_id, secret


def statuses(wh: Warehouse) -> list[str]:
    return [d.status for d in list_deliveries(wh)]


def test_create_list_delete(warehouse: Warehouse) -> None:
    body = WebhookCreate(
        url="https://crm.example/hooks",
        events=["tracker.hit", "tracker.hit", "job.completed"],
        rule={"tracker": "competitor_mention"},  # type: ignore[arg-type]
    )
    created, secret = create_webhook(warehouse, body, created_by="key_admin")
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert created.events == ["tracker.hit", "job.completed"]
    assert created.rule is not None and created.rule.tracker == "competitor_mention"
    assert "secret" not in created.model_dump()
    assert list_webhooks(warehouse) == [created] and get_webhook(warehouse, created.hook_id)
    stored = warehouse.query("SELECT secret FROM webhooks")[0]["secret"]
    assert stored == secret

    given = "a-receiver-chosen-secret-value"
    _, second = create_webhook(
        warehouse, WebhookCreate(url="http://x.example", events=["*"], secret=given)
    )
    assert second == given

    assert delete_webhook(warehouse, created.hook_id) is True
    assert delete_webhook(warehouse, created.hook_id) is False
    assert [h.url for h in list_webhooks(warehouse)] == ["http://x.example"]
    inactive = get_webhook(warehouse, created.hook_id)
    assert inactive is not None and inactive.active is False
    assert len(list_webhooks(warehouse, include_inactive=True)) == 2


@pytest.mark.parametrize(
    "url",
    ["ftp://files.example/x", "javascript:alert(1)", "https:///nohost", "http://u:p@x.example/"],
)
def test_create_rejects_bad_urls(warehouse: Warehouse, url: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        create_webhook(warehouse, WebhookCreate(url=url, events=["*"]))
    assert refused.value.code == "invalid_webhook_url"
    assert list_webhooks(warehouse) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "https://ok.example", "events": []},
        {"url": "https://ok.example", "events": ["job.done"]},
        {"url": "https://ok.example", "events": ["*"], "rule": {"trackr": "x"}},
        {"url": "https://ok.example", "events": ["*"], "rule": {"min_confidence": 2}},
        {"url": "https://ok.example", "events": ["*"], "payload_format": "xml"},
        {"url": "https://ok.example", "events": ["*"], "secret": "short"},
    ],
)
def test_create_rejects_bad_input(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WebhookCreate(**fields)


def test_signed_json_delivery(warehouse: Warehouse, receiver: Receiver) -> None:
    hook_id, secret = hook(warehouse, receiver.url("/crm"), ["job.completed"])
    data = {"job_id": "job_1", "kind": "ingest", "conversation_id": "c1", "result": {"n": 3}}
    ids = enqueue(warehouse, "job.completed", data)
    assert len(ids) == 1
    assert dispatch_due(warehouse, **LOCAL, settings=FAST) == 1

    [req] = receiver.requests
    h = req.headers
    assert h["content-type"] == "application/json"
    assert h["x-convolens-event"] == "job.completed"
    assert h["x-convolens-delivery"] == ids[0]
    ts, sig = h["x-convolens-timestamp"], h["x-convolens-signature"]
    assert sig.startswith("sha256=") and abs(int(ts) - time.time()) < 5
    assert verify_signature(secret, ts, req.body, sig)
    assert not verify_signature(secret, ts, req.body.replace(b'"n":3', b'"n":4'), sig)
    assert not verify_signature(SERVER_SECRET, ts, req.body, sig)
    assert not verify_signature(secret, str(int(ts) + 1), req.body, sig)  # timestamp is signed
    assert not verify_signature(secret, ts, req.body, sig, now=int(ts) + 301)  # replay window
    assert not verify_signature(secret, ts, req.body, sig.removeprefix("sha256="))

    body = json.loads(req.body)
    assert body == {
        "event": "job.completed",
        "delivery_id": ids[0],
        "created_at": body["created_at"],
        "data": data,
    }
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None

    delivery = get_delivery(warehouse, ids[0])
    assert delivery is not None and delivery.hook_id == hook_id
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert delivery.last_error is None and delivery.delivered_at is not None
    assert delivery.payload == body
    # The stored text is byte for byte what was signed and sent.
    raw = warehouse.query("SELECT payload FROM webhook_deliveries")[0]["payload"]
    assert raw.encode("utf-8") == req.body
    assert dispatch_due(warehouse, **LOCAL, settings=FAST) == 0


def test_retries_with_backoff_then_success(warehouse: Warehouse, receiver: Receiver) -> None:
    hook(warehouse, receiver.url("/flaky"), ["alert"])
    receiver.fail["/flaky"] = 2
    [delivery_id] = enqueue(warehouse, "alert", {"alert": "volume_spike", "message": "3x calls"})

    before = datetime.now(UTC)
    assert dispatch_due(warehouse, **LOCAL, settings=FAST) == 1
    first = get_delivery(warehouse, delivery_id)
    assert first is not None and first.status == "pending" and first.attempts == 1
    assert first.response_status == 500 and first.last_error == "HTTP 500: receiver broke"
    assert first.next_attempt_at is not None
    assert first.next_attempt_at >= before + timedelta(seconds=0.05)
    # Not due yet: an immediate pass sends nothing.
    assert dispatch_due(warehouse, **LOCAL, settings=FAST) == 0

    with WebhookDispatcher(warehouse, **LOCAL, settings=FAST):
        wait_for(lambda: statuses(warehouse) == ["delivered"])
    done = get_delivery(warehouse, delivery_id)
    assert done is not None
    assert (done.attempts, done.response_status, done.last_error) == (3, 200, None)
    sent = receiver.on("/flaky")
    assert [r.headers["x-convolens-delivery"] for r in sent] == [delivery_id] * 3
    # Backoff doubles: >= 0.05 s before the 2nd attempt, >= 0.1 s before the 3rd.
    assert sent[1].at - sent[0].at >= 0.045
    assert sent[2].at - sent[1].at >= 0.095


def test_permanent_failure_after_max_attempts(warehouse: Warehouse, receiver: Receiver) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    down, _ = hook(warehouse, receiver.url("/down"), ["alert"])
    refused, _ = hook(warehouse, f"http://127.0.0.1:{dead_port}/x", ["alert"])
    receiver.fail["/down"] = 10**6
    enqueue(warehouse, "alert", {"alert": "x"})

    settings = FAST.model_copy(update={"max_attempts": 3, "backoff_base_s": 0.01})
    with WebhookDispatcher(warehouse, **LOCAL, settings=settings):
        wait_for(lambda: statuses(warehouse) == ["failed", "failed"])
    [d_down] = list_deliveries(warehouse, down)
    [d_refused] = list_deliveries(warehouse, refused)
    assert (d_down.attempts, d_down.response_status, d_down.next_attempt_at) == (3, 500, None)
    assert d_down.last_error == "HTTP 500: receiver broke"
    assert len(receiver.on("/down")) == 3
    assert (d_refused.attempts, d_refused.response_status) == (3, None)
    assert d_refused.last_error is not None and d_refused.last_error.startswith("ConnectError")
    assert list_deliveries(warehouse, status="failed", limit=1)[0].status == "failed"

    # A failed delivery can be sent again by hand once the receiver is fixed.
    receiver.fail["/down"] = 0
    assert redeliver(warehouse, d_down.delivery_id) is True
    assert redeliver(warehouse, d_down.delivery_id) is False  # already pending
    assert dispatch_due(warehouse, **LOCAL, settings=settings) == 1
    again = get_delivery(warehouse, d_down.delivery_id)
    assert again is not None and (again.status, again.attempts) == ("delivered", 1)


def test_rules_filter_events(warehouse: Warehouse) -> None:
    url = "https://hooks.example/"
    comp, _ = hook(warehouse, url, ["tracker.hit"], rule={"tracker": "competitor_mention"})
    either, _ = hook(warehouse, url, ["tracker.hit"], rule={"tracker": ["refund", "cancel"]})
    churn, _ = hook(
        warehouse, url, ["signal.churn_risk"], rule={"signal": "churn_risk", "min_confidence": 0.5}
    )
    streak, _ = hook(warehouse, url, ["sentiment.negative_streak"], rule={"min_streak": 3})
    queue, _ = hook(warehouse, url, ["*"], rule={"queue": "billing"})
    every, _ = hook(warehouse, url, ["*"])
    gone, _ = hook(warehouse, url, ["*"])
    delete_webhook(warehouse, gone)

    def hooks_for(event: str, payload: dict[str, Any]) -> set[str | None]:
        ids = set(enqueue(warehouse, event, payload))
        return {d.hook_id for d in list_deliveries(warehouse, limit=1000) if d.delivery_id in ids}

    hit = {"conversation_id": "c1", "text": "we looked at Zendesk"}
    assert hooks_for("tracker.hit", {**hit, "tracker": "competitor_mention"}) == {comp, every}
    assert hooks_for("tracker.hit", {**hit, "tracker": "cancel"}) == {either, every}
    assert hooks_for("tracker.hit", {**hit, "tracker": "greeting"}) == {every}
    assert hooks_for("tracker.hit", hit) == {every}  # no tracker key: the rule cannot hold
    sig = {"conversation_id": "c1", "signal": "churn_risk"}
    assert hooks_for("signal.churn_risk", {**sig, "confidence": 0.3}) == {every}
    assert hooks_for("signal.churn_risk", {**sig, "confidence": 0.5}) == {churn, every}
    assert hooks_for("signal.churn_risk", {**sig, "confidence": 0.81}) == {churn, every}
    assert hooks_for("signal.churn_risk", {**sig, "confidence": "high"}) == {every}
    assert hooks_for("signal.churn_risk", {"signal": "bug", "confidence": 0.9}) == {every}
    assert hooks_for("sentiment.negative_streak", {"streak": 2}) == {every}
    assert hooks_for("sentiment.negative_streak", {"streak": 3}) == {streak, every}
    assert hooks_for("job.completed", {"job_id": "j", "queue": "billing"}) == {queue, every}
    assert hooks_for("job.failed", {"job_id": "j", "queue": "sales"}) == {every}

    with pytest.raises(ValueError, match="unknown event"):
        enqueue(warehouse, "job.done", {})
    with pytest.raises(ValueError):
        enqueue(warehouse, "alert", {"score": float("nan")})
    with pytest.raises(TypeError):
        enqueue(warehouse, "alert", {"blob": object()})


def test_slack_payload(warehouse: Warehouse, receiver: Receiver) -> None:
    _, secret = hook(
        warehouse, receiver.url("/slack"), ["tracker.hit", "signal.churn_risk"],
        payload_format="slack",
    )  # fmt: skip
    [hit_id] = enqueue(
        warehouse,
        "tracker.hit",
        {
            "conversation_id": "conv-9",
            "tracker": "competitor_mention",
            "text": "<PERSON> said Zendesk is cheaper & faster",
            "confidence": 0.92,
            "url": "https://cl.example/c/conv-9",
        },
    )
    enqueue(
        warehouse,
        "signal.churn_risk",
        {"conversation_id": "conv-9", "signal": "churn_risk", "confidence": 0.8,
         "reasons": ['tracker churn_risk: customer said "cancel my plan"']},
    )  # fmt: skip
    assert dispatch_due(warehouse, **LOCAL, settings=FAST) == 2

    by_event = {r.headers["x-convolens-event"]: r for r in receiver.requests}
    req = by_event["tracker.hit"]
    h = req.headers
    assert verify_signature(
        secret, h["x-convolens-timestamp"], req.body, h["x-convolens-signature"]
    )
    body = json.loads(req.body)
    assert set(body) == {"text", "blocks"}
    assert body["text"] == "Tracker competitor_mention matched in conversation conv-9 (92%)"
    section, context = body["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    text = section["text"]["text"]
    assert text.startswith("*Tracker competitor_mention matched in conversation conv-9 (92%)*\n")
    # Redaction tags and & are escaped, or Slack would read <PERSON> as a link.
    assert "> &lt;PERSON&gt; said Zendesk is cheaper &amp; faster" in text
    assert "<PERSON>" not in text
    assert text.endswith("<https://cl.example/c/conv-9|Open in convolens>")
    assert context["type"] == "context"
    assert "`tracker.hit`" in context["elements"][0]["text"]
    assert hit_id in context["elements"][0]["text"]

    churn = json.loads(by_event["signal.churn_risk"].body)
    assert churn["text"] == "Churn risk (80%) in conversation conv-9"
    assert (
        '> tracker churn_risk: customer said "cancel my plan"'
        in (churn["blocks"][0]["text"]["text"])
    )


def test_pending_deliveries_survive_restart(tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "x.duckdb"
    with Warehouse(path) as wh:  # enqueued while no dispatcher runs
        _, secret = hook(wh, receiver.url("/hook"), ["job.completed", "job.failed"])
        enqueue(wh, "job.completed", {"job_id": "j1"})
        enqueue(wh, "job.failed", {"job_id": "j2", "error": {"message": "bad file"}})
        one_off = enqueue_url(wh, receiver.url("/job-callback"), "job.completed", {"job_id": "j3"})
        with pytest.raises(ValueError):
            enqueue_url(wh, "file:///etc/passwd", "job.completed", {})
        # A delivery claimed by a process that then died: due again once its lease ends.
        short = DeliverySettings(timeout_s=0.1, lease_s=0.3)
        assert len(webhook_dispatch._claim_due(wh, short, SERVER_SECRET, limit=1)) == 1

    assert receiver.requests == []
    with Warehouse(path) as wh:  # the server restarts
        assert statuses(wh) == ["pending"] * 3
        with WebhookDispatcher(wh, **LOCAL, settings=FAST):
            wait_for(lambda: statuses(wh) == ["delivered"] * 3)
        callback = get_delivery(wh, one_off)
        assert callback is not None and callback.hook_id is None

    assert len(receiver.requests) == 3
    for req in receiver.requests:
        h = req.headers
        key = SERVER_SECRET if req.path == "/job-callback" else secret
        assert verify_signature(
            key, h["x-convolens-timestamp"], req.body, h["x-convolens-signature"]
        )
    [cb] = receiver.on("/job-callback")
    assert json.loads(cb.body)["data"] == {"job_id": "j3"}


def test_concurrency_is_bounded(warehouse: Warehouse, receiver: Receiver) -> None:
    hook(warehouse, receiver.url("/slow"), ["alert"])
    receiver.delay = 0.15
    for i in range(6):
        enqueue(warehouse, "alert", {"alert": f"a{i}"})
    settings = FAST.model_copy(update={"concurrency": 2})
    started = time.monotonic()
    with WebhookDispatcher(warehouse, **LOCAL, settings=settings) as d:
        d.notify()
        wait_for(lambda: statuses(warehouse) == ["delivered"] * 6)
    assert receiver.max_active == 2  # in parallel, but never more than two at once
    assert time.monotonic() - started >= 3 * 0.15


def test_delete_cancels_pending(warehouse: Warehouse, receiver: Receiver) -> None:
    hook_id, _ = hook(warehouse, receiver.url("/gone"), ["alert"])
    [delivery_id] = enqueue(warehouse, "alert", {"alert": "x"})
    assert delete_webhook(warehouse, hook_id)
    cancelled = get_delivery(warehouse, delivery_id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert cancelled.last_error == "webhook deleted"
    assert dispatch_due(warehouse, **LOCAL, settings=FAST) == 0
    assert redeliver(warehouse, delivery_id) is False
    assert enqueue(warehouse, "alert", {"alert": "y"}) == []
    assert receiver.requests == []


def test_dispatcher_stops_promptly(warehouse: Warehouse) -> None:
    dispatcher = WebhookDispatcher(
        warehouse, **LOCAL, settings=DeliverySettings(poll_interval_s=30)
    )
    dispatcher.start()
    assert dispatcher.running
    started = time.monotonic()
    dispatcher.stop()
    assert not dispatcher.running and time.monotonic() - started < 1.0


def test_job_finished_notifies_hooks_and_job_url(warehouse: Warehouse, receiver: Receiver) -> None:
    _, secret = hook(warehouse, receiver.url("/jobs"), ["job.completed", "job.failed"])
    common: dict[str, Any] = {
        "kind": "ingest",
        "attempts": 1,
        "max_attempts": 3,
        "created_at": "2025-01-01",
    }
    done = Job(job_id="job_a", status="completed", result={"conversations": 2},
               webhook_url=receiver.url("/callback"), **common)  # fmt: skip
    failed = Job(job_id="job_b", status="failed", error={"message": "no records"}, **common)
    with WebhookDispatcher(warehouse, **LOCAL, settings=FAST) as d:
        assert len(d.job_finished(done)) == 2
        assert len(d.job_finished(failed)) == 1
        wait_for(lambda: statuses(warehouse) == ["delivered"] * 3)

    seen = sorted((r.path, r.headers["x-convolens-event"]) for r in receiver.requests)
    assert seen == [
        ("/callback", "job.completed"),
        ("/jobs", "job.completed"),
        ("/jobs", "job.failed"),
    ]
    [cb] = receiver.on("/callback")
    h = cb.headers
    assert verify_signature(SERVER_SECRET, h["x-convolens-timestamp"], cb.body,
                            h["x-convolens-signature"])  # fmt: skip
    data = json.loads(cb.body)["data"]
    assert data["job_id"] == "job_a" and data["result"] == {"conversations": 2}
    assert "webhook_url" not in data
    failed_body = json.loads(next(r.body for r in receiver.on("/jobs") if b"job_b" in r.body))
    assert failed_body["data"]["error"] == {"message": "no records"}
    assert secret
