"""Agent or customer? Inferred from what each speaker says, unless metadata says.

Call-centre agents open and steer calls with recognisable phrases ("thank you for
calling", "how can I help", "this call may be recorded", "let me check your account");
customers describe their problem ("I was charged", "my account", "I can't"). Each
speaker gets a score from these cues; with two speakers the higher agent score is the
agent. Without any cue the roles stay unknown rather than being guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from convolens.model import Role

__all__ = ["infer_roles"]

_AGENT_CUES = [
    r"thank(s| you) for (calling|contacting|reaching out|holding|your patience)",
    r"how (can|may) i (help|assist)",
    r"(this|the) call (may|will|is) (be )?(recorded|monitored)",
    r"my name is \w+(,)? (and )?(i('m| am)|from|with)",
    r"let me (check|look|pull up|see|verify|take a look)",
    r"(can|could|may) i (have|get) your (name|email|account|order|phone)",
    r"is there anything else",
    r"(i('ll| will)|we('ll| will)) (send|refund|escalate|credit|process|follow up)",
    r"(sorry|apologi[sz]e) (about|for) (that|the)",
    r"(your|the) (account|order|ticket) (number|id)",
]
_CUSTOMER_CUES = [
    r"\bi (was|got|have been) (charged|billed)",
    r"\bmy (account|order|card|subscription|package|password|bill|invoice)\b",
    r"\bi (can't|cannot|couldn't|am unable to)\b",
    r"\bi('d| would) like to (cancel|return|upgrade|know|order)",
    r"\bi('m| am) (calling|writing) (about|because|to)",
    r"\bwhere is my\b",
]
_AGENT = [re.compile(p, re.IGNORECASE) for p in _AGENT_CUES]
_CUSTOMER = [re.compile(p, re.IGNORECASE) for p in _CUSTOMER_CUES]


def _score(text: str) -> int:
    return sum(bool(p.search(text)) for p in _AGENT) - sum(bool(p.search(text)) for p in _CUSTOMER)


def infer_roles(texts: Mapping[str, str]) -> dict[str, Role]:
    """Role per speaker from the whole of what each said (speaker -> text)."""
    scores = {speaker: _score(text) for speaker, text in texts.items()}
    roles = {speaker: Role.unknown for speaker in texts}
    if not scores or max(scores.values()) <= 0:
        return roles
    agent = max(scores, key=lambda s: scores[s])
    # A tie for the top score is not evidence either way.
    if sum(1 for score in scores.values() if score == scores[agent]) > 1:
        return roles
    for speaker in roles:
        roles[speaker] = Role.agent if speaker == agent else Role.customer
    return roles
