"""Resolution status and escalations: how a conversation ended, and whether it was escalated.

Support teams measure outcomes (solved on first contact, escalated, left hanging), and
most sources carry no outcome field, so it is read from the conversation itself. A
hybrid, because each part fails alone:

1. Cue patterns (`CUES`): regexes over lowercased text with one apostrophe, written
   around words rather than punctuation so unpunctuated ASR transcripts match too ("that
   worked thanks", "let me transfer you to billing"). Lowering keeps offsets, so evidence
   spans are exact. A regex table rather than spaCy's Matcher: the cues are fixed
   wordings, and character offsets without a parse are both exact and cheap.
2. Semantic similarity: the last `window` substantive turns (their shared, cached
   embeddings) against example sentences per category (`EXAMPLES`); sentence by sentence
   too if `sentence_turns` > 0, off by default: on 570 conversations (sample corpus and
   Twitter customer care) it changed one status and made the component ten times slower.
   all-MiniLM-L6-v2 cosines: paraphrases of an example reach ~0.6-0.9,
   unrelated support turns stay under ~0.55 ("Still crashes." 0.46 to the unresolved
   set, "My order hasn't arrived yet." 0.63 to the agent-solution set, which the role
   filter excludes). Thresholds are 0.6, 0.62 for agent escalations and 0.66 for
   transfers (any sentence naming a team or an email address reaches ~0.64 there). The
   cues catch the common wordings; the embeddings catch paraphrases.
3. Structure: trailing pleasantries ("Anything else?" / "No, that's all, bye") are set
   aside first; then who spoke last, the customer's final turns, and the agent-side turns
   after them (the tail). Also the trackers' `escalation_request` matches (semantic ones
   from similarity 0.65, as the tracker's own 0.55 admits "I tried eight times") and the
   ticket status of helpdesk imports (`conversation.meta["status"]`, or tags such as
   "status: solved"), which wins as the system of record.

Status rules, first that applies: the tail hands over (transfer, supervisor, agent
escalation) -> escalated, unless the agent only escalated internally and promised to come
back -> pending; the tail promises a follow-up -> pending; the customer's final turns
confirm ("that worked") -> solved, or unresolved if they go on "but ..." with nobody
answering; the tail asks a question (closings excluded) and the customer never replied,
in chat, email or ticket -> abandoned; the tail gives an answer or a fix -> solved (with
no confirmation: confidence 0.55, as helpdesks' "assumed resolution"); the customer's
final turns complain -> unresolved; they thank or acknowledge -> whatever the agent's
turns just before set (escalated, pending), else solved; otherwise unresolved. Then ticket
status solved/closed -> solved, pending/hold -> pending. `escalated` is true when the
conversation has an escalation event (a transfer that ended in a fix is solved and
escalated) or an "escalation" tag; a bot handing over to a person is labelled (a transfer
"by": "bot") but not counted, since every bot-first chat does it.

Internal notes are skipped: the customer never saw them. The cues are English; other
languages get only the structural and (English-trained) semantic parts.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.embeddings import (
    SentenceEmbedder,
    batch_utterance_embeddings,
    shared_embedder,
)
from convolens.enrich.resolution_cues import (
    _CONTRAST,
    _ESCALATION_TAGS,
    _META_STATUS,
    _QUESTION,
    _SEMANTIC_SIDE,
    _SENTENCE,
    _STATUS_TAG,
    _URL,
    _WORD,
    CUES,
    ESCALATION_KINDS,
    ESCALATION_LABEL,
    EXAMPLES,
    HANDOFF,
    POLITE,
    STATUS_LABEL,
    STATUSES,
    THRESHOLDS,
    _normalise,
    find_cues,
)
from convolens.model import Channel, Role

__all__ = [
    "CUES",
    "ESCALATION_KINDS",
    "EXAMPLES",
    "STATUSES",
    "ResolutionComponent",
    "ResolutionConfig",
    "find_cues",
]


class ResolutionConfig(BaseModel):
    """Options; unknown keys are errors so a typo does not silently keep a default."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    window: int = Field(default=4, ge=1, description="Last turns compared with the examples.")
    # Sentence embeddings cost as much as the turns' own (see the module docstring): when on,
    # only the last turns and their first sentences (8 covers an email's body).
    sentence_turns: int = Field(default=0, ge=0)
    max_sentences: int = Field(default=8, ge=1)
    thresholds: dict[str, float] = Field(default_factory=lambda: dict(THRESHOLDS))
    examples: dict[str, list[str]] = Field(default_factory=lambda: dict(EXAMPLES))
    async_channels: list[Channel] = Field(
        default_factory=lambda: [Channel.chat, Channel.email, Channel.ticket]
    )
    tracker_semantic_min: float = Field(default=0.65, ge=0, le=1)
    use_metadata: bool = True
    embedder: Any = None
    embedding_model: str | None = None


@dataclass
class Event:
    """One finding: a cue, semantic or tracker match of `category` in utterance `index`."""

    category: str
    index: int
    side: str
    evidence: Evidence
    confidence: float
    source: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Prepared:
    kept: list[int]
    sides: dict[int, str]
    events: list[Event]
    core: list[int]  # kept turns without the trailing pleasantries
    window: list[int]
    bots: set[int]  # turns written by a bot
    pleasantries: set[int]  # turns that only thank, acknowledge or say goodbye


class ResolutionComponent(Component):
    """Labels each conversation with `resolution.status` and each escalation event."""

    name = "resolution"
    version = "1"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    requires: ClassVar[tuple[str, ...]] = ("tracker.match", "conversation.type")
    assigns: ClassVar[tuple[str, ...]] = (STATUS_LABEL, ESCALATION_LABEL)
    # Solved / escalated are about serving a customer: not for sales calls, meetings or
    # interviews, nor where no customer takes part.
    applies_to: ClassVar[frozenset[str] | None] = frozenset({"support", "other"})
    needs_customer: ClassVar[bool] = True
    description = "Solved / escalated / abandoned / unresolved / pending, and escalation events."

    def __init__(
        self, config: dict[str, Any] | None = None, *, embedder: SentenceEmbedder | None = None
    ) -> None:
        super().__init__(config)
        self.settings = ResolutionConfig.model_validate(self.config)
        self.embedder = (
            embedder or self.settings.embedder or shared_embedder(self.settings.embedding_model)
        )
        self.model_id = self.embedder.model_id
        taxonomy = {
            "cues": CUES,
            "examples": self.settings.examples,
            "thresholds": self.settings.thresholds,
        }
        digest = hashlib.sha256(json.dumps(taxonomy, sort_keys=True).encode()).hexdigest()
        self.taxonomy_version = digest[:12]
        examples = self.settings.examples
        self._categories = [c for c in examples if examples[c]]
        vectors = self.embedder.embed([e for c in self._categories for e in examples[c]])
        self._examples: dict[str, np.ndarray] = {}
        start = 0
        for category in self._categories:
            self._examples[category] = vectors[start : start + len(examples[category])]
            start += len(examples[category])

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        vectors = batch_utterance_embeddings(batch, self.embedder)
        prepared = [self._prepare(doc) for doc in batch]
        # Sentences of the window turns, embedded in one call for the whole batch.
        turns, most = self.settings.sentence_turns, self.settings.max_sentences
        segments = [
            _segments(doc, p.window[len(p.window) - turns :] if turns else [], most)
            for doc, p in zip(batch, prepared, strict=True)
        ]
        embedded = self.embedder.embed([s[3] for doc_segments in segments for s in doc_segments])
        out: list[list[Annotation]] = []
        offset = 0
        for doc, p, doc_vectors, doc_segments in zip(
            batch, prepared, vectors, segments, strict=True
        ):
            seg_vectors = embedded[offset : offset + len(doc_segments)]
            offset += len(doc_segments)
            if not p.kept:
                out.append([])
                continue
            p.events += self._semantic(doc, p, doc_vectors, doc_segments, seg_vectors)
            p.events += self._tracker_events(doc, p)
            p.events.sort(key=lambda e: (e.index, e.evidence.start_char))
            out.append(self._label(doc, p))
        return out

    def _prepare(self, doc: Doc) -> _Prepared:
        utterances = doc.conversation.utterances
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        kept = [i for i, u in enumerate(utterances) if not u.internal and u.text.strip()]
        known = any(r in (Role.customer, Role.agent, Role.bot) for r in roles.values())
        sides = {
            i: _side(roles.get(utterances[i].participant_id, Role.unknown), known) for i in kept
        }
        events: list[Event] = []
        for i in kept:
            text = utterances[i].text
            for category, start, end in find_cues(text, sides[i]):
                confidence = {"thanks": 0.6, "ack": 0.5, "closing": 0.5}.get(category, 0.9)
                evidence = Evidence(doc.utterance_ids[i], start, end)
                events.append(
                    Event(category, i, sides[i], evidence, confidence, "cue", text[start:end])
                )
        pleasantries = {i for i in kept if _pleasantry(utterances[i].text, events, i)}
        core = list(kept)
        while len(core) > 1 and core[-1] in pleasantries:
            core.pop()
        bots = {i for i in kept if roles.get(utterances[i].participant_id) == Role.bot}
        window = core[-self.settings.window :]
        return _Prepared(kept, sides, events, core, window, bots, pleasantries)

    def _label(self, doc: Doc, p: _Prepared) -> list[Annotation]:
        escalations = [e for e in p.events if e.category in ESCALATION_KINDS]
        status, reasons, confidence, decisive = _decide(doc, p, self.settings.async_channels)
        # A bot handing over to a person is routing, not an escalation: reported, not counted.
        escalated = any(e.index not in p.bots for e in escalations)
        if self.settings.use_metadata:
            status, reasons, confidence, tagged = _metadata(doc, status, reasons, confidence)
            escalated = escalated or tagged
        value = {
            "status": status,
            "reasons": reasons,
            "escalated": escalated,
            "escalation_kinds": sorted({e.category for e in escalations if e.index not in p.bots}),
        }
        evidence = list(dict.fromkeys(e.evidence for e in decisive))
        out = [Annotation(STATUS_LABEL, value, round(confidence, 4), None, evidence)]
        for e in escalations:
            value = {
                "kind": e.category,
                "text": e.text,
                "by": "bot" if e.index in p.bots else e.side,
                "source": e.source,
                **e.extra,
            }
            uid = e.evidence.utterance_id
            out.append(
                Annotation(ESCALATION_LABEL, value, round(e.confidence, 4), uid, [e.evidence])
            )
        return out

    def _semantic(
        self,
        doc: Doc,
        p: _Prepared,
        vectors: np.ndarray,
        segments: list[tuple[int, int, int, str]],
        seg_vectors: np.ndarray,
    ) -> list[Event]:
        """Window turns (or sentences of them) close to a category's examples, where no cue
        of that category fired in the turn."""
        utterances = doc.conversation.utterances
        candidates = [(i, 0, len(utterances[i].text), vectors[i]) for i in p.window]
        candidates += [(i, s, e, seg_vectors[n]) for n, (i, s, e, _) in enumerate(segments)]
        have = {(e.category, e.index) for e in p.events}
        best: dict[tuple[str, int], tuple[float, int, int]] = {}
        for i, start, end, vector in candidates:
            for category in self._categories:
                side = _SEMANTIC_SIDE.get(category, "agent")
                if (category, i) in have or p.sides[i] not in (side, "any"):
                    continue
                similarity = float((self._examples[category] @ vector).max())
                threshold = self.settings.thresholds.get(category, 0.6)
                if similarity >= threshold and similarity > best.get((category, i), (0.0,))[0]:
                    best[(category, i)] = (similarity, start, end)
        out = []
        for (category, i), (similarity, start, end) in best.items():
            evidence = Evidence(doc.utterance_ids[i], start, end)
            text = utterances[i].text[start:end].strip()
            extra = {"similarity": round(similarity, 4)}
            confidence = min(0.85, similarity)
            out.append(
                Event(category, i, p.sides[i], evidence, confidence, "semantic", text, extra)
            )
        return out

    def _tracker_events(self, doc: Doc, p: _Prepared) -> list[Event]:
        """The trackers component's `escalation_request` matches, as escalation events."""
        index = {uid: i for i, uid in enumerate(doc.utterance_ids)}
        out = []
        for a in doc.labels("tracker.match"):
            if not isinstance(a.value, dict) or a.value.get("tracker") != "escalation_request":
                continue
            i = index.get(a.utterance_id or "")
            if i is None or i not in p.sides or not a.evidence:
                continue
            semantic = a.value.get("match") == "semantic"
            if semantic and (a.confidence or 0) < self.settings.tracker_semantic_min:
                continue
            cue = str(a.value.get("phrase") or a.value.get("example") or "").lower()
            kind = "supervisor"
            if re.search(r"\btime\b|\bagain\b|calling", cue):
                kind = "repeat_contact"
            elif "complaint" in cue:
                kind = "complaint_threat"
            ev = a.evidence[0]
            if any(
                e.index == i
                and e.category in ESCALATION_KINDS
                and e.evidence.start_char < ev.end_char
                and ev.start_char < e.evidence.end_char
                for e in p.events
            ):
                continue  # the same words, already found by a cue
            text = doc.conversation.utterances[i].text[ev.start_char : ev.end_char]
            extra = {"tracker_match": a.value.get("match")}
            out.append(
                Event(kind, i, p.sides[i], ev, float(a.confidence or 0.6), "tracker", text, extra)
            )
        return out


def _side(role: Role, known: bool) -> str:
    if not known or role == Role.unknown:
        return "any"
    return "customer" if role == Role.customer else "agent"


def _segments(doc: Doc, window: list[int], most: int) -> list[tuple[int, int, int, str]]:
    """(utterance, start, end, text) of the sentences of window turns that have several."""
    out: list[tuple[int, int, int, str]] = []
    for i in window:
        text = doc.conversation.utterances[i].text
        sentences = [m for m in _SENTENCE.finditer(text) if len(m.group().split()) >= 2][:most]
        if len(sentences) > 1:
            out.extend((i, m.start(), m.end(), m.group().strip()) for m in sentences)
    return out


def _pleasantry(text: str, events: list[Event], index: int) -> bool:
    """A turn of thanks, acknowledgement or goodbye with no other cue and at most six other
    words (a name, "and your cat too"): "You too, Greg. Bye now." It decides nothing."""
    own = [e for e in events if e.index == index]
    if not own or any(e.category not in (*POLITE, "closing") for e in own):
        return False
    chars = list(text)
    for e in own:
        start, end = e.evidence.start_char, e.evidence.end_char
        chars[start:end] = " " * (end - start)
    return len(_WORD.findall("".join(chars))) <= 6


def _decide(
    doc: Doc, p: _Prepared, async_channels: list[Channel]
) -> tuple[str, list[str], float, list[Event]]:
    """(status, reasons, confidence, decisive events), reading the end of the conversation."""
    sides, core = p.sides, p.core
    trailing = [i for i in p.kept if i > core[-1]]
    customer = [i for i in core if sides[i] == "customer"]
    last_c = customer[-1] if customer else -1
    tail = [i for i in core if i > last_c and sides[i] == "agent"]
    # Agent pleasantries ("You're welcome!") do not end the customer's final run of turns.
    before = [i for i in core if i < last_c and sides[i] == "agent" and i not in p.pleasantries]
    final_run = [i for i in customer if i > (before[-1] if before else -1)]
    run_start = max([i for i in customer if before and i < before[-1]] or [-1])
    prev_agent_run = [i for i in before if i > run_start]
    if not customer and not tail:
        final_run = core[-2:]  # roles unknown: read the last turns whoever spoke

    def of(turns: list[int], *categories: str) -> list[Event]:
        chosen = set(turns)
        return [e for e in p.events if e.index in chosen and e.category in categories]

    def top(events: list[Event]) -> float:
        return max(e.confidence for e in events)

    # Only the last agent-side speaker's turns count: a bot's "connecting you with Support"
    # followed by the person who took over is no longer where the conversation stands.
    speaker = _last_speaker(doc, tail)
    handoff, pending = of(speaker, *HANDOFF), of(speaker, "pending")
    if handoff and not _kept_ownership(handoff, pending):
        reasons = [f"agent_{e.category.removeprefix('agent_')}" for e in handoff]
        reasons += ["agent_promised_follow_up"] if pending else []
        return "escalated", _unique(reasons), top(handoff), handoff + pending
    if pending:
        reasons = ["agent_promised_follow_up", *(["agent_escalated"] if handoff else [])]
        return "pending", reasons, top(pending), pending + handoff

    final = of(final_run, "confirm", "unresolved", "complaint_threat")
    strong = [e for e in final if e.category == "confirm"]
    negative = [e for e in final if e.category != "confirm"]
    if strong and (not negative or strong[-1].index >= negative[-1].index):
        confirmed = strong[-1]
        text = doc.conversation.utterances[confirmed.index].text
        rest = _normalise(text)[confirmed.evidence.end_char :]
        contrast = _CONTRAST.search(rest)
        if contrast is None:
            return "solved", ["customer_confirmed"], top(strong), strong
        if not tail:
            start = confirmed.evidence.end_char + contrast.start()
            end = confirmed.evidence.end_char + contrast.end()
            remaining = Event(
                "unresolved",
                confirmed.index,
                "customer",
                Evidence(doc.utterance_ids[confirmed.index], start, end),
                0.6,
                "cue",
                rest[contrast.start() : contrast.end()],
            )
            return (
                "unresolved",
                ["partially_resolved", "remaining_issue"],
                0.6,
                [confirmed, remaining],
            )

    polite = of(final_run, *POLITE) + [e for e in of(trailing, *POLITE) if e.side == "customer"]
    if tail:
        last = tail[-1]
        text = doc.conversation.utterances[last].text
        asks = _asks_question(
            text, [e for e in p.events if e.index == last and e.category == "closing"]
        )
        replied = any(sides[i] != "agent" for i in trailing)
        if asks and not replied and doc.conversation.channel in async_channels:
            question = Event("question", last, "agent", doc.whole(last), 0.75, "structure", text)
            return (
                "abandoned",
                ["agent_question_unanswered", "customer_stopped_replying"],
                0.75,
                [question],
            )
        solution = of(tail, "solution")
        after = [e for e in polite if e.index > last]  # thanks for the answer, not in advance
        if solution and not negative:
            if after:
                return "solved", ["agent_answered", "customer_thanked"], 0.7, solution + after
            return "solved", ["agent_answered_last", "no_customer_confirmation"], 0.55, solution
        if asks and not replied:
            question = Event("question", last, "agent", doc.whole(last), 0.5, "structure", text)
            return "unresolved", ["ended_on_agent_question"], 0.5, [question]

    if negative:
        return "unresolved", ["customer_dissatisfied"], top(negative), negative
    if polite:
        # "ok thanks" confirms nothing by itself: it accepts what the agent said just before.
        answered = speaker if tail else _last_speaker(doc, prev_agent_run)
        handed, promised = of(answered, *HANDOFF), of(answered, "pending")
        if handed and not _kept_ownership(handed, promised):
            return "escalated", ["agent_handed_over", "customer_acknowledged"], 0.7, handed + polite
        if promised:
            reasons = ["agent_promised_follow_up", "customer_acknowledged"]
            return "pending", reasons, 0.7, promised + polite
        thanked = any(e.category == "thanks" for e in polite)
        reason = "customer_thanked" if thanked else "customer_acknowledged"
        return "solved", [reason], 0.7 if thanked else 0.55, polite
    end_turn = core[-1]
    ev = Event("last", end_turn, sides[end_turn], doc.whole(end_turn), 0.4, "structure", "")
    if tail:
        return "unresolved", ["agent_spoke_last", "no_resolution_signal"], 0.4, [ev]
    return "unresolved", ["customer_spoke_last", "no_reply"], 0.5, [ev]


def _last_speaker(doc: Doc, turns: list[int]) -> list[int]:
    """The final run of `turns` written by the participant who wrote the last of them."""
    if not turns:
        return []
    utterances = doc.conversation.utterances
    who = utterances[turns[-1]].participant_id
    run: list[int] = []
    for i in reversed(turns):
        if utterances[i].participant_id != who:
            break
        run.insert(0, i)
    return run


def _kept_ownership(handoff: list[Event], pending: list[Event]) -> bool:
    """An agent who escalated internally and promised to come back still owns the case:
    that is pending (and escalated); a transfer or a supervisor takes it over."""
    return bool(pending) and all(e.category == "agent_escalated" for e in handoff)


def _asks_question(text: str, closings: list[Event]) -> bool:
    """Whether the turn asks the customer something, closings and links blanked out (a
    link's query string "?hl=en" is no question)."""
    chars = list(_URL.sub(lambda m: " " * len(m.group()), _normalise(text)))
    for e in closings:
        # Blank the closing and the punctuation right after it ("anything else?").
        end = e.evidence.end_char
        while end < len(chars) and chars[end] in "?!. ":
            end += 1
        chars[e.evidence.start_char : end] = " " * (end - e.evidence.start_char)
    return bool(_QUESTION.search("".join(chars)))


def _metadata(
    doc: Doc, status: str, reasons: list[str], confidence: float
) -> tuple[str, list[str], float, bool]:
    """Ticket status and tags from the source system: they record the outcome outright."""
    conversation = doc.conversation
    raw = conversation.meta.get("status")
    tags = [t.strip().lower() for t in conversation.source.tags]
    for tag in tags:
        match = _STATUS_TAG.match(tag)
        if raw is None and match:
            raw = match.group(1)
    tagged = bool(_ESCALATION_TAGS & set(tags))
    if tagged:
        reasons = _unique([*reasons, "tag:escalation"])
    if not isinstance(raw, str) or not raw.strip():
        return status, reasons, confidence, tagged
    ticket = raw.strip().lower()
    mapped = _META_STATUS.get(ticket)
    if mapped is None:
        # "open"/"new": the text decides; the reason records that the ticket is still open.
        return status, _unique([*reasons, f"ticket_status:{ticket}"]), confidence, tagged
    if mapped != status:
        reasons = [f"ticket_status:{ticket}", f"text_suggested:{status}", *reasons]
        return mapped, _unique(reasons), 0.9, tagged or mapped == "escalated"
    return status, _unique([f"ticket_status:{ticket}", *reasons]), max(confidence, 0.95), tagged


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
