"""The learned content selector: which sentences of a conversation carry its summary.

A logistic regression over each content sentence's MiniLM embedding and a few dialogue
features (where it is, who said it, how central and how topical it is), trained by
`training/summary/train_selector.py` on DialogSum train: a sentence is positive when
the greedy ROUGE oracle (the sentences whose third-person rendering best rebuilds the
reference summary) picks it. The weights ship as a small `.npz` (arrays and JSON text,
no pickle); scoring is one matrix product on top of the embeddings the component already
computes. The overview of an unclassified ("other") conversation is built from the best
sentences within a word budget, in the order they were said. The budget grows with the
conversation (DialogSum's references do: their length follows the dialogue's words with
r = 0.88 on train), a line fitted on train and scaled by a factor chosen there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from convolens.enrich.base import Doc
from convolens.enrich.summary.extractive import lexrank
from convolens.enrich.summary.fields import Sentence, sentences_of

__all__ = [
    "ARTEFACT",
    "DIALOGUE_FEATURES",
    "ContentSelector",
    "SentenceInfo",
    "budget_for",
    "candidate_sentences",
    "candidate_vectors",
    "candidate_words",
    "choose_points",
    "features",
    "own_sentences",
    "shared_selector",
]

ARTEFACT = Path(__file__).resolve().parents[1] / "data" / "summary_selector_lr.npz"

DIALOGUE_FEATURES = (
    "relative_position",
    "first_turn",
    "second_turn",
    "last_turn",
    "log_turn",
    "first_in_turn",
    "first_speaker",
    "log_words",
    "question",
    "centroid_cosine",
    "centrality",
    "topical_share",
    "topical_words",
    "has_number",
    "capitalised_words",
    "log_turns",
    "future",
    "first_person",
    "second_person",
)
_CONTENT_WORD = re.compile(r"[a-z][a-z']+")
_FUTURE = re.compile(r"\b(?:will|'ll|going\s+to|gonna|tomorrow|next)\b", re.IGNORECASE)
_FIRST = re.compile(r"\b(?:i|me|my|we|our|us)\b", re.IGNORECASE)
_SECOND = re.compile(r"\b(?:you|your)\b", re.IGNORECASE)
_CAPITALISED = re.compile(r"(?<=\s)[A-Z][a-z]+")


class SentenceInfo:
    """What the features need of one candidate sentence."""

    __slots__ = ("first_in_turn", "speaker", "text", "turn")

    def __init__(self, turn: int, speaker: str, text: str, first_in_turn: bool) -> None:
        self.turn, self.speaker, self.text, self.first_in_turn = turn, speaker, text, first_in_turn


def candidate_sentences(doc: Doc) -> tuple[list[Sentence], list[SentenceInfo], list[str]]:
    """The sentences the selector chooses from (content, three words or more), what the
    features need of each, and the participants' names in the order they first speak."""
    sentences = [s for s in sentences_of(doc) if len(s.text.split()) >= 3]
    infos = []
    previous = -1
    for s in sentences:
        infos.append(SentenceInfo(s.index, s.speaker, s.text, s.index != previous))
        previous = s.index
    participants = list(dict.fromkeys(s.speaker for s in sentences_of(doc)))
    return sentences, infos, participants


def own_sentences(doc: Doc, sentences: Sequence[Sentence]) -> list[str]:
    """The candidates that need their own embedding: those that are not a whole turn."""
    utterances = doc.conversation.utterances
    return [s.raw for s in sentences if not _whole(s, utterances[s.index].text)]


def _whole(sentence: Sentence, text: str) -> bool:
    return sentence.start == 0 and sentence.end >= len(text.rstrip())


def candidate_vectors(
    doc: Doc,
    sentences: Sequence[Sentence],
    utterance_vectors: np.ndarray,
    fresh: Iterator[np.ndarray],
) -> np.ndarray:
    """The candidates' embeddings: a whole turn's is its turn's vector, the others come
    from `fresh`, the embeddings of `own_sentences` in order."""
    utterances = doc.conversation.utterances
    rows = [
        utterance_vectors[s.index] if _whole(s, utterances[s.index].text) else next(fresh)
        for s in sentences
    ]
    return np.vstack(rows) if rows else np.zeros((0, utterance_vectors.shape[1]))


def choose_points(
    render: Callable[[int], str],
    scores: np.ndarray,
    budget: int,
    *,
    most: int = 8,
    overflow: int = 0,
) -> list[tuple[int, str]]:
    """The best-scored sentences, rendered, while they fit `budget` words (the best one
    always; a sentence may run `overflow` words past it), in the order they were said:
    (index, rendering) pairs. Only the `most` best are rendered at all (parsing is the
    costly part)."""
    chosen: list[tuple[int, str]] = []
    words = 0
    for k in [int(k) for k in np.argsort(-scores, kind="stable")[:most]]:
        if words >= budget - 3:
            break  # no sentence worth saying is shorter
        text = render(k)
        n = len(text.split())
        if not n or (chosen and words + n > budget + overflow):
            continue
        chosen.append((k, text))
        words += n
    return sorted(chosen)


def candidate_words(sentences: Sequence[SentenceInfo]) -> int:
    """How many words the candidate sentences hold: the conversation's length, filler left
    out, that the budget follows."""
    return sum(len(s.text.split()) for s in sentences)


def budget_for(words: int, scale: float, intercept: float, slope: float, floor: int) -> int:
    """scale * (intercept + slope * words) rounded, at least `floor`."""
    return max(floor, round(scale * (intercept + slope * words)))


def _content_words(text: str) -> set[str]:
    return {w for w in _CONTENT_WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS}


def features(sentences: Sequence[SentenceInfo], vectors: np.ndarray, turns: int) -> np.ndarray:
    """(len(sentences), 384 + len(DIALOGUE_FEATURES)): each sentence's unit-normalised
    embedding, then the dialogue features in `DIALOGUE_FEATURES` order. `turns`: how many
    turns the conversation has; `vectors`: the sentences' embeddings, row for row."""
    n = len(sentences)
    if n == 0:
        return np.zeros((0, vectors.shape[1] + len(DIALOGUE_FEATURES)), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    centre = unit.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    centrality = lexrank(unit @ unit.T) * n
    words = [_content_words(s.text) for s in sentences]
    # A word said in another turn too is the conversation's topic, not an aside.
    by_turn: dict[int, set[str]] = {}
    for s, w in zip(sentences, words, strict=True):
        by_turn.setdefault(s.turn, set()).update(w)
    first_speaker = sentences[0].speaker
    rows = []
    for k, s in enumerate(sentences):
        elsewhere: set[str] = set()
        for turn, seen in by_turn.items():
            if turn != s.turn:
                elsewhere |= seen
        shared = len(words[k] & elsewhere)
        count = len(s.text.split())
        rows.append(
            [
                s.turn / max(1, turns - 1),
                float(s.turn == 0),
                float(s.turn == 1),
                float(s.turn == turns - 1),
                math.log1p(s.turn),
                float(s.first_in_turn),
                float(s.speaker == first_speaker),
                math.log1p(count),
                float(s.text.rstrip().endswith("?")),
                float(unit[k] @ centre),
                float(centrality[k]),
                shared / max(1, len(words[k])),
                math.log1p(shared),
                float(any(c.isdigit() for c in s.text)),
                math.log1p(len(_CAPITALISED.findall(s.text))),
                math.log1p(turns),
                float(bool(_FUTURE.search(s.text))),
                float(bool(_FIRST.search(s.text))),
                float(bool(_SECOND.search(s.text))),
            ]
        )
    return np.hstack([unit, np.asarray(rows, dtype=np.float64)]).astype(np.float32)


class ContentSelector:
    """The trained logistic regression, read from the `.npz` artefact without pickle."""

    def __init__(self, path: Path | str = ARTEFACT) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.coef = np.asarray(data["coef"], dtype=np.float64).ravel()
            self.intercept = float(np.asarray(data["intercept"]).ravel()[0])
            self.mean = np.asarray(data["mean"], dtype=np.float64)
            self.scale = np.asarray(data["scale"], dtype=np.float64)
            self.metadata: dict[str, Any] = json.loads(str(data["metadata"]))
        if not (len(self.coef) == len(self.mean) == len(self.scale)):
            raise ValueError(f"{path}: coef, mean and scale differ in length")
        self.budget_words = int(self.metadata.get("budget_words", 20))
        # budget = scale * (intercept + slope * candidate words), at least `budget_floor`;
        # an artefact without the line (v1) has the fixed `budget_words`.
        line = self.metadata.get("budget_line")
        self.budget_line: tuple[float, float, float, int] | None = (
            (
                float(line["scale"]),
                float(line["intercept"]),
                float(line["slope"]),
                int(line["floor"]),
            )
            if isinstance(line, dict)
            else None
        )
        # How far past the budget the next-best sentence may run (v1: none).
        self.overflow = int(self.metadata.get("overflow_words", 0))
        self.model_id = str(self.metadata.get("model_id", "summary-selector-lr"))

    def budget(self, sentences: Sequence[SentenceInfo]) -> int:
        """The overview's word budget for a conversation with these candidate sentences."""
        if self.budget_line is None:
            return self.budget_words
        return budget_for(candidate_words(sentences), *self.budget_line)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Probability that each row's sentence belongs in the summary."""
        if matrix.shape[1] != len(self.coef):
            raise ValueError(f"selector expects {len(self.coef)} features, got {matrix.shape[1]}")
        z = (matrix.astype(np.float64) - self.mean) / self.scale
        logits = z @ self.coef + self.intercept
        probs: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
        return probs


_SHARED: dict[str, ContentSelector] = {}


def shared_selector(path: Path | str = ARTEFACT) -> ContentSelector:
    """One loaded selector per artefact path for the process."""
    key = str(path)
    if key not in _SHARED:
        _SHARED[key] = ContentSelector(path)
    return _SHARED[key]
