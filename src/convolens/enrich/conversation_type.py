"""What kind of conversation this is: support, sales, meeting, interview or other.

Every later component used to assume a support conversation; a design meeting then got a
resolution status and a churn risk. The type decides which components apply (see
`Component.applies_to`) and which structured summary a conversation gets.

The decision weighs four kinds of evidence, each adding to a type's score:

- the source: a per-source override from the config wins outright (`by_source`,
  `by_queue`, `by_channel`, `by_tag`: `[components.conversation_type] by_queue =
  { "Sales" = "sales" }`); otherwise queue names and tags ("Sales", "Billing", "demo",
  "refund") and a meeting title;
- the channel: meetings and videos lean to meeting, tickets to support;
- the participants: agent and customer roles mean someone serves a customer (support or
  sales); three or more people speaking with no known roles is a meeting;
- the content: cue phrases per type ("refund", "not working" / "pricing", "demo",
  "evaluating" / "agenda", "action item" / "tell me about your experience"), counted once
  per utterance, so one word cannot decide a long conversation.

The label `conversation.type` carries {type, customer, scores, reasons} (and `overridden`
when configuration set it); its evidence is the utterances whose cues counted, its
confidence the winning share of the scores.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.model import Channel, Role

__all__ = [
    "CONVERSATION_TYPES",
    "CUSTOMER_TYPES",
    "LABEL",
    "ConversationTypeComponent",
    "ConversationTypeConfig",
    "classify",
    "conversation_type_of",
]

LABEL = "conversation.type"
ConversationType = Literal["support", "sales", "meeting", "interview", "other"]
CONVERSATION_TYPES: tuple[str, ...] = ("support", "sales", "meeting", "interview", "other")
# Types where someone outside the organisation is served: support-only labels need these.
CUSTOMER_TYPES = frozenset({"support", "sales"})
_CACHE_KEY = "conversation_type"

_CUES: dict[str, re.Pattern[str]] = {
    "support": re.compile(
        r"\b(?:refund\w*|charged\s+twice|double\s+charged|not\s+working|doesn'?t\s+work|"
        r"isn'?t\s+working|broken|crash\w*|error|bug|can'?t\s+(?:log|sign|access|find|get)|"
        r"locked\s+out|reset\s+(?:my\s+)?password|ticket|outage|issue\s+with|problem\s+with|"
        r"support\s+team|troubleshoot\w*|escalat\w*|cancel\s+my|my\s+(?:order|account|"
        r"invoice|subscription|plan|renewal|bill|data)|our\s+(?:account|renewal|plan|"
        r"subscription|invoice)|renewal|invoice)\b",
        re.IGNORECASE,
    ),
    "sales": re.compile(
        r"\b(?:pricing|price\s+(?:list|point)|quote|discount|per\s+(?:user|seat)|"
        r"(?:free\s+)?trial|demo|proposal|contract|procurement|budget|evaluating|"
        r"competitor|decision[-\s]maker|sign(?:ed)?\s+up|annual\s+plan|purchase\s+order|"
        r"roi|pilot|business\s+plan|enterprise\s+plan|how\s+much\s+(?:does|would|is))\b",
        re.IGNORECASE,
    ),
    "meeting": re.compile(
        r"\b(?:agenda|action\s+items?|minutes|next\s+meeting|last\s+meeting|this\s+meeting|"
        r"let'?s\s+move\s+on|item\s+on\s+the|everyone|everybody|all\s+of\s+you|"
        r"the\s+team|project\s+manager|deadline|milestone|presentation|slides?|"
        r"committee|chair|we\s+(?:need|should)\s+(?:to\s+)?decide)\b",
        re.IGNORECASE,
    ),
    "interview": re.compile(
        r"\b(?:interview\w*|tell\s+me\s+(?:a\s+little\s+)?about\s+yourself|your\s+"
        r"(?:experience|background|strengths?|weakness\w*|resume|cv)|why\s+do\s+you\s+want|"
        r"walk\s+me\s+through|how\s+do\s+you\s+usually|in\s+your\s+(?:last|previous|current)"
        r"\s+(?:job|role|position)|the\s+position|candidate|user\s+research)\b",
        re.IGNORECASE,
    ),
}
# Queue names, tags and titles: what the organisation itself filed the conversation as.
_FILED: dict[str, re.Pattern[str]] = {
    "support": re.compile(
        r"\b(?:support|help\s*desk|service\s*desk|billing|orders?|tier\s*\d|escalations?|"
        r"customer\s+(?:success|service|care)|refund|bug|complaint|incident|returns?|"
        r"technical\s+support|it\s+support)\b",
        re.IGNORECASE,
    ),
    "sales": re.compile(
        r"\b(?:sales|pre-?sales|inbound|outbound|discovery|demo(?:-booked)?|pricing|"
        r"negotiation|closed-(?:won|lost)|closing|prospect|lead|pilot|security-review|"
        r"account\s+executive|quote|renewal\s+offer)\b",
        re.IGNORECASE,
    ),
    "meeting": re.compile(
        r"\b(?:meeting|stand-?up|sync|retro\w*|planning|kick-?off|all-hands|review|"
        r"workshop|qbr|onboarding|committee|board)\b",
        re.IGNORECASE,
    ),
    "interview": re.compile(r"\b(?:interview|research|user\s+study|usability|hiring)\b", re.I),
}


class ConversationTypeConfig(BaseModel):
    """Settings; unknown keys are errors so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Per-source overrides, checked in this order; keys compare case-insensitively.
    by_source: dict[str, ConversationType] = Field(default_factory=dict)
    by_queue: dict[str, ConversationType] = Field(default_factory=dict)
    by_tag: dict[str, ConversationType] = Field(default_factory=dict)
    by_channel: dict[str, ConversationType] = Field(default_factory=dict)
    # Below this score no type is claimed: "other".
    min_score: float = Field(default=1.0, ge=0)
    # Each utterance with a type's cue adds `content_weight`, at most `content_cap` in all.
    content_weight: float = Field(default=0.4, ge=0)
    content_cap: float = Field(default=2.4, ge=0)
    # A queue that names a type; tags and a meeting title count half.
    filed_weight: float = Field(default=2.0, ge=0)


def _override(doc: Doc, s: ConversationTypeConfig) -> tuple[str, str] | None:
    source = doc.conversation.source
    keyed: list[tuple[str, dict[str, ConversationType], list[str]]] = [
        ("source", s.by_source, [source.system]),
        ("queue", s.by_queue, [source.queue or ""]),
        ("tag", s.by_tag, list(source.tags)),
        ("channel", s.by_channel, [doc.conversation.channel.value]),
    ]
    for what, table, values in keyed:
        lowered = {k.lower(): v for k, v in table.items()}
        for value in values:
            if value and value.lower() in lowered:
                return lowered[value.lower()], f"configured for {what} {value!r}"
    return None


def classify(doc: Doc, settings: ConversationTypeConfig | None = None) -> Annotation:
    """The `conversation.type` label of one document."""
    s = settings or ConversationTypeConfig()
    conversation = doc.conversation
    roles = {p.participant_id: p.role for p in conversation.participants}
    speaking = {
        u.participant_id for u in conversation.utterances if u.text.strip() and not u.internal
    }
    has_customer = any(roles.get(p) == Role.customer for p in speaking)
    has_agent = any(roles.get(p) in (Role.agent, Role.bot) for p in speaking)
    forced = _override(doc, s)
    if forced is not None:
        kind, reason = forced
        value = {"type": kind, "customer": has_customer, "scores": {kind: 1.0}}
        value["reasons"], value["overridden"] = [reason], True
        return Annotation(LABEL, value, 1.0, None, [])

    scores = dict.fromkeys(CONVERSATION_TYPES, 0.0)
    reasons: dict[str, list[str]] = {t: [] for t in CONVERSATION_TYPES}

    def add(kind: str, weight: float, reason: str) -> None:
        scores[kind] += weight
        reasons[kind].append(reason)

    source = conversation.source
    title = str(conversation.meta.get("meeting_title") or "")
    for kind, pattern in _FILED.items():
        # The queue is how the organisation routes work: it outweighs a tag or a title.
        if source.queue and pattern.search(source.queue):
            add(kind, s.filed_weight, f"queue {source.queue!r}")
        hits = [text for text in [title, *source.tags] if text and pattern.search(text)]
        if hits:
            add(kind, s.filed_weight / 2, "filed as " + ", ".join(repr(h) for h in hits[:3]))
    group = conversation.channel in (Channel.meeting, Channel.video) or len(speaking) >= 3
    if conversation.channel in (Channel.meeting, Channel.video):
        # The organisation recorded it as a meeting: only strong evidence overrules that.
        add("meeting", 2 * s.filed_weight, f"channel {conversation.channel.value}")
    elif conversation.channel == Channel.ticket:
        add("support", 1.0, "channel ticket")
    if len(speaking) >= 3 and not has_customer:
        add("meeting", 1.0 + 0.1 * min(len(speaking), 10), f"{len(speaking)} people speak")
    if has_customer and not group:
        # Someone outside writes in or is served: support unless the rest says sales.
        add("support", 0.8 + 0.2 * has_agent, "a customer takes part")
        add("sales", 0.4, "a customer takes part")

    evidence: dict[str, list[Evidence]] = {t: [] for t in CONVERSATION_TYPES}
    subject = conversation.subject or ""
    for kind, pattern in _CUES.items():
        if kind == "meeting" and not group:
            continue  # "everyone", "the team" in a two-party chat make no meeting
        count = 1 if subject and pattern.search(subject) else 0
        for index, utterance in enumerate(conversation.utterances):
            if utterance.internal:
                continue
            match = pattern.search(utterance.text)
            if match:
                count += 1
                if len(evidence[kind]) < 5:
                    uid = doc.utterance_ids[index]
                    evidence[kind].append(Evidence(uid, match.start(), match.end()))
        if count:
            weight = min(s.content_cap, s.content_weight * count)
            add(kind, weight, f"{count} utterance(s) with {kind} cues")

    best = max(CONVERSATION_TYPES, key=lambda t: (scores[t], -CONVERSATION_TYPES.index(t)))
    if scores[best] < s.min_score:
        best = "other"
    total = sum(scores.values())
    confidence = scores[best] / total if total and best != "other" else 0.5
    value = {
        "type": best,
        "customer": has_customer or best in CUSTOMER_TYPES,
        "scores": {t: round(v, 3) for t, v in scores.items() if v},
        "reasons": reasons[best] or ["no type's evidence reached the threshold"],
    }
    return Annotation(LABEL, value, round(confidence, 4), None, evidence.get(best, []))


def conversation_type_of(doc: Doc) -> dict[str, Any]:
    """The document's type label value: the one a component assigned in this run, else
    classified now with the default settings (a component run on its own still knows)."""
    for annotation in doc.annotations:
        if annotation.label == LABEL and isinstance(annotation.value, dict):
            return annotation.value
    cached = doc.cache.get(_CACHE_KEY)
    if not isinstance(cached, dict):
        cached = classify(doc).value
        doc.cache[_CACHE_KEY] = cached
    return cached


class ConversationTypeComponent(Component):
    """Labels each conversation with `conversation.type`."""

    name = "conversation_type"
    version = "1"
    assigns: ClassVar[tuple[str, ...]] = (LABEL,)
    description = "Support, sales, meeting, interview or other; overridable per source."

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.settings = ConversationTypeConfig.model_validate(self.config)
        self.taxonomy_version = hashlib.sha256(
            self.settings.model_dump_json().encode()
        ).hexdigest()[:12]

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        return [[classify(doc, self.settings)] for doc in batch]
