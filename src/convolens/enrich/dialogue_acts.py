"""Dialogue acts: questions (answered or not), action items and follow-ups.

Each non-internal utterance's sentences go through the rules of `dialogue_rules` (on the
shared spaCy parses) and become labels:

- `question` {text, asked_by, role, kind, request, answered, answered_by,
  answer_utterance_id}; evidence is the question clause. A question is answered when one
  of the next `answer_window` (3) turns by other participants is substantive: it has a
  sentence that is not a question and holds two words beyond backchannels ("ok", "hmm",
  "thanks"), or, for yes/no and alternative questions, a yes/no word in its first three
  ("sure", "no", "yep"). The first such turn is the answer; a reply that only asks back
  ("which plan?") is not.
- `action_item` {kind: commitment|request, text, owner, owner_role, verbs, due, due_text,
  follow_up, channel} (+ requested_by, joint for requests); evidence is the sentence. A
  commitment's owner is the speaker; a request's is the addressee: the next other speaker,
  else the previous one (joint requests have none). `due` is an ISO date resolved from the
  utterance's time: sent_at, else started_at + start, else started_at (UTC dates).
- `follow_up` {owner, owner_role, due, due_text, text, channel}: commitments to contact again.
- `dialogue_acts.summary`: questions by role and participant, unanswered ones, action
  items by kind and owner, follow-ups.
- `dialogue_act` {act, score} per utterance: the conversation encoder's act (statement,
  backchannel, question_yn / _wh / _tag / _declarative / _or, commitment, directive,
  suggestion, other).

The rules read syntax; the conversation encoder (trained on meeting and telephone speech,
half of it without punctuation or case) reads what the utterance does. They are combined
per utterance (thresholds below, set on MRDA val): without a "?" in the utterance (raw
ASR text), a question is what the encoder says, with the rules' kind when they find one;
a rule commitment by a customer or an unknown speaker stands only when the encoder gives
the act some probability, and an act the encoder is sure of stands without a rule.
Staff's support formulas ("your refund will be processed") are not in the meeting data,
so staff commitments keep the rules alone, and so do the requests of agents and
customers ("can you reset my password" gets little directive probability from the
meeting-trained head); a rule request by a participant without a role (a meeting) needs
the head's agreement.
`{"model": "rules"}` turns the encoder off (the rules alone, as before).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, NamedTuple

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.conversation_encoder import (
    ConversationEncoder,
    EncoderPass,
    encoder_pass,
    shared_encoder,
)
from convolens.enrich.dialogue_rules import (
    BACKCHANNEL,
    QUESTION_MARK,
    STAFF,
    YES_NO,
    analyse_sentence,
    contact_channel,
    due_phrase,
    resolve_due,
)
from convolens.enrich.nlp import DEFAULT_SPACY_MODEL, parsed, shared_nlp, spacy_model_id
from convolens.model import Role

__all__ = ["ANSWER_WINDOW", "DialogueActComponent", "resolve_due"]

ANSWER_WINDOW = 3
# The encoder's question kinds as the rules name them.
MODEL_KINDS = {
    "question_yn": "yes_no",
    "question_wh": "wh",
    "question_tag": "tag",
    "question_declarative": "declarative",
    "question_or": "alternative",
}
# Thresholds on the encoder's probabilities, set for encoder v3 on all of MRDA val
# (16,433 utterances; a grid over each, see eval/dialogue_acts.py and the model card).
QUESTION_ALONE = 0.6  # an unpunctuated utterance is a question on the encoder's word
QUESTION_WITH_RULE = 0.2  # ... or on the rules' with this much question (or directive)
KEEP_RULE_ITEM = 0.1  # a customer's rule commitment needs this much of the act
MODEL_COMMITMENT = 0.8  # the encoder alone makes a commitment from this
MODEL_DIRECTIVE = 0.6  # ... and a directive from this
KEEP_RULE_REQUEST = 0.2  # a meeting participant's rule request needs this much directive


class DialogueActComponent(Component):
    """Labels `question`, `action_item`, `follow_up`, `dialogue_acts.summary` and
    `dialogue_act`."""

    name = "dialogue_acts"
    version = "3"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    assigns: ClassVar[tuple[str, ...]] = (
        "question",
        "action_item",
        "follow_up",
        "dialogue_acts.summary",
        "dialogue_act",
    )
    description = "Questions (answered or not), commitments, requests and follow-ups."

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        nlp: Any | None = None,
        encoder: ConversationEncoder | None = None,
    ) -> None:
        super().__init__(config)
        self.nlp = (
            nlp
            or self.config.get("nlp")
            or shared_nlp(self.config.get("spacy_model") or DEFAULT_SPACY_MODEL)
        )
        self.encoder: ConversationEncoder | None = None
        if self.config.get("model") != "rules":
            self.encoder = encoder or shared_encoder(self.config.get("encoder_artefact"))
        self.model_id = spacy_model_id(self.nlp) + (
            f"+{self.encoder.model_id}" if self.encoder else ""
        )
        self.answer_window = int(self.config.get("answer_window", ANSWER_WINDOW))
        # The rules are the taxonomy: a new rule set is a new version, not new definitions.
        self.taxonomy_version = f"rules-{self.version}"

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        spacy_docs = parsed(batch, self.nlp)
        passes: list[EncoderPass | None] = (
            list(encoder_pass(batch, self.encoder)) if self.encoder else [None] * len(batch)
        )
        return [
            self._label(doc, sdocs, found)
            for doc, sdocs, found in zip(batch, spacy_docs, passes, strict=True)
        ]

    def _label(self, doc: Doc, sdocs: list[Any], found: EncoderPass | None) -> list[Annotation]:
        conversation = doc.conversation
        utterances = conversation.utterances
        roles = {p.participant_id: p.role for p in conversation.participants}
        kept = [i for i, u in enumerate(utterances) if not u.internal and u.text.strip()]
        speakers = [utterances[i].participant_id for i in kept]
        out: list[Annotation] = []
        asked: list[tuple[Annotation, int]] = []  # each question and its row in `kept`
        # Per kept utterance: (holds a substantive statement, opens with a yes/no word).
        replies: list[tuple[bool, bool]] = []
        for row, i in enumerate(kept):
            utterance, uid = utterances[i], doc.utterance_ids[i]
            speaker = utterance.participant_id
            role = roles.get(speaker, Role.unknown)
            turn = _Turn(
                uid, speaker, role, _addressee(speakers, row), _base_time(conversation, utterance)
            )
            substantive, yes_no = False, False
            sents = list(sdocs[i].sents)
            unpunctuated = "?" not in utterance.text
            for n, sent in enumerate(sents):
                acts = analyse_sentence(sent, role)
                if found is not None:
                    acts = _combine(acts, sent, found, i, role, unpunctuated, n == len(sents) - 1)
                words = [t.lower_ for t in sent if t.is_alpha]
                yes_no = yes_no or any(w in YES_NO for w in words[:3])
                if acts["question"] is None:
                    content = [w for w in words if w not in BACKCHANNEL]
                    substantive = substantive or len(content) >= 2
                for annotation in self._sentence(sent, acts, turn, roles):
                    out.append(annotation)
                    if annotation.label == "question":
                        asked.append((annotation, row))
            replies.append((substantive, yes_no))
        for question, row in asked:
            answer = self._answer(question.value, row, speakers, replies)
            if answer is not None:
                question.value.update(
                    answered=True,
                    answered_by=speakers[answer],
                    answer_utterance_id=doc.utterance_ids[kept[answer]],
                )
        if kept:
            out.append(_summary(out))
        if found is not None:
            for i in kept:
                act, score = found.top("dialogue_act", i)
                value = {"act": act, "score": round(score, 4)}
                uid = doc.utterance_ids[i]
                out.append(Annotation("dialogue_act", value, score, uid, [doc.whole(i)]))
        return out

    def _sentence(
        self, sent: Any, acts: dict[str, Any], turn: _Turn, roles: dict[str, Role]
    ) -> list[Annotation]:
        """The question, action items and follow-up one sentence holds, in that order."""
        uid, out = turn.uid, []
        evidence = [Evidence(uid, sent.start_char, sent.end_char)]
        if acts["question"] is not None:
            kind, start = acts["question"]
            span = sent.doc[start : sent.end]
            text = span.text.rstrip()
            value = {
                "text": text,
                "asked_by": turn.speaker,
                "role": turn.role.value,
                "kind": kind,
                "request": bool(acts["requests"]),
                "answered": False,
                "answered_by": None,
                "answer_utterance_id": None,
            }
            # "?" and syntax agreeing is surer than either alone.
            confidence = 0.9 if QUESTION_MARK.search(sent.text) else 0.75
            where = [Evidence(uid, span.start_char, span.start_char + len(text))]
            out.append(Annotation("question", value, confidence, uid, where))
        if acts["commitments"]:
            verbs = [v for v, _ in acts["commitments"]]
            item = _item("commitment", sent, verbs, turn.speaker, roles, turn.base)
            confidence = max(c for _, c in acts["commitments"])
            out.append(Annotation("action_item", item, confidence, uid, evidence))
            if item["follow_up"]:
                value = {k: item[k] for k in ("owner", "owner_role", "due", "due_text", "text")}
                value["channel"] = item["channel"]
                out.append(Annotation("follow_up", value, confidence, uid, evidence))
        if acts["requests"]:
            verbs = [v for v, _, _ in acts["requests"]]
            joint = all(j for _, _, j in acts["requests"])
            owner = None if joint else turn.addressee
            item = _item("request", sent, verbs, owner, roles, turn.base)
            item.update(requested_by=turn.speaker, joint=joint)
            confidence = max(c for _, c, _ in acts["requests"])
            out.append(Annotation("action_item", item, confidence, uid, evidence))
        return out

    def _answer(
        self,
        question: dict[str, Any],
        row: int,
        speakers: list[str],
        replies: list[tuple[bool, bool]],
    ) -> int | None:
        """Row of the first substantive reply by someone else within the answer window."""
        asker, seen = question["asked_by"], 0
        for later in range(row + 1, len(speakers)):
            if speakers[later] == asker:
                continue
            substantive, yes_no = replies[later]
            if substantive or (yes_no and question["kind"] in {"yes_no", "alternative"}):
                return later
            seen += 1
            if seen >= self.answer_window:
                return None
        return None


def _combine(
    acts: dict[str, Any],
    sent: Any,
    found: EncoderPass,
    i: int,
    role: Role,
    unpunctuated: bool,
    last: bool,
) -> dict[str, Any]:
    """The rules' acts for one sentence, checked against and completed by the encoder's
    reading of its utterance (row `i`). Model-only acts go on the utterance's last sentence,
    where its act usually sits ("ok so, can you send me the file")."""
    p = found.probabilities("dialogue_act", i)
    p_question = found.share("dialogue_act", i, "question_")
    question = acts["question"]
    if unpunctuated:
        if question is not None and p_question + p["directive"] < QUESTION_WITH_RULE:
            question = None
        elif question is None and last and p_question >= QUESTION_ALONE:
            kind = max(MODEL_KINDS, key=lambda k: p[k])
            question = (MODEL_KINDS[kind], sent.start)
    commitments, requests = list(acts["commitments"]), list(acts["requests"])
    # Requests keep the rules: customers' "can you reset my password" is what support
    # needs, and the meeting-trained head gives it little directive probability.
    if role not in STAFF and p["commitment"] < KEEP_RULE_ITEM:
        commitments = []
    # In meetings (no agent or customer roles) the meeting-trained head is on home ground.
    if role is Role.unknown and p["directive"] < KEEP_RULE_REQUEST:
        requests = []
    if last and not commitments and p["commitment"] >= MODEL_COMMITMENT:
        commitments = [(sent.root, p["commitment"])]
    if last and not requests and not commitments and p["directive"] >= MODEL_DIRECTIVE:
        requests = [(sent.root, p["directive"], False)]
    return {"question": question, "commitments": commitments, "requests": requests}


class _Turn(NamedTuple):
    uid: str
    speaker: str
    role: Role
    addressee: str | None
    base: datetime | None


def _item(
    kind: str,
    sent: Any,
    verbs: list[Any],
    owner: str | None,
    roles: dict[str, Role],
    base: datetime | None,
) -> dict[str, Any]:
    due_text = due_phrase(verbs, sent)
    due = resolve_due(due_text, base) if due_text else None
    follow_up, channel = (
        contact_channel(verbs, sent.text) if kind == "commitment" else (False, None)
    )
    return {
        "kind": kind,
        "text": sent.text.strip(),
        "owner": owner,
        "owner_role": roles[owner].value if owner in roles else None,
        "verbs": [v.lemma_ for v in verbs],
        "due": due.isoformat() if due else None,
        "due_text": due_text,
        "follow_up": follow_up,
        "channel": channel,
    }


def _summary(labels: list[Annotation]) -> Annotation:
    """Counts over the conversation's questions, action items and follow-ups."""

    def count(values: list[str | None]) -> dict[str, int]:
        out: dict[str, int] = {}
        for value in values:
            out[value or "none"] = out.get(value or "none", 0) + 1
        return out

    questions = [a.value for a in labels if a.label == "question"]
    items = [a.value for a in labels if a.label == "action_item"]
    unanswered = [q for q in questions if not q["answered"]]
    value = {
        "questions": {
            "total": len(questions),
            "by_role": count([q["role"] for q in questions]),
            "by_participant": count([q["asked_by"] for q in questions]),
            "unanswered": len(unanswered),
            "unanswered_by_role": count([q["role"] for q in unanswered]),
        },
        "action_items": {
            "commitments": sum(i["kind"] == "commitment" for i in items),
            "requests": sum(i["kind"] == "request" for i in items),
            "by_owner": count([i["owner"] for i in items]),
            "by_owner_role": count([i["owner_role"] for i in items]),
        },
        "follow_ups": sum(a.label == "follow_up" for a in labels),
    }
    evidence = [e for a in labels if a.label in {"question", "action_item"} for e in a.evidence]
    return Annotation("dialogue_acts.summary", value, None, None, evidence)


def _addressee(speakers: list[str], row: int) -> str | None:
    """Who a request at `row` is addressed to: the next other speaker, else the previous."""
    me = speakers[row]
    following = (s for s in speakers[row + 1 :] if s != me)
    preceding = (s for s in reversed(speakers[:row]) if s != me)
    return next(following, None) or next(preceding, None)


def _base_time(conversation: Any, utterance: Any) -> datetime | None:
    """When an utterance was said: its own time, else the conversation's start (+ offset)."""
    if utterance.sent_at is not None:
        return utterance.sent_at  # type: ignore[no-any-return]
    started = conversation.started_at
    if started is not None and utterance.start is not None:
        return started + timedelta(seconds=utterance.start)  # type: ignore[no-any-return]
    return started  # type: ignore[no-any-return]
