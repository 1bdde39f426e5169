"""Across conversations: `clusters`, `trends`, `spikes`, `before-after`, `annotate ...`.

Registered on the main Typer app when `convolens.cli` imports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from convolens import render
from convolens.analytics.annotations import (
    add_annotation,
    delete_annotation,
    import_annotations,
    list_annotations,
)
from convolens.analytics.before_after import before_after
from convolens.analytics.cluster_store import cluster_members, list_clusters, refresh_clusters
from convolens.analytics.spikes import spikes
from convolens.analytics.trends import AnnotationKind, Dimension, Grain, volume
from convolens.cli.main import _DEFAULT_DB, DbOption, _date, _open, app, console, err
from convolens.store.reader import ConversationFilter

__all__: list[str] = []

annotate_app = typer.Typer(help="Releases, campaigns and incidents on the timeline.")
app.add_typer(annotate_app, name="annotate")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
def trends(
    by: Annotated[Dimension, typer.Option("--by", help="What to count.")] = Dimension.intent,
    grain: Annotated[Grain, typer.Option(help="Period.")] = Grain.week,
    db: DbOption = _DEFAULT_DB,
    since: Annotated[str | None, typer.Option(help="Started on or after (ISO date).")] = None,
    until: Annotated[str | None, typer.Option(help="Started on or before (ISO date).")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    top: Annotated[int | None, typer.Option(help="Only the N biggest values.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Conversations, share and customer sentiment per period and value."""
    filters = ConversationFilter(channel=channel, queue=queue)
    start, end = _date(since, "since"), _date(until, "until")
    with _open(db, read_only=True) as warehouse:
        table = volume(warehouse, by, grain, start, end, filters, top)
    if as_json:
        console.print_json(table.model_dump_json())
        return
    rows = [
        {
            "period": p.period,
            by.value: p.value,
            "conversations": p.conversations,
            "share": f"{p.share:.1%}",
            "sentiment": p.mean_sentiment,
        }
        for p in table.points
    ]
    console.print(render.table(rows, title=f"{by.value} per {grain.value}"))
    for note in table.annotations:
        console.print(f"  {note.at:%Y-%m-%d} ({note.kind.value}) #{note.id} {note.label}")


@app.command("spikes")
def spikes_(
    by: Annotated[Dimension, typer.Option("--by", help="What to watch.")] = Dimension.intent,
    grain: Annotated[Grain, typer.Option(help="Period.")] = Grain.week,
    baseline: Annotated[int, typer.Option(help="Baseline periods.")] = 4,
    min_count: Annotated[int, typer.Option(help="Ignore values below this count.")] = 5,
    as_of: Annotated[str | None, typer.Option(help="A day in the period to examine.")] = None,
    db: DbOption = _DEFAULT_DB,
    show_all: Annotated[bool, typer.Option("--all", help="Every value, not just spikes.")] = False,
    as_json: JsonOption = False,
) -> None:
    """What rose or fell in the latest period against the baseline, with evidence."""
    day = _date(as_of, "as-of")
    with _open(db, read_only=True) as warehouse:
        report = spikes(
            warehouse, by, grain, baseline, min_count, day, significant_only=not show_all
        )
    if report is None:
        err.print("no dated conversations")
        raise typer.Exit(1)
    if as_json:
        console.print_json(report.model_dump_json())
        return
    console.print(
        f"[bold]{by.value}[/], {grain.value} of {report.period} ({report.conversations} "
        f"conversations; baseline {report.baseline_conversations} a {grain.value})"
    )
    if not report.spikes:
        console.print("no spikes")
    for spike in report.spikes:
        mark = "[red]▲[/]" if spike.direction == "rising" else "[green]▼[/]"
        console.print(f"{mark} {spike.headline}  (score {spike.score:+.1f})")
        console.print(f"    evidence: {', '.join(spike.evidence)}")
    for note in report.annotations:
        console.print(f"  {note.at:%Y-%m-%d} ({note.kind.value}) #{note.id} {note.label}")


@app.command("before-after")
def before_after_(
    at: Annotated[str, typer.Argument(help="ISO date, or an annotation id.")],
    by: Annotated[Dimension | None, typer.Option("--by", help="Dimension.")] = None,
    value: Annotated[str | None, typer.Option(help="Value, e.g. bug_report.")] = None,
    window: Annotated[int, typer.Option(help="Days on each side.")] = 14,
    db: DbOption = _DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Did conversations about VALUE change after AT? Counts, share, sentiment, tests."""
    when = int(at) if at.isdigit() else _date(at, "at")
    assert when is not None
    with _open(db, read_only=True) as warehouse:
        try:
            result = before_after(warehouse, by.value if by else None, value, when, window)
        except ValueError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
    if as_json:
        console.print_json(result.model_dump_json())
        return
    rows = [
        {
            "window": name,
            "from": side.start.date(),
            "days": side.days_with_data,
            "conversations": side.conversations,
            value or "matching": side.matching,
            "share": side.share,
            "sentiment": side.mean_sentiment,
        }
        for name, side in (("before", result.before), ("after", result.after))
    ]
    console.print(render.table(rows, title=f"{result.dimension.value} = {result.value}"))
    console.print(result.summary)


@annotate_app.command("add")
def annotate_add(
    at: Annotated[str, typer.Argument(help="ISO date or timestamp.")],
    kind: Annotated[AnnotationKind, typer.Argument(help="release, campaign, incident, note.")],
    label: Annotated[str, typer.Argument(help="Short label, e.g. 'Mobile app 4.13.0'.")],
    description: Annotated[str | None, typer.Option(help="What happened.")] = None,
    by: Annotated[Dimension | None, typer.Option("--by", help="Dimension it concerns.")] = None,
    value: Annotated[str | None, typer.Option(help="Value it concerns.")] = None,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Add (or update) an annotation."""
    with _open(db) as warehouse:
        try:
            note = add_annotation(
                warehouse, at, kind, label, description, by.value if by else None, value
            )
        except ValueError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
    console.print(f"annotation #{note.id}: {note.at:%Y-%m-%d} {note.kind.value} {note.label}")


@annotate_app.command("import")
def annotate_import(
    path: Annotated[
        Path, typer.Argument(help="CSV: date,kind,label[,description,dimension,value]")
    ],
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Import annotations from a CSV (re-importing updates, never duplicates)."""
    with _open(db) as warehouse:
        try:
            result = import_annotations(warehouse, path)
        except (OSError, ValueError) as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
    console.print(
        f"{result.rows} rows: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )


@annotate_app.command("list")
def annotate_list(
    kind: Annotated[AnnotationKind | None, typer.Option(help="Only this kind.")] = None,
    db: DbOption = _DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Annotations in time order."""
    with _open(db, read_only=True) as warehouse:
        notes = list_annotations(warehouse, kind=kind.value if kind else None)
    if as_json:
        console.print_json(json.dumps([n.model_dump(mode="json") for n in notes]))
        return
    rows = [
        {
            "id": n.id,
            "date": n.at.date(),
            "kind": n.kind.value,
            "label": n.label,
            "about": f"{n.dimension.value}={n.value}" if n.dimension else "",
        }
        for n in notes
    ]
    console.print(render.table(rows, title="annotations"))


@annotate_app.command("delete")
def annotate_delete(annotation_id: int, db: DbOption = _DEFAULT_DB) -> None:
    """Delete an annotation by id."""
    with _open(db) as warehouse:
        if not delete_annotation(warehouse, annotation_id):
            err.print(f"[red]error:[/] no annotation #{annotation_id}")
            raise typer.Exit(1)
    console.print(f"deleted annotation #{annotation_id}")


@app.command()
def clusters(
    db: DbOption = _DEFAULT_DB,
    refit: Annotated[
        bool, typer.Option(help="Cluster everything again (ids kept where clusters match).")
    ] = False,
    show: Annotated[str | None, typer.Option(help="List the members of this cluster.")] = None,
    limit: Annotated[int, typer.Option(help="Clusters to print.")] = 30,
    as_json: JsonOption = False,
) -> None:
    """Customer problems grouped by meaning: fits the first time, then places new
    conversations in the existing clusters (`--refit` to cluster again)."""
    if show is not None:
        with _open(db, read_only=True) as warehouse:
            members = cluster_members(warehouse, show)
        if not members:
            err.print(f"[red]error:[/] no cluster {show!r} (see `convolens clusters`)")
            raise typer.Exit(1)
        rows = [
            {"conversation": m.conversation_id, "similarity": round(m.similarity, 3),
             "statement": m.text[:90]}
            for m in members
        ]  # fmt: skip
        console.print(render.table(rows, title=f"cluster {show}"))
        return
    with _open(db) as warehouse, console.status("clustering problem statements"):
        run = refresh_clusters(warehouse, refit=refit)
        found = list_clusters(warehouse)
    if as_json:
        console.print_json(run.model_dump_json())
        return
    kept = f", {run.kept_ids} ids kept from the previous fit" if run.kept_ids is not None else ""
    console.print(
        f"{run.kind}: {run.statements} statements, {run.clustered} clustered, "
        f"{run.unclustered} unclustered{kept} ({run.elapsed_s:.1f} s)"
    )
    rows = [
        {"cluster": c.cluster_id, "size": c.size, "label": c.label,
         "representative": c.representative[:70]}
        for c in found[:limit]
    ]  # fmt: skip
    console.print(render.table(rows, title=f"{len(found)} clusters"))
