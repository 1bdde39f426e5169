"""Figures from reviews: how often each label value is right, what it misses, how far
people agree with the model and with each other; per taxonomy version and per week.

- Precision per value comes from the `random` stratum only (the purposive strata are
  chosen for being doubtful and would bias it): the weighted share of items whose first
  reviewer kept the model's value, with a 95 % Wilson interval on the Kish effective
  sample size (within one value all weights are equal, so it is the plain Wilson
  interval; across values, the label's precision weights each value by its population).
  No finite-population correction: the interval is conservative for a large sample.
- Recall per value, where reviewers correct labels or add missed ones: of the items whose
  first reviewer says the value applies, the weighted share the model labelled so.
- Model-human agreement: Cohen's kappa of the model's value against the first reviewer's
  on random items. Human-human: Cohen's kappa and Krippendorff's alpha (nominal) of the
  first two reviewers on every item two people checked.
A value whose precision is below `bar` with at least `min_reviews` random reviews is
flagged; the bar comes from the arguments, else CONVOLENS_PRECISION_BAR and
CONVOLENS_PRECISION_MIN_REVIEWS, else 0.7 and 20.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from convolens.review.models import Agreement, QualityReport, ValueQuality, WeekQuality
from convolens.store.warehouse import Warehouse

__all__ = [
    "Agreement",
    "QualityReport",
    "ValueQuality",
    "WeekQuality",
    "cohen_kappa",
    "flagged_values",
    "krippendorff_alpha",
    "quality_report",
    "wilson",
]

Z95 = 1.959963984540054
DEFAULT_BAR = 0.7
DEFAULT_MIN_REVIEWS = 20


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (n may be an effective, fractional size)."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _weighted(
    pairs: Sequence[tuple[float, bool]],
) -> tuple[float | None, float | None, float | None]:
    """Weighted proportion of True and its Wilson interval on the Kish effective size."""
    total = sum(w for w, _ in pairs)
    if not pairs or total <= 0:
        return None, None, None
    p = sum(w for w, y in pairs if y) / total
    n_eff = total * total / sum(w * w for w, _ in pairs)
    low, high = wilson(p * n_eff, n_eff) or (None, None)
    return round(p, 4), _r(low), _r(high)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of rater pairs; None when undefined (no pairs, or chance agreement is
    total: both raters gave one and the same value to everything)."""
    from sklearn.metrics import cohen_kappa_score

    pairs = list(pairs)
    if not pairs:
        return None
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    if len(set(first) | set(second)) < 2:
        return None
    value = float(cohen_kappa_score(first, second))
    return None if math.isnan(value) else round(value, 4)


def krippendorff_alpha(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Krippendorff's alpha (nominal) of two raters; None when undefined (one value)."""
    import krippendorff
    import numpy as np

    pairs = list(pairs)
    codes = {v: i for i, v in enumerate(sorted({v for pair in pairs for v in pair}))}
    if len(codes) < 2:
        return None
    data = np.array([[codes[a] for a, _ in pairs], [codes[b] for _, b in pairs]], dtype=float)
    return round(
        float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")), 4
    )


@dataclass
class _Judged:
    """One reviewed item: the model's value and what its first (and second) reviewer said."""

    key: tuple[str, str, str | None]
    value: str
    stratum: str
    weight: float
    week: str
    first: str
    first_missed: list[str]
    second: str | None


def _judged(db: Warehouse) -> tuple[list[_Judged], int, int]:
    items = db.query(
        "SELECT item_id, component, label, taxonomy_version, value, stratum, weight, "
        "strftime(date_trunc('week', occurred_at), '%Y-%m-%d') AS week FROM review_items"
    )
    reviews: dict[str, list[dict[str, Any]]] = defaultdict(list)
    count = 0
    for r in db.query(
        "SELECT item_id, reviewer, verdict, corrected_value, missed_values FROM reviews "
        "ORDER BY created_at, review_id"
    ):
        count += 1
        if r["verdict"] != "skip":
            reviews[r["item_id"]].append(r)
    out = []
    for item in items:
        verdicts = reviews.get(item["item_id"])
        if not verdicts:
            continue
        first = verdicts[0]
        other = next((r for r in verdicts[1:] if r["reviewer"] != first["reviewer"]), None)
        out.append(
            _Judged(
                key=(item["component"], item["label"], item["taxonomy_version"]),
                value=item["value"],
                stratum=item["stratum"],
                weight=float(item["weight"]),
                week=item["week"] or "unknown",
                first=first["corrected_value"] or item["value"],
                first_missed=list(first["missed_values"] or []),
                second=(other["corrected_value"] or item["value"]) if other else None,
            )
        )
    return out, len(items), count


def _settings(bar: float | None, min_reviews: int | None) -> tuple[float, int]:
    if bar is None:
        bar = float(os.environ.get("CONVOLENS_PRECISION_BAR", DEFAULT_BAR))
    if min_reviews is None:
        min_reviews = int(os.environ.get("CONVOLENS_PRECISION_MIN_REVIEWS", DEFAULT_MIN_REVIEWS))
    return bar, min_reviews


def quality_report(
    db: Warehouse,
    *,
    component: str | None = None,
    label: str | None = None,
    bar: float | None = None,
    min_reviews: int | None = None,
) -> QualityReport:
    """Every figure above, from the reviews stored so far."""
    bar, min_reviews = _settings(bar, min_reviews)
    judged, item_count, review_count = _judged(db)
    judged = [
        j
        for j in judged
        if (component is None or j.key[0] == component) and (label is None or j.key[1] == label)
    ]
    groups: dict[tuple[str, str, str | None], list[_Judged]] = defaultdict(list)
    for j in judged:
        groups[j.key].append(j)
    values: list[ValueQuality] = []
    agreement: list[Agreement] = []
    weeks: list[WeekQuality] = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        randoms = [j for j in members if j.stratum == "random"]
        corrects_seen = any(j.first != j.value or j.first_missed for j in members)
        for value in sorted({j.value for j in members} | {j.first for j in members}):
            mine = [j for j in randoms if j.value == value]
            p, low, high = _weighted([(j.weight, j.first == value) for j in mine])
            # Items where the first reviewer says `value` applies (the model's value kept,
            # corrected to it, or added as missed): recall's denominator.
            applies = [j for j in randoms if j.first == value or value in j.first_missed]
            missed = sum(1 for j in applies if j.value != value)
            recall: tuple[float | None, float | None, float | None] = (None, None, None)
            if corrects_seen and applies:
                recall = _weighted([(j.weight, j.value == value) for j in applies])
            if not mine and not missed:
                continue
            values.append(
                ValueQuality(
                    component=key[0],
                    label=key[1],
                    taxonomy_version=key[2],
                    value=value,
                    reviewed=len(mine),
                    correct=sum(1 for j in mine if j.first == value),
                    precision=p,
                    precision_low=low,
                    precision_high=high,
                    recall=recall[0],
                    recall_low=recall[1],
                    recall_high=recall[2],
                    missed=missed,
                    flagged=p is not None and len(mine) >= min_reviews and p < bar,
                )
            )
            by_week: dict[str, list[_Judged]] = defaultdict(list)
            for j in mine:
                by_week[j.week].append(j)
            for week, those in sorted(by_week.items()):
                wp, wl, wh = _weighted([(j.weight, j.first == value) for j in those])
                weeks.append(
                    WeekQuality(
                        component=key[0], label=key[1], taxonomy_version=key[2], value=value,
                        week=week, reviewed=len(those), precision=wp, precision_low=wl,
                        precision_high=wh,
                    )
                )  # fmt: skip
        pairs = [(j.first, j.second) for j in members if j.second is not None]
        overall = _weighted([(j.weight, j.first == j.value) for j in randoms])
        agreement.append(
            Agreement(
                component=key[0],
                label=key[1],
                taxonomy_version=key[2],
                reviewed=len(randoms),
                precision=overall[0],
                precision_low=overall[1],
                precision_high=overall[2],
                model_human_kappa=cohen_kappa((j.value, j.first) for j in randoms),
                human_pairs=len(pairs),
                human_agreement=round(sum(a == b for a, b in pairs) / len(pairs), 4)
                if pairs
                else None,
                human_human_kappa=cohen_kappa(pairs),  # type: ignore[arg-type]
                human_human_alpha=krippendorff_alpha(pairs),  # type: ignore[arg-type]
            )
        )
    return QualityReport(
        bar=bar,
        min_reviews=min_reviews,
        items=item_count,
        reviews=review_count,
        values=values,
        agreement=agreement,
        weeks=weeks,
        flagged=sorted({f"{v.label}={v.value}" for v in values if v.flagged}),
    )


def flagged_values(
    db: Warehouse, *, bar: float | None = None, min_reviews: int | None = None
) -> dict[tuple[str, str], ValueQuality]:
    """(label, value) -> its figures, for each value flagged under the bar (under any
    taxonomy version reviewed); charts and tables that show a value mark it."""
    report = quality_report(db, bar=bar, min_reviews=min_reviews)
    out: dict[tuple[str, str], ValueQuality] = {}
    for v in report.values:
        if v.flagged:
            out[(v.label, v.value)] = v
    return out
