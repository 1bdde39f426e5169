"""Intent classifier dev figures: convolens' model beside plain embeddings + logistic regression.

Datasets (/work/shared/data/intents; only train/dev splits are here, so figures are dev):
- Banking77: train.csv only, so a stratified 20% of it (seed 0) is the dev set;
- CLINC150: train -> val (in-scope), plus out-of-scope detection with oos_train/oos_val;
- HWU64: train -> valid.

Each is run on the full training set and with 10 examples per intent (mean of 3 fixed
draws, seeds 0-2). Models, all on the same all-MiniLM-L6-v2 embeddings:
- "emb+LR C=1": scikit-learn's LogisticRegression with its defaults (the baseline);
- "emb+LR C=10": the same with less regularisation (the baseline tuned);
- "convolens": `intent_model.fit_intent_model` (embedding + TF-IDF word/char n-grams, LR).

CLINC150 out-of-scope: (a) threshold only: each model is trained on 80% of train; the
threshold (`choose_threshold`) is picked on the other 20% and oos_train, and applied to the
full-train model's scores on val + oos_val; (b) convolens as shipped: oos_train is also its
out-of-scope class, with the threshold picked by its own calibration. In-scope accuracy
counts rejected in-scope queries as wrong.

    .venv/bin/python eval/intents.py            (~8 min on 2 CPU cores, most of it embedding)
    .venv/bin/python eval/intents.py --quick    (~1.5 min: fewer examples, one draw)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import train_test_split

from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.intent_training import choose_threshold, fit_intent_model, train_intent_model
from convolens.enrich.taxonomy import DEFAULT_TAXONOMY, OUT_OF_SCOPE, load_taxonomy

DRAWS = (0, 1, 2)
SHOTS = 10


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


def read_banking77(root: Path) -> tuple[list[str], list[str]]:
    with (root / "banking77" / "train.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def read_hwu64(root: Path, split: str) -> tuple[list[str], list[str]]:
    folder = root / "hwu64" / split
    texts = (folder / "seq.in").read_text(encoding="utf-8").splitlines()
    labels = (folder / "label").read_text(encoding="utf-8").splitlines()
    return texts, labels


def few_shot(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = [
        rng.choice(np.flatnonzero(labels == c), min(k, int(np.sum(labels == c))), replace=False)
        for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(rows))


# A model: train split -> (texts, vectors) -> (class names, probabilities).
Model = Callable[[Split], Callable[[list[str], np.ndarray], tuple[list[str], np.ndarray]]]


def baseline(c: float) -> Model:
    def train(split: Split) -> Callable[[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
        lr = LogisticRegression(C=c, max_iter=2000).fit(split.vectors, split.labels)
        return lambda texts, vectors: (list(lr.classes_), lr.predict_proba(vectors))

    return train


def convolens(split: Split) -> Callable[[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
    model = fit_intent_model(split.texts, list(split.labels), split.vectors, calibrate=False)
    return lambda texts, vectors: (model.classes, model.predict_proba(texts, vectors))


MODELS: dict[str, Model] = {
    "emb+LR C=1 (baseline)": baseline(1.0),
    "emb+LR C=10": baseline(10.0),
    "convolens": convolens,
}


def scores(train: Split, dev: Split, model: Model) -> tuple[float, float]:
    classes, probs = model(train)(dev.texts, dev.vectors)
    predicted = np.asarray(classes)[probs.argmax(axis=1)]
    accuracy = float(np.mean(predicted == dev.labels)) * 100
    return accuracy, float(f1_score(dev.labels, predicted, average="macro")) * 100


def run_dataset(name: str, train: Split, dev: Split, draws: tuple[int, ...]) -> None:
    for setting in ("full", f"{SHOTS}-shot"):
        for label, model in MODELS.items():
            started = time.perf_counter()
            if setting == "full":
                accuracy, f1 = scores(train, dev, model)
            else:
                results = [
                    scores(train.take(few_shot(train.labels, SHOTS, s)), dev, model) for s in draws
                ]
                accuracy = float(np.mean([r[0] for r in results]))
                f1 = float(np.mean([r[1] for r in results]))
            seconds = (time.perf_counter() - started) / (1 if setting == "full" else len(draws))
            print(
                f"{name:10s} {setting:8s} {label:22s} {accuracy:8.2f} {f1:9.2f} {seconds:8.1f}",
                flush=True,
            )


def clinc_out_of_scope(train: Split, dev: Split, oos_train: Split, oos_dev: Split) -> None:
    print("\nCLINC150 out-of-scope (val: 3000 in-scope + 100 oos_val)")
    print(
        f"{'model':40s} {'threshold':>9s} {'in-acc':>7s} {'oos-rec':>7s} {'oos-prec':>8s} "
        f"{'in-rej%':>7s} {'AUROC':>6s}"
    )
    fit_rows, pick_rows = train_test_split(
        np.arange(len(train.labels)), test_size=0.2, stratify=train.labels, random_state=0
    )
    fit, pick = train.take(fit_rows), train.take(pick_rows)
    for label, model in MODELS.items():
        # (a) threshold only, picked on the held-out 20% of train and oos_train
        predict = model(fit)
        classes, held = predict(pick.texts, pick.vectors)
        _, off = predict(oos_train.texts, oos_train.vectors)
        right = np.asarray(classes)[held.argmax(axis=1)] == pick.labels
        threshold = choose_threshold(held.max(axis=1), right, off.max(axis=1))
        predict = model(train)
        classes, probs_in = predict(dev.texts, dev.vectors)
        _, probs_out = predict(oos_dev.texts, oos_dev.vectors)
        predicted = np.asarray(classes)[probs_in.argmax(axis=1)]
        report(
            f"(a) {label}", threshold, predicted, probs_in.max(axis=1), probs_out.max(axis=1), dev
        )
    # (b) convolens with oos_train as its out-of-scope class and its own threshold
    model = fit_intent_model(
        train.texts,
        list(train.labels),
        train.vectors,
        oos_texts=oos_train.texts,
        oos_embeddings=oos_train.vectors,
    )
    labels_in, best_in = model.decide(model.predict_proba(dev.texts, dev.vectors))
    labels_out, best_out = model.decide(model.predict_proba(oos_dev.texts, oos_dev.vectors))
    # A background-class win is a rejection whatever the score: give it score 0.
    score_in = np.where(np.asarray(labels_in) == OUT_OF_SCOPE, 0.0, best_in)
    score_out = np.where(np.asarray(labels_out) == OUT_OF_SCOPE, 0.0, best_out)
    probs = model.predict_proba(dev.texts, dev.vectors)
    predicted = np.asarray(model.intents)[model.intent_probs(probs).argmax(axis=1)]
    report("(b) convolens + oos class", model.threshold, predicted, score_in, score_out, dev)


def report(
    label: str,
    threshold: float,
    predicted: np.ndarray,
    score_in: np.ndarray,
    score_out: np.ndarray,
    dev: Split,
) -> None:
    kept = score_in >= threshold
    accuracy = np.mean(kept & (predicted == dev.labels)) * 100
    caught = int(np.sum(score_out < threshold))
    false = int(np.sum(~kept))
    precision = caught / max(1, caught + false) * 100
    truth = np.r_[np.zeros(len(score_in)), np.ones(len(score_out))]
    auroc = roc_auc_score(truth, -np.r_[score_in, score_out])
    print(
        f"{label:40s} {threshold:9.3f} {accuracy:7.2f} {caught / len(score_out) * 100:7.1f} "
        f"{precision:8.1f} {false / len(score_in) * 100:7.1f} {auroc:6.3f}",
        flush=True,
    )


def default_taxonomy(embed: Embeddings) -> None:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    started = time.perf_counter()
    model = train_intent_model(taxonomy, embed.model)
    cv = model.metadata["cv"]
    print(
        f"\nDefault taxonomy {taxonomy.taxonomy_version}: {len(taxonomy.intents)} intents, ", end=""
    )
    print(f"{cv['held_out']} examples, {len(taxonomy.out_of_scope)} out-of-scope examples")
    print(
        f"  trained in {time.perf_counter() - started:.1f} s; 5-fold CV accuracy "
        f"{cv['accuracy'] * 100:.1f}%; threshold {model.threshold:.4f} "
        f"({model.metadata['threshold_source']}), CV false rejection "
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
    parser.add_argument(
        "--quick", action="store_true", help="30 train examples per intent, 1000 dev, one draw"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="keep embeddings here between runs"
    )
    parser.add_argument("--datasets", default="banking77,clinc150,hwu64")
    args = parser.parse_args()
    embed = Embeddings(args.cache)
    chosen = args.datasets.split(",")
    draws = DRAWS[:1] if args.quick else DRAWS

    def split(texts: list[str], labels: list[str]) -> Split:
        return Split(list(texts), np.asarray(labels), embed(list(texts)))

    def shrink(train: Split, dev: Split) -> tuple[Split, Split]:
        if not args.quick:
            return train, dev
        rng = np.random.default_rng(0)
        dev_rows = np.sort(rng.choice(len(dev.labels), min(1000, len(dev.labels)), replace=False))
        return train.take(few_shot(train.labels, 30, 0)), dev.take(dev_rows)

    print("embedding the datasets ...", file=sys.stderr)
    print(
        f"{'dataset':10s} {'setting':8s} {'model':22s} {'accuracy':>8s} {'macro-F1':>9s} "
        f"{'train s':>8s}"
    )
    if "banking77" in chosen:
        texts, labels = read_banking77(args.data)
        rows = np.arange(len(texts))
        fit, dev = train_test_split(rows, test_size=0.2, stratify=labels, random_state=0)
        everything = split(texts, labels)
        run_dataset("banking77", *shrink(everything.take(fit), everything.take(dev)), draws)
    if "hwu64" in chosen:
        train, dev = split(*read_hwu64(args.data, "train")), split(*read_hwu64(args.data, "valid"))
        run_dataset("hwu64", *shrink(train, dev), draws)
    if "clinc150" in chosen:
        data = json.loads((args.data / "clinc150" / "data_train_val.json").read_text())
        parts = {k: split([t for t, _ in v], [lab for _, lab in v]) for k, v in data.items()}
        train, dev = shrink(parts["train"], parts["val"])
        run_dataset("clinc150", train, dev, draws)
        clinc_out_of_scope(train, dev, parts["oos_train"], parts["oos_val"])
    default_taxonomy(embed)


if __name__ == "__main__":
    main()
