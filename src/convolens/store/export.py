"""Export a warehouse layer to Parquet, CSV or JSON Lines with DuckDB's own writers."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from convolens.store.schema import LAYERS
from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = ["ExportFormat", "export_layer"]


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


_COPY_OPTIONS = {
    ExportFormat.parquet: "FORMAT parquet, COMPRESSION zstd",
    ExportFormat.csv: "FORMAT csv, HEADER true",
    ExportFormat.jsonl: "FORMAT json",
}


def export_layer(
    warehouse: Warehouse,
    layer: str,
    fmt: ExportFormat,
    out: Path,
    *,
    all_versions: bool = False,
) -> int:
    """Write `layer` to `out`; returns the number of rows written.

    By default only the current version of each conversation is exported; the raw layer
    is always complete (it is the audit trail).
    """
    if layer not in LAYERS:
        raise WarehouseError(f"unknown layer {layer!r}; choose one of: {', '.join(LAYERS)}")
    relation = LAYERS[layer][1 if all_versions else 0]
    out.parent.mkdir(parents=True, exist_ok=True)
    select = f"SELECT * FROM {relation}"
    if fmt is not ExportFormat.parquet:
        # Binary payloads are unreadable in text formats: export them as UTF-8 text where
        # they decode (every text source does), else as base64 with a 'base64:' prefix.
        columns = [row[0] for row in warehouse.con.execute(f"DESCRIBE {relation}").fetchall()]
        if "payload" in columns:
            rest = ", ".join(f'"{c}"' for c in columns if c != "payload")
            text = "coalesce(try(decode(payload)), 'base64:' || to_base64(payload))"
            select = f"SELECT {rest}, {text} AS payload FROM {relation}"
    target = str(out).replace("'", "''")
    warehouse.con.execute(f"COPY ({select}) TO '{target}' ({_COPY_OPTIONS[fmt]})")
    row = warehouse.con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    return int(row[0]) if row else 0
