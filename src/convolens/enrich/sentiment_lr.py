"""The first sentiment model, kept loadable by name for comparison (`model: minilm-vader-lr-v1`).

A 3-class (negative / neutral / positive) multinomial logistic regression over
all-MiniLM-L6-v2 sentence embeddings (384-d) plus VADER's four polarity scores, trained by
`scripts/train_sentiment.py` on SST-2 train and TweetEval val. Its weights ship as a small
`.npz` (arrays and JSON text, no pickle), so inference is one matrix product on top of the
shared embeddings. The default is now the conversation encoder (`sentiment.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ARTEFACT", "LR_MODEL_ID", "VADER_FEATURES", "SentimentModel", "vader_features"]

ARTEFACT = Path(__file__).parent / "data" / "sentiment_minilm_lr.npz"
LR_MODEL_ID = "minilm-vader-lr-v1"
VADER_FEATURES = ("vader_neg", "vader_neu", "vader_pos", "vader_compound")


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


class LrSentiment:
    """Utterance probabilities (negative, neutral, positive) from the LR model."""

    model_id = LR_MODEL_ID

    def __init__(self, embedder: Any, artefact: Path | str = ARTEFACT) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.model = SentimentModel(artefact)
        self.embedder = embedder
        self.vader = SentimentIntensityAnalyzer()
        order = [self.model.classes.index(c) for c in ("negative", "neutral", "positive")]
        self._order = np.array(order)

    def probabilities(self, vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        features = np.hstack([vectors, vader_features(self.vader, texts)])
        probs: np.ndarray = self.model.predict_proba(features)[:, self._order]
        return probs
