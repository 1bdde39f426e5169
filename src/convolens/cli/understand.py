"""Commands about labels across runs: `runs`, `diff` (and, below, taxonomies and topics).

Registered on the main Typer app by `convolens.cli`; kept apart so neither module grows
past what a reader takes in at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from convolens import render
from convolens.analytics.diff import diff_runs, list_runs
from convolens.cli.main import _DEFAULT_DB, DbOption, _open, app, console, err
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


taxonomy_app = typer.Typer(
    help="Intent taxonomies: validate a YAML file, train its classifier.", no_args_is_help=True
)
app.add_typer(taxonomy_app, name="taxonomy")


@taxonomy_app.command("validate")
def taxonomy_validate(
    path: Annotated[
        Path | None, typer.Argument(help="Taxonomy YAML, or a text,category CSV.")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(help="A stored draft instead: its figures on the reviewed labels."),
    ] = None,
    folds: Annotated[int, typer.Option(help="With --version: cross-validation folds.")] = 5,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Check a taxonomy file: structure, parents, examples; prints the tree. With
    --version, cross-validate a stored draft on the reviewed labels (cli/review.py)."""
    from convolens.enrich.taxonomy import validate_taxonomy

    if (path is None) == (version is None):
        err.print("[red]error:[/] give a taxonomy file or --version N of a stored draft")
        raise typer.Exit(2)
    if version is not None:
        from convolens.cli.review import validate_stored

        validate_stored(db, version, folds)
        return
    assert path is not None

    report = validate_taxonomy(path)
    for message in report.errors:
        err.print(f"[red]error:[/] {message}")
    if not report.ok:
        raise typer.Exit(1)
    for message in report.warnings:
        err.print(f"[yellow]warning:[/] {message}")
    rows = [
        {"intent": name, "path": " > ".join(tree), "examples": count}
        for name, (tree, count) in report.tree.items()
    ]
    console.print(render.table(rows, title=f"{report.name} {report.version}"))
    console.print(
        f"{report.intents} intents in {report.groups} groups, {report.examples} examples, "
        f"{report.out_of_scope_examples} out-of-scope examples; "
        f"taxonomy version {report.taxonomy_version}"
    )


@taxonomy_app.command("train")
def taxonomy_train(
    path: Annotated[
        Path | None, typer.Argument(help="Taxonomy YAML, or a text,category CSV.")
    ] = None,
    active: Annotated[
        bool,
        typer.Option("--active", help="The taxonomy active in the warehouse instead of a file."),
    ] = False,
    db: DbOption = _DEFAULT_DB,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the trained model (.npz; a folder with --fine-tune)."
        ),
    ] = None,
    fine_tune: Annotated[
        bool,
        typer.Option(
            "--fine-tune",
            help="Fine-tune the encoder on the examples too (minutes on a CPU). Without "
            "--output the model goes to the cache under the taxonomy version, where "
            "`analyze` and the server use it for that version.",
        ),
    ] = False,
    epochs: Annotated[int, typer.Option(help="With --fine-tune: passes over the examples.")] = 3,
    seed: Annotated[int, typer.Option(help="With --fine-tune: the random seed.")] = 0,
    max_steps: Annotated[
        int | None, typer.Option(help="With --fine-tune: stop after this many steps (a trial).")
    ] = None,
) -> None:
    """Train the intent classifier from the taxonomy's examples; shows cross-validated
    accuracy per intent so weak intents stand out. Use the model with
    `[components.intents] model = "FILE.npz"`. `--active --fine-tune` fine-tunes the
    warehouse's active taxonomy into the model cache, where the server finds it."""
    from convolens.enrich.intents import train_taxonomy
    from convolens.enrich.taxonomy import load_taxonomy

    if (path is None) == (not active):
        err.print("[red]error:[/] give a taxonomy file or --active")
        raise typer.Exit(2)
    stored: dict[str, object] | None = None
    if active:
        from convolens.enrich.config import active_definitions

        with _open(db, read_only=True) as warehouse:
            stored = active_definitions(warehouse).get("intents", {}).get("taxonomy")
        if stored is None:
            err.print("[red]error:[/] no taxonomy is active in this warehouse")
            raise typer.Exit(1)
    try:
        source = load_taxonomy(stored) if stored is not None else path
        assert source is not None
        if fine_tune:
            from convolens.cli.intent_finetune import fine_tune_with_progress

            report = fine_tune_with_progress(
                source, output, epochs=epochs, seed=seed, max_steps=max_steps
            )
        else:
            with console.status("training"):
                report = train_taxonomy(source, output)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    rows = [
        {
            "intent": s.intent,
            "examples": s.examples,
            "cv accuracy": s.cv_accuracy,
            "confused with": s.confused_with or "",
        }
        for s in sorted(report.intents, key=lambda s: (s.cv_accuracy or 0.0, s.intent))
    ]
    console.print(render.table(rows, title=f"{report.name}: {report.classes} intents"))
    accuracy = f"{report.cv_accuracy:.1%}" if report.cv_accuracy is not None else "n/a"
    how = "held-out" if report.calibration == "held out" else "cross-validated"
    console.print(
        f"{how} accuracy {accuracy} on {report.examples} examples; out-of-scope "
        f"threshold {report.threshold:.3f} ({report.threshold_source}); "
        f"trained in {report.train_seconds:.1f} s"
    )
    for message in report.warnings:
        err.print(f"[yellow]warning:[/] {message}")
    if report.weak:
        err.print(f"[yellow]weak intents (add varied examples):[/] {', '.join(report.weak)}")
    if report.fine_tuned_model is not None:
        console.print(
            f"fine-tuned {report.fine_tuned_model} for taxonomy version "
            f"{report.taxonomy_version}"
            + (f": wrote {output}" if output is not None else " (in the model cache)")
        )
    elif output is not None:
        console.print(f"wrote {output} (taxonomy version {report.taxonomy_version})")
