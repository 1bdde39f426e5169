"""Figures from reviews against a known truth: planted wrong labels, simulated reviewers.

The real pipeline labels the sample corpus; then neutral utterance-sentiment labels are
relabelled "negative" until the "negative" value's true precision is 0.7 (the pipeline's
own labels are taken as the truth, the planted ones as wrong). Two simulated reviewers
with known error rates (A 5 %, B 15 %: an error picks one of the other values at random)
review the same 150 labels; the precision interval must cover the planted truth, and
Cohen's kappa / Krippendorff's alpha of A and B must fall where their error rates put them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convolens.review.figures import quality_report, wilson
from convolens.review.queue import ReviewInput, SampleSpec, create_batch, next_item, record_review
from convolens.store.warehouse import Warehouse

VALUES = ("negative", "neutral", "positive")
LABEL = "sentiment.utterance"
# Labels reviewed: the sample corpus has ~106 negative utterances, 151 with the planted ones.
N = 150


def _plant(db: Warehouse, precision: float, rng: np.random.Generator) -> dict[str, str]:
    """Relabel neutral labels as negative so that `precision` of the negatives are right;
    returns enrichment id -> true value for every negative label."""
    rows = db.query(
        "SELECT enrichment_id, value FROM labels_current WHERE label = ? ORDER BY enrichment_id",
        [LABEL],
    )
    by_value: dict[str, list[dict]] = {v: [] for v in VALUES}
    for row in rows:
        by_value[json.loads(row["value"])["label"]].append(row)
    right = len(by_value["negative"])
    wrong = round(right * (1 - precision) / precision)
    assert right >= 100 and len(by_value["neutral"]) > wrong
    truth = {r["enrichment_id"]: "negative" for r in by_value["negative"]}
    for k in rng.choice(len(by_value["neutral"]), size=wrong, replace=False):
        row = by_value["neutral"][int(k)]
        value = {**json.loads(row["value"]), "label": "negative"}
        db.con.execute(
            "UPDATE enrichments SET value = ? WHERE enrichment_id = ?",
            [json.dumps(value), row["enrichment_id"]],
        )
        truth[row["enrichment_id"]] = "neutral"
    return truth


def _says(truth: str, error: float, rng: np.random.Generator) -> str:
    if rng.random() >= error:
        return truth
    return str(rng.choice([v for v in VALUES if v != truth]))


def _expected_kappa(true_share: dict[str, float], error_a: float, error_b: float) -> float:
    """Cohen's kappa of two raters who err independently at these rates, each error going
    to one of the other values with equal chance."""

    def p(v: str, t: str, e: float) -> float:
        return 1 - e if v == t else e / (len(VALUES) - 1)

    observed = sum(
        share * sum(p(v, t, error_a) * p(v, t, error_b) for v in VALUES)
        for t, share in true_share.items()
    )
    chance = sum(
        sum(s * p(v, t, error_a) for t, s in true_share.items())
        * sum(s * p(v, t, error_b) for t, s in true_share.items())
        for v in VALUES
    )
    return (observed - chance) / (1 - chance)


def test_precision_interval_and_kappa_from_two_simulated_reviewers(labelled_copy: Path) -> None:
    seed = 3
    rng = np.random.default_rng(seed)
    error_a, error_b = 0.05, 0.15
    with Warehouse(labelled_copy) as db:
        truth = _plant(db, 0.7, rng)
        true_precision = sum(v == "negative" for v in truth.values()) / len(truth)
        batch = create_batch(
            db,
            SampleSpec(
                component="sentiment", label=LABEL, value="negative", per_value=N,
                low_confidence=0, disagreement=0, second_share=1.0, seed=seed,
            ),
        )  # fmt: skip
        assert batch.items == N and batch.second_reviews == N
        enrichment = dict(
            db.con.execute("SELECT item_id, enrichment_id FROM review_items").fetchall()
        )
        sampled_truth = {}
        for reviewer, error in (("A", error_a), ("B", error_b)):
            reviewed = 0
            while (item := next_item(db, reviewer)) is not None:
                true_value = truth[enrichment[item.item_id]]
                sampled_truth[item.item_id] = true_value
                said = _says(true_value, error, rng)
                verdict = (
                    ReviewInput(verdict="accept")
                    if said == item.value
                    else ReviewInput(verdict="correct", corrected_value=said)
                )
                record_review(db, item.item_id, reviewer, verdict)
                reviewed += 1
            assert reviewed == N
        report = quality_report(db, component="sentiment")

    [negative] = [v for v in report.values if v.value == "negative"]
    assert negative.reviewed == N
    assert negative.precision_low <= true_precision <= negative.precision_high
    # The interval is Wilson's at n = N (equal weights within one value).
    expected = wilson(negative.correct, N)
    assert expected is not None
    assert negative.precision_low == pytest.approx(expected[0], abs=1e-4)
    assert negative.precision_high - negative.precision_low < 0.16

    [agreement] = report.agreement
    assert agreement.human_pairs == N
    share = {v: sum(t == v for t in sampled_truth.values()) / len(sampled_truth) for v in VALUES}
    kappa = _expected_kappa(share, error_a, error_b)
    # Kappa's standard error at n = 150 is about 0.06: two and a half of them either way.
    assert agreement.human_human_kappa == pytest.approx(kappa, abs=0.15)
    assert agreement.human_human_alpha == pytest.approx(agreement.human_human_kappa, abs=0.03)
    assert 0.5 < agreement.human_human_kappa < 0.9
    # Human agreement is what the error rates make it: P(A and B both right) dominates.
    assert agreement.human_agreement == pytest.approx(0.95 * 0.85 + 0.05 * 0.15 / 2, abs=0.06)
    # 0.7 < bar? No: the planted precision sits at the default bar, so the flag follows the
    # estimate, and the report's flag list says the same as the row.
    assert negative.flagged == (negative.precision < 0.7)
    assert ("sentiment.utterance=negative" in report.flagged) == negative.flagged
