"""The overview's, the list's and a conversation's template context: the data each shows
and the figures drawn from it.

Kept apart from the routes so a page's content can be built (and read in a test or a
shell) without a request, and apart from `data` so the queries stay free of charts.
"""

from __future__ import annotations

from typing import Any

from convolens.analytics.viewer_view import OpaqueNames
from convolens.dashboard import charts, corpus, data, headline
from convolens.dashboard.daterange import DateRange, latest_day
from convolens.dashboard.label_flags import mark_flagged
from convolens.dashboard.transcript import recording_player
from convolens.dashboard.type_summary import type_panel
from convolens.service.auth import Principal, Role
from convolens.store.warehouse import Warehouse

__all__ = [
    "clock",
    "conversation",
    "conversation_list",
    "duration",
    "fmt",
    "overview",
    "pct",
    "warehouse_empty",
]


# -- template filters -------------------------------------------------------------------
def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def pct(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{float(value) * 100:.{digits}f}%"


def clock(seconds: Any) -> str:
    if seconds is None:
        return ""
    total = int(float(seconds))
    return f"{total // 60}:{total % 60:02d}"


def duration(seconds: Any) -> str:
    if seconds is None:
        return "–"
    total = round(float(seconds))
    if total >= 3600:
        return f"{total // 3600}h {total % 3600 // 60:02d}m"
    return f"{total // 60}m {total % 60:02d}s"


# -- pages ------------------------------------------------------------------------------
def overview(db: Warehouse, principal: Principal, dates: DateRange) -> dict[str, Any]:
    totals = data.aggregates(db, principal, dates)
    figures: dict[str, Any] = {}
    # No conversation in the range: no charts (an empty date axis reads "Jan 2000").
    if totals.conversations:
        volume = data.weekly_volume(db, principal, dates)
        sentiment = data.weekly_sentiment(db, principal, dates)
        if volume:
            figures["volume"] = charts.stacked_volume(
                volume, x="week", group="channel", y="conversations"
            )
        if sentiment:
            figures["sentiment"] = charts.weekly_sentiment(sentiment)
        if totals.sentiment:
            figures["sentiment_mix"] = mark_flagged(
                charts.bar_chart(
                    [(k, totals.sentiment.get(k, 0)) for k in ("positive", "neutral", "negative")],
                    color=charts.SENTIMENT_COLORS,
                ),
                db,
                "sentiment.conversation",
            )
        if totals.primary_intents:
            # Values whose reviewed precision is under the bar carry a flag (label_flags.py).
            figures["intents"] = mark_flagged(
                charts.bar_chart(list(totals.primary_intents.items())[:12]), db, "intent.primary"
            )
    latest = latest_day(db, principal)
    return {
        "dates": dates,
        "presets": dates.presets(latest),
        "totals": totals,
        "negative_share": headline.negative_share(totals),
        "wow": headline.week_over_week(db, principal, dates),
        "figures": figures,
        # Keys that see aggregates only get counts, not conversations.
        "alerts": data.alerts(db, principal, dates=dates) if principal.reads_text else [],
        "alert_counts": [] if principal.reads_text else data.alert_counts(db, principal, dates),
        # Spikes are corpus-wide: an agent's overview counts only their conversations.
        "rising": None
        if principal.role == Role.agent
        else corpus.rising(
            db, principal, as_of=dates.end,
            names=None if principal.reads_text else OpaqueNames(db),
        ),
    }  # fmt: skip


def warehouse_empty(db: Warehouse) -> bool:
    """No conversation at all yet: the dashboard opens on its first-run page."""
    return not db.query("SELECT 1 FROM conversation_heads LIMIT 1")


def conversation_list(
    db: Warehouse, principal: Principal, filters: data.ListFilters
) -> dict[str, Any]:
    found = data.list_page(db, principal, filters)
    pages = max(1, -(-found.total // data.PAGE_SIZE))
    dates = DateRange(since=filters.since, until=filters.until)
    return {
        "filters": filters,
        "dates": dates,
        "presets": dates.presets(latest_day(db, principal)),
        "options": data.filter_options(db, principal),
        "found": found,
        "page": min(max(filters.page, 1), pages),
        "page_count": pages,
        "page_size": data.PAGE_SIZE,
    }


def conversation(db: Warehouse, principal: Principal, ref: str) -> dict[str, Any]:
    view = data.conversation_view(db, principal, ref)
    figures: dict[str, Any] = {}
    if view.timeline is not None:
        figures["timeline"] = charts.timeline_chart(view.timeline)
    if view.trajectory:
        figures["trajectory"] = charts.sentiment_trajectory(view.trajectory, timed=view.timed)
    by_kind: dict[str, list[Any]] = {}
    for item in view.insights:
        by_kind.setdefault(item.kind, []).append(item)
    conv_sentiment = next(
        (r["value"] for r in view.parts["sentiment"] if r["label"] == "sentiment.conversation"),
        None,
    )
    primary = next(
        (r["value"] for r in view.parts["intents"] if r["label"] == "intent.primary"), None
    )
    resolution = next(
        (r["value"] for r in view.parts["resolution"] if r["label"] == "resolution.status"), None
    )
    # The LLM's summary where one was written; the overview line heads the type panel.
    summary = next(
        (r["value"] for r in view.parts["summary"] if r["label"] == "summary.abstractive"),
        None,
    )
    panel = type_panel(view.parts["type"] + view.parts["summary"], view.utterances)
    entities = next(
        (r["value"] for r in view.parts["entities"] if r["label"] == "entity.summary"), None
    )
    return {
        "view": view,
        "c": view.header,
        "figures": figures,
        "by_kind": by_kind,
        "sentiment": conv_sentiment,
        "primary": primary,
        "resolution": resolution,
        "summary": summary,
        "panel": panel,
        "entities": (entities or {}).get("entities", [])[:15],
        # The recording with its PII beeped, where one is kept (transcript.recording_player).
        "recording": recording_player(db, view.header),
        "kinds": [
            ("tracker", "trackers"), ("signal", "signals"), ("question", "questions"),
            ("action", "action items"), ("topic", "topics"), ("intent", "intent"),
            ("resolution", "resolution"), ("entity", "entities"), ("summary", "summary"),
        ],
    }  # fmt: skip
