"""The overview line: one or two third-person sentences built from the structured fields
("The customer was charged twice; the agent has refunded the duplicate and will confirm by
Friday"), never a copied turn: each part is a field's sentence with filler cut and I/you/we
turned into the people they are (`text.third_person`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from convolens.enrich.summary.text import past_tense, third_person, third_singular

__all__ = ["as_request", "join_parts", "overview", "point_renderer", "render_points"]

_OPENERS = {
    "today", "tomorrow", "yesterday", "tonight", "maybe", "happy", "haven't", "perhaps",
    "now", "then", "there's", "it's",
    "that's", "here's", "what's", "let's", "give", "tell", "take", "make", "go", "come",
    "look", "try", "call", "in", "at", "on", "by", "for", "with", "from", "to", "a", "an",
    "the", "this", "that", "these", "those", "my", "his", "her", "their", "its", "our",
    "one", "two", "three", "some", "any", "most", "many", "every", "each", "all", "no",
    "not", "actually", "really", "just", "also", "still", "even", "only", "usually",
    "we've", "they're", "they've", "isn't", "wasn't", "don't", "doesn't", "didn't",
}  # fmt: skip
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
        converted = _PLEASE.sub("", converted).rstrip(" .!;,")
        if text.rstrip().endswith("?"):
            reported = _reported_question(sent, converted, addressee)
            return f"{speaker} asks {as_request(reported, addressee)}"
        request = _request(sent, converted, speaker, addressee)
        if request:
            return _shorten(request, self.longest)
        if lead:
            return f"{lead} {_lower_first(converted)}"
        if attribute and not any(t.pos_ in ("VERB", "AUX") for t in sent):
            # An answer without a verb ("Next Saturday night.") says nothing on its own;
            # "X tells Y next Saturday night" reads as nonsense (ROUGE-neutral on train).
            return ""
        if attribute and not any(n in converted for n in [*self.participants, speaker, "they"]):
            # A key point that names nobody is still someone's: "X tells Y the bride is
            # ...", as DialogSum's references put it ("tells" opens a quarter of them).
            verb = f"tells {addressee}" if addressee else "says"
            converted = f"{speaker} {verb} {_lower_first(converted, self.participants)}"
        return _shorten(converted, self.longest)


# "please" carries nothing in a summary: "could you help me, please" -> "could ... help".
_PLEASE = re.compile(r",?\s*\bplease\b(?=\s*[,.!?]|\s*$)|\bplease\s*,?\s*", re.IGNORECASE)


def as_request(reported: str, addressee: str | None) -> str:
    """A question that asks for something as the request it is: "Y whether Y could get X
    a taxi" -> "Y to get X a taxi", as DialogSum's references put it (+0.2 ROUGE-L on a
    train sample). "Would Y like", "would Y mind" and "will Y be" stay questions."""
    if not addressee:
        return reported
    head = f"{addressee} whether {addressee} "
    if not reported.startswith(head):
        return reported
    match = _ASKS_FOR.match(reported[len(head) :])
    return f"{addressee} to {match.group(1)}" if match else reported


_ASKS_FOR = re.compile(r"(?:can|could|would|will)\s+(?!(?:be|like|mind|rather)\b)(\w.*)$")


def _request(sent: Any, converted: str, speaker: str, addressee: str | None) -> str | None:
    """An imperative as reported speech: "Fill in the form" -> "X asks Y to fill in the
    form"; "Let's move the car" -> "X suggests they move the car"."""
    tokens = [t for t in sent if not t.is_punct and t.lower_ not in ("please", "just", "now")]
    if len(tokens) < 2:
        return None
    first = tokens[0]
    rest = converted.split(None, 1)
    if first.lower_ == "let" and tokens[1].lower_ in ("'s", "us"):
        body = re.sub(r"^let(?:'s|\s+them)\s+", "", converted, flags=re.IGNORECASE)
        return f"{speaker} suggests they {body}" if body != converted else None
    if first.lower_ == "let" and tokens[1].lower_ == "me" and len(tokens) > 2:
        # "Let me try" -> "X wants to try" (the speaker's own "me" is the speaker now).
        body = re.sub(rf"^let\s+{re.escape(speaker)}\s+", "", converted, flags=re.IGNORECASE)
        return f"{speaker} wants to {body}" if body != converted else None
    if first.lower_ in ("do", "don't") and len(tokens) > 2:
        # "Don't throw paper on the floor" -> "X asks Y not to throw paper on the floor".
        verb = tokens[2] if tokens[1].lower_ in ("n't", "not") else tokens[1]
        match = re.match(r"(?i)do(?:\s*n't|\s+not)\s+(.*)", converted)
        if verb.tag_ == "VB" and verb.dep_ == "ROOT" and match:
            return f"{speaker} asks {addressee or 'them'} not to {match.group(1)}"
    if (
        first.tag_ == "VB"
        and first.dep_ == "ROOT"
        and first.lower_ not in ("thank", "excuse", "pardon", "see", "have", "let", "be")
        and not any(c.dep_ in ("nsubj", "nsubjpass", "expl") for c in first.children)
        and len(rest) == 2
        and rest[0].lower() == first.lower_
    ):
        return f"{speaker} asks {addressee or 'them'} to {first.lower_} {rest[1]}"
    return None


_AUX_DO = {"do", "does", "did"}
_AUXILIARIES = _AUX_DO | {
    "is", "are", "was", "were", "am", "can", "could", "will", "would",
    "should", "shall", "may", "might", "must", "has", "have", "had",
}  # fmt: skip
_INVERTED = re.compile(
    r"^(\w+(?:\s+\w+)?)\s+(is|are|was|were|can|could|will|would|should|has|have|had)\s+"
    r"(#\w+#|[A-Z]\w+|he|she|it|they|there|this|that)(?=\s|$)"
)
# A subject may be titled ("Mr. Hanks"), and an adverb may stand before the verb ("did
# you ever take" -> "ever took", not "evered").
_SUBJECT = r"((?:Mr|Mrs|Ms|Dr|Miss|Professor|Doctor)\.?\s+\S+|\S+)"
_VERB = r"((?:ever|really|just|already|still|also|actually|even|usually|often|never)\s+)?(\w+)"
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
        body = re.sub(rf"\b(?:does|do)\s+{_SUBJECT}\s+{_VERB}", _do_support, body, count=1)
        body = re.sub(rf"\bdid\s+{_SUBJECT}\s+{_VERB}", _did_support, body, count=1)
        body = re.sub(_INVERTED, r"\1 \3 \2", body, count=1)
        return f"{to_whom}{_lower_first(body)}"
    if first in _AUXILIARIES and len(words) > 2:
        aux, rest = words[0], words[1:]
        if first == "did":
            match = re.match(rf"{_SUBJECT}\s+{_VERB}(.*)", " ".join(rest))
            if match:
                subject, adverb, verb, tail = match.groups()
                return f"{to_whom}whether {subject} {adverb or ''}{past_tense(verb)}{tail}"
        if first in _AUX_DO and first != "did":
            # "Does Y have" -> "whether Y has": the subject's verb takes the person.
            match = re.match(rf"{_SUBJECT}\s+{_VERB}(.*)", " ".join(rest))
            if match:
                subject, adverb, verb, tail = match.groups()
                third = aux.lower() == "does" or subject.lower() not in ("they", "them")
                verb = third_singular(verb) if third else verb
                return f"{to_whom}whether {subject} {adverb or ''}{verb}{tail}"
        if first != "did":
            match = re.match(rf"{_SUBJECT}\s+(.*)", " ".join(rest))
            if match:
                return f"{to_whom}whether {match.group(1)} {aux.lower()} {match.group(2)}"
    about = "about " if len(words) <= 3 else ""
    return f"{to_whom}{about}{_lower_first(body)}"


def _do_support(match: re.Match[str]) -> str:
    subject, adverb, verb = match.groups()
    # "do we arrive" -> "they arrive"; "do you want" (one person addressed) -> "Y wants".
    verb = verb if subject.lower() in ("they", "them") else third_singular(verb)
    return f"{subject} {adverb or ''}{verb}"


def _did_support(match: re.Match[str]) -> str:
    subject, adverb, verb = match.groups()
    return f"{subject} {adverb or ''}{past_tense(verb)}"


def _lower_first(text: str, names: list[str] | None = None) -> str:
    """`text` with its first letter in lower case, unless it opens with a name."""
    first = re.split(r"[\s',]", text, maxsplit=1)[0]
    if first in (names or []) or first == "I" or text.startswith("#"):
        return text
    # Only a function word or a common sentence opener is lowered: a capitalised word
    # that is neither is likely a name or a title ("John Smith", "Mr. Taylor").
    if first.lower() not in ENGLISH_STOP_WORDS and first.lower() not in _OPENERS:
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


def join_parts(parts: list[str], names: list[str]) -> str:
    """Rendered parts as one line: "; " between them, a capital and a full stop."""
    parts = [p for p in parts if p]
    if not parts:
        return ""
    line = "; ".join([parts[0], *(_lower_first(p, names) for p in parts[1:])])
    return line[0].upper() + line[1:] + "."


def point_renderer(
    nlp: Any, participants: list[str], counterpart: dict[str, str] | None, kind: str
) -> Callable[[dict[str, Any]], str]:
    """What renders one key point in the third person, attributed to its speaker where it
    names nobody ("X tells Y ..."), as the overview of a `kind` conversation does."""
    render = _Renderer(
        nlp, participants, counterpart or {}, we_is_speaker=kind in ("support", "sales")
    )
    return lambda item: render(item, attribute=True)


def render_points(
    items: list[dict[str, Any]],
    participants: list[str],
    nlp: Any,
    counterpart: dict[str, str] | None,
    kind: str,
) -> list[str]:
    """Each key point rendered by `point_renderer`."""
    render = point_renderer(nlp, participants, counterpart, kind)
    return [render(i) for i in items]


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
