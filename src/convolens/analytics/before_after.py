"""Before/after: did conversations about X change after a release, a fix or a campaign?

Counts, share and customer sentiment of the conversations with one value of a dimension
in the `window_days` before a date (or an annotation) and the `window_days` from it on,
with three tests: an exact Poisson rate-ratio test (conditional on the total, a binomial;
rates per day of data, so a window cut short by the end of the data is not read as a
drop), a two-proportion z-test on the share of all conversations, and a Welch z-test on
the sentiment means. The rate test decides the verdict: the question is nearly always
"did it drop?". One SQL statement aggregates the two windows; the tests run on its two
rows here (the core package does not depend on SciPy).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from convolens.analytics.annotations import TimelineAnnotation, get_annotation
from convolens.analytics.trends import (
    Dimension,
    Grain,
    as_dimension,
    as_instant,
    check_dimension,
    scope_ctes,
)
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

__all__ = ["BeforeAfter", "WindowStats", "before_after"]


class WindowStats(BaseModel):
    start: datetime
    end: datetime
    days_with_data: float = Field(description="Days of the window the warehouse covers.")
    conversations: int = Field(description="All conversations in the window.")
    matching: int = Field(description="Those with the value.")
    share: float | None
    mean_sentiment: float | None
    scored: int


class BeforeAfter(BaseModel):
    dimension: Dimension
    value: str
    at: datetime
    annotation: TimelineAnnotation | None
    window_days: int
    before: WindowStats
    after: WindowStats
    change_pct: float | None = Field(description="Change in conversations per day.")
    rate_ratio: float | None
    rate_ratio_ci95: tuple[float, float] | None
    rate_p_value: float | None
    share_change: float | None = Field(description="After minus before, in share points.")
    share_p_value: float | None
    sentiment_change: float | None
    sentiment_p_value: float | None
    significant: bool = Field(description="Rate p-value below 0.05.")
    verdict: Literal["fell", "rose", "no significant change", "not enough data"]
    summary: str


# -- statistics ----------------------------------------------------------------------------
def _normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal z."""
    return math.erfc(abs(z) / math.sqrt(2))


def _binomial_two_sided(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial test (the probabilities no larger than the observed one)."""
    if n == 0:
        return 1.0
    if p <= 0 or p >= 1:
        return 1.0 if (k == 0 and p <= 0) or (k == n and p >= 1) else 0.0
    if n > 20_000:  # the normal approximation is exact enough here, and the loop is not cheap
        return _normal_p((k - n * p) / math.sqrt(n * p * (1 - p)))
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log(1 - p)
        for i in range(n + 1)
    ]
    observed = logs[k] + 1e-7
    return min(1.0, sum(math.exp(v) for v in logs if v <= observed))


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


# -- before / after ------------------------------------------------------------------------
def before_after(
    warehouse: Warehouse,
    dimension: str | None,
    value: str | None,
    at: date | datetime | int,
    window_days: int = 14,
    *,
    filters: ConversationFilter | None = None,
) -> BeforeAfter:
    """Conversations with `value` of `dimension` in the `window_days` before `at` against
    the `window_days` from `at` on. `at` may be an annotation id, whose dimension and
    value are used where none are given."""
    annotation = None
    if isinstance(at, bool):
        raise TypeError("at must be a date, a datetime or an annotation id")
    if isinstance(at, int):
        annotation = get_annotation(warehouse, at)
        moment = annotation.at
        dimension = dimension or (annotation.dimension.value if annotation.dimension else None)
        value = value or annotation.value
    else:
        moment = as_instant(at)
    if dimension is None or value is None:
        raise ValueError("before/after needs a dimension and a value (or an annotation with them)")
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    dim = as_dimension(dimension)
    check_dimension(warehouse, dim)
    width = timedelta(days=window_days)
    since, until = moment - width, moment + width
    ctes, params = scope_ctes(dim, Grain.day, filters, since, until, value)
    where, extent_params = (filters or ConversationFilter()).where()
    rows = warehouse.query(
        f"""
        WITH {ctes}
        SELECT s.started_at >= ? AS after, count(*) AS total,
               count(t.conversation_id) AS matching,
               avg(m.score) FILTER (WHERE t.conversation_id IS NOT NULL) AS sentiment,
               var_samp(m.score) FILTER (WHERE t.conversation_id IS NOT NULL) AS variance,
               count(m.score) FILTER (WHERE t.conversation_id IS NOT NULL) AS scored
        FROM scope s LEFT JOIN tagged t USING (conversation_id, version)
        LEFT JOIN mood m USING (conversation_id, version)
        GROUP BY 1
        """,
        [*params, moment],
    )
    low, high = warehouse.con.execute(
        f"SELECT min(c.started_at), max(c.started_at) FROM conversations_current c{where}",
        extent_params,
    ).fetchall()[0]
    sides = {bool(r["after"]): r for r in rows}
    # The data's extent bounds each window's exposure: data ending 3 days after a release
    # gives 3 days, not 14, to compare per-day rates over.
    before = _window(sides.get(False), since, moment, low, high)
    after = _window(sides.get(True), moment, until, low, high)
    return _compare(dim, value, moment, annotation, window_days, before, after, sides)


def _window(
    row: dict[str, Any] | None,
    start: datetime,
    end: datetime,
    low: datetime | None,
    high: datetime | None,
) -> WindowStats:
    covered = 0.0
    if low is not None and high is not None:
        # Whole days: the data runs from the first conversation's day to the last one's.
        first = max(start, as_instant(low.date()))
        last = min(end, as_instant(high.date() + timedelta(days=1)))
        covered = max(0.0, (last - first).total_seconds() / 86400)
        covered = min(covered, (end - start).total_seconds() / 86400)
    total = int(row["total"]) if row else 0
    matching = int(row["matching"]) if row else 0
    return WindowStats(
        start=start,
        end=end,
        days_with_data=round(covered, 2),
        conversations=total,
        matching=matching,
        share=round(matching / total, 4) if total else None,
        mean_sentiment=_round(row["sentiment"]) if row else None,
        scored=int(row["scored"]) if row else 0,
    )


def _compare(
    dim: Dimension,
    value: str,
    moment: datetime,
    annotation: TimelineAnnotation | None,
    window_days: int,
    before: WindowStats,
    after: WindowStats,
    sides: dict[bool, dict[str, Any]],
) -> BeforeAfter:
    a, b = after.matching, before.matching
    ta, tb = after.days_with_data, before.days_with_data
    ratio = ci = rate_p = change = None
    if ta > 0 and tb > 0 and a + b > 0:
        # Haldane's half-count keeps the ratio finite when one side is 0.
        ha, hb = (a + 0.5, b + 0.5) if a == 0 or b == 0 else (a, b)
        ratio = (ha / ta) / (hb / tb)
        half = 1.96 * math.sqrt(1 / ha + 1 / hb)
        ci = (round(ratio * math.exp(-half), 4), round(ratio * math.exp(half), 4))
        rate_p = _binomial_two_sided(a, a + b, ta / (ta + tb))
        change = ((a / ta) / (b / tb) - 1) * 100 if b else None
    share_change = share_p = None
    if before.share is not None and after.share is not None:
        share_change = after.share - before.share
        pooled = (a + b) / (after.conversations + before.conversations)
        se = math.sqrt(pooled * (1 - pooled) * (1 / after.conversations + 1 / before.conversations))
        share_p = _normal_p(share_change / se) if se > 0 else 1.0
    sentiment_change = sentiment_p = None
    if after.mean_sentiment is not None and before.mean_sentiment is not None:
        sentiment_change = after.mean_sentiment - before.mean_sentiment
        va, vb = (sides.get(k, {}).get("variance") for k in (True, False))
        if va is not None and vb is not None and after.scored > 1 and before.scored > 1:
            se = math.sqrt(va / after.scored + vb / before.scored)
            # No spread on either side (identical scores): any difference is certain.
            sentiment_p = (
                _normal_p(sentiment_change / se) if se > 0 else float(sentiment_change == 0)
            )
    significant = rate_p is not None and rate_p < 0.05
    verdict: Literal["fell", "rose", "no significant change", "not enough data"]
    if ratio is None:
        verdict = "not enough data"
    elif significant:
        verdict = "fell" if ratio < 1 else "rose"
    else:
        verdict = "no significant change"
    when = f"'{annotation.label}' ({moment:%Y-%m-%d})" if annotation else f"{moment:%Y-%m-%d}"
    summary = (
        f"{dim.value} {value}: {b} conversations in the {window_days} days before {when}, {a} after"
    )
    if ratio is not None and ci is not None:
        summary += (
            f"; rate ratio {ratio:.2f} (95 % CI {ci[0]:.2f}-{ci[1]:.2f}, p={rate_p:.3g}): {verdict}"
        )
    else:
        summary += f": {verdict}"
    return BeforeAfter(
        dimension=dim,
        value=value,
        at=moment,
        annotation=annotation,
        window_days=window_days,
        before=before,
        after=after,
        change_pct=_round(change, 1),
        rate_ratio=_round(ratio),
        rate_ratio_ci95=ci,
        rate_p_value=rate_p,
        share_change=_round(share_change),
        share_p_value=share_p,
        sentiment_change=_round(sentiment_change),
        sentiment_p_value=sentiment_p,
        significant=significant,
        verdict=verdict,
        summary=summary,
    )
