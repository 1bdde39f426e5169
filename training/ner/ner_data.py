"""Readers and scoring for the NER training script and eval/pii.py (no model code here)."""

from __future__ import annotations

import random
from pathlib import Path

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
# WNUT-17's six types onto CoNLL's four: groups (bands, teams) and corporations are
# organisations; products and creative works are MISC.
WNUT_TYPES = {
    "person": "PER",
    "location": "LOC",
    "group": "ORG",
    "corporation": "ORG",
    "product": "MISC",
    "creative-work": "MISC",
}

Sentence = tuple[list[str], list[str]]


def read_conll(path: Path) -> list[Sentence]:
    """CoNLL-2003 in IOB2, one `token tag` per line (the last column is the NER tag)."""
    return _read(path, None)


def read_wnut(path: Path) -> list[Sentence]:
    """WNUT-17 (`token<TAB>tag`), tags mapped onto PER / LOC / ORG / MISC."""
    return _read(path, WNUT_TYPES)


def _read(path: Path, mapping: dict[str, str] | None) -> list[Sentence]:
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        tag = parts[-1]
        if mapping is not None and tag != "O":
            prefix, _, kind = tag.partition("-")
            tag = f"{prefix}-{mapping[kind]}"
        words.append(parts[0])
        tags.append(tag)
    return sentences


def spans(tags: list[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) entity spans of an IOB2 tag sequence (a stray I- opens a span)."""
    out: set[tuple[int, int, str]] = set()
    start, kind = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if start >= 0 and (prefix != "I" or label != kind):
            out.add((start, i, kind))
            start = -1
        if prefix == "B" or (prefix == "I" and start < 0):
            start, kind = i, label
    return out


def entity_f1(gold: list[Sentence], predicted: list[list[str]]) -> dict[str, dict[str, float]]:
    """Exact-span precision, recall and F1 per type and overall (conlleval's definition)."""
    counts: dict[str, list[int]] = {}
    for (_, tags), pred in zip(gold, predicted, strict=True):
        g, p = spans(tags), spans(pred)
        for kind in {k for *_, k in g | p} | {"ALL"}:
            row = counts.setdefault(kind, [0, 0, 0])
            gk = g if kind == "ALL" else {s for s in g if s[2] == kind}
            pk = p if kind == "ALL" else {s for s in p if s[2] == kind}
            row[0] += len(gk & pk)
            row[1] += len(pk)
            row[2] += len(gk)
    result = {}
    for kind, (tp, npred, ngold) in sorted(counts.items()):
        precision = tp / npred if npred else 0.0
        recall = tp / ngold if ngold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[kind] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
        }
    return result


# Conversational frames the news and tweet data lack: greetings, sign-offs, self-introductions
# and vendor talk. Filled with CoNLL-train names so no evaluation text leaks in.
_PERSON_FRAMES = [
    "hi {p} , thanks for reaching out",
    "hey {p} how are you doing today",
    "thanks , {p}",
    "thank you {p} , that helps a lot",
    "this is {p} from {o} , how can I help",
    "my name is {p} and I am calling about my account",
    "can I speak to {p} please",
    "{p} here from the {o} support team",
    "best regards , {p}",
    "cheers {p}",
    "ok {p} , let me check that for you",
    "I spoke with {p} yesterday and she said it was fixed",
    "please ask {p} to call me back",
    "good morning {p}",
    "sorry {p} , could you repeat that",
]
_ORG_FRAMES = [
    "we are also evaluating {o} for this",
    "we switched from {o} last year",
    "is this cheaper than {o}",
    "I have been a {o} customer for years",
    "the {o} app keeps crashing",
]


def conversational_examples(
    train: list[Sentence], rng: random.Random, count: int
) -> list[Sentence]:
    """`count` frame sentences with CoNLL-train person and organisation names, half lower-cased."""
    people: list[list[str]] = []
    orgs: list[list[str]] = []
    for words, tags in train:
        for start, end, kind in spans(tags):
            if kind == "PER":
                people.append(words[start:end])
            elif kind == "ORG" and words[start].istitle():
                orgs.append(words[start:end])
    out: list[Sentence] = []
    for _ in range(count):
        person = rng.choice(people)
        if len(person) > 1 and rng.random() < 0.5:
            person = person[:1]  # first names alone, as greetings use them
        org = rng.choice(orgs)
        frame = rng.choice(_PERSON_FRAMES if rng.random() < 0.75 else _ORG_FRAMES)
        words, tags = [], []
        for piece in frame.split():
            if piece == "{p}":
                words += person
                tags += ["B-PER"] + ["I-PER"] * (len(person) - 1)
            elif piece == "{o}":
                words += org
                tags += ["B-ORG"] + ["I-ORG"] * (len(org) - 1)
            else:
                words.append(piece)
                tags.append("O")
        if rng.random() < 0.5:
            words = [w.lower() for w in words]
        out.append((words, tags))
    return out
