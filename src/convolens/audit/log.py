"""The audit log's one write path (`record`) and its reads (`query_audit`, `purge_audit`).

Append-only by construction: this module is the only code that touches `audit_log`, and
it has no UPDATE and no DELETE except `purge_audit`, the audit log's own retention, which
records itself before it returns. Rows say who (key id, name, role, or the local user for
the CLI), what (an action from `ACTIONS`), which target (an id), when, through what (api,
dashboard, cli, scheduler), the request id and the outcome; `details` holds counts and
ids only: keys that could carry text or secrets are refused (`_clean_details`).
"""

from __future__ import annotations

import getpass
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import duckdb
from pydantic import BaseModel, Field

from convolens.client.governance_models import AuditEntry
from convolens.store.warehouse import Warehouse, now_utc

__all__ = [
    "ACTIONS",
    "Actor",
    "AuditEntry",
    "AuditFilter",
    "Outcome",
    "cli_actor",
    "purge_audit",
    "query_audit",
    "record",
]

log = logging.getLogger("convolens.audit")

Outcome = Literal["ok", "denied", "not_found", "rejected", "error"]
Via = Literal["api", "dashboard", "cli", "scheduler", "library"]

# The actions the product records (a new one is fine; these are the documented ones).
ACTIONS: dict[str, str] = {
    "dashboard.login": "signed in to the dashboard (a failed sign-in has no actor)",
    "dashboard.logout": "signed out of the dashboard",
    "raw.read": "read a conversation's raw (unredacted) records",
    "conversation.read": "read a conversation's text or labels",
    "conversation.submit": "submitted a conversation or an upload",
    "conversation.delete": "deleted a conversation (details: rows removed per table)",
    "export": "exported a layer of the warehouse",
    "key.create": "created an API key",
    "key.revoke": "revoked an API key",
    "taxonomy.create": "stored (and maybe activated) a taxonomy version",
    "trackers.create": "stored (and maybe activated) a tracker set version",
    "webhook.create": "registered a webhook",
    "webhook.delete": "removed a webhook",
    "webhook.redeliver": "redelivered a webhook delivery",
    "scorecard.score": "scored conversations against a scorecard",
    "scorecard.review": "recorded a human QA review of a conversation's scorecard",
    "label.review": "reviewed a label (accept, correct, skip)",
    "review.sample": "drew a sample of labels for review",
    "taxonomy.propose": "proposed a taxonomy version from reviewed corrections",
    "taxonomy.validate": "showed and accepted a proposed taxonomy's dev figures",
    "taxonomy.activate": "activated a taxonomy version",
    "clusters.refresh": "recomputed the problem clusters",
    "audit.read": "read the audit log",
    "audit.export": "exported the audit log",
    "audit.retention": "deleted audit rows past the audit log's own retention",
    "retention.run": "applied the retention policy (details: rows removed per layer)",
    "erasure": "erased a person (details: the receipt, counts and hashed ids only)",
}

# Keys a detail may not have: they name what an audit row must never hold.
_FORBIDDEN_KEYS = ("text", "secret", "password", "token", "payload", "body", "email", "phone")
_MAX_DETAIL_STRING = 200


class _HasIdentity(Protocol):
    """An API principal (service.auth.Principal) or an `Actor`."""

    key_id: str
    name: str

    @property
    def role(self) -> Any: ...


@dataclass(frozen=True)
class Actor:
    key_id: str | None
    name: str
    role: str


def cli_actor() -> Actor:
    """The person at the command line: the local account (whoever can open the warehouse
    file can do anything with it, so their role is 'local')."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "unknown"
    return Actor(key_id=None, name=user, role="local")


class AuditFilter(BaseModel):
    """Which rows: every given field must match. `action` ending in '.' (or '*') is a
    prefix ('key.' -> key.create and key.revoke); `actor` is a key id or a name."""

    action: str | None = Field(default=None, max_length=100)
    actor: str | None = Field(default=None, max_length=200)
    target_id: str | None = Field(default=None, max_length=300)
    outcome: Outcome | None = None
    via: Via | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=500, ge=1, le=100_000)


def _clean_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Counts, ids and short labels only: a key that names text or a secret is dropped
    (with a warning, never with the value), long strings are cut."""

    def clean(value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return value[:_MAX_DETAIL_STRING]
        if isinstance(value, Mapping) and depth < 4:
            return {str(k): clean(v, depth + 1) for k, v in value.items() if not _forbidden(str(k))}
        if isinstance(value, list | tuple) and depth < 4:
            return [clean(v, depth + 1) for v in value[:1000]]
        if value is None or isinstance(value, bool | int | float):
            return value
        return str(value)[:_MAX_DETAIL_STRING]

    out = clean(dict(details or {}))
    dropped = [k for k in (details or {}) if _forbidden(str(k))]
    if dropped:
        log.warning("audit details %s left out: an audit row holds no text or secret", dropped)
    return out if isinstance(out, dict) else {}


def _forbidden(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _FORBIDDEN_KEYS)


def record(
    wh: Warehouse,
    action: str,
    *,
    actor: _HasIdentity | Actor | None = None,
    via: Via = "library",
    target_type: str | None = None,
    target_id: str | None = None,
    outcome: Outcome = "ok",
    status: int | None = None,
    request_id: str | None = None,
    route: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """Append one row to the audit log; returns its id. Retries a write conflict (an
    erase rewriting the table at that moment) rather than losing the row."""
    role = getattr(actor, "role", None) if actor is not None else None
    audit_id = f"au_{uuid.uuid4().hex}"
    row = [
        audit_id,
        now_utc(),
        getattr(actor, "key_id", None),
        getattr(actor, "name", None),
        getattr(role, "value", role),
        via,
        action,
        target_type,
        target_id[:300] if target_id else target_id,
        outcome,
        status,
        request_id,
        route,
        json.dumps(_clean_details(details), default=str),
    ]
    for attempt in range(20):
        try:
            wh.con.execute(
                "INSERT INTO audit_log (audit_id, occurred_at, actor_key_id, actor_name, "
                "actor_role, via, action, target_type, target_id, outcome, status, request_id, "
                "route, details) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return audit_id
        except duckdb.TransactionException:
            if attempt == 19:
                raise
            time.sleep(0.05 * (attempt + 1))
    return audit_id  # pragma: no cover - the loop returns or raises


def query_audit(wh: Warehouse, where: AuditFilter | None = None) -> list[AuditEntry]:
    """Rows matching `where`, newest first."""
    where = where or AuditFilter()
    conditions: list[str] = ["TRUE"]
    params: list[Any] = []
    if where.action:
        if where.action.endswith((".", "*")):
            conditions.append("starts_with(action, ?)")
            params.append(where.action.rstrip("*"))
        else:
            conditions.append("action = ?")
            params.append(where.action)
    if where.actor:
        conditions.append("(actor_key_id = ? OR actor_name = ?)")
        params += [where.actor, where.actor]
    for column in ("target_id", "outcome", "via"):
        value = getattr(where, column)
        if value:
            conditions.append(f"{column} = ?")
            params.append(value)
    if where.since:
        conditions.append("occurred_at >= ?")
        params.append(where.since)
    if where.until:
        conditions.append("occurred_at < ?")
        params.append(where.until)
    rows = wh.query(
        "SELECT * FROM audit_log WHERE " + " AND ".join(conditions) + " ORDER BY occurred_at DESC, "
        "audit_id DESC LIMIT ?",
        [*params, where.limit],
    )
    for r in rows:
        r["details"] = json.loads(r["details"]) if r["details"] else {}
    return [AuditEntry(**r) for r in rows]


def purge_audit(
    wh: Warehouse,
    keep_days: int,
    *,
    actor: _HasIdentity | Actor | None = None,
    via: Via = "library",
) -> int:
    """The audit log's own retention: delete rows older than `keep_days`, then record how
    many went (that row is newer than the cut, so the purge is never itself purged by the
    same run). The only delete of audit rows anywhere in convolens."""
    if keep_days < 1:
        raise ValueError("audit retention must keep at least 1 day")
    cut = now_utc() - timedelta(days=keep_days)
    found = wh.query("SELECT count(*) AS n FROM audit_log WHERE occurred_at < ?", [cut])
    removed = int(found[0]["n"])
    if removed:
        wh.con.execute("DELETE FROM audit_log WHERE occurred_at < ?", [cut])
    record(
        wh,
        "audit.retention",
        actor=actor,
        via=via,
        target_type="audit_log",
        details={"removed": removed, "keep_days": keep_days, "before": cut.isoformat()},
    )
    return removed
