"""Commands for business joins and agent benchmarking: `import`, `stitch`, `lift`, `issues`,
`friction`, `campaigns`, `agents`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from convolens import render
from convolens.analytics.agents import (
    MEASURES,
    agent_scorecards,
    conversations_without_agent,
    human_vs_ai,
)
from convolens.analytics.business_import import EntityKind, StitchResult, import_entities, stitch
from convolens.analytics.business_marts import (
    DIMENSIONS,
    campaign_view,
    friction_by_topic,
    issues_by_value,
    signal_outcome_lift,
)
from convolens.cli.main import _DEFAULT_DB, DbOption, _date, _open, app, console, err
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import WarehouseError

__all__: list[str] = []

SinceOption = Annotated[str | None, typer.Option(help="Started at or after (ISO date).")]
UntilOption = Annotated[str | None, typer.Option(help="Started before (ISO date).")]
ChannelOption = Annotated[str | None, typer.Option(help="Only this channel.")]
DimensionOption = Annotated[str, typer.Option(help=f"What an issue is: {', '.join(DIMENSIONS)}.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _filters(since: str | None, until: str | None, channel: str | None) -> ConversationFilter:
    return ConversationFilter(
        channel=channel, since=_date(since, "since"), until=_date(until, "until")
    )


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/] {exc}")
    return typer.Exit(2)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


@app.command("import")
def import_(
    kind: Annotated[EntityKind, typer.Argument(help="accounts, orders or campaigns.")],
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file.", exists=True)],
    db: DbOption = _DEFAULT_DB,
    restitch: Annotated[
        bool, typer.Option("--stitch/--no-stitch", help="Re-link conversations afterwards.")
    ] = True,
) -> None:
    """Import accounts, orders or campaigns (rows with an id already imported are replaced)."""
    with _open(db) as warehouse:
        try:
            result = import_entities(warehouse, path, kind)
            console.print(
                f"{result.kind.value}: {result.rows:,} rows from {result.file} "
                f"({result.inserted:,} new, {result.replaced:,} replaced; run {result.run_id})"
            )
            if result.extra_columns:
                console.print(f"[dim]kept as attributes: {', '.join(result.extra_columns)}[/]")
            for warning in result.warnings:
                err.print(f"[yellow]warning:[/] {warning}")
            if restitch and kind is not EntityKind.campaigns:
                accounts = warehouse.con.execute("SELECT count(*) FROM accounts").fetchone()
                if accounts and accounts[0]:
                    _print_stitch(stitch(warehouse))
        except WarehouseError as exc:
            raise _fail(exc) from None


def _print_stitch(result: StitchResult) -> None:
    rows = [{"rule": rule, "conversations": n} for rule, n in result.by_rule.items()]
    rows += [
        {"rule": "ambiguous (left out)", "conversations": len(result.ambiguous)},
        {"rule": "no match", "conversations": result.unmatched},
    ]
    console.print(
        render.table(
            rows, title=f"stitched {result.stitched:,} of {result.conversations:,} conversations"
        )
    )
    if result.ambiguous:
        console.print(f"[dim]ambiguous: {', '.join(result.ambiguous[:10])}[/]")


@app.command("stitch")
def stitch_(db: DbOption = _DEFAULT_DB) -> None:
    """Link conversations to accounts: explicit id, order id, contact email, email domain."""
    with _open(db) as warehouse:
        try:
            _print_stitch(stitch(warehouse))
        except WarehouseError as exc:
            raise _fail(exc) from None


@app.command()
def lift(
    signal: Annotated[str, typer.Option(help="The value to test.")] = "competitor_evaluation",
    dimension: Annotated[
        str, typer.Option(help=f"Where the value is: {', '.join(DIMENSIONS)}.")
    ] = "signal",
    outcome: Annotated[Literal["churn", "order"], typer.Option(help="churn or order.")] = "churn",
    window: Annotated[int, typer.Option(help="Days after the signal.")] = 90,
    since: SinceOption = None,
    until: UntilOption = None,
    db: DbOption = _DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Outcome rate of accounts with a signal vs without it and vs all, with 95 % intervals."""
    with _open(db, read_only=True) as warehouse:
        try:
            result = signal_outcome_lift(
                warehouse,
                signal,
                outcome,
                window,
                dimension=dimension,
                filters=_filters(since, until, None),
            )
        except WarehouseError as exc:
            raise _fail(exc) from None
    if as_json:
        console.print_json(result.model_dump_json())
        return
    rows = [
        {
            "accounts": name,
            "n": group.accounts,
            outcome: group.outcomes,
            "rate": _pct(group.rate),
            "95 % CI": "-"
            if group.ci_low is None
            else f"{_pct(group.ci_low)} - {_pct(group.ci_high)}",
        }
        for name, group in (
            (f"with {signal}", result.with_signal),
            (f"without {signal}", result.without_signal),
            ("all", result.all_accounts),
        )
    ]
    console.print(render.table(rows, title=f"{outcome} within {window} days ({dimension})"))

    def ratio(value: float | None, ci: tuple[float, float] | None) -> str:
        if value is None:
            return "-"
        return f"{value:.2f}" + (f" (95 % CI {ci[0]:.2f} - {ci[1]:.2f})" if ci else "")

    console.print(f"lift vs all accounts: [bold]{ratio(result.lift, result.lift_ci)}[/]")
    console.print(f"risk ratio vs without: {ratio(result.risk_ratio, result.risk_ratio_ci)}")
    if result.excluded or result.followup_incomplete:
        console.print(
            f"[dim]{result.excluded} account(s) had churned before their start (left out); "
            f"{result.followup_incomplete} still inside their window[/]"
        )


@app.command()
def issues(
    dimension: DimensionOption = "intent",
    since: SinceOption = None,
    until: UntilOption = None,
    channel: ChannelOption = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Issues weighted by customer value: accounts and ARR touched, ARR churned."""
    with _open(db, read_only=True) as warehouse:
        try:
            found = issues_by_value(warehouse, dimension, filters=_filters(since, until, channel))
        except WarehouseError as exc:
            raise _fail(exc) from None
    rows = [
        {
            dimension: r.issue,
            "conversations": r.conversations,
            "accounts": r.accounts,
            "ARR": round(r.total_arr),
            "ARR share": _pct(r.arr_share),
            "churned ARR": round(r.churned_arr),
        }
        for r in found[:limit]
    ]
    console.print(render.table(rows, title=f"{dimension} by customer value"))


@app.command()
def friction(
    dimension: DimensionOption = "intent",
    since: SinceOption = None,
    until: UntilOption = None,
    channel: ChannelOption = None,
    repeat_days: Annotated[int, typer.Option(help="Repeat contact window (days).")] = 7,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Effort per issue: exchanges, escalations, handle time, repeat contacts."""
    with _open(db, read_only=True) as warehouse:
        try:
            found = friction_by_topic(
                warehouse,
                dimension,
                filters=_filters(since, until, channel),
                repeat_days=repeat_days,
            )
        except WarehouseError as exc:
            raise _fail(exc) from None
    rows = [
        {
            dimension: r.issue,
            "conversations": r.conversations,
            "exchanges": None if r.avg_exchanges is None else round(r.avg_exchanges, 1),
            "escalated": _pct(r.escalation_rate),
            "handle min": None
            if r.avg_handle_time_s is None
            else round(r.avg_handle_time_s / 60, 1),
            "repeat": _pct(r.repeat_contact_rate),
        }
        for r in found[:limit]
    ]
    console.print(render.table(rows, title=f"friction by {dimension}"))


@app.command()
def campaigns(
    since: SinceOption = None,
    until: UntilOption = None,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Per campaign: conversations and the share that are confused or negative."""
    with _open(db, read_only=True) as warehouse:
        view = campaign_view(warehouse, filters=_filters(since, until, None))
    rows = [
        {
            "campaign": c.campaign_id,
            "name": c.name,
            "conversations": c.conversations,
            "accounts": c.accounts,
            "confused": _pct(c.confused_share),
            "negative": _pct(c.negative_share),
        }
        for c in view.campaigns
    ]
    console.print(render.table(rows, title="campaigns"))
    console.print(
        f"[dim]all {view.conversations:,} conversations: confused {_pct(view.confused_share)}, "
        f"negative {_pct(view.negative_share)}[/]"
    )


@app.command()
def agents(
    since: SinceOption = None,
    until: UntilOption = None,
    channel: ChannelOption = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    kind: Annotated[
        Literal["human", "ai"] | None, typer.Option(help="Only human agents or only bots.")
    ] = None,
    min_conversations: Annotated[int, typer.Option(help="Leave out smaller agents.")] = 1,
    vs_ai: Annotated[bool, typer.Option("--human-vs-ai", help="Humans vs bots instead.")] = False,
    db: DbOption = _DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Agent scorecards against the team and its top quartile (or humans vs AI)."""
    filters = ConversationFilter(
        channel=channel, queue=queue, since=_date(since, "since"), until=_date(until, "until")
    )
    with _open(db, read_only=True) as warehouse:
        if vs_ai:
            comparison = human_vs_ai(warehouse, filters)
        else:
            team = agent_scorecards(
                warehouse, filters, kind=kind, min_conversations=min_conversations
            )
            unassigned = conversations_without_agent(warehouse, filters)
    if vs_ai:
        if as_json:
            console.print_json(comparison.model_dump_json())
            return
        human, ai = comparison.human.measures, comparison.ai.measures
        rows = [
            {
                "measure": "conversations",
                "human": human.conversations,
                "ai": ai.conversations,
                "ai - human": None,
            },
            *(
                {
                    "measure": m,
                    "human": getattr(human, m),
                    "ai": getattr(ai, m),
                    "ai - human": comparison.difference[m],
                }
                for m in MEASURES
            ),
        ]
        title = (
            f"humans ({', '.join(comparison.human.agents)}) "
            f"vs AI ({', '.join(comparison.ai.agents)})"
        )
        console.print(render.table(rows, title=title))
        console.print(
            render.table(
                [h.model_dump() for h in comparison.by_handling],
                title="outcomes by who handled the conversation",
            )
        )
        return
    if as_json:
        console.print_json(team.model_dump_json())
        return
    rows = []
    for card in team.agents:
        row: dict[str, object] = {
            "agent": card.agent,
            "kind": card.kind,
            "conversations": card.measures.conversations,
        }
        for measure in MEASURES:
            stat = card.stats[measure]
            row[measure] = (
                "-" if stat.value is None else f"{stat.value:.2f} (p{stat.percentile:.0f})"
            )
        rows.append(row)
    rows.append(
        {
            "agent": "team mean",
            "kind": "",
            "conversations": None,
            **{m: "-" if v is None else f"{v:.2f}" for m, v in team.team_mean.items()},
        }
    )
    rows.append(
        {
            "agent": "top quartile",
            "kind": "",
            "conversations": None,
            **{m: "-" if v is None else f"{v:.2f}" for m, v in team.top_quartile.items()},
        }
    )
    console.print(render.table(rows, title="agents (value, percentile: p100 = best)"))
    if unassigned:
        # Missing is missing: not an agent, but said, so the counts add up with `report`.
        console.print(
            f"{unassigned} conversation(s) with no agent (none took part, none assigned): "
            "`convolens report --by agent` lists them as (none)"
        )
