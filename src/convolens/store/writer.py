"""Writes parsed conversations into the warehouse, idempotently on the canonical id.

A conversation whose content hash equals its newest stored version is skipped (re-ingest
changes nothing); a changed one is stored as the next version, the old one kept; raw
records are stored with the version they produced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from convolens.enrich.language import identify_languages
from convolens.ingest.base import Parsed, Reject
from convolens.store.warehouse import Warehouse, now_utc

_add_row = Warehouse.append_row

__all__ = ["WriteStats", "unchanged", "write_conversations", "write_rejects"]

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
        ("detected_language", _S),
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
        ("language", _S),
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


def unchanged(warehouse: Warehouse, batch: Sequence[Parsed]) -> list[bool]:
    """Per item: is it stored already, as it is (its id's newest version has its content
    hash, and no other item of the batch has its id)? `write_conversations` skips those."""
    ids = [item.conversation.conversation_id for item in batch]
    heads = _heads(warehouse, ids)
    once = {cid for cid, n in Counter(ids).items() if n == 1}
    return [
        cid in once and cid in heads and heads[cid][1] == item.content_hash
        for cid, item in zip(ids, batch, strict=True)
    ]


def write_conversations(warehouse: Warehouse, batch: Sequence[Parsed], run_id: str) -> WriteStats:
    """Store a batch in one transaction; returns what was new, re-versioned or unchanged."""
    stats = WriteStats()
    hashes = [item.content_hash for item in batch]
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

        meta = {**c.meta, **({"ingest_warnings": item.warnings} if item.warnings else {})}
        # Derived after hashing (see Conversation.content_hash): what the source does not
        # declare is identified here, once, for every reader of the warehouse.
        languages = identify_languages(c)
        _add_row(
            conv,
            conversation_id=cid,
            version=version,
            content_hash=content_hash,
            run_id=run_id,
            ingested_at=now,
            channel=c.channel.value,
            language=c.language,
            detected_language=languages.language,
            started_at=c.started_at,
            duration_seconds=c.duration_seconds,
            subject=c.subject,
            source_system=c.source.system,
            source_id=c.source.source_id,
            source_format=item.source_format,
            platform=c.source.platform,
            queue=c.source.queue,
            agent=c.source.agent,
            campaign=c.source.campaign,
            tags=c.source.tags,
            **c.links.model_dump(),
            participant_count=len(c.participants),
            utterance_count=len(c.utterances),
            meta=_json(meta),
        )

        for position, p in enumerate(c.participants):
            _add_row(
                part,
                conversation_id=cid,
                version=version,
                participant_id=p.participant_id,
                position=position,
                name=p.name,
                role=p.role.value,
                email=p.email,
                external_ids=_json(p.external_ids),
            )

        for seq, (u, language) in enumerate(zip(c.utterances, languages.utterances, strict=True)):
            utterance_id = f"{cid}:{seq}"
            _add_row(
                utt,
                utterance_id=utterance_id,
                conversation_id=cid,
                version=version,
                seq=seq,
                participant_id=u.participant_id,
                text=u.text,
                start_s=u.start,
                end_s=u.end,
                sent_at=u.sent_at,
                channel_index=u.channel_index,
                internal=u.internal,
                meta=_json(u.meta),
                language=language,
            )
            for index, w in enumerate(u.words or ()):
                _add_row(
                    word,
                    conversation_id=cid,
                    version=version,
                    utterance_id=utterance_id,
                    word_index=index,
                    text=w.text,
                    start_s=w.start,
                    end_s=w.end,
                    confidence=w.confidence,
                )
        stats.utterances += len(c.utterances)

        for index, record in enumerate(item.raw):
            _add_row(
                raw,
                raw_id=f"{cid}:v{version}:{index}",
                run_id=run_id,
                conversation_id=cid,
                version=version,
                source_format=item.source_format,
                source_path=record.source_path,
                locator=record.locator,
                encoding=record.encoding,
                payload=record.payload,
                payload_sha256=hashlib.sha256(record.payload).hexdigest(),
                received_at=now,
            )
        stats.raw_records += len(item.raw)

    if stats.changed_ids:
        with warehouse.transaction():
            warehouse.insert_columns("conversations", conv, CONVERSATION_SCHEMA)
            warehouse.insert_columns("participants", part, PARTICIPANT_SCHEMA)
            warehouse.insert_columns("utterances", utt, UTTERANCE_SCHEMA)
            warehouse.insert_columns("words", word, WORD_SCHEMA)
            warehouse.insert_columns("raw_interactions", raw, RAW_SCHEMA)
        if warehouse.lake is not None:
            _publish(warehouse, list(zip(conv["conversation_id"], conv["version"], strict=True)))
    return stats


def _publish(warehouse: Warehouse, keys: list[tuple[str, int]]) -> None:
    """The new versions' copy in the lake (store/lake_normalised.py), committed once the
    file has them. The file is the authority: a lake that fails here does not undo the
    write; what it lacks is published by the next `publish_missing` (the end of the
    ingest run, a job before its workers read the lake), which says the error if any."""
    from convolens.store.lake import LakeError
    from convolens.store.lake_normalised import publish_versions

    with contextlib.suppress(LakeError, OSError, pa.ArrowException):
        publish_versions(warehouse, keys)


def write_rejects(warehouse: Warehouse, rejects: Sequence[Reject], run_id: str) -> int:
    """Store rejects not already stored: the same file, record, reason and payload
    rejected again by a re-run is not a new row (re-ingest changes nothing)."""
    columns = _columns(REJECT_SCHEMA)
    now = now_utc()
    unique = {(r.source_path, r.locator, r.reason, r.source_format, r.payload): r for r in rejects}
    for reject in unique.values():
        columns["run_id"].append(run_id)
        columns["source_format"].append(reject.source_format)
        columns["source_path"].append(reject.source_path)
        columns["locator"].append(reject.locator)
        columns["reason"].append(reject.reason)
        columns["payload"].append(reject.payload)
        columns["rejected_at"].append(now)
    if not unique:
        return 0
    table = pa.Table.from_pydict(columns, schema=REJECT_SCHEMA)
    name = f"_rejects_{run_id.replace('-', '_')}"
    warehouse.con.register(name, table)
    try:
        # NOT DISTINCT: a reject without a format, locator or payload matches its twin.
        before = warehouse.con.execute("SELECT count(*) FROM rejects").fetchall()[0]
        warehouse.con.execute(
            f"INSERT INTO rejects BY NAME SELECT * FROM {name} n WHERE NOT EXISTS ("
            "SELECT 1 FROM rejects r WHERE r.source_path IS NOT DISTINCT FROM n.source_path "
            "AND r.locator IS NOT DISTINCT FROM n.locator AND r.reason = n.reason "
            "AND r.source_format IS NOT DISTINCT FROM n.source_format "
            "AND r.payload IS NOT DISTINCT FROM n.payload)"
        )
        after = warehouse.con.execute("SELECT count(*) FROM rejects").fetchall()[0]
    finally:
        warehouse.con.unregister(name)
    return int(after[0]) - int(before[0])
