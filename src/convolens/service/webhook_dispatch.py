"""Sending webhook deliveries: lease due rows, POST them signed, record the outcome.

The outbox rows (`webhooks.enqueue`) are the queue; `WebhookDispatcher` is the one thread
per server that drains it, with a small pool for the HTTP calls, so a slow receiver never
holds up the others. Delivery semantics (at least once, backoff, leases) are described in
`convolens.service.webhooks`. Every attempt goes through `WebhookTransport`: the target is
resolved and checked again at send time and the connection goes to the checked address; a
refused target fails the delivery at once (no retries) and is logged as refused.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import duckdb
import httpx
from pydantic import BaseModel

from convolens import __version__
from convolens.service.webhook_targets import TargetPolicy, TargetRefused, WebhookTransport
from convolens.service.webhooks import (
    _ERROR_CHARS,
    DeliverySettings,
    _execute_retrying,
    _now,
    enqueue,
    enqueue_url,
    sign,
)
from convolens.store.warehouse import Warehouse

__all__ = ["WebhookDispatcher", "dispatch_due"]

log = logging.getLogger("convolens.service.webhooks")


@dataclass(frozen=True)
class _Claim:
    delivery_id: str
    url: str
    event: str
    body: str
    attempts: int
    secret: str


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    status: int | None
    error: str | None
    # Retrying cannot help (a refused target): the delivery fails now.
    final: bool = False


def _claim_due(
    wh: Warehouse, settings: DeliverySettings, default_secret: str, limit: int
) -> list[_Claim]:
    """Lease up to `limit` due deliveries (pushing next_attempt_at past the send)."""
    now = _now()
    try:
        rows = wh.con.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE delivery_id IN ("
            "  SELECT delivery_id FROM webhook_deliveries"
            "  WHERE status = 'pending' AND next_attempt_at <= ?"
            "  ORDER BY next_attempt_at, created_at LIMIT ?"
            ") AND status = 'pending' AND next_attempt_at <= ? "
            "RETURNING delivery_id, hook_id, url, event, payload, attempts",
            [now + timedelta(seconds=settings.lease_s), now, limit, now],
        ).fetchall()
    except duckdb.TransactionException:  # another pass claimed them first
        return []
    if not rows:
        return []
    hook_ids = sorted({row[1] for row in rows if row[1] is not None})
    hooks = (
        {
            r["hook_id"]: r["secret"]
            for r in wh.query(
                "SELECT hook_id, secret FROM webhooks WHERE active AND list_contains(?, hook_id)",
                [hook_ids],
            )
        }
        if hook_ids
        else {}
    )
    claims, orphans = [], []
    for delivery_id, hook_id, url, event, body, attempts in rows:
        if hook_id is None:
            claims.append(_Claim(delivery_id, url, event, body, attempts, default_secret))
        elif hook_id in hooks:
            claims.append(_Claim(delivery_id, url, event, body, attempts, hooks[hook_id]))
        else:  # deleted while this was queued
            orphans.append(delivery_id)
    if orphans:
        _execute_retrying(
            wh,
            "UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL, "
            "last_error = 'webhook deleted' WHERE list_contains(?, delivery_id)",
            [orphans],
        )
    return claims


def _send(client: httpx.Client, claim: _Claim, timeout_s: float) -> _Outcome:
    """POST one delivery; never raises (a worker must always report an outcome)."""
    timestamp = str(int(time.time()))
    body = claim.body.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"convolens-webhooks/{__version__}",
        "X-Convolens-Event": claim.event,
        "X-Convolens-Delivery": claim.delivery_id,
        "X-Convolens-Timestamp": timestamp,
        "X-Convolens-Signature": sign(claim.secret, timestamp, body),
    }
    try:
        with client.stream(
            "POST", claim.url, content=body, headers=headers, timeout=timeout_s
        ) as response:
            if 200 <= response.status_code < 300:
                return _Outcome(True, response.status_code, None)
            # Read only the start of an error body: enough to debug, bounded in memory.
            snippet = b""
            for chunk in response.iter_bytes():
                snippet += chunk
                if len(snippet) >= _ERROR_CHARS:
                    break
            text = " ".join(snippet.decode("utf-8", "replace").split())
            error = f"HTTP {response.status_code}: {text}".strip(": ")
            return _Outcome(False, response.status_code, error[:_ERROR_CHARS])
    except TargetRefused as exc:  # checked before any connection is made
        log.warning(
            "webhook delivery %s to %s refused: %s", claim.delivery_id, claim.url, exc.message
        )
        return _Outcome(False, None, f"refused: {exc.message}"[:_ERROR_CHARS], final=True)
    except Exception as exc:  # timeouts, refused connections, bad URLs, TLS errors ...
        return _Outcome(False, None, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS])


def _record(wh: Warehouse, claim: _Claim, outcome: _Outcome, settings: DeliverySettings) -> None:
    now = _now()
    attempts = claim.attempts + 1
    if outcome.ok:
        status, next_at, delivered_at = "delivered", None, now
    elif outcome.final:  # logged as refused when it happened
        status, next_at, delivered_at = "failed", None, None
    elif attempts >= settings.max_attempts:
        status, next_at, delivered_at = "failed", None, None
        log.warning(
            "webhook delivery %s to %s failed after %d attempts: %s",
            claim.delivery_id, claim.url, attempts, outcome.error,
        )  # fmt: skip
    else:
        status, delivered_at = "pending", None
        next_at = now + timedelta(seconds=settings.backoff_s(attempts))
    _execute_retrying(
        wh,
        # A hook deleted mid-send stays cancelled unless this attempt got through.
        "UPDATE webhook_deliveries SET attempts = ?, response_status = ?, last_error = ?, "
        "status = CASE WHEN status = 'cancelled' AND ? <> 'delivered' THEN status ELSE ? END, "
        "next_attempt_at = CASE WHEN status = 'cancelled' AND ? <> 'delivered' THEN NULL "
        "ELSE ? END, delivered_at = ? WHERE delivery_id = ?",
        [attempts, outcome.status, outcome.error, status, status, status, next_at, delivered_at,
         claim.delivery_id],
    )  # fmt: skip


def _client(settings: DeliverySettings, policy: TargetPolicy) -> httpx.Client:
    limits = httpx.Limits(max_connections=settings.concurrency * 2)
    # Redirects are not followed: a public receiver could otherwise bounce us inside.
    return httpx.Client(
        timeout=settings.timeout_s,
        follow_redirects=False,
        transport=WebhookTransport(policy, httpx.HTTPTransport(limits=limits)),
    )


def dispatch_due(
    wh: Warehouse,
    *,
    default_secret: str,
    settings: DeliverySettings | None = None,
    client: httpx.Client | None = None,
    policy: TargetPolicy | None = None,
) -> int:
    """One synchronous pass: send up to `batch_size` due deliveries (`concurrency` at a time),
    record each attempt, and return how many were attempted. Targets are checked with
    `policy` (default: public hosts plus CONVOLENS_WEBHOOK_ALLOW_HOSTS); a `client` you pass
    must use a `WebhookTransport` itself."""
    settings = settings or DeliverySettings()
    claims = _claim_due(wh, settings, default_secret, settings.batch_size)
    if not claims:
        return 0
    own = client is None
    http = client or _client(settings, policy or TargetPolicy.from_env())
    try:
        with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="webhook-send") as pool:
            outcomes = list(pool.map(lambda c: _send(http, c, settings.timeout_s), claims))
    finally:
        if own:
            http.close()
    for claim, outcome in zip(claims, outcomes, strict=True):
        _record(wh, claim, outcome, settings)
    return len(claims)


class WebhookDispatcher:
    """Sends due deliveries from a background thread, at most `concurrency` at a time.

    The thread owns a `Warehouse.cursor()` (DuckDB handles are per thread) and does every
    database write itself; sender threads only do HTTP. Deliveries are claimed as sender
    slots free up, so one slow receiver holds one slot, not the whole queue.
    Use `start()` / `stop()` (e.g. in a FastAPI lifespan) or `with WebhookDispatcher(...)`.
    Targets are checked at each send with `policy` (default: public hosts plus
    CONVOLENS_WEBHOOK_ALLOW_HOSTS); a `client` you pass must use a `WebhookTransport`.
    """

    def __init__(
        self,
        wh: Warehouse,
        *,
        default_secret: str,
        settings: DeliverySettings | None = None,
        client: httpx.Client | None = None,
        policy: TargetPolicy | None = None,
    ) -> None:
        self.warehouse = wh
        self.default_secret = default_secret
        self.settings = settings or DeliverySettings()
        self.policy = policy or TargetPolicy.from_env()
        self._client = client
        self._own_client = client is None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        if not self.default_secret:
            log.warning("no default webhook secret: per-job webhooks are signed with an empty key")
        self._stop.clear()
        if self._client is None:
            self._client = _client(self.settings, self.policy)
        db = self.warehouse.cursor()
        self._thread = threading.Thread(
            target=self._run, args=(db,), name="webhook-dispatcher", daemon=True
        )
        self._thread.start()

    def notify(self) -> None:
        """Look for due deliveries now rather than at the next poll (call after enqueue)."""
        self._wake.set()

    def job_finished(self, job: BaseModel) -> list[str]:
        """Queue job.completed / job.failed for the hooks and the job's own `webhook_url`.

        For `JobQueue(on_finished=...)`: called from a job worker thread, so it takes its own
        cursor; it only writes rows, so the job never waits on a receiver.
        """
        data = job.model_dump(mode="json")
        url = data.pop("webhook_url", None)
        event = "job.completed" if data.get("status") == "completed" else "job.failed"
        db = self.warehouse.cursor()
        try:
            ids = enqueue(db, event, data)
            if url:
                ids.append(enqueue_url(db, url, event, data))
        finally:
            db.close()
        self.notify()
        return ids

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, let sends in flight finish and record them, then return."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.settings.timeout_s * 3 if timeout is None else timeout)
            self._thread = None
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> WebhookDispatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, db: Warehouse) -> None:
        settings, client = self.settings, self._client
        assert client is not None
        inflight: dict[Future[_Outcome], _Claim] = {}
        pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="webhook-send")
        try:
            while not self._stop.is_set():
                self._wake.clear()
                wait = settings.poll_interval_s
                try:
                    self._collect(db, inflight, block=False)
                    free = settings.concurrency - len(inflight)
                    if free > 0:
                        for claim in _claim_due(db, settings, self.default_secret, free):
                            future = pool.submit(_send, client, claim, settings.timeout_s)
                            future.add_done_callback(lambda _: self._wake.set())
                            inflight[future] = claim
                        if len(inflight) < settings.concurrency:
                            wait = min(wait, self._until_next_due(db))
                except Exception:  # the loop must outlive a database hiccup
                    log.exception("webhook dispatcher pass failed")
                self._wake.wait(wait)
            self._collect(db, inflight, block=True)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            db.close()

    def _collect(
        self, db: Warehouse, inflight: dict[Future[_Outcome], _Claim], *, block: bool
    ) -> None:
        for future in list(inflight):
            if block or future.done():
                claim = inflight.pop(future)
                _record(db, claim, future.result(), self.settings)

    @staticmethod
    def _until_next_due(db: Warehouse) -> float:
        row = db.con.execute(
            "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'"
        ).fetchone()
        if not row or row[0] is None:
            return float("inf")
        # Not zero: a due row that another pass holds must not turn this into a busy loop.
        return max(0.01, (row[0] - _now()).total_seconds())
