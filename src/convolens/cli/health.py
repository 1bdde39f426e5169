"""`convolens drift` and `convolens health`: label drift and intake data health, thin
commands over `convolens.health` (the same figures as /v1/drift, /v1/data-health and the
dashboard's Data health page)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from convolens.cli.main import _DEFAULT_DB, DbOption, _open, app, console, err
from convolens.health import drift, store
from convolens.health.intake_checks import CHECKS

__all__: list[str] = []


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


@app.command("drift")
def drift_command(
    db: DbOption = _DEFAULT_DB,
    recent_days: Annotated[int, typer.Option(help="Days in the recent window.")] = 7,
    reference_days: Annotated[int, typer.Option(help="Days in the reference window.")] = 28,
    until: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Last day of the recent window (default: the day of the newest conversation).",
        ),
    ] = None,
    component: Annotated[
        list[str] | None, typer.Option("--component", "-c", help="Only these components.")
    ] = None,
    threshold: Annotated[float, typer.Option(help="PSI above this is drift.")] = 0.2,
    series: Annotated[int, typer.Option(help="Earlier windows in the PSI series.")] = 0,
    embeddings: Annotated[
        bool, typer.Option(help="Also the embedding centroid shift of customer statements.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Store the figures and send 'drift' webhook events."),
    ] = False,
    repeat_alerts: Annotated[
        bool,
        typer.Option(help="With --check: alert figures already drifted at the last check."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Label drift per component: PSI and chi-square of the label distribution and the
    mean-confidence shift of the recent window against the reference window. Exits 3 when
    a component drifted (for scripts and schedulers)."""
    try:
        settings = drift.DriftSettings(
            recent_days=recent_days,
            reference_days=reference_days,
            until=until.date() if until else None,
            components=component or None,
            psi_threshold=threshold,
            series_points=series,
            embeddings=embeddings,
        )
    except ValidationError as exc:
        err.print(f"[red]error:[/] {escape(str(exc.errors()[0]['msg']))}")
        raise typer.Exit(2) from None
    with _open(db, read_only=not check) as warehouse:
        if check:
            report = drift.check_drift(warehouse, settings, repeat_alerts=repeat_alerts)
        else:
            report = drift.drift_report(warehouse, settings)
    if as_json:
        console.print_json(report.model_dump_json())
    else:
        _print_drift(report)
    if report.drifted:
        raise typer.Exit(3)


def _print_drift(report: drift.DriftReport) -> None:
    if report.until is None:
        console.print("no conversations yet")
        return
    table = Table(
        title=f"Drift: {report.recent_start} – {report.until} vs "
        f"{report.reference_start} – {report.recent_start} (excl.)"
    )
    for name in ("component", "recent", "reference", "PSI", "χ² p", "confidence", "drift"):
        table.add_column(name, justify="left" if name in ("component", "drift") else "right")
    for c in report.components:
        table.add_row(
            escape(c.component), str(c.recent_n), str(c.reference_n), _fmt(c.psi),
            _fmt(c.chi2_p, 4),
            f"{_fmt(c.reference_confidence, 2)} → {_fmt(c.recent_confidence, 2)}",
            ("[red]DRIFT[/] " if c.drifted else "") + escape("; ".join(c.reasons)),
        )  # fmt: skip
    console.print(table)
    if report.centroid is not None:
        m = report.centroid
        state = "[red]DRIFT[/]" if m.drifted else "ok"
        console.print(
            f"customer statements: centroid cosine distance {_fmt(m.cosine_distance, 4)} "
            f"(threshold {m.threshold:g}; {m.recent_n} recent, {m.reference_n} reference) {state}"
        )
    if report.series:
        console.print("PSI series (last day of each recent window):")
        for name in sorted({p.component for p in report.series}):
            points = [p for p in report.series if p.component == name]
            line = ", ".join(f"{p.until} {_fmt(p.psi, 2)}" for p in points)
            console.print(f"  {escape(name)}: {line}")
    if report.check_id:
        console.print(f"stored as {report.check_id}; {report.alerts} webhook deliveries queued")


@app.command("health")
def health_command(
    db: DbOption = _DEFAULT_DB,
    run: Annotated[str | None, typer.Option("--run", help="Only this ingest run.")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source (format/system).")] = None,
    check: Annotated[
        str | None, typer.Option(help=f"Only this check: {', '.join(CHECKS)}.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many findings.")] = 500,
    fmt: Annotated[
        Literal["table", "csv", "json"], typer.Option("--format", help="table, csv or json.")
    ] = "table",
    sources: Annotated[
        bool, typer.Option("--sources", help="Each source's expected fields and fill rates.")
    ] = False,
) -> None:
    """Intake data health: what ingest runs got wrong against their sources' history
    (schema drift, fill-rate drops, volume, language mix, duplicates, PII in fields)."""
    if check is not None and check not in CHECKS:
        err.print(f"[red]error:[/] unknown check {check!r}; known: {', '.join(CHECKS)}")
        raise typer.Exit(2)
    with _open(db, read_only=True) as warehouse:
        if sources:
            health = store.source_health(warehouse)
            if fmt == "table":
                _print_sources(health)
            else:
                print(json.dumps([s.model_dump(mode="json") for s in health], indent=2))
            return
        found = store.list_findings(warehouse, run_id=run, source=source, check=check, limit=limit)
    if fmt != "table":
        # Plain print: CSV/JSON go to files and pipes as they are, never wrapped.
        print(store.export_findings(found, fmt), end="" if fmt == "csv" else "\n")
        return
    if not found:
        console.print("no findings")
        return
    table = Table(title="Data health findings")
    for name in ("when", "source", "check", "field", "finding", "run"):
        table.add_column(name)
    for f in found:
        table.add_row(
            f.created_at.strftime("%Y-%m-%d %H:%M") if f.created_at else "",
            escape(f.source), f.check_name, escape(f.field or ""), escape(f.message), f.run_id,
        )  # fmt: skip
    console.print(table)


def _print_sources(health: list[store.SourceHealth]) -> None:
    if not health:
        console.print("no ingest runs profiled yet")
    for s in health:
        table = Table(title=f"{s.source}: {s.runs} runs, {s.records} records")
        for name in ("expected field", "type", "present", "filled"):
            table.add_column(name, justify="right" if name in ("present", "filled") else "left")
        for e in s.expected:
            table.add_row(
                escape(e.field), e.type or ("canonical" if e.canonical else ""),
                f"{e.presence:.0%}", f"{e.fill_rate:.0%}",
            )  # fmt: skip
        console.print(table)
