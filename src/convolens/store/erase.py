"""Deleting a conversation means every copy: warehouse rows, job rows, webhook deliveries,
spooled uploads, and the bytes DuckDB would otherwise leave in its file.

Deleted rows are only marked deleted in DuckDB: their bytes stay in the row group's blocks
until that row group is rewritten, and a rewritten row group's old blocks go to a free
list with their contents intact. So an erase (1) deletes the rows, (2) rewrites every row
group that held one of them, and every row group sharing a block with those (a whole
table where that includes its last row group), (3) checkpoints, and (4) overwrites the
free blocks with random bytes. After that the file
holds no byte of the conversation (tests/service/test_hardening_delete.py greps for it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from convolens.store.warehouse import Warehouse

__all__ = ["Edit", "Erased", "erase_conversation", "erase_conversations", "scrub_free_space"]

log = logging.getLogger("convolens.store")

# Job rows that name the conversation: as their subject, or in their request or result.
_JOBS_SQL = (
    "SELECT job_id, input_path, request FROM jobs WHERE conversation_id = ? "
    "OR contains(coalesce(CAST(request AS VARCHAR), ''), ?) "
    "OR contains(coalesce(CAST(result AS VARCHAR), ''), ?)"
)
# The same for a list of conversations (parameters: the list of ids, twice).
_JOBS_ANY = (
    "list_contains(?::VARCHAR[], conversation_id) OR len(list_filter(?::VARCHAR[], lambda c: "
    "contains(coalesce(CAST(request AS VARCHAR), '') || coalesce(CAST(result AS VARCHAR), ''), "
    "c))) > 0"
)


# An in-place edit: (table, SET clause, its parameters, WHERE condition, its parameters).
Edit = tuple[str, str, list[Any], str, list[Any]]


@dataclass
class Erased:
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _tables_with(wh: Warehouse, column: str) -> list[str]:
    rows = wh.query(
        "SELECT DISTINCT c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = 'main' AND c.column_name = ? AND t.table_type = 'BASE TABLE' "
        "ORDER BY 1",
        [column],
    )
    return [r["table_name"] for r in rows]


def _spooled_paths(wh: Warehouse, conversation_id: str, spool: Path | None) -> list[Path]:
    """The job inputs (and their sidecars, and a stream's audio) inside the spool."""
    if spool is None:
        return []
    root = spool.resolve()
    found: list[Path] = []
    for row in wh.query(_JOBS_SQL, [conversation_id] * 3):
        request = json.loads(row["request"]) if row["request"] else {}
        for name in (row["input_path"], request.get("input_path"), request.get("audio_path")):
            if not name:
                continue
            path = Path(name)
            for candidate in (path, path.with_name(path.stem + ".meta.json")):
                # Only what the service spooled: never a file a user ingested in place.
                if candidate.resolve().is_relative_to(root) and candidate not in found:
                    found.append(candidate)
    return found


def _uploaded_names(wh: Warehouse, conversation_id: str) -> list[str]:
    """The names uploads of it were sent under: an ingest run records them (the mapping's
    `$file`), and a name can hold the same text as the conversation."""
    names: list[str] = []
    for row in wh.query(_JOBS_SQL, [conversation_id] * 3):
        request = json.loads(row["request"]) if row["request"] else {}
        name = request.get("filename")
        if isinstance(name, str) and len(name) >= 3 and name not in names:
            names.append(name)
    return names


def _rowid_ranges(wh: Warehouse, table: str) -> list[tuple[int, int, set[int]]]:
    """(first rowid, end rowid, blocks) of each row group of `table`, from its storage."""
    sizes: dict[int, int] = defaultdict(int)
    blocks: dict[int, set[int]] = defaultdict(set)
    for r in wh.query(
        "SELECT row_group_id, column_path, segment_type, count, block_id, "
        f"additional_block_ids FROM pragma_storage_info('{table}')"
    ):
        if r["block_id"] is not None and r["block_id"] >= 0:
            blocks[r["row_group_id"]].add(int(r["block_id"]))
        blocks[r["row_group_id"]].update(int(b) for b in r["additional_block_ids"] or [])
        if r["column_path"] == "[0]" and r["segment_type"] != "VALIDITY":
            sizes[r["row_group_id"]] += int(r["count"])
    out, start = [], 0
    for group in sorted(set(sizes) | set(blocks)):
        out.append((start, start + sizes[group], blocks[group]))
        start += sizes[group]
    return out


def _rewrite_range(wh: Warehouse, table: str, lo: int, hi: int) -> None:
    """Rewrite the row group holding rowids [lo, hi) of a table with later row groups:
    all of it is deleted (the checkpoint then drops it and frees its blocks) and its live
    rows are appended, which lands them in the table's last row group."""
    keep = f"_erase_keep_{uuid.uuid4().hex[:8]}"
    wh.con.execute(
        f"CREATE TEMP TABLE {keep} AS SELECT * FROM {table} WHERE rowid >= ? AND rowid < ?",
        [lo, hi],
    )
    try:
        wh.con.execute(f"DELETE FROM {table} WHERE rowid >= ? AND rowid < ?", [lo, hi])
        wh.con.execute(f"INSERT INTO {table} SELECT * FROM {keep}")
    finally:
        wh.con.execute(f"DROP TABLE {keep}")


def _rewrite_table(wh: Warehouse, table: str) -> None:
    """Copy a table's live rows into a new table that takes its name. Needed where the
    rows to forget share the last row group: appends would go into that same row group,
    and a checkpoint keeps a row group's deleted rows (their bytes) with it. Views name
    tables, so they read the new one; the DDL (NOT NULL, DEFAULT) is the original's."""
    ddl = wh.query("SELECT sql FROM duckdb_tables() WHERE table_name = ?", [table])[0]["sql"]
    fresh = f"{table}__erase_{uuid.uuid4().hex[:8]}"
    head = f"CREATE TABLE {table}("
    if not ddl.startswith(head):
        raise RuntimeError(f"unexpected DDL for {table}: {ddl[:80]}")
    wh.con.execute(f"CREATE TABLE {fresh}(" + ddl[len(head) :])
    wh.con.execute(f"INSERT INTO {fresh} SELECT * FROM {table}")
    wh.con.execute(f"DROP TABLE {table}")
    wh.con.execute(f"ALTER TABLE {fresh} RENAME TO {table}")


def _rewrites(
    wh: Warehouse, where: dict[str, tuple[str, list[Any]]]
) -> dict[str, list[tuple[int, int]] | None]:
    """What to rewrite so no byte of the rows about to be deleted (`where`: table ->
    condition) stays in a live block: the row groups holding them and every row group,
    of any table, sharing a block with those (small segments share blocks). Per table:
    a list of rowid ranges, or None for the whole table (when its last row group is
    among them, since appends would land in it)."""
    tables = [
        r["table_name"]
        for r in wh.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
        )
    ]
    layout = {t: _rowid_ranges(wh, t) for t in tables}
    chosen: dict[str, set[int]] = defaultdict(set)  # table -> row group indexes
    dirty_blocks: set[int] = set()
    for table, (condition, params) in where.items():
        rowids = [
            r["rowid"] for r in wh.query(f"SELECT rowid FROM {table} WHERE {condition}", params)
        ]
        for index, (lo, hi, blocks) in enumerate(layout.get(table, [])):
            if any(lo <= rowid < hi for rowid in rowids):
                chosen[table].add(index)
                dirty_blocks |= blocks
        if rowids and not layout.get(table):  # not yet checkpointed: no layout to read
            chosen[table].add(0)
    for table, groups in layout.items():
        for index, (_, _, blocks) in enumerate(groups):
            if blocks & dirty_blocks:
                chosen[table].add(index)
    plan: dict[str, list[tuple[int, int]] | None] = {}
    for table, indexes in chosen.items():
        groups = layout.get(table, [])
        if not groups or len(groups) - 1 in indexes:
            plan[table] = None
        else:
            plan[table] = [(groups[i][0], groups[i][1]) for i in sorted(indexes)]
    return plan


def _checkpoint(wh: Warehouse, attempts: int = 50) -> None:
    for attempt in range(attempts):
        try:
            wh.con.execute("CHECKPOINT")
            return
        except duckdb.TransactionException:  # another write in flight: try again shortly
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)


def scrub_free_space(wh: Warehouse, max_rounds: int = 4) -> int:
    """Overwrite the file's free blocks with random bytes (they keep whatever deleted
    data they last held); returns how many blocks were overwritten."""
    table = f"_erase_fill_{uuid.uuid4().hex[:8]}"
    overwritten = 0
    try:
        for _ in range(max_rounds):
            size = wh.query("PRAGMA database_size")[0]
            free, block_size = int(size["free_blocks"]), int(size["block_size"])
            if not free:
                break
            overwritten += free
            # Random 64-bit values do not compress (8 bytes each, cheap to make): `free`
            # blocks' worth of them takes the whole free list.
            wh.con.execute(f"CREATE TABLE IF NOT EXISTS {table} (filler UBIGINT)")
            wh.con.execute(
                f"INSERT INTO {table} SELECT hash(i, random()) FROM range(?) t(i)",
                [free * block_size // 8 + 1],
            )
            _checkpoint(wh)
    finally:
        wh.con.execute(f"DROP TABLE IF EXISTS {table}")
        _checkpoint(wh)
    return overwritten


def erase_conversation(wh: Warehouse, conversation_id: str, *, spool: Path | None = None) -> Erased:
    """Delete every version of a conversation and everything holding its text: rows of
    every table keyed by conversation_id, the job rows and webhook deliveries that name
    it, the rejects of its uploads, its spooled files (only those under `spool`), and the
    freed bytes in the DuckDB file. A cluster whose representative statement came from
    it loses that statement; an ingest run that read its spooled file keeps "(deleted)"
    for the file's name."""
    return erase_conversations(wh, [conversation_id], spool=spool)


def _or(
    where: dict[str, tuple[str, list[Any]]], table: str, condition: str, params: list[Any]
) -> None:
    if table in where:
        old, old_params = where[table]
        where[table] = (f"({old}) OR ({condition})", [*old_params, *params])
    else:
        where[table] = (condition, params)


def erase_conversations(
    wh: Warehouse,
    conversation_ids: list[str],
    *,
    spool: Path | None = None,
    also: dict[str, tuple[str, list[Any]]] | None = None,
    edits: list[Edit] | None = None,
) -> Erased:
    """`erase_conversation` for many conversations in one pass (one rewrite, one scrub of
    the file, however many), plus `also`: further rows to delete, table -> (SQL condition,
    parameters), e.g. the rows that mention a person being erased, and `edits`: rows to
    keep with a mention edited out, (table, SET clause, its parameters, condition, its
    parameters)."""
    if wh.lake is not None and not wh.lake_is_set_aside:
        # The lake's files are rewritten without these conversations first; then the
        # tables, with the lake's views set aside on this connection (store/lake.py).
        in_lake = wh.lake.erase(conversation_ids)
        # Other conversations' rows that only mention what goes (a person's name) are
        # deleted or edited in the tables: their lake copy is replaced by the new rows.
        touched = _normalised_versions(wh, also, edits, set(conversation_ids))
        with wh.lake_set_aside():
            done = erase_conversations(wh, conversation_ids, spool=spool, also=also, edits=edits)
        if touched:
            from convolens.store.lake_normalised import replace_versions

            in_lake += replace_versions(wh, touched)
        done.rows["lake"] = in_lake
        return done
    ids = list(dict.fromkeys(conversation_ids))
    erased = Erased()
    paths = [p for cid in ids for p in _spooled_paths(wh, cid, spool)]
    paths = list(dict.fromkeys(paths))
    where: dict[str, tuple[str, list[Any]]] = {}
    if ids and _has_table(wh, "reviews") and _has_table(wh, "review_items"):
        # Reviewers' verdicts on its labels (keyed by item, not by conversation): first,
        # while the items that name the conversation are still there to find them by.
        where["reviews"] = (
            "item_id IN (SELECT item_id FROM review_items WHERE list_contains(?, conversation_id))",
            [ids],
        )
    if ids:
        for table in _tables_with(wh, "conversation_id"):
            if table != "jobs":
                where[table] = ("list_contains(?, conversation_id)", [ids])
        where["jobs"] = (_JOBS_ANY, [ids, ids])
        where["webhook_deliveries"] = (
            "len(list_filter(?::VARCHAR[], lambda c: contains(CAST(payload AS VARCHAR), c))) > 0",
            [ids],
        )
    if paths:
        _or(where, "rejects", "list_contains(?, source_path)", [[str(p) for p in paths]])
    for table, (condition, params) in (also or {}).items():
        _or(where, table, condition, params)
    for table, (condition, params) in where.items():
        n = wh.query(f"SELECT count(*) AS n FROM {table} WHERE {condition}", params)
        erased.rows[table] = int(n[0]["n"])
    # Spooled paths first: each holds the uploaded name, so it goes as one "(deleted)".
    mentioned = [str(p) for p in paths] + [n for cid in ids for n in _uploaded_names(wh, cid)]
    mentioned = list(dict.fromkeys(mentioned))
    for attempt in range(_ATTEMPTS):
        try:
            _delete_and_rewrite(wh, ids, where, mentioned, edits or [])
            break
        except duckdb.TransactionException:
            # A worker wrote to a table being rewritten (the job queue, the outbox): the
            # transaction rolled back whole; plan again from the current layout.
            with contextlib.suppress(duckdb.Error):  # already rolled back
                wh.con.execute("ROLLBACK")
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    # The redacted copies of its recording (speech/audio_redaction.py) and their manifests.
    from convolens.speech.audio_redaction import recording_files

    for path in [*paths, *(f for cid in ids for f in recording_files(wh.path, cid))]:
        if path.exists():
            path.unlink()
            erased.files.append(path.name)
    _checkpoint(wh)
    scrub_free_space(wh)
    return erased


_ATTEMPTS = 8


def _normalised_versions(
    wh: Warehouse,
    also: dict[str, tuple[str, list[Any]]] | None,
    edits: list[Edit] | None,
    erased: set[str],
) -> set[tuple[str, int]]:
    """(conversation id, version) of rows of the normalised tables that `also` deletes
    or `edits` edits, outside the conversations erased whole (the lake keeps a copy)."""
    from convolens.store.lake import NORMALISED_LAYERS

    conditions = [(t, c, p) for t, (c, p) in (also or {}).items()]
    conditions += [(t, c, p) for t, _, _, c, p in edits or []]
    found: set[tuple[str, int]] = set()
    for table, condition, params in conditions:
        if table in NORMALISED_LAYERS:
            rows = wh.con.execute(
                f"SELECT DISTINCT conversation_id, version FROM {table} WHERE {condition}", params
            ).fetchall()
            found |= {(str(r[0]), int(r[1])) for r in rows if r[0] not in erased}
    return found


def _delete_and_rewrite(
    wh: Warehouse,
    ids: list[str],
    where: dict[str, tuple[str, list[Any]]],
    paths: list[str],
    more_edits: list[Edit],
) -> None:
    """One transaction: edit the rows that only mention the conversation (a cluster's
    representative statement, an ingest run's file names), delete the rows that are
    it, and rewrite every row group that held either."""
    edits: list[Edit] = []
    clusters = sorted({r for cid in ids for r in _representative_rowids(wh, cid)})
    if clusters:
        condition = "list_contains(?, rowid)"
        edits.append(("clusters", "representative = ''", [], condition, [clusters]))
    if paths:
        # Spooled names carry the uploaded file's name: the run keeps "(deleted)".
        mentions = " OR ".join(["contains(CAST(args AS VARCHAR), ?)"] * len(paths))
        replaced = "CAST(args AS VARCHAR)"
        for _ in paths:
            replaced = f"replace({replaced}, ?, '(deleted)')"
        edits.append(("runs", f"args = {replaced}", list(paths), f"({mentions})", list(paths)))
    edits += more_edits
    touched = dict(where)
    for table, _, _, condition, params in edits:
        if table in touched:  # both edited and deleted from: plan for either
            old, old_params = touched[table]
            touched[table] = (f"({old}) OR ({condition})", [*old_params, *params])
        else:
            touched[table] = (condition, params)
    plan = _rewrites(wh, touched)
    with wh.transaction():
        for table, assignment, set_params, condition, params in edits:
            wh.con.execute(
                f"UPDATE {table} SET {assignment} WHERE {condition}", [*set_params, *params]
            )
        for table, (condition, params) in where.items():
            wh.con.execute(f"DELETE FROM {table} WHERE {condition}", params)
        for table, ranges in plan.items():
            if ranges is None:
                _rewrite_table(wh, table)
            else:
                for lo, hi in ranges:
                    _rewrite_range(wh, table, lo, hi)


def _has_table(wh: Warehouse, name: str) -> bool:
    return bool(
        wh.query(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_name = ?",
            [name],
        )
    )


def _representative_rowids(wh: Warehouse, cid: str) -> list[int]:
    """Clusters whose representative (one member's statement) came from this
    conversation: it goes, the cluster keeps its label and phrases."""
    if not (_has_table(wh, "clusters") and _has_table(wh, "cluster_members")):
        return []
    # Statements are stored cleaned of redaction placeholders: compare them cleaned.
    rows = wh.query(
        "SELECT rowid AS r FROM clusters WHERE representative <> '' AND EXISTS ("
        "SELECT 1 FROM utterances u WHERE u.conversation_id = ? AND contains("
        "trim(regexp_replace(u.text, '<[A-Z_]+>', ' ', 'g')), left(clusters.representative, 60)))",
        [cid],
    )
    return [int(r["r"]) for r in rows]
