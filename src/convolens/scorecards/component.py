"""Auto-QA as an enrichment component: every conversation scored against each scorecard.

Labels: one `scorecard.criterion` per criterion (pass / fail / na, the reason and the
evidence spans) and one `scorecard.total` per scorecard that applies (weighted score
0-100, per section, auto-fail criteria that failed). Both record the scorecard version
(`name@version+hash`), which is also the component's taxonomy version: a new scorecard
version makes every conversation pending again, and the new scores are written beside
the old ones (`convolens scorecard diff`).

It reads the sentiment and resolution labels of the same run when the runner computed
them, else the stored ones (config `warehouse`), so `convolens scorecard score` rescoring
needs no other component to run again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convolens.enrich.base import Annotation, Component, Doc
from convolens.enrich.conversation_type import conversation_type_of
from convolens.scorecards.definition import Scorecard, load_scorecards
from convolens.scorecards.judges import Transcript, Verdict, applies, judge

__all__ = ["CRITERION_LABEL", "TOTAL_LABEL", "ScoreResult", "ScorecardComponent", "score"]

CRITERION_LABEL = "scorecard.criterion"
TOTAL_LABEL = "scorecard.total"
_READS = ("sentiment.utterance", "resolution.status")


@dataclass
class ScoreResult:
    scorecard: Scorecard
    verdicts: dict[str, Verdict]
    score: float | None  # None when no criterion applied
    sections: dict[str, float | None]
    auto_failed: list[str]

    @property
    def passed(self) -> bool | None:
        return None if self.score is None else self.score >= self.scorecard.pass_mark

    def total_value(self) -> dict[str, Any]:
        counts = {
            o: sum(v.outcome == o for v in self.verdicts.values()) for o in ("pass", "fail", "na")
        }
        return {
            "scorecard": self.scorecard.name,
            "scorecard_version": self.scorecard.scorecard_version,
            "score": self.score,
            "passed": self.passed,
            "pass_mark": self.scorecard.pass_mark,
            "sections": self.sections,
            "auto_failed": self.auto_failed,
            "counts": counts,
        }


def weighted(
    card: Scorecard, outcomes: Mapping[str, str]
) -> tuple[float | None, dict[str, float | None], list[str]]:
    """Total and per-section scores (0-100) from outcomes; an auto-fail criterion that
    failed zeroes the total. Shared by automatic and human (overridden) scores."""
    sections: dict[str, float | None] = {}
    total = earned = 0.0
    for section in card.sections:
        applicable = [c for c in section.criteria if outcomes.get(c.id) in ("pass", "fail")]
        possible = sum(c.weight for c in applicable)
        got = sum(c.weight for c in applicable if outcomes[c.id] == "pass")
        sections[section.name] = round(100 * got / possible, 1) if possible else None
        if possible:
            total += section.weight
            earned += section.weight * got / possible
    auto_failed = [c.id for c in card.criteria if c.auto_fail and outcomes.get(c.id) == "fail"]
    if not total:
        return None, sections, auto_failed
    return (0.0 if auto_failed else round(100 * earned / total, 1)), sections, auto_failed


def score(card: Scorecard, transcript: Transcript) -> ScoreResult | None:
    """The scorecard's verdicts on one conversation; None when the scorecard does not apply."""
    if applies(card.applies_when, transcript) is not None:
        return None
    verdicts = {c.id: judge(c, transcript) for c in card.criteria}
    total, sections, auto_failed = weighted(card, {k: v.outcome for k, v in verdicts.items()})
    return ScoreResult(card, verdicts, total, sections, auto_failed)


class ScorecardComponent(Component):
    """Scores conversations against the configured scorecards (default: support, sales)."""

    name = "scorecard"
    version = "1"
    requires: ClassVar[tuple[str, ...]] = _READS
    assigns: ClassVar[tuple[str, ...]] = (CRITERION_LABEL, TOTAL_LABEL)
    description = "Quality scorecards: per-criterion pass/fail/N/A with evidence, weighted score."

    def __init__(self, config: dict[str, Any] | None = None, *, embedder: Any = None) -> None:
        super().__init__(config)
        self.scorecards = load_scorecards(self.config.get("scorecards"))
        self.warehouse = self.config.get("warehouse")
        self._embedder = embedder or self.config.get("embedder")
        self._example_vectors: dict[tuple[str, ...], np.ndarray] = {}
        versions = "|".join(sorted(c.scorecard_version for c in self.scorecards))
        digest = hashlib.sha256(versions.encode()).hexdigest()[:8]
        self.taxonomy_version = f"{','.join(c.name for c in self.scorecards)}:{digest}"

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from convolens.enrich.embeddings import shared_embedder

            self._embedder = shared_embedder(self.config.get("embedding_model"))
        return self._embedder

    def _examples(self, examples: tuple[str, ...]) -> np.ndarray:
        # Cached on the instance: a functools cache would keep every component alive.
        if examples not in self._example_vectors:
            self._example_vectors[examples] = np.asarray(self.embedder.embed(list(examples)))
        return self._example_vectors[examples]

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        from convolens.enrich.embeddings import batch_utterance_embeddings

        self.model_id = self.embedder.model_id
        vectors = batch_utterance_embeddings(batch, self.embedder)
        stored = self._stored_labels([d for d in batch if not _has_reads(d)])
        out = []
        for doc, rows in zip(batch, vectors, strict=True):
            labels = (
                doc.annotations
                if _has_reads(doc)
                else stored.get((doc.conversation_id, doc.version), [])
            )
            transcript = Transcript(
                doc.conversation,
                doc.utterance_ids,
                rows,
                labels,
                conversation_type=conversation_type_of(doc).get("type"),
                embed_examples=self._examples,
            )
            out.append(self._label(transcript))
        return out

    def _label(self, transcript: Transcript) -> list[Annotation]:
        out: list[Annotation] = []
        for card in self.scorecards:
            result = score(card, transcript)
            if result is None:
                continue
            for criterion in card.criteria:
                verdict = result.verdicts[criterion.id]
                value = {
                    "scorecard": card.name,
                    "scorecard_version": card.scorecard_version,
                    "section": card.section_of(criterion.id).name,
                    "criterion": criterion.id,
                    "outcome": verdict.outcome,
                    "reason": verdict.reason,
                    "weight": criterion.weight,
                    "auto_fail": criterion.auto_fail,
                }
                first = verdict.evidence[0].utterance_id if verdict.evidence else None
                out.append(Annotation(CRITERION_LABEL, value, None, first, list(verdict.evidence)))
            out.append(Annotation(TOTAL_LABEL, result.total_value(), None, None, []))
        return out

    def _stored_labels(self, docs: list[Doc]) -> dict[tuple[str, int], list[Annotation]]:
        if self.warehouse is None or not docs:
            return {}
        from convolens.scorecards.store import stored_annotations

        return stored_annotations(
            self.warehouse, [(d.conversation_id, d.version) for d in docs], _READS
        )


def _has_reads(doc: Doc) -> bool:
    """Whether this run's earlier components labelled the doc (sentiment ran on it)."""
    return any(a.label in _READS for a in doc.annotations)
