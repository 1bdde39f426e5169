"""The intent classifier a taxonomy trains: embeddings and n-grams into one logistic regression.

Features are the shared all-MiniLM-L6-v2 sentence embedding (scaled by EMBEDDING_WEIGHT so
it is not drowned by the sparse part) beside TF-IDF word 1-2-grams and character 2-5-grams
(within word boundaries). The embedding carries paraphrase; the n-grams carry the exact
product words ("invoice", "CSV", "2FA") that a general-purpose embedding blurs. On the
public dev sets this beats embeddings + logistic regression by 1-4 points of accuracy
(eval/intents.py prints both side by side).

Training (`intent_training.py`) also computes out-of-fold logits (k-fold cross-validation), and
uses them to:
- calibrate a softmax temperature (minimum negative log-likelihood), so probabilities
  read as probabilities;
- choose the out-of-scope threshold on the maximum intent probability (`choose_threshold`);
- report per-intent cross-validated accuracy, so teams see which intents are weak.

A taxonomy's `out_of_scope` examples become one more class, OUT_OF_SCOPE: on CLINC150 an
explicit background class rejects about half the off-topic queries by itself, and the
threshold catches more. The model is saved as `.npz` arrays plus JSON (no pickle): the
vocabularies and idf weights, the coefficients, and the taxonomy version it was trained
for, which `IntentModel.load` checks.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from convolens.enrich.embeddings import SentenceEmbedder, shared_embedder
from convolens.enrich.taxonomy import OUT_OF_SCOPE

__all__ = [
    "MAX_FALSE_REJECTION",
    "MODEL_FORMAT",
    "IntentModel",
    "IntentModelMismatchError",
    "make_vectorizers",
    "ngram_text",
    "softmax",
    "stack_features",
    "vocabulary_terms",
]

# Bumped when features or artefact layout change: cached models of another format retrain.
MODEL_FORMAT = "minilm-tfidf-lr-1"
# Tuned on Banking77/HWU64 dev splits (eval/intents.py): the embedding x3 beside unit-norm
# TF-IDF blocks, C=20 (little regularisation: the classes are many and the examples few).
EMBEDDING_WEIGHT = 3.0
C = 20.0
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
CHAR_MIN_DF = 2
# The out-of-scope class weighs as much in training as an average intent, however many
# off-topic examples were written: a long list must not make it swallow real intents.
OOS_CLASS_WEIGHT = 1.0
FOLDS = 5
# Above this many examples one 20% hold-out replaces k folds: Banking77-sized training sets
# would otherwise spend minutes on calibration alone.
HOLDOUT_ABOVE = 3000
# The automatic threshold may reject at most this share of in-scope examples the
# cross-validated model got right: off-topic recall is not bought with the real intents.
MAX_FALSE_REJECTION = 0.05
_TAG = re.compile(r"<[A-Z][A-Z_]*>")


class IntentModelMismatchError(ValueError):
    """An artefact trained for another taxonomy version (or feature format) than asked for."""


def ngram_text(text: str) -> str:
    """Text for the n-gram features: redaction tags like <PERSON> removed, they name no intent."""
    return " ".join(_TAG.sub(" ", text).split())


def make_vectorizers(
    word_vocab: list[str] | None = None, char_vocab: list[str] | None = None
) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    word = TfidfVectorizer(ngram_range=WORD_NGRAMS, sublinear_tf=True, vocabulary=word_vocab)
    # Character n-grams seen once are mostly noise and make the model (and its fit) larger;
    # on the Banking77 10-shot dev split dropping them cost under 0.1 point.
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=CHAR_NGRAMS,
        sublinear_tf=True,
        min_df=CHAR_MIN_DF if char_vocab is None else 1,
        vocabulary=char_vocab,
    )
    return word, char


def stack_features(
    word: Any, char: Any, texts: Sequence[str], embeddings: np.ndarray, *, fit: bool = False
) -> Any:
    """The feature matrix: weighted embedding beside the word and character TF-IDF blocks."""
    cleaned = [ngram_text(t) for t in texts]
    word_part = word.fit_transform(cleaned) if fit else word.transform(cleaned)
    char_part = char.fit_transform(cleaned) if fit else char.transform(cleaned)
    dense = np.asarray(embeddings, dtype=np.float32) * EMBEDDING_WEIGHT
    return sparse.hstack([sparse.csr_matrix(dense), word_part, char_part]).tocsr()


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class IntentModel:
    """A trained classifier over `classes` (the taxonomy's intents, then OUT_OF_SCOPE if the
    taxonomy gave off-topic examples). Build with `train_intent_model` or `IntentModel.load`."""

    def __init__(
        self,
        *,
        classes: list[str],
        coef: np.ndarray,
        intercept: np.ndarray,
        word_vocab: list[str],
        word_idf: np.ndarray,
        char_vocab: list[str],
        char_idf: np.ndarray,
        temperature: float,
        threshold: float,
        metadata: dict[str, Any],
        embedder: SentenceEmbedder | None = None,
    ) -> None:
        self.classes = list(classes)
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.temperature = float(temperature)
        self.threshold = float(threshold)
        self.metadata = metadata
        self.taxonomy_version: str = metadata.get("taxonomy_version", "")
        self.embedding_model: str = metadata.get("embedding_model", "")
        self.intents = [c for c in self.classes if c != OUT_OF_SCOPE]
        self._background = self.classes.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in classes else None
        self._word, self._char = make_vectorizers(word_vocab, char_vocab)
        self._word.idf_ = np.asarray(word_idf, dtype=np.float64)
        self._char.idf_ = np.asarray(char_idf, dtype=np.float64)
        self._embedder = embedder
        width = int(metadata.get("embedding_dim", 0)) + len(word_vocab) + len(char_vocab)
        if self.coef.shape != (len(self.classes), width) or len(self.intercept) != len(classes):
            raise ValueError(f"coefficients {self.coef.shape} do not fit {len(classes)} classes")

    @property
    def embedder(self) -> SentenceEmbedder:
        if self._embedder is None:
            default = self.embedding_model in ("", "all-MiniLM-L6-v2")
            self._embedder = shared_embedder(None if default else self.embedding_model)
        return self._embedder

    def features(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> Any:
        if embeddings is None:
            embeddings = self.embedder.embed(list(texts))
        return stack_features(self._word, self._char, texts, embeddings)

    def logits(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        scores = self.features(texts, embeddings) @ self.coef.T.astype(np.float64)
        return np.asarray(scores) + self.intercept

    def predict_proba(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """(len(texts), len(classes)) calibrated probabilities; rows sum to 1."""
        return softmax(self.logits(texts, embeddings) / self.temperature)

    def decide(
        self, probs: np.ndarray, threshold: float | None = None
    ) -> tuple[list[str], np.ndarray]:
        """The label of each row (an intent, or OUT_OF_SCOPE) and its best intent's probability.

        Out of scope when the background class wins or no intent reaches the threshold.
        """
        threshold = self.threshold if threshold is None else threshold
        intent_probs = self.intent_probs(probs)
        best = intent_probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
        best_prob = intent_probs.max(axis=1) if len(probs) else np.zeros(0)
        background = (
            probs.argmax(axis=1) == self._background
            if self._background is not None
            else np.zeros(len(probs), dtype=bool)
        )
        labels = [
            OUT_OF_SCOPE if background[i] or best_prob[i] < threshold else self.intents[best[i]]
            for i in range(len(probs))
        ]
        return labels, best_prob

    def intent_probs(self, probs: np.ndarray) -> np.ndarray:
        """The columns of `probs` that are intents (without the out-of-scope class)."""
        if self._background is None:
            return probs
        return np.delete(probs, self._background, axis=1)

    def predict(
        self,
        texts: Sequence[str],
        embeddings: np.ndarray | None = None,
        *,
        threshold: float | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """Labels (intent names or OUT_OF_SCOPE) and the (n, len(classes)) probabilities."""
        probs = self.predict_proba(texts, embeddings)
        labels, _ = self.decide(probs, threshold)
        return labels, probs

    def save(self, path: str | Path) -> Path:
        """Write the `.npz` artefact atomically (arrays and JSON text only, no pickle)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            classes=np.asarray(self.classes, dtype=str),
            coef=self.coef,
            intercept=self.intercept,
            word_vocab=np.asarray(json.dumps(vocabulary_terms(self._word), ensure_ascii=False)),
            word_idf=np.asarray(self._word.idf_, dtype=np.float32),
            char_vocab=np.asarray(json.dumps(vocabulary_terms(self._char), ensure_ascii=False)),
            char_idf=np.asarray(self._char.idf_, dtype=np.float32),
            temperature=np.asarray(self.temperature),
            threshold=np.asarray(self.threshold),
            metadata=np.asarray(json.dumps(self.metadata, ensure_ascii=False)),
        )
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_bytes(buffer.getvalue())
        partial.replace(path)
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        taxonomy_version: str | None = None,
        embedder: SentenceEmbedder | None = None,
    ) -> IntentModel:
        """Read an artefact; refuses one trained for another taxonomy version or format."""
        with np.load(path, allow_pickle=False) as data:
            metadata: dict[str, Any] = json.loads(str(data["metadata"]))
            arrays = {k: data[k] for k in data.files}
        if metadata.get("format") != MODEL_FORMAT:
            raise IntentModelMismatchError(
                f"{path}: intent model format {metadata.get('format')!r}, this convolens reads "
                f"{MODEL_FORMAT!r}: retrain it (convolens taxonomy train)"
            )
        trained_for = metadata.get("taxonomy_version")
        if taxonomy_version is not None and trained_for != taxonomy_version:
            raise IntentModelMismatchError(
                f"{path}: trained for taxonomy version {trained_for!r}, not {taxonomy_version!r}: "
                "retrain it for this taxonomy (convolens taxonomy train TAXONOMY --output MODEL)"
            )
        if embedder is not None and embedder.model_id != metadata.get("embedding_model"):
            raise IntentModelMismatchError(
                f"{path}: trained on {metadata.get('embedding_model')!r} embeddings, "
                f"not {embedder.model_id!r}"
            )
        return cls(
            classes=[str(c) for c in arrays["classes"]],
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            word_vocab=json.loads(str(arrays["word_vocab"])),
            word_idf=arrays["word_idf"],
            char_vocab=json.loads(str(arrays["char_vocab"])),
            char_idf=arrays["char_idf"],
            temperature=float(arrays["temperature"]),
            threshold=float(arrays["threshold"]),
            metadata=metadata,
            embedder=embedder,
        )


def vocabulary_terms(vectorizer: Any) -> list[str]:
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    return sorted(vocabulary, key=vocabulary.__getitem__)
