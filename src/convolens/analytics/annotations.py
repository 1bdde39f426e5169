"""Annotations: releases, campaigns, incidents and notes dated on the timeline.

A spike means little without "what did we ship that week?": annotations put the answer
on the charts (`volume` and `spikes` return those in their range) and give
`before_after` its dates. They live in the warehouse table `annotations`, created on
first use by `ensure_tables` (DDL in `ANNOTATIONS_DDL`); (date, kind, label) is an
annotation's key, so importing an edited CSV again updates its rows instead of
duplicating them. Ids are small integers, easy to type in `--annotation 3`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from convolens.analytics.trends import (
    AnnotationKind,
    Dimension,
    TimelineAnnotation,
    as_dimension,
    bounds,
)
from convolens.store.warehouse import Warehouse, now_utc

__all__ = [
    "ANNOTATIONS_DDL",
    "AnnotationImport",
    "AnnotationInput",
    "AnnotationKind",
    "TimelineAnnotation",
    "add_annotation",
    "delete_annotation",
    "ensure_tables",
    "get_annotation",
    "import_annotations",
    "list_annotations",
]


ANNOTATIONS_DDL = """
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER NOT NULL,
    -- Not "at": that is a reserved word in DuckDB's SQL.
    occurred_at TIMESTAMPTZ NOT NULL,
    kind VARCHAR NOT NULL,
    label VARCHAR NOT NULL,
    description VARCHAR,
    dimension VARCHAR,
    value VARCHAR,
    source VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ
);
"""


class AnnotationInput(BaseModel):
    """An annotation to add; dates mean midnight UTC."""

    at: datetime
    kind: AnnotationKind
    label: str = Field(min_length=1)
    description: str | None = None
    dimension: Dimension | None = None
    value: str | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            raw = raw.strip()
            raw = date.fromisoformat(raw) if len(raw) == 10 else datetime.fromisoformat(raw)
        if isinstance(raw, date) and not isinstance(raw, datetime):
            return datetime.combine(raw, time(), UTC)
        if isinstance(raw, datetime) and raw.tzinfo is None:
            return raw.replace(tzinfo=UTC)
        return raw

    @field_validator("label", "description", "value", mode="before")
    @classmethod
    def _strip(cls, raw: Any) -> Any:
        # CSV cells arrive as "" when empty: that means "not given".
        if isinstance(raw, str):
            raw = raw.strip()
            return raw or None
        return raw

    @field_validator("dimension", mode="before")
    @classmethod
    def _blank_dimension(cls, raw: Any) -> Any:
        return None if isinstance(raw, str) and not raw.strip() else raw

    @model_validator(mode="after")
    def _value_needs_dimension(self) -> AnnotationInput:
        if self.value is not None and self.dimension is None:
            raise ValueError("an annotation with a value needs its dimension")
        return self


class AnnotationImport(BaseModel):
    rows: int
    added: int
    updated: int
    unchanged: int


# -- annotations ------------------------------------------------------------------------------
def ensure_tables(warehouse: Warehouse) -> bool:
    """Create the `annotations` table if missing; False on a read-only warehouse without it
    (readers then see no annotations rather than an error)."""
    found = warehouse.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'annotations'"
    ).fetchall()
    if found[0][0]:
        return True
    mode = warehouse.con.execute("SELECT current_setting('access_mode')").fetchall()
    if mode[0][0] == "read_only":
        return False
    warehouse.con.execute(ANNOTATIONS_DDL)
    return True


_FIELDS = 'id, occurred_at AS "at", kind, label, description, dimension, value, source'


def _annotation(row: dict[str, Any]) -> TimelineAnnotation:
    return TimelineAnnotation.model_validate(row)


def list_annotations(
    warehouse: Warehouse,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    kind: str | None = None,
    dimension: str | None = None,
    value: str | None = None,
) -> list[TimelineAnnotation]:
    """Annotations in time order; `start`/`end` as in `volume` (dates inclusive)."""
    if not ensure_tables(warehouse):
        return []
    clauses, params = ["TRUE"], []
    since, until = bounds(start, end)
    for clause, param in (
        ("occurred_at >= ?", since),
        ("occurred_at < ?", until),
        ("kind = ?", AnnotationKind(kind).value if kind is not None else None),
        ("dimension = ?", as_dimension(dimension).value if dimension is not None else None),
        ("value = ?", value),
    ):
        if param is not None:
            clauses.append(clause)
            params.append(param)
    rows = warehouse.query(
        f"SELECT {_FIELDS} FROM annotations WHERE {' AND '.join(clauses)} ORDER BY occurred_at, id",
        params,
    )
    return [_annotation(r) for r in rows]


def get_annotation(warehouse: Warehouse, annotation_id: int) -> TimelineAnnotation:
    rows = (
        warehouse.query(
            f"SELECT {_FIELDS} FROM annotations WHERE id = ?",
            [int(annotation_id)],
        )
        if ensure_tables(warehouse)
        else []
    )
    if not rows:
        raise ValueError(f"no annotation with id {annotation_id}")
    return _annotation(rows[0])


_INPUT_SCHEMA = pa.schema(
    [
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("kind", pa.string()),
        ("label", pa.string()),
        ("description", pa.string()),
        ("dimension", pa.string()),
        ("value", pa.string()),
    ]
)


def _upsert(
    warehouse: Warehouse, items: Sequence[AnnotationInput], source: str
) -> AnnotationImport:
    """Insert new (at, kind, label) keys and update changed ones, in one transaction."""
    ensure_tables(warehouse)
    # A key given twice keeps its last row, as a re-import of the edited row would.
    unique = {(i.at, i.kind, i.label): i for i in items}
    table = pa.Table.from_pylist(
        [
            {
                "occurred_at": i.at,
                "kind": i.kind.value,
                "label": i.label,
                "description": i.description,
                "dimension": i.dimension.value if i.dimension else None,
                "value": i.value,
            }
            for i in unique.values()
        ],
        schema=_INPUT_SCHEMA,
    )
    name = f"_annotations_in_{id(table)}"
    now = now_utc()
    warehouse.con.register(name, table)
    try:
        with warehouse.transaction():
            updated = warehouse.con.execute(
                f"""
                UPDATE annotations a SET description = n.description,
                       dimension = n.dimension, value = n.value, updated_at = ?
                FROM {name} n
                WHERE a.occurred_at = n.occurred_at AND a.kind = n.kind AND a.label = n.label
                  AND (a.description IS DISTINCT FROM n.description
                       OR a.dimension IS DISTINCT FROM n.dimension
                       OR a.value IS DISTINCT FROM n.value)
                """,
                [now],
            ).fetchall()
            added = warehouse.con.execute(
                f"""
                INSERT INTO annotations
                SELECT (SELECT coalesce(max(id), 0) FROM annotations)
                           + row_number() OVER (ORDER BY n.occurred_at, n.kind, n.label),
                       n.occurred_at, n.kind, n.label, n.description, n.dimension, n.value,
                       ?, ?, NULL
                FROM {name} n
                ANTI JOIN annotations a
                    ON a.occurred_at = n.occurred_at AND a.kind = n.kind AND a.label = n.label
                """,
                [source, now],
            ).fetchall()
    finally:
        warehouse.con.unregister(name)
    # DuckDB answers a DML statement with one row: the number of rows it changed.
    n_added, n_updated = int(added[0][0]), int(updated[0][0])
    return AnnotationImport(
        rows=len(items),
        added=n_added,
        updated=n_updated,
        unchanged=len(unique) - n_added - n_updated,
    )


def add_annotation(
    warehouse: Warehouse,
    at: date | datetime | str,
    kind: str,
    label: str,
    description: str | None = None,
    dimension: str | None = None,
    value: str | None = None,
    *,
    source: str = "manual",
) -> TimelineAnnotation:
    """Add an annotation (or update the one with the same date, kind and label)."""
    item = AnnotationInput.model_validate(
        {
            "at": at,
            "kind": kind,
            "label": label,
            "description": description,
            "dimension": dimension,
            "value": value,
        }
    )
    _upsert(warehouse, [item], source)
    row = warehouse.query(
        f"SELECT {_FIELDS} FROM annotations WHERE occurred_at = ? AND kind = ? AND label = ?",
        [item.at, item.kind.value, item.label],
    )
    return _annotation(row[0])


def delete_annotation(warehouse: Warehouse, annotation_id: int) -> bool:
    if not ensure_tables(warehouse):
        return False
    rows = warehouse.con.execute(
        "DELETE FROM annotations WHERE id = ?", [int(annotation_id)]
    ).fetchall()
    return bool(rows[0][0])


def import_annotations(warehouse: Warehouse, csv_path: str | Path) -> AnnotationImport:
    """Load annotations from a CSV with a header `date` (or `at`), `kind`, `label` and
    optional `description`, `dimension`, `value`; re-importing the same file changes
    nothing, and an edited description updates its row (the key is date, kind, label)."""
    path = Path(csv_path)
    items: list[AnnotationInput] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = {f.strip().lower() for f in reader.fieldnames or []}
        missing = {"kind", "label"} - fields
        if missing or not fields & {"date", "at"}:
            need = sorted(missing | ({"date"} if not fields & {"date", "at"} else set()))
            raise ValueError(f"{path}: missing column(s): {', '.join(need)}")
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): v for k, v in raw.items()}
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            try:
                items.append(
                    AnnotationInput.model_validate(
                        {
                            "at": row.get("date") or row.get("at"),
                            "kind": (row.get("kind") or "").strip().lower(),
                            "label": row.get("label"),
                            "description": row.get("description"),
                            "dimension": (row.get("dimension") or "").strip().lower(),
                            "value": row.get("value"),
                        }
                    )
                )
            except (ValidationError, ValueError) as exc:
                raise ValueError(f"{path}, line {line}: {exc}") from None
    if not items:
        return AnnotationImport(rows=0, added=0, updated=0, unchanged=0)
    return _upsert(warehouse, items, source=path.name)
