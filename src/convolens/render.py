"""Rendering for the command line: tables, durations and the ingest summary (Rich)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convolens.ingest.pipeline import DryRun, IngestReport
from convolens.model import Conversation


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


_NO_WRAP = ("id", "group", "started", "source", "channel")
# Free text wraps, but not into a column narrower than this.
_MIN_TEXT_WIDTH = 10


def fit_columns(
    rows: list[dict[str, Any]], width: int, priority: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """`rows` with the least important columns left out until the table fits `width`
    characters, and the names left out. Rich would squeeze every column instead, down to
    nothing; a column is better gone than zero wide. `priority` lists the columns most
    important first; columns it does not name go first, the last of them first."""
    if not rows:
        return rows, []
    columns = list(rows[0])
    ranked = [c for c in priority if c in columns]
    order = [c for c in columns if c not in ranked] + ranked[::-1]  # first to drop first

    def need(column: str) -> int:
        cells = [fmt(row[column]) for row in rows]
        longest = max((len(cell) for cell in cells), default=0)
        if column in _NO_WRAP or all(" " not in cell for cell in cells):
            return max(len(column), longest)
        return max(len(column), min(longest, _MIN_TEXT_WIDTH))

    needed = {column: need(column) for column in columns}
    kept = list(columns)
    dropped: list[str] = []
    # Each column costs its width plus padding and a border line; plus the outer border.
    while len(kept) > 1 and sum(needed[c] + 3 for c in kept) + 1 > width:
        victim = next(c for c in order if c in kept)
        kept.remove(victim)
        dropped.append(victim)
    return [{c: row[c] for c in kept} for row in rows], dropped


def table(
    rows: list[dict[str, Any]],
    title: str | None = None,
    *,
    width: int | None = None,
    priority: Sequence[str] = (),
) -> Table:
    """Rows as a Rich table; with `width`, fitted to it (see `fit_columns`)."""
    dropped: list[str] = []
    if width is not None:
        rows, dropped = fit_columns(rows, width, priority)
    caption = (
        f"left out to fit {width} columns: {', '.join(dropped)} (a wider terminal or --json "
        "shows them)"
        if dropped
        else None
    )
    table = Table(title=title, header_style="bold cyan", caption=caption)
    if not rows:
        table.add_column("(no rows)")
        return table
    for key in rows[0]:
        numeric = any(
            isinstance(r[key], int | float) and not isinstance(r[key], bool) for r in rows
        )
        table.add_column(
            key,
            justify="right" if numeric else "left",
            overflow="fold",
            # Ids, dates and group names read badly when wrapped; free text may wrap.
            no_wrap=key in _NO_WRAP,
            min_width=min(len(key), 12) if width is not None else None,
        )
    for row in rows:
        table.add_row(*(fmt(v) for v in row.values()))
    return table


def print_ingest(console: Console, report: IngestReport) -> None:
    table = Table(title="Ingest summary", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    written = report.written
    for label, value in (
        ("files read", report.files),
        ("conversations parsed", report.conversations),
        ("  new", written.new),
        ("  new versions (changed content)", written.new_versions),
        ("  unchanged (already ingested)", written.unchanged),
        ("utterances written", written.utterances),
        ("records accepted", report.records),
        ("records rejected", report.rejected_records),
        ("seconds", round(report.elapsed_s, 2)),
    ):
        table.add_row(label, fmt(value))
    console.print(table)
    if report.per_format:
        console.print(
            "by format: " + ", ".join(f"{k} {v}" for k, v in sorted(report.per_format.items()))
        )
    if report.skipped_files:
        names = ", ".join(Path(p).name for p in report.skipped_files[:5])
        extra = len(report.skipped_files) - 5
        more = f" and {extra} more" if extra > 0 else ""
        console.print(f"[yellow]skipped (not a conversation format): {names}{more}[/]")
    for warning in report.warnings[:10]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for finding in report.health[:10]:  # against the source's history (convolens.health)
        where = escape(finding.source)
        console.print(f"[yellow]data health:[/] {where}: {escape(finding.message)}")
    colour = "red" if report.rejects else "green"
    console.print(f"[{colour}]{report.summary_line()}[/]")
    for reject in report.rejects[3:20]:
        console.print(f"  [red]•[/] {escape(reject.describe())}")
    console.print(f"run id: {report.run_id}")


def print_dry_run(console: Console, preview: DryRun) -> int:
    """The first conversations a mapping produces, one row per message; returns the exit
    code (1 when every record was rejected, as for a real ingest)."""
    for parsed in preview.first:
        conversation = parsed.conversation
        where = parsed.raw[0] if parsed.raw else None
        title = (
            f"{Path(where.source_path).name} {where.locator}: " if where else ""
        ) + f"{conversation.source.source_id or conversation.conversation_id}"
        names = {p.participant_id: p for p in conversation.participants}
        shown = Table(
            title=title,
            caption=(
                f"channel {conversation.channel.value}, started "
                f"{fmt(conversation.started_at)}, {len(conversation.utterances)} message(s)"
            ),
            header_style="bold cyan",
        )
        shown.add_column("author", no_wrap=True, max_width=20, overflow="ellipsis")
        shown.add_column("role", no_wrap=True)
        shown.add_column("time", no_wrap=True)
        shown.add_column("text", overflow="fold", ratio=1)
        for utterance in conversation.utterances[:8]:
            person = names.get(utterance.participant_id)
            when = (
                fmt(utterance.sent_at)
                if utterance.sent_at
                else clock(utterance.start)
                if utterance.start is not None
                else "–"
            )
            text = utterance.text if len(utterance.text) <= 120 else utterance.text[:117] + "..."
            shown.add_row(
                (person.name if person and person.name else utterance.participant_id),
                person.role.value if person else "unknown",
                when,
                text,
            )
        if len(conversation.utterances) > 8:
            shown.add_row("…", "", "", f"{len(conversation.utterances) - 8} more")
        console.print(shown)
    for warning in preview.warnings[:10]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    total = preview.conversations + len(preview.rejects)
    colour = "red" if preview.rejects else "green"
    console.print(
        f"[{colour}]dry run: {preview.conversations:,} conversation(s) from {preview.files:,} "
        f"file(s); {len(preview.rejects):,} of {total:,} records rejected[/]; nothing written"
    )
    for reject in preview.rejects[:10]:
        console.print(f"  [red]•[/] {escape(reject.describe())}")
    return 1 if preview.rejects and not preview.conversations else 0


def clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:05.2f}"


def metrics_table(
    conversation: list[dict[str, Any]], participants: list[dict[str, Any]], names: dict[str, str]
) -> Table:
    """Metrics as rows, with the conversation and each participant as a column."""
    table = Table(title="metrics", header_style="bold cyan")
    table.add_column("metric", style="bold")
    table.add_column("conversation", justify="right")
    for p in participants:
        table.add_column(
            f"{names.get(p['participant_id'], p['participant_id'])} ({p['role']})", justify="right"
        )
    keys = list(dict.fromkeys([*conversation[0], *(k for p in participants for k in p)]))
    for key in keys:
        if key in ("participant_id", "role"):
            continue
        values = [conversation[0].get(key)] + [p.get(key) for p in participants]
        if all(v is None for v in values):
            continue
        table.add_row(
            key,
            *(
                "" if k not in row else fmt(row[k])
                for k, row in zip(
                    [key] * len(values), [conversation[0], *participants], strict=True
                )
            ),
        )
    return table


# The report in two tables that each fit a normal terminal; the library keeps full names.
VOLUME_COLUMNS = {
    "group": "group",
    "conversations": "convs",
    "messages": "msgs",
    "avg_messages": "msgs/conv",
    "median_first_response_s": "first response",
    "median_response_s": "response",
    "avg_exchanges": "exchanges",
}
DYNAMICS_COLUMNS = {
    "group": "group",
    "timed": "timed",
    "avg_duration_min": "minutes",
    "avg_silence_share": "silence",
    "avg_overlap_s": "overlap s",
    "avg_switches_per_min": "switches/min",
    "avg_agent_talk_share": "agent talk",
    "avg_agent_monologue_s": "agent monologue s",
}


def duration(seconds: float | None) -> str | None:
    """Seconds as a person reads them: 42 s, 3.5 min, 6.2 h, 2.1 d."""
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def print_report(console: Console, rows: list[dict[str, Any]], grouping: str) -> None:
    """One grouping of `convolens report`: volume, then call dynamics where timed."""
    for row in rows:
        for key in ("median_first_response_s", "median_response_s"):
            row[key] = duration(row[key])
    volume = [{label: r[key] for key, label in VOLUME_COLUMNS.items()} for r in rows]
    console.print(table(volume, title=f"by {grouping}: volume and responsiveness"))
    timed = [r for r in rows if r["timed"]]
    if timed:
        dynamics = [{label: r[key] for key, label in DYNAMICS_COLUMNS.items()} for r in timed]
        console.print(table(dynamics, title=f"by {grouping}: call dynamics"))


_SENTIMENT_STYLE = {"negative": "red", "neutral": "dim", "positive": "green"}
_PALETTE = ["cyan", "magenta", "green", "yellow", "blue"]


def transcript(conversation: Conversation, labels: list[dict[str, Any]]) -> Table:
    """The transcript by speaker, with each utterance's sentiment when it has one."""
    sentiment = {
        row["utterance_id"]: json.loads(row["value"])
        for row in labels
        if row["label"] == "sentiment.utterance"
    }
    names = {p.participant_id: p.name or p.participant_id for p in conversation.participants}
    colours = {pid: _PALETTE[i % len(_PALETTE)] for i, pid in enumerate(names)}
    out = Table(show_header=True, header_style="bold", box=None)
    out.add_column("when", style="dim", no_wrap=True)
    out.add_column("who", style="bold", no_wrap=True)
    out.add_column("text")
    if sentiment:
        out.add_column("sentiment", no_wrap=True)
    for seq, u in enumerate(conversation.utterances):
        when = (
            f"{clock(u.start)}–{clock(u.end)}"
            if u.is_timed
            else fmt(u.sent_at)
            if u.sent_at
            else ""
        )
        who = f"[{colours[u.participant_id]}]{names[u.participant_id]}[/]"
        row = [when, who + (" [dim](internal)[/]" if u.internal else ""), u.text]
        if sentiment:
            value = sentiment.get(f"{conversation.conversation_id}:{seq}")
            row.append(
                f"[{_SENTIMENT_STYLE.get(value['label'], 'white')}]{value['label']} "
                f"{value['score']:+.2f}[/]"
                if value
                else ""
            )
        out.add_row(*row)
    return out


# Value fields that name what an utterance-level label found, most telling first.
_WHAT_KEYS = ("intent", "tracker", "signal", "status", "type", "kind", "phrase", "label")
# Shown in their own column (sentiment) or only as counts (PII tags are in the text).
_NOT_INSIGHTS = {"sentiment.utterance", "pii.entity"}


def insights_table(conversation: Conversation, labels: list[dict[str, Any]]) -> Table | None:
    """Utterance-level findings (intents, trackers, questions, ...) with the words they rest
    on highlighted in the utterance."""
    texts = {
        f"{conversation.conversation_id}:{i}": u for i, u in enumerate(conversation.utterances)
    }
    names = {p.participant_id: p.name or p.participant_id for p in conversation.participants}
    out = Table(title="insights", show_header=True, header_style="bold")
    for column in ("label", "turn", "what", "evidence"):
        out.add_column(column, overflow="fold")
    rows = 0
    for row in labels:
        utterance = texts.get(row["utterance_id"] or "")
        if utterance is None or row["label"] in _NOT_INSIGHTS:
            continue
        value = json.loads(row["value"])
        what = (
            next(
                (str(value[k]) for k in _WHAT_KEYS if isinstance(value, dict) and value.get(k)), ""
            )
            if isinstance(value, dict)
            else fmt(value)
        )
        if row.get("confidence") is not None:
            what += f" [dim]{row['confidence']:.2f}[/]"
        spans = [
            (e["start"], e["end"])
            for e in json.loads(row.get("evidence") or "[]")
            if e.get("utterance_id") == row["utterance_id"]
        ]
        seq = row["utterance_id"].rsplit(":", 1)[-1]
        out.add_row(
            row["label"],
            f"#{seq} {names.get(utterance.participant_id, utterance.participant_id)}",
            what,
            _highlight(utterance.text, spans),
        )
        rows += 1
    return out if rows else None


def _highlight(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` as Rich markup with `spans` in reverse video (other markup escaped)."""
    from rich.markup import escape

    out, cursor = [], 0
    for start, end in sorted(spans):
        if start < cursor or end > len(text) or start >= end:
            continue
        out += [escape(text[cursor:start]), f"[reverse]{escape(text[start:end])}[/]"]
        cursor = end
    out.append(escape(text[cursor:]))
    return "".join(out)


def labels_table(labels: list[dict[str, Any]], names: dict[str, str]) -> Table | None:
    """Conversation- and participant-level labels, one line each."""
    rows = []
    for row in labels:
        if row["utterance_id"] is not None:
            continue
        value = json.loads(row["value"])
        if isinstance(value, dict):
            who = names.get(str(value.get("participant_id")), "")
            shown = ", ".join(
                f"{k}={fmt(v) if not isinstance(v, float) else f'{v:+.2f}'}"
                for k, v in value.items()
                if k != "participant_id" and not isinstance(v, dict | list)
            )
        else:
            who, shown = "", fmt(value)
        rows.append(
            {
                "label": row["label"],
                "who": who,
                "value": shown,
                "by": f"{row['component']} v{row['component_version']}",
            }
        )
    return table(rows, title="labels") if rows else None
