"""Week-over-week deltas of the overview's headline figures.

The week is the last 7 days of the page's range (to its `until`, or to the latest day with
a conversation when the range is open), compared with the 7 days before it. Both come
from the API's own `aggregates`, scoped to the key (an agent's counts stay their own), so a
delta is the difference of two numbers /v1/aggregates would give for those days. A figure
without a value in either week (no labelled conversation, say) has no delta: it says so
rather than showing a change from zero.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from pydantic import BaseModel

from convolens.client.models import Aggregates
from convolens.dashboard import data
from convolens.dashboard.daterange import DateRange, latest_day
from convolens.service.auth import Principal
from convolens.store.warehouse import Warehouse

__all__ = ["Delta", "WeekOverWeek", "negative_share", "week_over_week"]


class Delta(BaseModel):
    current: float | None
    previous: float | None
    change: float | None
    text: str  # "+3 (+12 %) vs the 7 days before", or why there is none
    direction: str  # "up", "down", "flat" or "none" (CSS class; no colour judges it)


class WeekOverWeek(BaseModel):
    week_start: date
    week_end: date
    deltas: dict[str, Delta]


def negative_share(totals: Aggregates) -> float | None:
    labelled = sum(totals.sentiment.values())
    return totals.sentiment.get("negative", 0) / labelled if labelled else None


# figure -> (its value in an Aggregates, how a change is written)
_FIGURES: dict[str, tuple[Callable[[Aggregates], float | None], str]] = {
    "conversations": (lambda a: a.conversations, "count"),
    "messages": (lambda a: a.utterances, "count"),
    "mean_sentiment": (lambda a: a.mean_sentiment, "score"),
    "negative": (negative_share, "share"),
    "churn_risk": (lambda a: a.signals.get("churn_risk", 0), "count"),
    "tracker_hits": (lambda a: sum(a.trackers.values()), "count"),
}


def _delta(current: float | None, previous: float | None, kind: str) -> Delta:
    if current is None or previous is None:
        return Delta(
            current=current, previous=previous, change=None, direction="none",
            text="no value in one of the two weeks",
        )  # fmt: skip
    change = current - previous
    direction = "up" if change > 0 else "down" if change < 0 else "flat"
    sign = "+" if change > 0 else "−" if change < 0 else "±"
    if kind == "count":
        text = f"{sign}{abs(change):,.0f}"
        if previous:
            text += f" ({sign}{abs(change) / previous * 100:.0f} %)"
    elif kind == "share":
        text = f"{sign}{abs(change) * 100:.0f} pts"
    else:
        text = f"{sign}{abs(change):.2f}"
    return Delta(
        current=current, previous=previous, change=round(change, 4), direction=direction,
        text=f"{text} vs the 7 days before",
    )  # fmt: skip


def week_over_week(db: Warehouse, principal: Principal, dates: DateRange) -> WeekOverWeek | None:
    """The headline figures' change from the week before; None with no conversation."""
    end = dates.end or latest_day(db, principal)
    if end is None:
        return None
    week = DateRange(since=(end - timedelta(days=6)).isoformat(), until=end.isoformat())
    before = DateRange(
        since=(end - timedelta(days=13)).isoformat(), until=(end - timedelta(days=7)).isoformat()
    )
    now, then = data.aggregates(db, principal, week), data.aggregates(db, principal, before)
    return WeekOverWeek(
        week_start=end - timedelta(days=6),
        week_end=end,
        deltas={
            name: _delta(value(now), value(then), kind) for name, (value, kind) in _FIGURES.items()
        },
    )
