"""Reading a conversation's results for the API (and, later, the dashboard).

Parts map to label names; every label comes with its lineage (component, version, model,
taxonomy version, run) and evidence spans, as stored. Access is decided here too: an
agent key sees only conversations whose agent it is.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from convolens.service.auth import Principal, Role
from convolens.service.errors import ApiError, conflict
from convolens.store.warehouse import Warehouse

__all__ = [
    "PARTS",
    "check_writable",
    "conversation_filter_sql",
    "find_conversation",
    "labels",
    "may_write",
    "part",
]

# API part -> the label names it gathers.
PARTS: dict[str, tuple[str, ...]] = {
    # What kind of conversation (support, sales, meeting, ...): the other parts' context.
    "type": ("conversation.type",),
    "sentiment": (
        "sentiment.utterance",
        "sentiment.participant",
        "sentiment.conversation",
        "emotion",
    ),
    "intents": ("intent.utterance", "intent.primary"),
    "topics": ("topic.keyphrase", "topic.conversation"),
    "entities": ("entity.mention", "entity.summary", "participant.affiliation"),
    "questions": ("question", "dialogue_act"),
    "action_items": ("action_item", "follow_up"),
    "trackers": ("tracker.match",),
    "signals": ("signal",),
    "resolution": ("resolution.status", "escalation"),
    "summary": ("summary.extractive", "summary.abstractive"),
    "pii": ("pii.entity", "pii.summary"),
}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def find_conversation(db: Warehouse, principal: Principal, ref: str) -> dict[str, Any]:
    """The current version's header of a conversation (by id or source id), if this key
    may see it; 404 otherwise. An agent's lookup only ever sees their own conversations,
    so neither the 404 nor the 409 for an ambiguous source id tells them that another
    agent's conversation exists."""
    mine = " AND agent = ?" if principal.role == Role.agent else ""
    rows = db.query(
        "SELECT * FROM conversations_current WHERE (conversation_id = ? OR source_id = ?)"
        f"{mine} ORDER BY conversation_id = ? DESC LIMIT 2",
        [ref, ref, *([principal.agent] if mine else []), ref],
    )
    if len(rows) > 1 and rows[0]["conversation_id"] != ref:
        raise ApiError(
            409, "ambiguous_id", f"{ref!r} names several conversations: use the conversation_id"
        )
    if not rows:
        raise ApiError(404, "conversation_not_found", f"no conversation {ref!r}")
    row = _plain(rows[0])
    row["meta"] = _json(row.get("meta"))
    row["participants"] = [
        {**_plain(p), "external_ids": _json(p["external_ids"])}
        for p in db.query(
            "SELECT participant_id, name, role, email, external_ids FROM participants_current "
            "WHERE conversation_id = ? ORDER BY position",
            [row["conversation_id"]],
        )
    ]
    return row


def may_write(db: Warehouse, role: Role, agent: str | None, conversation_id: str) -> bool:
    """Whether a key may store a new version of `conversation_id`: admins and analysts
    may; an agent only if it is new or already theirs; any other role never."""
    if role in (Role.admin, Role.analyst):
        return True
    if role != Role.agent:
        return False
    rows = db.query(
        "SELECT agent FROM conversations_current WHERE conversation_id = ?", [conversation_id]
    )
    return not rows or (agent is not None and rows[0]["agent"] == agent)


def check_writable(db: Warehouse, principal: Principal, conversation_id: str) -> None:
    """409 (and nothing more: see `errors.conflict`) unless this key may write it."""
    if not may_write(db, principal.role, principal.agent, conversation_id):
        raise conflict()


def utterances(db: Warehouse, conversation_id: str, *, words: bool = False) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT utterance_id, seq, participant_id, text, start_s, end_s, sent_at, "
        "channel_index, internal FROM utterances_current WHERE conversation_id = ? ORDER BY seq",
        [conversation_id],
    )
    out = [_plain(r) for r in rows]
    if words:
        by_utterance: dict[str, list[dict[str, Any]]] = {}
        for w in db.query(
            "SELECT utterance_id, text, start_s, end_s, confidence FROM words_current "
            "WHERE conversation_id = ? ORDER BY utterance_id, word_index",
            [conversation_id],
        ):
            by_utterance.setdefault(w.pop("utterance_id"), []).append(w)
        for u in out:
            u["words"] = by_utterance.get(u["utterance_id"], [])
    return out


def metrics(db: Warehouse, conversation_id: str) -> dict[str, Any]:
    conversation = db.query(
        "SELECT * EXCLUDE (conversation_id, version) FROM metrics_conversation_current "
        "WHERE conversation_id = ?",
        [conversation_id],
    )
    participants = db.query(
        "SELECT * EXCLUDE (conversation_id, version) FROM metrics_participant_current "
        "WHERE conversation_id = ? ORDER BY participant_id",
        [conversation_id],
    )
    return {
        "conversation": _plain(conversation[0]) if conversation else None,
        "participants": [_plain(p) for p in participants],
    }


def labels(db: Warehouse, conversation_id: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT label, value, confidence, utterance_id, evidence, component, "
        "component_version, model_id, taxonomy_version, run_id FROM labels_current "
        "WHERE conversation_id = ? AND list_contains(?, label) ORDER BY label, utterance_id",
        [conversation_id, list(names)],
    )
    return [{**r, "value": _json(r["value"]), "evidence": _json(r["evidence"]) or []} for r in rows]


def part(db: Warehouse, conversation_id: str, name: str) -> list[dict[str, Any]]:
    if name not in PARTS:
        raise ApiError(
            404, "unknown_part", f"no part {name!r}; parts are: {', '.join(sorted(PARTS))}"
        )
    return labels(db, conversation_id, PARTS[name])


def conversation_filter_sql(
    principal: Principal,
    *,
    channel: str | None = None,
    agent: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    intent: str | None = None,
    topic: str | None = None,
    sentiment: str | None = None,
    tracker: str | None = None,
    signal: str | None = None,
    q: str | None = None,
    conversation_type: str | None = None,
) -> tuple[str, list[Any]]:
    """WHERE clause over `conversations_current c` for the list endpoint's filters."""
    clauses: list[str] = []
    params: list[Any] = []

    def has_label(label: str, condition: str, value: Any) -> None:
        clauses.append(
            "EXISTS (SELECT 1 FROM labels_current l WHERE l.conversation_id = c.conversation_id "
            f"AND l.label = '{label}' AND {condition})"
        )
        params.append(value)

    if principal.role == Role.agent:
        clauses.append("c.agent = ?")
        params.append(principal.agent)
    if channel:
        clauses.append("c.channel = ?")
        params.append(channel)
    if agent:
        clauses.append("c.agent ILIKE ?")
        params.append(f"%{agent}%")
    if since:
        clauses.append("c.started_at >= ?")
        params.append(since)
    if until:
        clauses.append("c.started_at < ?")
        params.append(until)
    if intent:
        has_label("intent.primary", "l.value->>'intent' = ?", intent)
    if topic:
        has_label("topic.keyphrase", "l.value->>'phrase' ILIKE ?", f"%{topic}%")
    if sentiment:
        has_label("sentiment.conversation", "l.value->>'label' = ?", sentiment)
    if tracker:
        has_label("tracker.match", "l.value->>'tracker' = ?", tracker)
    if signal:
        has_label("signal", "l.value->>'signal' = ?", signal)
    if conversation_type:
        has_label("conversation.type", "l.value->>'type' = ?", conversation_type)
    if q:
        clauses.append(
            "(c.subject ILIKE ? OR EXISTS (SELECT 1 FROM utterances_current u "
            "WHERE u.conversation_id = c.conversation_id AND u.text ILIKE ?))"
        )
        params.extend([f"%{q}%"] * 2)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
