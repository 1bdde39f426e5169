"""Intent classifier dev figures: convolens' model beside the previous one, in one run.

Datasets (/work/shared/data/intents; only train/dev splits are here, so figures are dev):
- Banking77: train.csv only, read through the taxonomy loader as published (4 repeated
  queries dropped, `reverted_card_payment?` normalised). Fixed, seeded splits of it:
  dev = a stratified 20% (train_test_split, random_state=0), reported here; the other 80%
  trains. The constants of the model (C, k, weights) were tuned on a split inside that
  80% (a stratified 20% of it, random_state=1: `--tune` reports on it), never on dev.
- CLINC150: train -> val (3,000 in-scope) and oos_val (100 off-topic); oos_train (100)
  are the taxonomy's out_of_scope examples. The threshold rule was chosen on a 20%
  hold-out of train + oos_train, never on val. (`--datasets clinc150-no-oos`: the frozen
  models again without oos_train.)
- HWU64 (`--datasets ...,hwu64`): train -> valid.

Models, each trained and thresholded exactly as `convolens taxonomy train` would (the
threshold from the training examples' own cross-validation, and from out_of_scope
examples where the taxonomy has them), and each deciding as the component does:
- "previous": the model shipped before (logistic regression C=20 on the embedding and
  TF-IDF n-grams; threshold: the 5% quantile of correct held-out predictions);
- "convolens": `intent_training.fit_intent_model` (linear SVM + nearest-neighbour blend;
  threshold on the in-scope confidence: 2% of held-out in-scope examples rejected without
  out_of_scope examples, 3% with them);
- "fine-tuned": `convolens taxonomy train --fine-tune` (intent_finetune.py): MiniLM
  fine-tuned on the same training part (10% of each class held out to calibrate), int8
  ONNX, the same SVM + neighbour head on its vectors; its notes line gives the head alone,
  steps, size and encoding speed. `--fine-tune-settings '{"epochs": 2}'` overrides the
  recipe (for the tuning split);
- "emb+LR" (top-1 only): scikit-learn's LogisticRegression on the frozen embedding alone.
The frozen models share the all-MiniLM-L6-v2 embeddings.

Figures: top-1 = the best intent, whatever the threshold; as labelled = the label the
component writes (a rejected in-scope query counts as wrong); rejected = in-scope queries
labelled out_of_scope; OOS recall = off-topic queries labelled out_of_scope.

    .venv/bin/python eval/intents.py --cache .cache/intent_eval --models convolens,fine-tuned
    (--models picks among previous,convolens,fine-tuned; --datasets among
    banking77,clinc150,clinc150-no-oos,hwu64; the fine-tunes take minutes each on 2 cores)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split

from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.intent_model import blend, make_vectorizers, softmax, stack_features
from convolens.enrich.intent_training import fit_intent_model, train_intent_model
from convolens.enrich.taxonomy import DEFAULT_TAXONOMY, OUT_OF_SCOPE, load_taxonomy


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray
    vectors: np.ndarray

    def take(self, rows: np.ndarray) -> Split:
        return Split([self.texts[i] for i in rows], self.labels[rows], self.vectors[rows])


class Embeddings:
    """Embeds texts once; with --cache, keeps the vectors on disk between runs."""

    def __init__(self, cache: Path | None) -> None:
        self.model = SentenceEmbedder()
        self.cache = cache

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.cache is None:
            return self.model.embed(texts)
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = self.cache / f"{key}.npy"
        if path.exists():
            return np.load(path)
        vectors = self.model.embed(texts)
        self.cache.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors


# A trained classifier: (texts, vectors) -> (labels written, best intent per row)
Predict = Callable[[list[str], np.ndarray], tuple[np.ndarray, np.ndarray]]


def previous_model(train: Split, oos: Split | None) -> Predict:
    """The model shipped before this one, re-created: LR C=20 on the same features, one
    20% hold-out (5 folds under 3,000 examples) for temperature and threshold, the
    threshold the 5% quantile of correct held-out predictions (balanced score under that
    cap when off-topic examples exist)."""
    from scipy.optimize import minimize_scalar
    from sklearn.model_selection import StratifiedKFold

    oos_texts = oos.texts if oos is not None else []
    intents = list(dict.fromkeys(train.labels))
    classes = intents + ([OUT_OF_SCOPE] if oos_texts else [])
    index = {c: i for i, c in enumerate(classes)}
    texts = train.texts + oos_texts
    y = np.array([index[c] for c in train.labels] + [len(intents)] * len(oos_texts))
    vectors = np.vstack([train.vectors] + ([oos.vectors] if oos is not None else []))

    def fit(rows: np.ndarray) -> tuple[object, object, LogisticRegression]:
        word, char = make_vectorizers()
        features = stack_features(word, char, [texts[i] for i in rows], vectors[rows], fit=True)
        weights = np.ones(len(rows))
        is_oos = y[rows] == index.get(OUT_OF_SCOPE, -1)
        if is_oos.any():
            counts = np.bincount(y[rows][~is_oos])
            weights[is_oos] = counts[counts > 0].mean() / is_oos.sum()
        lr = LogisticRegression(C=20.0, max_iter=3000, random_state=0)
        lr.fit(features, y[rows], sample_weight=weights)
        return word, char, lr

    def logits(model: tuple[object, object, LogisticRegression], t: list[str], v: np.ndarray):
        word, char, lr = model
        out = np.full((len(t), len(classes)), -1e9)
        out[:, lr.classes_] = lr.decision_function(stack_features(word, char, t, v))
        return out

    if len(y) > 3000:
        splitter: object = StratifiedShuffleSplit(1, test_size=0.2, random_state=0)
    else:
        splitter = StratifiedKFold(5, shuffle=True, random_state=0)
    rows, blocks = [], []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        for fit_rows, held in splitter.split(texts, y):  # type: ignore[attr-defined]
            model = fit(fit_rows)
            rows.append(held)
            blocks.append(logits(model, [texts[i] for i in held], vectors[held]))
    held_y, oof = y[np.concatenate(rows)], np.vstack(blocks)

    def nll(t: float) -> float:
        z = oof / t
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(held_y)), held_y] - np.log(np.exp(z).sum(1))).mean())

    temperature = float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)
    probs = softmax(oof / temperature)
    predicted, best = probs.argmax(1), probs[:, : len(intents)].max(1)
    is_oos = held_y == index.get(OUT_OF_SCOPE, -1)
    correct = predicted[~is_oos] == held_y[~is_oos]
    cap = float(np.quantile(best[~is_oos][correct], 0.05))
    threshold = cap
    if is_oos.any():
        off = np.where(predicted[is_oos] == len(intents), 0.0, best[is_oos])
        scores = [
            (np.mean((best[~is_oos] >= t) & correct) + np.mean(off < t), t)
            for t in np.unique(np.r_[0.0, best, cap])
            if t <= cap
        ]
        threshold = max(scores)[1]
    final = fit(np.arange(len(y)))

    def predict(t: list[str], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = softmax(logits(final, t, v) / temperature)
        top = p[:, : len(intents)].argmax(1)
        best_p = p[:, : len(intents)].max(1)
        background = p.argmax(1) == len(intents) if oos_texts else np.zeros(len(t), bool)
        labels = np.where(background | (best_p < threshold), OUT_OF_SCOPE, np.array(intents)[top])
        return labels, np.array(intents)[top]

    return predict


def convolens_model(train: Split, oos: Split | None) -> Predict:
    model = fit_intent_model(
        train.texts,
        list(train.labels),
        train.vectors,
        oos_texts=oos.texts if oos is not None else (),
        oos_embeddings=oos.vectors if oos is not None else None,
    )

    def predict(t: list[str], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # As the component decides: the in-scope confidence against the threshold.
        labels, probs = model.predict(t, v)
        top = np.array(model.intents)[model.intent_probs(probs).argmax(1)]
        return np.array(labels), top

    return predict


# The fine-tuned model's extra figures of the last evaluation (its head alone, timings).
FINE_TUNE_NOTES: dict[str, float] = {}


def fine_tuned_model(train: Split, oos: Split | None) -> Predict:
    """`convolens taxonomy train --fine-tune`'s path on the same training examples: MiniLM
    fine-tuned (HOLDOUT of them kept out to calibrate), exported to int8 ONNX, the
    SVM + neighbour head fitted on that encoder's vectors. It embeds the texts itself."""
    from convolens.enrich.intent_finetune import FineTuneSettings, fine_tune_examples

    folder = Path(tempfile.mkdtemp(prefix="intent-ft-")) / "model"
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "fine-tuning" and (done == total or time.time() - last[0] > 30):
            last[0] = time.time()
            print(f"  fine-tuning step {done}/{total}", file=sys.stderr, flush=True)

    settings = FineTuneSettings(**FINE_TUNE_SETTINGS)
    result = fine_tune_examples(
        train.texts,
        list(train.labels),
        oos_texts=oos.texts if oos is not None else (),
        taxonomy_version="eval",
        folder=folder,
        settings=settings,
        progress=progress,
    )
    model = result.model
    encoder = model.embedder
    FINE_TUNE_NOTES.clear()
    FINE_TUNE_NOTES["steps"] = result.steps
    FINE_TUNE_NOTES["fine-tuned examples"] = result.fine_tuned
    FINE_TUNE_NOTES["held out"] = result.held_out
    FINE_TUNE_NOTES["size MiB"] = (folder / "model.int8.onnx").stat().st_size / 2**20
    FINE_TUNE_NOTES["bundle MiB"] = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    FINE_TUNE_NOTES["fine-tune s"] = result.seconds
    cv = model.metadata["cv"]
    FINE_TUNE_NOTES["held-out rejected %"] = cv["false_rejection"] * 100
    if cv.get("out_of_scope_recall") is not None:
        FINE_TUNE_NOTES["held-out OOS recall %"] = cv["out_of_scope_recall"] * 100

    def predict(t: list[str], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        started = time.perf_counter()
        vectors, head = encoder.encode(t)  # type: ignore[attr-defined]
        encoded = time.perf_counter()
        labels, probs = model.predict(t, vectors, head=head)
        if "encode texts/s" not in FINE_TUNE_NOTES:  # the dev set's, not oos_val's
            FINE_TUNE_NOTES["encode texts/s"] = len(t) / max(1e-9, encoded - started)
            FINE_TUNE_NOTES["encode+classify texts/s"] = len(t) / (time.perf_counter() - started)
        top = np.array(model.intents)[model.intent_probs(probs).argmax(1)]
        # Top-1 of the head alone and of the blend at other head weights (argmax only).
        classes = np.array(encoder.classes)  # type: ignore[attr-defined]
        intents = np.flatnonzero(classes != OUT_OF_SCOPE)
        variants = {"head alone": classes[intents[head[:, intents].argmax(1)]]}
        linear, neighbours = model.parts(t, vectors)
        for weight in (0.0, 0.5, 1.0, 2.0):
            logits = blend(linear, neighbours, head, weight)[:, intents]
            variants[f"head x{weight:g}"] = classes[intents[logits.argmax(1)]]
        FINE_TUNE_NOTES["_variants"] = variants  # type: ignore[assignment]
        return np.array(labels), top

    return predict


FINE_TUNE_SETTINGS: dict[str, object] = {}


MODELS: dict[str, Callable[[Split, Split | None], Predict]] = {
    "previous": previous_model,
    "convolens": convolens_model,
    "fine-tuned": fine_tuned_model,
}
CHOSEN_MODELS = set(MODELS)


def embedding_lr(train: Split, dev: Split) -> float:
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(train.vectors, train.labels)
    return float(np.mean(lr.predict(dev.vectors) == dev.labels)) * 100


def row(dataset: str, figure: str, values: dict[str, float | None], target: str = "") -> None:
    cells = [f"{v:10.2f}" if v is not None else f"{'-':>10s}" for v in values.values()]
    print(f"{dataset:24s} {figure:26s} {' '.join(cells)}   {target}", flush=True)


def evaluate(
    dataset: str,
    train: Split,
    dev: Split,
    oos: Split | None,
    oos_dev: Split | None,
    targets: dict[str, str],
    skip: tuple[str, ...] = (),
) -> None:
    figures: dict[str, dict[str, float | None]] = {}
    for name, make in MODELS.items():
        if name not in CHOSEN_MODELS or name in skip:
            figures[name] = {}
            continue
        started = time.perf_counter()
        predict = make(train, oos)
        seconds = time.perf_counter() - started
        labels, top = predict(dev.texts, dev.vectors)
        if name == "fine-tuned":
            variants = FINE_TUNE_NOTES.pop("_variants")
            for variant, top_variant in variants.items():  # type: ignore[attr-defined]
                FINE_TUNE_NOTES[f"{variant} top-1 %"] = (
                    float(np.mean(top_variant == dev.labels)) * 100
                )
        result: dict[str, float | None] = {
            "top-1 %": float(np.mean(top == dev.labels)) * 100,
            "as labelled %": float(np.mean(labels == dev.labels)) * 100,
            "in-scope rejected %": float(np.mean(labels == OUT_OF_SCOPE)) * 100,
            "OOS recall %": None,
            "train s": seconds,
        }
        if oos_dev is not None:
            off, _ = predict(oos_dev.texts, oos_dev.vectors)
            result["OOS recall %"] = float(np.mean(off == OUT_OF_SCOPE)) * 100
            FINE_TUNE_NOTES.pop("_variants", None)
        figures[name] = result
    baseline = embedding_lr(train, dev)
    for figure in next(f for f in figures.values() if f):
        values = {name: figures[name].get(figure) for name in MODELS}
        if figure == "OOS recall %" and oos_dev is None:
            continue
        values["emb+LR"] = baseline if figure == "top-1 %" else None
        row(dataset, figure, values, targets.get(figure, ""))
    if figures.get("fine-tuned"):
        notes = ", ".join(f"{k} {v:.1f}" for k, v in FINE_TUNE_NOTES.items())
        print(f"{'':24s} fine-tuned: {notes}", flush=True)


def default_taxonomy(embed: Embeddings) -> None:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    model = train_intent_model(taxonomy, embed.model)
    cv = model.metadata["cv"]
    print(
        f"\nDefault taxonomy {taxonomy.taxonomy_version}: {len(taxonomy.intents)} intents, "
        f"{cv['held_out']} examples, {len(taxonomy.out_of_scope)} out-of-scope examples; "
        f"5-fold CV accuracy {cv['accuracy'] * 100:.1f}%; threshold {model.threshold:.4f} "
        f"({model.metadata['threshold_source']}), CV in-scope rejected "
        f"{cv['false_rejection'] * 100:.1f}%, CV out-of-scope recall "
        f"{cv['out_of_scope_recall'] * 100:.1f}%"
    )
    weakest = sorted(cv["per_intent"].items(), key=lambda kv: kv[1]["accuracy"])[:5]
    print(
        "  weakest: "
        + ", ".join(f"{k} {v['accuracy'] * 100:.0f}% (-> {v['confused_with']})" for k, v in weakest)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/intents"))
    parser.add_argument("--cache", type=Path, default=None, help="keep embeddings here")
    parser.add_argument("--datasets", default="banking77,clinc150")
    parser.add_argument(
        "--tune", action="store_true", help="Banking77: report the tuning split, not dev"
    )
    parser.add_argument(
        "--models", default=",".join(MODELS), help="which of previous,convolens,fine-tuned"
    )
    parser.add_argument(
        "--fine-tune-settings",
        default="{}",
        help="JSON overrides of FineTuneSettings, e.g. '{\"epochs\": 2}' (tuning split only)",
    )
    args = parser.parse_args()
    CHOSEN_MODELS.clear()
    CHOSEN_MODELS.update(args.models.split(","))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    embed = Embeddings(args.cache)
    chosen = args.datasets.split(",")

    def split(texts: list[str], labels: list[str]) -> Split:
        return Split(list(texts), np.asarray(labels), embed(list(texts)))

    print("embedding the datasets ...", file=sys.stderr)
    FINE_TUNE_SETTINGS.update(json.loads(args.fine_tune_settings))
    names = " ".join(f"{name:>10s}" for name in (*MODELS, "emb+LR"))
    print(f"{'dataset':24s} {'figure':26s} {names}")
    if "banking77" in chosen:
        # Through the taxonomy loader, as published: repeats dropped, names normalised.
        taxonomy = load_taxonomy(args.data / "banking77" / "train.csv")
        texts = [e for i in taxonomy.intents for e in i.examples]
        labels = [i.name for i in taxonomy.intents for _ in i.examples]
        everything = split(texts, labels)
        rows = np.arange(len(texts))
        fit, dev = train_test_split(rows, test_size=0.2, stratify=labels, random_state=0)
        if args.tune:
            fit, dev = train_test_split(
                fit, test_size=0.2, stratify=everything.labels[fit], random_state=1
            )
        name = "banking77 " + ("tune" if args.tune else "dev") + " (no OOS)"
        evaluate(
            name,
            everything.take(fit),
            everything.take(dev),
            None,
            None,
            {"top-1 %": "target >= 94", "in-scope rejected %": "target <= 3"},
        )
    if "clinc150" in chosen:
        data = json.loads((args.data / "clinc150" / "data_train_val.json").read_text())
        parts = {k: split([t for t, _ in v], [lab for _, lab in v]) for k, v in data.items()}
        evaluate(
            "clinc150 val + oos_train",
            parts["train"],
            parts["val"],
            parts["oos_train"],
            parts["oos_val"],
            {"in-scope rejected %": "target <= 5", "OOS recall %": "target >= 85"},
        )
    if "clinc150-no-oos" in chosen:
        data = json.loads((args.data / "clinc150" / "data_train_val.json").read_text())
        parts = {k: split([t for t, _ in v], [lab for _, lab in v]) for k, v in data.items()}
        evaluate(
            "clinc150 val (no OOS)",
            parts["train"],
            parts["val"],
            None,
            parts["oos_val"],
            {},
            skip=("fine-tuned",),
        )
    if "hwu64" in chosen:
        folder = args.data / "hwu64"

        def read(name: str) -> Split:
            texts = (folder / name / "seq.in").read_text(encoding="utf-8").splitlines()
            return split(texts, (folder / name / "label").read_text().splitlines())

        evaluate("hwu64 valid (no OOS)", read("train"), read("valid"), None, None, {})
    default_taxonomy(embed)


if __name__ == "__main__":
    main()
