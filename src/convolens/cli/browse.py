"""Reading the warehouse: `list`, `show`, `report`, `export` and `formats`.

Registered on the main Typer app when `convolens.cli` imports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from convolens import render
from convolens.analytics.report import ReportGrouping, overview, report_table
from convolens.cli import remote
from convolens.cli.main import _DEFAULT_DB, DbOption, _date, _open, app, console, err
from convolens.ingest.registry import adapter_names, get_adapter
from convolens.store.export import ExportFormat, export_layer
from convolens.store.reader import ConversationFilter, list_conversations, load_conversation
from convolens.store.schema import LAYERS
from convolens.store.warehouse import WarehouseError

__all__: list[str] = []


@app.command("list")
def list_(
    db: DbOption = _DEFAULT_DB,
    channel: Annotated[
        str | None, typer.Option(help="chat, email, ticket, call, meeting, video.")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Agent name (substring).")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue or team.")] = None,
    source: Annotated[str | None, typer.Option(help="Source system, e.g. zendesk.")] = None,
    account: Annotated[str | None, typer.Option(help="Account id.")] = None,
    tag: Annotated[str | None, typer.Option(help="Tag.")] = None,
    since: Annotated[str | None, typer.Option(help="Started at or after (ISO date).")] = None,
    until: Annotated[str | None, typer.Option(help="Started before (ISO date).")] = None,
    search: Annotated[str | None, typer.Option(help="Text in the subject or any message.")] = None,
    limit: Annotated[
        int, typer.Option(min=0, max=1_000_000_000, help="At most this many rows.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List conversations, newest first, with filters."""
    filters = ConversationFilter(
        channel=channel,
        agent=agent,
        queue=queue,
        source=source,
        account=account,
        tag=tag,
        since=_date(since, "since"),
        until=_date(until, "until"),
        text=search,
    )
    with _open(db, read_only=True) as warehouse:
        rows = list_conversations(warehouse, filters, limit=limit)
    if as_json:
        for row in rows:
            console.print_json(json.dumps(row, default=str))
        return
    shown = [
        {
            "id": r["conversation_id"],
            "channel": r["channel"],
            "started": r["started_at"],
            "source": f"{r['source_system']}:{r['source_id'] or '-'}",
            "agent": r["agent"],
            "msgs": r["utterance_count"],
            "subject": (r["subject"] or "")[:40],
            "duration_min": r["duration_s"] / 60 if r["duration_s"] is not None else None,
            "first_resp_s": r["first_response_s"],
        }
        for r in rows
    ]
    console.print(
        f"{len(rows)} conversation(s)" + (f" (first {limit})" if len(rows) == limit else "")
    )
    if shown:
        # Most important first: what a reader needs to pick a conversation to `show`.
        priority = ["id", "started", "channel", "msgs", "subject", "source", "agent"]
        console.print(render.table(shown, width=console.width, priority=priority))


@app.command()
def show(
    conversation_id: Annotated[
        str, typer.Argument(help="Conversation id, id prefix or source id.")
    ],
    db: DbOption = _DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print the canonical JSON.")] = False,
) -> None:
    """Show one conversation: transcript by speaker, metrics and labels."""
    with _open(db, read_only=True) as warehouse:
        try:
            conversation = load_conversation(warehouse, conversation_id)
        except WarehouseError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        key = [conversation.conversation_id]
        metrics = warehouse.query(
            "SELECT * EXCLUDE (conversation_id, version, metrics_version, run_id, computed_at) "
            "FROM metrics_conversation_current WHERE conversation_id = ?",
            key,
        )
        participant_metrics = warehouse.query(
            "SELECT * EXCLUDE (conversation_id, version, metrics_version, run_id) "
            "FROM metrics_participant_current WHERE conversation_id = ?",
            key,
        )
        # The latest run's labels of each component (reprocessing writes beside the old).
        labels = warehouse.query(
            "SELECT utterance_id, component, component_version, label, value, confidence, "
            "evidence FROM labels_current WHERE conversation_id = ? ORDER BY label",
            key,
        )
    from convolens.cli.governance import audit_cli

    # Its text was read: the audit log says by whom (cli/governance.py).
    audit_cli(db, "conversation.read", target_type="conversation", target_id=key[0])
    if as_json:
        console.print_json(conversation.model_dump_json())
        return
    c = conversation
    names = {p.participant_id: p.name or p.participant_id for p in c.participants}
    roles = {p.participant_id: p.role.value for p in c.participants}
    header = (
        f"[bold]{c.conversation_id}[/]  {c.channel.value}  "
        f"{c.source.system}:{c.source.source_id or '-'}\n"
        f"started {render.fmt(c.started_at)}  agent {c.source.agent or '–'}  "
        f"queue {c.source.queue or '–'}"
        + (f"\nsubject: {c.subject}" if c.subject else "")
        + "\nparticipants: "
        + ", ".join(f"{names[p]} ({roles[p]})" for p in names)
    )
    console.print(Panel(header, title="conversation", expand=False))
    console.print(render.transcript(c, labels))
    if metrics:
        console.print(render.metrics_table(metrics, participant_metrics, names))
    else:
        console.print("[dim]no metrics yet: run 'convolens analyze'[/]")
    insights = render.insights_table(c, labels)
    if insights is not None:
        console.print(insights)
    summary = render.labels_table(labels, names)
    if summary is not None:
        console.print(summary)


# -- report / export / formats ------------------------------------------------------------
@app.command()
def report(
    db: DbOption = _DEFAULT_DB,
    by: Annotated[
        list[ReportGrouping] | None, typer.Option(help="Group by (repeatable); default: all.")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    since: Annotated[str | None, typer.Option(help="Started at or after (ISO date).")] = None,
    until: Annotated[str | None, typer.Option(help="Started before (ISO date).")] = None,
) -> None:
    """Aggregate tables by channel, agent, queue and week."""
    filters = ConversationFilter(
        channel=channel, since=_date(since, "since"), until=_date(until, "until")
    )
    with _open(db, read_only=True) as warehouse:
        head = overview(warehouse)
        console.print(
            f"[bold]{head['conversations']:,}[/] conversations ({head['versions']:,} versions), "
            f"{head['utterances']:,} utterances, {head['analysed']:,} analysed, "
            f"{head['rejects']:,} rejected records"
        )
        for grouping in by or list(ReportGrouping):
            render.print_report(console, report_table(warehouse, grouping, filters), grouping.value)


@app.command()
def export(
    layer: Annotated[str, typer.Option("--layer", "-l", help=f"One of: {', '.join(LAYERS)}.")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="File format.")
    ] = ExportFormat.parquet,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (default LAYER.FORMAT).")
    ] = None,
    db: DbOption = _DEFAULT_DB,
    all_versions: Annotated[bool, typer.Option(help="Include superseded versions.")] = False,
) -> None:
    """Export a warehouse layer to Parquet, CSV or JSON Lines."""
    target = out or Path(f"{layer}.{fmt.value}")
    with _open(db, read_only=True) as warehouse:
        try:
            rows = export_layer(
                warehouse, layer, fmt, remote.local_path(target), all_versions=all_versions
            )
        except WarehouseError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
    from convolens.cli.governance import audit_cli

    audit_cli(
        db, "export", target_type="layer", target_id=layer,
        details={"rows": rows, "format": fmt.value, "all_versions": all_versions},
    )  # fmt: skip
    console.print(f"wrote {rows:,} rows of '{layer}' to {target}")


@app.command()
def formats() -> None:
    """List the intake formats and the file suffixes they are detected by."""
    rows = []
    for name in adapter_names():
        adapter = get_adapter(name)
        rows.append(
            {"format": name, "suffixes": " ".join(adapter.suffixes), "what": adapter.description}
        )
    console.print(render.table(rows, title="intake formats"))
