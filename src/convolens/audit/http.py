"""The service's one place that audits requests: an ASGI middleware around the whole app.

Every state-changing request (any POST, PUT, PATCH or DELETE) and every sensitive read
(`SENSITIVE_READS`: raw records, conversation text, the audit log) gets one audit row,
written before the response starts, so a client that reads the log right after an action
finds it. The middleware names the caller itself (the API key, or the dashboard's sign-in
cookie; for a sign-in, the cookie the response sets), so routes need no audit code; a
route that knows more (the id it created, an erasure's receipt) adds it with `annotate`.

Each request gets an id (the client's X-Request-ID when it is a plain token, else a new
one), returned in X-Request-ID and stored with the row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convolens.audit.log import Outcome, Via, record
from convolens.dashboard.session import COOKIE
from convolens.service.auth import Principal, lookup

__all__ = ["SENSITIVE_READS", "AuditMiddleware", "annotate", "request_id"]

log = logging.getLogger("convolens.audit")

STATE_KEY = "audit"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# (method, route template) -> (action, target type, where the target id is: a path
# parameter, or "body:" and the fields of the JSON answer that name what was made).
RULES: dict[tuple[str, str], tuple[str, str | None, str | None]] = {
    ("GET", "/v1/conversations/{conversation_id}/raw"): (
        "raw.read", "conversation", "conversation_id"
    ),
    ("GET", "/v1/conversations/{conversation_id}"): (
        "conversation.read", "conversation", "conversation_id"
    ),
    ("GET", "/v1/conversations/{conversation_id}/utterances"): (
        "conversation.read", "conversation", "conversation_id"
    ),
    ("GET", "/v1/conversations/{conversation_id}/{part}"): (
        "conversation.read", "conversation", "conversation_id"
    ),
    ("GET", "/dashboard/conversations/{ref:path}"): ("conversation.read", "conversation", "ref"),
    ("GET", "/dashboard/scorecards/{ref}"): ("conversation.read", "conversation", "ref"),
    ("GET", "/v1/audit"): ("audit.read", "audit_log", None),
    ("GET", "/dashboard/audit"): ("audit.read", "audit_log", None),
    ("GET", "/dashboard/audit.csv"): ("audit.export", "audit_log", None),
    ("POST", "/v1/conversations"): ("conversation.submit", "conversation", "body:conversation_id"),
    ("POST", "/v1/uploads"): ("conversation.submit", "job", "body:job_id"),
    ("DELETE", "/v1/conversations/{conversation_id}"): (
        "conversation.delete", "conversation", "conversation_id"
    ),
    ("POST", "/v1/keys"): ("key.create", "api_key", "body:key_id"),
    ("DELETE", "/v1/keys/{key_id}"): ("key.revoke", "api_key", "key_id"),
    ("POST", "/v1/definitions/{kind}"): ("{kind}.create", "definition", "body:name,version"),
    ("POST", "/v1/webhooks"): ("webhook.create", "webhook", "body:hook_id"),
    ("DELETE", "/v1/webhooks/{hook_id}"): ("webhook.delete", "webhook", "hook_id"),
    ("POST", "/v1/webhooks/deliveries/{delivery_id}/redeliver"): (
        "webhook.redeliver", "webhook_delivery", "delivery_id"
    ),
    ("POST", "/v1/scorecards/score"): ("scorecard.score", "job", "body:job_id"),
    ("POST", "/v1/scorecards/conversations/{ref}/review"): (
        "scorecard.review", "conversation", "ref"
    ),
    ("POST", "/dashboard/scorecards/{ref}/review"): ("scorecard.review", "conversation", "ref"),
    ("POST", "/v1/analytics/clusters/refresh"): ("clusters.refresh", "job", "body:job_id"),
    # Label review (#17 items 1-3): a verdict, a sample drawn, a taxonomy proposed or
    # activated from the corrections.
    ("POST", "/v1/review/items/{item_id}"): ("label.review", "review_item", "item_id"),
    ("POST", "/v1/review/batches"): ("review.sample", "review_batch", "body:batch_id"),
    ("POST", "/v1/review/taxonomies/propose"): ("taxonomy.propose", "taxonomy", None),
    ("POST", "/v1/review/taxonomies/{version}/validate"): (
        "taxonomy.validate", "taxonomy", "version"
    ),
    ("POST", "/v1/review/taxonomies/{version}/activate"): (
        "taxonomy.activate", "taxonomy", "version"
    ),
    ("POST", "/dashboard/taxonomies/propose"): ("taxonomy.propose", "taxonomy", None),
    ("POST", "/dashboard/taxonomies/{version}/validate"): (
        "taxonomy.validate", "taxonomy", "version"
    ),
    ("POST", "/dashboard/taxonomies/{version}/activate"): (
        "taxonomy.activate", "taxonomy", "version"
    ),
    ("POST", "/dashboard/login"): ("dashboard.login", "session", None),
    ("POST", "/dashboard/logout"): ("dashboard.logout", "session", None),
    ("POST", "/v1/erasure"): ("erasure", "person", None),
    # Enrolled voices (#14): the name is the target; the print never enters the log.
    ("POST", "/v1/speakers"): ("speaker.enrol", "speaker_voice", "body:name"),
    ("DELETE", "/v1/speakers/{name}"): ("speaker.delete", "speaker_voice", "name"),
    ("POST", "/v1/retention/run"): ("retention.run", "warehouse", None),
    ("POST", "/dashboard/erasure"): ("erasure", "person", None),
    ("POST", "/dashboard/retention/run"): ("retention.run", "warehouse", None),
}  # fmt: skip
SENSITIVE_READS = frozenset(key for key in RULES if key[0] == "GET")
# Review routes (#17 item 1): whatever their exact paths, a write under them is a review.
_REVIEW_PREFIXES = ("/v1/review", "/dashboard/review")
# Not audited here: the CLI bridge (each command records itself), read-only validation.
_SKIP = frozenset({("POST", "/_local/cli"), ("POST", "/v1/scorecards/validate")})


def annotate(
    request: Request,
    *,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    recorded: bool = False,
) -> None:
    """Add what a route knows to its request's audit row (counts and ids only); with
    `recorded`, the library call the route made has written the row (an erasure with its
    receipt) and the middleware adds none unless the request fails after all."""
    note: dict[str, Any] = dict(getattr(request.state, STATE_KEY, None) or {})
    if recorded:
        note["recorded"] = True
    for name, value in (("action", action), ("target_type", target_type),
                        ("target_id", target_id)):  # fmt: skip
        if value is not None:
            note[name] = value
    if details:
        note["details"] = {**note.get("details", {}), **details}
    setattr(request.state, STATE_KEY, note)


def request_id(request: Request) -> str | None:
    """The id the middleware gave this request (also in the X-Request-ID response header)."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _outcome(status: int) -> Outcome:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    return "error" if status >= 500 else "rejected"


def _rule(method: str, template: str) -> tuple[str, str | None, str | None] | None:
    if (method, template) in _SKIP:
        return None
    if (method, template) in RULES:
        return RULES[(method, template)]
    if method in _SAFE:
        return None
    if template.startswith(_REVIEW_PREFIXES):
        return ("label.review", "label", None)
    # Any other state-changing route: audited under its method and path template.
    return (f"{method.lower()} {template}", None, None)


def _hashed(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


class AuditMiddleware:
    """Pure ASGI (no buffering of bodies): records at `http.response.start`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False
        held: list[Message] = []  # a JSON answer whose fields name the target

        async def send_audited(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
                if _wants_body(scope):
                    held.append(message)
                    return
                await self._audit(scope, int(message["status"]), headers)
            elif held and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body"):
                    return
                start, body = held[0], b"".join(m.get("body", b"") for m in held[1:])
                held.clear()
                await self._audit(scope, int(start["status"]), start["headers"], body)
                await send(start)
                message = {"type": "http.response.body", "body": body, "more_body": False}
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:
            if not started:  # the server answers 500 outside this middleware
                await self._audit(scope, 500, [])
            raise

    async def _audit(
        self, scope: Scope, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None)
        method = scope.get("method", "GET")
        if not isinstance(template, str):
            return  # no route matched (a 404 for an unknown path): nothing to audit
        rule = _rule(method, template)
        if rule is None:
            return
        try:
            await run_in_threadpool(self._write, scope, status, headers, template, rule, body)
        except Exception:  # an audit failure is logged loudly, never turned into a 500
            log.exception("could not write the audit row for %s %s", method, template)

    def _write(
        self,
        scope: Scope,
        status: int,
        headers: list[tuple[bytes, bytes]],
        template: str,
        rule: tuple[str, str | None, str | None],
        body: bytes,
    ) -> None:
        action, target_type, param = rule
        params: dict[str, Any] = scope.get("path_params") or {}
        note: dict[str, Any] = scope.get("state", {}).get(STATE_KEY) or {}
        if note.get("recorded") and status < 400:
            return
        action = note.get("action") or (action.format(**params) if "{" in action else action)
        target = note.get("target_id") or _target(param, params, body)
        outcome = _outcome(status)
        if target is not None and outcome != "ok" and "target_id" not in note:
            # A refused or unknown id is whatever the caller typed (it could be anything,
            # an email address even): keep only its hash.
            target = _hashed(target)
        via: Via = "dashboard" if template.startswith("/dashboard") else "api"
        service = scope["app"].state.service
        db = service.db()
        try:
            actor = _actor(db, scope, headers, via)
            record(
                db, action, actor=actor, via=via, target_type=note.get("target_type") or
                target_type, target_id=target, outcome=outcome, status=status,
                request_id=scope["state"].get("request_id"), route=f"{scope['method']} {template}",
                details=note.get("details"),
            )  # fmt: skip
        finally:
            db.close()


def _wants_body(scope: Scope) -> bool:
    template = getattr(scope.get("route"), "path", None)
    rule = RULES.get((scope.get("method", "GET"), template or ""))
    return bool(rule and rule[2] and rule[2].startswith("body:"))


def _target(where: str | None, params: Mapping[str, Any], body: bytes) -> str | None:
    """The target id: a path parameter, or fields of a JSON answer joined by ':'."""
    if where is None:
        return None
    if not where.startswith("body:"):
        return str(params[where]) if where in params else None
    try:
        answer = json.loads(body) if body else None
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    values = [answer.get(f) for f in where[len("body:") :].split(",")]
    return ":".join(str(v) for v in values) if all(v is not None for v in values) else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _actor(db: Any, scope: Scope, headers: list[tuple[bytes, bytes]], via: Via) -> Principal | None:
    """Who sent the request: the API key presented, the dashboard's sign-in cookie, or
    (for a sign-in) the cookie this response sets. None when there is no valid key."""
    key = None
    auth = _header(scope, b"authorization") or ""
    if auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    key = key or _header(scope, b"x-api-key")
    if via == "dashboard":
        jar: SimpleCookie = SimpleCookie()
        jar.load(_header(scope, b"cookie") or "")
        key = jar[COOKIE].value if COOKIE in jar else key
        for name, value in headers:  # a sign-in: the key the response hands the browser
            if name.lower() == b"set-cookie" and value.startswith(COOKIE.encode() + b"="):
                set_now: SimpleCookie = SimpleCookie()
                set_now.load(value.decode("latin-1"))
                key = set_now[COOKIE].value or key  # empty: a sign-out clearing it
    return lookup(db, key.strip()) if key else None
