"""Live alerts: rules evaluated after every utterance, each firing once per episode.

- negative_sentiment_streak: the last `streak` (3) customer utterances are all negative,
  or the mean score of the last `mean_window` (5, at least `mean_min` 3) customer
  utterances is <= `mean_threshold` (-0.5). Fires once; re-arms when neither holds.
  A mean over several turns catches a customer whose first complaint the classifier reads
  as neutral ("This is the third time I'm calling about this": -0.17) but who goes on in
  the same vein.
- churn_risk: scored like the batch `signals` component's churn rule, turn by turn: the
  churn_risk and competitor_mention trackers (exact 0.6 x confidence, fuzzy 0.55 x,
  semantic 0.35) and the customer's repeat-contact, supervisor and complaint-threat cues
  (0.4), combined by noisy-OR over the 3 strongest (one per utterance), raised by negative
  customer sentiment (0.25, when the mean of the last `mean_window` scores is <= -0.3)
  once a finding exists.
  Fires when the level first reaches medium (0.5) and again on reaching high (0.7).
  Competitor evaluation counts here, unlike in `signals`: live, a customer weighing other
  vendors is the moment to act on churn.
- escalation: a cue of `resolution.ESCALATION_KINDS` said by the speaker's side (a demand
  for a supervisor, a transfer, "this is the third time", an agent escalating, a threat to
  complain), else an escalation_request tracker match (semantic ones from 0.65, as the
  resolution component requires). Once per kind per session.

Weights and levels come from `signals.SignalConfig`, so a change there moves both.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from convolens.enrich.base import Annotation
from convolens.enrich.resolution import ESCALATION_KINDS, find_cues
from convolens.enrich.signals import DEFAULT_RULES, SignalConfig
from convolens.model import Role
from convolens.realtime.events import AlertEvent, AlertEvidence
from convolens.scorecards.live import MissedStep

__all__ = ["CHURN_CUES", "CHURN_TRACKERS", "AlertConfig", "AlertRules", "script_alerts"]

CHURN_TRACKERS = (*DEFAULT_RULES["churn_risk"].trackers, "competitor_mention")
CHURN_CUES = tuple(DEFAULT_RULES["churn_risk"].escalations)
Severity = Literal["low", "medium", "high"]
_SEVERITY: dict[str, Severity] = {
    "supervisor": "high",
    "complaint_threat": "high",
    "agent_escalated": "low",
}
_KIND_TEXT = {
    "supervisor": "asks for a supervisor or manager",
    "transfer": "transfer or hand-over",
    "repeat_contact": "repeat contact about the same issue",
    "agent_escalated": "the agent escalated the case",
    "complaint_threat": "threatens to complain or leave",
    "escalation_request": "asks to escalate",
}


class AlertConfig(BaseModel):
    """Alert thresholds; unknown keys are errors so a typo does not keep a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    streak: int = Field(default=3, ge=1)
    mean_window: int = Field(default=5, ge=1)
    mean_min: int = Field(default=3, ge=1)
    mean_threshold: float = Field(default=-0.5, ge=-1, le=1)
    escalation_semantic_min: float = Field(default=0.65, ge=0, le=1)
    # Customer sentiment that raises churn risk: the mean of the last `mean_window` scores.
    churn_negative_mean: float = Field(default=-0.3, ge=-1, le=0)
    churn: SignalConfig = Field(default_factory=SignalConfig)
    # Script adherence (scorecards/live.py): the shipped scorecard whose required steps a
    # live conversation on `script_channels` is held to; None turns it off.
    script_scorecard: str | None = "support"
    script_channels: list[str] = Field(default_factory=lambda: ["call"])

    @field_validator("script_scorecard")
    @classmethod
    def _known_scorecard(cls, value: str | None) -> str | None:
        from convolens.scorecards.definition import load_scorecards

        names = [card.name for card in load_scorecards()]
        if value is not None and value not in names:
            raise ValueError(f"unknown scorecard {value!r}; choose from {', '.join(names)}")
        return value


class AlertRules:
    """One session's alert state; `update` after each utterance returns the alerts it fires."""

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig()
        self._customer: list[tuple[str, float, str]] = []  # (uid, score, label)
        self._streak_armed = True
        self._churn: dict[str, tuple[float, str, AlertEvidence]] = {}
        self._churn_level: Severity | None = None
        self._escalated: set[str] = set()

    def update(
        self,
        uid: str,
        text: str,
        role: Role,
        customer: bool,
        sentiment: dict[str, object] | None,
        hits: list[Annotation],
        t: float,
    ) -> list[AlertEvent]:
        """`sentiment` is the utterance's sentiment value; `hits` its default-tracker labels."""
        side = "agent" if role in (Role.agent, Role.bot) else "customer"
        cues = [c for c in find_cues(text, side) if c[0] in ESCALATION_KINDS]
        out: list[AlertEvent] = []
        if customer and sentiment is not None:
            score = float(sentiment["score"])  # type: ignore[arg-type]
            self._customer.append((uid, score, str(sentiment["label"])))
            out += self._streak(t)
        out += self._escalation(uid, text, cues, hits, t)
        if customer:
            out += self._churn_risk(uid, text, cues, hits, t)
        return out

    def _streak(self, t: float) -> list[AlertEvent]:
        c = self.config
        last = self._customer[-c.streak :]
        streak = len(last) == c.streak and all(label == "negative" for _, _, label in last)
        window = self._customer[-c.mean_window :]
        mean = float(np.mean([s for _, s, _ in window]))
        rolling = len(window) >= c.mean_min and mean <= c.mean_threshold
        if not (streak or rolling):
            self._streak_armed = True
            return []
        if not self._streak_armed:
            return []
        self._streak_armed = False
        chosen = last if streak else window
        message = (
            f"{len(last)} negative customer utterances in a row"
            if streak
            else f"customer sentiment averages {mean:+.2f} over the last {len(window)} utterances"
        )
        return [
            AlertEvent(
                t=t,
                rule="negative_sentiment_streak",
                severity="high" if streak and rolling else "medium",
                message=message,
                evidence=[AlertEvidence(utterance_id=u) for u, s, _ in chosen if s < 0],
                details={
                    "basis": [n for n, on in (("streak", streak), ("rolling_mean", rolling)) if on],
                    "mean": round(mean, 4),
                    "scores": {u: s for u, s, _ in window},
                },
            )
        ]

    def _escalation(
        self,
        uid: str,
        text: str,
        cues: list[tuple[str, int, int]],
        hits: list[Annotation],
        t: float,
    ) -> list[AlertEvent]:
        found = list(cues)
        if not found:
            minimum = self.config.escalation_semantic_min
            for a in hits:
                if a.value.get("tracker") != "escalation_request" or not a.evidence:
                    continue
                if a.value["match"] == "semantic" and (a.confidence or 0) < minimum:
                    continue
                found.append(
                    ("escalation_request", a.evidence[0].start_char, a.evidence[0].end_char)
                )
        out: list[AlertEvent] = []
        for kind, start, end in found:
            if kind in self._escalated:
                continue
            self._escalated.add(kind)
            quoted = text[start:end]
            out.append(
                AlertEvent(
                    t=t,
                    rule="escalation",
                    severity=_SEVERITY.get(kind, "medium"),
                    message=f'Escalation: {_KIND_TEXT[kind]} ("{quoted}")',
                    evidence=[
                        AlertEvidence(utterance_id=uid, start_char=start, end_char=end, text=quoted)
                    ],
                    details={"kind": kind},
                )
            )
        return out

    def _churn_risk(
        self,
        uid: str,
        text: str,
        cues: list[tuple[str, int, int]],
        hits: list[Annotation],
        t: float,
    ) -> list[AlertEvent]:
        s = self.config.churn
        w = s.weights
        base = {"exact": w.tracker_exact, "fuzzy": w.tracker_fuzzy, "semantic": w.tracker_semantic}
        best: tuple[float, str, AlertEvidence] | None = None
        for a in hits:
            v = a.value
            if v.get("tracker") not in CHURN_TRACKERS or not a.evidence:
                continue
            how = v["match"]
            weight = base[how] * (1.0 if how == "semantic" else float(a.confidence or 0))
            quoted = v.get("text") or text
            e = a.evidence[0]
            span = AlertEvidence(
                utterance_id=uid, start_char=e.start_char, end_char=e.end_char, text=quoted
            )
            if best is None or weight > best[0]:
                best = (weight, f'tracker {v["tracker"]} ({how}): "{quoted}"', span)
        for kind, start, end in cues:
            if kind in CHURN_CUES and (best is None or w.escalation > best[0]):
                quoted = text[start:end]
                span = AlertEvidence(utterance_id=uid, start_char=start, end_char=end, text=quoted)
                best = (w.escalation, f'{kind.replace("_", " ")}: "{quoted}"', span)
        if best is not None:
            self._churn[uid] = best
        if not self._churn:
            return []
        findings = sorted(self._churn.values(), key=lambda f: -f[0])[: s.max_findings]
        weights = [f[0] for f in findings]
        reasons = [f[1] for f in findings]
        window = self._customer[-self.config.mean_window :]
        mean = float(np.mean([score for _, score, _ in window])) if window else 0.0
        if window and mean <= self.config.churn_negative_mean:
            weights.append(w.negative_sentiment)
            reasons.append(f"customer sentiment negative ({mean:+.2f})")
        score = 1.0 - float(np.prod([1.0 - min(1.0, max(0.0, x)) for x in weights]))
        level: Severity | None = (
            "high" if score >= s.high else "medium" if score >= s.medium else None
        )
        rank = {None: 0, "low": 0, "medium": 1, "high": 2}
        if level is None or rank[level] <= rank[self._churn_level]:
            return []
        self._churn_level = level
        return [
            AlertEvent(
                t=t,
                rule="churn_risk",
                severity=level,
                message=f"Churn risk {level} ({score:.2f}): {reasons[0]}",
                evidence=[f[2] for f in findings],
                details={"score": round(score, 4), "reasons": reasons},
            )
        ]


def script_alerts(missed: list[MissedStep], t: float) -> list[AlertEvent]:
    """Alerts for required script steps a live call missed (scorecards/live.py)."""
    return [
        AlertEvent(
            t=t,
            rule="script_adherence",
            severity=m.severity,  # type: ignore[arg-type]
            message=m.message,
            evidence=[
                AlertEvidence(
                    utterance_id=m.utterance_id,
                    start_char=m.start_char,
                    end_char=m.end_char,
                    text=m.text,
                )
            ],
            details={"scorecard": m.scorecard, "criterion": m.criterion, **m.details},
        )
        for m in missed
    ]
