"""Train the summary's content selector (`convolens.enrich.summary.selector`) on DialogSum
train, and tune its settings on a disjoint train sample; dev is never read here.

1. A seeded order of DialogSum train (../shared/data/summaries/dialogsum): its first
   `--train` dialogues and those after the next `--tune` fit the model (`--fit` in all);
   those `--tune` (v1's tune sample) and all after the fit ones choose the settings.
2. Every content sentence (not filler, three words or more) is embedded with the shipped
   all-MiniLM-L6-v2 and rendered in the third person as the overview renders it.
3. Labels: the greedy ROUGE oracle per dialogue (Nallapati et al. 2017): rendered
   sentences added while ROUGE-1 + ROUGE-2 F1 of their join against the reference grows.
4. A logistic regression (scikit-learn, class-balanced) over the embedding and
   `DIALOGUE_FEATURES`. The word budget follows the conversation's length: a line from
   candidate words to reference words, fitted on the fit dialogues, times a scale, and
   the next-best sentence may overflow it by a few words; C, the scale and the overflow
   are chosen by the tune dialogues' ROUGE-L.
5. The weights, the standardisation and the chosen settings are written to
   `src/convolens/enrich/data/summary_selector_lr.npz` (no pickle).

Prepared dialogues (features, renderings, oracle) are cached per dialogue under
`--cache`, so a larger `--fit` prepares only the new ones (about 0.4 s a dialogue).

    .venv/bin/python training/summary/train_selector.py [--fit 7000 --train 2000 --tune 500]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from rouge_score import rouge_scorer
from sklearn.linear_model import LogisticRegression

from convolens.enrich.base import Doc
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.nlp import shared_nlp
from convolens.enrich.summary.overview import as_request, join_parts, render_points
from convolens.enrich.summary.selector import (
    ARTEFACT,
    DIALOGUE_FEATURES,
    budget_for,
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


Rows = list[dict[str, Any]]


def load(seed: int, train: int, tune: int, fit: int) -> tuple[Rows, Rows]:
    """(fit, tune) dialogues of a seeded order of all train: tune is [train, train +
    tune) and the dialogues after the first fit + tune; fit the others before those."""
    path = DATA / "train_rev2021-05-26" / "dialogsum.train.jsonl"
    rows = [ast.literal_eval(line) for line in path.open(encoding="utf-8") if line.strip()]
    # random.sample draws a prefix-stable sequence: a larger draw keeps the smaller's order.
    picked = random.Random(seed).sample(rows, len(rows))
    fitted = picked[:train] + picked[train + tune : fit + tune]
    return fitted, picked[train : train + tune] + picked[fit + tune :]


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


def write_cache(folder: Path, prepared: list[dict[str, Any]]) -> None:
    """Newly prepared dialogues as one more JSON file beside their feature matrices
    (`.npz`, keyed by dialogue): no pickle."""
    folder.mkdir(parents=True, exist_ok=True)
    number = len(list(folder.glob("prepared_*.json")))
    arrays = {d["fname"]: d["features"] for d in prepared}
    np.savez_compressed(folder / f"prepared_{number:03d}.npz", **arrays)
    rows = [{k: v for k, v in d.items() if k != "features"} for d in prepared]
    (folder / f"prepared_{number:03d}.json").write_text(json.dumps(rows), encoding="utf-8")


# What an older rendering of a question that is a request looks like (before `as_request`).
_ASKED = re.compile(r"^(.+? asks )(.+?)( whether .*)$")


def current(rendered: str) -> str:
    """A cached rendering as the overview renders it now: `as_request` is idempotent."""
    match = _ASKED.match(rendered)
    if not match:
        return rendered
    return match.group(1) + as_request(match.group(2) + match.group(3), match.group(2))


def read_cache(folder: Path) -> dict[str, dict[str, Any]]:
    """Every dialogue `write_cache` wrote, by fname."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("prepared_*.json")):
        rows = json.loads(path.read_text(encoding="utf-8"))
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as arrays:
            for d in rows:
                rendered = [current(r) for r in d["rendered"]]
                out[d["fname"]] = {**d, "rendered": rendered, "features": arrays[d["fname"]]}
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


_LOG_WORDS = 384 + DIALOGUE_FEATURES.index("log_words")


def candidate_words(dialogue: dict[str, Any]) -> int:
    """`selector.candidate_words` from the cached features (log1p of each one's words)."""
    return int(np.rint(np.expm1(dialogue["features"][:, _LOG_WORDS].astype(np.float64))).sum())


def summaries(dialogues: list[dict], model: Any, mean: np.ndarray, scale: np.ndarray,
              budget: tuple[float, float, float, int], overflow: int) -> list[str]:  # fmt: skip
    out = []
    for d in dialogues:
        z = (d["features"] - mean) / scale
        probs = model.predict_proba(z)[:, 1]
        words = budget_for(candidate_words(d), *budget)
        chosen = choose_points(d["rendered"].__getitem__, probs, words, overflow=overflow)
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
    parser.add_argument("--fit", type=int, default=7000, help="dialogues to fit on")
    parser.add_argument("--train", type=int, default=2000, help="fit dialogues before tune")
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "summary_selector")
    parser.add_argument("--out", type=Path, default=ARTEFACT)
    args = parser.parse_args()
    started = time.perf_counter()
    fit_rows, tune_rows = load(args.seed, args.train, args.tune, args.fit)
    cached = read_cache(args.cache)
    missing = [r for r in fit_rows + tune_rows if r["fname"] not in cached]
    if missing:
        prepared = prepare(missing, SentenceEmbedder(), shared_nlp())
        for d in prepared:
            d["oracle"] = oracle(d)
        write_cache(args.cache, prepared)
        cached.update({d["fname"]: d for d in prepared})
    train = [cached[r["fname"]] for r in fit_rows if r["fname"] in cached]
    tune = [cached[r["fname"]] for r in tune_rows if r["fname"] in cached]
    print(f"prepared {len(train)} + {len(tune)} dialogues in {time.perf_counter() - started:.0f} s")
    x = np.vstack([d["features"] for d in train]).astype(np.float64)
    y = np.concatenate([[k in d["oracle"] for k in range(len(d["rendered"]))] for d in train])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    print(f"{len(y)} sentences, {y.mean():.3f} positive")
    # Reference words against candidate words: the budget's line (r = 0.88 on train).
    slope, intercept = np.polyfit(
        [candidate_words(d) for d in train], [len(d["reference"].split()) for d in train], 1
    )
    print(f"reference words = {intercept:.2f} + {slope:.4f} x candidate words")
    results = []
    for c in (0.003, 0.01):
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(z, y)
        for factor in (1.0, 1.1, 1.2, 1.3):
            for overflow in (0, 5):
                budget = (factor, float(intercept), float(slope), 8)
                texts = summaries(tune, model, mean, scale, budget, overflow)
                scores = rouge_l(texts, tune)
                results.append((scores["rougeL"], c, budget, overflow, scores, model))
                print(
                    f"  C {c:<6} budget x{factor} overflow {overflow}: "
                    f"R-1 {scores['rouge1']:.2f} R-2 {scores['rouge2']:.2f} "
                    f"R-L {scores['rougeL']:.2f}",
                    flush=True,
                )
    best = max(results, key=lambda r: r[0])
    _, c, budget, overflow, scores, model = best
    print(f"best: C {c}, budget x{budget[0]}, overflow {overflow}: tune R-L {scores['rougeL']:.2f}")
    metadata = {
        "model_id": "summary-selector-lr-v2",
        "budget_words": round(budget_for(115, *budget)),  # a typical dialogue's, for v1 readers
        "budget_line": dict(zip(("scale", "intercept", "slope", "floor"), budget, strict=True)),
        "overflow_words": overflow,
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
