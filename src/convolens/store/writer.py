"""Writes parsed conversations into the warehouse, idempotently on the canonical id.

A conversation whose content hash equals its newest stored version is skipped (re-ingest
changes nothing); a changed one is stored as the next version, the old one kept; raw
records are stored with the version they produced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from convolens.ingest.base import Parsed, Reject
from convolens.store.warehouse import Warehouse, now_utc

__all__ = ["WriteStats", "write_conversations", "write_rejects"]

_TS = pa.timestamp("us", tz="UTC")
_S, _I, _F, _B = pa.string(), pa.int32(), pa.float64(), pa.bool_()

CONVERSATION_SCHEMA = pa.schema(
    [
        ("conversation_id", _S),
        ("version", _I),
        ("content_hash", _S),
        ("run_id", _S),
        ("ingested_at", _TS),
        ("channel", _S),
        ("language", _S),
        ("started_at", _TS),
        ("duration_seconds", _F),
        ("subject", _S),
        ("source_system", _S),
        ("source_id", _S),
        ("source_format", _S),
        ("platform", _S),
        ("queue", _S),
        ("agent", _S),
        ("campaign", _S),
        ("tags", pa.list_(_S)),
        ("account_id", _S),
        ("user_id", _S),
        ("order_id", _S),
        ("ticket_id", _S),
        ("campaign_id", _S),
        ("participant_count", _I),
        ("utterance_count", _I),
        ("meta", _S),
    ]
)
PARTICIPANT_SCHEMA = pa.schema(
    [
        ("conversation_id", _S),
        ("version", _I),
        ("participant_id", _S),
        ("position", _I),
        ("name", _S),
        ("role", _S),
        ("email", _S),
        ("external_ids", _S),
    ]
)
UTTERANCE_SCHEMA = pa.schema(
    [
        ("utterance_id", _S),
        ("conversation_id", _S),
        ("version", _I),
        ("seq", _I),
        ("participant_id", _S),
        ("text", _S),
        ("start_s", _F),
        ("end_s", _F),
        ("sent_at", _TS),
        ("channel_index", _I),
        ("internal", _B),
        ("meta", _S),
    ]
)
WORD_SCHEMA = pa.schema(
    [
        ("conversation_id", _S),
        ("version", _I),
        ("utterance_id", _S),
        ("word_index", _I),
        ("text", _S),
        ("start_s", _F),
        ("end_s", _F),
        ("confidence", _F),
    ]
)
RAW_SCHEMA = pa.schema(
    [
        ("raw_id", _S),
        ("run_id", _S),
        ("conversation_id", _S),
        ("version", _I),
        ("source_format", _S),
        ("source_path", _S),
        ("locator", _S),
        ("encoding", _S),
        ("payload", pa.binary()),
        ("payload_sha256", _S),
        ("received_at", _TS),
    ]
)
REJECT_SCHEMA = pa.schema(
    [
        ("run_id", _S),
        ("source_format", _S),
        ("source_path", _S),
        ("locator", _S),
        ("reason", _S),
        ("payload", pa.binary()),
        ("rejected_at", _TS),
    ]
)


@dataclass
class WriteStats:
    new: int = 0
    new_versions: int = 0
    unchanged: int = 0
    utterances: int = 0
    raw_records: int = 0
    changed_ids: list[str] = field(default_factory=list)

    def add(self, other: WriteStats) -> None:
        self.new += other.new
        self.new_versions += other.new_versions
        self.unchanged += other.unchanged
        self.utterances += other.utterances
        self.raw_records += other.raw_records
        self.changed_ids.extend(other.changed_ids)


def _columns(schema: pa.Schema) -> dict[str, list]:
    return {name: [] for name in schema.names}


def _json(value: object) -> str | None:
    return json.dumps(value, ensure_ascii=False, default=str) if value else None


def _heads(warehouse: Warehouse, ids: list[str]) -> dict[str, tuple[int, str]]:
    """Newest stored (version, content_hash) per conversation id in `ids`."""
    if not ids:
        return {}
    table = pa.table({"conversation_id": pa.array(sorted(set(ids)), _S)})
    warehouse.con.register("_batch_ids", table)
    try:
        rows = warehouse.con.execute(
            "SELECT conversation_id, max(version), arg_max(content_hash, version) "
            "FROM conversations SEMI JOIN _batch_ids USING (conversation_id) "
            "GROUP BY conversation_id"
        ).fetchall()
    finally:
        warehouse.con.unregister("_batch_ids")
    return {row[0]: (int(row[1]), str(row[2])) for row in rows}


def write_conversations(warehouse: Warehouse, batch: Sequence[Parsed], run_id: str) -> WriteStats:
    """Store a batch in one transaction; returns what was new, re-versioned or unchanged."""
    stats = WriteStats()
    hashes = [item.conversation.content_hash() for item in batch]
    heads = _heads(warehouse, [item.conversation.conversation_id for item in batch])
    now = now_utc()
    conv, part, utt, word, raw = (
        _columns(s)
        for s in (
            CONVERSATION_SCHEMA,
            PARTICIPANT_SCHEMA,
            UTTERANCE_SCHEMA,
            WORD_SCHEMA,
            RAW_SCHEMA,
        )
    )
    for item, content_hash in zip(batch, hashes, strict=True):
        c = item.conversation
        cid = c.conversation_id
        head = heads.get(cid)
        if head is not None and head[1] == content_hash:
            stats.unchanged += 1
            continue
        version = 1 if head is None else head[0] + 1
        # Later duplicates within this batch compare against this one.
        heads[cid] = (version, content_hash)
        if version == 1:
            stats.new += 1
        else:
            stats.new_versions += 1
        stats.changed_ids.append(cid)

        source, links = c.source, c.links
        for key, value in (
            ("conversation_id", cid),
            ("version", version),
            ("content_hash", content_hash),
            ("run_id", run_id),
            ("ingested_at", now),
            ("channel", c.channel.value),
            ("language", c.language),
            ("started_at", c.started_at),
            ("duration_seconds", c.duration_seconds),
            ("subject", c.subject),
            ("source_system", source.system),
            ("source_id", source.source_id),
            ("source_format", item.source_format),
            ("platform", source.platform),
            ("queue", source.queue),
            ("agent", source.agent),
            ("campaign", source.campaign),
            ("tags", source.tags),
            ("account_id", links.account_id),
            ("user_id", links.user_id),
            ("order_id", links.order_id),
            ("ticket_id", links.ticket_id),
            ("campaign_id", links.campaign_id),
            ("participant_count", len(c.participants)),
            ("utterance_count", len(c.utterances)),
            (
                "meta",
                _json({**c.meta, **({"ingest_warnings": item.warnings} if item.warnings else {})}),
            ),
        ):
            conv[key].append(value)

        for position, p in enumerate(c.participants):
            part["conversation_id"].append(cid)
            part["version"].append(version)
            part["participant_id"].append(p.participant_id)
            part["position"].append(position)
            part["name"].append(p.name)
            part["role"].append(p.role.value)
            part["email"].append(p.email)
            part["external_ids"].append(_json(p.external_ids))

        for seq, u in enumerate(c.utterances):
            utterance_id = f"{cid}:{seq}"
            utt["utterance_id"].append(utterance_id)
            utt["conversation_id"].append(cid)
            utt["version"].append(version)
            utt["seq"].append(seq)
            utt["participant_id"].append(u.participant_id)
            utt["text"].append(u.text)
            utt["start_s"].append(u.start)
            utt["end_s"].append(u.end)
            utt["sent_at"].append(u.sent_at)
            utt["channel_index"].append(u.channel_index)
            utt["internal"].append(u.internal)
            utt["meta"].append(_json(u.meta))
            for index, w in enumerate(u.words or ()):
                word["conversation_id"].append(cid)
                word["version"].append(version)
                word["utterance_id"].append(utterance_id)
                word["word_index"].append(index)
                word["text"].append(w.text)
                word["start_s"].append(w.start)
                word["end_s"].append(w.end)
                word["confidence"].append(w.confidence)
        stats.utterances += len(c.utterances)

        for index, record in enumerate(item.raw):
            raw["raw_id"].append(f"{cid}:v{version}:{index}")
            raw["run_id"].append(run_id)
            raw["conversation_id"].append(cid)
            raw["version"].append(version)
            raw["source_format"].append(item.source_format)
            raw["source_path"].append(record.source_path)
            raw["locator"].append(record.locator)
            raw["encoding"].append(record.encoding)
            raw["payload"].append(record.payload)
            raw["payload_sha256"].append(hashlib.sha256(record.payload).hexdigest())
            raw["received_at"].append(now)
        stats.raw_records += len(item.raw)

    if stats.changed_ids:
        with warehouse.transaction():
            warehouse.insert_columns("conversations", conv, CONVERSATION_SCHEMA)
            warehouse.insert_columns("participants", part, PARTICIPANT_SCHEMA)
            warehouse.insert_columns("utterances", utt, UTTERANCE_SCHEMA)
            warehouse.insert_columns("words", word, WORD_SCHEMA)
            warehouse.insert_columns("raw_interactions", raw, RAW_SCHEMA)
    return stats


def write_rejects(warehouse: Warehouse, rejects: Sequence[Reject], run_id: str) -> int:
    columns = _columns(REJECT_SCHEMA)
    now = now_utc()
    for reject in rejects:
        columns["run_id"].append(run_id)
        columns["source_format"].append(reject.source_format)
        columns["source_path"].append(reject.source_path)
        columns["locator"].append(reject.locator)
        columns["reason"].append(reject.reason)
        columns["payload"].append(reject.payload)
        columns["rejected_at"].append(now)
    return warehouse.insert_columns("rejects", columns, REJECT_SCHEMA)
