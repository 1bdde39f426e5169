"""Aggregate tables across conversations (by channel, agent, queue or week) for reports."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from convolens.analytics.agents import AGENT_OF_CONVERSATION
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

__all__ = ["ReportGrouping", "overview", "report_table"]


class ReportGrouping(StrEnum):
    channel = "channel"
    agent = "agent"
    queue = "queue"
    week = "week"


_GROUP_EXPRESSIONS = {
    ReportGrouping.channel: "c.channel",
    # As `convolens agents` counts them (analytics/agents.py): each agent or bot who took
    # part, else the assigned agent; "(none)" only where there is neither.
    ReportGrouping.agent: "coalesce(ag.agent, '(none)')",
    ReportGrouping.queue: "coalesce(c.queue, '(none)')",
    # ISO weeks start on Monday; the label is that Monday's date.
    ReportGrouping.week: (
        "coalesce(strftime(date_trunc('week', c.started_at), '%Y-%m-%d'), '(no date)')"
    ),
}


def report_table(
    warehouse: Warehouse, by: ReportGrouping, filters: ConversationFilter | None = None
) -> list[dict[str, Any]]:
    """One row per group: volume, timing and dynamics averages over current conversations.

    Averages skip conversations where a metric does not apply (e.g. talk share for chats).
    """
    where, params = (filters or ConversationFilter()).where()
    # By agent, a conversation with two agents counts under each (as in `agents`).
    agent_join = (
        f"LEFT JOIN ({AGENT_OF_CONVERSATION}) ag USING (conversation_id, version)"
        if by is ReportGrouping.agent
        else ""
    )
    sql = f"""
        WITH agent_side AS (
            SELECT conversation_id, version, sum(talk_share) AS agent_talk_share,
                   max(longest_monologue_s) AS agent_longest_monologue_s,
                   sum(question_count) AS agent_questions
            FROM metrics_participant WHERE role = 'agent' GROUP BY ALL
        )
        SELECT {_GROUP_EXPRESSIONS[by]} AS "group",
               count(*) AS conversations,
               sum(c.utterance_count) AS messages,
               round(avg(c.utterance_count), 1) AS avg_messages,
               count(m.duration_s) AS timed,
               round(avg(m.duration_s) / 60, 2) AS avg_duration_min,
               round(avg(m.silence_s / nullif(m.duration_s, 0)), 3) AS avg_silence_share,
               round(avg(m.overlap_s), 1) AS avg_overlap_s,
               round(avg(m.switches_per_minute), 2) AS avg_switches_per_min,
               round(avg(a.agent_talk_share), 3) AS avg_agent_talk_share,
               round(avg(a.agent_longest_monologue_s), 1) AS avg_agent_monologue_s,
               round(median(m.first_response_s), 1) AS median_first_response_s,
               round(median(m.median_response_s), 1) AS median_response_s,
               round(avg(m.exchanges), 1) AS avg_exchanges
        FROM conversations_current c
        LEFT JOIN metrics_conversation m USING (conversation_id, version)
        LEFT JOIN agent_side a USING (conversation_id, version)
        {agent_join}
        {where}
        GROUP BY ALL
        ORDER BY 1
    """
    return warehouse.query(sql, params)


def overview(warehouse: Warehouse) -> dict[str, Any]:
    """Headline counts for the warehouse: conversations, utterances, versions, rejects."""
    row = warehouse.query(
        """
        SELECT (SELECT count(*) FROM conversation_heads) AS conversations,
               (SELECT count(*) FROM conversations) AS versions,
               (SELECT count(*) FROM utterances_current) AS utterances,
               (SELECT count(*) FROM raw_interactions) AS raw_records,
               (SELECT count(*) FROM rejects) AS rejects,
               (SELECT count(*) FROM metrics_conversation_current) AS analysed
        """
    )
    return row[0]
