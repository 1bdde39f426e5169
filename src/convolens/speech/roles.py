"""Agent or customer? Inferred from what each speaker says, unless metadata says.

Call-centre agents open and steer calls with recognisable phrases ("thank you for
calling", "how can I help", "this call may be recorded", "let me check your account");
customers describe their problem ("I was charged", "I'd like to cancel my account").
Each speaker gets a score from these cues; with two speakers the higher agent score is
the agent and the other the customer. Cues are strong (service formulas that hardly occur
outside a service conversation) or weak ("my account", "I can't": everyday talk says them
too); a decision needs at least one strong cue, so two friends chatting stay unknown.
Without any cue the roles stay unknown rather than being guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from convolens.model import Role

__all__ = ["agent_score", "greeted_organisations", "infer_roles"]

_STRONG_AGENT_CUES = [
    r"thank(s| you) for (calling|contacting|reaching out( to)?|holding|choosing|"
    r"your patience|waiting)",
    r"how (can|may|could) (i|we) (help|assist)",
    r"(may|can) i help you",
    r"what can i (do|help) (for|with) you",
    r"(this|the|your) call (may|will|is|might) (be )?(being )?(recorded|monitored)",
    r"you'?re (through|speaking) to",
    r"(you'?ve|you have) reached",
    r"is there anything else (i|we) can",
    r"(can|could|may) i (have|get|take|confirm) your (full )?(name|email|account|order|phone|"
    r"date of birth|postcode|zip|address|card)",
    r"(can|could|may) i ask who'?s calling",
    r"let me (pull up|check|look up|bring up) (your|the) (account|order|details|booking)",
    r"(i('ll| will)|we('ll| will)|i('ve| have)|we('ve| have)) (issued|processed|refunded|"
    r"credited|escalated|waived)",
    r"for (security|verification) (purposes|reasons)",
]
_WEAK_AGENT_CUES = [
    r"my name is \w+(,)? (and )?(i('m| am)|from|with)",
    r"this is \w+ (from|at|with|speaking)",
    r"let me (check|look|see|verify|take a look)",
    r"(i('ll| will)|we('ll| will)) (send|refund|escalate|credit|process|follow up)",
    r"(sorry|apologi[sz]e) (about|for) (that|the|any)",
    r"(your|the) (account|order|ticket|case|reference) (number|id)",
    r"(one|a) moment,? please|bear with me",
    r"have a (great|good|nice|lovely) (day|evening|one)",
]
_STRONG_CUSTOMER_CUES = [
    r"\bi (was|got|have been|'ve been) (charged|billed|overcharged|double charged)",
    r"\bi('d| would) like to (cancel|close|return|upgrade|downgrade|dispute|report|change my)",
    r"\bi (want|need) (to cancel|a refund|my money back|to close my|to speak to)",
    r"\b(cancel|close) my (account|subscription|membership|contract|plan|order|service)",
    r"\bi('m| am) (calling|writing|contacting you|reaching out) (about|because|to|regarding)",
    r"\bwhere is my\b",
    r"\bmy (order|package|parcel|delivery|refund) (hasn't|has not|never|didn't|did not)",
]
_WEAK_CUSTOMER_CUES = [
    r"\bmy (account|order|card|subscription|package|password|bill|invoice)\b",
    r"\bi (can't|cannot|couldn't|am unable to)\b",
    r"\bi('d| would) like to (know|order)",
]
_FLAGS = re.IGNORECASE | re.MULTILINE
_STRONG_AGENT = [re.compile(p, _FLAGS) for p in _STRONG_AGENT_CUES]
_WEAK_AGENT = [re.compile(p, _FLAGS) for p in _WEAK_AGENT_CUES]
_STRONG_CUSTOMER = [re.compile(p, _FLAGS) for p in _STRONG_CUSTOMER_CUES]
_WEAK_CUSTOMER = [re.compile(p, _FLAGS) for p in _WEAK_CUSTOMER_CUES]
# "Thank you for calling Acme Bank, this is Dana": the organisation an agent names.
_ORGANISATION = re.compile(
    r"(?i:thank(?:s| you) for (?:calling|contacting|choosing)|welcome to|"
    r"you'?re (?:through|speaking) to|(?:you'?ve|you have) reached)\s+"
    r"(?P<name>(?:[A-Z][\w&'\-]*)(?:\s+[A-Z][\w&'\-]*){0,2})"
)
_STRONG = 2


def _hits(patterns: list[re.Pattern[str]], text: str) -> int:
    return sum(bool(p.search(text)) for p in patterns)


def _normalise(text: str) -> str:
    # Curly apostrophes, and tokenised ones ("I ' d") as some corpora write them.
    return re.sub(r"(\w) ' (\w)", r"\1'\2", text.replace("\u2019", "'"))


def agent_score(text: str) -> tuple[int, bool]:
    """(score, strong): agent cues minus customer cues (strong ones count twice), and
    whether any strong cue fired."""
    text = _normalise(text)
    strong_agent, strong_customer = _hits(_STRONG_AGENT, text), _hits(_STRONG_CUSTOMER, text)
    score = (
        _STRONG * strong_agent
        + _hits(_WEAK_AGENT, text)
        - _STRONG * strong_customer
        - _hits(_WEAK_CUSTOMER, text)
    )
    return score, bool(strong_agent or strong_customer)


def greeted_organisations(text: str) -> list[str]:
    """Organisations named in service greetings ("thank you for calling Acme Bank")."""
    return [m["name"] for m in _ORGANISATION.finditer(_normalise(text))]


def infer_roles(texts: Mapping[str, str]) -> dict[str, Role]:
    """Role per speaker from the whole of what each said (speaker -> text).

    With two speakers, the higher score is the agent and the other the customer, once a
    strong cue fired; with more, the one clear top scorer is the agent and the others with
    a negative score are customers. A tie for the top says nothing.
    """
    scored = {speaker: agent_score(text) for speaker, text in texts.items()}
    roles = {speaker: Role.unknown for speaker in texts}
    if not scored or not any(strong for _, strong in scored.values()):
        return roles
    scores = {speaker: score for speaker, (score, _) in scored.items()}
    agent = max(scores, key=lambda s: scores[s])
    if sum(1 for score in scores.values() if score == scores[agent]) > 1:
        return roles
    if len(scores) == 2:
        for speaker in roles:
            roles[speaker] = Role.agent if speaker == agent else Role.customer
        return roles
    if scores[agent] <= 0:
        return roles
    for speaker, score in scores.items():
        if speaker == agent:
            roles[speaker] = Role.agent
        elif score < 0:
            roles[speaker] = Role.customer
    return roles
