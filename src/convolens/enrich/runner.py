"""Runs enrichment components over the warehouse and stores their labels with lineage.

For every current conversation that a requested component (at its current version) has
not processed yet, the documents go through the components in order, in batches; each
label becomes a row of `enrichments` (component, version, model, taxonomy version, run id,
value, confidence, evidence) and each processed pair a row of `enrichment_status`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pyarrow as pa

from convolens.engine.base import BatchWorker, Engine, WorkerSpec
from convolens.engine.local import LocalEngine
from convolens.enrich.base import Annotation, Component, Doc
from convolens.enrich.registry import DEFAULT_COMPONENTS, get_component
from convolens.model import Conversation
from convolens.store.lake import Lake, StagedFiles, staged_run, tables_from_columns
from convolens.store.lake_normalised import (
    QUOTING_LAYERS,
    LakeConversations,
    clear_rewrites,
    note_rewrites,
    publish_missing,
    replace_versions,
    replay_rewrites,
)
from convolens.store.reader import conversations_from, load_conversations
from convolens.store.redaction import TextRewrite, store_rewrites
from convolens.store.warehouse import Warehouse, now_utc

__all__ = [
    "ChunkLabels",
    "EnrichReport",
    "LabelTask",
    "LabelWorker",
    "enrich",
    "label_chunk",
    "pending_for",
]

_TS = pa.timestamp("us", tz="UTC")
_S, _I, _F = pa.string(), pa.int32(), pa.float64()
ENRICHMENT_SCHEMA = pa.schema(
    [
        ("enrichment_id", _S),
        ("conversation_id", _S),
        ("version", _I),
        ("utterance_id", _S),
        ("component", _S),
        ("component_version", _S),
        ("model_id", _S),
        ("taxonomy_version", _S),
        ("run_id", _S),
        ("label", _S),
        ("value", _S),
        ("confidence", _F),
        ("evidence", _S),
        ("created_at", _TS),
    ]
)
STATUS_SCHEMA = pa.schema(
    [
        ("conversation_id", _S),
        ("version", _I),
        ("component", _S),
        ("component_version", _S),
        ("run_id", _S),
        ("labels", _I),
        ("taxonomy_version", _S),
        ("processed_at", _TS),
    ]
)

# Conversations per labelling task: here, and at most on a remote engine (`task_size`).
LOCAL_TASK_SIZE = 32
REMOTE_TASK_SIZE_MAX = 128


@dataclass
class EnrichReport:
    run_id: str
    conversations: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    utterances: int = 0
    # Seconds inside each component's __call__ (the rest is reading and writing).
    component_s: dict[str, float] = field(default_factory=dict)


def pending_for(
    warehouse: Warehouse, component: Component, *, recompute: bool = False
) -> list[tuple[str, int]]:
    """(id, version) of current conversations this component version has not processed."""
    if recompute:
        rows = warehouse.con.execute("SELECT conversation_id, version FROM conversation_heads")
    else:
        rows = warehouse.con.execute(
            "SELECT h.conversation_id, h.version FROM conversation_heads h WHERE NOT EXISTS "
            "(SELECT 1 FROM enrichment_status s WHERE s.conversation_id = h.conversation_id "
            "AND s.version = h.version AND s.component = ? AND s.component_version = ? "
            "AND s.taxonomy_version IS NOT DISTINCT FROM ?)",
            [component.name, component.version, component.taxonomy_version],
        )
    return sorted((row[0], int(row[1])) for row in rows.fetchall())


def _docs(keys: Sequence[tuple[str, int]], conversations: Sequence[Conversation]) -> list[Doc]:
    return [
        Doc(cid, version, c, [f"{cid}:{seq}" for seq in range(len(c.utterances))])
        for (cid, version), c in zip(keys, conversations, strict=True)
    ]


@dataclass
class LabelTask:
    """One batch for a label worker: the documents and, per component, the keys it owes.

    With a lake and a remote engine the task carries `keys` only and no documents: the
    worker reads the conversations from the lake's copy itself (store/lake_normalised.py),
    so the driver neither reads nor ships them."""

    run_id: str
    docs: list[Doc]
    pending: dict[str, set[tuple[str, int]]]
    now: datetime
    keys: list[tuple[str, int]] | None = None


@dataclass
class ChunkLabels:
    """What one batch gave: rows for `enrichments` and `enrichment_status` (or, with a
    lake, the files the worker staged), redacted texts, and timings."""

    keys: list[tuple[str, int]]
    rows: dict[str, list[Any]]
    status: dict[str, list[Any]]
    rewrites: list[TextRewrite] = field(default_factory=list)
    stale: set[tuple[str, int]] = field(default_factory=set)
    labels: dict[str, int] = field(default_factory=dict)
    component_s: dict[str, float] = field(default_factory=dict)
    utterances: int = 0
    staged: StagedFiles | None = None


def label_chunk(chosen: Sequence[Component], task: LabelTask) -> ChunkLabels:
    """Run `chosen` in order over one batch: the work of every engine, local or Ray."""
    docs, pending, run_id, now = task.docs, task.pending, task.run_id, task.now
    needed = _needed_by_later(chosen)
    out = ChunkLabels(
        keys=[(d.conversation_id, d.version) for d in docs],
        rows={name: [] for name in ENRICHMENT_SCHEMA.names},
        status={name: [] for name in STATUS_SCHEMA.names},
        utterances=sum(len(d.conversation.utterances) for d in docs),
    )
    for position, component in enumerate(chosen):
        todo = pending.setdefault(component.name, set())
        # A component runs on the documents it has not labelled, and on all of them
        # when a later component requires its labels (they are recomputed, not stored).
        subset = [
            d for d in docs if needed[component.name] or (d.conversation_id, d.version) in todo
        ]
        if not subset:
            continue
        before = [_texts(d) for d in subset] if component.rewrites_text else []
        ticking = time.perf_counter()
        results = component(subset)
        out.component_s[component.name] = (
            out.component_s.get(component.name, 0.0) + time.perf_counter() - ticking
        )
        for doc, found in zip(subset, results, strict=True):
            doc.annotations.extend(found)
        if component.rewrites_text:
            for doc, old in zip(subset, before, strict=True):
                if _texts(doc) != old:
                    key = (doc.conversation_id, doc.version)
                    out.rewrites.append((doc.conversation_id, doc.version, doc.conversation))
                    out.stale.add(key)
                    # Later components must label the new text, whatever they did before.
                    for later in chosen[position + 1 :]:
                        pending.setdefault(later.name, set()).add(key)
        for doc, found in zip(subset, results, strict=True):
            if (doc.conversation_id, doc.version) not in todo:
                continue
            for index, annotation in enumerate(found):
                _add_row(out.rows, doc, component, annotation, run_id, index, now)
            out.labels[component.name] = out.labels.get(component.name, 0) + len(found)
            Warehouse.append_row(
                out.status,
                conversation_id=doc.conversation_id,
                version=doc.version,
                component=component.name,
                component_version=component.version,
                run_id=run_id,
                labels=len(found),
                processed_at=now,
                taxonomy_version=component.taxonomy_version,
            )
    return out


def _merged(parts: list[ChunkLabels]) -> ChunkLabels:
    """One task's result from its groups' results, in order."""
    out = parts[0]
    for part in parts[1:]:
        out.keys.extend(part.keys)
        for columns, more in ((out.rows, part.rows), (out.status, part.status)):
            for name, values in more.items():
                columns[name].extend(values)
        out.rewrites.extend(part.rewrites)
        out.stale |= part.stale
        for name, count in part.labels.items():
            out.labels[name] = out.labels.get(name, 0) + count
        for name, seconds in part.component_s.items():
            out.component_s[name] = out.component_s.get(name, 0.0) + seconds
        out.utterances += part.utterances
    return out


class LabelWorker(BatchWorker):
    """The components as one engine worker: built once per place it runs (one model load
    per Ray actor), PII redaction first as in the chosen order; with a lake, the worker
    writes its rows there itself and hands back only the file names."""

    def __init__(
        self,
        specs: Sequence[tuple[type[Component], dict[str, Any]]],
        lake_uri: str | None = None,
        components: Sequence[Component] | None = None,
    ) -> None:
        self.components = (
            list(components) if components is not None else [cls(cfg) for cls, cfg in specs]
        )
        self.lake = Lake(lake_uri) if lake_uri else None
        self._reader: LakeConversations | None = None

    def process(self, item: LabelTask) -> ChunkLabels:
        if item.keys is not None:
            if self.lake is None:
                raise ValueError("a task of keys needs a worker with a lake")
            if self._reader is None:
                self._reader = LakeConversations(self.lake)
            docs = _docs(item.keys, conversations_from(self._reader.select(item.keys), item.keys))
            item = replace(item, docs=docs, keys=None)
        # Labelled in the local engine's groups of 32, whatever the task's size: int8
        # inference quantises each batch as a whole, so the groups a document is encoded
        # with must not depend on the engine (identical answers, tests/engine).
        step = LOCAL_TASK_SIZE
        groups = [
            label_chunk(self.components, replace(item, docs=item.docs[start : start + step]))
            for start in range(0, max(1, len(item.docs)), step)
        ]
        result = _merged(groups)
        if self.lake is not None:
            tables = tables_from_columns(
                {"enrichments": result.rows, "enrichment_status": result.status},
                {"enrichments": ENRICHMENT_SCHEMA, "enrichment_status": STATUS_SCHEMA},
            )
            result.staged = self.lake.stage(item.run_id, tables)
            result.rows, result.status = {}, {}
        return result


def task_size(engine: Engine, conversations: int) -> int:
    """Conversations per task. Here, 32: small steps for the progress bar and memory. On a
    remote engine each task also costs a lake read, a staged Parquet file and a round trip
    through the scheduler (measured: 128 per task took 10 % less worker CPU than 32 on
    2,000 conversations), so tasks grow up to 128 while each worker still gets about 16,
    which keeps the wait for the last task short. The labelling itself still goes in
    groups of 32 (LabelWorker.process)."""
    if isinstance(engine, LocalEngine):
        return LOCAL_TASK_SIZE
    per_worker = math.ceil(conversations / (max(1, engine.workers) * 16))
    # A multiple of 32, so each task's groups (LabelWorker.process) are the local ones.
    groups = math.ceil(per_worker / LOCAL_TASK_SIZE) * LOCAL_TASK_SIZE
    return max(LOCAL_TASK_SIZE, min(REMOTE_TASK_SIZE_MAX, groups))


def enrich(
    warehouse: Warehouse,
    components: Sequence[str | Component] | None = None,
    *,
    recompute: bool = False,
    batch_size: int | None = None,
    config: dict[str, dict[str, Any]] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    engine: Engine | None = None,
) -> EnrichReport:
    """Label what is missing with `components` (default: every built-in, in order), on
    `engine` (default: here, in this process), `batch_size` conversations per task
    (default: `task_size`)."""
    started = time.perf_counter()
    chosen = [
        c if isinstance(c, Component) else get_component(c, (config or {}).get(c))
        for c in (components if components is not None else DEFAULT_COMPONENTS)
    ]
    engine = engine or LocalEngine()
    pending = {c.name: set(pending_for(warehouse, c, recompute=recompute)) for c in chosen}
    keys = sorted(set().union(*pending.values())) if pending else []
    run_id = warehouse.start_run(
        "enrich",
        {
            "components": {c.name: c.version for c in chosen},
            "recompute": recompute,
            "engine": engine.name,
        },
    )
    report = EnrichReport(run_id=run_id)
    if on_start:
        on_start(len(keys))
    lake = warehouse.lake
    # Remote workers read their conversations from the lake's copy: first make sure it
    # has every version (a job killed between an ingest's two commits left some out).
    from_lake = lake is not None and not isinstance(engine, LocalEngine)
    if from_lake:
        publish_missing(warehouse)
    elif lake is not None:
        replay_rewrites(warehouse, skip_run=run_id)  # what a killed run left half done
    spec = WorkerSpec(
        LabelWorker,
        ([(type(c), dict(c.config)) for c in chosen], lake.uri if lake else None),
        # Here the caller's components run as they are: no second model load.
        ready=LabelWorker([], lake.uri if lake else None, components=chosen)
        if isinstance(engine, LocalEngine)
        else None,
    )

    size = batch_size or task_size(engine, len(keys))

    def tasks() -> Iterator[LabelTask]:
        for offset in range(0, len(keys), size):
            chunk = keys[offset : offset + size]
            wanted = set(chunk)
            owed = {name: todo & wanted for name, todo in pending.items()}
            if from_lake:
                yield LabelTask(run_id, [], owed, now_utc(), keys=chunk)
            else:
                docs = _docs(chunk, load_conversations(warehouse, chunk))
                yield LabelTask(run_id, docs, owed, now_utc())

    rewritten: set[tuple[str, int]] = set()
    with staged_run(warehouse, run_id) as staged:
        for result in engine.run(spec, tasks()):
            _store_chunk(warehouse, result, run_id)
            rewritten |= result.stale
            if result.staged:
                staged.append(result.staged)
            for name, count in result.labels.items():
                report.labels[name] = report.labels.get(name, 0) + count
            for name, seconds in result.component_s.items():
                report.component_s[name] = report.component_s.get(name, 0.0) + seconds
            report.conversations += len(result.keys)
            report.utterances += result.utterances
            if on_progress:
                on_progress(len(result.keys))
        if rewritten and lake is not None:
            # The lake must not keep the text redaction replaced, nor labels of earlier
            # runs that may quote it (as `_forget_labels_of_old_text` for the file): old
            # rows out first, the new text published with this run's commit.
            replace_versions(
                warehouse, rewritten, also_layers=QUOTING_LAYERS, run_id=run_id, staged=staged
            )
    if rewritten and lake is not None:
        clear_rewrites(lake, run_id)  # the lake copy is replaced: the notes are done
    report.elapsed_s = time.perf_counter() - started
    warehouse.finish_run(run_id, {"conversations": report.conversations, "labels": report.labels})
    return report


def _store_chunk(warehouse: Warehouse, result: ChunkLabels, run_id: str) -> None:
    rows = any(result.rows.values()) or any(result.status.values())
    if not (rows or result.stale or result.rewrites):
        return  # the worker staged its rows in the lake: nothing for the file
    if result.stale and warehouse.lake is not None:
        # Noted in the lake before the file takes the new text (lake_normalised.py).
        note_rewrites(warehouse.lake, run_id, result.stale)
    with warehouse.transaction():
        if result.stale:
            _forget_labels_of_old_text(warehouse, result.stale, run_id)
        store_rewrites(warehouse, result.rewrites)
        warehouse.insert_columns("enrichments", result.rows, ENRICHMENT_SCHEMA)
        warehouse.insert_columns("enrichment_status", result.status, STATUS_SCHEMA)


def _texts(doc: Doc) -> list[str | None]:
    conversation = doc.conversation
    return [conversation.subject, *(u.text for u in conversation.utterances)]


def _needed_by_later(chosen: Sequence[Component]) -> dict[str, bool]:
    """Whether each component's labels are required by a component after it."""
    needed = {}
    for position, component in enumerate(chosen):
        later = {label for c in chosen[position + 1 :] for label in c.requires}
        needed[component.name] = bool(later & set(component.assigns))
    return needed


def _forget_labels_of_old_text(
    warehouse: Warehouse, keys: set[tuple[str, int]], run_id: str
) -> None:
    """Drop labels earlier runs derived from text that has now been redacted: they may quote
    it. The conversations are relabelled from the new text (in this run for the components
    chosen, by the next `analyze` for the others)."""
    table = pa.table(
        {"conversation_id": [k[0] for k in keys], "version": [k[1] for k in keys]},
        schema=pa.schema([("conversation_id", _S), ("version", _I)]),
    )
    con = warehouse.con
    con.register("_redacted_keys", table)
    try:
        for relation in ("enrichments", "enrichment_status"):
            con.execute(
                f"DELETE FROM {warehouse.base_table(relation)} t USING _redacted_keys k "
                "WHERE t.conversation_id = k.conversation_id AND t.version = k.version "
                "AND t.run_id <> ?",
                [run_id],
            )
    finally:
        con.unregister("_redacted_keys")


def _add_row(
    rows: dict[str, list[Any]],
    doc: Doc,
    component: Component,
    annotation: Annotation,
    run_id: str,
    index: int,
    now: Any,
) -> None:
    Warehouse.append_row(
        rows,
        enrichment_id=f"{run_id}:{doc.conversation_id}:{component.name}:{index}",
        conversation_id=doc.conversation_id,
        version=doc.version,
        utterance_id=annotation.utterance_id,
        component=component.name,
        component_version=component.version,
        model_id=component.model_id,
        taxonomy_version=component.taxonomy_version,
        run_id=run_id,
        label=annotation.label,
        value=json.dumps(annotation.value, ensure_ascii=False, default=str),
        confidence=annotation.confidence,
        evidence=json.dumps([e.as_dict() for e in annotation.evidence]),
        created_at=now,
    )
