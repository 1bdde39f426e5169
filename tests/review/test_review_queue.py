"""The review queue on real labels: strata and weights, the order reviewers see items in,
verdicts refused and stored, evidence cut at its spans, recall from missed labels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from convolens.review.figures import quality_report
from convolens.review.queue import (
    ReviewError,
    ReviewInput,
    SampleSpec,
    create_batch,
    get_item,
    next_item,
    queue_status,
    record_review,
)
from convolens.review.values import categorical_value, margin
from convolens.store.warehouse import Warehouse


def test_strata_weights_and_purposive_cases(labelled_copy: Path) -> None:
    with Warehouse(labelled_copy) as db:
        spec = SampleSpec(
            component="sentiment", label="sentiment.utterance", per_value=10,
            low_confidence=3, disagreement=3, second_share=0.5, seed=1,
        )  # fmt: skip
        batch = create_batch(db, spec)
        items = db.query("SELECT * FROM review_items")
        labels = {
            r["enrichment_id"]: r
            for r in db.query("SELECT * FROM labels_current WHERE label = 'sentiment.utterance'")
        }
    population = Counter(categorical_value(r["value"]) for r in labels.values())
    assert set(batch.strata) == {f"sentiment/sentiment.utterance/{v}" for v in population}
    assert len({i["enrichment_id"] for i in items}) == len(items) == batch.items
    for value, n in population.items():
        mine = [i for i in items if i["value"] == value]
        random = [i for i in mine if i["stratum"] == "random"]
        assert len(random) == 10
        # Weight: the stratum's population over its sample size (for precision).
        assert [i["weight"] for i in random] == pytest.approx([n / 10] * 10)
        assert {i["population"] for i in mine} == {n}
        low = [i for i in mine if i["stratum"] == "low_confidence"]
        assert len(low) == 3 and {i["weight"] for i in low} == {0.0}
        # The least confident of the labels not drawn at random.
        drawn = {i["enrichment_id"] for i in random}
        rest = sorted(
            r["confidence"] for e, r in labels.items()
            if categorical_value(r["value"]) == value and e not in drawn
        )  # fmt: skip
        assert sorted(i["confidence"] for i in low) == pytest.approx(rest[:3])
        for i in (i for i in mine if i["stratum"] == "disagreement"):
            assert margin(labels[i["enrichment_id"]]["value"]) < spec.disagreement_margin
    # Shuffled across strata and values: the first ten positions are not one stratum.
    first = sorted(items, key=lambda i: i["position"])[:10]
    assert len({(i["value"], i["stratum"]) for i in first}) > 1
    second = sum(i["reviews_wanted"] == 2 for i in items)
    assert second == batch.second_reviews and 0.3 < second / len(items) < 0.7


def test_a_second_batch_never_repeats_a_queued_label(labelled_copy: Path) -> None:
    with Warehouse(labelled_copy) as db:
        spec = SampleSpec(component="conversation_type", per_value=5, seed=2)
        create_batch(db, spec)
        create_batch(db, spec)
        ids = [r["enrichment_id"] for r in db.query("SELECT enrichment_id FROM review_items")]
    assert len(ids) == len(set(ids))


def test_verdicts_order_and_refusals(labelled_copy: Path) -> None:
    with Warehouse(labelled_copy) as db:
        create_batch(
            db,
            SampleSpec(component="intents", label="intent.utterance", per_value=1,
                       low_confidence=0, disagreement=0, second_share=1.0, seed=4),
        )  # fmt: skip
        item = next_item(db, "ann")
        assert item is not None and item.reviews_wanted == 2
        # The evidence: the utterance cut at the label's span, the marked piece its words.
        [evidence] = item.evidence
        text = db.query(
            "SELECT text FROM utterances_current WHERE utterance_id = ?", [item.utterance_id]
        )[0]["text"]
        assert "".join(p for p, _ in evidence.pieces) == text
        assert any(marked for _, marked in evidence.pieces)
        assert "out_of_scope" in item.choices and item.value in item.choices
        other = next(v for v in item.choices if v != item.value)
        with pytest.raises(ReviewError, match="model's own value"):
            record_review(db, item.item_id, "ann", ReviewInput(verdict="correct",
                          corrected_value=item.value))  # fmt: skip
        with pytest.raises(ReviewError, match="unknown value"):
            record_review(db, item.item_id, "ann", ReviewInput(verdict="correct",
                          corrected_value="no_such_intent"))  # fmt: skip
        with pytest.raises(ValueError):
            ReviewInput(verdict="correct")
        with pytest.raises(ReviewError) as missing:
            record_review(db, "ri-none", "ann", ReviewInput(verdict="accept"))
        assert missing.value.status == 404
        stored = record_review(
            db, item.item_id, "ann", ReviewInput(verdict="correct", corrected_value=other)
        )
        assert stored.corrected_value == other
        with pytest.raises(ReviewError) as again:
            record_review(db, item.item_id, "ann", ReviewInput(verdict="accept"))
        assert again.value.status == 409
        # A skip hides the item from that reviewer only.
        skipped = next_item(db, "ann")
        assert skipped is not None and skipped.item_id != item.item_id
        record_review(db, skipped.item_id, "ann", ReviewInput(verdict="skip"))
        assert next_item(db, "ann").item_id not in (item.item_id, skipped.item_id)
        # The second reviewer is offered the half-reviewed item first.
        assert next_item(db, "bo").item_id == item.item_id
        assert get_item(db, item.item_id).reviews_done == 1
        [status] = queue_status(db)
        assert status.reviewed == 0 and status.waiting == status.items


def test_recall_counts_the_labels_reviewers_add(labelled_copy: Path) -> None:
    with Warehouse(labelled_copy) as db:
        create_batch(
            db,
            SampleSpec(component="sentiment", label="emotion", per_value=6,
                       low_confidence=0, disagreement=0, second_share=0.0, seed=5),
        )  # fmt: skip
        weights = dict(
            db.con.execute("SELECT value, max(weight) FROM review_items GROUP BY 1").fetchall()
        )
        counts = dict(
            db.con.execute("SELECT value, count(*) FROM review_items GROUP BY 1").fetchall()
        )
        # A value with a full stratum (the sample corpus has only a few of some emotions).
        target = sorted(v for v in weights if counts[v] == 6)[0]
        missed_weights = []
        while (item := next_item(db, "ann")) is not None:
            if item.value != target and len(missed_weights) < 2:
                record_review(db, item.item_id, "ann",
                              ReviewInput(verdict="correct", missed_values=[target]))  # fmt: skip
                missed_weights.append(item.weight)
            else:
                record_review(db, item.item_id, "ann", ReviewInput(verdict="accept"))
        report = quality_report(db, label="emotion", min_reviews=1)
    row = next(v for v in report.values if v.value == target)
    assert row.precision == 1.0 and row.missed == 2 and row.reviewed == 6
    # Recall weighs each item by its stratum's weight: found / (found + missed).
    found = weights[target] * 6
    assert row.recall == pytest.approx(found / (found + sum(missed_weights)), abs=1e-4)
    assert row.recall_low < row.recall < row.recall_high
    # An added label is not a wrong one: every value keeps precision 1.
    assert all(v.precision == 1.0 for v in report.values if v.reviewed)
    assert not report.flagged


def test_values_read_from_component_values() -> None:
    assert categorical_value(json.dumps({"intent": "refund", "top": []})) == "refund"
    assert categorical_value(json.dumps({"label": "negative"})) == "negative"
    assert categorical_value(json.dumps({"text": "a long summary"})) is None
    assert margin(json.dumps({"probabilities": {"a": 0.5, "b": 0.4, "c": 0.1}})) == pytest.approx(
        0.1
    )
    assert margin(json.dumps({"top": [["x", 0.9], ["y", 0.05]]})) == pytest.approx(0.85)
