"""The normalised layers (conversations, participants, utterances, words) in the lake.

The DuckDB file stays their catalog and authority: ingest writes them there first
(versions, duplicate checks), and every query reads them there. With a lake set, each
conversation version is also copied to `<layer>/run_id=<run>/part-*.parquet`, named by a
manifest like the derived layers (store/lake.py: stage, move, one manifest write), so
that workers anywhere read their conversations from the lake instead of the driver
reading and shipping them:

* `publish_versions` after every ingest commit (store/writer.py), for the new versions;
* `publish_missing` when a warehouse adopts a lake (a backfill) and before a job's
  workers read the lake: whatever the DuckDB file has and the lake lacks (a job killed
  between its DuckDB commit and its lake commit) is published, so a re-run is idempotent;
* `replace_versions` when text is rewritten after intake (redaction) or edited by an
  erasure: the old copy goes from the lake first, then the new one is published.

`LakeConversations` is the reading side, for workers: an in-memory DuckDB connection
whose `conversations`, `participants`, `utterances` and `words` are the lake's files, so
the warehouse's own SQL (store/reader.py, analyze.py) runs unchanged over them.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from convolens.store.lake import (
    NORMALISED_LAYERS,
    Lake,
    LakeError,
    StagedFiles,
    short_reason,
    sql_list,
)

if TYPE_CHECKING:
    from convolens.store.warehouse import Warehouse

__all__ = [
    "QUOTING_LAYERS",
    "LakeConversations",
    "clear_rewrites",
    "complete_lake",
    "normalised_tables",
    "note_rewrites",
    "publish_missing",
    "publish_versions",
    "replace_versions",
    "replay_rewrites",
]

# JSON columns travel as text (what DuckDB hands Python for them anyway); rows sorted by
# conversation so a reader's range filter skips row groups.
_SELECT = {
    "conversations": "SELECT t.* REPLACE (t.meta::VARCHAR AS meta) FROM conversations t "
    "SEMI JOIN {keys} USING (conversation_id, version) ORDER BY conversation_id, version",
    "participants": "SELECT t.* REPLACE (t.external_ids::VARCHAR AS external_ids) "
    "FROM participants t SEMI JOIN {keys} USING (conversation_id, version) "
    "ORDER BY conversation_id, version, position",
    "utterances": "SELECT t.* REPLACE (t.meta::VARCHAR AS meta) FROM utterances t "
    "SEMI JOIN {keys} USING (conversation_id, version) ORDER BY conversation_id, version, seq",
    "words": "SELECT t.* FROM words t SEMI JOIN {keys} USING (conversation_id, version) "
    "ORDER BY conversation_id, version, utterance_id, word_index",
}
_KEYS = pa.schema([("conversation_id", pa.string()), ("version", pa.int32())])
# Conversation versions per staged file: a backfill of a big warehouse is many files of
# bounded size, not one table in memory.
_CHUNK = 5_000


def _keys_table(keys: Iterable[tuple[str, int]]) -> pa.Table:
    pairs = sorted({(str(cid), int(v)) for cid, v in keys})
    return pa.table(
        {"conversation_id": [p[0] for p in pairs], "version": [p[1] for p in pairs]},
        schema=_KEYS,
    )


def normalised_tables(
    con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[str, int]]
) -> dict[str, pa.Table]:
    """The DuckDB tables' rows of these conversation versions, per normalised layer."""
    name = f"_lake_keys_{uuid.uuid4().hex}"
    con.register(name, _keys_table(keys))
    try:
        return {
            layer: con.sql(_SELECT[layer].format(keys=name)).to_arrow_table()
            for layer in NORMALISED_LAYERS
        }
    finally:
        con.unregister(name)


def _lake_run_id(kind: str) -> str:
    return f"normalised-{kind}-{uuid.uuid4().hex[:12]}"


def stage_versions(
    warehouse: Warehouse, lake: Lake, run_id: str, keys: Sequence[tuple[str, int]]
) -> list[StagedFiles]:
    """Stage these versions' rows under `run_id` (the caller commits them)."""
    ordered = sorted(set(keys))
    return [
        lake.stage(run_id, normalised_tables(warehouse.con, ordered[i : i + _CHUNK]))
        for i in range(0, len(ordered), _CHUNK)
    ]


def publish_versions(
    warehouse: Warehouse, keys: Sequence[tuple[str, int]], kind: str = "ingest"
) -> int:
    """Copy these conversation versions to the lake in one commit; returns the files."""
    lake = warehouse.lake
    if lake is None or not keys:
        return 0
    run_id = _lake_run_id(kind)
    try:
        staged = stage_versions(warehouse, lake, run_id, keys)
    except BaseException:
        with contextlib.suppress(OSError):  # the lake's own error is the one to say
            lake.abandon(run_id)
        raise
    if not any(staged):  # versions erased meanwhile: no rows, no run
        lake.abandon(run_id)
        return 0
    return lake.commit(run_id, staged)


def lake_versions(lake: Lake) -> pa.Table:
    """(conversation_id, version) of every conversation version the lake holds."""
    paths = lake.committed()["conversations"]
    if not paths:
        return _KEYS.empty_table()
    return (
        ds.dataset(paths, filesystem=lake.filesystem, format="parquet")
        .to_table(columns=["conversation_id", "version"])
        .cast(_KEYS)
    )


def publish_missing(warehouse: Warehouse) -> int:
    """Publish every conversation version the DuckDB file has and the lake lacks (the
    backfill of a warehouse adopting a lake, and the repair after a killed job); returns
    how many versions. Run twice, the second publishes nothing."""
    lake = warehouse.lake
    if lake is None:
        return 0
    replay_rewrites(warehouse)
    name = f"_lake_has_{uuid.uuid4().hex}"
    warehouse.con.register(name, lake_versions(lake))
    try:
        rows = warehouse.con.execute(
            "SELECT conversation_id, version FROM conversations "
            f"ANTI JOIN {name} USING (conversation_id, version)"
        ).fetchall()
    finally:
        warehouse.con.unregister(name)
    missing = [(str(r[0]), int(r[1])) for r in rows]
    publish_versions(warehouse, missing, "backfill")
    return len(missing)


def complete_lake(warehouse: Warehouse) -> list[str]:
    """`publish_missing` at the end of an ingest: each batch's versions went to the lake
    as it was written (store/writer.py), this copies what a failed lake write left out.
    The file has them whatever the lake says, so a lake that still fails is a warning
    (the next ingest or job copies them), not a failed ingest."""
    try:
        publish_missing(warehouse)
    except (LakeError, OSError, pa.ArrowException) as exc:
        return [f"the lake's copy of this ingest is incomplete: {short_reason(exc)}"]
    return []


def replace_versions(
    warehouse: Warehouse,
    keys: Iterable[tuple[str, int]],
    *,
    also_layers: Sequence[str] = (),
    run_id: str | None = None,
    staged: list[StagedFiles] | None = None,
) -> int:
    """Replace the lake's copy of these versions with the DuckDB file's rows (text
    rewritten after intake): the old rows go from every committed file first (with those
    of `also_layers`, e.g. labels that quoted the old text), then the new rows are staged
    under `run_id` into `staged` for the caller's commit, or committed here. A job killed
    in between leaves the versions out of the lake, never the old text in it;
    `publish_missing` puts them back. Returns the rows removed."""
    lake = warehouse.lake
    wanted = sorted(set(keys))
    if lake is None or not wanted:
        return 0
    removed = lake.drop_versions(wanted, (*NORMALISED_LAYERS, *also_layers))
    if staged is not None and run_id is not None:
        staged.extend(stage_versions(warehouse, lake, run_id, wanted))
    else:
        publish_versions(warehouse, wanted, "rewrite")
    return removed


class LakeConversations:
    """The lake's normalised layers on an in-memory DuckDB connection, for a worker.

    `select(keys)` points the connection's `conversations`, `participants`, `utterances`
    and `words` at the lake's committed files, narrowed to the keys' range of ids (the
    files' statistics skip the rest), and returns the connection: the warehouse's own
    queries (store/reader.py `conversations_from`, analyze.py) then run over it.
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.con = duckdb.connect(":memory:")
        # The same zone as the warehouse's connection: timestamps come back alike.
        self.con.execute("SET TimeZone = 'UTC'")
        # A worker has one CPU (one actor each); a batch's range is a few row groups.
        self.con.execute("SET threads = 1")
        # Per layer, the dataset of the files committed when it was last opened.
        self._datasets: dict[str, tuple[list[str], ds.Dataset]] = {}

    def select(self, keys: Sequence[tuple[str, int]]) -> duckdb.DuckDBPyConnection:
        committed = self.lake.committed()
        ids = [str(k[0]) for k in keys]
        low, high = (min(ids), max(ids)) if ids else ("", "")
        for layer in NORMALISED_LAYERS:
            paths = committed[layer]
            self.con.execute(f'DROP VIEW IF EXISTS "{layer}"')
            if self.lake.is_local and paths:
                low_sql, high_sql = (v.replace("'", "''") for v in (low, high))
                self.con.execute(
                    f'CREATE OR REPLACE TEMP VIEW "{layer}" AS SELECT * FROM '
                    f"read_parquet({sql_list(paths)}, union_by_name = true) "
                    f"WHERE conversation_id BETWEEN '{low_sql}' AND '{high_sql}'"
                )
                continue
            # DuckDB cannot open every pyarrow filesystem: read through an Arrow dataset.
            self.con.register(layer, self._range(layer, paths, low, high))
        return self.con

    def _range(self, layer: str, paths: list[str], low: str, high: str) -> Any:
        if not paths:
            return _empty(layer)
        known = self._datasets.get(layer)
        if known is None or known[0] != paths:
            known = (paths, ds.dataset(paths, filesystem=self.lake.filesystem))
            self._datasets[layer] = known
        field = pc.field("conversation_id")
        return known[1].to_table(filter=(field >= low) & (field <= high))

    def close(self) -> None:
        self.con.close()


def _empty(layer: str) -> pa.Table:
    """No file of this layer yet (no recording, so no words): no rows, the same columns."""
    from convolens.store import writer

    schema = {
        "conversations": writer.CONVERSATION_SCHEMA,
        "participants": writer.PARTICIPANT_SCHEMA,
        "utterances": writer.UTTERANCE_SCHEMA,
        "words": writer.WORD_SCHEMA,
    }[layer]
    return schema.empty_table()


# -- rewrites in flight ---------------------------------------------------------------
# Text is rewritten in the file batch by batch, and the lake copy replaced once at the end
# of the run. So that a run killed in between cannot leave the old text in the lake for
# good, the keys of each batch are noted in the lake *before* the file commits the new
# text (`note_rewrites`); the run clears its notes once the lake copy is replaced
# (`clear_rewrites`), and whatever notes a killed run left are replayed by the next
# `replay_rewrites` (every `publish_missing`, every labelling run with a lake).
_NOTES = "_rewrites"
# Layers that may quote the old text besides the normalised copy: earlier runs' labels
# (the file's rows go by the runner's `_forget_labels_of_old_text`).
QUOTING_LAYERS = ("enrichments", "enrichment_status")


def note_rewrites(lake: Lake, run_id: str, keys: Iterable[tuple[str, int]]) -> None:
    """Note, durably, that these versions' text is about to be rewritten by `run_id`."""
    folder = f"{lake.root}/{_NOTES}/{run_id}"
    lake.filesystem.create_dir(folder, recursive=True)
    body = json.dumps(sorted([str(cid), int(v)] for cid, v in keys)).encode()
    with lake.filesystem.open_output_stream(f"{folder}/{uuid.uuid4().hex}.json") as out:
        out.write(body)


def clear_rewrites(lake: Lake, run_id: str) -> None:
    lake.drop_folder(f"{lake.root}/{_NOTES}/{run_id}")


def replay_rewrites(warehouse: Warehouse, *, skip_run: str | None = None) -> int:
    """Replace the lake copy of versions that a killed run noted and never replaced
    (other than `skip_run`'s, the run going on); returns how many versions."""
    lake = warehouse.lake
    if lake is None:
        return 0
    selector = pafs.FileSelector(f"{lake.root}/{_NOTES}", recursive=True, allow_not_found=True)
    by_run: dict[str, set[tuple[str, int]]] = {}
    for info in lake.filesystem.get_file_info(selector):
        if info.type != pafs.FileType.File or not info.path.endswith(".json"):
            continue
        run_id = info.path.rsplit("/", 2)[-2]
        if run_id == skip_run:
            continue
        with lake.filesystem.open_input_stream(info.path) as stream:
            try:
                pairs = json.loads(stream.read())
            except ValueError:
                pairs = []  # a note torn by the kill: its batch never reached the file
        by_run.setdefault(run_id, set()).update((str(c), int(v)) for c, v in pairs)
    keys: set[tuple[str, int]] = set().union(*by_run.values()) if by_run else set()
    # Versions erased since are not in the file any more: nothing to publish for them.
    replace_versions(warehouse, keys, also_layers=QUOTING_LAYERS)
    for run_id in by_run:
        clear_rewrites(lake, run_id)
    return len(keys)
