"""Sentiment and emotion of utterances, participants and whole conversations.

The default model is the conversation encoder's sentiment and emotion heads
(`conversation_encoder`, trained by training/encoder/train.py): one shared pass per
utterance, read here and by the dialogue acts. The first model, MiniLM embeddings +
VADER + logistic regression, stays loadable by name for comparison
(`{"model": "minilm-vader-lr-v1"}`; it has no emotions).

- `sentiment.utterance` {label, score, probabilities[, politeness_formula]}: score is
  P(positive) - P(negative). Staff (agent, bot) apologies and politeness formulas ("I am
  sorry about that", "we apologise for the inconvenience") are not negativity: a staff
  turn that holds one is scored on what remains without it (nothing left: neutral).
  A staff turn is positive or negative only at probability >= `staff_min_probability`
  (0.7): "Glad to help!" is service register, not the agent's satisfaction.
- `emotion` {emotion, score, source} per utterance and emotion the CX lead acts on:
  frustration, confusion, satisfaction (heads of the encoder; frustration never on a
  positive turn, satisfaction never on a negative one) and urgency (a phrase list: no
  public corpus labels it; the phrase is the evidence).
- `sentiment.participant` {score, label, utterances, start, end, trajectory, emotions}:
  per speaker, mean over their turns weighted by length; start/end are the mean score
  of the first and last third of their turns.
- `sentiment.conversation`: overall mean; start/end/trajectory follow the customer when
  known (agents stay polite throughout and would flatten any change), else everyone.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import numpy as np

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.conversation_encoder import (
    ConversationEncoder,
    encoder_pass,
    shared_encoder,
)
from convolens.enrich.sentiment_lr import (
    ARTEFACT,
    LR_MODEL_ID,
    VADER_FEATURES,
    LrSentiment,
    SentimentModel,
    vader_features,
)
from convolens.model import Role

__all__ = [
    "ARTEFACT",
    "CLASSES",
    "TRAJECTORY_THRESHOLD",
    "VADER_FEATURES",
    "SentimentComponent",
    "SentimentModel",
    "politeness_remainder",
    "urgency_phrases",
    "vader_features",
]

CLASSES = ("negative", "neutral", "positive")
# A change of at least 0.2 in mean score (a tenth of the [-1, 1] range) between the first
# and the last third of a speaker's turns counts as a trajectory; smaller moves are
# within the noise of single-utterance scores and are reported as "steady".
TRAJECTORY_THRESHOLD = 0.2
# An emotion head's probability from which the emotion is reported (the heads were
# trained on class-balanced data, so 0.5 is a majority over "none" and the others).
EMOTION_THRESHOLD = 0.5
STAFF = frozenset({Role.agent, Role.bot})
# The probability a staff turn's positive or negative class needs (see `_label`); a
# setting (`staff_min_probability`), 0.7 by default.
STAFF_MIN_PROBABILITY = 0.7

# Formulas staff use whatever the outcome; removed up to the end of their clause.
_POLITENESS = re.compile(
    r"(?:\b(?:i|we)(?:\s+a?re|\s+am|'m|'re|\u2019m|\u2019re)?\s+)?"
    r"(?:\b(?:so|very|really|truly|terribly|deeply)\s+)?"
    r"(?:\bsorry\b|\bapologi[sz]e\b|\bapologies\b|\bmy apologies\b"
    r"|\bi\s+(?:completely\s+|totally\s+)?understand\b[^.!?,;]*\bfrustrat\w*)"
    r"[^.!?,;]*[.!?,;]?"
    # "Unfortunately" softens what follows; the news itself is still read.
    r"|\bunfortunately\b,?",
    re.IGNORECASE,
)
_URGENCY = re.compile(
    r"\b(?:urgent(?:ly)?|asap|a\.s\.a\.p|immediately|as soon as possible|right away"
    r"|emergency|time[- ]sensitive|can'?t wait|cannot wait|at once"
    r"|need (?:it|this|help|someone|you)?\s*(?:right )?now)\b",
    re.IGNORECASE,
)


def politeness_remainder(text: str) -> str | None:
    """The text without staff politeness formulas, or None when it holds none."""
    if not _POLITENESS.search(text):
        return None
    return " ".join(_POLITENESS.sub(" ", text).split())


def urgency_phrases(text: str) -> list[tuple[int, int]]:
    """Character spans of urgency phrases ("asap", "urgently", "right away")."""
    return [m.span() for m in _URGENCY.finditer(text)]


class SentimentComponent(Component):
    """Labels sentiment per utterance, participant and conversation, and emotions."""

    name = "sentiment"
    version = "3"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    assigns: ClassVar[tuple[str, ...]] = (
        "sentiment.utterance",
        "sentiment.participant",
        "sentiment.conversation",
        "emotion",
    )
    description = (
        "Negative/neutral/positive per utterance, participant and conversation "
        "(start, end, trajectory); frustration, confusion, satisfaction, urgency."
    )

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        encoder: ConversationEncoder | None = None,
        embedder: Any | None = None,
    ) -> None:
        super().__init__(config)
        self.lr: LrSentiment | None = None
        self.encoder: ConversationEncoder | None = None
        if self.config.get("model") == LR_MODEL_ID:
            from convolens.enrich.embeddings import shared_embedder

            # The embedder is shared with other components when the caller passes one in.
            chosen = (
                embedder
                or self.config.get("embedder")
                or shared_embedder(self.config.get("embedding_model"))
            )
            self.lr = LrSentiment(chosen, self.config.get("artefact", ARTEFACT))
            self.embedder = chosen
            self.model_id = LR_MODEL_ID
        else:
            self.encoder = encoder or shared_encoder(self.config.get("encoder_artefact"))
            self.model_id = self.encoder.model_id

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        if self.lr is not None:
            from convolens.enrich.embeddings import batch_utterance_embeddings

            vectors = batch_utterance_embeddings(batch, self.lr.embedder)
            return [self._lr_label(doc, v) for doc, v in zip(batch, vectors, strict=True)]
        assert self.encoder is not None
        passes = encoder_pass(batch, self.encoder)
        # Staff turns with a politeness formula are re-read without it, all in one batch.
        redo: list[tuple[int, int, str]] = []
        for d, doc in enumerate(batch):
            roles = {p.participant_id: p.role for p in doc.conversation.participants}
            for i, u in enumerate(doc.conversation.utterances):
                if roles.get(u.participant_id) in STAFF and not u.internal and u.text.strip():
                    remainder = politeness_remainder(u.text)
                    if remainder is not None:
                        redo.append((d, i, remainder))
        rest = [r for _, _, r in redo if r]
        _, heads = self.encoder.encode(rest) if rest else (None, {})
        overrides: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        k = 0
        neutral = np.array([0.0, 1.0, 0.0], dtype=np.float32)
        none = np.eye(len(self.encoder.labels["emotion"]), dtype=np.float32)[0]
        for d, i, remainder in redo:
            if remainder:
                overrides[(d, i)] = (heads["sentiment"][k], heads["emotion"][k])
                k += 1
            else:
                overrides[(d, i)] = (neutral, none)
        out = []
        for d, (doc, found) in enumerate(zip(batch, passes, strict=True)):
            sentiment, emotion = found.heads["sentiment"].copy(), found.heads["emotion"].copy()
            polite = set()
            for (dd, i), (s, e) in overrides.items():
                if dd == d:
                    sentiment[i], emotion[i] = s, e
                    polite.add(i)
            out.append(self._label(doc, sentiment, emotion, polite))
        return out

    def _lr_label(self, doc: Doc, vectors: np.ndarray) -> list[Annotation]:
        assert self.lr is not None
        texts = [u.text for u in doc.conversation.utterances]
        probs = np.zeros((len(texts), 3))
        rows = [i for i, t in enumerate(texts) if t.strip()]
        if rows:
            probs[rows] = self.lr.probabilities(vectors[rows], [texts[i] for i in rows])
        return self._label(doc, probs, None, set())

    def _label(
        self, doc: Doc, probs: np.ndarray, emotion: np.ndarray | None, polite: set[int]
    ) -> list[Annotation]:
        utterances = doc.conversation.utterances
        # Internal notes are agents talking among themselves, not the customer's experience;
        # empty texts have no sentiment to read.
        kept = [i for i, u in enumerate(utterances) if not u.internal and u.text.strip()]
        if not kept:
            return []
        texts = [utterances[i].text for i in kept]
        probs = probs[kept].astype(np.float64)
        scores = [float(p[2] - p[0]) for p in probs]
        weights = np.array([max(1, len(t.split())) for t in texts], dtype=np.float64)
        out: list[Annotation] = []
        emotions_of: dict[int, list[str]] = {}
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        staff_min = float(self.config.get("staff_min_probability", STAFF_MIN_PROBABILITY))
        for row, i in enumerate(kept):
            label = CLASSES[int(probs[row].argmax())]
            # Staff write in a service register: "Glad to help!", "Congrats on the new
            # phone", "this is most likely a temporary issue". That courtesy or bad news
            # delivered is not the agent's feeling, so a staff turn is positive or
            # negative only when the model is sure; the score keeps the lean.
            if (
                label != "neutral"
                and roles.get(utterances[i].participant_id) in STAFF
                and float(probs[row].max()) < staff_min
            ):
                label = "neutral"
            value: dict[str, Any] = {
                "label": label,
                "score": round(scores[row], 4),
                "probabilities": {
                    c: round(float(p), 4) for c, p in zip(CLASSES, probs[row], strict=True)
                },
            }
            if i in polite:
                value["politeness_formula"] = True
            uid = doc.utterance_ids[i]
            out.append(
                Annotation(
                    "sentiment.utterance", value, float(probs[row].max()), uid, [doc.whole(i)]
                )
            )
            if emotion is not None:
                found = self._emotions(doc, i, value["label"], emotion[i])
                emotions_of[row] = [a.value["emotion"] for a in found]
                out.extend(found)
        out.extend(self._participants(doc, kept, probs, scores, weights, emotions_of))
        out.append(self._conversation(doc, kept, probs, scores, weights))
        return out

    def _emotions(self, doc: Doc, i: int, sentiment: str, probs: np.ndarray) -> list[Annotation]:
        assert self.encoder is not None
        names = self.encoder.labels["emotion"]
        uid, text = doc.utterance_ids[i], doc.conversation.utterances[i].text
        out = []
        for column, name in enumerate(names):
            p = float(probs[column])
            if name == "none" or p < EMOTION_THRESHOLD:
                continue
            if (name == "frustration" and sentiment == "positive") or (
                name == "satisfaction" and sentiment == "negative"
            ):
                continue
            value = {"emotion": name, "score": round(p, 4), "source": self.model_id}
            out.append(Annotation("emotion", value, p, uid, [doc.whole(i)]))
        spans = urgency_phrases(text)
        if spans:
            value = {"emotion": "urgency", "score": 1.0, "source": "phrases"}
            evidence = [Evidence(uid, s, e) for s, e in spans]
            out.append(Annotation("emotion", value, 1.0, uid, evidence))
        return out

    def _participants(
        self,
        doc: Doc,
        kept: list[int],
        probs: np.ndarray,
        scores: list[float],
        weights: np.ndarray,
        emotions_of: dict[int, list[str]],
    ) -> list[Annotation]:
        utterances = doc.conversation.utterances
        out = []
        for participant in doc.conversation.participants:
            rows = [
                r
                for r, i in enumerate(kept)
                if utterances[i].participant_id == participant.participant_id
            ]
            if not rows:
                continue
            mean = np.average(probs[rows], axis=0, weights=weights[rows])
            start, end, trajectory = _trajectory([scores[r] for r in rows])
            counts: dict[str, int] = {}
            for r in rows:
                for name in emotions_of.get(r, []):
                    counts[name] = counts.get(name, 0) + 1
            value = {
                "participant_id": participant.participant_id,
                "score": round(float(mean[2] - mean[0]), 4),
                "label": CLASSES[int(mean.argmax())],
                "utterances": len(rows),
                "start": round(start, 4),
                "end": round(end, 4),
                "trajectory": trajectory,
                "emotions": counts,
            }
            evidence = [doc.whole(kept[r]) for r in rows]
            out.append(
                Annotation("sentiment.participant", value, float(mean.max()), None, evidence)
            )
        return out

    def _conversation(
        self,
        doc: Doc,
        kept: list[int],
        probs: np.ndarray,
        scores: list[float],
        weights: np.ndarray,
    ) -> Annotation:
        """Overall sentiment, and how the customer's mood moved from start to end."""
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        utterances = doc.conversation.utterances
        customer = [
            r
            for r, i in enumerate(kept)
            if roles.get(utterances[i].participant_id) == Role.customer
        ]
        rows = customer or list(range(len(kept)))
        start, end, trajectory = _trajectory([scores[r] for r in rows])
        mean = np.average(probs, axis=0, weights=weights)
        lowest = int(np.argmin(scores))
        highest = int(np.argmax(scores))
        evidence: list[Evidence] = [doc.whole(kept[lowest])]
        if highest != lowest:
            evidence.append(doc.whole(kept[highest]))
        return Annotation(
            "sentiment.conversation",
            {
                "score": round(float(mean[2] - mean[0]), 4),
                "label": CLASSES[int(mean.argmax())],
                "start": round(start, 4),
                "end": round(end, 4),
                "trajectory": trajectory,
                "trajectory_basis": "customer" if customer else "all",
                "most_negative": doc.utterance_ids[kept[lowest]],
                "most_positive": doc.utterance_ids[kept[highest]],
            },
            float(mean.max()),
            None,
            evidence,
        )


def _trajectory(scores: list[float]) -> tuple[float, float, str]:
    """(start, end, trajectory): mean score of the first and last third of the turns."""
    third = max(1, math.ceil(len(scores) / 3))
    start = float(np.mean(scores[:third]))
    end = float(np.mean(scores[-third:]))
    change = end - start
    if change >= TRAJECTORY_THRESHOLD:
        return start, end, "improving"
    if change <= -TRAJECTORY_THRESHOLD:
        return start, end, "worsening"
    return start, end, "steady"
