"""Dialogue-act dev figures on MRDA val: questions, commitments and requests.

Gold, per utterance: a question is a general tag qy/qw/qh/qr/qrr/qo (yes-no, wh,
rhetorical, or, or-clause, open); a commitment is the specific tag `cc`; a request is an
action directive `co`. MRDA marks question intonation with "?", so the "?" baseline is
close to perfect on the text as transcribed; real ASR output carries no "?", so every
figure is also given on the text with "?", ".", "!" and "," removed ("no punct") and on
lowercased text with all punctuation but apostrophes removed ("asr"), as a recogniser
without punctuation and truecasing writes it.

Rows: `encoder+rules` is `DialogueActComponent()` (the default: the rules checked and
completed by the conversation encoder's dialogue-act head); `rules (previous)` is
`DialogueActComponent({"model": "rules"})`, the rules alone as shipped before;
`encoder head` is the head's argmax alone (no rules); `'?' only` and the keyword
baselines are the trivial detectors; `--classifier` adds a TF-IDF + logistic regression
trained on MRDA train (GPL data: evaluation only, never shipped) as a supervised
reference. Conversations are consecutive runs of `--chunk` utterances (MRDA's files have
no dialogue boundaries), speakers as participants with unknown roles.

`--speed` also times the shared parse and both components on DialogSum dev (two-party
dialogues; NC licence, used here only to measure) in batches of 32 conversations.

    .venv/bin/python eval/dialogue_acts.py [--classifier] [--speed] [--limit N]
    (~6 min on 2 busy CPU cores; --classifier adds ~20 s, --speed ~30 s)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from convolens.enrich.base import Doc
from convolens.enrich.conversation_encoder import ConversationEncoder, encoder_pass
from convolens.enrich.dialogue_acts import DialogueActComponent
from convolens.model import Conversation

QUESTION_TAGS = frozenset({"qy", "qw", "qh", "qr", "qrr", "qo"})
TASKS = ("question", "commitment", "request")
_PUNCT = re.compile(r"[?.!,]")
_ASR_DROP = re.compile(r"[^\w\s']")


def variant_text(text: str, variant: str) -> str:
    if variant == "as is":
        return text
    if variant == "no punct":
        return _PUNCT.sub("", text)
    return " ".join(_ASR_DROP.sub(" ", text.lower()).split())


def head_alone(docs: list[Doc], encoder: ConversationEncoder) -> dict[str, list[bool]]:
    """The encoder head's argmax per utterance: the pass the component left cached, or a
    new one where it read only part of a conversation (a turn in another language)."""
    out: dict[str, list[bool]] = {task: [] for task in TASKS}
    for doc, found in zip(docs, encoder_pass(docs, encoder), strict=True):
        for i in range(len(doc.utterance_ids)):
            act, _ = found.top("dialogue_act", i)
            out["question"].append(act.startswith("question_"))
            out["commitment"].append(act == "commitment")
            out["request"].append(act == "directive")
    return out


_COMMIT_WORDS = re.compile(r"\b(?:i'll|i will|we'll|we will|i'm going to|let me)\b")
_REQUEST_WORDS = re.compile(r"\b(?:please|can you|could you|would you)\b")


def read_mrda(path: Path) -> list[tuple[str, str, dict[str, bool]]]:
    """(speaker, text, gold per task) for each utterance of an MRDA split file."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        speaker, text, _basic, general, full = line.split("|")
        gold = {
            "question": general in QUESTION_TAGS,
            "commitment": full == "cc",
            "request": full == "co",
        }
        rows.append((speaker, text, gold))
    return rows


def make_docs(rows: list[tuple[str, str]], chunk: int, prefix: str) -> list[Doc]:
    docs = []
    for n, offset in enumerate(range(0, len(rows), chunk)):
        part = rows[offset : offset + chunk]
        speakers = sorted({s for s, _ in part})
        conversation = Conversation.model_validate(
            {
                "conversation_id": f"{prefix}{n}",
                "channel": "meeting",
                "source": {"system": "eval"},
                "participants": [{"participant_id": s} for s in speakers],
                "utterances": [{"participant_id": s, "text": t} for s, t in part],
            }
        )
        ids = [f"{prefix}{n}:{i}" for i in range(len(part))]
        docs.append(Doc(f"{prefix}{n}", 1, conversation, ids))
    return docs


def run_rules(
    component: DialogueActComponent, docs: list[Doc], batch: int
) -> tuple[dict[str, list[bool]], float]:
    """Per-utterance predictions for each task, and utterances per second."""
    predicted: dict[str, list[bool]] = {task: [] for task in TASKS}
    started = time.perf_counter()
    for offset in range(0, len(docs), batch):
        part = docs[offset : offset + batch]
        for doc, labels in zip(part, component(part), strict=True):
            found: dict[str, set[str]] = {task: set() for task in TASKS}
            for a in labels:
                if a.label == "question":
                    found["question"].add(a.utterance_id or "")
                elif a.label == "action_item":
                    found[a.value["kind"]].add(a.utterance_id or "")
            for task in TASKS:
                predicted[task].extend(uid in found[task] for uid in doc.utterance_ids)
    elapsed = time.perf_counter() - started
    return predicted, sum(len(d.utterance_ids) for d in docs) / elapsed


def prf(gold: list[bool], pred: list[bool]) -> tuple[float, float, float]:
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    precision = tp / max(1, sum(pred))
    recall = tp / max(1, sum(gold))
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return precision * 100, recall * 100, f1 * 100


def classifier(
    train: list[tuple[str, str, dict[str, bool]]], texts: list[str], task: str, strip: bool
) -> list[bool]:
    """TF-IDF word 1-2 grams + balanced logistic regression trained on MRDA train."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x = [_PUNCT.sub("", t) if strip else t for _, t, _ in train]
    y = [g[task] for _, _, g in train]
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, token_pattern=r"[\w']+|\?"),
        LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000),
    )
    model.fit(x, y)
    return [bool(p) for p in model.predict(texts)]


def speed(path: Path, batch: int) -> None:
    from convolens.enrich.entities import EntityComponent
    from convolens.enrich.nlp import parsed, shared_nlp

    docs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        turns = []
        for raw in json.loads(line)["dialogue"].splitlines():
            who, _, text = raw.partition(":")
            if text.strip():
                turns.append(("c" if "1" in who else "a", text.strip()))
        conversation = Conversation.model_validate(
            {
                "channel": "chat",
                "source": {"system": "eval", "source_id": str(n)},
                "participants": [
                    {"participant_id": "c", "role": "customer"},
                    {"participant_id": "a", "role": "agent"},
                ],
                "utterances": [{"participant_id": p, "text": t} for p, t in turns],
            }
        )
        docs.append(Doc(str(n), 1, conversation, [f"{n}:{i}" for i in range(len(turns))]))
    total = sum(len(d.utterance_ids) for d in docs)
    nlp = shared_nlp()
    entities, acts = EntityComponent(nlp=nlp), DialogueActComponent(nlp=nlp)
    timings = {"parse (shared, once)": 0.0, "entities": 0.0, "dialogue_acts": 0.0}
    for offset in range(0, len(docs), batch):
        part = docs[offset : offset + batch]
        for name, step in (
            ("parse (shared, once)", lambda p: parsed(p, nlp)),
            ("entities", entities),
            ("dialogue_acts", acts),
        ):
            started = time.perf_counter()
            step(part)
            timings[name] += time.perf_counter() - started
    print(f"\nSpeed on DialogSum dev ({len(docs)} conversations, {total} utterances)")
    print(f"  {'step':<28}{'seconds':>9}{'utt/s':>10}")
    for name, seconds in timings.items():
        print(f"  {name:<28}{seconds:>9.2f}{total / seconds:>10.0f}")
    both = sum(timings.values())
    print(f"  {'parse + both components':<28}{both:>9.2f}{total / both:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/dialogue_acts/mrda"))
    parser.add_argument("--chunk", type=int, default=100, help="utterances per conversation")
    parser.add_argument("--batch", type=int, default=32, help="conversations per batch")
    parser.add_argument("--classifier", action="store_true", help="add TF-IDF+LR (MRDA train)")
    parser.add_argument("--speed", action="store_true", help="time components on DialogSum")
    parser.add_argument("--limit", type=int, default=0, help="first N val utterances only")
    parser.add_argument(
        "--dialogsum",
        type=Path,
        default=Path("/work/shared/data/summaries/dialogsum/dialogsum.dev.jsonl"),
    )
    args = parser.parse_args()

    val = read_mrda(args.data / "val_set.txt")[: args.limit or None]
    train = read_mrda(args.data / "train_set.txt") if args.classifier else []
    gold = {task: [g[task] for _, _, g in val] for task in TASKS}
    default, previous = DialogueActComponent(), DialogueActComponent({"model": "rules"})
    print(
        f"MRDA val: {len(val)} utterances; gold "
        + ", ".join(f"{task} {sum(gold[task])}" for task in TASKS)
    )
    print(f"  {'text':<9}{'task':<12}{'detector':<24}{'P':>6}{'R':>6}{'F1':>6}")
    for variant in ("as is", "no punct", "asr"):
        texts = [variant_text(t, variant) for _, t, _ in val]
        docs = make_docs([(s, t) for (s, _, _), t in zip(val, texts, strict=True)], args.chunk, "v")
        print(f"running the components on {variant!r} ...", file=sys.stderr)
        predicted, rate = run_rules(default, docs, args.batch)
        # Same docs: the parse is cached, so this times the rules alone.
        before, rules_rate = run_rules(previous, docs, args.batch)
        assert default.encoder is not None
        head = head_alone(docs, default.encoder)
        lowered = [t.lower() for t in texts]
        baselines = {
            "question": ("'?' only", ["?" in t for t in texts]),
            "commitment": (
                "keywords (i'll, ...)",
                [bool(_COMMIT_WORDS.search(t)) for t in lowered],
            ),
            "request": (
                "keywords (please, ...)",
                [bool(_REQUEST_WORDS.search(t)) for t in lowered],
            ),
        }
        for task in TASKS:
            rows = [
                ("encoder+rules (default)", predicted[task]),
                ("rules (previous)", before[task]),
                ("encoder head alone", head[task]),
                baselines[task],
            ]
            if args.classifier:
                rows.append(
                    ("tfidf+LR (MRDA train)", classifier(train, texts, task, variant != "as is"))
                )
            for name, pred in rows:
                p, r, f = prf(gold[task], pred)
                print(f"  {variant:<9}{task:<12}{name:<24}{p:>6.1f}{r:>6.1f}{f:>6.1f}")
        print(
            f"  {variant:<9}throughput, parse included: default {rate:,.0f} utterances/s; "
            f"rules on the cached parse {rules_rate:,.0f}/s"
        )
    if args.speed:
        speed(args.dialogsum, args.batch)


if __name__ == "__main__":
    main()
