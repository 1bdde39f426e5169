"""Webhooks: registered hooks, event matching, and durable, signed delivery with retries.

Why this shape: the service tells other systems (a CRM, Slack, a customer's job runner)
that something happened -- a job finished, a tracker fired, a churn signal crossed a
threshold -- without slowing the request or worker that noticed it, and without losing the
notice when the server restarts or the receiver is down. So `enqueue` only writes rows to
`webhook_deliveries` (an outbox, no network), and a `WebhookDispatcher` thread
(`webhook_dispatch.py`) sends them:
the rows are the queue, so a server started later delivers what was still pending.

Delivery is at least once: a process killed between the POST and the status update sends
that delivery again once its lease (`DeliverySettings.lease_s`) runs out. Receivers dedupe
on `X-Convolens-Delivery`. A 2xx answer is success (redirects are not followed); anything
else -- another status, a timeout, a refused connection -- is retried after
`backoff_base_s * 2**(attempt-1)` (capped) until `max_attempts`, then the row is `failed`.
Statuses: pending -> delivered | failed; `cancelled` when the hook is deleted first.

Verifying a delivery (receiver side). Every POST carries
    X-Convolens-Event: tracker.hit
    X-Convolens-Delivery: dl_...            (the same on every retry of one delivery)
    X-Convolens-Timestamp: 1732222222        (unix seconds when this attempt was sent)
    X-Convolens-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>
Recompute the HMAC over the raw body bytes exactly as received (not re-serialised JSON),
compare in constant time, and refuse timestamps more than a few minutes away from now
(a replayed request): `verify_signature` does exactly that. The secret is the hook's, shown
once at creation; per-job webhooks (`enqueue_url`) use the server's default secret.

Targets: only public http(s) hosts, checked at registration (`create_webhook(policy=...)`,
`check_target`) and again after DNS resolution at every delivery (`webhook_targets`).

Events and the payload keys rules and the Slack summary read (other keys pass through):
    job.completed / job.failed  job_id, kind, status, conversation_id, result | error
    alert                       alert (name), message, conversation_id
    tracker.hit                 conversation_id, tracker, text (the matching words), confidence
    signal.churn_risk           conversation_id, signal ("churn_risk"), confidence, reasons
    sentiment.negative_streak   conversation_id, streak (customer messages in a row), text
    drift                       component, metric, score, threshold, recent/reference windows
    data_health                 source, check, field, score, message, run_id (an ingest run)
Any payload may add `url` (a link to the conversation), `queue`, `agent`, `channel`.
The JSON body is {"event", "delivery_id", "created_at", "data": payload}; the Slack body is
{"text": summary, "blocks": [section, context]} for an incoming-webhook URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from convolens.service.webhook_targets import TargetPolicy, check_syntax
from convolens.store.warehouse import Warehouse

__all__ = [
    "ALL_EVENTS",
    "EVENTS",
    "Delivery",
    "DeliverySettings",
    "DeliveryStatus",
    "Webhook",
    "WebhookCreate",
    "WebhookRule",
    "check_target",
    "check_url",
    "create_webhook",
    "delete_webhook",
    "enqueue",
    "enqueue_url",
    "get_delivery",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "redeliver",
    "render_body",
    "sign",
    "verify_signature",
]

log = logging.getLogger("convolens.service.webhooks")

EVENTS: tuple[str, ...] = (
    "job.completed",
    "job.failed",
    "alert",
    "tracker.hit",
    "signal.churn_risk",
    "sentiment.negative_streak",
    "drift",
    "data_health",
)
ALL_EVENTS = "*"
PayloadFormat = Literal["json", "slack"]
DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]
# Slack refuses a section text over 3000 characters; quotes are cut well before that.
_SLACK_QUOTE_CHARS = 300
_ERROR_CHARS = 300


def _now() -> datetime:
    return datetime.now(UTC)


def check_url(url: str) -> str:
    """`url` if its form is acceptable (http(s), a host, no user:password@, IPv4 written
    a.b.c.d), else `TargetRefused` (a ValueError). No DNS: see `check_target`."""
    check_syntax(url)
    return url


def check_target(url: str, policy: TargetPolicy) -> str:
    """`url` if `policy` lets webhooks post there now (every address its host resolves to
    is public or allowed), else `TargetRefused` with the API's error code. For a hook's or a
    job's URL when it is given; deliveries are checked again when sent."""
    policy.resolve(url)
    return url


def _check_event(event: str) -> str:
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; known: {', '.join(EVENTS)}")
    return event


def _dumps(value: Any) -> str:
    # Compact and NaN-free: this text is the exact body sent and signed, and must be JSON.
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON-serialisable in a webhook payload: {type(value).__name__}")


# -- models ---------------------------------------------------------------------------------
class WebhookRule(BaseModel):
    """Filters on the event payload; every condition given must hold. A payload without the
    key a condition reads does not match, so a rule only ever narrows what a hook receives.
    Unknown keys are errors, so a typo does not silently match nothing (or everything)."""

    model_config = ConfigDict(extra="forbid")

    tracker: str | list[str] | None = None
    signal: str | list[str] | None = None
    alert: str | list[str] | None = None
    queue: str | list[str] | None = None
    agent: str | list[str] | None = None
    channel: str | list[str] | None = None
    # drift and data_health: which component / source / check, and how far off (the
    # payload's `score`: a PSI, a fill-rate drop, a volume ratio, a cosine distance).
    component: str | list[str] | None = None
    source: str | list[str] | None = None
    check: str | list[str] | None = None
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    min_streak: int | None = Field(default=None, ge=1)
    min_score: float | None = Field(default=None, ge=0.0)

    def matches(self, payload: dict[str, Any]) -> bool:
        for key in (
            "tracker", "signal", "alert", "queue", "agent", "channel", "component", "source",
            "check",
        ):  # fmt: skip
            wanted = getattr(self, key)
            if wanted is None:
                continue
            allowed = [wanted] if isinstance(wanted, str) else wanted
            if payload.get(key) not in allowed:
                return False
        for key, floor in (
            ("confidence", self.min_confidence),
            ("streak", self.min_streak),
            ("score", self.min_score),
        ):
            if floor is None:
                continue
            value = payload.get(key)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < floor:
                return False
        return True


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Checked by `create_webhook` (form, and where it resolves to), not here: the error names
    # its own code (invalid_webhook_url / webhook_target_refused), not a schema problem.
    url: str = Field(max_length=2048)
    events: list[str] = Field(min_length=1)
    rule: WebhookRule | None = None
    payload_format: PayloadFormat = "json"
    # Generated when absent; the receiver needs it to check signatures, so it is shown once.
    secret: str | None = Field(default=None, min_length=16, max_length=256)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        for event in value:
            if event != ALL_EVENTS:
                _check_event(event)
        return list(dict.fromkeys(value))


class Webhook(BaseModel):
    """A registered hook as stored; the secret is never part of it (see `create_webhook`)."""

    hook_id: str
    url: str
    events: list[str]
    rule: WebhookRule | None = None
    payload_format: PayloadFormat
    active: bool
    created_by: str | None = None
    created_at: datetime


class Delivery(BaseModel):
    """One row of the delivery log: what was (or will be) sent where, and how it went."""

    delivery_id: str
    hook_id: str | None = None
    url: str
    event: str
    payload: Any
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = None
    response_status: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class DeliverySettings(BaseModel):
    """How the dispatcher sends. Defaults retry after 1, 2, 4, 8, 16 s (6 attempts)."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=6, ge=1)
    backoff_base_s: float = Field(default=1.0, gt=0.0)
    backoff_cap_s: float = Field(default=300.0, gt=0.0)
    timeout_s: float = Field(default=5.0, gt=0.0)
    concurrency: int = Field(default=4, ge=1, le=64)
    batch_size: int = Field(default=50, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0.0)
    # A claimed delivery is hidden from other passes this long; if the process dies
    # mid-send, the delivery is due again afterwards (hence at-least-once).
    lease_s: float = Field(default=60.0, gt=0.0)

    @model_validator(mode="after")
    def _lease_outlasts_send(self) -> DeliverySettings:
        if self.lease_s <= 2 * self.timeout_s:
            raise ValueError("lease_s must exceed twice timeout_s, or a slow send is repeated")
        return self

    def backoff_s(self, attempts: int) -> float:
        """Delay before the next try after `attempts` failed attempts."""
        return float(min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(0, attempts - 1)))


# -- signatures -----------------------------------------------------------------------------
def sign(secret: str, timestamp: str, body: bytes | str) -> str:
    """The `X-Convolens-Signature` value for one attempt."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes | str,
    header: str,
    tolerance_s: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """True if `header` signs `body` at `timestamp` with `secret`, within `tolerance_s` of now.

    Pass the raw request body and the X-Convolens-Timestamp / X-Convolens-Signature headers.
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    if not isinstance(header, str) or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


# -- payloads ---------------------------------------------------------------------------------
def _slack_escape(text: str) -> str:
    # Slack reads <...> as links/mentions; redacted text is full of tags like <PERSON>.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _quote(value: Any) -> str:
    text = " ".join(str(value).split())
    if len(text) > _SLACK_QUOTE_CHARS:
        text = text[: _SLACK_QUOTE_CHARS - 1] + "…"
    return "> " + _slack_escape(text)


def _slack_summary(event: str, data: dict[str, Any]) -> tuple[str, str]:
    """(plain one-line summary for notifications, mrkdwn detail for the message)."""
    cid = data.get("conversation_id")
    where = f" in conversation {cid}" if cid else ""
    conf = data.get("confidence")
    pct = f" ({conf:.0%})" if isinstance(conf, int | float) and not isinstance(conf, bool) else ""
    quote = data.get("text")
    if event in ("job.completed", "job.failed"):
        verb = "completed" if event == "job.completed" else "failed"
        summary = f"Job {data.get('job_id', '?')} ({data.get('kind', 'job')}) {verb}{where}"
        error = data.get("error")
        if event == "job.failed" and error:
            quote = error.get("message", error) if isinstance(error, dict) else error
    elif event == "alert":
        name = data.get("alert") or "alert"
        message = data.get("message")
        summary = f"Alert {name}{where}" + (f": {message}" if message else "")
        quote = None
    elif event == "tracker.hit":
        summary = f"Tracker {data.get('tracker', '?')} matched{where}{pct}"
    elif event == "signal.churn_risk":
        summary = f"Churn risk{pct}{where}"
        reasons = data.get("reasons")
        if isinstance(reasons, list) and reasons and not quote:
            quote = "; ".join(str(r) for r in reasons[:3])
    elif event == "sentiment.negative_streak":
        summary = f"{data.get('streak', 'Several')} negative customer messages in a row{where}"
    elif event == "drift":
        summary = (
            f"Drift in {data.get('component', '?')}: {data.get('metric', 'score')} "
            f"{data.get('score', '?')} over {data.get('threshold', '?')}"
        )
    elif event == "data_health":
        summary = f"Data health ({data.get('source', '?')}): {data.get('message', '')}"
    else:  # an event added to EVENTS without a summary still gets a readable message
        summary = f"{event}{where}"
    detail = f"*{_slack_escape(summary)}*"
    if quote:
        detail += "\n" + _quote(quote)
    url = data.get("url")
    if isinstance(url, str) and urlsplit(url).scheme in ("http", "https"):
        detail += f"\n<{_slack_escape(url)}|Open in convolens>"
    return summary, detail


def render_body(
    payload_format: PayloadFormat,
    event: str,
    delivery_id: str,
    created_at: datetime,
    data: dict[str, Any],
) -> str:
    """The exact JSON text POSTed (and signed) for one delivery."""
    if payload_format == "json":
        return _dumps(
            {
                "event": event,
                "delivery_id": delivery_id,
                "created_at": created_at.isoformat(),
                "data": data,
            }
        )
    summary, detail = _slack_summary(event, data)
    context = f"`{event}` · delivery `{delivery_id}` · {created_at:%Y-%m-%d %H:%M:%S} UTC"
    return _dumps(
        {
            "text": summary,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": detail}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }
    )


def _execute_retrying(wh: Warehouse, sql: str, params: Sequence[Any]) -> list[Any]:
    # Two handles updating the same row at once conflict in DuckDB (optimistic concurrency):
    # the loser retries, since these updates are small and idempotent.
    for attempt in range(8):
        try:
            return wh.con.execute(sql, list(params)).fetchall()
        except duckdb.TransactionException:
            if attempt == 7:
                raise
            time.sleep(0.01 * (attempt + 1))
    return []


# -- store ----------------------------------------------------------------------------------
_HOOK_COLUMNS = "hook_id, url, events, rule, payload_format, active, created_by, created_at"


def _webhook(row: dict[str, Any]) -> Webhook:
    rule = json.loads(row["rule"]) if row["rule"] else None
    return Webhook(**{**row, "rule": rule})


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(**{**row, "payload": json.loads(row["payload"])})


def create_webhook(
    wh: Warehouse,
    body: WebhookCreate,
    created_by: str | None = None,
    *,
    policy: TargetPolicy | None = None,
) -> tuple[Webhook, str]:
    """Store an active hook; returns it and its signing secret (the only time it is shown).
    `TargetRefused` if its URL's form is refused or, given a `policy` (the API passes the
    server's), if it resolves to an address the policy refuses."""
    check_url(body.url)
    if policy is not None:
        check_target(body.url, policy)
    secret = body.secret or secrets.token_hex(32)
    hook = Webhook(
        hook_id=f"wh_{secrets.token_hex(8)}",
        url=body.url,
        events=body.events,
        rule=body.rule,
        payload_format=body.payload_format,
        active=True,
        created_by=created_by,
        created_at=_now(),
    )
    rule = _dumps(body.rule.model_dump(exclude_none=True)) if body.rule else None
    wh.con.execute(
        f"INSERT INTO webhooks ({_HOOK_COLUMNS}, secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [hook.hook_id, hook.url, hook.events, rule, hook.payload_format, True, created_by,
         hook.created_at, secret],
    )  # fmt: skip
    return hook, secret


def get_webhook(wh: Warehouse, hook_id: str) -> Webhook | None:
    rows = wh.query(f"SELECT {_HOOK_COLUMNS} FROM webhooks WHERE hook_id = ?", [hook_id])
    return _webhook(rows[0]) if rows else None


def list_webhooks(wh: Warehouse, *, include_inactive: bool = False) -> list[Webhook]:
    where = "" if include_inactive else "WHERE active"
    rows = wh.query(f"SELECT {_HOOK_COLUMNS} FROM webhooks {where} ORDER BY created_at, hook_id")
    return [_webhook(row) for row in rows]


def delete_webhook(wh: Warehouse, hook_id: str) -> bool:
    """Deactivate a hook (its log stays) and cancel what it has pending; False if unknown
    or already inactive."""
    found = wh.con.execute(
        "UPDATE webhooks SET active = false WHERE hook_id = ? AND active RETURNING hook_id",
        [hook_id],
    ).fetchall()
    if found:
        _execute_retrying(
            wh,
            "UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL, "
            "last_error = coalesce(last_error, 'webhook deleted') "
            "WHERE hook_id = ? AND status = 'pending'",
            [hook_id],
        )
    return bool(found)


def list_deliveries(
    wh: Warehouse,
    hook_id: str | None = None,
    *,
    status: DeliveryStatus | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """Newest first."""
    sql = "SELECT * FROM webhook_deliveries WHERE true"
    params: list[Any] = []
    if hook_id is not None:
        sql += " AND hook_id = ?"
        params.append(hook_id)
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    sql += " ORDER BY created_at DESC, delivery_id LIMIT ?"
    params.append(max(0, int(limit)))
    return [_delivery(row) for row in wh.query(sql, params)]


def get_delivery(wh: Warehouse, delivery_id: str) -> Delivery | None:
    rows = wh.query("SELECT * FROM webhook_deliveries WHERE delivery_id = ?", [delivery_id])
    return _delivery(rows[0]) if rows else None


def redeliver(wh: Warehouse, delivery_id: str) -> bool:
    """Send a failed (or delivered) delivery again, with a fresh set of attempts; the body,
    id and event stay the same so the receiver can dedupe. False if unknown, pending, or its
    hook was deleted."""
    found = wh.con.execute(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ? "
        "WHERE delivery_id = ? AND status IN ('failed', 'delivered') AND (hook_id IS NULL "
        "OR hook_id IN (SELECT hook_id FROM webhooks WHERE active)) RETURNING delivery_id",
        [_now(), delivery_id],
    ).fetchall()
    return bool(found)


def _insert_deliveries(wh: Warehouse, rows: list[list[Any]]) -> None:
    if rows:
        wh.con.executemany(
            "INSERT INTO webhook_deliveries (delivery_id, hook_id, url, event, payload, status, "
            "attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            rows,
        )


def enqueue(wh: Warehouse, event: str, payload: dict[str, Any]) -> list[str]:
    """Queue `event` for every active hook it matches; returns the new delivery ids.

    Only writes rows (no network), so it is safe to call from a request or a job worker;
    a running dispatcher sends them within its poll interval (or at once after `notify()`).
    """
    _check_event(event)
    _dumps(payload)  # fail here, in the caller, rather than in the dispatcher
    hooks = wh.query(
        "SELECT hook_id, url, rule, payload_format FROM webhooks WHERE active "
        "AND (list_contains(events, ?) OR list_contains(events, ?)) ORDER BY created_at",
        [event, ALL_EVENTS],
    )
    now = _now()
    rows, ids = [], []
    for hook in hooks:
        rule = WebhookRule.model_validate_json(hook["rule"]) if hook["rule"] else None
        if rule is not None and not rule.matches(payload):
            continue
        delivery_id = f"dl_{uuid.uuid4().hex}"
        body = render_body(hook["payload_format"], event, delivery_id, now, payload)
        rows.append([delivery_id, hook["hook_id"], hook["url"], event, body, now, now])
        ids.append(delivery_id)
    _insert_deliveries(wh, rows)
    return ids


def enqueue_url(wh: Warehouse, url: str, event: str, payload: dict[str, Any]) -> str:
    """Queue a one-off JSON delivery to `url` (a job's own webhook, checked with
    `check_target` when the job was submitted, and again when sent): no hook row, no rule,
    signed with the dispatcher's default secret. Returns the delivery id."""
    check_url(url)
    _check_event(event)
    now = _now()
    delivery_id = f"dl_{uuid.uuid4().hex}"
    body = render_body("json", event, delivery_id, now, payload)
    _insert_deliveries(wh, [[delivery_id, None, url, event, body, now, now]])
    return delivery_id
