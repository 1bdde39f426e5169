"""Commands about labels across runs: `runs`, `diff` (and, below, taxonomies and topics).

Registered on the main Typer app by `convolens.cli`; kept apart so neither module grows
past what a reader takes in at once.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from convolens import render
from convolens.analytics.diff import diff_runs, list_runs
from convolens.cli import _DEFAULT_DB, DbOption, _open, app, console, err
from convolens.store.warehouse import WarehouseError

__all__: list[str] = []


@app.command()
def runs(
    db: DbOption = _DEFAULT_DB,
    kind: Annotated[
        str, typer.Option(help="Run kind: enrich, ingest, analyze, or 'all'.")
    ] = "enrich",
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """List runs, newest first, with the component versions each used."""
    with _open(db, read_only=True) as warehouse:
        found = list_runs(warehouse, None if kind == "all" else kind, limit)
    rows = [
        {
            "run": r.run_id,
            "kind": r.kind,
            "started": r.started_at,
            "conversations": r.conversations,
            "components": " ".join(f"{k}:v{v}" for k, v in r.components.items()),
        }
        for r in found
    ]
    console.print(render.table(rows, title="runs") if rows else "[dim]no runs yet[/]")


@app.command()
def diff(
    from_run: Annotated[
        str, typer.Option("--from", help="Earlier run: id, prefix, or 'previous'.")
    ] = "previous",
    to_run: Annotated[str, typer.Option("--to", help="Later run: id, prefix, or 'latest'.")] = (
        "latest"
    ),
    db: DbOption = _DEFAULT_DB,
    component: Annotated[str | None, typer.Option(help="Only this component.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Unchanged counts too.")] = False,
) -> None:
    """What changed between two enrichment runs: label counts and moved primary intents."""
    with _open(db, read_only=True) as warehouse:
        try:
            result = diff_runs(warehouse, from_run, to_run, component=component)
        except WarehouseError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print(
        f"[bold]{result.from_run}[/] ({result.conversations_before:,} conversations) -> "
        f"[bold]{result.to_run}[/] ({result.conversations_after:,} conversations)"
    )
    shown = result.counts if show_all else result.changed
    rows = [
        {
            "component": c.component,
            "label": c.label,
            "category": c.category,
            "before": c.before,
            "after": c.after,
            "change": f"{c.change:+d}",
        }
        for c in shown
    ]
    console.print(render.table(rows, title="label counts") if rows else "no label counts changed")
    if result.moved_primary_intents:
        moved = [m.model_dump() for m in result.moved_primary_intents]
        console.print(render.table(moved, title="primary intent moved"))
    else:
        console.print("no primary intent moved")


@app.command()
def topics(
    db: DbOption = _DEFAULT_DB,
    min_conversations: Annotated[
        int, typer.Option(help="Only topics found in at least this many conversations.")
    ] = 1,
    topic_threshold: Annotated[
        float, typer.Option(help="Cosine distance within which phrases form one topic.")
    ] = 0.5,
    group_threshold: Annotated[
        float, typer.Option(help="Cosine distance within which topics form one group.")
    ] = 0.7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hierarchy as JSON.")] = False,
) -> None:
    """The topic hierarchy across the corpus: keyphrases grouped into topics and groups."""
    from convolens.analytics.topics import topic_hierarchy

    with _open(db, read_only=True) as warehouse:
        groups = topic_hierarchy(
            warehouse,
            min_conversations=min_conversations,
            topic_threshold=topic_threshold,
            group_threshold=group_threshold,
        )
    if as_json:
        console.print_json(json.dumps([g.model_dump() for g in groups]))
        return
    if not groups:
        console.print("[dim]no keyphrases yet: run 'convolens analyze'[/]")
        return
    rows = [
        {
            "group": group.label,
            "topic": topic.label,
            "conversations": topic.conversation_count,
            "phrases": ", ".join(topic.phrases[:5]),
        }
        for group in groups
        for topic in group.children
    ]
    console.print(render.table(rows, title="topics"))
