"""Sentiment and emotion dev figures: the conversation encoder beside the previous model.

Rows, each on the same texts:
- `encoder` is the default (`SentimentComponent()`: the conversation encoder's heads);
- `LR (previous)` is the MiniLM + VADER logistic regression (`{"model":
  "minilm-vader-lr-v1"}`). It was trained on TweetEval val, so its TweetEval figure is a
  5-fold cross-validation recomputed here with its shipped settings (each fold trains on
  SST-2 train + the other folds); the encoder never saw TweetEval val (its SemEval
  training texts that also occur in TweetEval val were dropped);
- `VADER alone`: compound >= 0.05 positive, <= -0.05 negative, else neutral.

Sets: TweetEval val (3-class, macro-recall is TweetEval's metric); SST-2 dev (binary:
"binary" takes argmax of P(neg) vs P(pos), "strict" counts neutral wrong); the
hand-labelled support set `eval/data/support_sentiment.jsonl` (340 turns from
twitter_customer_care: each thread's first customer tweet and the agent's reply, scored
through the component as a two-party conversation, so staff politeness handling counts;
the "role only" row labels every customer turn negative and every agent turn neutral, the
trivial baseline of that set); GoEmotions dev mapped to the four emotions the encoder
reports (rows with one unambiguous mapped label, see training/encoder/data.py).

    .venv/bin/python eval/sentiment.py [--data /work/shared/data/sentiment] [--no-lr]
    (~4 min on 2 busy CPU cores; --no-lr ~1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.model_selection import StratifiedKFold

from convolens.enrich.base import Doc
from convolens.enrich.conversation_encoder import shared_encoder
from convolens.enrich.sentiment import SentimentComponent, SentimentModel, vader_features
from convolens.model import Conversation

NEG, NEU, POS = 0, 1, 2
CLASSES = ("negative", "neutral", "positive")
SUPPORT = Path(__file__).parent / "data" / "support_sentiment.jsonl"
EMOTIONS = ("none", "frustration", "confusion", "satisfaction")


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
    per_class = recall_score(y, pred, average=None, labels=[NEG, NEU, POS]) * 100
    return (
        f"accuracy {acc:5.1f}  macro-F1 {f1:5.1f}  macro-recall {recall:5.1f}  "
        f"(recall neg/neu/pos {per_class[0]:.0f}/{per_class[1]:.0f}/{per_class[2]:.0f})"
    )


def vader_labels(compound: np.ndarray) -> np.ndarray:
    return np.where(compound >= 0.05, POS, np.where(compound <= -0.05, NEG, NEU))


def sst_line(name: str, probs: np.ndarray, y: np.ndarray) -> str:
    binary = np.where(probs[:, POS] >= probs[:, NEG], POS, NEG)
    strict = probs.argmax(axis=1)
    return (
        f"  {name:<30} binary {np.mean(binary == y) * 100:5.1f}  "
        f"strict {np.mean(strict == y) * 100:5.1f}"
    )


def support_docs(path: Path) -> tuple[list[Doc], list[tuple[str, str]]]:
    """One two-party conversation per thread; gold (role, label) per utterance in order."""
    threads: dict[str, list[dict[str, str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        threads.setdefault(row["thread"], []).append(row)
    docs, gold = [], []
    for thread, rows in threads.items():
        conversation = Conversation.model_validate(
            {
                "conversation_id": thread,
                "channel": "chat",
                "source": {"system": "eval"},
                "participants": [
                    {"participant_id": "customer", "role": "customer"},
                    {"participant_id": "agent", "role": "agent"},
                ],
                "utterances": [{"participant_id": r["role"], "text": r["text"]} for r in rows],
            }
        )
        docs.append(Doc(thread, 1, conversation, [f"{thread}:{i}" for i in range(len(rows))]))
        gold.extend((r["role"], r["label"]) for r in rows)
    return docs, gold


def support_line(name: str, component: SentimentComponent | None, path: Path) -> str:
    docs, gold = support_docs(path)
    if component is None:
        pred = ["negative" if role == "customer" else "neutral" for role, _ in gold]
    else:
        pred = []
        for offset in range(0, len(docs), 32):
            for labels in component(docs[offset : offset + 32]):
                pred.extend(a.value["label"] for a in labels if a.label == "sentiment.utterance")
    right = [p == g for p, (_, g) in zip(pred, gold, strict=True)]
    by_role = {
        role: np.mean([r for r, (ro, _) in zip(right, gold, strict=True) if ro == role]) * 100
        for role in ("customer", "agent")
    }
    agent_negative = sum(
        p == "negative" for p, (ro, _) in zip(pred, gold, strict=True) if ro == "agent"
    )
    return (
        f"  {name:<30} accuracy {np.mean(right) * 100:5.1f}  customer {by_role['customer']:5.1f}"
        f"  agent {by_role['agent']:5.1f}  (agent turns called negative: {agent_negative})"
    )


def goemotions_dev(root: Path) -> tuple[list[str], np.ndarray]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training" / "encoder"))
    import data as corpora  # the training mapping, so eval and training agree

    rows = corpora.goemotions("dev")
    return [t for t, _, _ in rows], np.array([y for _, _, y in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/sentiment"))
    parser.add_argument("--support", type=Path, default=SUPPORT)
    parser.add_argument("--no-lr", action="store_true", help="skip the previous model")
    args = parser.parse_args()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    encoder = shared_encoder()
    vader = SentimentIntensityAnalyzer()
    tw_texts, y_tw = read_tweeteval(args.data)
    dev_texts, y_dev = read_sst2(args.data / "sst2" / "stsa.binary.dev")
    print("encoding ...", file=sys.stderr)
    _, tw_heads = encoder.encode(tw_texts)
    _, dev_heads = encoder.encode(dev_texts)
    vader_tw = vader_features(vader, tw_texts)[:, -1]
    vader_dev = vader_features(vader, dev_texts)[:, -1]

    lr_tw: np.ndarray | None = None
    lr_dev: np.ndarray | None = None
    lr_component: SentimentComponent | None = None
    if not args.no_lr:
        lr_tw, lr_dev, lr_component = previous_model(args.data, tw_texts, y_tw, dev_texts, vader)

    print(f"TweetEval val, 3-class ({len(y_tw)} tweets)")
    print(f"  {'encoder (default)':<30} {scores(y_tw, tw_heads['sentiment'].argmax(1))}")
    if lr_tw is not None:
        print(f"  {'LR (previous), 5-fold CV':<30} {scores(y_tw, lr_tw)}")
    print(f"  {'VADER alone (±0.05)':<30} {scores(y_tw, vader_labels(vader_tw))}")

    print(f"SST-2 dev, binary ({len(y_dev)} sentences)")
    print(sst_line("encoder (default)", dev_heads["sentiment"], y_dev))
    if lr_dev is not None:
        print(sst_line("LR (previous)", lr_dev, y_dev))
    vader_probs = np.stack(
        [vader_dev <= -0.05, np.abs(vader_dev) < 0.05, vader_dev >= 0.05], axis=1
    ).astype(float)
    vader_probs[:, POS] += (vader_dev >= 0) * 1e-3  # binary: compound >= 0 is positive
    print(sst_line("VADER", vader_probs, y_dev))

    print(f"Support turns, hand-labelled ({args.support.name})")
    print(support_line("encoder (default)", SentimentComponent(encoder=encoder), args.support))
    if lr_component is not None:
        print(support_line("LR (previous)", lr_component, args.support))
    print(support_line("role only (baseline)", None, args.support))

    texts, y_emo = goemotions_dev(args.data)
    _, heads = encoder.encode(texts)
    pred = heads["emotion"].argmax(1)
    f1 = f1_score(y_emo, pred, average=None, labels=range(len(EMOTIONS))) * 100
    print(f"GoEmotions dev mapped to 4 emotions ({len(y_emo)} comments)")
    print(
        f"  {'encoder (default)':<30} accuracy {accuracy_score(y_emo, pred) * 100:5.1f}  F1 "
        + "  ".join(f"{n} {v:.1f}" for n, v in zip(EMOTIONS, f1, strict=True))
        + "  (the previous model had no emotions)"
    )


def previous_model(
    data: Path, tw_texts: list[str], y_tw: np.ndarray, dev_texts: list[str], vader: object
) -> tuple[np.ndarray, np.ndarray, SentimentComponent]:
    """The LR model's TweetEval CV predictions, SST-2 dev probabilities and component."""
    from convolens.enrich.embeddings import SentenceEmbedder

    model = SentimentModel()
    meta = model.metadata
    c, w, seed = float(meta["C"]), float(meta["tweet_sample_weight"]), int(meta["seed"])
    embedder = SentenceEmbedder()
    featurise: Callable[[list[str]], np.ndarray] = lambda texts: np.hstack(  # noqa: E731
        [embedder.embed(texts), vader_features(vader, texts)]
    )
    sst_texts, y_sst = read_sst2(data / "sst2" / "stsa.binary.train")
    print("embedding ~9,800 texts for the previous model ...", file=sys.stderr)
    x_tw, x_sst, x_dev = featurise(tw_texts), featurise(sst_texts), featurise(dev_texts)
    pred = np.empty_like(y_tw)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(x_tw, y_tw):
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
        weights = np.concatenate([np.ones(len(y_sst)), np.full(len(train), w)])
        lr.fit(np.vstack([x_sst, x_tw[train]]), np.concatenate([y_sst, y_tw[train]]), weights)
        pred[test] = lr.predict(x_tw[test])
    order = [model.classes.index(c) for c in CLASSES]
    dev = model.predict_proba(x_dev)[:, order]
    component = SentimentComponent({"model": "minilm-vader-lr-v1"}, embedder=embedder)
    return pred, dev, component


if __name__ == "__main__":
    main()
