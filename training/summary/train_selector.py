"""Train the summary's content selector (`convolens.enrich.summary.selector`) on DialogSum
train, and tune its word budget on a disjoint train sample; dev is never read here.

1. A seeded sample of DialogSum train (`--train` dialogues to fit, `--tune` others to
   choose the budget), from ../shared/data/summaries/dialogsum.
2. Every content sentence (not filler, three words or more) is embedded with the shipped
   all-MiniLM-L6-v2 and rendered in the third person as the overview renders it.
3. Labels: the greedy ROUGE oracle per dialogue (Nallapati et al. 2017): rendered
   sentences added while ROUGE-1 + ROUGE-2 F1 of their join against the reference grows.
4. A logistic regression (scikit-learn, class-balanced, C by the tune sample's ROUGE-L)
   over the embedding and `DIALOGUE_FEATURES`; the overview budget (words) likewise.
5. The weights, the standardisation and the chosen settings are written to
   `src/convolens/enrich/data/summary_selector_lr.npz` (no pickle).

    .venv/bin/python training/summary/train_selector.py [--train 3000 --tune 600]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from rouge_score import rouge_scorer
from sklearn.linear_model import LogisticRegression

from convolens.enrich.base import Doc
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.nlp import shared_nlp
from convolens.enrich.summary.overview import join_parts, render_points
from convolens.enrich.summary.selector import (
    ARTEFACT,
    DIALOGUE_FEATURES,
    candidate_sentences,
    candidate_vectors,
    choose_points,
    features,
    own_sentences,
)
from convolens.model import Conversation

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "summaries" / "dialogsum"
_spec = importlib.util.spec_from_file_location("summary_eval", ROOT / "eval" / "summary.py")
assert _spec and _spec.loader
summary_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summary_eval)
SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def load(seed: int, train: int, tune: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    path = DATA / "train_rev2021-05-26" / "dialogsum.train.jsonl"
    rows = [ast.literal_eval(line) for line in path.open(encoding="utf-8") if line.strip()]
    picked = random.Random(seed).sample(rows, train + tune)
    return picked[:train], picked[train:]


def prepare(rows: list[dict[str, Any]], embedder: SentenceEmbedder, nlp: Any) -> list[dict]:
    """Per dialogue: candidate sentences, their features and their rendering."""
    out = []
    for row in rows:
        doc: Doc = summary_eval.dialogsum_doc(row["fname"], row["dialogue"])
        conversation: Conversation = doc.conversation
        sentences, infos, participants = candidate_sentences(doc)
        if not sentences:
            continue
        turns = embedder.embed([u.text for u in conversation.utterances])
        fresh = iter(embedder.embed(own_sentences(doc, sentences)))
        vectors = candidate_vectors(doc, sentences, turns, fresh)
        matrix = features(infos, vectors, len(conversation.utterances))
        items = [s.item() for s in sentences]
        rendered = render_points(items, participants, nlp, {}, "other")
        out.append(
            {
                "fname": row["fname"],
                "reference": row["summary"],
                "features": matrix,
                "rendered": rendered,
                "order": [[s.index, s.start] for s in sentences],
                "participants": participants,
            }
        )
    return out


def write_cache(folder: Path, key: list[int], cached: dict[str, list[dict[str, Any]]]) -> None:
    """The prepared dialogues as JSON beside their feature matrices (`.npz`): no pickle."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays, meta = {}, {"key": key}
    for split, dialogues in cached.items():
        rows = []
        for i, d in enumerate(dialogues):
            arrays[f"{split}_{i}"] = d["features"]
            rows.append({k: v for k, v in d.items() if k != "features"})
        meta[split] = rows
    np.savez_compressed(folder / "features.npz", **arrays)
    (folder / "dialogues.json").write_text(json.dumps(meta), encoding="utf-8")


def read_cache(folder: Path, key: list[int]) -> dict[str, list[dict[str, Any]]] | None:
    """What `write_cache` wrote for this seed and sample sizes, else None."""
    if not (folder / "dialogues.json").exists():
        return None
    meta = json.loads((folder / "dialogues.json").read_text(encoding="utf-8"))
    if meta.get("key") != key:
        return None
    out: dict[str, list[dict[str, Any]]] = {}
    with np.load(folder / "features.npz", allow_pickle=False) as arrays:
        for split in ("train", "tune"):
            out[split] = [
                {**d, "features": arrays[f"{split}_{i}"]} for i, d in enumerate(meta[split])
            ]
    return out


def _score(text: str, reference: str) -> dict[str, float]:
    scores = SCORER.score(reference, text)
    return {k: v.fmeasure for k, v in scores.items()}


def oracle(dialogue: dict[str, Any], most: int = 4) -> list[int]:
    """The greedy ROUGE-1 + ROUGE-2 oracle over the rendered sentences."""
    chosen: list[int] = []
    best = 0.0
    rendered = dialogue["rendered"]
    while len(chosen) < most:
        gains = []
        for k in range(len(rendered)):
            if k in chosen or not rendered[k]:
                continue
            keep = sorted([*chosen, k])
            text = "; ".join(rendered[j] for j in keep)
            s = _score(text, dialogue["reference"])
            gains.append((s["rouge1"] + s["rouge2"], k))
        if not gains:
            break
        value, k = max(gains)
        if value <= best:
            break
        best, chosen = value, [*chosen, k]
    return chosen


def summaries(dialogues: list[dict], model: Any, mean: np.ndarray, scale: np.ndarray,
              budget: int) -> list[str]:  # fmt: skip
    out = []
    for d in dialogues:
        z = (d["features"] - mean) / scale
        probs = model.predict_proba(z)[:, 1]
        chosen = choose_points(d["rendered"].__getitem__, probs, budget)
        out.append(join_parts([text for _, text in chosen], d["participants"]))
    return out


def rouge_l(texts: list[str], dialogues: list[dict]) -> dict[str, float]:
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for text, d in zip(texts, dialogues, strict=True):
        for k, v in _score(text, d["reference"]).items():
            totals[k] += v
    return {k: 100 * v / max(1, len(texts)) for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--tune", type=int, default=600)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "summary_selector")
    parser.add_argument("--out", type=Path, default=ARTEFACT)
    args = parser.parse_args()
    started = time.perf_counter()
    key = [args.seed, args.train, args.tune]
    cached = read_cache(args.cache, key)
    if cached is None:
        train_rows, tune_rows = load(args.seed, args.train, args.tune)
        embedder, nlp = SentenceEmbedder(), shared_nlp()
        cached = {
            "train": prepare(train_rows, embedder, nlp),
            "tune": prepare(tune_rows, embedder, nlp),
        }
        for d in cached["train"]:
            d["oracle"] = oracle(d)
        write_cache(args.cache, key, cached)
    train, tune = cached["train"], cached["tune"]
    print(f"prepared {len(train)} + {len(tune)} dialogues in {time.perf_counter() - started:.0f} s")
    x = np.vstack([d["features"] for d in train]).astype(np.float64)
    y = np.concatenate([[k in d["oracle"] for k in range(len(d["rendered"]))] for d in train])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    print(f"{len(y)} sentences, {y.mean():.3f} positive")
    results = []
    for c in (0.003, 0.01, 0.03, 0.1):
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(z, y)
        for budget in (16, 20, 24, 28, 32):
            scores = rouge_l(summaries(tune, model, mean, scale, budget), tune)
            results.append((scores["rougeL"], c, budget, scores, model))
            print(
                f"  C {c:<6} budget {budget:>3}: R-1 {scores['rouge1']:.2f} "
                f"R-2 {scores['rouge2']:.2f} R-L {scores['rougeL']:.2f}"
            )
    best = max(results, key=lambda r: r[0])
    _, c, budget, scores, model = best
    print(f"best: C {c}, budget {budget}: tune R-L {scores['rougeL']:.2f}")
    metadata = {
        "model_id": "summary-selector-lr-v1",
        "budget_words": budget,
        "C": c,
        "seed": args.seed,
        "train_dialogues": len(train),
        "tune_dialogues": len(tune),
        "tune_rouge": {k: round(v, 2) for k, v in scores.items()},
        "features": ["minilm_384", *DIALOGUE_FEATURES],
        "data": "DialogSum train (rev 2021-05-26), CC BY-NC-SA 4.0",
    }
    np.savez_compressed(
        args.out,
        coef=model.coef_.ravel().astype(np.float32),
        intercept=model.intercept_.astype(np.float32),
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        metadata=np.array(json.dumps(metadata)),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
