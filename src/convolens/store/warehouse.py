"""The DuckDB warehouse file: connection, migrations, runs, and bulk inserts.

One `Warehouse` wraps one DuckDB connection. Writes go through Arrow tables so that a
batch of 100,000 rows is one INSERT, not 100,000.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from convolens import __version__
from convolens.store.lake import LAKE_LAYERS, Lake, LakeError, short_reason
from convolens.store.lake_normalised import publish_missing
from convolens.store.schema import MIGRATIONS

__all__ = ["DEFAULT_DB", "Warehouse", "WarehouseError", "WarehouseLockedError", "default_db_path"]

DEFAULT_DB = "convolens.duckdb"


class WarehouseError(RuntimeError):
    """A warehouse problem the user can act on (wrong file, newer schema, unknown id)."""


class WarehouseLockedError(WarehouseError):
    """Another process has the file open: DuckDB lets one process open a file at a time
    (read-write), so a second `convolens` process cannot even read it."""

    def __init__(self, path: Path, pid: int | None, holder: str | None) -> None:
        self.path, self.pid, self.holder = path, pid, holder
        who = f"PID {pid}" if pid is not None else "another process"
        if holder:
            who += f": {holder}"
        super().__init__(
            f"{path}: in use by another process ({who}); DuckDB lets one process open a "
            "warehouse file at a time: wait for it to finish (or stop it), then run this again"
        )


# DuckDB's IOException: 'Could not set lock on file "...": Conflicting lock is held in
# /usr/bin/python3.11 (PID 7634) by user me. See also ...'
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


def _lock_error(path: Path, exc: duckdb.Error) -> WarehouseLockedError | None:
    """A clear error naming the process that holds `path`, if `exc` is DuckDB's lock error."""
    message = str(exc)
    if "Could not set lock" not in message:
        return None
    match = _LOCK_HOLDER.search(message)
    if match is None:
        return WarehouseLockedError(path, None, None)
    pid = int(match["pid"])
    return WarehouseLockedError(path, pid, _command_line(pid) or Path(match["exe"]).name)


def _command_line(pid: int, limit: int = 80) -> str | None:
    """`convolens ingest examples/` rather than `python3.11`, where /proc says (Linux)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    argv = [a for a in argv if a]
    if len(argv) > 1 and Path(argv[0]).name.startswith("python"):
        argv = argv[1:]  # the interpreter running a console script: name the script
    if not argv:
        return None
    line = " ".join(" ".join([Path(argv[0]).name, *argv[1:]]).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def default_db_path() -> Path:
    return Path(os.environ.get("CONVOLENS_DB", DEFAULT_DB))


def now_utc() -> datetime:
    return datetime.now(UTC)


class Warehouse:
    """A convolens warehouse in a DuckDB file (created and migrated on first open)."""

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if read_only and not self.path.exists():
            raise WarehouseError(
                f"{self.path}: no warehouse here yet; run 'convolens ingest PATH' first"
            )
        self._on_close: Callable[[], None] | None = None
        self.lake: Lake | None = None
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            locked = _lock_error(self.path, exc)
            if locked is not None:
                raise locked from None
            raise WarehouseError(f"{self.path}: cannot open as a DuckDB warehouse: {exc}") from exc
        # Timestamps are stored and bucketed (by day, by week) in UTC whatever the host's zone.
        self.con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            self.migrate()
        else:
            self._check_schema()
        self._attach_lake()

    def cursor(self, *, on_close: Callable[[], None] | None = None) -> Warehouse:
        """Another handle on the same open database, for use from another thread.

        DuckDB connections are not shared between threads; a cursor is a new connection to
        the same database (same transactions and locking), so the service gives each request
        and worker its own. Close it when done; `on_close` then runs (in the closing thread:
        the service releases a lock it took for this handle).
        """
        other = object.__new__(Warehouse)
        other.path = self.path
        other._on_close = on_close
        other.con = self.con.cursor()
        other.con.execute("SET TimeZone = 'UTC'")
        # The lake's views are connection-local: each handle attaches them again (the
        # same Lake, so manifests already read are not read again).
        other.lake = self.lake
        other._attach_lake()
        return other

    # -- lake -----------------------------------------------------------------------------
    def _catalog(self) -> str:
        row = self.con.execute("SELECT current_database()").fetchone()
        return str(row[0]) if row else "main"

    def _attach_lake(self) -> None:
        """Read the lake's committed layers through this connection (store/lake.py)."""
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'lake_config'"
        ).fetchone()
        if not exists or not exists[0]:
            return
        row = self.con.execute(
            "SELECT uri FROM lake_config ORDER BY set_at DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return
        try:
            if self.lake is None or self.lake.uri != row[0]:
                self.lake = Lake(row[0])
            self.refresh_lake()
        except LakeError as exc:
            raise WarehouseError(f"{self.path}: its lake cannot be read: {exc}") from None

    def refresh_lake(self) -> None:
        """See what the lake has committed since this connection attached it."""
        if self.lake is not None:
            self.lake.attach(self.con, self._catalog())

    def set_lake(self, uri: str) -> Lake:
        """Keep the derived layers in the lake at `uri` from now on (every opener reads
        it), with a copy of the normalised layers: what the file holds already is copied
        now (store/lake_normalised.py), so a warehouse adopting a lake has a whole lake."""
        lake = Lake(uri)
        # A folder is kept as an absolute path: every opener finds it wherever it runs from.
        stored = lake.root if lake.is_local else lake.uri
        if stored != uri:
            lake = Lake(stored)
        with self.transaction():
            self.con.execute("DELETE FROM lake_config")
            self.con.execute("INSERT INTO lake_config VALUES (?, ?)", [stored, now_utc()])
        self.lake = lake
        self.refresh_lake()
        try:
            publish_missing(self)
        except (OSError, pa.ArrowException) as exc:
            # Kept as the lake all the same: the next ingest or job copies what is missing.
            raise LakeError(f"lake {uri!r}: cannot write ({short_reason(exc)})") from None
        return lake

    @contextmanager
    def lake_set_aside(self) -> Iterator[None]:
        """This connection reads and writes the DuckDB tables alone for a while (erasure
        deletes from them); the lake's views come back afterwards."""
        self._lake_set_aside = True
        try:
            for layer in LAKE_LAYERS:
                self.con.execute(f'DROP VIEW IF EXISTS temp.main."{layer}"')
            yield
        finally:
            self._lake_set_aside = False
            self.refresh_lake()

    @property
    def lake_is_set_aside(self) -> bool:
        return getattr(self, "_lake_set_aside", False)

    def base_table(self, table: str) -> str:
        """The table itself, where the lake shadows it with a view (writes go here)."""
        if self.lake is not None and table in LAKE_LAYERS:
            return f'"{self._catalog()}".main."{table}"'
        return table

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.con.close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    def _check_schema(self) -> None:
        current, latest = self.schema_version(), MIGRATIONS[-1].version
        if current > latest:
            raise WarehouseError(
                f"{self.path}: schema version {current} is newer than this convolens "
                f"understands ({latest}); upgrade convolens"
            )
        if current < latest:
            raise WarehouseError(
                f"{self.path}: schema version {current} needs migrating to {latest}; "
                "open it once without --read-only (any write command migrates it)"
            )

    def migrate(self) -> list[int]:
        """Apply pending migrations, each in its own transaction; returns those applied."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        current = self.schema_version()
        latest = MIGRATIONS[-1].version
        if current > latest:
            self._check_schema()
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            with self.transaction():
                self.con.execute(migration.sql)
                self.con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [migration.version, migration.name, now_utc()],
                )
            applied.append(migration.version)
        return applied

    # -- helpers --------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def insert_columns(
        self, table: str, columns: Mapping[str, Sequence[Any]], schema: pa.Schema
    ) -> int:
        """Insert column lists into `table` in one statement, matching columns by name."""
        if not any(len(values) for values in columns.values()):
            return 0
        arrow = pa.Table.from_pydict(dict(columns), schema=schema)
        name = f"_insert_{uuid.uuid4().hex}"
        self.con.register(name, arrow)
        try:
            self.con.execute(f"INSERT INTO {self.base_table(table)} BY NAME SELECT * FROM {name}")
        finally:
            self.con.unregister(name)
        return arrow.num_rows

    @staticmethod
    def append_row(columns: Mapping[str, list[Any]], **row: Any) -> None:
        """Append one row to column lists (the layout `insert_columns` takes)."""
        for key, value in row.items():
            columns[key].append(value)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, kind: str, args: Mapping[str, Any] | None = None) -> str:
        run_id = f"{kind}-{now_utc():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.con.execute(
            "INSERT INTO runs (run_id, kind, started_at, convolens_version, args) "
            "VALUES (?, ?, ?, ?, ?)",
            [run_id, kind, now_utc(), __version__, json.dumps(args or {}, default=str)],
        )
        return run_id

    def finish_run(self, run_id: str, stats: Mapping[str, Any]) -> None:
        self.con.execute(
            "UPDATE runs SET finished_at = ?, stats = ? WHERE run_id = ?",
            [now_utc(), json.dumps(stats, default=str), run_id],
        )

    def ingest_keys(self) -> set[str]:
        """Keys of expensive sources already stored (recordings: file + sidecar + model),
        so that re-ingesting a folder does not transcribe them again."""
        rows = self.con.execute(
            # try(): the filter may run after the projection, over non-JSON payloads too.
            "SELECT DISTINCT try(json_extract_string(decode(payload), '$.ingest_key')) "
            "FROM raw_interactions WHERE source_format = 'audio' AND locator = 'recording'"
        ).fetchall()
        return {row[0] for row in rows if row[0]}

    def resolve_id(self, prefix: str) -> str:
        """A full conversation id from an id or an unambiguous prefix (as git does)."""
        rows = self.con.execute(
            "SELECT DISTINCT conversation_id FROM conversations "
            "WHERE conversation_id = ? OR conversation_id LIKE ? || '%' "
            "OR source_id = ? LIMIT 5",
            [prefix, prefix, prefix],
        ).fetchall()
        ids = sorted({row[0] for row in rows})
        if prefix in ids:
            return prefix
        if not ids:
            raise WarehouseError(f"no conversation matches {prefix!r}; 'convolens list' shows ids")
        if len(ids) > 1:
            raise WarehouseError(f"{prefix!r} is ambiguous: {', '.join(ids)}")
        return ids[0]
