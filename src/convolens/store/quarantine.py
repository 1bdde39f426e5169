"""The quarantine table: conversations intake could not redact, held out of the warehouse.

A row says which conversation, from which file and record, and why; never its text.
Rows stay for the record; a later ingest that stores the conversation marks them released.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from convolens.store.warehouse import Warehouse, now_utc

if TYPE_CHECKING:
    from convolens.ingest.redact_intake import Quarantined

__all__ = ["list_quarantine", "release_quarantine", "write_quarantine"]


def write_quarantine(warehouse: Warehouse, held: Sequence[Quarantined], run_id: str) -> int:
    """One row per quarantined conversation of this run."""
    now = now_utc()
    rows = []
    for index, item in enumerate(held):
        first = item.parsed.raw[0] if item.parsed.raw else None
        rows.append(
            (
                f"{run_id}:{index}",
                run_id,
                item.parsed.conversation.conversation_id,
                item.parsed.source_format,
                first.source_path if first else "",
                first.locator if first else "",
                item.reason,
                now,
            )
        )
    if rows:
        warehouse.con.executemany(
            "INSERT INTO quarantine (quarantine_id, run_id, conversation_id, source_format, "
            "source_path, locator, reason, quarantined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        ).fetchall()
    return len(rows)


def release_quarantine(warehouse: Warehouse, conversation_ids: Sequence[str], run_id: str) -> int:
    """Mark the open rows of conversations this run has stored (or found stored) released."""
    ids = sorted(set(conversation_ids))
    if not ids:
        return 0
    # fetchall: a result left half-read holds the connection (DuckDB refuses other work).
    open_rows = warehouse.con.execute(
        "SELECT count(*) FROM quarantine WHERE released_at IS NULL AND list_contains(?, "
        "conversation_id)",
        [ids],
    ).fetchall()[0]
    if not open_rows[0]:
        return 0
    warehouse.con.execute(
        "UPDATE quarantine SET released_at = ?, released_by_run = ? "
        "WHERE released_at IS NULL AND list_contains(?, conversation_id)",
        [now_utc(), run_id, ids],
    ).fetchall()
    return int(open_rows[0])


def list_quarantine(
    warehouse: Warehouse, *, include_released: bool = False, limit: int = 1000
) -> list[dict[str, Any]]:
    """Quarantined conversations, newest first; released ones only when asked."""
    where = "" if include_released else "WHERE released_at IS NULL"
    return warehouse.query(
        "SELECT quarantine_id, conversation_id, source_format, source_path, locator, reason, "
        "run_id, quarantined_at, released_at, released_by_run "
        f"FROM quarantine {where} ORDER BY quarantined_at DESC, quarantine_id LIMIT ?",
        [limit],
    )
