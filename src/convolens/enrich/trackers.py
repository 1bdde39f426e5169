"""Trackers: named business signals (churn risk, pricing objections, ...) found in utterances.

A tracker is a name, a few key phrases and a few example sentences. Each non-internal
utterance is matched three ways, most precise first:

1. exact: every case-insensitive, whole-word occurrence of a phrase (confidence 1.0);
2. fuzzy: the best rapidfuzz partial-ratio alignment of a multi-word phrase not already
   matched exactly (misspellings such as "cancle my subscription"), confidence = ratio/100;
3. semantic: the cosine between the utterance's embedding (the shared, cached one) and the
   tracker's example sentences, when no phrase matched that tracker in that utterance.

Definitions come from TOML (`[[tracker]]` tables), from a list of dicts, or from the
shipped `data/default_trackers.toml`. Their hash is the taxonomy version, so changing a
tracker starts a new lineage.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.embeddings import (
    SentenceEmbedder,
    batch_utterance_embeddings,
    shared_embedder,
)
from convolens.model import Role

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_TRACKERS",
    "FUZZY_MIN_RATIO",
    "TrackerComponent",
    "TrackerDefinition",
    "load_trackers",
]

DEFAULT_TRACKERS = Path(__file__).parent / "data" / "default_trackers.toml"
# all-MiniLM-L6-v2 cosines: on-topic paraphrases of an example score ~0.55-0.8, while
# unrelated support chatter ("The invoice was sent on Tuesday.") stays below ~0.35.
DEFAULT_THRESHOLD = 0.55
# 90 allows about one edit in ten characters: a typo or swapped letters, not another word.
FUZZY_MIN_RATIO = 90.0
LABEL = "tracker.match"


class TrackerDefinition(BaseModel):
    """One tracker, validated; unknown keys are errors so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    phrases: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, le=1)
    fuzzy: bool = True
    fuzzy_min_ratio: float = Field(default=FUZZY_MIN_RATIO, ge=50, le=100)
    roles: list[Role] | None = None

    @model_validator(mode="after")
    def _check(self) -> TrackerDefinition:
        self.phrases[:] = [p.strip() for p in self.phrases]
        if any(not p for p in self.phrases) or any(not e.strip() for e in self.examples):
            raise ValueError("phrases and examples must not be empty strings")
        if not self.phrases and not self.examples:
            raise ValueError("a tracker needs at least one phrase or example")
        return self


def load_trackers(source: str | Path | Iterable[dict[str, Any]]) -> list[TrackerDefinition]:
    """Trackers from a TOML file path or a list of dicts; errors name tracker and field."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from None
        raw = data.get("tracker")
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"{path}: no [[tracker]] tables found")
        where = str(path)
    else:
        raw = list(source)
        where = "tracker definitions"
    trackers: list[TrackerDefinition] = []
    for index, item in enumerate(raw):
        label = item.get("name") if isinstance(item, dict) else None
        label = repr(label) if label else f"#{index + 1}"
        try:
            trackers.append(TrackerDefinition.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'definition'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ValueError(f"{where}: tracker {label}: {problems}") from None
    names = [t.name for t in trackers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}: duplicate tracker names: {', '.join(duplicates)}")
    return trackers


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Case-insensitive whole-word regex; any run of spaces and either apostrophe match."""
    parts = [re.escape(word) for word in phrase.split()]
    body = r"\s+".join(parts).replace("'", "['\u2019]")
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


class TrackerComponent(Component):
    """Labels utterances with `tracker.match` for each tracker they exhibit."""

    name = "trackers"
    version = "1"
    assigns: ClassVar[tuple[str, ...]] = (LABEL,)
    description = "Business signals (churn risk, objections, bugs, ...) by phrase and meaning."

    def __init__(
        self, config: dict[str, Any] | None = None, *, embedder: SentenceEmbedder | None = None
    ) -> None:
        super().__init__(config)
        if "definitions" in self.config:
            self.trackers = load_trackers(self.config["definitions"])
        else:
            self.trackers = load_trackers(self.config.get("trackers") or DEFAULT_TRACKERS)
        self.embedder = (
            embedder
            or self.config.get("embedder")
            or shared_embedder(self.config.get("embedding_model"))
        )
        self.model_id = self.embedder.model_id
        canonical = json.dumps([t.model_dump(mode="json") for t in self.trackers], sort_keys=True)
        self.taxonomy_version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        self._patterns = [[(p, phrase_pattern(p)) for p in t.phrases] for t in self.trackers]
        # Every tracker's examples embedded once, in one call; rows [start, end) are tracker i's.
        examples = [e for t in self.trackers for e in t.examples]
        self._examples = self.embedder.embed(examples)
        self._spans: list[tuple[int, int]] = []
        start = 0
        for tracker in self.trackers:
            self._spans.append((start, start + len(tracker.examples)))
            start += len(tracker.examples)

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        needs_vectors = any(t.examples for t in self.trackers)
        vectors = batch_utterance_embeddings(batch, self.embedder) if needs_vectors else None
        return [
            self._label(doc, vectors[n] if vectors is not None else None)
            for n, doc in enumerate(batch)
        ]

    def _label(self, doc: Doc, vectors: np.ndarray | None) -> list[Annotation]:
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        utterances = doc.conversation.utterances
        kept = [i for i, u in enumerate(utterances) if not u.internal and u.text.strip()]
        similarities = (
            vectors[kept] @ self._examples.T
            if vectors is not None and kept and len(self._examples)
            else None
        )
        out: list[Annotation] = []
        for row, i in enumerate(kept):
            text = utterances[i].text
            role = roles.get(utterances[i].participant_id, Role.unknown)
            uid = doc.utterance_ids[i]
            for t, tracker in enumerate(self.trackers):
                if tracker.roles is not None and role not in tracker.roles:
                    continue
                found = self._phrases(t, text, uid)
                out.extend(found)
                if similarities is not None and not found and tracker.examples:
                    start, end = self._spans[t]
                    scores = similarities[row, start:end]
                    best = int(np.argmax(scores))
                    similarity = float(scores[best])
                    if similarity >= tracker.threshold:
                        value = {
                            "tracker": tracker.name,
                            "match": "semantic",
                            "example": tracker.examples[best],
                            "similarity": round(similarity, 4),
                        }
                        confidence = round(min(1.0, max(0.0, similarity)), 4)
                        out.append(Annotation(LABEL, value, confidence, uid, [doc.whole(i)]))
        return out

    def _phrases(self, t: int, text: str, uid: str) -> list[Annotation]:
        """Every exact occurrence of tracker t's phrases, then its best fuzzy one."""
        from rapidfuzz import fuzz

        tracker = self.trackers[t]
        out: list[Annotation] = []
        exact: set[str] = set()
        spans: list[tuple[int, int]] = []
        for phrase, pattern in self._patterns[t]:
            for match in pattern.finditer(text):
                exact.add(phrase)
                spans.append(match.span())
                value: dict[str, Any] = {
                    "tracker": tracker.name,
                    "match": "exact",
                    "phrase": phrase,
                    "text": match.group(0),
                }
                out.append(Annotation(LABEL, value, 1.0, uid, [Evidence(uid, *match.span())]))
        if not tracker.fuzzy:
            return out
        lowered = text.lower()
        best: tuple[float, str, int, int] | None = None
        for phrase in tracker.phrases:
            if phrase in exact or len(phrase.split()) < 2:
                continue
            alignment = fuzz.partial_ratio_alignment(
                phrase.lower(), lowered, score_cutoff=tracker.fuzzy_min_ratio
            )
            if alignment is None:
                continue
            start, end = alignment.dest_start, alignment.dest_end
            # When the utterance is shorter than the phrase rapidfuzz aligns it inside the
            # phrase ("my subscription" scores 100); re-scoring the window whole rejects that.
            score = fuzz.ratio(phrase.lower(), lowered[start:end])
            if score < tracker.fuzzy_min_ratio:
                continue
            # Text the exact pass already claimed is not a second, fuzzy finding.
            if any(start < e and s < end for s, e in spans):
                continue
            if best is None or score > best[0]:
                best = (score, phrase, start, end)
        if best is not None:
            score, phrase, start, end = best
            value = {
                "tracker": tracker.name,
                "match": "fuzzy",
                "phrase": phrase,
                "text": text[start:end],
                "score": round(score, 2),
            }
            evidence = [Evidence(uid, start, end)]
            out.append(Annotation(LABEL, value, round(score / 100, 4), uid, evidence))
        return out
