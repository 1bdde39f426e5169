"""Agent and team benchmarking: how each agent (and the bot) converses and what comes of it.

Coaching starts from comparison: an agent who talks 70 % of every call, interrupts twice as
often as the team, or jumps in the instant the customer stops is doing something a top
performer does not. So each agent gets the same measures, the team's mean, the mean of the
best quartile, and a percentile and rank per measure, and the bot gets them beside the
humans (`human_vs_ai`).

Who is an agent: every participant with role `agent` or `bot` who wrote or said something
(named by participant name, so "Sam Patel" from a chat and from an email is one agent),
and, for a conversation where no such participant spoke, the conversation's assigned agent.
Participant measures come from that participant's own metrics row; conversation measures
(handle time, sentiment change, resolution, escalation) are shared by every agent who took
part, as each had a hand in them.

Measures (per conversation, then averaged over the agent's conversations):

- handle time: the call's duration, else the written thread's elapsed time (first to last
  message), else the source's duration; none (not 0) when none of them is above 0, e.g. a
  thread whose messages carry no or a single timestamp, so it is neither shown as 0 s nor
  ranked;
- talk share, questions asked, longest monologue, interruptions made: `metrics_participant`
  (talk share, monologue and interruptions exist for timed calls and meetings only);
- patience: the mean pause before the agent starts speaking after a customer stops, over
  timed turns (Gong's "patience"): a turn counts when the segment that ended last before
  it was the customer's, and the pause is `max(0, start - that end)`; a backchannel
  entirely inside the customer's turn ("mm-hmm") is not a reply and is skipped;
- sentiment change: the customer's sentiment at the end minus at the start (the sentiment
  component's trajectory: mean score of the last third of the customer's turns minus the
  first third);
- resolution rate / escalation rate: share of the agent's labelled conversations whose
  `resolution.status` is solved / is escalated.

All of it is one SQL statement grouped by agent (or by agent kind); only the ranking of
the few resulting rows happens in Python.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

__all__ = [
    "AGENT_OF_CONVERSATION",
    "MEASURES",
    "AgentMeasures",
    "AgentScorecard",
    "HandlingSummary",
    "HumanVsAi",
    "KindSummary",
    "MeasureStat",
    "TeamComparison",
    "agent_scorecards",
    "conversations_without_agent",
    "human_vs_ai",
]

Better = Literal["higher", "lower"]
Kind = Literal["human", "ai"]

# measure -> which direction is better. Talking less and monologuing less are better for an
# agent (customers who talk more reveal more); a longer pause before replying is better
# (research on sales calls puts top performers near one second, others jump in sooner).
MEASURES: dict[str, Better] = {
    "handle_time_s": "lower",
    "talk_share": "lower",
    "questions_asked": "higher",
    "longest_monologue_s": "lower",
    "patience_s": "higher",
    "interruptions": "lower",
    "sentiment_change": "higher",
    "resolution_rate": "higher",
    "escalation_rate": "lower",
}


class AgentMeasures(BaseModel):
    """Means over the conversations an agent (or a group) took part in; None where no
    conversation had the measure (talk share needs timed calls, for instance)."""

    conversations: int
    timed_conversations: int
    handle_time_s: float | None
    talk_share: float | None
    questions_asked: float | None = Field(description="per conversation")
    longest_monologue_s: float | None
    patience_s: float | None
    patience_turns: int = Field(description="replies to a customer the pause is averaged over")
    interruptions: float | None = Field(description="made, per timed conversation")
    sentiment_change: float | None
    resolution_rate: float | None
    escalation_rate: float | None
    labelled_conversations: int = Field(description="conversations with a resolution label")


class MeasureStat(BaseModel):
    value: float | None
    team_mean: float | None
    top_quartile: float | None = Field(description="mean of the best quarter of agents")
    percentile: float | None = Field(description="0-100; 100 is the best on the team")
    rank: int | None = Field(description="1 is the best")
    ranked: int = Field(description="agents with a value for this measure")
    better: Better


class AgentScorecard(BaseModel):
    agent: str
    kind: Kind
    measures: AgentMeasures
    stats: dict[str, MeasureStat]


class TeamComparison(BaseModel):
    agents: list[AgentScorecard]
    team_mean: dict[str, float | None]
    top_quartile: dict[str, float | None]
    better: dict[str, Better]


class KindSummary(BaseModel):
    kind: Kind
    agents: list[str]
    measures: AgentMeasures


class HandlingSummary(BaseModel):
    handled_by: Literal["ai_only", "human_only", "ai_and_human"]
    conversations: int
    handle_time_s: float | None
    sentiment_change: float | None
    resolution_rate: float | None
    escalation_rate: float | None


class HumanVsAi(BaseModel):
    human: KindSummary
    ai: KindSummary
    difference: dict[str, float | None] = Field(description="ai minus human, per measure")
    by_handling: list[HandlingSummary]


# `conv` holds current versions only, so the other tables are joined on (id, version)
# directly rather than through their `*_current` views (each view joins the heads again).
_BASE = """
WITH conv AS (
    SELECT c.conversation_id, c.version, c.agent AS assigned,
           -- Missing is missing: a thread with fewer than two distinct message times has
           -- an elapsed time of 0, which is no handle time (it would rank best).
           coalesce(nullif(m.duration_s, 0), nullif(m.elapsed_s, 0),
                    nullif(c.duration_seconds, 0)) AS handle_s,
           coalesce(m.timed, false) AS timed
    FROM conversations_current c
    LEFT JOIN metrics_conversation m USING (conversation_id, version)
    {where}
),
speakers AS (
    SELECT p.conversation_id, p.version, p.participant_id, p.role,
           coalesce(nullif(trim(p.name), ''), p.participant_id) AS agent,
           CASE WHEN p.role = 'bot' THEN 'ai' ELSE 'human' END AS kind,
           mp.talk_share, mp.question_count, mp.longest_monologue_s, mp.interruptions
    FROM participants p
    JOIN conv USING (conversation_id, version)
    JOIN metrics_participant mp USING (conversation_id, version, participant_id)
    WHERE p.role IN ('agent', 'bot') AND mp.message_count > 0
),
turns AS (
    SELECT u.conversation_id, u.participant_id, p.role, u.start_s, u.end_s,
           max(u.end_s) OVER w AS floor_end,
           arg_max(p.role, u.end_s) OVER w AS floor_role
    FROM utterances u
    JOIN conv USING (conversation_id, version)
    JOIN participants p USING (conversation_id, version, participant_id)
    WHERE NOT u.internal AND u.start_s IS NOT NULL AND u.end_s IS NOT NULL
    WINDOW w AS (
        PARTITION BY u.conversation_id ORDER BY u.start_s, u.seq
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    )
),
pauses AS (
    SELECT conversation_id, participant_id, sum(greatest(start_s - floor_end, 0)) AS pause_sum,
           count(*) AS pause_n
    FROM turns
    WHERE role IN ('agent', 'bot') AND floor_role = 'customer' AND end_s > floor_end
    GROUP BY ALL
),
taking_part AS (
    -- One row per (conversation, agent): an agent may appear as two participants (a
    -- personal and a shared address), whose turns add up.
    SELECT s.conversation_id, s.agent, s.kind, sum(s.talk_share) AS talk_share,
           sum(s.question_count) AS questions, max(s.longest_monologue_s) AS monologue_s,
           sum(s.interruptions) AS interruptions, sum(pa.pause_sum) AS pause_sum,
           coalesce(sum(pa.pause_n), 0) AS pause_n
    FROM speakers s LEFT JOIN pauses pa USING (conversation_id, participant_id)
    GROUP BY ALL
    UNION ALL
    SELECT conversation_id, assigned, 'human', NULL, NULL, NULL, NULL, NULL, 0
    FROM conv ANTI JOIN speakers USING (conversation_id)
    WHERE assigned IS NOT NULL
),
outcome AS (
    SELECT conversation_id,
           any_value(json_extract_string(value, '$.status'))
               FILTER (WHERE label = 'resolution.status') AS status,
           bool_or(TRY_CAST(json_extract(value, '$.escalated') AS BOOLEAN))
               FILTER (WHERE label = 'resolution.status') AS escalated,
           any_value(TRY_CAST(json_extract(value, '$.end') AS DOUBLE)
                     - TRY_CAST(json_extract(value, '$.start') AS DOUBLE))
               FILTER (WHERE label = 'sentiment.conversation'
                       AND json_extract_string(value, '$.trajectory_basis') = 'customer')
               AS sentiment_change
    FROM labels_current
    WHERE label IN ('resolution.status', 'sentiment.conversation')
    GROUP BY conversation_id
),
scored AS (
    SELECT t.*, c.handle_s, c.timed, o.status, o.escalated, o.sentiment_change
    FROM taking_part t JOIN conv c USING (conversation_id)
    LEFT JOIN outcome o USING (conversation_id)
)
"""

# Who a conversation counts under, as everywhere here: each agent or bot participant who
# wrote or said something (by name), else its assigned agent. `report --by agent` groups by
# the same rows, so the two agree; a conversation with neither has no agent (missing, not
# an agent called "(none)"). Over conversations `c`; one row per (conversation, agent).
AGENT_OF_CONVERSATION = """
    SELECT c.conversation_id, c.version, coalesce(s.agent, c.agent) AS agent
    FROM conversations_current c
    LEFT JOIN (
        SELECT DISTINCT p.conversation_id, p.version,
               coalesce(nullif(trim(p.name), ''), p.participant_id) AS agent
        FROM participants p
        JOIN metrics_participant mp USING (conversation_id, version, participant_id)
        WHERE p.role IN ('agent', 'bot') AND mp.message_count > 0
    ) s USING (conversation_id, version)
"""


def conversations_without_agent(
    warehouse: Warehouse, filters: ConversationFilter | None = None
) -> int:
    """Conversations no agent took part in and none was assigned to (in `filters`)."""
    where, params = (filters or ConversationFilter()).where()
    row = warehouse.query(
        f"SELECT count(DISTINCT a.conversation_id) AS n FROM ({AGENT_OF_CONVERSATION}) a "
        f"JOIN conversations_current c USING (conversation_id, version){where} "
        f"{'AND' if where else 'WHERE'} a.agent IS NULL",
        params,
    )
    return int(row[0]["n"])


_AGGREGATES = """
    count(DISTINCT conversation_id) AS conversations,
    count(DISTINCT conversation_id) FILTER (WHERE timed) AS timed_conversations,
    avg(handle_s) AS handle_time_s,
    avg(talk_share) AS talk_share,
    avg(questions) AS questions_asked,
    avg(monologue_s) AS longest_monologue_s,
    sum(pause_sum) / nullif(sum(pause_n), 0) AS patience_s,
    sum(pause_n)::INTEGER AS patience_turns,
    avg(interruptions) FILTER (WHERE timed) AS interruptions,
    avg(sentiment_change) AS sentiment_change,
    avg((status = 'solved')::INTEGER) AS resolution_rate,
    avg(escalated::INTEGER) FILTER (WHERE status IS NOT NULL) AS escalation_rate,
    count(status) AS labelled_conversations
"""


def _measures(row: dict[str, Any]) -> AgentMeasures:
    return AgentMeasures(**{k: row[k] for k in AgentMeasures.model_fields})


def _query(
    warehouse: Warehouse, keys: str, filters: ConversationFilter | None
) -> list[dict[str, Any]]:
    """The measures per `keys` (columns of `scored`: "agent, kind" or "kind").

    Rows are first merged per conversation and key, so a meeting with two human agents
    counts once for the humans, with their talk shares added up.
    """
    where, params = (filters or ConversationFilter()).where()
    sql = (
        _BASE.format(where=where)
        + f"""
        , grouped AS (
            SELECT conversation_id, {keys}, sum(talk_share) AS talk_share,
                   sum(questions) AS questions, max(monologue_s) AS monologue_s,
                   sum(interruptions) AS interruptions, sum(pause_sum) AS pause_sum,
                   sum(pause_n) AS pause_n, any_value(handle_s) AS handle_s,
                   any_value(timed) AS timed, any_value(status) AS status,
                   any_value(escalated) AS escalated,
                   any_value(sentiment_change) AS sentiment_change, list(agent) AS names
            FROM scored GROUP BY conversation_id, {keys}
        )
        SELECT {keys}, {_AGGREGATES},
               list_sort(list_distinct(flatten(list(names)))) AS names
        FROM grouped GROUP BY {keys}
    """
    )
    return warehouse.query(sql, params)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def agent_scorecards(
    warehouse: Warehouse,
    filters: ConversationFilter | None = None,
    *,
    kind: Kind | None = None,
    min_conversations: int = 1,
) -> TeamComparison:
    """A scorecard per agent over the conversations `filters` selects (date range with
    `since`/`until`, channel, queue, ...), ranked against the team on every measure.

    `kind` keeps only human agents or only bots; agents with fewer than
    `min_conversations` conversations are left out of the team (and its means).
    """
    rows = [
        r
        for r in _query(warehouse, "agent, kind", filters)
        if r["conversations"] >= min_conversations and (kind is None or r["kind"] == kind)
    ]
    team_mean: dict[str, float | None] = {}
    top_quartile: dict[str, float | None] = {}
    stats: list[dict[str, MeasureStat]] = [{} for _ in rows]
    for measure, better in MEASURES.items():
        values = [r[measure] for r in rows if r[measure] is not None]
        ordered = sorted(values, reverse=better == "higher")  # best first
        team_mean[measure] = _mean(values)
        top_quartile[measure] = _mean(ordered[: max(1, math.ceil(len(ordered) / 4))])
        for position, row in enumerate(rows):
            value = row[measure]
            percentile = rank = None
            if value is not None:
                # Rank 1 is the best; agents tied share the better rank, and the percentile
                # follows the rank, so everyone tied for best is at 100.
                rank = 1 + sum(
                    1 for v in values if (v > value if better == "higher" else v < value)
                )
                percentile = (
                    100.0 * (len(values) - rank) / (len(values) - 1) if len(values) > 1 else 100.0
                )
            stats[position][measure] = MeasureStat(
                value=value,
                team_mean=team_mean[measure],
                top_quartile=top_quartile[measure],
                percentile=percentile,
                rank=rank,
                ranked=len(values),
                better=better,
            )
    cards = [
        AgentScorecard(agent=r["agent"], kind=r["kind"], measures=_measures(r), stats=s)
        for r, s in zip(rows, stats, strict=True)
    ]
    cards.sort(key=lambda card: (-card.measures.conversations, card.agent))
    return TeamComparison(
        agents=cards, team_mean=team_mean, top_quartile=top_quartile, better=dict(MEASURES)
    )


def _empty() -> AgentMeasures:
    counts = {"conversations", "timed_conversations", "patience_turns", "labelled_conversations"}
    return AgentMeasures.model_validate(
        {k: 0 if k in counts else None for k in AgentMeasures.model_fields}
    )


_HANDLING = """
, per_conversation AS (
    SELECT conversation_id, bool_or(kind = 'ai') AS has_ai, bool_or(kind = 'human') AS has_human,
           any_value(handle_s) AS handle_s, any_value(status) AS status,
           any_value(escalated) AS escalated, any_value(sentiment_change) AS sentiment_change
    FROM scored GROUP BY conversation_id
)
SELECT CASE WHEN has_ai AND has_human THEN 'ai_and_human'
            WHEN has_ai THEN 'ai_only' ELSE 'human_only' END AS handled_by,
       count(*) AS conversations, avg(handle_s) AS handle_time_s,
       avg(sentiment_change) AS sentiment_change,
       avg((status = 'solved')::INTEGER) AS resolution_rate,
       avg(escalated::INTEGER) FILTER (WHERE status IS NOT NULL) AS escalation_rate
FROM per_conversation GROUP BY 1 ORDER BY 1
"""


def human_vs_ai(warehouse: Warehouse, filters: ConversationFilter | None = None) -> HumanVsAi:
    """The same measures for human agents and for bots, side by side, pooled over their
    conversations; and the outcomes of conversations the bot handled alone, humans alone,
    or both (a bot handing over to a person)."""
    by_kind = {r["kind"]: r for r in _query(warehouse, "kind", filters)}
    summaries: dict[str, KindSummary] = {}
    for kind in ("human", "ai"):
        row = by_kind.get(kind)
        summaries[kind] = KindSummary(
            kind=kind,
            agents=list(row["names"]) if row else [],
            measures=_measures(row) if row else _empty(),
        )
    where, params = (filters or ConversationFilter()).where()
    handling = [
        HandlingSummary(**r) for r in warehouse.query(_BASE.format(where=where) + _HANDLING, params)
    ]
    difference: dict[str, float | None] = {}
    for measure in MEASURES:
        h = getattr(summaries["human"].measures, measure)
        a = getattr(summaries["ai"].measures, measure)
        difference[measure] = a - h if a is not None and h is not None else None
    return HumanVsAi(
        human=summaries["human"], ai=summaries["ai"], difference=difference, by_handling=handling
    )
