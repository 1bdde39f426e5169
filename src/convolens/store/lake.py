"""The lake: every layer as partitioned Parquet apart from the DuckDB file.

Two kinds of layer live here, both as `<layer>/run_id=<run>/part-*.parquet`:

* the derived layers (`LAKE_LAYERS`: metrics_*, enrichments, enrichment_status), written
  by the engines' workers. The warehouse attaches them (`attach`): each is shadowed by a
  connection-local view over the DuckDB table plus the committed files, so every existing
  query, the API and the dashboard read the lake without change;
* a copy of the normalised layers (`NORMALISED_LAYERS`: conversations, participants,
  utterances, words), written by the driver when the warehouse writes them
  (store/lake_normalised.py). The DuckDB tables stay their authority and every query
  reads those; the copy is what workers read their conversations from, so that the
  driver ships keys, not conversations.

Writing is the same for both: files are staged under `_staging/<run_id>/`; the driver
commits the run when every batch is in: it moves the files to `<layer>/run_id=<run_id>/`
and then writes one manifest, `_manifests/<run_id>.json`, naming them. Readers see
exactly the files that manifests name, so a killed job (files staged or moved, no
manifest) leaves nothing half-visible; `vacuum()` clears its leftovers. A manifest is one
small object put once (rename on a local disk): that is the commit. A re-run is
idempotent because what is missing is decided from what is committed. Erasure rewrites
every file that holds a conversation (`erase`); text rewritten after intake replaces the
lake copy of those versions (`drop_versions`, then a new commit).

The lake is a local folder or any URI pyarrow's filesystems open (s3://, gs://,
abfs://, hdfs://).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "LAKE_LAYERS",
    "NORMALISED_LAYERS",
    "Lake",
    "LakeError",
    "StagedFiles",
    "short_reason",
    "sql_list",
    "staged_run",
]

# The layers written by the engines (analyze: metrics, enrich: labels). The warehouse
# reads them from the lake: `attach` shadows each table with a view over both.
LAKE_LAYERS: tuple[str, ...] = (
    "metrics_conversation",
    "metrics_participant",
    "metrics_participant_pairs",
    "enrichments",
    "enrichment_status",
)
# The normalised layers, copied to the lake when the warehouse writes them
# (store/lake_normalised.py): the DuckDB tables stay the catalog and the authority
# (versions, duplicate checks, every query), so `attach` never shadows them (a view over
# both would count each row twice). Workers read their conversations from these files.
NORMALISED_LAYERS: tuple[str, ...] = ("conversations", "participants", "utterances", "words")
_ALL_LAYERS = LAKE_LAYERS + NORMALISED_LAYERS
# Row groups small enough that a worker reading a range of conversation ids skips most
# of a big file by its statistics (the files are written sorted by conversation id).
_NORMALISED_ROW_GROUP = 16_384
# A recompute writes a metrics run again: the lake keeps both, readers see the newest run
# per conversation version (the DuckDB path deletes the old rows instead).
_LATEST_RUN_ONLY = {"metrics_conversation", "metrics_participant", "metrics_participant_pairs"}
_RUN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,120}$")

StagedFiles = dict[str, list[str]]


class LakeError(RuntimeError):
    """A lake that cannot be opened or written (bad URI, no access), said plainly."""


@dataclass
class Lake:
    """A lake at `uri` (a folder or a pyarrow filesystem URI)."""

    uri: str
    filesystem: pafs.FileSystem = field(init=False, repr=False)
    root: str = field(init=False)

    def __post_init__(self) -> None:
        try:
            if "://" in self.uri:
                self.filesystem, self.root = pafs.FileSystem.from_uri(self.uri)
            else:
                self.filesystem = pafs.LocalFileSystem()
                self.root = str(Path(self.uri).expanduser().resolve())
        except (OSError, pa.ArrowException) as exc:
            raise LakeError(f"lake {self.uri!r}: cannot open ({short_reason(exc)})") from None
        self.root = self.root.rstrip("/")
        # Manifests read so far, by name: a manifest never changes once written, so a
        # new connection (the service opens one per request) lists the folder only.
        self._manifests: dict[str, dict[str, list[str]]] = {}

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    # -- writing (workers) ----------------------------------------------------------------
    def stage(self, run_id: str, tables: Mapping[str, pa.Table]) -> StagedFiles:
        """Write one batch's tables under the run's staging folder; returns the paths."""
        _check_run_id(run_id)
        staged: StagedFiles = {}
        for layer, table in tables.items():
            if layer not in _ALL_LAYERS:
                raise LakeError(f"{layer!r} is not a lake layer ({', '.join(_ALL_LAYERS)})")
            if table.num_rows == 0:
                continue
            folder = f"{self.root}/_staging/{run_id}/{layer}"
            self.filesystem.create_dir(folder, recursive=True)
            path = f"{folder}/part-{uuid.uuid4().hex}.parquet"
            self._write(table, path, layer)
            staged.setdefault(layer, []).append(path)
        return staged

    # -- committing (driver) --------------------------------------------------------------
    def commit(self, run_id: str, staged: Iterable[StagedFiles]) -> int:
        """Make the run's staged files visible at once; returns how many files."""
        _check_run_id(run_id)
        files: dict[str, list[str]] = {}
        for batch in staged:
            for layer, paths in batch.items():
                files.setdefault(layer, []).extend(paths)
        committed: dict[str, list[str]] = {}
        for layer, paths in sorted(files.items()):
            folder = f"{self.root}/{layer}/run_id={run_id}"
            self.filesystem.create_dir(folder, recursive=True)
            for path in sorted(paths):
                target = f"{folder}/{path.rsplit('/', 1)[-1]}"
                self.filesystem.move(path, target)
                committed.setdefault(layer, []).append(_relative(self.root, target))
        self._write_manifest(run_id, committed)
        self.drop_folder(f"{self.root}/_staging/{run_id}")
        return sum(len(p) for p in committed.values())

    def _write_manifest(self, run_id: str, files: Mapping[str, list[str]]) -> None:
        manifest = json.dumps({"run_id": run_id, "files": files}, sort_keys=True)
        self.filesystem.create_dir(f"{self.root}/_manifests", recursive=True)
        final = f"{self.root}/_manifests/{run_id}.json"
        if self.is_local:
            # Write aside, then rename: a reader sees the whole manifest or none.
            partial = f"{final}.{uuid.uuid4().hex}.tmp"
            with self.filesystem.open_output_stream(partial) as out:
                out.write(manifest.encode())
            self.filesystem.move(partial, final)
        else:  # an object store's single PUT is atomic
            with self.filesystem.open_output_stream(final) as out:
                out.write(manifest.encode())

    def _write(self, table: pa.Table, path: str, layer: str) -> None:
        size = _NORMALISED_ROW_GROUP if layer in NORMALISED_LAYERS else None
        pq.write_table(
            table, path, filesystem=self.filesystem, compression="zstd", row_group_size=size
        )

    # -- erasing --------------------------------------------------------------------------
    def erase(self, conversation_ids: Sequence[str]) -> int:
        """Rewrite every committed file that holds rows of these conversations without
        them; returns the rows removed. Per run: new files first, then the run's manifest
        names them instead (one atomic write), then the old files go."""
        wanted = pa.array(list(dict.fromkeys(conversation_ids)), type=pa.string())
        if len(wanted) == 0:
            return 0
        return self._rewrite(
            lambda t: pc.invert(pc.is_in(t.column("conversation_id"), wanted)), None
        )

    def drop_versions(self, keys: Iterable[tuple[str, int]], layers: Sequence[str]) -> int:
        """`erase` limited to these (conversation id, version) pairs and `layers`: the lake
        copy of conversation versions whose text was rewritten (redaction) goes before
        the new copy is published; returns the rows removed."""
        wanted = pa.array(sorted({f"{cid}\x1f{int(v)}" for cid, v in keys}), type=pa.string())
        if len(wanted) == 0:
            return 0

        def keep(table: pa.Table) -> pa.Array:
            joined = pc.binary_join_element_wise(
                table.column("conversation_id"), pc.cast(table.column("version"), pa.string()),
                "\x1f",
            )  # fmt: skip
            return pc.invert(pc.is_in(joined, wanted))

        return self._rewrite(keep, layers)

    def _rewrite(self, keep_rows: Callable[[pa.Table], Any], layers: Sequence[str] | None) -> int:
        """Rewrite the committed files of `layers` (None: every file a manifest names)
        keeping the rows `keep_rows` marks."""
        removed = 0
        for path, files in self._read_manifests().items():
            run_id = path.rsplit("/", 1)[-1].removesuffix(".json")
            changed, old = False, []
            kept: dict[str, list[str]] = {}
            for layer, names in files.items():
                for name in names:
                    if layers is not None and layer not in layers:
                        kept.setdefault(layer, []).append(name)
                        continue
                    full = f"{self.root}/{name}"
                    table = pq.read_table(full, filesystem=self.filesystem)
                    remaining = table.filter(keep_rows(table))
                    if remaining.num_rows == table.num_rows:
                        kept.setdefault(layer, []).append(name)
                        continue
                    changed = True
                    removed += table.num_rows - remaining.num_rows
                    old.append(full)
                    if remaining.num_rows:
                        folder = full.rsplit("/", 1)[0]
                        fresh = f"{folder}/part-{uuid.uuid4().hex}.parquet"
                        self._write(remaining, fresh, layer)
                        kept.setdefault(layer, []).append(_relative(self.root, fresh))
            if changed:
                self._write_manifest(run_id, kept)
                for full in old:
                    self.filesystem.delete_file(full)
        return removed

    def abandon(self, run_id: str) -> None:
        """Forget a failed run's staged files (nothing of it was visible)."""
        _check_run_id(run_id)
        self.drop_folder(f"{self.root}/_staging/{run_id}")

    # -- reading --------------------------------------------------------------------------
    def committed(self) -> dict[str, list[str]]:
        """Every committed file per layer (full paths), in run order: the derived layers
        (`LAKE_LAYERS`) and the normalised copies (`NORMALISED_LAYERS`)."""
        out: dict[str, list[str]] = {layer: [] for layer in _ALL_LAYERS}
        for files in self._read_manifests().values():
            for layer, paths in files.items():
                if layer in out:
                    out[layer].extend(f"{self.root}/{p}" for p in paths)
        return out

    def _read_manifests(self) -> dict[str, dict[str, list[str]]]:
        """Each manifest's files by layer (paths relative to the root), in run order."""
        selector = pafs.FileSelector(f"{self.root}/_manifests", allow_not_found=True)
        found: dict[str, dict[str, list[str]]] = {}
        try:
            infos = sorted(
                (i for i in self.filesystem.get_file_info(selector) if i.path.endswith(".json")),
                key=lambda i: i.path,
            )
            for info in infos:
                # An erasure rewrites a manifest: known by its new time and size.
                key = f"{info.path}|{info.mtime_ns}|{info.size}"
                if key not in self._manifests:
                    with self.filesystem.open_input_stream(info.path) as stream:
                        self._manifests[key] = _manifest_files(json.loads(stream.read()))
                found[info.path] = self._manifests[key]
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise LakeError(f"lake {self.uri!r}: cannot read ({short_reason(exc)})") from None
        return found

    def vacuum(self) -> list[str]:
        """Delete files no manifest names (a killed job's leftovers); returns them."""
        named = {p for paths in self.committed().values() for p in paths}
        removed: list[str] = []
        self.drop_folder(f"{self.root}/_staging")
        for layer in _ALL_LAYERS:
            selector = pafs.FileSelector(f"{self.root}/{layer}", recursive=True)
            selector.allow_not_found = True
            for info in self.filesystem.get_file_info(selector):
                if info.type == pafs.FileType.File and info.path not in named:
                    self.filesystem.delete_file(info.path)
                    removed.append(info.path)
        return removed

    def attach(self, con: duckdb.DuckDBPyConnection, catalog: str) -> None:
        """Shadow each lake layer on `con` with a view over the table plus the lake."""
        for layer, paths in self.committed().items():
            if layer in NORMALISED_LAYERS:
                continue  # the DuckDB tables are the authority (see NORMALISED_LAYERS)
            if not paths:
                con.execute(f'DROP VIEW IF EXISTS temp.main."{layer}"')
                continue
            table = f'"{catalog}".main."{layer}"'
            if self.is_local:
                source = f"read_parquet({sql_list(paths)}, union_by_name = true)"
            else:
                # DuckDB cannot open every pyarrow filesystem: hand it an Arrow dataset.
                name = f"_lake_{layer}"
                con.register(name, ds.dataset(paths, filesystem=self.filesystem))
                source = name
            lake_rows = f"SELECT * FROM {source}"
            if layer in _LATEST_RUN_ONLY:
                # The newest run by when it started (run ids of one second do not sort).
                lake_rows = (
                    f'SELECT l.* FROM {source} l JOIN "{catalog}".main.runs r USING (run_id) '
                    "QUALIFY r.started_at = max(r.started_at) OVER "
                    "(PARTITION BY l.conversation_id, l.version, l.metrics_version)"
                )
                # Lake rows replace the table's rows for the same conversation version.
                table_rows = (
                    f"SELECT * FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM {source} l "
                    "WHERE l.conversation_id = t.conversation_id AND l.version = t.version "
                    "AND l.metrics_version = t.metrics_version)"
                )
            else:
                table_rows = f"SELECT * FROM {table}"
            con.execute(
                f'CREATE OR REPLACE TEMP VIEW "{layer}" AS '
                f"{table_rows} UNION ALL BY NAME {lake_rows}"
            )

    def drop_folder(self, folder: str) -> None:
        try:
            self.filesystem.delete_dir(folder)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if "not found" not in str(exc).lower() and "does not exist" not in str(exc).lower():
                raise


@contextmanager
def staged_run(warehouse: Any, run_id: str) -> Iterator[list[StagedFiles]]:
    """Collects the files workers stage for one run of `warehouse` (a Warehouse) and
    commits them when the block ends, so the run's rows become visible at once or, if the
    block fails or is killed, not at all. Without a lake there is nothing to stage."""
    lake = warehouse.lake
    staged: list[StagedFiles] = []
    try:
        yield staged
    except BaseException:
        if lake is not None:
            lake.abandon(run_id)
        raise
    if lake is not None:
        lake.commit(run_id, staged)
        warehouse.refresh_lake()


def tables_from_columns(
    columns: Mapping[str, Mapping[str, Sequence[Any]]], schemas: Mapping[str, pa.Schema]
) -> dict[str, pa.Table]:
    """Arrow tables for the lake from the column lists the runners build."""
    return {
        layer: pa.Table.from_pydict(dict(cols), schema=schemas[layer])
        for layer, cols in columns.items()
        if any(len(v) for v in cols.values())
    }


def _manifest_files(manifest: object) -> dict[str, list[str]]:
    """A manifest's files, keeping only paths inside the lake (no absolute, no '..')."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        return {}
    return {
        str(layer): [
            p
            for p in paths
            if isinstance(p, str) and not p.startswith("/") and ".." not in p.split("/")
        ]
        for layer, paths in files.items()
        if isinstance(paths, list)
    }


def _check_run_id(run_id: str) -> None:
    # Run ids become folder names: nothing that could climb out of the lake.
    if not _RUN_ID.match(run_id) or ".." in run_id:
        raise LakeError(f"bad run id {run_id!r}")


def _relative(root: str, path: str) -> str:
    return path[len(root) + 1 :] if path.startswith(root + "/") else path


def sql_list(paths: Sequence[str]) -> str:
    """Paths as a DuckDB list literal, quotes escaped."""
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def short_reason(exc: BaseException) -> str:
    """An error's first line, for a message that must not carry a traceback."""
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
