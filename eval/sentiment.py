"""Sentiment dev figures: the shipped MiniLM+VADER classifier beside VADER alone.

TweetEval val (3-class) is also training data, so the model's figure there is a 5-fold
cross-validation recomputed here with the shipped hyper-parameters (each fold trains on
SST-2 train + the other folds), next to the figure stored at training time. SST-2 dev is
scored with the shipped model itself. VADER alone: compound >= 0.05 positive, <= -0.05
negative, else neutral. On SST-2 (binary) "binary" takes argmax of P(neg) vs P(pos) for
the model and compound >= 0 for VADER; "strict" counts any neutral prediction wrong.

    .venv/bin/python eval/sentiment.py [--data /work/shared/data/sentiment]  (~2 min, CPU)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.model_selection import StratifiedKFold

from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.sentiment import SentimentModel, vader_features

NEG, NEU, POS = 0, 1, 2


def read_tweeteval(root: Path) -> tuple[list[str], np.ndarray]:
    texts = (root / "tweeteval" / "val_text.txt").read_text(encoding="utf-8").splitlines()
    labels = np.array([int(x) for x in (root / "tweeteval" / "val_labels.txt").read_text().split()])
    return texts, labels


def read_sst2(path: Path) -> tuple[list[str], np.ndarray]:
    rows = [line.partition(" ") for line in path.read_text(encoding="utf-8").splitlines()]
    return [text for _, _, text in rows], np.array(
        [POS if lab == "1" else NEG for lab, _, _ in rows]
    )


def scores(y: np.ndarray, pred: np.ndarray) -> str:
    acc = accuracy_score(y, pred) * 100
    f1 = f1_score(y, pred, average="macro") * 100
    recall = recall_score(y, pred, average="macro") * 100
    return f"accuracy {acc:5.1f}  macro-F1 {f1:5.1f}  macro-recall {recall:5.1f}"


def vader_labels(compound: np.ndarray) -> np.ndarray:
    return np.where(compound >= 0.05, POS, np.where(compound <= -0.05, NEG, NEU))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/sentiment"))
    args = parser.parse_args()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    model = SentimentModel()
    meta = model.metadata
    c, w, seed = float(meta["C"]), float(meta["tweet_sample_weight"]), int(meta["seed"])
    embedder, vader = SentenceEmbedder(), SentimentIntensityAnalyzer()

    def featurise(texts: list[str]) -> np.ndarray:
        return np.hstack([embedder.embed(texts), vader_features(vader, texts)])

    tw_texts, y_tw = read_tweeteval(args.data)
    sst_texts, y_sst = read_sst2(args.data / "sst2" / "stsa.binary.train")
    dev_texts, y_dev = read_sst2(args.data / "sst2" / "stsa.binary.dev")
    print("embedding ~9,800 texts ...", file=sys.stderr)
    x_tw, x_sst, x_dev = featurise(tw_texts), featurise(sst_texts), featurise(dev_texts)

    # Cross-validation with the shipped settings; SST-2 train is on the training side always.
    pred = np.empty_like(y_tw)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(x_tw, y_tw):
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
        weights = np.concatenate([np.ones(len(y_sst)), np.full(len(train), w)])
        lr.fit(np.vstack([x_sst, x_tw[train]]), np.concatenate([y_sst, y_tw[train]]), weights)
        pred[test] = lr.predict(x_tw[test])

    stored = meta["dev"]["tweeteval_val_5fold_cv"]
    print(f"TweetEval val, 3-class ({len(y_tw)} tweets)")
    print(f"  model, 5-fold CV (recomputed)  {scores(y_tw, pred)}")
    print(
        f"  model, 5-fold CV (training)    accuracy {stored['accuracy']:5.1f}  "
        f"macro-F1 {stored['macro_f1']:5.1f}  macro-recall {stored['macro_recall']:5.1f}"
    )
    print(f"  VADER alone (±0.05)            {scores(y_tw, vader_labels(x_tw[:, -1]))}")

    probs = model.predict_proba(x_dev)
    neg, pos = model.classes.index("negative"), model.classes.index("positive")
    binary = np.where(probs[:, pos] >= probs[:, neg], POS, NEG)
    strict = np.array(
        [
            {"negative": NEG, "neutral": NEU, "positive": POS}[model.classes[k]]
            for k in probs.argmax(axis=1)
        ]
    )
    compound = x_dev[:, -1]
    print(f"SST-2 dev, binary ({len(y_dev)} sentences)")
    print(
        f"  model  binary {np.mean(binary == y_dev) * 100:5.1f}  "
        f"strict {np.mean(strict == y_dev) * 100:5.1f}"
    )
    print(
        f"  VADER  binary {np.mean(np.where(compound >= 0, POS, NEG) == y_dev) * 100:5.1f}  "
        f"strict {np.mean(vader_labels(compound) == y_dev) * 100:5.1f}"
    )


if __name__ == "__main__":
    main()
