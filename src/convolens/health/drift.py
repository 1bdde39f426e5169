"""Label drift: is each component labelling recent conversations as it did before?

Per component, the distribution of its label values over the conversations of a recent
window (default: the last 7 days) against a reference window (the 28 days before it):
population stability index (PSI, drift above `psi_threshold`, 0.2 by convention), a
chi-square test of the same counts, and the shift of the mean confidence. Optionally the
cosine distance between the embedding centroids of the customers' problem statements in
the two windows (the statements and embedder of `analytics.cluster_store`). Windows are
whole UTC days ending on `until` (default: the day of the newest conversation, so a corpus
loaded from an export is judged on its own time), by the conversation's start.

`drift_report` computes; `check_drift` also stores the figures (`drift_results`) and queues
a `drift` webhook event per drifted figure. A label value is a taxonomy value (intent,
tracker, signal, sentiment label, entity type, ...), never free text, so the figures are
aggregates that viewers may see.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from convolens.health.intake_checks import psi
from convolens.health.models import (
    CategoryShare,
    CentroidShift,
    ComponentDrift,
    DriftPoint,
    DriftReport,
    DriftSettings,
)
from convolens.store.warehouse import Warehouse, now_utc

__all__ = [
    "CentroidShift",
    "ComponentDrift",
    "DriftPoint",
    "DriftReport",
    "DriftSettings",
    "check_drift",
    "drift_report",
]

log = logging.getLogger("convolens.health")

# Value keys that hold a categorical label; free-text keys (phrase, text, summary) never.
_CATEGORY = (
    "coalesce(value->>'label', value->>'intent', value->>'signal', value->>'tracker', "
    "value->>'status', value->>'outcome', value->>'emotion', value->>'act', value->>'type', "
    "value->>'kind')"
)
OTHER = "(other)"


# -- reading ----------------------------------------------------------------------------
_Days = dict[str, dict[date, tuple[Counter[str], float, int]]]


def _latest_day(wh: Warehouse) -> date | None:
    row = wh.con.execute(
        "SELECT max(CAST(timezone('UTC', coalesce(started_at, ingested_at)) AS DATE)) "
        "FROM conversations_current"
    ).fetchone()
    return row[0] if row and row[0] else None


def _daily(wh: Warehouse, first: date, last: date, components: list[str] | None) -> _Days:
    """component -> day -> (category counts, confidence sum, confidence count)."""
    sql = (
        f"SELECT e.component, e.label || '=' || coalesce({_CATEGORY}, '*') AS category, "
        "CAST(timezone('UTC', coalesce(c.started_at, c.ingested_at)) AS DATE) AS day, "
        "count(*) AS n, sum(e.confidence) AS conf, count(e.confidence) AS conf_n "
        "FROM labels_current e JOIN conversations_current c USING (conversation_id, version) "
        "WHERE CAST(timezone('UTC', coalesce(c.started_at, c.ingested_at)) AS DATE) "
        "BETWEEN ? AND ? "
    )
    params: list[Any] = [first, last]
    if components:
        sql += "AND list_contains(?, e.component) "
        params.append(components)
    sql += "GROUP BY ALL"
    days: _Days = defaultdict(dict)
    for component, category, day, n, conf, conf_n in wh.con.execute(sql, params).fetchall():
        counts, total, count = days[component].get(day, (Counter(), 0.0, 0))
        counts[str(category)[:120]] += int(n)
        days[component][day] = (counts, total + float(conf or 0.0), count + int(conf_n))
    return days


def _window(
    per_day: dict[date, tuple[Counter[str], float, int]], start: date, end: date
) -> tuple[Counter[str], float | None]:
    counts: Counter[str] = Counter()
    total, n = 0.0, 0
    for day, (c, conf, conf_n) in per_day.items():
        if start <= day <= end:
            counts.update(c)
            total, n = total + conf, n + conf_n
    return counts, (total / n if n else None)


def _pooled(recent: Counter[str], reference: Counter[str], top: int) -> tuple[Counter[str], ...]:
    """Both distributions over the `top` commonest categories, the rest as OTHER."""
    keep = {k for k, _ in (recent + reference).most_common(top)}
    out = []
    for counts in (recent, reference):
        pooled: Counter[str] = Counter()
        for key, n in counts.items():
            pooled[key if key in keep else OTHER] += n
        out.append(pooled)
    return tuple(out)


def _chi2(recent: Counter[str], reference: Counter[str]) -> tuple[float | None, float | None]:
    keys = sorted(k for k in set(recent) | set(reference) if recent[k] + reference[k])
    if len(keys) < 2 or not sum(recent.values()) or not sum(reference.values()):
        return None, None
    try:
        import numpy as np
        from scipy.stats import chi2_contingency
    except ImportError:  # a base install without numpy/scipy: PSI and confidence only
        return None, None
    table = np.array([[recent[k] for k in keys], [reference[k] for k in keys]], dtype=float)
    result = chi2_contingency(table)
    return float(result[0]), float(result[1])


def _component(
    name: str,
    per_day: dict[date, tuple[Counter[str], float, int]],
    bounds: tuple[date, date, date, date],
    s: DriftSettings,
) -> ComponentDrift:
    ref_start, ref_end, rec_start, rec_end = bounds
    recent, recent_conf = _window(per_day, rec_start, rec_end)
    reference, reference_conf = _window(per_day, ref_start, ref_end)
    recent, reference = _pooled(recent, reference, s.top_categories)
    out = ComponentDrift(
        component=name,
        recent_n=sum(recent.values()),
        reference_n=sum(reference.values()),
        recent_confidence=_round(recent_conf),
        reference_confidence=_round(reference_conf),
    )
    if out.recent_n and out.reference_n:
        out.psi = _round(psi(dict(reference), dict(recent)))
        chi2, p = _chi2(recent, reference)
        out.chi2, out.chi2_p = _round(chi2), _round(p, 8)
        keys = sorted(set(recent) | set(reference), key=lambda k: -(recent[k] + reference[k]))
        out.distribution = [
            CategoryShare(
                category=k,
                recent=round(recent[k] / out.recent_n, 4),
                reference=round(reference[k] / out.reference_n, 4),
            )
            for k in keys
        ]
    if recent_conf is not None and reference_conf is not None:
        out.confidence_shift = _round(recent_conf - reference_conf)
    if min(out.recent_n, out.reference_n) < s.min_labels:
        out.reasons.append(f"too few labels to judge (need {s.min_labels} in each window)")
        return out
    if out.psi is not None and out.psi > s.psi_threshold:
        out.reasons.append(f"PSI {out.psi:.3f} > {s.psi_threshold:g}")
    if out.chi2_p is not None and out.chi2_p < s.alpha:
        out.reasons.append(f"chi-square p {out.chi2_p:.2g} < {s.alpha:g}")
    if out.confidence_shift is not None and abs(out.confidence_shift) > s.confidence_threshold:
        out.reasons.append(
            f"mean confidence {reference_conf:.2f} -> {recent_conf:.2f} "
            f"(shift over {s.confidence_threshold:g})"
        )
    # Chi-square alone flags tiny, harmless shifts once counts are large: PSI decides.
    out.drifted = any(not r.startswith("chi-square") for r in out.reasons)
    return out


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _bounds(until: date, s: DriftSettings) -> tuple[date, date, date, date]:
    rec_start = until - timedelta(days=s.recent_days - 1)
    ref_end = rec_start - timedelta(days=1)
    return ref_end - timedelta(days=s.reference_days - 1), ref_end, rec_start, until


def _centroid(
    wh: Warehouse, bounds: tuple[date, date, date, date], s: DriftSettings, embedder: Any
) -> CentroidShift:
    from convolens.analytics.cluster_store import read_statements

    ref_start, ref_end, rec_start, rec_end = bounds
    days = {
        r["conversation_id"]: r["day"]
        for r in wh.query(
            "SELECT conversation_id, CAST(timezone('UTC', coalesce(started_at, ingested_at)) "
            "AS DATE) AS day FROM conversations_current"
        )
    }
    recent, reference = [], []
    for row in read_statements(wh):
        day = days.get(row["conversation_id"])
        if day is not None and rec_start <= day <= rec_end:
            recent.append(row["clean"])
        elif day is not None and ref_start <= day <= ref_end:
            reference.append(row["clean"])
    out = CentroidShift(
        recent_n=len(recent), reference_n=len(reference), threshold=s.centroid_threshold
    )
    if min(len(recent), len(reference)) < s.min_statements:
        return out
    import numpy as np

    if embedder is None:
        from convolens.enrich.embeddings import shared_embedder

        embedder = shared_embedder()
    vectors = np.asarray(embedder.embed(recent + reference), dtype=np.float64)
    observed = _centroid_distance(vectors, np.arange(len(recent)))
    # A permutation test: short, varied texts move a centroid a lot by chance alone, so a
    # fixed threshold would call every small window drift.
    rng = np.random.default_rng(0)
    permuted = np.array(
        [
            _centroid_distance(vectors, rng.permutation(len(vectors))[: len(recent)])
            for _ in range(_PERMUTATIONS)
        ]
    )
    out.cosine_distance = round(observed, 5)
    out.chance_distance = round(float(np.median(permuted)), 5)
    out.p_value = round(float((1 + np.sum(permuted >= observed)) / (1 + _PERMUTATIONS)), 4)
    out.drifted = out.cosine_distance > s.centroid_threshold and out.p_value < s.alpha
    out.model_id = getattr(embedder, "model_id", None)
    return out


_PERMUTATIONS = 499


def _centroid_distance(vectors: Any, recent_rows: Any) -> float:
    """Cosine distance between the mean of `recent_rows` and the mean of the other rows."""
    import numpy as np

    mask = np.zeros(len(vectors), dtype=bool)
    mask[recent_rows] = True
    a, b = vectors[mask].mean(axis=0), vectors[~mask].mean(axis=0)
    return 1.0 - float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))


def drift_report(
    wh: Warehouse, settings: DriftSettings | None = None, *, embedder: Any | None = None
) -> DriftReport:
    """Per component drift of the recent window against the reference (module docstring),
    with the PSI of `series_points` earlier windows for a chart."""
    s = settings or DriftSettings()
    until = s.until or _latest_day(wh)
    if until is None:
        return DriftReport(
            until=None, recent_start=None, reference_start=None, settings=s, components=[]
        )
    bounds = _bounds(until, s)
    step = timedelta(days=s.recent_days)
    first = _bounds(until - step * max(0, s.series_points - 1), s)[0]
    days = _daily(wh, min(first, bounds[0]), until, s.components)
    components = [_component(name, days[name], bounds, s) for name in sorted(days)]
    series = []
    for i in reversed(range(s.series_points)):
        end = until - step * i
        for name in sorted(days):
            point = _component(name, days[name], _bounds(end, s), s)
            series.append(
                DriftPoint(
                    component=name,
                    until=end,
                    psi=point.psi,
                    recent_n=point.recent_n,
                    reference_n=point.reference_n,
                )
            )
    centroid = _centroid(wh, bounds, s, embedder) if s.embeddings else None
    return DriftReport(
        until=until,
        recent_start=bounds[2],
        reference_start=bounds[0],
        settings=s,
        components=components,
        centroid=centroid,
        series=series,
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def check_drift(
    wh: Warehouse,
    settings: DriftSettings | None = None,
    *,
    embedder: Any | None = None,
    repeat_alerts: bool = False,
) -> DriftReport:
    """`drift_report`, stored as `drift_results` rows, with a `drift` webhook event queued
    for each drifted figure (payload: component, metric, score, threshold, windows).

    A figure that was drifted at the previous check already had its alert: it is alerted
    again only when it recovers and drifts anew, or with `repeat_alerts` (so a daily cron
    job tells once, not every day)."""
    report = drift_report(wh, settings, embedder=embedder)
    before = {
        (r["component"], r["metric"]): bool(r["drifted"])
        for r in wh.query(
            "SELECT component, metric, arg_max(drifted, checked_at) AS drifted "
            "FROM drift_results GROUP BY component, metric"
        )
    }
    s = report.settings
    report.check_id = f"dc_{uuid.uuid4().hex[:16]}"
    if report.until is None or report.recent_start is None or report.reference_start is None:
        return report
    at = now_utc()
    windows = [
        _day_start(report.recent_start),
        _day_start(report.until + timedelta(days=1)),
        _day_start(report.reference_start),
        _day_start(report.recent_start),
    ]
    rows: list[list[Any]] = []
    events: list[dict[str, Any]] = []
    judged = lambda c: min(c.recent_n, c.reference_n) >= s.min_labels  # noqa: E731
    for c in report.components:
        figures = (
            ("psi", c.psi, s.psi_threshold, c.psi is not None and c.psi > s.psi_threshold),
            ("chi2_p", c.chi2_p, s.alpha, False),
            ("confidence_shift", c.confidence_shift, s.confidence_threshold,
             c.confidence_shift is not None and abs(c.confidence_shift) > s.confidence_threshold),
        )  # fmt: skip
        details = {"reasons": c.reasons, "distribution": [d.model_dump() for d in c.distribution]}
        for metric, value, threshold, over in figures:
            drifted = bool(over and judged(c))
            rows.append([report.check_id, at, c.component, metric, value, threshold, drifted,
                         *windows, c.recent_n, c.reference_n, json.dumps(details)])  # fmt: skip
            if drifted:
                events.append(_event(report, c.component, metric, value, threshold, c.recent_n))
    if report.centroid is not None and report.centroid.cosine_distance is not None:
        m = report.centroid
        rows.append([report.check_id, at, "statements", "centroid_cosine", m.cosine_distance,
                     m.threshold, m.drifted, *windows, m.recent_n, m.reference_n,
                     json.dumps({"model_id": m.model_id})])  # fmt: skip
        if m.drifted:
            events.append(
                _event(report, "statements", "centroid_cosine", m.cosine_distance, m.threshold,
                       m.recent_n)
            )  # fmt: skip
    if rows:
        wh.con.executemany(
            "INSERT INTO drift_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
    if not repeat_alerts:
        events = [e for e in events if not before.get((e["component"], e["metric"]), False)]
    report.alerts = _alert(wh, events)
    return report


def _event(
    report: DriftReport,
    component: str,
    metric: str,
    value: float | None,
    threshold: float,
    recent_n: int,
) -> dict[str, Any]:
    return {
        "check_id": report.check_id,
        "component": component,
        "metric": metric,
        "score": abs(value) if value is not None else None,
        "value": value,
        "threshold": threshold,
        "recent_start": str(report.recent_start),
        "until": str(report.until),
        "reference_start": str(report.reference_start),
        "recent_n": recent_n,
    }


def _alert(wh: Warehouse, events: list[dict[str, Any]]) -> int:
    if not events:
        return 0
    try:
        from convolens.service.webhooks import enqueue
    except ImportError:  # no service extra: the figures are stored, nobody to tell
        return 0
    sent = 0
    for payload in events:
        sent += len(enqueue(wh, "drift", payload))
    return sent


def stored_checks(wh: Warehouse, *, limit: int = 200) -> list[dict[str, Any]]:
    """Stored drift figures, newest first (the history of `check_drift`)."""
    return wh.query(
        "SELECT check_id, checked_at, component, metric, value, threshold, drifted, "
        "recent_start, recent_end, reference_start, reference_end, recent_n, reference_n "
        "FROM drift_results ORDER BY checked_at DESC, component, metric LIMIT ?",
        [max(0, int(limit))],
    )
