"""Extractive summary dev figures: ROUGE-1/2/L F1 on DialogSum dev, beside two baselines.

Systems, all extracting whole turns (speaker tags left out, so no system gets free
"#Person1#" matches against the references):

- convolens: `SummaryComponent` with its default settings (2-3 units);
- convolens-2: the same, fixed at 2 units, to compare with the 2-turn baselines;
- lead-2: the first two turns;
- random-2: two random turns (seeded), in conversation order.

DialogSum (CC BY-NC-SA 4.0) is used here for evaluation only. ROUGE is Google's
`rouge-score` with the Porter stemmer; each dialogue's first reference summary is scored.

    .venv/bin/python eval/summary.py [--data /work/shared/data/summaries/dialogsum]
        [--limit N]  (~1 min for the 500 dev dialogues, CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rouge_score import rouge_scorer

from convolens.enrich.base import Doc
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.summary import SummaryComponent
from convolens.model import Conversation

_TURN = re.compile(r"^(#[^#\s]+#)\s*:\s*(.*)$")


def read_dialogsum(path: Path, limit: int | None) -> list[tuple[Doc, str]]:
    """(doc, reference summary) per dialogue; "#Person1#: text" lines become turns."""
    out: list[tuple[Doc, str]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(out) >= limit:
                break
            row = json.loads(line)
            turns: list[tuple[str, str]] = []
            for raw in row["dialogue"].split("\n"):
                match = _TURN.match(raw.strip())
                if match:
                    turns.append((match.group(1), match.group(2)))
                elif turns and raw.strip():
                    # A line without a speaker continues the previous turn.
                    turns[-1] = (turns[-1][0], f"{turns[-1][1]} {raw.strip()}")
            speakers = list(dict.fromkeys(speaker for speaker, _ in turns))
            conversation = Conversation.model_validate(
                {
                    "conversation_id": row["fname"],
                    "channel": "chat",
                    "source": {"system": "dialogsum", "source_id": row["fname"]},
                    "participants": [{"participant_id": s} for s in speakers],
                    "utterances": [{"participant_id": s, "text": t} for s, t in turns],
                }
            )
            ids = [f"{row['fname']}:{i}" for i in range(len(turns))]
            reference = row.get("summary") or row.get("summary1") or ""
            out.append((Doc(row["fname"], 1, conversation, ids), reference))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/summaries/dialogsum"))
    parser.add_argument("--limit", type=int, default=None, help="score the first N dialogues")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    pairs = read_dialogsum(args.data / "dialogsum.dev.jsonl", args.limit)
    docs = [doc for doc, _ in pairs]
    references = [reference for _, reference in pairs]
    print(f"DialogSum dev: {len(docs)} dialogues", file=sys.stderr)
    embedder = SentenceEmbedder()
    systems = {
        "convolens": SummaryComponent(embedder=embedder),
        "convolens-2": SummaryComponent(
            {"min_sentences": 2, "max_sentences": 2}, embedder=embedder
        ),
    }
    predictions: dict[str, list[str]] = {}
    timings: dict[str, float] = {}
    for name, component in systems.items():
        started = time.perf_counter()
        texts: list[str] = []
        for offset in range(0, len(docs), 64):
            for labels in component(docs[offset : offset + 64]):
                [label] = [a for a in labels if a.label == "summary.extractive"]
                texts.append(label.value["text"])
        predictions[name] = texts
        timings[name] = time.perf_counter() - started
    rng = random.Random(args.seed)
    predictions["lead-2"] = [" ".join(u.text for u in d.conversation.utterances[:2]) for d in docs]
    randoms: list[str] = []
    for doc in docs:
        turns = doc.conversation.utterances
        picked = sorted(rng.sample(range(len(turns)), min(2, len(turns))))
        randoms.append(" ".join(turns[i].text for i in picked))
    predictions["random-2"] = randoms

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    utterances = sum(len(d.conversation.utterances) for d in docs)
    print(f"ROUGE F1 x100 on DialogSum dev ({len(docs)} dialogues, {utterances} turns)")
    print(f"  {'system':<12} {'R-1':>6} {'R-2':>6} {'R-L':>6} {'words':>6}")
    for name, texts in predictions.items():
        totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
        for text, reference in zip(texts, references, strict=True):
            for key, score in scorer.score(reference, text).items():
                totals[key] += score.fmeasure
        n = max(1, len(texts))
        words = sum(len(t.split()) for t in texts) / n
        print(
            f"  {name:<12} {totals['rouge1'] / n * 100:6.2f} {totals['rouge2'] / n * 100:6.2f}"
            f" {totals['rougeL'] / n * 100:6.2f} {words:6.1f}"
        )
    # The first system computes the utterance embeddings; the second reuses them.
    for (name, seconds), note in zip(timings.items(), ("with", "without"), strict=False):
        rate = utterances / seconds
        print(f"  {name}: {seconds:.1f} s, {rate:.0f} turns/s ({note} the utterance embeddings)")
    print(f"  reference summaries: {sum(len(r.split()) for r in references) / len(docs):.1f} words")


if __name__ == "__main__":
    main()
