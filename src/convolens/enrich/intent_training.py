"""Training the intent classifier: fit, cross-validated calibration, out-of-scope threshold.

`fit_intent_model` trains on labelled texts and their embeddings; out-of-fold scores
(5-fold cross-validation, 3-fold on large sets) calibrate the softmax
temperature, choose the out-of-scope threshold and give the per-intent accuracy that
`convolens taxonomy train` reports. The model itself (features, inference, artefact) is in
`intent_model.py`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convolens.enrich.embeddings import SentenceEmbedder, shared_embedder
from convolens.enrich.intent_model import (
    CHAR_MIN_DF,
    CHAR_NGRAMS,
    EMBEDDING_WEIGHT,
    FEWER_FOLDS_ABOVE,
    FOLDS,
    KNN_K,
    KNN_SCORE_WEIGHT,
    KNN_WEIGHT,
    LARGE_FOLDS,
    MAX_FALSE_REJECTION,
    MODEL_FORMAT,
    OOS_CLASS_WEIGHT,
    TARGET_REJECTION,
    WORD_NGRAMS,
    C,
    IntentModel,
    blend,
    in_scope_score,
    knn_scores,
    make_vectorizers,
    softmax,
    stack_features,
    unit_rows,
    vocabulary_terms,
)
from convolens.enrich.taxonomy import OUT_OF_SCOPE, Taxonomy

__all__ = ["HeldOut", "choose_threshold", "fit_intent_model", "train_intent_model"]


@dataclass(frozen=True)
class HeldOut:
    """Labelled examples (intent names, or OUT_OF_SCOPE) that the encoder never trained on.

    With a fine-tuned encoder, k-fold scores of its own training examples are too sure of
    themselves: the encoder has already pulled each one towards its intent, so a threshold
    placed on them would reject far more new text than intended. These examples are
    scored instead by a head fitted without them, which is how new text will be scored;
    then they join the final head's training set."""

    texts: Sequence[str]
    labels: Sequence[str]
    embeddings: np.ndarray
    # The fine-tuned encoder's head probabilities for these texts (columns = the classes).
    head: np.ndarray | None = None


def _fit_linear(
    texts: list[str],
    labels: np.ndarray,
    embeddings: np.ndarray,
    seed: int,
    background: int | None = None,
) -> tuple[Any, Any, Any]:
    """Vectorizers and the linear SVM fitted on one training set."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    word, char = make_vectorizers()
    features = stack_features(word, char, texts, embeddings, fit=True)
    svm = LinearSVC(C=C, max_iter=5000, random_state=seed)
    weights = np.ones(len(labels))
    if background is not None:
        is_oos = labels == background
        if is_oos.any() and (~is_oos).any():
            mean_intent = np.bincount(labels[~is_oos]).astype(float)
            mean_count = mean_intent[mean_intent > 0].mean()
            weights[is_oos] = OOS_CLASS_WEIGHT * mean_count / is_oos.sum()
    with warnings.catch_warnings():
        # Not converging to the last decimal within max_iter changes no decision.
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm.fit(features, labels, sample_weight=weights)
    return word, char, svm


def _linear_parts(svm: Any) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and intercepts with one row per class (two for a binary problem)."""
    coef, intercept = np.asarray(svm.coef_), np.asarray(svm.intercept_)
    if coef.shape[0] == 1:  # scikit-learn keeps one row for two classes
        coef = np.vstack([-coef[0], coef[0]]) / 2
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    return coef, intercept


def _scores(
    word: Any,
    char: Any,
    svm: Any,
    texts: list[str],
    embeddings: np.ndarray,
    memory: tuple[np.ndarray, np.ndarray],
    n_classes: int,
) -> np.ndarray:
    """Linear and neighbour scores side by side over all n_classes (classes absent from
    this fit score very low)."""
    coef, intercept = _linear_parts(svm)
    linear = np.full((len(texts), n_classes), -10.0)
    features = stack_features(word, char, texts, embeddings)
    linear[:, svm.classes_] = np.asarray(features @ coef.T) + intercept
    neighbours = knn_scores(embeddings, memory[0], memory[1], n_classes)
    return np.hstack([linear, neighbours])


def _out_of_fold(
    texts: list[str],
    y: np.ndarray,
    embeddings: np.ndarray,
    n_classes: int,
    seed: int,
    background: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of examples by models that did not see them (each example is held out once).
    Returns (row indices, linear scores then neighbour scores
    over all classes, side by side)."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    most = LARGE_FOLDS if len(y) > FEWER_FOLDS_ABOVE else FOLDS
    folds = max(2, min(most, int(counts[counts > 0].min())))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    rows, blocks = [], []
    with warnings.catch_warnings():
        # A class with fewer examples than folds (a short out_of_scope list) only warns.
        warnings.filterwarnings("ignore", message="The least populated class")
        for train, held in splitter.split(texts, y):
            word, char, svm = _fit_linear(
                [texts[i] for i in train], y[train], embeddings[train], seed, background
            )
            memory = (unit_rows(embeddings[train]), y[train])
            block = _scores(
                word, char, svm, [texts[i] for i in held], embeddings[held], memory, n_classes
            )
            rows.append(held)
            blocks.append(block)
    return np.concatenate(rows), np.vstack(blocks)


def _held_out_scores(
    texts: list[str],
    y: np.ndarray,
    embeddings: np.ndarray,
    fitted: int,
    n_classes: int,
    seed: int,
    background: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of rows `fitted:` by one model fitted on rows `:fitted` (as `_out_of_fold`)."""
    word, char, svm = _fit_linear(texts[:fitted], y[:fitted], embeddings[:fitted], seed, background)
    memory = (unit_rows(embeddings[:fitted]), y[:fitted])
    rows = np.arange(fitted, len(y))
    block = _scores(word, char, svm, texts[fitted:], embeddings[fitted:], memory, n_classes)
    return rows, block


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


def _confidence_scale(raw: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """(slope, offset) of the logistic map from the in-scope score to the chance that the
    best intent is right, fitted on held-out rows (Platt scaling); (1, 0) when every row
    was right or every row wrong, which leaves nothing to fit."""
    from sklearn.linear_model import LogisticRegression

    if right.all() or not right.any():
        return 1.0, 0.0
    fitted = LogisticRegression(C=100.0).fit(raw.reshape(-1, 1), right)
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def choose_threshold(
    in_scope: np.ndarray, correct: np.ndarray, out_of_scope: np.ndarray | None = None
) -> float:
    """The out-of-scope threshold on the in-scope confidence, from held-out scores.

    `in_scope`: confidence of the held-out in-scope examples (0 where the background class
    won), `correct`: whether their predicted intent was right (kept for the report),
    `out_of_scope`: confidence of held-out off-topic examples, if the taxonomy has any.

    Without off-topic examples the threshold rejects TARGET_REJECTION of the held-out
    in-scope examples (the least confident, mostly wrong ones). With them, off-topic text is
    expected, so it spends MAX_FALSE_REJECTION. The off-topic examples themselves do not
    place it: a team's list is short, and a threshold fitted to the last of them it can
    still catch lands wherever that one sits. (The previous rule did that: maximise kept
    and right + off-topic rejected under the cap. On a CLINC150 hold-out of train +
    oos_train the budget rule caught 90% of held-out off-topic queries; the fitted rule,
    seen on val, stopped at 66%.) They teach the background class instead, and their
    cross-validated recall is reported.
    The shipped model, trained on all examples, is surer of itself than the held-out
    models, so on new in-scope text it rejects about this share or less.
    """
    if not len(in_scope):
        return 0.0
    budget = MAX_FALSE_REJECTION if out_of_scope is not None and len(out_of_scope) else None
    return round(float(np.quantile(in_scope, budget or TARGET_REJECTION)), 6)


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
    held_out: HeldOut | None = None,
    head_weight: float = 0.0,
    seed: int = 0,
) -> IntentModel:
    """Train on labelled texts and their embeddings (the array-level entry point; the eval
    uses it so each benchmark is embedded once). Off-topic examples form the OUT_OF_SCOPE
    class. `calibrate=False` skips the cross-validation (temperature 1, threshold given or 0).
    With `held_out` (a fine-tuned encoder's unseen examples) those examples calibrate
    instead of k-fold cross-validation, then join the training set."""
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
    fitted = len(all_texts)
    head = held_out.head if held_out is not None and head_weight else None
    if held_out is not None and len(held_out.texts):
        unknown = sorted(set(held_out.labels) - set(index))
        if unknown:
            raise ValueError(f"held-out labels not among the training classes: {unknown[:5]}")
        all_texts += list(held_out.texts)
        y = np.concatenate([y, [index[label] for label in held_out.labels]])
        vectors = np.vstack([vectors, np.asarray(held_out.embeddings, dtype=np.float32)])

    temperature, cv, source, scale = 1.0, None, "taxonomy", (1.0, 0.0)
    chosen = threshold
    if calibrate:
        if fitted < len(all_texts):
            rows, oof = _held_out_scores(
                all_texts, y, vectors, fitted, len(classes), seed, background
            )
        else:
            rows, oof = _out_of_fold(all_texts, y, vectors, len(classes), seed, background)
        linear, neighbours = oof[:, : len(classes)], oof[:, len(classes) :]
        # The encoder's head only where its rows are the held-out ones (fine-tuned path).
        use_head = head if fitted < len(all_texts) else None
        logits = blend(linear, neighbours, use_head, head_weight)
        temperature = _temperature(logits, y[rows])
        probs = softmax(logits / temperature)
        predicted = probs.argmax(axis=1)
        is_oos = y[rows] == index.get(OUT_OF_SCOPE, -1)
        right = (predicted == y[rows]) & ~is_oos
        raw = in_scope_score(linear, neighbours, len(intents))
        scale = _confidence_scale(raw, right)
        # Rows the background class wins are rejected whatever the threshold: confidence 0.
        won = predicted == index.get(OUT_OF_SCOPE, -1)
        confidence = np.where(won, 0.0, 1.0 / (1.0 + np.exp(-(scale[0] * raw + scale[1]))))
        correct = right[~is_oos]
        if chosen is None:
            off_topic = confidence[is_oos] if is_oos.any() else None
            chosen = choose_threshold(confidence[~is_oos], correct, off_topic)
            source = "out_of_scope examples" if is_oos.any() else "target rejection"
        cv = _cv_report(classes, y[rows], predicted, confidence, is_oos, confidence[is_oos], chosen)
    word, char, svm = _fit_linear(all_texts, y, vectors, seed, background)
    coef, intercept = _linear_parts(svm)
    metadata = {
        "format": MODEL_FORMAT,
        "taxonomy_version": taxonomy_version,
        "embedding_model": embedding_model,
        "embedding_dim": int(vectors.shape[1]),
        "examples": int((y != index.get(OUT_OF_SCOPE, -1)).sum()),
        "out_of_scope_examples": int((y == index.get(OUT_OF_SCOPE, -1)).sum()),
        "calibration": "held out" if fitted < len(all_texts) else "k-fold",
        "head_weight": head_weight if head is not None and fitted < len(all_texts) else 0.0,
        "threshold_source": source if chosen is not None else "none",
        "C": C,
        "knn_k": KNN_K,
        "knn_weight": KNN_WEIGHT,
        "knn_score_weight": KNN_SCORE_WEIGHT,
        "confidence_scale": [round(scale[0], 6), round(scale[1], 6)],
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
        memory=unit_rows(vectors),
        memory_labels=y,
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
    # In-scope examples rejected: below the threshold, or won by the background class.
    background = classes.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in classes else -1
    rejected = (best[inside] < threshold) | (predicted[inside] == background)
    return {
        "held_out": int(inside.sum()),
        "accuracy": round(float(np.mean(correct)), 4),
        "false_rejection": round(float(np.mean(rejected)), 4) if inside.any() else 0.0,
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
