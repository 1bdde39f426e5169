"""`convolens quarantine`: conversations intake could not redact, held out of the warehouse.

The same rows as `GET /v1/quarantine` (admins only there; here, whoever can open the
warehouse file, who could read the raw layer anyway).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from convolens.cli.main import _DEFAULT_DB, DbOption, _open, app, console
from convolens.store.quarantine import list_quarantine

__all__: list[str] = []


@app.command("quarantine")
def quarantine_command(
    db: DbOption = _DEFAULT_DB,
    include_released: Annotated[
        bool, typer.Option("--all", help="Also what a later ingest has released.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Conversations held out because redaction failed: file, record and reason. Ingest
    the file again after the fix to store them (and release these entries)."""
    with _open(db) as warehouse:
        rows = list_quarantine(warehouse, include_released=include_released)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))
        return
    if not rows:
        console.print("nothing quarantined" + ("" if include_released else " (open entries)"))
        return
    table = Table(title=f"{len(rows)} quarantined conversation(s)")
    for column in ("conversation", "file", "record", "reason", "quarantined", "released"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            escape(row["conversation_id"]),
            escape(Path(row["source_path"]).name),
            escape(row["locator"] or ""),
            escape(row["reason"]),
            f"{row['quarantined_at']:%Y-%m-%d %H:%M}",
            f"{row['released_at']:%Y-%m-%d %H:%M}" if row["released_at"] else "",
        )
    console.print(table)
