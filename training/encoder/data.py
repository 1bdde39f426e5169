"""Training and dev examples for the conversation encoder, read from ../shared/data.

Every example is (text, task, label): one utterance labelled for one head. The heads and
their label sets live in `LABELS` and are written into the artefact's `labels.json`, so
the runtime (`convolens.enrich.conversation_encoder`) reads them from the artefact.

Mappings (why each source label lands where it does) are beside each reader.
"""

from __future__ import annotations

import csv
import random
import re
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

DATA = Path("/work/shared/data")

SENTIMENT = ("negative", "neutral", "positive")
# What a CX lead acts on. Urgency has no corpus here: it is a lexicon in the runtime
# component (with the matched phrase as evidence), not a head.
EMOTION = ("none", "frustration", "confusion", "satisfaction")
DIALOGUE_ACT = (
    "statement",
    "backchannel",
    "question_yn",
    "question_wh",
    "question_tag",
    "question_declarative",
    "question_or",
    "commitment",
    "directive",
    "suggestion",
    "other",
)
LABELS = {"sentiment": SENTIMENT, "emotion": EMOTION, "dialogue_act": DIALOGUE_ACT}

Example = tuple[str, str, int]  # text, task, label index

_WH = re.compile(r"^\s*(?:what|why|how|who|whom|whose|where|when|which)\b", re.I)
_NORM = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _NORM.sub(" ", text).strip()


# ---------------------------------------------------------------- sentiment
def tweeteval_val() -> list[Example]:
    folder = DATA / "sentiment/tweeteval"
    texts = (folder / "val_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (folder / "val_labels.txt").read_text(encoding="utf-8").splitlines()
    return [(_clean(t), "sentiment", int(y)) for t, y in zip(texts, labels, strict=True)]


def _key(text: str) -> str:
    """Overlap key: TweetEval rewrote handles to @user and stripped whitespace."""
    text = re.sub(r"@\w+", "@user", text.lower())
    return re.sub(r"[^a-z0-9@]+", "", text)


def semeval_train() -> list[Example]:
    """SemEval-2017 4A pool, deduplicated, minus any text that is in TweetEval val."""
    dev_keys = {_key(t) for t, _, _ in tweeteval_val()}
    seen: set[str] = set()
    out: list[Example] = []
    dropped = 0
    for path in sorted((DATA / "sentiment/semeval2017_task4a").glob("twitter-*-A.tsv")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) < 3 or parts[1] not in SENTIMENT:
                continue
            text = _clean(parts[2])
            key = _key(text)
            if key in seen:
                continue
            seen.add(key)
            if key in dev_keys:
                dropped += 1
                continue
            out.append((text, "sentiment", SENTIMENT.index(parts[1])))
    print(f"semeval: {len(out)} distinct texts kept, {dropped} dropped (in TweetEval val)")
    return out


def sst2(split: str) -> list[Example]:
    path = DATA / "sentiment/sst2" / f"stsa.binary.{split}"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, _, text = line.partition(" ")
        out.append((_clean(text), "sentiment", 2 if label == "1" else 0))
    return out


def meld_sentiment(split: str) -> list[Example]:
    path = DATA / "dialogue_emotion/meld" / f"{split}_sent_emo.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        (_clean(r["Utterance"].replace("\x92", "'")), "sentiment", SENTIMENT.index(r["Sentiment"]))
        for r in rows
        if r["Sentiment"] in SENTIMENT and r["Utterance"].strip()
    ]


# ---------------------------------------------------------------- emotion
# GoEmotions' 27 labels onto the four the product reports. Ambiguous ones (surprise,
# curiosity, approval, disapproval, sadness) are left out rather than forced.
_GO_MAP = {
    "anger": "frustration",
    "annoyance": "frustration",
    "disgust": "frustration",
    "disappointment": "frustration",
    "confusion": "confusion",
    "gratitude": "satisfaction",
    "relief": "satisfaction",
    "joy": "satisfaction",
    "admiration": "satisfaction",
    "neutral": "none",
}


def goemotions(split: str) -> list[Example]:
    folder = DATA / "sentiment/goemotions"
    names = (folder / "labels.txt").read_text(encoding="utf-8").split()
    out = []
    for line in (folder / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
        text, ids, _ = line.split("\t")
        mapped = {_GO_MAP.get(names[int(i)]) for i in ids.split(",")}
        mapped.discard(None)
        # Only unambiguous rows: exactly one target class after mapping, and no
        # unmapped label beside "neutral" (a "neutral + curiosity" row is not "none").
        unmapped = [names[int(i)] for i in ids.split(",") if names[int(i)] not in _GO_MAP]
        if len(mapped) != 1 or unmapped:
            continue
        label = mapped.pop()
        assert label is not None
        out.append((_clean(text), "emotion", EMOTION.index(label)))
    return out


# ---------------------------------------------------------------- dialogue acts
def _mrda_act(text: str, general: str, full: str) -> str:
    if full == "cc":
        return "commitment"
    if full == "co":
        return "directive"
    if general in ("qy", "qw", "qh", "qo", "qr", "qrr"):
        if full == "d":
            return "question_declarative"
        if full == "g":
            return "question_tag"
        if general in ("qr", "qrr"):
            return "question_or"
        if general in ("qw", "qo") or (general == "qh" and _WH.search(text)):
            return "question_wh"
        return "question_yn"
    if full == "g":
        return "question_tag"
    if full == "cs":
        return "suggestion"
    if general == "b" or full in ("b", "bk"):
        return "backchannel"
    if general in ("fh", "fg", "%", "h"):
        return "other"
    return "statement"


def mrda(split: str) -> list[Example]:
    path = DATA / "dialogue_acts/mrda" / f"{split}_set.txt"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        _speaker, text, _basic, general, full = line.split("|")
        act = _mrda_act(text, general, full)
        out.append((_clean(text), "dialogue_act", DIALOGUE_ACT.index(act)))
    return out


# SWBD-DAMSL tags (as this copy writes them) onto the same acts.
_SWDA_MAP = {
    "qy": "question_yn",
    "qw": "question_wh",
    "qo": "question_wh",
    "qy^d": "question_declarative",
    "qw^d": "question_wh",
    "^g": "question_tag",
    "qrr": "question_or",
    "ad": "directive",
    "oo_co_cc": "commitment",
    "b": "backchannel",
    "bk": "backchannel",
    "bh": "backchannel",
    "ba": "backchannel",
    "b^m": "backchannel",
    "%": "other",
    "h": "other",
    "fc": "other",
    "fp": "other",
    "t1": "other",
    "t3": "other",
}


def _swda_act(text: str, tag: str) -> str | None:
    if tag == "qh":
        return "question_wh" if _WH.search(text) else "question_yn"
    if tag in _SWDA_MAP:
        return _SWDA_MAP[tag]
    if tag in ("sd", "sv", "aa", "ny", "na", "nn", "ng", "no", "ar", "^q", "^2", "aap_am"):
        return "statement"
    return None  # rare or mixed tags: left out


def swda_train() -> list[Example]:
    out = []
    for path in sorted((DATA / "dialogue_acts/swda/train").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("|")
            if len(parts) != 3:
                continue
            act = _swda_act(parts[1], parts[2])
            if act and parts[1].strip():
                out.append((_clean(parts[1]), "dialogue_act", DIALOGUE_ACT.index(act)))
    return out


def dailydialog_emotion() -> list[Example]:
    """DailyDialog train emotions: anger/disgust -> frustration, happiness -> satisfaction."""
    out = []
    with zipfile.ZipFile(DATA / "dialogue_emotion/dailydialog/train.zip") as archive:
        texts = archive.read("train/dialogues_train.txt").decode("utf-8").splitlines()
        emotions = archive.read("train/dialogues_emotion_train.txt").decode().splitlines()
    mapping = {"0": "none", "1": "frustration", "2": "frustration", "4": "satisfaction"}
    for line, labels in zip(texts, emotions, strict=True):
        utterances = [u for u in line.split("__eou__") if u.strip()]
        tags = labels.split()
        if len(utterances) != len(tags):
            continue  # the one misaligned dialogue the README names
        for text, tag in zip(utterances, tags, strict=True):
            if tag in mapping:
                out.append((_clean(text), "emotion", EMOTION.index(mapping[tag])))
    return out


# ---------------------------------------------------------------- sampling
def balanced(
    examples: list[Example], total: int, rng: random.Random, floor: int = 0
) -> list[Example]:
    """`total` examples with each class capped at an equal share; small classes are kept
    whole and repeated up to `floor` so rare acts (commitments) are seen often enough."""
    by_label: dict[int, list[Example]] = defaultdict(list)
    for example in examples:
        by_label[example[2]].append(example)
    share = total // max(1, len(by_label))
    out: list[Example] = []
    for rows in by_label.values():
        rng.shuffle(rows)
        take = rows[:share]
        while len(take) < min(floor, share):
            take = take + rows[: min(len(rows), min(floor, share) - len(take))]
        out.extend(take)
    spare = total - len(out)
    if spare > 0:
        rest = [e for rows in by_label.values() for e in rows[share:]]
        rng.shuffle(rest)
        out.extend(rest[:spare])
    return out


def describe(name: str, examples: list[Example]) -> None:
    counts = Counter((task, LABELS[task][label]) for _, task, label in examples)
    print(f"{name}: {len(examples)} " + ", ".join(f"{k[1]} {v}" for k, v in sorted(counts.items())))
