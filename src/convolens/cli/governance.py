"""`convolens audit`, `convolens retention run|show` and `convolens erase`: thin commands
over convolens.audit and convolens.retention. Each records itself in the audit log as the
local account (role 'local'); `audit_cli` does the same for other commands that read text
or export (`show`, `export`)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.markup import escape

from convolens import render
from convolens.audit import AuditFilter, cli_actor, query_audit, record
from convolens.cli import remote
from convolens.cli.main import _DEFAULT_DB, DbOption, _open, app, console, err
from convolens.retention import Person, RetentionPolicy, apply_retention, erase_person
from convolens.retention.erasure import find_person, voices_of
from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = ["audit_cli"]

retention_app = typer.Typer(
    help="Retention: how long each layer is kept (CONVOLENS_RETENTION*), applied now.",
    no_args_is_help=True,
)
app.add_typer(retention_app, name="retention")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _spool(db: Path) -> Path:
    """Where `convolens serve` spools uploads for this warehouse (its default)."""
    return db.with_name(db.stem + ".uploads")


def audit_cli(
    db: Path,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record a CLI command's action. Commands that read open the warehouse read-only, so
    this opens it again for the one write (inside the server when it runs the command)."""
    try:
        bridged = remote.current()
        wh = bridged.open(db, True) if bridged is not None else Warehouse(db)
    except WarehouseError as exc:
        err.print(f"[yellow]warning:[/] not recorded in the audit log: {escape(str(exc))}")
        return
    try:
        record(
            wh, action, actor=cli_actor(), via="cli", target_type=target_type,
            target_id=target_id, details=details,
        )  # fmt: skip
    finally:
        wh.close()


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option} {value!r}: not an ISO date or time (2026-10-01)", 2) from None


@app.command("audit")
def audit(
    db: DbOption = _DEFAULT_DB,
    action: Annotated[
        str | None, typer.Option(help="An action, or a prefix ending in '.' (key.).")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Key id or name (or local user).")] = None,
    target: Annotated[str | None, typer.Option(help="Target id.")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="ok, denied, not_found, rejected, error.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="At or after (ISO date/time).")] = None,
    until: Annotated[str | None, typer.Option(help="Before (ISO date/time).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 500,
    fmt: Annotated[
        Literal["table", "csv", "json"],
        typer.Option("--format", "-f", help="table, or an export: csv, json."),
    ] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
) -> None:
    """The audit log, newest first: who read raw text, exported, changed keys, taxonomies,
    trackers, webhooks or scorecards, deleted, erased, reviewed or signed in."""
    from convolens.service.routes_governance import audit_csv

    try:
        where = AuditFilter(
            action=action, actor=actor, target_id=target, outcome=outcome,  # type: ignore[arg-type]
            since=_when(since, "--since"), until=_when(until, "--until"), limit=limit,
        )  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _fail(f"invalid filter: {first['loc'][0]}: {first['msg']}", 2) from None
    with _open(db, read_only=True) as warehouse:
        entries = query_audit(warehouse, where)
    if fmt == "csv":
        text = audit_csv(entries)
    elif fmt == "json":
        text = json.dumps([e.model_dump(mode="json") for e in entries], indent=2) + "\n"
    else:
        text = ""
    if out is not None:
        remote.local_path(out).write_text(text if fmt != "table" else audit_csv(entries))
        console.print(f"{len(entries)} audit row(s) written to {out}")
    elif fmt == "table":
        rows = [
            {
                "when": e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                "actor": f"{e.actor_name or '-'} ({e.actor_role or '-'})",
                "via": e.via,
                "action": e.action,
                "target": e.target_id or "",
                "outcome": e.outcome,
            }
            for e in entries
        ]
        console.print(f"{len(rows)} audit row(s)")
        if rows:
            console.print(render.table(rows, width=console.width))
    else:
        console.out(text, end="", highlight=False)
    exported = fmt != "table" or out is not None
    audit_cli(
        db, "audit.export" if exported else "audit.read", target_type="audit_log",
        details={"rows": len(entries), "format": fmt},
    )  # fmt: skip


@retention_app.command("show")
def retention_show() -> None:
    """The policy in effect from CONVOLENS_RETENTION* (each layer's days or 'forever')."""
    policy = _policy(None, None, None)
    for layer, kept in policy.describe().items():
        console.print(f"{layer:<11} {kept}")


def _policy(raw: int | None, text: int | None, audit_days: int | None) -> RetentionPolicy:
    try:
        policy = RetentionPolicy.from_env()
        given = {"raw_days": raw, "text_days": text, "audit_days": audit_days}
        return policy.model_copy(update={k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise _fail(str(exc), 2) from None


@retention_app.command("run")
def retention_run(
    db: DbOption = _DEFAULT_DB,
    raw_days: Annotated[int | None, typer.Option(min=1, help="Keep raw records N days.")] = None,
    text_days: Annotated[int | None, typer.Option(min=1, help="Keep conversations N days.")] = None,
    audit_days: Annotated[
        int | None, typer.Option(min=1, help="Keep the audit log N days.")
    ] = None,
) -> None:
    """Apply the retention policy now (for cron; `convolens serve` also does on its own
    schedule). Options override CONVOLENS_RETENTION* for this run."""
    policy = _policy(raw_days, text_days, audit_days)
    if not policy.enabled:
        console.print(
            "retention is off: set CONVOLENS_RETENTION=on (or CONVOLENS_RETENTION_*_DAYS), "
            "or give --raw-days/--text-days/--audit-days"
        )
        return
    with _open(db) as warehouse:
        report = apply_retention(warehouse, policy, spool=_spool(db), actor=cli_actor(), via="cli")
    removed = sum(report.rows.values())
    console.print(
        f"retention ({', '.join(f'{k} {v}' for k, v in report.policy.items())}): "
        f"{report.conversations} conversation(s), {removed} row(s), {report.files} file(s), "
        f"{report.audit_rows} audit row(s) removed"
    )
    for table, n in report.rows.items():
        console.print(f"  {table:<28} {n:>8,}")


@app.command("erase")
def erase(
    db: DbOption = _DEFAULT_DB,
    email: Annotated[str | None, typer.Option(help="The person's email address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Their phone number (any format).")] = None,
    customer: Annotated[str | None, typer.Option(help="Their customer id.")] = None,
    account: Annotated[str | None, typer.Option(help="Their account id.")] = None,
    name: Annotated[
        str | None,
        typer.Option(help="The name their voice is enrolled under (its print is erased)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Erase (without it: only count).")] = False,
) -> None:
    """Erase a person from every layer: their conversations whole, every row and spooled
    file that mentions them, and the freed bytes of the warehouse. Prints the receipt
    (counts and hashed conversation ids), which the audit log keeps."""
    try:
        person = Person(
            email=email, phone=phone, customer_id=customer, account_id=account, name=name
        )
    except ValidationError as exc:
        raise _fail(str(exc.errors()[0]["msg"]).removeprefix("Value error, "), 2) from None
    with _open(db) as warehouse:
        if not yes:
            ids, needles = find_person(warehouse, person, spool=_spool(db))
            voices = voices_of(warehouse, needles)
            console.print(
                f"{len(ids)} conversation(s) hold this person"
                + (f", and {voices} enrolled voice print(s)" if voices else "")
                + "; run again with --yes to erase them and every other mention"
            )
            return
        receipt = erase_person(warehouse, person, spool=_spool(db), actor=cli_actor(), via="cli")
    console.print(
        f"erased {receipt.conversations} conversation(s), {sum(receipt.rows.values())} row(s), "
        f"{receipt.files} file(s); receipt {receipt.erasure_id} in the audit log"
    )
    console.print_json(receipt.model_dump_json())
