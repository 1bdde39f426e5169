"""Commands for label review: `convolens review ...`, `convolens quality`, and the taxonomy
versions that reviewed corrections feed (`convolens taxonomy propose|versions|activate`;
`convolens taxonomy validate --version N` is in understand.py beside the file check).

Thin shells over `convolens.review`: the API and the dashboard call the same functions.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from convolens import render
from convolens.cli.main import _DEFAULT_DB, DbOption, _open, app, console, err
from convolens.cli.understand import taxonomy_app
from convolens.store.warehouse import WarehouseError

__all__ = ["print_validation", "validate_stored"]

review_app = typer.Typer(
    help="Review labels: sample a batch, see the next item, accept / correct / skip it.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")

Reviewer = Annotated[
    str | None,
    typer.Option(help="Who reviews (default: your login name); one verdict per item each."),
]


def _reviewer(name: str | None) -> str:
    return name or getpass.getuser()


@review_app.command("sample")
def sample(
    db: DbOption = _DEFAULT_DB,
    component: Annotated[str | None, typer.Option(help="Only this component.")] = None,
    label: Annotated[str | None, typer.Option(help="Only this label, e.g. intent.utterance.")] = (
        None
    ),
    value: Annotated[str | None, typer.Option(help="Only this value, e.g. refund_request.")] = (
        None
    ),
    per_value: Annotated[int, typer.Option(help="Random items per value (for precision).")] = 20,
    low_confidence: Annotated[int, typer.Option(help="Least confident items per value.")] = 5,
    disagreement: Annotated[int, typer.Option(help="Near-tie items per value.")] = 5,
    second_share: Annotated[
        float, typer.Option(help="Share of items a second reviewer checks (0 to 1).")
    ] = 0.2,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a repeatable sample.")] = None,
) -> None:
    """Sample labels to review, per component, label and value."""
    from convolens.review.queue import SampleSpec, create_batch

    try:
        spec = SampleSpec(
            component=component, label=label, value=value, per_value=per_value,
            low_confidence=low_confidence, disagreement=disagreement,
            second_share=second_share, seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    with _open(db) as warehouse:
        batch = create_batch(warehouse, spec, created_by=f"cli:{getpass.getuser()}")
    if not batch.items:
        console.print("no labels to sample: run 'convolens analyze' first, or widen the filter")
        return
    rows = [{"stratum": key, **counts} for key, counts in sorted(batch.strata.items())]
    console.print(render.table(rows, title=f"batch {batch.batch_id}"))
    console.print(f"{batch.items} items, {batch.second_reviews} for a second reviewer")


@review_app.command("status")
def status(db: DbOption = _DEFAULT_DB) -> None:
    """Each batch: items, reviewed, waiting."""
    from convolens.review.queue import queue_status

    with _open(db, read_only=True) as warehouse:
        rows = [s.model_dump() for s in queue_status(warehouse)]
    console.print(render.table(rows, title="review batches") if rows else "no review batches")


@review_app.command("next")
def next_item(
    db: DbOption = _DEFAULT_DB,
    reviewer: Reviewer = None,
    batch: Annotated[str | None, typer.Option(help="Only this batch.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the item as JSON.")] = False,
) -> None:
    """Show the next item waiting for you, its evidence marked; then run
    `convolens review accept|correct|skip ITEM`."""
    from convolens.review.queue import next_item as next_for

    with _open(db, read_only=True) as warehouse:
        item = next_for(warehouse, _reviewer(reviewer), batch)
    if item is None:
        console.print("nothing waits for you: every item has its reviews")
        return
    if as_json:
        console.print_json(item.model_dump_json())
        return
    console.print(
        f"[bold]{escape(item.item_id)}[/]  {escape(item.component)} / {escape(item.label)}"
        f" = [bold cyan]{escape(item.value)}[/]"
    )
    for ev in item.evidence:
        text = "".join(
            f"[reverse]{escape(piece)}[/]" if marked else escape(piece)
            for piece, marked in ev.pieces
        )
        console.print(f"  turn {ev.seq} ({escape(ev.role or '?')}): {text}")
    console.print(f"[dim]values: {escape(', '.join(item.choices))}[/]")


def _record(db: Path, item: str, reviewer: str | None, verdict: str, **values: object) -> None:
    from convolens.review.queue import ReviewInput, record_review

    try:
        body = ReviewInput.model_validate({"verdict": verdict, **values})
    except ValueError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    with _open(db) as warehouse:
        try:
            stored = record_review(warehouse, item, _reviewer(reviewer), body)
            # The API's and the dashboard's reviews are audited by the service's middleware.
            from convolens.audit import cli_actor, record

            record(
                warehouse, "label.review", actor=cli_actor(), via="cli",
                target_type="review_item", target_id=item, details={"verdict": stored.verdict},
            )  # fmt: skip
        except WarehouseError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    console.print(f"{stored.verdict}: {escape(item)} ({escape(stored.reviewer)})")


@review_app.command("accept")
def accept(item: str, db: DbOption = _DEFAULT_DB, reviewer: Reviewer = None) -> None:
    """The label is right."""
    _record(db, item, reviewer, "accept")


@review_app.command("correct")
def correct(
    item: str,
    db: DbOption = _DEFAULT_DB,
    reviewer: Reviewer = None,
    value: Annotated[str | None, typer.Option(help="The right value.")] = None,
    missed: Annotated[
        list[str] | None, typer.Option(help="A value the model missed (repeatable).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """The label is wrong (--value the right one) or incomplete (--missed another value)."""
    _record(
        db, item, reviewer, "correct", corrected_value=value, missed_values=missed or [], note=note
    )


@review_app.command("skip")
def skip(item: str, db: DbOption = _DEFAULT_DB, reviewer: Reviewer = None) -> None:
    """Cannot tell: leave it to another reviewer."""
    _record(db, item, reviewer, "skip")


@app.command()
def quality(
    db: DbOption = _DEFAULT_DB,
    component: Annotated[str | None, typer.Option(help="Only this component.")] = None,
    label: Annotated[str | None, typer.Option(help="Only this label.")] = None,
    bar: Annotated[
        float | None, typer.Option(help="Flag values with precision under this (default 0.7).")
    ] = None,
    min_reviews: Annotated[
        int | None, typer.Option(help="...and at least this many reviews (default 20).")
    ] = None,
    weeks: Annotated[bool, typer.Option("--weeks", help="Precision per week too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Label quality from reviews: precision (95 % interval) and recall per value, model-human
    and human-human agreement per label and taxonomy version, values flagged under the bar."""
    from convolens.review.figures import quality_report

    with _open(db, read_only=True) as warehouse:
        report = quality_report(
            warehouse, component=component, label=label, bar=bar, min_reviews=min_reviews
        )
    if as_json:
        console.print_json(report.model_dump_json())
        return
    if not report.values:
        console.print("no reviews yet: 'convolens review sample', then 'convolens review next'")
        return

    def interval(low: float | None, high: float | None) -> str:
        return f"{low:.2f}-{high:.2f}" if low is not None and high is not None else ""

    rows = [
        {
            "label": v.label,
            "value": v.value + (" ⚑" if v.flagged else ""),
            "taxonomy": v.taxonomy_version or "",
            "reviewed": v.reviewed,
            "precision": v.precision,
            "95% CI": interval(v.precision_low, v.precision_high),
            "recall": v.recall,
            "missed": v.missed,
        }
        for v in report.values
    ]
    console.print(render.table(rows, title="precision per value (random stratum)"))
    agreement = [
        {
            "label": a.label,
            "taxonomy": a.taxonomy_version or "",
            "reviewed": a.reviewed,
            "precision": a.precision,
            "95% CI": interval(a.precision_low, a.precision_high),
            "model-human kappa": a.model_human_kappa,
            "pairs": a.human_pairs,
            "human kappa": a.human_human_kappa,
            "alpha": a.human_human_alpha,
        }
        for a in report.agreement
    ]
    console.print(render.table(agreement, title="agreement"))
    if weeks and report.weeks:
        console.print(render.table([w.model_dump() for w in report.weeks], title="per week"))
    if report.flagged:
        console.print(
            f"[yellow]⚑ below the bar[/] (precision < {report.bar} with >= "
            f"{report.min_reviews} reviews): {escape(', '.join(report.flagged))}"
        )


@taxonomy_app.command("propose")
def taxonomy_propose(db: DbOption = _DEFAULT_DB) -> None:
    """Write the next taxonomy version, the active one plus the reviewed corrections as
    examples, as a draft; then `convolens taxonomy validate --version N`."""
    from convolens.review.feedback import propose

    with _open(db) as warehouse:
        try:
            proposal = propose(warehouse, created_by=f"cli:{getpass.getuser()}")
        except (WarehouseError, ValueError) as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    v = proposal.version
    added = ", ".join(f"{k} +{n}" for k, n in sorted(proposal.added.items()))
    console.print(
        f"draft {escape(v.name)} version {v.version} ({v.taxonomy_version}) from "
        f"{escape(proposal.based_on)}: {escape(added)}"
    )
    console.print(f"next: convolens taxonomy validate --version {v.version}")


@taxonomy_app.command("versions")
def taxonomy_versions(db: DbOption = _DEFAULT_DB) -> None:
    """Stored taxonomy versions: status (draft, validated, active, retired), who approved."""
    from convolens.review.feedback import taxonomy_versions as versions

    with _open(db, read_only=True) as warehouse:
        found = versions(warehouse)
    rows = [
        {
            "name": v.name,
            "version": v.version,
            "taxonomy version": v.taxonomy_version,
            "status": v.status,
            "approved by": v.approved_by or "",
            "created": v.created_at[:19],
        }
        for v in found
    ]
    console.print(render.table(rows, title="taxonomy versions") if rows else "none stored")


def print_validation(report: object) -> None:
    from convolens.review.feedback import ValidationReport

    assert isinstance(report, ValidationReport)
    rows = [
        {
            "intent": i.intent,
            "reviewed": i.reviewed,
            "active": i.active_accuracy,
            "draft (cv)": i.draft_accuracy,
        }
        for i in report.intents
    ]
    console.print(render.table(rows, title=f"version {report.version} on reviewed labels"))
    console.print(
        f"accuracy on {report.reviewed} reviewed labels: active {report.active_accuracy:.1%}, "
        f"draft {report.draft_accuracy:.1%} ({report.folds}-fold, each fold's own "
        f"corrections held out); draft based on {report.based_on}"
    )


def validate_stored(db: Path, version: int | None, folds: int = 5) -> None:
    """`convolens taxonomy validate --version N`: the draft's figures on reviewed items."""
    from convolens.review.feedback import validate

    with _open(db) as warehouse, console.status("cross-validating on reviewed labels"):
        try:
            report = validate(warehouse, version, folds=folds)
        except WarehouseError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    print_validation(report)
    console.print(
        f"to use it: convolens taxonomy activate {report.version} --accept "
        "(after reading these figures)"
    )


@taxonomy_app.command("activate")
def taxonomy_activate(
    version: Annotated[int, typer.Argument(help="The stored version number.")],
    db: DbOption = _DEFAULT_DB,
    accept: Annotated[
        bool, typer.Option("--accept", help="Its validation figures were read and are accepted.")
    ] = False,
    relabel: Annotated[
        bool, typer.Option(help="Relabel the current conversations with it (see `diff`).")
    ] = True,
) -> None:
    """Activate a validated taxonomy version: shows its figures; needs --accept."""
    from convolens.review.feedback import activate, taxonomy_versions, validation_figures

    with _open(db) as warehouse:
        stored = [v for v in taxonomy_versions(warehouse) if v.version == version]
        figures = validation_figures(stored[-1]) if stored else None
        if figures is not None:
            print_validation(figures)
        try:
            activated = activate(warehouse, version, f"cli:{getpass.getuser()}", accept=accept)
        except WarehouseError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
        console.print(
            f"active: {escape(activated.name)} version {activated.version} "
            f"({activated.taxonomy_version}), approved by {escape(activated.approved_by or '')}"
        )
        if relabel:
            from convolens.enrich.runner import enrich
            from convolens.service.definitions import overrides

            with console.status("relabelling intents"):
                result = enrich(warehouse, ["intents"], config=overrides(warehouse))
            console.print(
                f"relabelled {result.conversations} conversations (run {result.run_id}); "
                "compare: convolens diff --component intents"
            )
