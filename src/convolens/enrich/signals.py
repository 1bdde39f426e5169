"""Business signals per conversation: churn risk, bug reports, feature requests, expansion
interest, competitor evaluation, pricing objections: from what earlier components found.

Teams act on conversations, not on single tracker hits: "is this account at risk, and why?"
This component reads the labels already in `doc.annotations` and weighs them together, so
each signal says how strong it is, which components back it and where in the text:

- trackers (`tracker.match`): the tracker mapped to the signal (`SignalRule.trackers`);
- intents (`intent.utterance`, optional: used when that component ran): intent names that
  match the signal's regexes (`SignalRule.intents`, e.g. "cancel" for churn), unless the
  utterance was out of scope;
- escalations (`escalation`, from the resolution component): kinds that count for the
  signal (`SignalRule.escalations`): for churn, a threat to complain or leave, a repeated
  contact, a demand for a manager (said by the customer; agent-side events do not count);
- amplifiers, which raise a signal but, except where `alone` allows, never create one: the
  customer's sentiment worsened (`sentiment.conversation` trajectory "worsening") or is
  negative overall (the customer's `sentiment.participant`, else the conversation's), the
  conversation ended unresolved or abandoned, or it was escalated (`resolution.status`).

Scoring. Every finding adds a contribution w in [0, 1] (`Weights`): a tracker phrase match
0.6 x confidence, a fuzzy one 0.55 x confidence, a semantic one 0.35 (flat: the tracker's
own threshold already judged the similarity, and 0.45 x ~0.6 fell below `min_score`), an
intent 0.5 x confidence, an escalation 0.4 x confidence, worsening sentiment 0.35,
negative sentiment 0.25, unresolved 0.25, escalated 0.2. At most the three strongest
tracker and intent findings per signal count, one per utterance (a customer repeating
"cancel" in one message is one finding). The score is the noisy-OR 1 - prod(1 - w):
independent evidence accumulates, and no single source reaches 1. Strength: high from
0.7, medium from 0.5, low from `min_score` 0.3; below that no label. So one exact churn
phrase alone is medium (0.6) and with worsening sentiment high (0.74). A signal whose rule
has `alone` (churn risk by default) may also come from amplifiers without any churn words:
the conversation ended unresolved (or abandoned) and at least one more amplifier holds. Only
as low: such scores are capped at `alone_cap` 0.49 (an unresolved, souring conversation is
a risk to watch, not a customer who said they are leaving; an escalated, negative one that
got fixed is no churn signal at all).

Evidence is the union of the supporting findings' spans, deduplicated, in text order;
`reasons` are readable sentences; `sources` name the components.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.conversation_type import conversation_type_of
from convolens.model import Role

__all__ = ["DEFAULT_RULES", "SIGNALS", "SignalComponent", "SignalConfig", "SignalRule", "Weights"]

LABEL = "signal"
SIGNALS = (
    "churn_risk",
    "bug_report",
    "feature_request",
    "expansion_interest",
    "competitor_evaluation",
    "pricing_objection",
)
AMPLIFIERS = ("worsening_sentiment", "negative_sentiment", "unresolved", "escalated")


class SignalRule(BaseModel):
    """What counts for one signal; unknown keys are errors so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")

    trackers: list[str] = Field(default_factory=list)
    intents: list[str] = Field(default_factory=list, description="Regexes on intent names.")
    escalations: list[str] = Field(default_factory=list, description="Escalation kinds.")
    amplifiers: list[str] = Field(default_factory=list)
    alone: bool = Field(default=False, description="Amplifiers alone may raise it (capped).")
    types: list[str] | None = Field(
        default=None, description="Conversation types it applies to; None: all with a customer."
    )


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracker_exact: float = 0.6
    tracker_fuzzy: float = 0.55
    tracker_semantic: float = 0.35
    intent: float = 0.5
    escalation: float = 0.4
    worsening_sentiment: float = 0.35
    negative_sentiment: float = 0.25
    unresolved: float = 0.25
    escalated: float = 0.2


DEFAULT_RULES: dict[str, SignalRule] = {
    "churn_risk": SignalRule(
        trackers=["churn_risk"],
        intents=[
            r"cancel(?:lation)?_?(?:my_?|the_?)?(?:subscription|account|membership|plan|service"
            r"|contract|renewal)",
            r"close_?(?:my_?)?account|terminate|unsubscribe|churn|downgrade|not_?renew",
        ],
        # Threats to leave, repeated contacts and demands for a manager: the classic
        # precursors of churn in support data.
        escalations=["complaint_threat", "repeat_contact", "supervisor"],
        amplifiers=list(AMPLIFIERS),
        alone=True,
        # A prospect cannot churn, nor a candidate; an account review meeting can show it.
        types=["support", "meeting", "other"],
    ),
    "bug_report": SignalRule(
        trackers=["bug_report"],
        intents=[r"bug|crash|error|not_?working|broken|defect|malfunction|outage"],
        amplifiers=["negative_sentiment", "unresolved"],
    ),
    "feature_request": SignalRule(
        trackers=["feature_request"], intents=[r"feature|suggestion|enhancement"]
    ),
    "expansion_interest": SignalRule(
        trackers=["expansion_interest"],
        intents=[r"upgrade|add_?(?:seats?|users?|licen[cs]es?)|expan|more_?seats|buy_?more"],
    ),
    "competitor_evaluation": SignalRule(
        trackers=["competitor_mention"],
        intents=[r"competitor|switch(?:ing)?_?provider"],
        amplifiers=["negative_sentiment"],
    ),
    "pricing_objection": SignalRule(
        trackers=["pricing_objection"],
        intents=[r"discount|too_?expensive|price_?(?:objection|complaint|increase)|bad_?price"],
        amplifiers=["negative_sentiment"],
    ),
}


class SignalConfig(BaseModel):
    """`signals` replaces the rule of each signal it names; others keep their default."""

    model_config = ConfigDict(extra="forbid")

    signals: dict[str, SignalRule] = Field(default_factory=dict)
    weights: Weights = Field(default_factory=Weights)
    min_score: float = Field(default=0.3, ge=0, le=1)
    medium: float = Field(default=0.5, ge=0, le=1)
    high: float = Field(default=0.7, ge=0, le=1)
    alone_cap: float = Field(default=0.49, ge=0, le=1)
    max_findings: int = Field(default=3, ge=1)


@dataclass
class _Finding:
    weight: float
    reason: str
    source: str
    evidence: list[Evidence]
    utterance: str | None = None


class SignalComponent(Component):
    """Labels each conversation with a `signal` for every business signal it shows."""

    name = "signals"
    version = "1"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    requires: ClassVar[tuple[str, ...]] = (
        "tracker.match",
        "sentiment.conversation",
        "resolution.status",
        "conversation.type",
    )
    assigns: ClassVar[tuple[str, ...]] = (LABEL,)
    description = "Churn risk, bugs, feature requests, expansion, competitors, pricing objections."
    # Every signal is the voice of a customer: none in an internal meeting or a hearing.
    needs_customer: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.settings = SignalConfig.model_validate(self.config)
        self.rules = {**DEFAULT_RULES, **self.settings.signals}
        self._intents = {
            name: [re.compile(p, re.IGNORECASE) for p in rule.intents]
            for name, rule in self.rules.items()
        }
        canonical = self.settings.model_dump_json() + str(
            {k: v.model_dump() for k, v in sorted(self.rules.items())}
        )
        self.taxonomy_version = hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        return [self._label(doc) for doc in batch]

    def _label(self, doc: Doc) -> list[Annotation]:
        amplifiers = self._amplifiers(doc)
        customer_uids = _customer_uids(doc)
        order = {uid: i for i, uid in enumerate(doc.utterance_ids)}
        out = []
        kind = conversation_type_of(doc).get("type")
        for name, rule in self.rules.items():
            if rule.types is not None and kind not in rule.types:
                continue
            primary = self._trackers(doc, rule) + self._intent_findings(doc, name, customer_uids)
            primary = _strongest(primary, self.settings.max_findings)
            primary += self._escalations(doc, rule)
            extra = [amplifiers[a] for a in rule.amplifiers if a in amplifiers]
            unresolved = "unresolved" in rule.amplifiers and "unresolved" in amplifiers
            alone = rule.alone and unresolved and len(extra) >= 2
            if not primary and not alone:
                continue
            findings = primary + extra
            score = 1.0
            for finding in findings:
                score *= 1.0 - min(1.0, max(0.0, finding.weight))
            score = 1.0 - score
            if not primary:
                score = min(score, self.settings.alone_cap)
            if score < self.settings.min_score:
                continue
            evidence = list(dict.fromkeys(e for f in findings for e in f.evidence))
            evidence.sort(key=lambda e: (order.get(e.utterance_id, 0), e.start_char))
            value = {
                "signal": name,
                "strength": self._strength(score),
                "score": round(score, 4),
                "reasons": list(dict.fromkeys(f.reason for f in findings)),
                "sources": sorted({f.source for f in findings}),
            }
            out.append(Annotation(LABEL, value, round(score, 4), None, evidence))
        return out

    def _strength(self, score: float) -> str:
        if score >= self.settings.high:
            return "high"
        return "medium" if score >= self.settings.medium else "low"

    def _trackers(self, doc: Doc, rule: SignalRule) -> list[_Finding]:
        w = self.settings.weights
        base = {"exact": w.tracker_exact, "fuzzy": w.tracker_fuzzy, "semantic": w.tracker_semantic}
        out = []
        for a in doc.labels("tracker.match"):
            value = a.value if isinstance(a.value, dict) else {}
            if value.get("tracker") not in rule.trackers:
                continue
            kind = str(value.get("match", "semantic"))
            quoted = value.get("text") or value.get("example") or ""
            how = "said" if kind != "semantic" else "said something like"
            reason = f'tracker {value["tracker"]}: customer {how} "{quoted}"'
            confidence = 1.0 if kind == "semantic" else float(a.confidence or 0.0)
            weight = base.get(kind, w.tracker_semantic) * confidence
            out.append(_Finding(weight, reason, "trackers", list(a.evidence), a.utterance_id))
        return out

    def _intent_findings(self, doc: Doc, name: str, customer: set[str]) -> list[_Finding]:
        patterns = self._intents.get(name, [])
        out = []
        for a in doc.labels("intent.utterance"):
            value = a.value if isinstance(a.value, dict) else {}
            intent = str(value.get("intent") or "")
            if not intent or value.get("out_of_scope") or a.utterance_id not in customer:
                continue
            if any(p.search(intent) for p in patterns):
                confidence = float(a.confidence or 0.0)
                reason = f"intent {intent} ({confidence:.2f})"
                weight = self.settings.weights.intent * confidence
                out.append(_Finding(weight, reason, "intents", list(a.evidence), a.utterance_id))
        return out

    def _escalations(self, doc: Doc, rule: SignalRule) -> list[_Finding]:
        out = []
        for a in doc.labels("escalation"):
            value = a.value if isinstance(a.value, dict) else {}
            if value.get("kind") not in rule.escalations or value.get("by") not in (
                "customer",
                "any",
            ):
                continue
            weight = self.settings.weights.escalation * float(a.confidence or 0.0)
            reason = f'escalation {value["kind"]}: "{value.get("text", "")}"'
            out.append(_Finding(weight, reason, "resolution", list(a.evidence)))
        return out

    def _amplifiers(self, doc: Doc) -> dict[str, _Finding]:
        """Sentiment and resolution findings that raise signals, by amplifier name."""
        w = self.settings.weights
        out: dict[str, _Finding] = {}
        conversation = next(iter(doc.labels("sentiment.conversation")), None)
        if conversation is not None and isinstance(conversation.value, dict):
            value = conversation.value
            worst = [
                e for e in conversation.evidence if e.utterance_id == value.get("most_negative")
            ]
            if value.get("trajectory") == "worsening":
                reason = (
                    f"customer sentiment worsened from {value.get('start', 0):+.2f} "
                    f"to {value.get('end', 0):+.2f}"
                )
                out["worsening_sentiment"] = _Finding(
                    w.worsening_sentiment, reason, "sentiment", worst
                )
            negative = self._customer_sentiment(doc) or (value.get("label"), value.get("score"))
            if negative[0] == "negative":
                reason = f"customer sentiment negative overall ({float(negative[1] or 0):+.2f})"
                out["negative_sentiment"] = _Finding(
                    w.negative_sentiment, reason, "sentiment", worst
                )
        status = next(iter(doc.labels("resolution.status")), None)
        if status is not None and isinstance(status.value, dict):
            value = status.value
            if value.get("status") in ("unresolved", "abandoned"):
                reason = f"conversation ended {value['status']}"
                out["unresolved"] = _Finding(w.unresolved, reason, "resolution", status.evidence)
            if value.get("escalated"):
                kinds = ", ".join(value.get("escalation_kinds") or []) or "tagged"
                events = [e for a in doc.labels("escalation") for e in a.evidence]
                reason = f"conversation was escalated ({kinds})"
                out["escalated"] = _Finding(w.escalated, reason, "resolution", events)
        return out

    def _customer_sentiment(self, doc: Doc) -> tuple[Any, Any] | None:
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        for a in doc.labels("sentiment.participant"):
            value = a.value if isinstance(a.value, dict) else {}
            if roles.get(value.get("participant_id", "")) == Role.customer:
                return value.get("label"), value.get("score")
        return None


def _customer_uids(doc: Doc) -> set[str]:
    roles = {p.participant_id: p.role for p in doc.conversation.participants}
    known = any(r != Role.unknown for r in roles.values())
    return {
        uid
        for uid, u in zip(doc.utterance_ids, doc.conversation.utterances, strict=True)
        if not known or roles.get(u.participant_id) == Role.customer
    }


def _strongest(findings: list[_Finding], limit: int) -> list[_Finding]:
    """The `limit` strongest findings, at most one per utterance."""
    best: dict[str | None, _Finding] = {}
    for finding in findings:
        key = finding.utterance or f"#{id(finding)}"
        if key not in best or finding.weight > best[key].weight:
            best[key] = finding
    return sorted(best.values(), key=lambda f: -f.weight)[:limit]
