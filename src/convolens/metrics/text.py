"""Text-level measures (words, questions, backchannels) and response times between authors."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "BACKCHANNEL_PHRASES",
    "ResponseTimes",
    "is_backchannel",
    "question_count",
    "response_times",
    "word_count",
]

# A token is a word when it holds at least one letter or digit ([^\W_] is exactly that in
# Unicode regexes), so "--" or "…" do not inflate counts but "3pm" and "l'été" do.
_WORD = re.compile(r"\S*[^\W_]\S*")
# A run of question marks (optionally mixed with "!") closes one question, but only when
# it ends a token, so the "?" inside a URL query string is not a question.
_QUESTION = re.compile(r"[?？][?？!]*(?![^\s\"'”’)\]»])")
# Backchannel normalisation keeps letters, digits, apostrophes and inner hyphens
# ("uh-huh", "mm-hmm") and turns all other punctuation into spaces.
_NOT_TOKEN = re.compile(r"[^\w\s'’-]|_")

BACKCHANNEL_PHRASES: frozenset[str] = frozenset(
    {
        "yeah",
        "yes",
        "yep",
        "yup",
        "ya",
        "yah",
        "ok",
        "okay",
        "k",
        "right",
        "sure",
        "uh-huh",
        "uh huh",
        "uhhuh",
        "mhm",
        "mhmm",
        "mm-hmm",
        "mm hmm",
        "mmhmm",
        "mm",
        "mmm",
        "hmm",
        "hm",
        "got it",
        "i see",
        "true",
        "exactly",
        "totally",
        "alright",
        "all right",
        "cool",
        "great",
        "oh",
        "ah",
        "uh",
        "um",
        "aha",
        "ahh",
        "ohh",
        "oh okay",
        "oh ok",
        "of course",
        "indeed",
        "fine",
        "nice",
        "perfect",
    }
)
# Longest phrase, in tokens: bounds the phrase search below.
_MAX_PHRASE_TOKENS = max(len(phrase.split()) for phrase in BACKCHANNEL_PHRASES)
_BACKCHANNEL_MAX_WORDS = 3


def word_count(text: str) -> int:
    """Whitespace-separated tokens that contain at least one letter or digit."""
    return len(_WORD.findall(text))


def question_count(text: str) -> int:
    """Sentences ending in '?': each run of question marks counts once."""
    # Most messages have no '?'; the substring test skips the regex for them.
    if "?" not in text and "？" not in text:
        return 0
    return len(_QUESTION.findall(text))


# Backchannels are a small, very repetitive vocabulary ("yeah", "ok"): caching the verdict
# per exact text makes the check nearly free on large batches.
@lru_cache(maxsize=8192)
def is_backchannel(text: str) -> bool:
    """True for short listener feedback ("yeah", "mm-hmm", "ok got it") rather than a turn.

    The text is lowercased and stripped of punctuation; it must have at most three words,
    all covered by phrases in `BACKCHANNEL_PHRASES`. An empty (punctuation-only) text is a
    backchannel too: it carries no content that could take the floor.
    """
    tokens = [t.strip("-'’") for t in _NOT_TOKEN.sub(" ", text.lower()).split()]
    tokens = [t.replace("’", "'") for t in tokens if t]
    if len(tokens) > _BACKCHANNEL_MAX_WORDS:
        return False
    # Greedy-free cover check: can the token list be split into known phrases? With at
    # most three tokens the search is a handful of set look-ups.
    reachable = [True] + [False] * len(tokens)
    for i in range(len(tokens)):
        if not reachable[i]:
            continue
        for size in range(1, min(_MAX_PHRASE_TOKENS, len(tokens) - i) + 1):
            if " ".join(tokens[i : i + size]) in BACKCHANNEL_PHRASES:
                reachable[i + size] = True
    return reachable[-1]


@dataclass(slots=True)
class ResponseTimes:
    """Response times between authors, in seconds, on one ordered timeline."""

    # Every response in order: a message whose author differs from the previous message's.
    all: list[float] = field(default_factory=list)
    by_participant: dict[str, list[float]] = field(default_factory=dict)
    # From the opening customer message to the first reply by a non-customer.
    first: float | None = None
    # Per participant: first message after the opening message (the opener's author excluded).
    first_by_participant: dict[str, float] = field(default_factory=dict)


def response_times(
    participant_ids: Sequence[str],
    starts: Sequence[float],
    ends: Sequence[float],
    roles: Mapping[str, str],
) -> ResponseTimes:
    """Response times on a timeline already sorted by start.

    Written messages pass `starts == ends == sent_at` (seconds from any origin), so a
    response is the gap between the two messages' timestamps; speech turns pass their
    start/end, so a response is the silence from the end of the previous turn. Both are
    `max(0, start - previous end)`: an overlapping reply answers immediately, not early.
    """
    result = ResponseTimes()
    n = len(participant_ids)
    if n == 0:
        return result
    by_participant = result.by_participant
    previous = participant_ids[0]
    for k in range(1, n):
        author = participant_ids[k]
        if author != previous:
            gap = starts[k] - ends[k - 1]
            value = gap if gap > 0.0 else 0.0
            result.all.append(value)
            by_participant.setdefault(author, []).append(value)
            previous = author

    # The opener is the first customer message; a conversation with no customer messages
    # (roles unknown) opens with its first message, and then anyone else may respond.
    opener = 0
    customer_mode = False
    for k in range(n):
        if roles.get(participant_ids[k]) == "customer":
            opener, customer_mode = k, True
            break
    opener_id = participant_ids[opener]
    opened_at = ends[opener]
    firsts = result.first_by_participant
    for k in range(opener + 1, n):
        author = participant_ids[k]
        if author == opener_id or author in firsts:
            continue
        gap = starts[k] - opened_at
        firsts[author] = gap if gap > 0.0 else 0.0
        if result.first is None and (not customer_mode or roles.get(author) != "customer"):
            result.first = firsts[author]
    return result
