"""Extractive selection: the units (turns, or sentences of long turns) that carry the
conversation, by embedding centrality.

Continuous LexRank (Erkan & Radev 2004: PageRank over the cosine-similarity graph)
averaged with the cosine to the conversation's centroid, so a turn that restates the
common thread scores high and "Hi, how can I help?" scores low, plus a small bonus for
coming early (people say what they came for first). Units under `min_words` words,
greetings, filler and sign-offs are not candidates; a unit more similar than `redundancy`
to one already chosen is skipped (Maximal Marginal Relevance in its simplest form). When
both a customer and an agent speak, the best unit of each is taken first, the customer's
favouring early turns (the problem) and the agent's late ones that report something done.
"""

from __future__ import annotations

import re

import numpy as np

from convolens.enrich.base import Doc
from convolens.enrich.summary.settings import SummaryConfig
from convolens.enrich.summary.text import is_filler
from convolens.model import Role

__all__ = ["RESOLUTION", "SENTENCE", "Unit", "choose", "lexrank", "split_units"]

# A turn that only greets or thanks says nothing about the issue.
SMALL_TALK = re.compile(
    r"^\W*(?:hi|hello|hey|good\s+(?:morning|afternoon|evening)|thanks?|thank\s+you|"
    r"you'?re\s+welcome|bye|goodbye|have\s+a\s+(?:nice|great|good)|ok(?:ay)?|sure|great|"
    r"perfect|no\s+problem|anything\s+else|is\s+there\s+anything\s+else|glad)\b",
    re.IGNORECASE,
)
# An e-mail sign-off: what follows it is a signature, however long.
SIGN_OFF = re.compile(
    r"^\W*(?:(?:kind|best|warm|many)\s+(?:regards|wishes|thanks)|regards|sincerely|cheers)\b",
    re.IGNORECASE,
)
# What an agent says when something got done: "I have cancelled", "it has been
# refunded", "is now fixed", "will ship today". It tips the agent's pick to the outcome.
RESOLUTION = re.compile(
    r"\b(?:i|we)(?:'ve|\s+have)\s+(?:\w+\s+)?\w+(?:ed|en|t)\b|\b(?:has|have)\s+been\b|"
    r"\bis\s+now\b|\bwill\s+(?:ship|arrive|be\s+(?:back|credited|refunded|fixed))\b|"
    r"\b(?:fixed|resolved|refunded|processed|credited|replaced|reissued|escalated)\b",
    re.IGNORECASE,
)
# A sentence ends at ., ! or ? before white space, or at a blank line; a single line break
# does not end one (e-mail bodies wrap mid-sentence).
# A title's full stop ("Mr. Fro", "the No. 7 bus") ends nothing.
SENTENCE = re.compile(
    r"\S.*?(?:(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)[.!?]+(?!(?<=\bNo\.)\s+\d)"
    r"[\"')\]]*(?=\s)"
    r"|(?=\n[ \t]*\n)|\Z)",
    re.DOTALL,
)


def lexrank(similarity: np.ndarray, *, damping: float = 0.85, iterations: int = 50) -> np.ndarray:
    """Continuous LexRank: the stationary distribution of a random walk on the graph whose
    edges are the (non-negative) cosine similarities; scores sum to 1."""
    n = len(similarity)
    if n == 0:
        return np.zeros(0)
    weights = np.clip(similarity, 0.0, None).astype(np.float64)
    np.fill_diagonal(weights, 0.0)
    sums = weights.sum(axis=1, keepdims=True)
    # A unit similar to nothing jumps anywhere (a dangling node in PageRank terms).
    transition = np.where(sums > 0, weights / np.where(sums > 0, sums, 1.0), 1.0 / n)
    scores = np.full(n, 1.0 / n)
    for _ in range(iterations):
        updated = (1 - damping) / n + damping * (transition.T @ scores)
        if np.abs(updated - scores).sum() < 1e-9:
            scores = updated
            break
        scores = updated
    result: np.ndarray = scores / scores.sum()
    return result


class Unit:
    """A candidate: a whole turn, or one sentence of a long turn."""

    __slots__ = ("end", "index", "length", "role", "start", "text", "whole")

    def __init__(
        self, index: int, role: Role, start: int, end: int, text: str, length: int
    ) -> None:
        self.index, self.role, self.start, self.end = index, role, start, end
        self.text, self.length = text, length  # length: of the whole turn
        self.whole = start == 0 and end == length


def split_units(doc: Doc, settings: SummaryConfig) -> list[Unit]:
    """The candidate units of `doc`: each turn, or each sentence of a turn longer than
    `long_turn_words` words (e-mails, monologues)."""
    roles = {p.participant_id: p.role for p in doc.conversation.participants}
    out: list[Unit] = []
    for i, utterance in enumerate(doc.conversation.utterances):
        role = roles.get(utterance.participant_id, Role.unknown)
        text = utterance.text
        if utterance.internal or role not in settings.roles or not text.strip():
            continue
        if len(text.split()) <= settings.long_turn_words:
            out.append(Unit(i, role, 0, len(text), text, len(text)))
            continue
        for match in SENTENCE.finditer(text):
            piece = match.group(0)
            start = match.start() + len(piece) - len(piece.lstrip())
            end = match.end() - (len(piece) - len(piece.rstrip()))
            if end > start:
                out.append(Unit(i, role, start, end, text[start:end], len(text)))
    return out


def is_candidate(unit: Unit, settings: SummaryConfig) -> bool:
    words = unit.text.split()
    if len(words) < settings.min_words or SIGN_OFF.match(unit.text):
        return False
    if is_filler(unit.text):
        return False
    # Short greetings and thanks; a long turn that opens with "Hi" still counts.
    return not (SMALL_TALK.match(unit.text) and len(words) < 12)


def choose(units: list[Unit], matrix: np.ndarray, s: SummaryConfig) -> list[int]:
    """Indices (into `units`) of the summary, in conversation order."""
    eligible = [k for k, u in enumerate(units) if is_candidate(u, s)]
    if not eligible:
        eligible = [k for k, u in enumerate(units) if u.text.split()]
    if not eligible:
        return []
    vectors = matrix[eligible]
    similarity = vectors @ vectors.T
    centre = vectors.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    centrality = lexrank(similarity) * len(eligible)  # 1.0 = average
    # Position in turns, sentences of a long turn in between: 1 first, near 0 last.
    span = units[-1].index + 1
    early = np.array(
        [1.0 - (units[k].index + units[k].start / max(1, units[k].length)) / span for k in eligible]
    )
    salience = 0.5 * centrality + 0.5 * (vectors @ centre)
    scores = salience + s.position_weight * early
    count = round(len(eligible) * s.ratio)
    count = max(s.min_sentences, min(s.max_sentences, count, len(eligible)))
    order = [int(k) for k in np.argsort(-scores, kind="stable")]
    chosen: list[int] = []
    if s.both_sides and count >= 2:
        # The customer's best unit, early: the problem. The agent's best unit, late:
        # the outcome (an agent's early turns ask questions or diagnose).
        outcome = np.array([bool(RESOLUTION.search(units[k].text)) for k in eligible])
        agent_scores = salience + s.position_weight * (1 - early) + 0.15 * outcome
        late = [int(k) for k in np.argsort(-agent_scores, kind="stable")]
        for role, ranking in ((Role.customer, order), (Role.agent, late)):
            best = next((k for k in ranking if units[eligible[k]].role == role), None)
            if best is not None:
                chosen.append(best)
    for k in order:
        if len(chosen) >= count:
            break
        if k in chosen or any(similarity[k, j] > s.redundancy for j in chosen):
            continue
        chosen.append(k)
    return sorted((eligible[k] for k in chosen), key=lambda k: (units[k].index, units[k].start))
