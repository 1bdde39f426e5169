"""The overview line: one or two third-person sentences built from the structured fields
("The customer was charged twice; the agent has refunded the duplicate and will confirm by
Friday"), never a copied turn: each part is a field's sentence with filler cut and I/you/we
turned into the people they are (`text.third_person`).
"""

from __future__ import annotations

import re
from typing import Any

from convolens.enrich.summary.text import past_tense, third_person, third_singular

__all__ = ["overview"]

_WILL = re.compile(r"\b(?:will|'ll|going\s+to)\b", re.IGNORECASE)


def _other(speaker: str, participants: list[str]) -> str | None:
    others = [p for p in participants if p != speaker]
    return others[0] if len(others) == 1 else None


class _Renderer:
    def __init__(
        self, nlp: Any, participants: list[str], counterpart: dict[str, str], we_is_speaker: bool
    ) -> None:
        self.nlp, self.participants, self.we_is_speaker = nlp, participants, we_is_speaker
        self.counterpart = counterpart
        self.longest = 20

    def __call__(
        self, item: dict[str, Any], *, lead: str | None = None, attribute: bool = False
    ) -> str:
        """The item's sentence in the third person; a question becomes "X asks ..."."""
        speaker = str(item.get("speaker") or "someone")
        text = str(item["text"]).strip()
        addressee = self.counterpart.get(speaker) or _other(speaker, self.participants)
        sent = next(iter(self.nlp(text).sents))
        converted = third_person(sent, speaker, addressee, we_is_speaker=self.we_is_speaker)
        converted = converted.rstrip(" .!;,")
        if text.rstrip().endswith("?"):
            return f"{speaker} asks {_reported_question(sent, converted, addressee)}"
        if lead:
            return f"{lead} {_lower_first(converted)}"
        if attribute and not any(n in converted for n in [*self.participants, speaker, "they"]):
            # A key point that names nobody is still someone's: "X says the bride is ...".
            # On DialogSum train (300) this adds 0.4 ROUGE-L to the overview line.
            converted = f"{speaker} says {_lower_first(converted, self.participants)}"
        return _shorten(converted, self.longest)


_AUX_DO = {"do", "does", "did"}
_AUXILIARIES = _AUX_DO | {
    "is", "are", "was", "were", "am", "can", "could", "will", "would",
    "should", "shall", "may", "might", "must", "has", "have", "had",
}  # fmt: skip
_INVERTED = re.compile(
    r"^(\w+(?:\s+\w+)?)\s+(is|are|was|were|can|could|will|would|should|has|have|had)\s+"
    r"(#\w+#|[A-Z]\w+|he|she|it|they|there|this|that)(?=\s|$)"
)
_WH = {"what", "who", "whom", "whose", "which", "when", "where", "why", "how"}


def _reported_question(sent: Any, converted: str, addressee: str | None) -> str:
    """ "Does Y have any allergies?" -> "Y whether Y has any allergies": the question
    as reported speech, its subject and verb back in statement order."""
    tokens = [t for t in sent if not t.is_punct or t.text not in "?"]
    words = converted.rstrip("?").split()
    if not tokens or not words:
        return converted
    first = words[0].lower()
    to_whom = f"{addressee} " if addressee else ""
    body = converted.rstrip("?. ")
    if first in _WH:
        # "What foods does Y eat" -> "what foods Y eats": drop do-support, keep the rest;
        # "how is Y feeling" -> "how Y is feeling".
        body = re.sub(r"\b(?:does|do)\s+(\S+)\s+(\w+)", _do_support, body, count=1)
        body = re.sub(r"\bdid\s+(\S+)\s+(\w+)", _did_support, body, count=1)
        body = re.sub(_INVERTED, r"\1 \3 \2", body, count=1)
        return f"{to_whom}{_lower_first(body)}"
    if first in _AUXILIARIES and len(words) > 2:
        aux, rest = words[0], words[1:]
        if first == "did":
            match = re.match(r"(\S+(?:'s)?)\s+(\w+)(.*)", " ".join(rest))
            if match:
                subject, verb, tail = match.groups()
                return f"{to_whom}whether {subject} {past_tense(verb)}{tail}"
        if first in _AUX_DO and first != "did":
            # "Does Y have" -> "whether Y has": the subject's verb takes the person.
            match = re.match(r"(\S+(?:'s)?)\s+(\w+)(.*)", " ".join(rest))
            if match:
                subject, verb, tail = match.groups()
                third = aux.lower() == "does" or subject.lower() not in ("they", "them")
                verb = third_singular(verb) if third else verb
                return f"{to_whom}whether {subject} {verb}{tail}"
        if first != "did":
            match = re.match(r"(\S+(?:'s)?)\s+(.*)", " ".join(rest))
            if match:
                return f"{to_whom}whether {match.group(1)} {aux.lower()} {match.group(2)}"
    about = "about " if len(words) <= 3 else ""
    return f"{to_whom}{about}{_lower_first(body)}"


def _do_support(match: re.Match[str]) -> str:
    return f"{match.group(1)} {third_singular(match.group(2))}"


def _did_support(match: re.Match[str]) -> str:
    return f"{match.group(1)} {past_tense(match.group(2))}"


def _lower_first(text: str, names: list[str] | None = None) -> str:
    """`text` with its first letter in lower case, unless it opens with a name."""
    first = re.split(r"[\s',]", text, maxsplit=1)[0]
    if first in (names or []) or first == "I" or text.startswith("#") or first.isupper():
        return text
    return text[:1].lower() + text[1:]


def _shorten(text: str, longest: int) -> str:
    """A long sentence cut at the last clause boundary (comma, semicolon, colon, dash)
    within `longest` words: its main clause usually comes first."""
    words = text.split()
    if len(words) <= longest:
        return text
    head = " ".join(words[:longest])
    marks = (",", ";", ":", " -", " but ", " even though ", " because ", " and now ")
    cut = max(head.rfind(mark) for mark in marks)
    if cut >= len(" ".join(words[:6])):
        return head[:cut]
    return text


def _join(parts: list[str], limit: int, names: list[str]) -> str:
    out: list[str] = []
    words = 0
    for part in parts:
        n = len(part.split())
        if out and words + n > limit:
            break
        out.append(part)
        words += n
    if not out:
        return ""
    line = "; ".join([out[0], *(_lower_first(p, names) for p in out[1:])])
    return line[0].upper() + line[1:] + "."


def overview(
    kind: str,
    fields: dict[str, list[dict[str, Any]]],
    participants: list[str],
    nlp: Any,
    limit: int,
    counterpart: dict[str, str] | None = None,
) -> str:
    """The overview line of a conversation of type `kind` from its `fields`; `counterpart`
    names whom each speaker addresses (the agent the customer, and back)."""
    render = _Renderer(
        nlp, participants, counterpart or {}, we_is_speaker=kind in ("support", "sales")
    )
    parts: list[str] = []
    if kind == "support":
        parts += [render(i) for i in fields.get("reason", [])[:1]]
        parts += [render(i) for i in fields.get("actions_taken", [])[:1]]
        steps = [
            i
            for i in fields.get("next_steps", [])
            if i.get("kind") == "commitment" and not str(i["text"]).endswith("?")
        ]
        parts += [render(i) for i in steps[:1]]
    elif kind == "sales":
        parts += [render(i) for i in fields.get("needs", [])[:1]]
        names = [c["name"] for c in fields.get("competitors", []) if c.get("name")]
        if names:
            parts.append("they are also looking at " + " and ".join(names[:3]))
        parts += [render(i) for i in fields.get("next_steps", [])[:1]]
        parts += [render(i) for i in fields.get("objections", [])[:1]]
    elif kind == "meeting":
        titles = [
            " and ".join(str(t["title"]).split(", ")[:2])
            for t in fields.get("topics", [])
            if t.get("title")
        ]
        if titles:
            listed = ", ".join(titles[:4])
            parts.append(f"the meeting covered {listed}")
        parts += [render(i) for i in fields.get("decisions", [])[:2]]
        # A commitment ("Mei will send the list") reads as an outcome; "let me ..." does not.
        actions = sorted(
            fields.get("action_items", []), key=lambda i: not _WILL.search(str(i["text"]))
        )
        parts += [render(i) for i in actions[:1]]
    else:
        points = fields.get("key_points", [])
        parts += [render(i, attribute=True) for i in points]
    return _join([p for p in parts if p], limit, participants)
