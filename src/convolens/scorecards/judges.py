"""How each kind of criterion is judged on one conversation: pass, fail or N/A, with evidence.

The judges read a `Transcript` (the conversation with its utterance embeddings, roles and
the labels other components gave it) so that the same code scores a stored conversation
and a live call turn by turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from convolens.enrich.base import Annotation, Evidence
from convolens.enrich.trackers import phrase_pattern
from convolens.metrics.compute import metrics_for_conversation
from convolens.metrics.intervals import gaps, union
from convolens.model import Conversation, Role
from convolens.scorecards.definition import (
    Condition,
    Criterion,
    DynamicsCheck,
    ForbiddenCheck,
    OrderCheck,
    Phrases,
    ResolutionCheck,
    SayCheck,
    SentimentRecoveryCheck,
)

__all__ = ["Match", "Outcome", "Transcript", "Verdict", "applies", "judge"]

Outcome = Literal["pass", "fail", "na"]


@dataclass
class Verdict:
    outcome: Outcome
    reason: str
    evidence: list[Evidence] = field(default_factory=list)


@dataclass(frozen=True)
class Match:
    index: int  # utterance position
    start: int
    end: int
    how: str  # "phrase 'hello'" or "meaning 0.71 ~ 'example'"


@dataclass
class Transcript:
    """A conversation as the judges see it."""

    conversation: Conversation
    utterance_ids: list[str]
    vectors: np.ndarray | None  # row i: utterance i's unit embedding
    labels: list[Annotation]
    conversation_type: str | None = None
    # Embeds example sentences (cached by the scorer); None: meaning matches are skipped.
    embed_examples: Callable[[tuple[str, ...]], np.ndarray] | None = None

    def role(self, index: int) -> Role:
        pid = self.conversation.utterances[index].participant_id
        for p in self.conversation.participants:
            if p.participant_id == pid:
                return p.role
        return Role.unknown

    def turns(self, speaker: Role | str) -> list[int]:
        """Positions of the speaker's non-empty, customer-visible utterances."""
        return [
            i
            for i, u in enumerate(self.conversation.utterances)
            if not u.internal and u.text.strip() and (speaker == "any" or self.role(i) == speaker)
        ]

    def whole(self, index: int) -> Evidence:
        return Evidence(self.utterance_ids[index], 0, len(self.conversation.utterances[index].text))

    def evidence(self, match: Match) -> Evidence:
        return Evidence(self.utterance_ids[match.index], match.start, match.end)

    def find(self, what: Phrases, among: list[int]) -> list[Match]:
        """Matches of `what` in the utterances `among`, in order: phrases first (the words),
        else meaning (the whole utterance) where no phrase matched that utterance."""
        patterns = [(p, phrase_pattern(p)) for p in what.phrases]
        similarities: np.ndarray | None = None
        if what.examples and self.vectors is not None and self.embed_examples and among:
            examples = self.embed_examples(tuple(what.examples))
            similarities = self.vectors[among] @ examples.T
        out: list[Match] = []
        for row, i in enumerate(among):
            text = self.conversation.utterances[i].text
            found = next(
                (
                    Match(i, m.start(), m.end(), f"phrase {phrase!r}")
                    for phrase, pattern in patterns
                    if (m := pattern.search(text))
                ),
                None,
            )
            if found is None and similarities is not None:
                best = int(np.argmax(similarities[row]))
                score = float(similarities[row, best])
                if score >= what.threshold:
                    how = f"meaning {score:.2f} ~ {what.examples[best]!r}"
                    found = Match(i, 0, len(text), how)
            if found is not None:
                out.append(found)
        return out


def applies(condition: Condition | None, t: Transcript) -> str | None:
    """None when the condition holds, else why not (the N/A reason)."""
    if condition is None:
        return None
    source = t.conversation.source
    if condition.queues is not None:
        queue = (source.queue or "").casefold()
        if queue not in {q.casefold() for q in condition.queues}:
            return f"queue {source.queue or 'none'} is not one of {', '.join(condition.queues)}"
    if condition.channels is not None and t.conversation.channel.value not in condition.channels:
        return (
            f"channel {t.conversation.channel.value} is not one of {', '.join(condition.channels)}"
        )
    if condition.conversation_types is not None and (
        t.conversation_type not in condition.conversation_types
    ):
        return f"a {t.conversation_type or 'unknown'} conversation"
    if condition.timed is not None:
        timed = any(u.start is not None for u in t.conversation.utterances)
        if timed != condition.timed:
            return "no timings" if condition.timed else "a timed conversation"
    mentions = condition.mentions
    if mentions is not None and not t.find(mentions, t.turns(mentions.speaker)):
        return "the condition's topic never comes up"
    return None


def judge(criterion: Criterion, t: Transcript) -> Verdict:
    reason = applies(criterion.applies_when, t)
    if reason is not None:
        return Verdict("na", f"not applicable: {reason}")
    check = criterion.check
    if isinstance(check, SayCheck):
        return _say(check, t)
    if isinstance(check, ForbiddenCheck):
        return _forbidden(check, t)
    if isinstance(check, OrderCheck):
        return _order(check, t)
    if isinstance(check, DynamicsCheck):
        return _dynamics(check, t)
    if isinstance(check, SentimentRecoveryCheck):
        return _recovery(check, t)
    return _resolution(check, t)


def _say(check: SayCheck, t: Transcript) -> Verdict:
    turns = t.turns(check.speaker)
    if not turns:
        return Verdict("na", f"no {check.speaker} turns")
    window, where = turns, "in the conversation"
    if check.window.first_turns:
        window = turns[: check.window.first_turns]
        where = f"in the first {check.window.first_turns} {check.speaker} turn(s)"
    elif check.window.last_turns:
        window = turns[-check.window.last_turns :]
        where = f"in the last {check.window.last_turns} {check.speaker} turn(s)"
    found = t.find(check, window)
    if found:
        return Verdict("pass", f"{found[0].how} {where}", [t.evidence(found[0])])
    return Verdict("fail", f"not said {where}")


def _forbidden(check: ForbiddenCheck, t: Transcript) -> Verdict:
    found = t.find(check, t.turns(check.speaker))
    if found:
        return Verdict("fail", f"said: {found[0].how}", [t.evidence(m) for m in found[:5]])
    return Verdict("pass", "none of the forbidden phrases")


def _order(check: OrderCheck, t: Transcript) -> Verdict:
    then = t.find(check.then, t.turns(check.then.speaker))
    if not then:
        return Verdict("na", "not applicable: the later step never happens")
    # "I need to verify your identity before I touch the account" is in order: the first
    # step may open the very utterance that then names the account.
    at = (then[0].index, then[0].start)
    first = [
        m
        for m in t.find(check.first, t.turns(check.first.speaker))
        if (m.index, m.start) < at and (m.index < at[0] or m.end <= at[1])
    ]
    if first:
        return Verdict(
            "pass",
            f"{first[0].how} before {then[0].how}",
            [t.evidence(first[0]), t.evidence(then[0])],
        )
    return Verdict("fail", f"{then[0].how} with no earlier required step", [t.evidence(then[0])])


def dynamics_value(metric: str, conversation: Conversation) -> tuple[float | None, int | None]:
    """The metric's value (None when untimed) and the utterance it points at, if any."""
    utterances = conversation.utterances
    if metric == "longest_silence_s":
        spans = [
            (u.start, u.end)
            for u in utterances
            if not u.internal and u.start is not None and u.end is not None
        ]
        if not spans:
            return None, None
        merged = union(spans)
        holes = gaps(merged, merged[-1][1], start=merged[0][0])
        if not holes:
            return 0.0, None
        low, high = max(holes, key=lambda h: h[1] - h[0])
        after = next(
            (i for i, u in enumerate(utterances) if u.start is not None and u.start >= high), None
        )
        return round(high - low, 3), after
    result = metrics_for_conversation(conversation)
    if not result.conversation.timed:
        return None, None
    role = "customer" if metric.startswith("customer") else "agent"
    rows = [p for p in result.participants if p.role == role]
    if not rows:
        return None, None
    if metric.endswith("talk_share"):
        return round(sum(p.talk_share or 0.0 for p in rows), 4), None
    if metric == "agent_longest_monologue_s":
        return max(p.longest_monologue_s or 0.0 for p in rows), None
    return float(sum(p.interruptions or 0 for p in rows)), None


def _dynamics(check: DynamicsCheck, t: Transcript) -> Verdict:
    value, index = dynamics_value(check.metric, t.conversation)
    if value is None:
        return Verdict("na", f"not applicable: no timings for {check.metric}")
    evidence = [Evidence(t.utterance_ids[index], 0, 0)] if index is not None else []
    if check.min is not None and value < check.min:
        return Verdict("fail", f"{check.metric} {value:g} below {check.min:g}", evidence)
    if check.max is not None and value > check.max:
        return Verdict("fail", f"{check.metric} {value:g} above {check.max:g}", evidence)
    return Verdict("pass", f"{check.metric} {value:g} within bounds", evidence)


def _scores(t: Transcript) -> dict[int, float]:
    """Sentiment score of each customer utterance, from the sentiment component's labels."""
    position = {uid: i for i, uid in enumerate(t.utterance_ids)}
    out: dict[int, float] = {}
    for a in t.labels:
        if a.label == "sentiment.utterance" and a.utterance_id in position:
            index = position[a.utterance_id]
            if t.role(index) == Role.customer and isinstance(a.value, dict):
                out[index] = float(a.value.get("score", 0.0))
    return out


def _recovery(check: SentimentRecoveryCheck, t: Transcript) -> Verdict:
    scores = _scores(t)
    if not scores:
        return Verdict("na", "not applicable: no customer sentiment labels")
    low = min(scores, key=lambda i: (scores[i], i))
    if scores[low] > check.negative_below:
        return Verdict("na", "not applicable: the customer never turned negative")
    after = [i for i in sorted(scores) if i > low][-check.last_turns :]
    if not after:
        return Verdict("fail", "the customer's last word was their most negative", [t.whole(low)])
    mean = sum(scores[i] for i in after) / len(after)
    evidence = [t.whole(low), t.whole(after[-1])]
    summary = f"low {scores[low]:+.2f}, last {len(after)} customer turn(s) average {mean:+.2f}"
    if mean >= check.recovered_at:
        return Verdict("pass", summary, evidence)
    return Verdict("fail", summary, evidence)


def _resolution(check: ResolutionCheck, t: Transcript) -> Verdict:
    labels = [a for a in t.labels if a.label == "resolution.status" and isinstance(a.value, dict)]
    if not labels:
        return Verdict("na", "not applicable: no resolution label")
    value: dict[str, Any] = labels[-1].value
    status = str(value.get("status"))
    outcome: Outcome = "pass" if status in check.statuses else "fail"
    return Verdict(outcome, f"resolution: {status}", list(labels[-1].evidence))
