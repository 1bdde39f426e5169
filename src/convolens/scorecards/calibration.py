"""Calibration: how often the automatic outcome agrees with a QA reviewer's, per criterion.

For each criterion, over the conversations a reviewer scored it on: percent agreement and
Cohen's kappa (agreement beyond chance, over the three outcomes pass / fail / N/A). A
criterion is flagged when agreement is under `min_agreement` or kappa under `min_kappa`
(with at least `min_reviews` reviews): its check needs rewriting, or the reviewers need
aligning. The confusion pairs say which way they disagree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, Field

from convolens.store.warehouse import Warehouse

__all__ = ["Calibration", "CriterionAgreement", "agreement", "calibration", "cohen_kappa"]

OUTCOMES = ("pass", "fail", "na")


class CriterionAgreement(BaseModel):
    scorecard: str
    criterion: str
    reviews: int
    agreement: float | None = Field(description="Share of reviews where auto == human.")
    kappa: float | None = Field(description="Cohen's kappa; None when it is undefined.")
    confusion: dict[str, int] = Field(description="'auto->human' counts where they differ.")
    flagged: bool
    disagreements: list[str] = Field(default_factory=list, description="Conversation ids.")


class Calibration(BaseModel):
    reviews: int
    conversations: int
    overall_agreement: float | None
    overall_kappa: float | None
    criteria: list[CriterionAgreement]

    @property
    def flagged(self) -> list[CriterionAgreement]:
        return [c for c in self.criteria if c.flagged]


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of (auto, human) label pairs; None when chance agreement is total
    (both raters gave one and the same label to everything: kappa is 0/0)."""
    from sklearn.metrics import cohen_kappa_score

    items = list(pairs)
    if not items:
        return None
    auto, human = zip(*items, strict=True)
    if len(set(auto) | set(human)) == 1:
        return None
    value = float(cohen_kappa_score(auto, human, labels=list(OUTCOMES)))
    return None if math.isnan(value) else round(value, 3)


def agreement(
    pairs: Mapping[tuple[str, str], Iterable[tuple[str, str, str]]],
    *,
    min_agreement: float = 0.8,
    min_kappa: float = 0.4,
    min_reviews: int = 5,
) -> Calibration:
    """Agreement from {(scorecard, criterion): [(conversation_id, auto, human), ...]}."""
    criteria = []
    everything: list[tuple[str, str]] = []
    conversations: set[str] = set()
    for (card, criterion), rows in sorted(pairs.items()):
        rows = list(rows)
        conversations.update(r[0] for r in rows)
        couples = [(auto, human) for _, auto, human in rows]
        everything.extend(couples)
        agree = sum(a == h for a, h in couples) / len(couples) if couples else None
        kappa = cohen_kappa(couples)
        confusion = Counter(f"{a}->{h}" for a, h in couples if a != h)
        flagged = len(couples) >= min_reviews and (
            (agree is not None and agree < min_agreement)
            or (kappa is not None and kappa < min_kappa)
        )
        criteria.append(
            CriterionAgreement(
                scorecard=card,
                criterion=criterion,
                reviews=len(couples),
                agreement=None if agree is None else round(agree, 3),
                kappa=kappa,
                confusion=dict(sorted(confusion.items())),
                flagged=flagged,
                disagreements=sorted({cid for cid, a, h in rows if a != h}),
            )
        )
    overall = sum(a == h for a, h in everything) / len(everything) if everything else None
    return Calibration(
        reviews=len(everything),
        conversations=len(conversations),
        overall_agreement=None if overall is None else round(overall, 3),
        overall_kappa=cohen_kappa(everything),
        criteria=criteria,
    )


def calibration(
    warehouse: Warehouse,
    *,
    scorecard: str | None = None,
    min_agreement: float = 0.8,
    min_kappa: float = 0.4,
) -> Calibration:
    """Agreement between the current automatic outcomes and the newest human ones."""
    from convolens.scorecards.store import _LATEST

    where = "AND t.scorecard = ?" if scorecard else ""
    rows = warehouse.query(
        _LATEST + ", human AS (SELECT conversation_id, version, scorecard, criterion, "
        "arg_max(outcome, created_at) AS outcome FROM qa_scores GROUP BY ALL) "
        "SELECT t.conversation_id, t.scorecard, e.value->>'criterion' AS criterion, "
        "e.value->>'outcome' AS auto, hu.outcome AS human "
        "FROM totals t JOIN latest USING (conversation_id, version, scorecard, run_id) "
        "JOIN enrichments e ON e.run_id = t.run_id AND e.conversation_id = t.conversation_id "
        "AND e.version = t.version AND e.label = 'scorecard.criterion' "
        "AND e.value->>'scorecard' = t.scorecard "
        "JOIN human hu ON hu.conversation_id = t.conversation_id AND hu.version = t.version "
        "AND hu.scorecard = t.scorecard AND hu.criterion = e.value->>'criterion' "
        f"WHERE true {where} ORDER BY 1, 2, 3",
        [scorecard] if scorecard else [],
    )
    grouped: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for r in rows:
        grouped.setdefault((r["scorecard"], r["criterion"]), []).append(
            (r["conversation_id"], r["auto"], r["human"])
        )
    return agreement(grouped, min_agreement=min_agreement, min_kappa=min_kappa)
