"""Spikes: what rose or fell this period, is it more than noise, and which conversations show it.

`spikes` compares the latest period (or the one holding `as_of`) of every value of a
dimension with its baseline, the mean of the `baseline_periods` periods before it (a period
without the value counts 0). Counts of conversations are Poisson-like, so a change is
flagged when it passes both

1. an exact Poisson tail test against the baseline mean (right for small counts, where a
   normal approximation calls 1 -> 4 a spike), and
2. a z-score against the baseline's own spread (max of its mean and its variance), so a
   value that always swings widely (over-dispersed: a weekly newsletter's replies) does
   not spike on an ordinary swing that the Poisson test alone would flag;

and when the change is at least `min_change` and the larger side has at least `min_count`
conversations, so 1 -> 3 is never news. The score is -log10 of the Poisson p-value, signed
(+ rising, - falling). Rising spikes are evidenced by the period's conversations with the
most confident labels; falling ones by the baseline's (what went away).

One SQL statement counts every value per period; only its rows (one per value) reach
Python, where the tests run (written out here: the core package does not depend on
SciPy), and a second statement picks the evidence of the values flagged.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from convolens.analytics.annotations import list_annotations
from convolens.analytics.trends import (
    JOINED,
    Dimension,
    Grain,
    TimelineAnnotation,
    as_dimension,
    as_grain,
    as_instant,
    check_dimension,
    period_end,
    period_start,
    scope_ctes,
    shift_period,
)
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

__all__ = ["Spike", "SpikeReport", "poisson_cdf", "poisson_sf", "spikes"]

# A baseline of 0 would make any count infinitely surprising: a value never seen before
# is tested against half a conversation per period instead.
_FLOOR = 0.5
# A customer-sentiment change (on -1..1) smaller than this is "steady".
SENTIMENT_STEP = 0.1


class Spike(BaseModel):
    value: str
    direction: Literal["rising", "falling"]
    significant: bool
    current: int = Field(description="Conversations in the period.")
    baseline: float = Field(description="Mean conversations per baseline period.")
    baseline_counts: list[int] = Field(description="Per baseline period, oldest first.")
    expected: float = Field(description="What the tests compare with (baseline or scaled).")
    change_pct: float | None = Field(description="Change against the baseline; None from 0.")
    share: float
    baseline_share: float
    p_value: float
    z: float
    score: float = Field(description="-log10 p, + rising, - falling.")
    sentiment: float | None
    baseline_sentiment: float | None
    sentiment_change: float | None
    sentiment_trend: Literal["rising", "falling", "steady"] | None
    evidence: list[str] = Field(description="Conversation ids, most confident first.")
    headline: str


class SpikeReport(BaseModel):
    dimension: Dimension
    grain: Grain
    period: date = Field(description="First day of the period examined.")
    period_end: date = Field(description="Its last day.")
    baseline_start: date
    baseline_periods: int
    conversations: int = Field(description="All conversations in the period.")
    baseline_conversations: float = Field(description="Mean per baseline period.")
    spikes: list[Spike]
    annotations: list[TimelineAnnotation]


# -- statistics ----------------------------------------------------------------------------
def _log_pmf(k: int, lam: float) -> float:
    return k * math.log(lam) - lam - math.lgamma(k + 1)


def poisson_sf(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam), summed from the tail side (no cancellation)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if k <= lam:
        return max(0.0, 1.0 - poisson_cdf(k - 1, lam))
    term = math.exp(_log_pmf(k, lam))
    total, i = term, k
    while term > total * 1e-16:
        i += 1
        term *= lam / i
        total += term
    return min(1.0, total)


def poisson_cdf(k: int, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam)."""
    if k < 0:
        return 0.0
    if lam <= 0:
        return 1.0
    if k >= lam:
        return max(0.0, 1.0 - poisson_sf(k + 1, lam))
    term = math.exp(_log_pmf(k, lam))
    total, i = term, k
    while i > 0 and term > total * 1e-16:
        term *= i / lam
        i -= 1
        total += term
    return min(1.0, total)


def _trend(change: float | None) -> Literal["rising", "falling", "steady"] | None:
    if change is None:
        return None
    if change >= SENTIMENT_STEP:
        return "rising"
    return "falling" if change <= -SENTIMENT_STEP else "steady"


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


# -- spikes --------------------------------------------------------------------------------
def spikes(
    warehouse: Warehouse,
    dimension: str,
    grain: str = "week",
    baseline_periods: int = 4,
    min_count: int = 5,
    as_of: date | datetime | None = None,
    *,
    alpha: float = 0.01,
    min_z: float = 2.0,
    min_change: float = 0.25,
    normalize: bool = False,
    evidence: int = 5,
    significant_only: bool = True,
    filters: ConversationFilter | None = None,
) -> SpikeReport | None:
    """Values of `dimension` rising or falling in the period holding `as_of` (default: the
    latest conversation's, which may still be filling up) against the mean of the
    `baseline_periods` before it. `normalize` scales the baseline by the period's total
    volume (a busy week raises every value; this asks whose *share* moved). With
    `significant_only=False` every value seen is returned, with `significant` set.
    None when there are no dated conversations."""
    dim, g = as_dimension(dimension), as_grain(grain)
    if baseline_periods < 1:
        raise ValueError("baseline_periods must be at least 1")
    check_dimension(warehouse, dim)
    if as_of is None:
        where, params = (filters or ConversationFilter()).where()
        latest = warehouse.con.execute(
            f"SELECT CAST(max(c.started_at) AS DATE) FROM conversations_current c{where}", params
        ).fetchall()
        if latest[0][0] is None:
            return None
        as_of = latest[0][0]
    day = as_instant(as_of).date() if isinstance(as_of, datetime) else as_of
    current = period_start(day, g)
    first = shift_period(current, g, -baseline_periods)
    following = shift_period(current, g, 1)
    ctes, params = scope_ctes(dim, g, filters, as_instant(first), as_instant(following))
    rows = warehouse.query(
        f"""
        WITH {ctes},
        cells AS (
            SELECT s.period, t.value, count(*) AS n, sum(m.score) AS ssum,
                   count(m.score) AS scored
            FROM {JOINED} GROUP BY ALL
        )
        SELECT value,
               coalesce(sum(n) FILTER (WHERE period = ?), 0) AS current,
               list(struct_pack(period := period, n := n)) FILTER (WHERE period < ?) AS history,
               sum(ssum) FILTER (WHERE period = ?)
                   / nullif(sum(scored) FILTER (WHERE period = ?), 0) AS sentiment,
               sum(ssum) FILTER (WHERE period < ?)
                   / nullif(sum(scored) FILTER (WHERE period < ?), 0) AS baseline_sentiment,
               (SELECT list(struct_pack(period := period, n := n)) FROM
                   (SELECT period, count(*) AS n FROM scope GROUP BY period)) AS totals
        FROM cells GROUP BY value ORDER BY value
        """,
        [*params, *([current] * 6)],
    )
    baseline_days = [shift_period(first, g, i) for i in range(baseline_periods)]
    if rows:
        totals = {t["period"]: int(t["n"]) for t in rows[0]["totals"] or []}
    else:  # nothing labelled in the window: the volume still belongs in the report
        counted = warehouse.query(
            f"WITH {ctes} SELECT period, count(*) AS n FROM scope GROUP BY period", params
        )
        totals = {r["period"]: int(r["n"]) for r in counted}
    total_now = totals.get(current, 0)
    total_before = sum(totals.get(d, 0) for d in baseline_days)
    found = [
        _spike(
            row,
            baseline_days,
            total_now,
            total_before,
            alpha=alpha,
            min_z=min_z,
            min_change=min_change,
            min_count=min_count,
            normalize=normalize,
            grain=g,
        )
        for row in rows
    ]
    found = [s for s in found if s.significant or not significant_only]
    found.sort(key=lambda s: (s.direction != "rising", -abs(s.score), s.value))
    _attach_evidence(warehouse, found, ctes, params, current, evidence)
    return SpikeReport(
        dimension=dim,
        grain=g,
        period=current,
        period_end=period_end(current, g),
        baseline_start=first,
        baseline_periods=baseline_periods,
        conversations=total_now,
        baseline_conversations=round(total_before / baseline_periods, 2),
        spikes=found,
        annotations=list_annotations(warehouse, start=first, end=period_end(current, g)),
    )


def _spike(
    row: dict[str, Any],
    baseline_days: list[date],
    total_now: int,
    total_before: int,
    *,
    alpha: float,
    min_z: float,
    min_change: float,
    min_count: int,
    normalize: bool,
    grain: Grain,
) -> Spike:
    history = {h["period"]: int(h["n"]) for h in row["history"] or []}
    counts = [int(history.get(d, 0)) for d in baseline_days]
    x, periods = int(row["current"]), len(counts)
    mean = sum(counts) / periods
    variance = sum((c - mean) ** 2 for c in counts) / (periods - 1) if periods > 1 else mean
    baseline_share = sum(counts) / total_before if total_before else 0.0
    expected = baseline_share * total_now if normalize else mean
    spread = math.sqrt(max(expected, variance, 1.0))
    z = (x - expected) / spread
    rising = x >= expected
    lam = max(expected, _FLOOR)
    p = poisson_sf(x, lam) if rising else poisson_cdf(x, lam)
    change = (x - expected) / expected if expected > 0 else None
    big_enough = (x if rising else expected) >= min_count
    moved = change is None or abs(change) >= min_change
    significant = big_enough and moved and p <= alpha and abs(z) >= min_z and x != expected
    score = (1 if rising else -1) * -math.log10(max(p, 1e-300))
    sentiment, before = row["sentiment"], row["baseline_sentiment"]
    delta = sentiment - before if sentiment is not None and before is not None else None
    trend = _trend(delta)
    if change is None:
        moved_text = f"new: {x} (none before)"
    else:
        span = (
            f"{grain.value} over {grain.value}"
            if periods == 1
            else f"vs {periods}-{grain.value} mean"
        )
        moved_text = f"{change * 100:+.0f} % {span} ({x} vs {expected:.1f})"
    headline = f"{row['value']} {moved_text}" + (
        f", sentiment {trend}" if trend in ("rising", "falling") else ""
    )
    return Spike(
        value=row["value"],
        direction="rising" if rising else "falling",
        significant=significant,
        current=x,
        baseline=round(mean, 3),
        baseline_counts=counts,
        expected=round(expected, 3),
        change_pct=_round(change * 100 if change is not None else None, 1),
        share=round(x / total_now, 4) if total_now else 0.0,
        baseline_share=round(baseline_share, 4),
        p_value=p,
        z=round(z, 3),
        score=round(score, 2),
        sentiment=_round(sentiment),
        baseline_sentiment=_round(before),
        sentiment_change=_round(delta),
        sentiment_trend=trend,
        evidence=[],
        headline=headline,
    )


def _attach_evidence(
    warehouse: Warehouse,
    found: list[Spike],
    ctes: str,
    params: list[Any],
    current: date,
    limit: int,
) -> None:
    """The `limit` most confidently labelled conversations of each spike (most negative
    first among equals), from the period for rising values, the baseline for falling ones."""
    rising = [s.value for s in found if s.direction == "rising"]
    falling = [s.value for s in found if s.direction == "falling"]
    if limit < 1 or not found:
        return
    rows = warehouse.query(
        f"""
        WITH {ctes}
        SELECT value, conversation_id FROM (
            SELECT t.value, s.conversation_id,
                   row_number() OVER (
                       PARTITION BY t.value
                       ORDER BY t.confidence DESC NULLS LAST, m.score ASC NULLS LAST,
                                s.started_at DESC, s.conversation_id
                   ) AS rank
            FROM {JOINED}
            WHERE (list_contains(?, t.value) AND s.period = ?)
               OR (list_contains(?, t.value) AND s.period < ?)
        ) WHERE rank <= ? ORDER BY value, rank
        """,
        [*params, rising, current, falling, current, limit],
    )
    by_value: dict[str, list[str]] = {}
    for r in rows:
        by_value.setdefault(r["value"], []).append(r["conversation_id"])
    for spike in found:
        spike.evidence = by_value.get(spike.value, [])
