"""Training the intent classifier: fit, cross-validated calibration, out-of-scope threshold.

`fit_intent_model` trains on labelled texts and their embeddings; out-of-fold logits
(k-fold cross-validation, or one 20% hold-out on large sets) calibrate the softmax
temperature, choose the out-of-scope threshold and give the per-intent accuracy that
`convolens taxonomy train` reports. The model itself (features, inference, artefact) is in
`intent_model.py`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from convolens.enrich.embeddings import SentenceEmbedder, shared_embedder
from convolens.enrich.intent_model import (
    CHAR_MIN_DF,
    CHAR_NGRAMS,
    EMBEDDING_WEIGHT,
    FOLDS,
    HOLDOUT_ABOVE,
    MAX_FALSE_REJECTION,
    MODEL_FORMAT,
    OOS_CLASS_WEIGHT,
    WORD_NGRAMS,
    C,
    IntentModel,
    make_vectorizers,
    softmax,
    stack_features,
    vocabulary_terms,
)
from convolens.enrich.taxonomy import OUT_OF_SCOPE, Taxonomy

__all__ = ["choose_threshold", "fit_intent_model", "train_intent_model"]


def _fit_lr(
    texts: list[str],
    labels: np.ndarray,
    embeddings: np.ndarray,
    seed: int,
    background: int | None = None,
) -> tuple[Any, Any, Any]:
    """Vectorizers and logistic regression fitted on one training set."""
    from sklearn.linear_model import LogisticRegression

    word, char = make_vectorizers()
    features = stack_features(word, char, texts, embeddings, fit=True)
    lr = LogisticRegression(C=C, max_iter=3000, random_state=seed)
    weights = np.ones(len(labels))
    if background is not None:
        is_oos = labels == background
        if is_oos.any() and (~is_oos).any():
            mean_intent = np.bincount(labels[~is_oos]).astype(float)
            mean_count = mean_intent[mean_intent > 0].mean()
            weights[is_oos] = OOS_CLASS_WEIGHT * mean_count / is_oos.sum()
    lr.fit(features, labels, sample_weight=weights)
    return word, char, lr


def _logits(word: Any, char: Any, lr: Any, texts: list[str], embeddings: np.ndarray) -> np.ndarray:
    scores: np.ndarray = lr.decision_function(stack_features(word, char, texts, embeddings))
    if scores.ndim == 1:  # scikit-learn returns one column for two classes
        scores = np.stack([-scores, scores], axis=1) / 2
    return scores


def _out_of_fold(
    texts: list[str],
    y: np.ndarray,
    embeddings: np.ndarray,
    n_classes: int,
    seed: int,
    background: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits of examples scored by models that did not see them; rows never held out are
    dropped (the hold-out mode). Returns (row indices, logits over all classes)."""
    from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

    counts = np.bincount(y, minlength=n_classes)
    if len(y) > HOLDOUT_ABOVE:
        splitter: Any = StratifiedShuffleSplit(1, test_size=0.2, random_state=seed)
    else:
        folds = max(2, min(FOLDS, int(counts[counts > 0].min())))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    rows, blocks = [], []
    with warnings.catch_warnings():
        # A class with fewer examples than folds (a short out_of_scope list) only warns.
        warnings.filterwarnings("ignore", message="The least populated class")
        for train, held in splitter.split(texts, y):
            word, char, lr = _fit_lr(
                [texts[i] for i in train], y[train], embeddings[train], seed, background
            )
            block = np.full((len(held), n_classes), -1e9)
            block[:, lr.classes_] = _logits(
                word, char, lr, [texts[i] for i in held], embeddings[held]
            )
            rows.append(held)
            blocks.append(block)
    return np.concatenate(rows), np.vstack(blocks)


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature minimising negative log-likelihood of held-out examples."""
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        log_probs = z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))
        return float(-log_probs.mean())

    result = minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded")
    return float(result.x)


def choose_threshold(
    in_scope: np.ndarray, correct: np.ndarray, out_of_scope: np.ndarray | None = None
) -> float:
    """The out-of-scope threshold on the best intent's probability, from held-out scores.

    `in_scope`: best-intent probability of in-scope examples, `correct`: whether their
    predicted intent was right, `out_of_scope`: best-intent probability of off-topic
    examples (those the background class already rejects count as rejected: pass 0).

    The threshold may reject at most MAX_FALSE_REJECTION of the correct in-scope
    predictions. Within that cap it maximises (share of in-scope examples kept and right) +
    (share of off-topic examples rejected), a balanced score that does not depend on how
    many off-topic examples were written. With no off-topic examples it is the cap itself:
    the 5% quantile of the correct predictions' probabilities.
    """
    kept_right = np.sort(in_scope[correct])
    if not len(kept_right):
        return 0.0
    cap = float(np.quantile(kept_right, MAX_FALSE_REJECTION))
    if out_of_scope is None or not len(out_of_scope):
        return round(cap, 6)
    candidates = np.unique(np.concatenate([[0.0], in_scope, out_of_scope, [cap]]))
    candidates = candidates[candidates <= cap]
    best, best_score = 0.0, -1.0
    for t in candidates:
        score = np.mean((in_scope >= t) & correct) + np.mean(out_of_scope < t)
        if score > best_score + 1e-12:
            best, best_score = float(t), float(score)
    return round(best, 6)


def fit_intent_model(
    texts: Sequence[str],
    labels: Sequence[str],
    embeddings: np.ndarray,
    *,
    oos_texts: Sequence[str] = (),
    oos_embeddings: np.ndarray | None = None,
    threshold: float | None = None,
    taxonomy_version: str = "",
    embedding_model: str = "all-MiniLM-L6-v2",
    calibrate: bool = True,
    seed: int = 0,
) -> IntentModel:
    """Train on labelled texts and their embeddings (the array-level entry point; the eval
    uses it so each benchmark is embedded once). Off-topic examples form the OUT_OF_SCOPE
    class. `calibrate=False` skips the cross-validation (temperature 1, threshold given or 0)."""
    started = time.perf_counter()
    intents = list(dict.fromkeys(labels))
    classes = intents + ([OUT_OF_SCOPE] if len(oos_texts) else [])
    index = {c: i for i, c in enumerate(classes)}
    background = index.get(OUT_OF_SCOPE)
    all_texts = list(texts) + list(oos_texts)
    y = np.array([index[label] for label in labels] + [index.get(OUT_OF_SCOPE, 0)] * len(oos_texts))
    parts = [np.asarray(embeddings, dtype=np.float32)]
    if len(oos_texts):
        if oos_embeddings is None:
            raise ValueError("oos_texts need oos_embeddings")
        parts.append(np.asarray(oos_embeddings, dtype=np.float32))
    vectors = np.vstack(parts)

    temperature, cv, source = 1.0, None, "taxonomy"
    chosen = threshold
    if calibrate:
        rows, oof = _out_of_fold(all_texts, y, vectors, len(classes), seed, background)
        temperature = _temperature(oof, y[rows])
        probs = softmax(oof / temperature)
        predicted = probs.argmax(axis=1)
        intent_cols = [index[c] for c in intents]
        best = probs[:, intent_cols].max(axis=1)
        is_oos = y[rows] == index.get(OUT_OF_SCOPE, -1)
        # Off-topic examples the background class wins are rejected whatever the threshold.
        oos_best = np.where(predicted[is_oos] == index.get(OUT_OF_SCOPE, -1), 0.0, best[is_oos])
        correct = predicted[~is_oos] == y[rows][~is_oos]
        if chosen is None:
            chosen = choose_threshold(best[~is_oos], correct, oos_best if is_oos.any() else None)
            source = "out_of_scope examples" if is_oos.any() else "false-rejection cap"
        cv = _cv_report(classes, y[rows], predicted, best, is_oos, oos_best, chosen)
    word, char, lr = _fit_lr(all_texts, y, vectors, seed, background)
    coef, intercept = lr.coef_, lr.intercept_
    if len(classes) == 2:  # binary LR has one row; expand to a two-class softmax
        coef = np.vstack([-coef[0], coef[0]]) / 2
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    metadata = {
        "format": MODEL_FORMAT,
        "taxonomy_version": taxonomy_version,
        "embedding_model": embedding_model,
        "embedding_dim": int(vectors.shape[1]),
        "examples": len(texts),
        "out_of_scope_examples": len(oos_texts),
        "threshold_source": source if chosen is not None else "none",
        "C": C,
        "embedding_weight": EMBEDDING_WEIGHT,
        "word_ngrams": list(WORD_NGRAMS),
        "char_ngrams": list(CHAR_NGRAMS),
        "char_min_df": CHAR_MIN_DF,
        "cv": cv,
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    return IntentModel(
        classes=classes,
        coef=coef,
        intercept=intercept,
        word_vocab=vocabulary_terms(word),
        word_idf=word.idf_,
        char_vocab=vocabulary_terms(char),
        char_idf=char.idf_,
        temperature=temperature,
        threshold=float(chosen or 0.0),
        metadata=metadata,
    )


def _cv_report(
    classes: list[str],
    y: np.ndarray,
    predicted: np.ndarray,
    best: np.ndarray,
    is_oos: np.ndarray,
    oos_best: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    """Cross-validated figures for the training report: per intent, recall and the intent
    its misses went to most; overall accuracy, and what the threshold does."""
    per_intent: dict[str, Any] = {}
    for k, name in enumerate(classes):
        if name == OUT_OF_SCOPE:
            continue
        rows = np.flatnonzero(y == k)
        if not len(rows):
            continue
        misses = predicted[rows][predicted[rows] != k]
        confused = classes[int(np.bincount(misses).argmax())] if len(misses) else None
        per_intent[name] = {
            "held_out": len(rows),
            "accuracy": round(float(np.mean(predicted[rows] == k)), 4),
            "confused_with": confused,
        }
    inside = ~is_oos
    correct = predicted[inside] == y[inside]
    return {
        "held_out": int(inside.sum()),
        "accuracy": round(float(np.mean(correct)), 4),
        "false_rejection": round(float(np.mean(best[inside][correct] < threshold)), 4)
        if correct.any()
        else 0.0,
        "out_of_scope_recall": round(float(np.mean(oos_best < threshold)), 4)
        if is_oos.any()
        else None,
        "per_intent": per_intent,
    }


def train_intent_model(
    taxonomy: Taxonomy, embedder: SentenceEmbedder | None = None, *, seed: int = 0
) -> IntentModel:
    """Train the classifier on a taxonomy's examples (and its out-of-scope examples)."""
    embedder = embedder or shared_embedder()
    texts = [e for intent in taxonomy.intents for e in intent.examples]
    labels = [intent.name for intent in taxonomy.intents for _ in intent.examples]
    vectors = embedder.embed(texts + list(taxonomy.out_of_scope))
    model = fit_intent_model(
        texts,
        labels,
        vectors[: len(texts)],
        oos_texts=taxonomy.out_of_scope,
        oos_embeddings=vectors[len(texts) :],
        threshold=taxonomy.threshold,
        taxonomy_version=taxonomy.taxonomy_version,
        embedding_model=embedder.model_id,
        seed=seed,
    )
    model._embedder = embedder
    return model
