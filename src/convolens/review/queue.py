"""The review queue: samples of labels for people to check, and their verdicts.

A batch samples the current labels per stratum, a stratum being one component, label,
taxonomy version and value ("intents / intent.utterance / 2+62e8f8fe / refund"):
- `random`: drawn uniformly within the stratum; the only items precision is estimated
  from, each weighted by the stratum's population over its sample size;
- `low_confidence`: the least confident of the rest, for learning (weight 0);
- `disagreement`: the rest whose model nearly chose another value (the top two within
  `disagreement_margin`), for learning (weight 0).
Items are shuffled across strata so a reviewer cannot tell which stratum an item came
from, and a configurable share asks for a second, independent reviewer (human-human
agreement). A reviewer accepts the label, corrects it (picks the right value, or adds a
value the model missed) or skips it; `record_review` is the one write path.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

from convolens.review.models import (  # noqa: F401
    MAX_PER_STRATUM,
    MAX_VALUE_CHARS,
    BatchSummary,
    EvidenceView,
    QueueStatus,
    Review,
    ReviewInput,
    ReviewItem,
    SampleSpec,
    Stratum,
    Verdict,
)
from convolens.review.values import VALUE_KEYS, categorical_value, margin
from convolens.store.warehouse import Warehouse, WarehouseError, now_utc

__all__ = [
    "BatchSummary",
    "EvidenceView",
    "Review",
    "ReviewError",
    "ReviewInput",
    "ReviewItem",
    "SampleSpec",
    "create_batch",
    "get_item",
    "next_item",
    "queue_status",
    "record_review",
]


class ReviewError(WarehouseError):
    """A review that cannot be stored (unknown item, repeated reviewer, bad value)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _population(db: Warehouse, spec: SampleSpec) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Current labels not yet in a queue, by stratum key (component, label, taxonomy, value)."""
    where, params = [], []
    for column in ("component", "label"):
        if getattr(spec, column):
            where.append(f"l.{column} = ?")
            params.append(getattr(spec, column))
    rows = db.query(
        "SELECT l.enrichment_id, l.conversation_id, l.version, l.utterance_id, l.component, "
        "l.component_version, l.taxonomy_version, l.label, l.value, l.confidence, "
        "coalesce(c.started_at, l.created_at) AS occurred_at FROM labels_current l "
        "JOIN conversations_current c USING (conversation_id, version) "
        "WHERE NOT EXISTS (SELECT 1 FROM review_items i WHERE i.enrichment_id = l.enrichment_id)"
        + "".join(f" AND {w}" for w in where)
        + " ORDER BY l.enrichment_id",
        params,
    )
    strata: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        value = categorical_value(row["value"])
        if value is None or (spec.value is not None and value != spec.value):
            continue
        row["category"] = value
        strata[(row["component"], row["label"], row["taxonomy_version"], value)].append(row)
    return strata


def create_batch(db: Warehouse, spec: SampleSpec, created_by: str | None = None) -> BatchSummary:
    """Sample a batch of labels to review (see the module doc); an empty batch when no
    current label matches."""
    import numpy as np  # here: the SDK imports this module's models without numpy

    rng = np.random.default_rng(spec.seed)
    chosen: list[tuple[dict[str, Any], str, float, int]] = []
    for _, rows in sorted(_population(db, spec).items(), key=lambda kv: str(kv[0])):
        order = rng.permutation(len(rows))
        n = min(spec.per_value, len(rows))
        picked = {int(i) for i in order[:n]}
        chosen += [(rows[i], "random", len(rows) / n, len(rows)) for i in sorted(picked)]
        rest = [r for i, r in enumerate(rows) if i not in picked]
        sure = sorted(
            (r for r in rest if r["confidence"] is not None), key=lambda r: r["confidence"]
        )
        low = sure[: spec.low_confidence]
        chosen += [(r, "low_confidence", 0.0, len(rows)) for r in low]
        taken = {r["enrichment_id"] for r in low}
        close = sorted(
            (
                (m, r)
                for r in rest
                if r["enrichment_id"] not in taken
                and (m := margin(r["value"])) is not None
                and m < spec.disagreement_margin
            ),
            key=lambda mr: mr[0],
        )
        chosen += [(r, "disagreement", 0.0, len(rows)) for _, r in close[: spec.disagreement]]
    batch_id = f"rb-{uuid.uuid4().hex[:12]}"
    positions = rng.permutation(len(chosen))
    second = rng.random(len(chosen)) < spec.second_share
    created = now_utc()
    columns: dict[str, list[Any]] = defaultdict(list)
    strata: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for k, (row, stratum, weight, population) in enumerate(chosen):
        values = {
            "item_id": f"ri-{uuid.uuid4().hex[:16]}",
            "batch_id": batch_id,
            "position": int(positions[k]),
            "enrichment_id": row["enrichment_id"],
            "conversation_id": row["conversation_id"],
            "version": row["version"],
            "utterance_id": row["utterance_id"],
            "component": row["component"],
            "component_version": row["component_version"],
            "taxonomy_version": row["taxonomy_version"],
            "label": row["label"],
            "value": row["category"],
            "confidence": row["confidence"],
            "stratum": stratum,
            "weight": weight,
            "population": population,
            "reviews_wanted": 2 if second[k] else 1,
            "occurred_at": row["occurred_at"],
            "created_by": created_by,
            "created_at": created,
        }
        for name, value in values.items():
            columns[name].append(value)
        strata[f"{row['component']}/{row['label']}/{row['category']}"][stratum] += 1
    if chosen:
        names = list(columns)
        marks = ", ".join("?" for _ in names)
        with db.transaction():
            db.con.executemany(
                f"INSERT INTO review_items ({', '.join(names)}) VALUES ({marks})",
                [list(row) for row in zip(*columns.values(), strict=True)],
            )
    return BatchSummary(
        batch_id=batch_id,
        items=len(chosen),
        second_reviews=int(sum(bool(s) for s in second)),
        strata={k: dict(v) for k, v in strata.items()},
    )


_ITEM = (
    "SELECT i.*, (SELECT count(*) FROM reviews r WHERE r.item_id = i.item_id "
    "AND r.verdict <> 'skip') AS reviews_done, e.evidence FROM review_items i "
    "LEFT JOIN enrichments e USING (enrichment_id)"
)


def next_item(db: Warehouse, reviewer: str, batch_id: str | None = None) -> ReviewItem | None:
    """The next item this reviewer has not seen that still wants a review, in batch order;
    None when the queue is empty for them."""
    rows = db.query(
        f"SELECT * FROM ({_ITEM}) i WHERE reviews_done < reviews_wanted "
        "AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = i.item_id "
        "AND r.reviewer = ?)" + (" AND batch_id = ?" if batch_id else "") + " "
        "ORDER BY reviews_done DESC, created_at, batch_id, position LIMIT 1",
        [reviewer, *([batch_id] if batch_id else [])],
    )
    return _item(db, rows[0]) if rows else None


def get_item(db: Warehouse, item_id: str) -> ReviewItem:
    rows = db.query(f"{_ITEM} WHERE i.item_id = ?", [item_id])
    if not rows:
        raise ReviewError(f"no review item {item_id!r}", status=404)
    return _item(db, rows[0])


def choices(db: Warehouse, component: str, label: str) -> list[str]:
    """The values a reviewer may pick for this label: every value it has taken, and for
    intents every intent of the taxonomies that labelled them (and out_of_scope)."""
    found: set[str] = set()
    # The category keys are read in SQL: values differ in their scores, not their category.
    keys = ", ".join(f"json_extract_string(value, '$.{key}')" for key in VALUE_KEYS)
    for row in db.query(
        "SELECT DISTINCT CASE WHEN json_type(value) = 'OBJECT' "
        f"THEN to_json(coalesce({keys}))::VARCHAR ELSE value::VARCHAR END AS v "
        "FROM enrichments WHERE component = ? AND label = ?",
        [component, label],
    ):
        value = categorical_value(row["v"])
        if value is not None:
            found.add(value)
    if component == "intents":
        from convolens.review.feedback import known_intents

        found |= known_intents(db)
    return sorted(found)


def _item(db: Warehouse, row: dict[str, Any]) -> ReviewItem:
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for ev in json.loads(row.get("evidence") or "[]"):
        if isinstance(ev, dict) and ev.get("utterance_id"):
            spans[ev["utterance_id"]].append((int(ev.get("start", 0)), int(ev.get("end", 0))))
    if row["utterance_id"] and row["utterance_id"] not in spans:
        spans[row["utterance_id"]] = []
    evidence = []
    ids = list(spans)[:8]  # a conversation-level label rests on a few turns; show those
    if ids:
        marks = ", ".join("?" for _ in ids)
        utterances = db.query(
            "SELECT u.utterance_id, u.seq, u.text, p.role FROM utterances_current u "
            "LEFT JOIN participants_current p USING (conversation_id, version, participant_id) "
            f"WHERE u.utterance_id IN ({marks}) ORDER BY u.seq",
            ids,
        )
        for u in utterances:
            evidence.append(
                EvidenceView(
                    utterance_id=u["utterance_id"],
                    seq=u["seq"],
                    role=u["role"],
                    pieces=_cut(u["text"], spans[u["utterance_id"]]),
                )
            )
    return ReviewItem(
        item_id=row["item_id"],
        batch_id=row["batch_id"],
        conversation_id=row["conversation_id"],
        utterance_id=row["utterance_id"],
        component=row["component"],
        label=row["label"],
        value=row["value"],
        taxonomy_version=row["taxonomy_version"],
        confidence=row["confidence"],
        stratum=row["stratum"],
        weight=row["weight"],
        reviews_wanted=row["reviews_wanted"],
        reviews_done=row["reviews_done"],
        choices=choices(db, row["component"], row["label"]),
        evidence=evidence,
    )


def _cut(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """`text` as (piece, marked) runs; overlapping or out-of-range spans are merged/clipped."""
    marked = [False] * len(text)
    for start, end in spans:
        for i in range(max(0, start), min(len(text), end)):
            marked[i] = True
    pieces: list[tuple[str, bool]] = []
    for i, ch in enumerate(text):
        if pieces and pieces[-1][1] == marked[i]:
            pieces[-1] = (pieces[-1][0] + ch, marked[i])
        else:
            pieces.append((ch, marked[i]))
    return pieces


def record_review(
    db: Warehouse,
    item_id: str,
    reviewer: str,
    review: ReviewInput,
    *,
    reviewer_name: str | None = None,
) -> Review:
    """Store one reviewer's verdict on an item: the only way reviews are written (an audit
    log hooks here). Refused: an unknown item (404), a second verdict by the same reviewer
    (409), a value the label cannot take or a 'correction' to the model's own value (422)."""
    rows = db.query("SELECT component, label, value FROM review_items WHERE item_id = ?", [item_id])
    if not rows:
        raise ReviewError(f"no review item {item_id!r}", status=404)
    item = rows[0]
    allowed = (
        set(choices(db, item["component"], item["label"])) if review.verdict == "correct" else set()
    )
    if review.corrected_value is not None:
        if review.corrected_value == item["value"]:
            raise ReviewError(
                f"{review.corrected_value!r} is the model's own value: accept the label instead"
            )
        if review.corrected_value not in allowed:
            raise ReviewError(f"{item['label']}: unknown value {review.corrected_value!r}")
    unknown = [v for v in review.missed_values if v not in allowed]
    if unknown:
        raise ReviewError(f"{item['label']}: unknown value(s) {', '.join(map(repr, unknown))}")
    created = now_utc()
    review_id = f"rv-{uuid.uuid4().hex[:16]}"
    with db.transaction():
        seen = db.query(
            "SELECT 1 FROM reviews WHERE item_id = ? AND reviewer = ?", [item_id, reviewer]
        )
        if seen:
            raise ReviewError(f"{reviewer!r} has already reviewed item {item_id!r}", status=409)
        db.con.execute(
            "INSERT INTO reviews (review_id, item_id, reviewer, reviewer_name, verdict, "
            "corrected_value, missed_values, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                review_id,
                item_id,
                reviewer,
                reviewer_name,
                review.verdict,
                review.corrected_value,
                sorted(set(review.missed_values)),
                review.note,
                created,
            ],
        )
    return Review(
        review_id=review_id,
        item_id=item_id,
        reviewer=reviewer,
        reviewer_name=reviewer_name,
        verdict=review.verdict,
        corrected_value=review.corrected_value,
        missed_values=sorted(set(review.missed_values)),
        note=review.note,
        created_at=created.isoformat(),
    )


def queue_status(db: Warehouse) -> list[QueueStatus]:
    """Per batch, newest first: items, items fully reviewed, items still waiting."""
    rows = db.query(
        f"SELECT batch_id, min(created_at) AS created_at, count(*) AS items, "
        "count(*) FILTER (WHERE reviews_done >= reviews_wanted) AS reviewed "
        f"FROM ({_ITEM}) i GROUP BY batch_id ORDER BY created_at DESC"
    )
    return [
        QueueStatus(
            batch_id=r["batch_id"],
            created_at=r["created_at"].isoformat(),
            items=r["items"],
            reviewed=r["reviewed"],
            waiting=r["items"] - r["reviewed"],
        )
        for r in rows
    ]
