"""Sentiment of utterances, participants and whole conversations.

The classifier is a 3-class (negative / neutral / positive) multinomial logistic regression
over all-MiniLM-L6-v2 sentence embeddings (384-d) plus VADER's four polarity scores,
trained by `scripts/train_sentiment.py` on SST-2 train and TweetEval val. Its weights ship
as a small `.npz` (arrays and JSON text, no pickle), so inference is one matrix product on
top of the shared embeddings.

Scores are P(positive) - P(negative), in [-1, 1]. Participant and conversation labels
average the utterances' probabilities weighted by length in words (a long complaint
weighs more than "ok"), and take the argmax of that mean, so every label is the
classifier's argmax and the score is always the mean of the utterance scores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.embeddings import (
    SentenceEmbedder,
    batch_utterance_embeddings,
    shared_embedder,
)
from convolens.model import Role

__all__ = [
    "ARTEFACT",
    "TRAJECTORY_THRESHOLD",
    "VADER_FEATURES",
    "SentimentComponent",
    "SentimentModel",
    "vader_features",
]

ARTEFACT = Path(__file__).parent / "data" / "sentiment_minilm_lr.npz"
VADER_FEATURES = ("vader_neg", "vader_neu", "vader_pos", "vader_compound")
# A change of at least 0.2 in mean score (a tenth of the [-1, 1] range) between the first
# and the last third of the customer's turns counts as a trajectory; smaller moves are
# within the noise of single-utterance scores and are reported as "steady".
TRAJECTORY_THRESHOLD = 0.2


def vader_features(analyzer: Any, texts: list[str]) -> np.ndarray:
    """(len(texts), 4) VADER neg, neu, pos, compound: the lexicon's view, beside the embedding."""
    rows = []
    for text in texts:
        scores = analyzer.polarity_scores(text)
        rows.append([scores["neg"], scores["neu"], scores["pos"], scores["compound"]])
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), len(VADER_FEATURES))


class SentimentModel:
    """The trained logistic regression, read from the `.npz` artefact without pickle."""

    def __init__(self, path: Path | str = ARTEFACT) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.coef = np.asarray(data["coef"], dtype=np.float64)
            self.intercept = np.asarray(data["intercept"], dtype=np.float64)
            self.classes = [str(c) for c in data["classes"]]
            self.feature_names = [str(f) for f in data["feature_names"]]
            self.metadata: dict[str, Any] = json.loads(str(data["metadata"]))
        if self.coef.shape != (len(self.classes), len(self.feature_names)):
            raise ValueError(f"{path}: coef shape {self.coef.shape} does not fit its names")

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Softmax of the linear scores, as scikit-learn's multinomial model computes it."""
        logits = features.astype(np.float64) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probs: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return probs


class SentimentComponent(Component):
    """Labels each utterance, participant and conversation with a sentiment and a score."""

    name = "sentiment"
    version = "1"
    assigns: ClassVar[tuple[str, ...]] = (
        "sentiment.utterance",
        "sentiment.participant",
        "sentiment.conversation",
    )
    description = "Negative/neutral/positive per utterance, participant and conversation."
    model_id = "minilm-vader-lr-v1"

    def __init__(
        self, config: dict[str, Any] | None = None, *, embedder: SentenceEmbedder | None = None
    ) -> None:
        super().__init__(config)
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.model = SentimentModel(self.config.get("artefact", ARTEFACT))
        # The embedder is shared with other components when the caller passes one in.
        self.embedder = (
            embedder
            or self.config.get("embedder")
            or shared_embedder(self.config.get("embedding_model"))
        )
        self.vader = SentimentIntensityAnalyzer()
        self._index = {c: self.model.classes.index(c) for c in ("negative", "positive")}

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        embeddings = batch_utterance_embeddings(batch, self.embedder)
        return [self._label(doc, vectors) for doc, vectors in zip(batch, embeddings, strict=True)]

    def _score(self, probs: np.ndarray) -> float:
        return float(probs[self._index["positive"]] - probs[self._index["negative"]])

    def _label(self, doc: Doc, vectors: np.ndarray) -> list[Annotation]:
        utterances = doc.conversation.utterances
        # Internal notes are agents talking among themselves, not the customer's experience;
        # empty texts have no sentiment to read.
        kept = [i for i, u in enumerate(utterances) if not u.internal and u.text.strip()]
        if not kept:
            return []
        texts = [utterances[i].text for i in kept]
        features = np.hstack([vectors[kept], vader_features(self.vader, texts)])
        probs = self.model.predict_proba(features)
        scores = [self._score(p) for p in probs]
        weights = np.array([max(1, len(t.split())) for t in texts], dtype=np.float64)

        out: list[Annotation] = []
        for row, i in enumerate(kept):
            out.append(
                Annotation(
                    "sentiment.utterance",
                    {
                        "label": self.model.classes[int(probs[row].argmax())],
                        "score": round(scores[row], 4),
                        "probabilities": self._probabilities(probs[row]),
                    },
                    float(probs[row].max()),
                    doc.utterance_ids[i],
                    [doc.whole(i)],
                )
            )

        for participant in doc.conversation.participants:
            rows = [
                r
                for r, i in enumerate(kept)
                if utterances[i].participant_id == participant.participant_id
            ]
            if not rows:
                continue
            mean = np.average(probs[rows], axis=0, weights=weights[rows])
            out.append(
                Annotation(
                    "sentiment.participant",
                    {
                        "participant_id": participant.participant_id,
                        "score": round(self._score(mean), 4),
                        "label": self.model.classes[int(mean.argmax())],
                        "utterances": len(rows),
                    },
                    float(mean.max()),
                    None,
                    [doc.whole(kept[r]) for r in rows],
                )
            )

        out.append(self._conversation(doc, kept, probs, scores, weights))
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
            r for r, i in enumerate(kept) if roles[utterances[i].participant_id] == Role.customer
        ]
        # The trajectory follows the customer when we know who that is: agents stay polite
        # throughout, so their turns would flatten any change. Otherwise everyone's turns.
        rows = customer or list(range(len(kept)))
        third = max(1, math.ceil(len(rows) / 3))
        start = float(np.mean([scores[r] for r in rows[:third]]))
        end = float(np.mean([scores[r] for r in rows[-third:]]))
        change = end - start
        if change >= TRAJECTORY_THRESHOLD:
            trajectory = "improving"
        elif change <= -TRAJECTORY_THRESHOLD:
            trajectory = "worsening"
        else:
            trajectory = "steady"

        mean = np.average(probs, axis=0, weights=weights)
        lowest = int(np.argmin(scores))
        highest = int(np.argmax(scores))
        evidence: list[Evidence] = [doc.whole(kept[lowest])]
        if highest != lowest:
            evidence.append(doc.whole(kept[highest]))
        return Annotation(
            "sentiment.conversation",
            {
                "score": round(self._score(mean), 4),
                "label": self.model.classes[int(mean.argmax())],
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

    def _probabilities(self, probs: np.ndarray) -> dict[str, float]:
        return {c: round(float(p), 4) for c, p in zip(self.model.classes, probs, strict=True)}
