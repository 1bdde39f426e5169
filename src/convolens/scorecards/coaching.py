"""Coaching from scores: per agent and team, trends, weakest criteria with example moments,
the top quartile's pass rates, a coaching list, and before/after a coaching date.

Outcomes are the ones that count: a QA reviewer's where present, else the automatic one.
An agent is the conversation's assigned agent. The top quartile is the agents whose mean
score is at or above the 75th percentile of agents' means; a criterion goes on an agent's
coaching list when their pass rate trails the top quartile's by `min_gap` or more over at
least `min_applicable` conversations it applied to.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from convolens.analytics.before_after import BeforeAfter, before_after
from convolens.scorecards.store import _LATEST, conversation_scores
from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = [
    "AgentCoaching",
    "CoachingImpact",
    "CoachingItem",
    "CoachingReport",
    "Moment",
    "coaching_impact",
    "coaching_report",
    "effective_rows",
]


class Moment(BaseModel):
    conversation_id: str
    source_id: str | None
    utterance_id: str | None
    reason: str
    link: str = Field(description="The dashboard page of the conversation, at the evidence.")


class CriterionRate(BaseModel):
    criterion: str
    applicable: int
    passed: int
    pass_rate: float | None
    team_rate: float | None
    top_quartile_rate: float | None


class CoachingItem(BaseModel):
    agent: str
    criterion: str
    pass_rate: float
    top_quartile_rate: float
    gap: float
    examples: list[Moment]


class AgentCoaching(BaseModel):
    agent: str
    conversations: int
    mean_score: float | None
    top_quartile: bool
    trend: list[dict[str, Any]] = Field(description="{'week', 'conversations', 'mean_score'}")
    criteria: list[CriterionRate]
    weakest: list[CoachingItem]


class CoachingReport(BaseModel):
    scorecard: str
    team_mean: float | None
    top_quartile_mean: float | None
    top_quartile_agents: list[str]
    agents: list[AgentCoaching]
    coaching_list: list[CoachingItem]


def _link(conversation_id: str, utterance_id: str | None) -> str:
    anchor = ""
    if utterance_id and ":" in utterance_id:
        anchor = "#u-" + utterance_id.rsplit(":", 1)[1]
    return f"/dashboard/conversations/{conversation_id}{anchor}"


def effective_rows(warehouse: Warehouse, scorecard: str) -> list[dict[str, Any]]:
    """Per current (conversation, criterion): agent, week, outcome (human over automatic),
    reason and first evidence utterance; and per conversation its score with overrides."""
    rows = warehouse.query(
        _LATEST + ", human AS (SELECT conversation_id, version, scorecard, criterion, "
        "arg_max(outcome, created_at) AS outcome FROM qa_scores GROUP BY ALL) "
        "SELECT t.conversation_id, t.version, c.agent, c.source_id, c.started_at, "
        "strftime(date_trunc('week', c.started_at), '%Y-%m-%d') AS week, "
        "TRY_CAST(t.total->>'score' AS DOUBLE) AS auto_score, "
        "e.value->>'criterion' AS criterion, e.value->>'outcome' AS auto, "
        "hu.outcome AS human, e.value->>'reason' AS reason, e.utterance_id "
        "FROM totals t JOIN latest USING (conversation_id, version, scorecard, run_id) "
        "JOIN conversations_current c USING (conversation_id, version) "
        "JOIN enrichments e ON e.run_id = t.run_id AND e.conversation_id = t.conversation_id "
        "AND e.version = t.version AND e.label = 'scorecard.criterion' "
        "AND e.value->>'scorecard' = t.scorecard "
        "LEFT JOIN human hu ON hu.conversation_id = t.conversation_id "
        "AND hu.version = t.version AND hu.scorecard = t.scorecard "
        "AND hu.criterion = e.value->>'criterion' "
        "WHERE t.scorecard = ? ORDER BY c.started_at, t.conversation_id, e.enrichment_id",
        [scorecard],
    )
    reviewed = {r["conversation_id"] for r in rows if r["human"]}
    # A reviewed conversation's total is recomputed with the human outcomes.
    overridden = {
        cid: conversation_scores(warehouse, cid, scorecard=scorecard)[0].score for cid in reviewed
    }
    for r in rows:
        r["outcome"] = r["human"] or r["auto"]
        r["score"] = overridden.get(r["conversation_id"], r["auto_score"])
    return rows


def _rate(passed: int, applicable: int) -> float | None:
    return round(passed / applicable, 3) if applicable else None


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def coaching_report(
    warehouse: Warehouse,
    scorecard: str = "support",
    *,
    agent: str | None = None,
    min_gap: float = 0.25,
    min_applicable: int = 2,
    examples: int = 3,
) -> CoachingReport:
    """The team's coaching view on one scorecard (or one agent's, with `agent`)."""
    rows = [r for r in effective_rows(warehouse, scorecard) if r["agent"]]
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_agent.setdefault(r["agent"], []).append(r)
    scores: dict[str, dict[str, float]] = {}
    for name, items in by_agent.items():
        scores[name] = {r["conversation_id"]: r["score"] for r in items if r["score"] is not None}
    means = {a: sum(s.values()) / len(s) for a, s in scores.items() if s}
    cut = _quantile(list(means.values()), 0.75) if means else None
    top = sorted(a for a, m in means.items() if cut is not None and m >= cut)
    everyone = [r for r in rows if r["outcome"] in ("pass", "fail")]
    best = [r for r in everyone if r["agent"] in top]
    criteria = list(dict.fromkeys(r["criterion"] for r in rows))

    def rates(items: list[dict[str, Any]], criterion: str) -> tuple[int, int]:
        mine = [
            r for r in items if r["criterion"] == criterion and r["outcome"] in ("pass", "fail")
        ]
        return sum(r["outcome"] == "pass" for r in mine), len(mine)

    agents = []
    coaching_list: list[CoachingItem] = []
    for name in sorted(by_agent):
        if agent and name != agent:
            continue
        items = by_agent[name]
        table = []
        weakest = []
        for criterion in criteria:
            passed, applicable = rates(items, criterion)
            team_passed, team_applicable = rates(everyone, criterion)
            top_passed, top_applicable = rates(best, criterion)
            rate, top_rate = _rate(passed, applicable), _rate(top_passed, top_applicable)
            table.append(
                CriterionRate(
                    criterion=criterion,
                    applicable=applicable,
                    passed=passed,
                    pass_rate=rate,
                    team_rate=_rate(team_passed, team_applicable),
                    top_quartile_rate=top_rate,
                )
            )
            if rate is None or top_rate is None or applicable < min_applicable:
                continue
            if top_rate - rate >= min_gap:
                failed = [
                    r for r in items if r["criterion"] == criterion and r["outcome"] == "fail"
                ]
                weakest.append(
                    CoachingItem(
                        agent=name,
                        criterion=criterion,
                        pass_rate=rate,
                        top_quartile_rate=top_rate,
                        gap=round(top_rate - rate, 3),
                        examples=[
                            Moment(
                                conversation_id=r["conversation_id"],
                                source_id=r["source_id"],
                                utterance_id=r["utterance_id"],
                                reason=r["reason"],
                                link=_link(r["conversation_id"], r["utterance_id"]),
                            )
                            for r in failed[-examples:]
                        ],
                    )
                )
        weakest.sort(key=lambda item: (-item.gap, item.criterion))
        coaching_list.extend(weakest)
        weeks: dict[str, dict[str, float]] = {}
        for r in items:
            if r["score"] is not None:
                weeks.setdefault(r["week"] or "undated", {})[r["conversation_id"]] = r["score"]
        agents.append(
            AgentCoaching(
                agent=name,
                conversations=len({r["conversation_id"] for r in items}),
                mean_score=round(means[name], 1) if name in means else None,
                top_quartile=name in top,
                trend=[
                    {
                        "week": week,
                        "conversations": len(values),
                        "mean_score": round(sum(values.values()) / len(values), 1),
                    }
                    for week, values in sorted(weeks.items())
                ],
                criteria=table,
                weakest=weakest,
            )
        )
    all_scores = [s for per in scores.values() for s in per.values()]
    top_scores = [s for a in top for s in scores[a].values()]
    return CoachingReport(
        scorecard=scorecard,
        team_mean=round(sum(all_scores) / len(all_scores), 1) if all_scores else None,
        top_quartile_mean=round(sum(top_scores) / len(top_scores), 1) if top_scores else None,
        top_quartile_agents=top,
        agents=agents,
        coaching_list=coaching_list,
    )


class CoachingImpact(BaseModel):
    agent: str
    scorecard: str
    at: datetime
    before_conversations: int
    after_conversations: int
    mean_before: float | None
    mean_after: float | None
    change: float | None
    p_value: float | None = Field(description="Welch z-test on the two means.")
    criteria: dict[str, dict[str, float | None]] = Field(
        description="Pass rate before and after per criterion."
    )
    volume: BeforeAfter | None = Field(description="The agent's conversations and sentiment.")


def coaching_impact(
    warehouse: Warehouse,
    agent: str,
    at: date | datetime,
    scorecard: str = "support",
    window_days: int = 28,
) -> CoachingImpact:
    """Did the agent's scores move after a coaching session on `at`? Scores in the
    `window_days` before against the `window_days` from it; the agent's volume and
    customer sentiment over the same windows come from the before/after analysis."""
    from convolens.analytics.trends import as_instant

    moment = as_instant(at)
    start, end = moment.timestamp() - window_days * 86400, moment.timestamp() + window_days * 86400
    rows = [
        r
        for r in effective_rows(warehouse, scorecard)
        if r["agent"] == agent
        and r["started_at"] is not None
        and start <= r["started_at"].timestamp() < end
    ]
    sides: dict[bool, dict[str, float]] = {False: {}, True: {}}
    passes: dict[tuple[bool, str], list[bool]] = {}
    for r in rows:
        after = r["started_at"].timestamp() >= moment.timestamp()
        if r["score"] is not None:
            sides[after][r["conversation_id"]] = r["score"]
        if r["outcome"] in ("pass", "fail"):
            passes.setdefault((after, r["criterion"]), []).append(r["outcome"] == "pass")
    before, after_ = list(sides[False].values()), list(sides[True].values())
    mean_b = sum(before) / len(before) if before else None
    mean_a = sum(after_) / len(after_) if after_ else None
    p_value = _welch_p(before, after_)
    names = sorted({c for _, c in passes})
    criteria = {
        c: {
            "before": _rate(sum(passes.get((False, c), [])), len(passes.get((False, c), []))),
            "after": _rate(sum(passes.get((True, c), [])), len(passes.get((True, c), []))),
        }
        for c in names
    }
    try:
        volume = before_after(warehouse, "agent", agent, moment, window_days)
    except (ValueError, LookupError, WarehouseError):
        volume = None  # e.g. no dated conversations: the scores still compare
    return CoachingImpact(
        agent=agent,
        scorecard=scorecard,
        at=moment,
        before_conversations=len(before),
        after_conversations=len(after_),
        mean_before=None if mean_b is None else round(mean_b, 1),
        mean_after=None if mean_a is None else round(mean_a, 1),
        change=None if mean_a is None or mean_b is None else round(mean_a - mean_b, 1),
        p_value=p_value,
        criteria=criteria,
        volume=volume,
    )


def _welch_p(a: list[float], b: list[float]) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None

    def var(xs: list[float]) -> float:
        m = sum(xs) / len(xs)
        return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)

    se = math.sqrt(var(a) / len(a) + var(b) / len(b))
    if se == 0:
        return None
    z = (sum(b) / len(b) - sum(a) / len(a)) / se
    return round(math.erfc(abs(z) / math.sqrt(2)), 4)


def as_json(report: BaseModel) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2)
