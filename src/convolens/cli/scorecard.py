"""`convolens scorecard ...` (validate, score, show, diff, review, calibration) and
`convolens coaching`: thin commands over `convolens.scorecards`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from convolens import render
from convolens.cli.main import _DEFAULT_DB, DbOption, _open, app, console, err
from convolens.store.warehouse import WarehouseError

__all__: list[str] = []

scorecard_app = typer.Typer(
    help="Quality scorecards: validate, score conversations, show scores with evidence, "
    "compare versions, record human QA and measure agreement.",
    no_args_is_help=True,
)
app.add_typer(scorecard_app, name="scorecard")

ScorecardName = Annotated[str, typer.Option("--scorecard", "-s", help="Scorecard name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


@scorecard_app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scorecard YAML files.")],
) -> None:
    """Check scorecard files; errors name the file, line and field. Exit 1 if any fails."""
    from convolens.scorecards.definition import ScorecardError, load_scorecard

    failed = False
    for path in files:
        try:
            card = load_scorecard(path)
        except ScorecardError as exc:
            err.print(f"[red]invalid:[/] {escape(str(exc))}", soft_wrap=True)
            failed = True
            continue
        kinds = sorted({c.check.kind for c in card.criteria})
        console.print(
            f"[green]ok[/] {path.name}: {card.scorecard_version}, {len(card.sections)} sections, "
            f"{len(card.criteria)} criteria ({', '.join(kinds)}), "
            f"auto-fail: {', '.join(c.id for c in card.criteria if c.auto_fail) or 'none'}"
        )
    if failed:
        raise typer.Exit(1)


@scorecard_app.command("score")
def score(
    scorecards: Annotated[
        list[Path] | None,
        typer.Option("--scorecard", "-s", help="Scorecard file(s); default: support and sales."),
    ] = None,
    db: DbOption = _DEFAULT_DB,
    recompute: Annotated[bool, typer.Option(help="Score scored conversations again.")] = False,
) -> None:
    """Score the current conversations (those this scorecard version has not scored)."""
    from convolens.enrich.runner import enrich
    from convolens.scorecards.component import ScorecardComponent
    from convolens.scorecards.definition import ScorecardError
    from convolens.scorecards.store import remember_scorecard

    with _open(db) as warehouse:
        try:
            component = ScorecardComponent(
                {"scorecards": list(scorecards or []) or None, "warehouse": warehouse}
            )
        except ScorecardError as exc:
            raise _fail(str(exc)) from None
        for card in component.scorecards:
            remember_scorecard(warehouse, card, "cli")
        report = enrich(warehouse, [component], recompute=recompute)
    versions = ", ".join(c.scorecard_version for c in component.scorecards)
    totals = report.labels.get("scorecard", 0)
    console.print(
        f"scored {report.conversations} conversation(s) with {versions} "
        f"({totals} labels) in {report.elapsed_s:.1f} s"
    )


@scorecard_app.command("show")
def show(
    conversation: Annotated[str, typer.Argument(help="Conversation id, prefix or source id.")],
    db: DbOption = _DEFAULT_DB,
    scorecard: Annotated[str | None, typer.Option("--scorecard", "-s")] = None,
    as_json: JsonOption = False,
) -> None:
    """A conversation's scores: each criterion's outcome, reason and evidence words."""
    from convolens.scorecards.store import conversation_scores

    with _open(db, read_only=True) as warehouse:
        try:
            cid = warehouse.resolve_id(conversation)
        except WarehouseError as exc:
            raise _fail(str(exc)) from None
        found = conversation_scores(warehouse, cid, scorecard=scorecard, quotes=True)
    if as_json:
        console.print_json(json.dumps([s.model_dump(mode="json") for s in found]))
        return
    if not found:
        console.print(f"[dim]{cid} has no scorecard score (not scored, or none applies)[/]")
        return
    for s in found:
        verdict = "n/a" if s.score is None else f"{s.score:g}"
        mark = (
            ""
            if s.passed is None
            else (" [green]pass[/]" if s.passed else " [red]below pass mark[/]")
        )
        console.print(
            f"[bold]{s.scorecard}[/] {s.scorecard_version}: score {verdict}{mark}"
            + (f", auto-fail: {', '.join(s.auto_failed)}" if s.auto_failed else "")
            + (" [cyan](human QA applied)[/]" if s.reviewed else "")
        )
        rows = [
            {
                "section": c.section,
                "criterion": c.criterion,
                "outcome": c.outcome + (f" (auto {c.auto_outcome})" if c.human_outcome else ""),
                "reason": c.reason,
                "evidence": " | ".join(c.quotes),
            }
            for c in s.criteria
        ]
        console.print(render.table(rows))


@scorecard_app.command("diff")
def diff(
    scorecard: ScorecardName = "support",
    from_ref: Annotated[str, typer.Option("--from", help="Version, prefix or 'previous'.")] = (
        "previous"
    ),
    to_ref: Annotated[str, typer.Option("--to", help="Version, prefix or 'latest'.")] = "latest",
    db: DbOption = _DEFAULT_DB,
) -> None:
    """What a new scorecard version changed: outcomes per criterion, moved conversations."""
    from convolens.scorecards.diff import diff_versions

    with _open(db, read_only=True) as warehouse:
        try:
            result = diff_versions(warehouse, scorecard, from_ref, to_ref)
        except WarehouseError as exc:
            raise _fail(str(exc)) from None
    console.print(
        f"[bold]{result.from_version}[/] -> [bold]{result.to_version}[/] on "
        f"{result.conversations} conversation(s): mean {result.mean_before} -> {result.mean_after}"
    )
    rows = [
        {"criterion": c.criterion, "before": _counts(c.before), "after": _counts(c.after)}
        for c in result.criteria
        if c.before != c.after
    ]
    console.print(render.table(rows, title="changed criteria") if rows else "no outcome changed")
    if result.moved:
        moved = [
            {
                "conversation": m.source_id or m.conversation_id,
                "criterion": m.criterion,
                "before": m.before,
                "after": m.after,
            }
            for m in result.moved
        ]
        console.print(render.table(moved, title="moved"))


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k} {counts.get(k, 0)}" for k in ("pass", "fail", "na"))


@scorecard_app.command("review")
def review(
    conversation: Annotated[
        str | None, typer.Argument(help="Conversation id, prefix or source id.")
    ] = None,
    scorecard: ScorecardName = "support",
    outcome: Annotated[
        list[str] | None,
        typer.Option("--set", help="criterion=pass|fail|na (repeat)."),
    ] = None,
    reviewer: Annotated[str, typer.Option(help="Who reviewed.")] = "cli",
    qa_file: Annotated[
        Path | None, typer.Option("--file", help="A QA file of hand scores (YAML).")
    ] = None,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Record a QA reviewer's outcomes; they override the automatic ones."""
    from convolens.audit import cli_actor, record
    from convolens.scorecards.store import QaEntry, import_qa_file, record_qa

    with _open(db) as warehouse:
        try:
            if qa_file is not None:
                count = import_qa_file(warehouse, qa_file)
                record(
                    warehouse, "scorecard.review", actor=cli_actor(), via="cli",
                    target_type="qa_file", details={"outcomes": count},
                )  # fmt: skip
                console.print(f"recorded {count} criterion outcome(s) from {qa_file.name}")
                return
            if conversation is None or not outcome:
                raise WarehouseError("give a conversation and --set criterion=outcome, or --file")
            entries = []
            for item in outcome:
                criterion, _, value = item.partition("=")
                if value not in ("pass", "fail", "na"):
                    raise WarehouseError(f"--set {item!r}: give criterion=pass, fail or na")
                entries.append(QaEntry(criterion=criterion, outcome=value))  # type: ignore[arg-type]
            cid = warehouse.resolve_id(conversation)
            result = record_qa(warehouse, cid, scorecard, entries, reviewer)
            record(
                warehouse, "scorecard.review", actor=cli_actor(), via="cli",
                target_type="conversation", target_id=cid,
                details={"scorecard": scorecard, "outcomes": len(entries)},
            )  # fmt: skip
        except WarehouseError as exc:
            raise _fail(str(exc)) from None
    console.print(f"{scorecard}: score {result.auto_score} (auto) -> {result.score} (with QA)")


@scorecard_app.command("calibration")
def calibration_command(
    scorecard: Annotated[str | None, typer.Option("--scorecard", "-s")] = None,
    db: DbOption = _DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Agreement between automatic and human QA outcomes per criterion (percent, kappa)."""
    from convolens.scorecards.calibration import calibration

    with _open(db, read_only=True) as warehouse:
        result = calibration(warehouse, scorecard=scorecard)
    if as_json:
        console.print_json(result.model_dump_json())
        return
    console.print(
        f"{result.reviews} review(s) of {result.conversations} conversation(s): agreement "
        f"{_pct(result.overall_agreement)}, Cohen's kappa {result.overall_kappa}"
    )
    rows = [
        {
            "scorecard": c.scorecard,
            "criterion": c.criterion,
            "reviews": c.reviews,
            "agreement": _pct(c.agreement),
            "kappa": "-" if c.kappa is None else f"{c.kappa:.2f}",
            "auto->human": " ".join(f"{k} {v}" for k, v in c.confusion.items()),
            "flag": "DISAGREE" if c.flagged else "",
        }
        for c in result.criteria
    ]
    console.print(render.table(rows) if rows else "[dim]no human QA scores yet[/]")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


@app.command("coaching")
def coaching(
    scorecard: ScorecardName = "support",
    agent: Annotated[str | None, typer.Option(help="One agent.")] = None,
    coached_on: Annotated[
        str | None,
        typer.Option("--coached-on", help="YYYY-MM-DD: the agent's scores before vs after."),
    ] = None,
    window_days: Annotated[int, typer.Option(min=1, max=3650)] = 28,
    db: DbOption = _DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Coaching per agent: mean score vs top quartile, weakest criteria with example
    moments, the coaching list; with --agent and --coached-on, before vs after."""
    from convolens.scorecards.coaching import coaching_impact, coaching_report

    with _open(db, read_only=True) as warehouse:
        if coached_on is not None:
            if agent is None:
                raise _fail("--coached-on needs --agent")
            try:
                day = date.fromisoformat(coached_on)
            except ValueError:
                raise _fail(f"--coached-on {coached_on!r}: give a date as YYYY-MM-DD") from None
            impact = coaching_impact(warehouse, agent, day, scorecard, window_days)
            if as_json:
                console.print_json(impact.model_dump_json())
                return
            console.print(
                f"{agent} on {scorecard}: {impact.mean_before} ({impact.before_conversations}) "
                f"-> {impact.mean_after} ({impact.after_conversations}), change {impact.change}, "
                f"p = {impact.p_value}"
            )
            rows = [{"criterion": c, **v} for c, v in impact.criteria.items()]
            console.print(render.table(rows, title="pass rate before / after"))
            return
        report = coaching_report(warehouse, scorecard, agent=agent)
    if as_json:
        console.print_json(report.model_dump_json())
        return
    console.print(
        f"[bold]{scorecard}[/]: team mean {report.team_mean}, top quartile "
        f"{report.top_quartile_mean} ({', '.join(report.top_quartile_agents) or '-'})"
    )
    agents = [
        {
            "agent": a.agent,
            "conversations": a.conversations,
            "mean score": a.mean_score,
            "top quartile": "yes" if a.top_quartile else "",
            "trend": " ".join(f"{t['week'][5:]}:{t['mean_score']:g}" for t in a.trend),
        }
        for a in report.agents
    ]
    console.print(render.table(agents, title="agents"))
    items = [
        {
            "agent": i.agent,
            "criterion": i.criterion,
            "pass rate": _pct(i.pass_rate),
            "top quartile": _pct(i.top_quartile_rate),
            "examples": " ".join(m.source_id or m.conversation_id for m in i.examples),
        }
        for i in report.coaching_list
    ]
    console.print(render.table(items, title="coaching list") if items else "nothing to coach")
