"""`convolens analyze`: compute what is missing for the current conversations.

Today that is conversation dynamics (metrics/); enrichment components (later issues)
plug in here too. Work is read and written in chunks so memory stays flat however
large the warehouse is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime

import duckdb
import pyarrow as pa

from convolens.engine.base import BatchWorker, Engine, WorkerSpec
from convolens.engine.local import LocalEngine
from convolens.metrics import (
    METRICS_VERSION,
    ConversationMetrics,
    MetricsResult,
    PairMetrics,
    ParticipantMetrics,
    Segment,
    compute_metrics,
)
from convolens.store.lake import Lake, StagedFiles, staged_run, tables_from_columns
from convolens.store.lake_normalised import LakeConversations, publish_missing
from convolens.store.warehouse import Warehouse, now_utc

__all__ = [
    "AnalyzeReport",
    "MetricsTask",
    "MetricsWorker",
    "analyze",
    "metrics_chunk",
    "pending_conversations",
]

_KEY_SCHEMA = pa.schema([("conversation_id", pa.string()), ("version", pa.int32())])


@dataclass
class AnalyzeReport:
    run_id: str
    conversations: int = 0
    utterances: int = 0
    elapsed_s: float = 0.0


def _arrow_schema(cls: type, prefix: list[tuple[str, pa.DataType]]) -> pa.Schema:
    """Arrow schema for a metrics dataclass, from its annotations ('float | None' etc.)."""
    columns = list(prefix)
    for f in fields(cls):
        base = str(f.type).split("|")[0].strip()
        columns.append(
            (
                f.name,
                {"int": pa.int32(), "float": pa.float64(), "bool": pa.bool_()}.get(
                    base, pa.string()
                ),
            )
        )
    return pa.schema(columns)


_PREFIX = [
    ("conversation_id", pa.string()),
    ("version", pa.int32()),
    ("metrics_version", pa.int32()),
    ("run_id", pa.string()),
]
_CONVERSATION_SCHEMA = _arrow_schema(
    ConversationMetrics, [*_PREFIX, ("computed_at", pa.timestamp("us", tz="UTC"))]
)
_PARTICIPANT_SCHEMA = _arrow_schema(ParticipantMetrics, _PREFIX)
_PAIR_SCHEMA = _arrow_schema(PairMetrics, _PREFIX)


def pending_conversations(
    warehouse: Warehouse, *, recompute: bool = False
) -> list[tuple[str, int]]:
    """(id, version) of current conversations without up-to-date metrics."""
    if recompute:
        sql = "SELECT conversation_id, version FROM conversation_heads"
        params: list[object] = []
    else:
        sql = (
            "SELECT h.conversation_id, h.version FROM conversation_heads h "
            "WHERE NOT EXISTS (SELECT 1 FROM metrics_conversation m "
            "WHERE m.conversation_id = h.conversation_id AND m.version = h.version "
            "AND m.metrics_version = ?)"
        )
        params = [METRICS_VERSION]
    rows = warehouse.con.execute(sql + " ORDER BY 1", params).fetchall()
    return [(row[0], int(row[1])) for row in rows]


def _inputs(
    con: duckdb.DuckDBPyConnection, keys: list[tuple[str, int]]
) -> Iterator[tuple[str, int, list[Segment], dict[str, str], float | None]]:
    """Segments, roles and stated duration per conversation, read in three bulk queries
    on the warehouse's connection or on a worker's over the lake (LakeConversations)."""
    key_table = pa.table(
        {"conversation_id": [k[0] for k in keys], "version": [k[1] for k in keys]},
        schema=_KEY_SCHEMA,
    )
    con.register("_analyze_keys", key_table)
    try:
        durations = dict(
            ((r[0], r[1]), r[2])
            for r in con.execute(
                "SELECT conversation_id, version, duration_seconds FROM conversations "
                "SEMI JOIN _analyze_keys USING (conversation_id, version)"
            ).fetchall()
        )
        roles: dict[tuple[str, int], dict[str, str]] = {}
        for cid, version, pid, role in con.execute(
            "SELECT conversation_id, version, participant_id, role FROM participants "
            "SEMI JOIN _analyze_keys USING (conversation_id, version) "
            "ORDER BY conversation_id, version, position"
        ).fetchall():
            roles.setdefault((cid, version), {})[pid] = role
        table = con.sql(
            # Internal notes are not part of the exchange with the customer: the same rule
            # as metrics_for_conversation.
            "SELECT conversation_id, version, participant_id, text, start_s, end_s, sent_at "
            "FROM utterances SEMI JOIN _analyze_keys USING (conversation_id, version) "
            "WHERE NOT internal ORDER BY conversation_id, version, seq"
        ).to_arrow_table()
    finally:
        con.unregister("_analyze_keys")

    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    segments: dict[tuple[str, int], list[Segment]] = {}
    for cid, version, pid, text, start, end, sent_at in zip(*columns, strict=True):
        segments.setdefault((cid, version), []).append(Segment(pid, text, start, end, sent_at))
    for key in keys:
        yield key[0], key[1], segments.get(key, []), roles.get(key, {}), durations.get(key)


def _rows(cid: str, version: int, run_id: str, result: MetricsResult, columns: dict) -> None:
    prefix = {
        "conversation_id": cid,
        "version": version,
        "metrics_version": METRICS_VERSION,
        "run_id": run_id,
    }
    for name, items in (
        ("conversation", [result.conversation]),
        ("participant", result.participants),
        ("pair", result.pairs),
    ):
        for item in items:
            for key, value in {**prefix, **asdict(item)}.items():
                columns[name].setdefault(key, []).append(value)


@dataclass
class MetricsTask:
    """One batch for a metrics worker: each conversation's segments, roles and duration,
    or (a lake and a remote engine) only `keys`: the worker reads them from the lake."""

    run_id: str
    inputs: list[tuple[str, int, list[Segment], dict[str, str], float | None]]
    now: datetime
    keys: list[tuple[str, int]] | None = None


@dataclass
class MetricsChunk:
    """The metrics rows of one batch per table (or, with a lake, the files staged)."""

    keys: list[tuple[str, int]]
    columns: dict[str, dict[str, list]]
    utterances: int = 0
    staged: StagedFiles | None = None


def metrics_chunk(task: MetricsTask) -> MetricsChunk:
    """Compute one batch's metrics: the work of every engine, local or Ray."""
    columns: dict[str, dict[str, list]] = {"conversation": {}, "participant": {}, "pair": {}}
    out = MetricsChunk(keys=[], columns=columns)
    for cid, version, segments, roles, duration in task.inputs:
        result = compute_metrics(segments, roles, duration)
        _rows(cid, version, task.run_id, result, columns)
        out.keys.append((cid, version))
        out.utterances += len(segments)
    columns["conversation"]["computed_at"] = [task.now] * len(task.inputs)
    return out


class MetricsWorker(BatchWorker):
    """Dynamics metrics as an engine worker; with a lake it writes its rows there."""

    def __init__(self, lake_uri: str | None = None) -> None:
        self.lake = Lake(lake_uri) if lake_uri else None
        self._reader: LakeConversations | None = None

    def process(self, item: MetricsTask) -> MetricsChunk:
        if item.keys is not None:
            if self.lake is None:
                raise ValueError("a task of keys needs a worker with a lake")
            if self._reader is None:
                self._reader = LakeConversations(self.lake)
            inputs = list(_inputs(self._reader.select(item.keys), item.keys))
            item = replace(item, inputs=inputs, keys=None)
        chunk = metrics_chunk(item)
        if self.lake is not None:
            tables = tables_from_columns(
                {_TABLES[name]: cols for name, cols in chunk.columns.items()}, _SCHEMAS
            )
            chunk.staged = self.lake.stage(item.run_id, tables)
            chunk.columns = {name: {} for name in chunk.columns}
        return chunk


_TABLES = {
    "conversation": "metrics_conversation",
    "participant": "metrics_participant",
    "pair": "metrics_participant_pairs",
}
_SCHEMAS = {
    "metrics_conversation": _CONVERSATION_SCHEMA,
    "metrics_participant": _PARTICIPANT_SCHEMA,
    "metrics_participant_pairs": _PAIR_SCHEMA,
}


def analyze(
    warehouse: Warehouse,
    *,
    recompute: bool = False,
    chunk_size: int = 5000,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    engine: Engine | None = None,
) -> AnalyzeReport:
    """Compute dynamics metrics for every current conversation that lacks them, on
    `engine` (default: here, in this process)."""
    started = time.perf_counter()
    engine = engine or LocalEngine()
    keys = pending_conversations(warehouse, recompute=recompute)
    run_id = warehouse.start_run(
        "analyze",
        {"recompute": recompute, "metrics_version": METRICS_VERSION, "engine": engine.name},
    )
    report = AnalyzeReport(run_id=run_id)
    if on_start:
        on_start(len(keys))
    if not isinstance(engine, LocalEngine):
        # Enough batches to keep every worker busy (metrics do not depend on batching).
        chunk_size = max(1, min(chunk_size, math.ceil(len(keys) / (engine.workers * 4))))
    lake = warehouse.lake
    # Remote workers read their conversations from the lake's copy (made whole first).
    from_lake = lake is not None and not isinstance(engine, LocalEngine)
    if from_lake:
        publish_missing(warehouse)

    def tasks() -> Iterator[MetricsTask]:
        for offset in range(0, len(keys), chunk_size):
            chunk = keys[offset : offset + chunk_size]
            if from_lake:
                yield MetricsTask(run_id, [], now_utc(), keys=chunk)
            else:
                yield MetricsTask(run_id, list(_inputs(warehouse.con, chunk)), now_utc())

    spec = WorkerSpec(MetricsWorker, (lake.uri if lake else None,))
    with staged_run(warehouse, run_id) as staged:
        for result in engine.run(spec, tasks()):
            if result.staged is not None:
                staged.append(result.staged)
            else:
                _store_metrics(warehouse, result)
            report.conversations += len(result.keys)
            report.utterances += result.utterances
            if on_progress:
                on_progress(len(result.keys))
    report.elapsed_s = time.perf_counter() - started
    warehouse.finish_run(
        run_id,
        {
            "conversations": report.conversations,
            "utterances": report.utterances,
            "elapsed_s": round(report.elapsed_s, 3),
        },
    )
    return report


def _store_metrics(warehouse: Warehouse, result: MetricsChunk) -> None:
    key_table = pa.table(
        {"conversation_id": [k[0] for k in result.keys], "version": [k[1] for k in result.keys]},
        schema=_KEY_SCHEMA,
    )
    with warehouse.transaction():
        warehouse.con.register("_analyze_done", key_table)
        try:
            for table in _SCHEMAS:
                warehouse.con.execute(
                    f"DELETE FROM {table} WHERE (conversation_id, version) IN "
                    "(SELECT (conversation_id, version) FROM _analyze_done)"
                )
        finally:
            warehouse.con.unregister("_analyze_done")
        for name, table in _TABLES.items():
            warehouse.insert_columns(table, result.columns[name], _SCHEMAS[table])
