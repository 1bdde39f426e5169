"""The structured summary of each conversation type, every field with the words it rests on.

- support: reason for contact, what was done, outcome, next steps (owner, due);
- sales: needs, objections, competitors, next steps, commitments;
- meeting: topics (segments with time ranges), decisions, action items (owner, due), open
  questions;
- interview: questions asked, key points; other: key points, action items.

Fields come from cue phrases on sentences (needs, objections, competitors, decisions,
actions taken) and from what earlier components labelled: `action_item` and `question`
(dialogue acts), `resolution.status`, `tracker.match`. Every item is a dict with `text`
(the sentence, lead-in filler cut), `utterance_id`, `start`, `end` and `speaker`; a field
with nothing to rest on is left empty rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from convolens.enrich.base import Doc
from convolens.enrich.summary.extractive import RESOLUTION, SENTENCE
from convolens.enrich.summary.text import is_filler, speaker_names, strip_lead_in
from convolens.model import Role

__all__ = ["DECISION_CUES", "Sentence", "fields_for", "sentences_of"]

DECISION_CUES = re.compile(
    r"\b(?:we(?:'ve|\s+have)?\s+decided|(?:we\s+|i\s+)?decided\s+to|let'?s\s+go\s+with|"
    r"we(?:'ll|\s+will)\s+go\s+with|(?:we(?:'ve|\s+have)?|everyone|all)\s+agreed|"
    r"agreed\s+(?:to|on|that)|it'?s\s+a\s+deal|"
    r"we(?:'re|\s+are)\s+going\s+with|we(?:'re|\s+are)\s+going\s+for|let'?s\s+go\s+for|"
    r"we(?:'ll|\s+will)\s+(?:stick|keep)\s+with|so\s+that'?s\s+(?:decided|settled)|"
    r"the\s+decision\s+is|we\s+should\s+go\s+(?:with|for))\b",
    re.IGNORECASE,
)
_PROBLEM = re.compile(
    r"\b(?:can'?t|cannot|couldn'?t|won'?t|doesn'?t|isn'?t|not\s+(?:working|loading|able)|"
    r"error|fail\w*|crash\w*|broken|stuck|charged|refund|wrong|missing|locked|problem|"
    r"issue|trouble|need|want|would\s+like|trying\s+to|how\s+(?:do|can)\s+i|lost|cancel)\b",
    re.IGNORECASE,
)
_NEED = re.compile(
    r"\b(?:(?:we|i)\s+(?:really\s+)?(?:need|want|would\s+like|have\s+to)|(?:we'?re|we\s+are|"
    r"i'?m|i\s+am)\s+(?:looking|trying)|looking\s+for|pain|requirement|must\s+have|ideally|"
    r"the\s+goal|what\s+(?:we|i)\s+(?:need|want))\b",
    re.IGNORECASE,
)
_OBJECTION = re.compile(
    r"\b(?:too\s+(?:expensive|pricey|much|long|slow)|expensive|cheaper|quoted\s+(?:us\s+)?"
    r"(?:a\s+(?:little|bit)\s+)?lower|budget|concern\w*|worried|worry|hesitant|not\s+sure|"
    r"risk|(?:charge|charges|charging)\s+separately|lock-?in|contract\s+length|"
    r"(?:will|'ll)\s+want\s+to\s+see|before\s+anything\s+else|deal-?breaker)\b",
    re.IGNORECASE,
)
_COMPETITOR = re.compile(
    r"\b(?:evaluating|looking\s+at|talking\s+to|trialling|trialing|using|compared?\s+"
    r"(?:to|with)|switch(?:ing)?\s+to|moving\s+to|move\s+to|quote\s+from|versus|vs\.?)\s+"
    r"((?-i:[A-Z][\w&-]+(?:\s+(?-i:[A-Z][\w&-]+))?))",
    re.IGNORECASE,
)
_COMPETITOR_SUBJECT = re.compile(
    r"\b((?-i:[A-Z][\w&-]+))\s+(?:quoted|offers|charges|is\s+cheaper|costs)\b", re.IGNORECASE
)
_NEXT_STEP = re.compile(
    r"\b(?:next\s+steps?|follow\s+up|(?:i|we)(?:'ll|\s+will)\s+(?:send|share|schedule|set\s+up|"
    r"book|call|email|follow|get\s+back|put|spell|attach|loop|confirm)|send\s+(?:over|the\s+invite)|"
    r"by\s+(?:end\s+of\s+(?:day|week)|monday|tuesday|wednesday|thursday|friday|tomorrow))\b",
    re.IGNORECASE,
)
_COMMITMENT = re.compile(
    r"\b(?:i|we)(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to)\s+\w+", re.I
)
_IN_CALL = re.compile(
    r"^\W*(?:let\s+me|give\s+me|(?:i'?ll|i\s+will)\s+(?:share\s+my\s+screen|check|look|"
    r"pull\s+up|take\s+a\s+look|double[-\s]check|see\s+what))\b",
    re.IGNORECASE,
)
_NOT_NAMES = {"I", "We", "The", "It", "They", "That", "This", "One", "Our", "You", "And", "But"}


class Sentence:
    """One sentence of a turn: where it is, who said it, its text without lead-in filler."""

    __slots__ = ("end", "index", "raw", "role", "speaker", "start", "text", "uid")

    def __init__(
        self, index: int, uid: str, start: int, end: int, raw: str, speaker: str, role: Role
    ) -> None:
        self.index, self.uid, self.start, self.end, self.raw = index, uid, start, end, raw
        self.speaker, self.role = speaker, role
        self.text = strip_lead_in(raw)

    def item(self, **extra: Any) -> dict[str, Any]:
        return {
            "text": self.text,
            "utterance_id": self.uid,
            "start": self.start,
            "end": self.end,
            "speaker": self.speaker,
            **extra,
        }


def sentences_of(doc: Doc) -> list[Sentence]:
    """The content sentences of `doc` (not internal notes, not filler), in order."""
    names = speaker_names(doc.conversation)
    roles = {p.participant_id: p.role for p in doc.conversation.participants}
    out: list[Sentence] = []
    for i, utterance in enumerate(doc.conversation.utterances):
        if utterance.internal or not utterance.text.strip():
            continue
        pid = utterance.participant_id
        for match in SENTENCE.finditer(utterance.text):
            piece = match.group(0)
            start = match.start() + len(piece) - len(piece.lstrip())
            end = match.end() - (len(piece) - len(piece.rstrip()))
            raw = utterance.text[start:end]
            if end > start and not is_filler(raw):
                role = roles.get(pid, Role.unknown)
                out.append(Sentence(i, doc.utterance_ids[i], start, end, raw, names[pid], role))
    return out


def _first(
    sentences: list[Sentence], pattern: re.Pattern[str], most: int, *, early_cue: bool = False
) -> list[Sentence]:
    """Sentences of four words or more with the cue, in order (`early_cue`: those whose
    cue comes first in the sentence first: "I want one place" before "When I want to")."""
    found = [(m.start(), s) for s in sentences if (m := pattern.search(s.raw))]
    found = [(at, s) for at, s in found if len(s.raw.split()) >= 4]
    if early_cue:
        found.sort(key=lambda pair: pair[0] > 3)
    return [s for _, s in found][:most]


def _labelled(doc: Doc, label: str) -> Iterator[tuple[dict[str, Any], Any]]:
    for annotation in doc.labels(label):
        if isinstance(annotation.value, dict) and annotation.evidence:
            yield annotation.value, annotation


def _span_item(doc: Doc, annotation: Any, names: dict[str, str], **extra: Any) -> dict[str, Any]:
    """An item quoting a label's first evidence span."""
    evidence = annotation.evidence[0]
    index = doc.utterance_ids.index(evidence.utterance_id)
    utterance = doc.conversation.utterances[index]
    raw = utterance.text[evidence.start_char : evidence.end_char]
    return {
        "text": strip_lead_in(raw),
        "utterance_id": evidence.utterance_id,
        "start": evidence.start_char,
        "end": evidence.end_char,
        "speaker": names.get(utterance.participant_id, utterance.participant_id),
        **extra,
    }


def action_items(doc: Doc, sentences: list[Sentence]) -> list[dict[str, Any]]:
    """`action_item` labels with owner and due date; without them, "I'll ..." sentences."""
    names = speaker_names(doc.conversation)
    out = []
    for value, annotation in _labelled(doc, "action_item"):
        quoted = _span_item(doc, annotation, names)["text"]
        # Stalling ("let me check"), what is done on the spot ("let me pull up your
        # account") and bare acknowledgements are no action item.
        if is_filler(quoted) or len(quoted.split()) < 4 or _IN_CALL.match(quoted):
            continue
        owner = value.get("owner")
        owner = names.get(str(owner), owner)
        if not owner:
            # A joint request ("let's ...") binds everyone; otherwise the speaker owns it.
            owner = (
                "everyone" if value.get("joint") else _span_item(doc, annotation, names)["speaker"]
            )
        item = _span_item(doc, annotation, names, owner=owner, due=value.get("due"))
        item["kind"] = value.get("kind")
        out.append(item)
    if not out:
        for s in _first(sentences, _COMMITMENT, 8):
            if _IN_CALL.match(s.text):
                continue
            out.append(s.item(owner=s.speaker, due=None, kind="commitment"))
    return out


def open_questions(doc: Doc) -> list[dict[str, Any]]:
    names = speaker_names(doc.conversation)
    return [
        _span_item(doc, a, names)
        for value, a in _labelled(doc, "question")
        if value.get("answered") is False and len(str(value.get("text", "")).split()) >= 4
    ][:8]


def decisions(sentences: list[Sentence]) -> list[dict[str, Any]]:
    return [s.item() for s in _first(sentences, DECISION_CUES, 12)]


def _support(doc: Doc, sentences: list[Sentence]) -> dict[str, list[dict[str, Any]]]:
    customer = [s for s in sentences if s.role == Role.customer] or [
        s for s in sentences if s.role != Role.agent
    ]
    agent = [s for s in sentences if s.role in (Role.agent, Role.bot)]
    reason = _first(customer, _PROBLEM, 1) or customer[:1]
    done = [s for s in agent if RESOLUTION.search(s.raw) and len(s.raw.split()) >= 4]
    done = [s for s in done if not s.raw.rstrip().endswith("?")]
    outcome: list[dict[str, Any]] = []
    names = speaker_names(doc.conversation)
    for value, annotation in _labelled(doc, "resolution.status"):
        outcome.append(_span_item(doc, annotation, names, status=value.get("status")))
    if not outcome and done:
        outcome.append(done[-1].item(status=None))
    steps = [i for i in action_items(doc, sentences) if i.get("kind") != "request" or i["owner"]]
    return {
        "reason": [s.item() for s in reason],
        "actions_taken": [s.item() for s in done[:3]],
        "outcome": outcome[:1],
        "next_steps": steps[:5],
    }


def competitors(doc: Doc, sentences: list[Sentence]) -> list[dict[str, Any]]:
    own = {w for n in speaker_names(doc.conversation).values() for w in n.split()}
    seen: dict[str, dict[str, Any]] = {}
    for s in sentences:
        for pattern in (_COMPETITOR, _COMPETITOR_SUBJECT):
            for match in pattern.finditer(s.raw):
                name = (
                    match.group(1).split()[0] if pattern is _COMPETITOR_SUBJECT else match.group(1)
                )
                name = name.strip(".,")
                if name in _NOT_NAMES or name in own or name.lower() in seen:
                    continue
                start = s.start + match.start(1)
                seen[name.lower()] = {
                    "name": name,
                    "text": s.text,
                    "utterance_id": s.uid,
                    "start": start,
                    "end": start + len(name),
                    "speaker": s.speaker,
                }
    for value, annotation in _labelled(doc, "tracker.match"):
        if "competitor" in str(value.get("tracker", "")):
            e = annotation.evidence[0]
            index = doc.utterance_ids.index(e.utterance_id)
            name = doc.conversation.utterances[index].text[e.start_char : e.end_char]
            if name and name[0].isupper() and name.lower() not in seen:
                names = speaker_names(doc.conversation)
                seen[name.lower()] = _span_item(doc, annotation, names, name=name)
    return list(seen.values())[:5]


def _sales(doc: Doc, sentences: list[Sentence]) -> dict[str, list[dict[str, Any]]]:
    buyer = [s for s in sentences if s.role not in (Role.agent, Role.bot)]
    seller = [s for s in sentences if s.role in (Role.agent, Role.bot)] or sentences
    items = action_items(doc, sentences)
    sellers = {s.speaker for s in seller}
    commitments = [i for i in items if i.get("kind") == "commitment"]
    commitments.sort(key=lambda item: item["speaker"] not in sellers)
    steps = [s.item() for s in _first(seller, _NEXT_STEP, 12)]
    # "For next steps, I'd suggest ..." names the plan; "I'll put it in writing" a detail.
    steps = sorted(steps, key=lambda item: "next step" not in item["text"].lower())[:4]
    return {
        "needs": [s.item() for s in _first(buyer, _NEED, 3, early_cue=True)],
        "objections": [s.item() for s in _first(buyer, _OBJECTION, 3)],
        "competitors": competitors(doc, sentences),
        "next_steps": steps,
        "commitments": commitments[:6],
    }


def fields_for(
    kind: str, doc: Doc, sentences: list[Sentence], topics: list[dict[str, Any]],
    key_points: list[dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """The structured fields of a conversation of type `kind`."""
    if kind == "support":
        return _support(doc, sentences)
    if kind == "sales":
        return _sales(doc, sentences)
    if kind == "meeting":
        return {
            "topics": topics,
            "decisions": decisions(sentences),
            "action_items": action_items(doc, sentences)[:12],
            "open_questions": open_questions(doc),
        }
    names = speaker_names(doc.conversation)
    if kind == "interview":
        asked = [_span_item(doc, a, names) for _, a in _labelled(doc, "question")]
        return {"questions": asked[:10], "key_points": key_points, "topics": topics}
    return {"key_points": key_points, "action_items": action_items(doc, sentences)[:6]}
