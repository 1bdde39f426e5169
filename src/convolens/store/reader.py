"""Reads conversations back out of the warehouse as canonical models, and lists them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from convolens.model import Conversation
from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = [
    "ConversationFilter",
    "conversations_from",
    "list_conversations",
    "load_conversation",
    "load_conversations",
]


# Far past any warehouse, and within DuckDB's LIMIT (a BIGINT).
MAX_LIMIT = 1_000_000_000


def _loads(value: str | None) -> Any:
    return json.loads(value) if value else None


def load_conversation(
    warehouse: Warehouse, conversation_id: str, version: int | None = None
) -> Conversation:
    """The stored conversation (newest version unless `version` is given)."""
    cid = warehouse.resolve_id(conversation_id)
    rows = warehouse.query(
        "SELECT version FROM conversations WHERE conversation_id = ? "
        + ("AND version = ?" if version is not None else "ORDER BY version DESC LIMIT 1"),
        [cid, version] if version is not None else [cid],
    )
    if not rows:
        raise WarehouseError(f"conversation {cid} has no version {version}")
    return load_conversations(warehouse, [(cid, int(rows[0]["version"]))])[0]


def load_conversations(warehouse: Warehouse, keys: Sequence[tuple[str, int]]) -> list[Conversation]:
    """Many (id, version) at once, in the order given: four queries for the whole batch,
    not four per conversation (what the enrichment runner and exports read with)."""
    return conversations_from(warehouse.con, keys)


def conversations_from(
    con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[str, int]]
) -> list[Conversation]:
    """`load_conversations` on any connection whose `conversations`, `participants`,
    `utterances` and `words` have the warehouse's columns: the warehouse's own, or a
    worker's over the lake's copy (store/lake_normalised.py `LakeConversations`)."""
    if not keys:
        return []
    wanted = pa.table(
        {"conversation_id": [k[0] for k in keys], "version": [int(k[1]) for k in keys]},
        schema=pa.schema([("conversation_id", pa.string()), ("version", pa.int32())]),
    )
    name = f"_keys_{uuid.uuid4().hex}"
    con.register(name, wanted)
    try:

        def grouped(sql: str) -> dict[tuple[str, int], list[dict[str, Any]]]:
            out: dict[tuple[str, int], list[dict[str, Any]]] = {}
            cursor = con.execute(sql.format(keys=name))
            names = [d[0] for d in cursor.description or []]
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                out.setdefault((row["conversation_id"], row["version"]), []).append(row)
            return out

        heads = grouped(
            "SELECT t.* FROM conversations t JOIN {keys} USING (conversation_id, version)"
        )
        participants = grouped(
            "SELECT t.* FROM participants t JOIN {keys} USING (conversation_id, version) "
            "ORDER BY position"
        )
        utterances = grouped(
            "SELECT t.* FROM utterances t JOIN {keys} USING (conversation_id, version) ORDER BY seq"
        )
        words = grouped(
            "SELECT t.conversation_id, t.version, t.utterance_id, t.text, t.start_s, t.end_s, "
            "t.confidence FROM words t JOIN {keys} USING (conversation_id, version) "
            "ORDER BY t.utterance_id, t.word_index"
        )
    finally:
        con.unregister(name)
    out = []
    for cid, version in keys:
        key = (cid, int(version))
        if key not in heads:
            raise WarehouseError(f"conversation {cid} has no version {version}")
        by_utterance: dict[str, list[dict[str, Any]]] = {}
        for word in words.get(key, []):
            by_utterance.setdefault(word["utterance_id"], []).append(
                {
                    "text": word["text"],
                    "start": word["start_s"],
                    "end": word["end_s"],
                    "confidence": word["confidence"],
                }
            )
        out.append(
            _conversation(
                heads[key][0], participants.get(key, []), utterances.get(key, []), by_utterance
            )
        )
    return out


def _conversation(
    row: dict[str, Any],
    participants: list[dict[str, Any]],
    utterances: list[dict[str, Any]],
    words: dict[str, list[dict[str, Any]]],
) -> Conversation:
    meta = _loads(row["meta"]) or {}
    meta.pop("ingest_warnings", None)
    return Conversation.model_validate(
        {
            "conversation_id": row["conversation_id"],
            "channel": row["channel"],
            "source": {
                "system": row["source_system"],
                "source_id": row["source_id"],
                "platform": row["platform"],
                "queue": row["queue"],
                "agent": row["agent"],
                "campaign": row["campaign"],
                "tags": row["tags"] or [],
            },
            "language": row["language"],
            "started_at": row["started_at"],
            "duration_seconds": row["duration_seconds"],
            "subject": row["subject"],
            "links": {
                k: row[k] for k in ("account_id", "user_id", "order_id", "ticket_id", "campaign_id")
            },
            "participants": [
                {
                    "participant_id": p["participant_id"],
                    "name": p["name"],
                    "role": p["role"],
                    "email": p["email"],
                    "external_ids": _loads(p["external_ids"]) or {},
                }
                for p in participants
            ],
            "utterances": [
                {
                    "participant_id": u["participant_id"],
                    "text": u["text"],
                    "start": u["start_s"],
                    "end": u["end_s"],
                    "sent_at": u["sent_at"],
                    "channel_index": u["channel_index"],
                    "internal": u["internal"],
                    "meta": _loads(u["meta"]) or {},
                    "words": words.get(u["utterance_id"]),
                    "language": u.get("language"),
                }
                for u in utterances
            ],
            "meta": meta,
        }
    )


@dataclass
class ConversationFilter:
    """Filters shared by `convolens list`, reports and (later) the API."""

    channel: str | None = None
    agent: str | None = None
    queue: str | None = None
    source: str | None = None
    account: str | None = None
    tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("c.channel", self.channel),
            ("c.queue", self.queue),
            ("c.source_system", self.source),
            ("c.account_id", self.account),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.agent is not None:
            clauses.append("c.agent ILIKE ?")
            params.append(f"%{self.agent}%")
        if self.tag is not None:
            clauses.append("list_contains(c.tags, ?)")
            params.append(self.tag)
        if self.since is not None:
            clauses.append("c.started_at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("c.started_at < ?")
            params.append(self.until)
        if self.text:
            clauses.append(
                "(c.subject ILIKE ? OR EXISTS (SELECT 1 FROM utterances u "
                "WHERE u.conversation_id = c.conversation_id AND u.version = c.version "
                "AND u.text ILIKE ?))"
            )
            params.extend([f"%{self.text}%"] * 2)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_conversations(
    warehouse: Warehouse, filters: ConversationFilter | None = None, limit: int | None = 50
) -> list[dict[str, Any]]:
    """Current conversations with their headline metrics, newest first."""
    if limit is not None and not 0 <= limit <= MAX_LIMIT:
        raise WarehouseError(f"limit must be between 0 and {MAX_LIMIT:,}, not {limit}")
    where, params = (filters or ConversationFilter()).where()
    sql = f"""
        SELECT c.conversation_id, c.version, c.channel, c.started_at, c.source_system,
               c.source_id, c.subject, c.agent, c.queue, c.utterance_count,
               c.participant_count, m.duration_s, m.elapsed_s, m.first_response_s
        FROM conversations_current c
        LEFT JOIN metrics_conversation m USING (conversation_id, version)
        {where}
        ORDER BY c.started_at DESC NULLS LAST, c.conversation_id
    """
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return warehouse.query(sql, params)
