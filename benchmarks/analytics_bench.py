"""Analytics query speed on 100,000 conversations: convolens' API beside hand-written SQL.

    python benchmarks/analytics_bench.py [--conversations 100000] [--utterances-per 10]
        [--db PATH] [--repeat 20] [--signal churn_risk] [--revise 0.02] [--seed 0] [--profile]

Issue #6 asks that the trend, spike, agent and lift queries, called through convolens' own
functions, take at most 3x the time of the same question asked in hand-written DuckDB SQL.
So this builds a synthetic warehouse of 100,000 conversations / 1,000,000 utterances
(`synth_warehouse.py`: real schema, labels in the shapes the components write, a planted
bug-report spike in the last week; a few seconds), gives 2 % of the conversations a second
version and relabels another 2 % in a later run (`--revise`), imports 5,000 accounts from a
CSV written by DuckDB COPY through `business_import` (churn planted to follow the lift
signal) and stitches the conversations to them. `--db PATH` keeps that warehouse in PATH
and reuses it on the next run. Then, on one connection, in one process, after one warm-up
run each, the variants are timed round-robin so machine load hits them alike:

- api: `trends.volume(w, "intent", "week")`, `spikes.spikes(w, "intent", "week")`,
  `agents.agent_scorecards(w)`, `business_marts.signal_outcome_lift(w, signal)`, each
  returning its pydantic models;
- sql: the same question written by an analyst against the warehouse's current views
  (`conversations_current`, `participants_current`, `utterances_current`,
  `metrics_*_current`, `labels_current`, plus the stitch's `conversation_accounts`), so it
  means the same thing: newest versions, latest run of each component; rows fetched into
  Python. This is the yardstick of the target;
- bare: that SQL on the base tables (`conversations`, `enrichments`, ...), skipping the
  version and latest-run logic, as an analyst might where it is much cheaper: shown for
  what that logic costs, its figures wrong once anything was revised.

Before timing, the figures are checked: the SQL must agree with the API (every cell of the
trend, every value's spike counts and sentiment, every agent's measures, the lift counts),
or the mismatch is printed and the exit status is 1; with revisions the bare SQL must
disagree (else the revisions test nothing). `--profile` then splits each API call into its
SQL statements (time in DuckDB, execute + fetch) and the Python around them, and prints the
slowest operators of EXPLAIN ANALYZE for the costliest statement and for the SQL.

Prints per query: API ms (p50/p95), SQL ms (p50/p95), bare ms (p50/p95), API/SQL (the
target: <= 3x), API/bare.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from synth_warehouse import ACCOUNTS, START, generate_synthetic_warehouse

from convolens.analytics import agents, business_marts, spikes, trends
from convolens.analytics.business_import import existing_tables, import_entities, stitch
from convolens.store.warehouse import Warehouse

TARGET_RATIO = 3.0
TOL = 1.5e-4  # the API rounds sentiment and shares to 4 places; sums may round apart


# -- revisions --------------------------------------------------------------------------------
def revise(warehouse: Warehouse, share: float, seed: int = 0) -> str:
    """Give `share` of the conversations a second version and relabel another `share` in a
    later run, as re-ingesting changed sources and reprocessing do, so that reading old
    versions or superseded runs changes the figures: the checks then show that the SQL
    over the current views means what the API means (and that the bare SQL does not).

    Version 2 moves the conversation to agent "Agent 01", its primary intent to
    refund_request and its resolution to solved; the later run (components intents,
    sentiment, signals, resolution) makes it cancel_subscription, the customer's sentiment
    0.9, its only signal bug_report (a churn_risk before is gone) and its resolution
    escalated."""
    if share <= 0:
        return "no revisions"
    con = warehouse.con
    cut = int(share * 1_000_000)
    picked = f"hash(conversation_id, 'revise', {int(seed)}) % 1000000 < {cut}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _revised AS SELECT DISTINCT conversation_id "
        f"FROM conversations WHERE version = 1 AND {picked}"
    )
    con.execute(
        "INSERT INTO runs (run_id, kind, started_at, finished_at, convolens_version, args) "
        "VALUES ('bench-revise', 'ingest', now(), now(), 'bench', '{}'), "
        "('bench-rerun', 'enrich', now(), now(), 'bench', '{}')"
    )
    v2 = "SEMI JOIN _revised USING (conversation_id) WHERE t.version = 1"
    for table, replace in (
        ("conversations", "md5(t.content_hash) AS content_hash, 'Agent 01' AS agent"),
        ("participants", "CASE WHEN t.role = 'agent' THEN 'Agent 01' ELSE t.name END AS name"),
        ("utterances", ""),
        ("metrics_conversation", ""),
        ("metrics_participant", ""),
    ):
        extra = f", {replace}" if replace else ""
        con.execute(
            f"INSERT INTO {table} BY NAME SELECT t.* REPLACE (2 AS version{extra}) "
            f"FROM {table} t {v2}"
        )
    con.execute(
        f"""
        INSERT INTO enrichments BY NAME
        SELECT t.* REPLACE (
            2 AS version, t.enrichment_id || ':v2' AS enrichment_id,
            'bench-revise' AS run_id,
            CASE t.label
                WHEN 'intent.primary' THEN json_merge_patch(
                    t.value, '{{"intent": "refund_request", "parent": "billing"}}')
                WHEN 'resolution.status' THEN json_merge_patch(
                    t.value, '{{"status": "solved", "escalated": false}}')
                ELSE t.value END AS value)
        FROM enrichments t {v2}
        """
    )
    con.execute(
        f"""
        INSERT INTO enrichment_status BY NAME
        SELECT t.* REPLACE (2 AS version, 'bench-revise' AS run_id,
                            t.processed_at + INTERVAL 1 HOUR AS processed_at)
        FROM enrichment_status t {v2}
        """
    )
    # The later run, on the current version of other conversations.
    rerun = picked.replace("'revise'", "'rerun'")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _rerun AS SELECT conversation_id, version "
        f"FROM conversation_heads WHERE {rerun}"
    )
    components = "('intents', 'sentiment', 'signals', 'resolution')"
    con.execute(
        f"""
        INSERT INTO enrichments BY NAME
        SELECT t.* REPLACE (
            t.enrichment_id || ':rerun' AS enrichment_id, 'bench-rerun' AS run_id,
            CASE t.label
                WHEN 'intent.primary' THEN json_merge_patch(
                    t.value, '{{"intent": "cancel_subscription", "parent": "subscription"}}')
                WHEN 'sentiment.participant' THEN CASE
                    WHEN t.value ->> 'participant_id' = 'c'
                        THEN json_merge_patch(t.value, '{{"score": 0.9}}') ELSE t.value END
                WHEN 'resolution.status' THEN json_merge_patch(
                    t.value, '{{"status": "escalated", "escalated": true}}')
                ELSE t.value END AS value)
        FROM labels_current t SEMI JOIN _rerun USING (conversation_id, version)
        WHERE t.component IN {components} AND t.label <> 'signal'
        UNION ALL BY NAME
        SELECT t.* REPLACE (
            t.conversation_id || ':signal:rerun' AS enrichment_id, 'bench-rerun' AS run_id,
            'signals' AS component, 'signal' AS label, 0.8 AS confidence,
            json_object('signal', 'bug_report', 'strength', 'high', 'score', 0.8,
                        'reasons', ['rerun'], 'sources', ['intents']) AS value)
        FROM labels_current t SEMI JOIN _rerun USING (conversation_id, version)
        WHERE t.label = 'intent.primary'
        """
    )
    con.execute(
        f"""
        INSERT INTO enrichment_status BY NAME
        SELECT t.* REPLACE ('bench-rerun' AS run_id, t.processed_at + INTERVAL 2 HOUR
                            AS processed_at)
        FROM enrichment_status t SEMI JOIN _rerun USING (conversation_id, version)
        WHERE t.component IN {components}
        """
    )
    counts = con.execute("SELECT (SELECT count(*) FROM _revised), (SELECT count(*) FROM _rerun)")
    revised, rerun_n = counts.fetchone() or (0, 0)
    con.execute("DROP TABLE _revised; DROP TABLE _rerun; CHECKPOINT")
    return f"{revised:,} conversations given a version 2, {rerun_n:,} relabelled by a later run"


# -- business data ----------------------------------------------------------------------------
def import_accounts(warehouse: Warehouse, folder: Path, signal: str, seed: int = 0) -> str:
    """Write the accounts of the synthetic conversations to a CSV with DuckDB COPY, import
    them through `business_import` and stitch. Churn is planted so the lift has something
    to find: an account whose conversations raise `signal` churns within 150 days of the
    first with chance 20 %; any account churns at a random date with chance 5 % (some
    before their first signal: not at risk), and 1 % churned before the data begins."""
    con = warehouse.con
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO bench_u(i, salt) AS "
        f"(hash(i, salt, {int(seed)}) % 1000003)::DOUBLE / 1000003"
    )
    csv = folder / "accounts.csv"
    target = str(csv).replace("'", "''")
    con.execute(
        f"""
        COPY (
            WITH exposed AS (
                SELECT c.account_id, min(c.started_at) AS first_at
                FROM enrichments e JOIN conversations c USING (conversation_id, version)
                WHERE e.label = 'signal' AND e.value ->> 'signal' = ?
                GROUP BY c.account_id
            ), drawn AS (
                SELECT i, 'ACC-' || (10000 + i) AS account_id, bench_u(i, 'churn') AS u
                FROM range({ACCOUNTS}) t(i)
            )
            SELECT d.account_id, 'Account ' || (10000 + i) AS name,
                   'acc' || (10000 + i) || '.example.com' AS email_domain,
                   ['starter', 'team', 'business', 'enterprise'][
                       1 + floor(bench_u(i, 'plan') * 4)::INT] AS plan,
                   round(1200 + bench_u(i, 'arr') * 98800, 2) AS arr,
                   TIMESTAMPTZ '2024-01-01 00:00:00+00'
                       + to_days(floor(bench_u(i, 'created') * 800)::INT) AS created_at,
                   CASE WHEN u < 0.01 THEN TIMESTAMPTZ '2026-04-15 00:00:00+00'
                        WHEN e.first_at IS NOT NULL AND u < 0.21
                            THEN e.first_at + to_days(floor(bench_u(i, 'when') * 150)::INT)
                        WHEN u > 0.95
                            THEN TIMESTAMPTZ '{START}'
                                 + to_days(floor(bench_u(i, 'when') * 240)::INT)
                   END AS churned_at
            FROM drawn d LEFT JOIN exposed e USING (account_id)
            ORDER BY i
        ) TO '{target}' (HEADER, DELIMITER ',')
        """,
        [signal],
    )
    imported = import_entities(warehouse, csv, "accounts")
    stitched = stitch(warehouse)
    return (
        f"{imported.rows:,} accounts imported, {stitched.stitched:,} of "
        f"{stitched.conversations:,} conversations stitched ({stitched.by_rule})"
    )


# -- hand-written SQL -------------------------------------------------------------------------
# Each query exists twice: over the current views (same meaning as the API: newest version,
# latest run of each component) and over the base tables ("bare"). `_bare` rewrites one into
# the other, so the two differ in nothing else.
_BARE = {
    "conversations_current": "conversations",
    "participants_current": "participants",
    "utterances_current": "utterances",
    "metrics_conversation_current": "metrics_conversation",
    "metrics_participant_current": "metrics_participant",
    "labels_current": "enrichments",
}


def _bare(sql: str) -> str:
    return re.sub(r"\b(" + "|".join(_BARE) + r")\b", lambda m: _BARE[m.group(1)], sql)


# The customer's mood per conversation: mean score of the customers' participant sentiment,
# else the conversation's sentiment (as trends.py defines it).
_MOOD = """
    SELECT l.conversation_id,
           coalesce(
               avg(TRY_CAST(l.value ->> 'score' AS DOUBLE)) FILTER (WHERE p.role = 'customer'),
               any_value(TRY_CAST(l.value ->> 'score' AS DOUBLE))
                   FILTER (WHERE l.label = 'sentiment.conversation')
           ) AS score
    FROM labels_current l
    LEFT JOIN participants_current p
        ON l.label = 'sentiment.participant' AND p.conversation_id = l.conversation_id
        AND p.participant_id = l.value ->> 'participant_id'
    WHERE l.label IN ('sentiment.participant', 'sentiment.conversation')
    GROUP BY l.conversation_id
"""

TRENDS_SQL = f"""
WITH conv AS (
    SELECT conversation_id, CAST(date_trunc('week', started_at) AS DATE) AS week
    FROM conversations_current WHERE started_at IS NOT NULL
),
intent AS (
    SELECT conversation_id, value ->> 'intent' AS intent
    FROM labels_current WHERE label = 'intent.primary'
),
mood AS ({_MOOD}),
weeks AS (
    SELECT week, count(*) AS total, avg(m.score) AS sentiment
    FROM conv LEFT JOIN mood m USING (conversation_id) GROUP BY week
)
SELECT c.week, i.intent, count(*) AS n, round(count(*) / any_value(w.total), 4) AS share,
       round(avg(m.score), 4) AS sentiment, count(m.score) AS scored,
       any_value(w.total) AS week_total, round(any_value(w.sentiment), 4) AS week_sentiment
FROM conv c JOIN intent i USING (conversation_id) JOIN weeks w USING (week)
LEFT JOIN mood m USING (conversation_id)
WHERE i.intent IS NOT NULL
GROUP BY c.week, i.intent
ORDER BY c.week, i.intent
"""

# The latest week (the one holding the newest conversation) against the 4 weeks before it.
SPIKES_SQL = f"""
WITH latest AS (
    SELECT CAST(date_trunc('week', max(started_at)) AS DATE) AS last_week FROM conversations_current
),
conv AS (
    SELECT c.conversation_id, CAST(date_trunc('week', c.started_at) AS DATE) AS week
    FROM conversations_current c, latest
    WHERE c.started_at >= last_week - INTERVAL 28 DAY
      AND c.started_at < last_week + INTERVAL 7 DAY
),
intent AS (
    SELECT conversation_id, value ->> 'intent' AS intent
    FROM labels_current WHERE label = 'intent.primary'
),
mood AS ({_MOOD}),
cells AS (
    SELECT c.week, i.intent, count(*) AS n, sum(m.score) AS ssum, count(m.score) AS scored
    FROM conv c JOIN intent i USING (conversation_id) LEFT JOIN mood m USING (conversation_id)
    WHERE i.intent IS NOT NULL
    GROUP BY ALL
)
SELECT intent,
       coalesce(sum(n) FILTER (WHERE week = last_week), 0) AS current,
       [coalesce(sum(n) FILTER (WHERE week = last_week - 28), 0),
        coalesce(sum(n) FILTER (WHERE week = last_week - 21), 0),
        coalesce(sum(n) FILTER (WHERE week = last_week - 14), 0),
        coalesce(sum(n) FILTER (WHERE week = last_week - 7), 0)] AS baseline_counts,
       sum(ssum) FILTER (WHERE week = last_week)
           / nullif(sum(scored) FILTER (WHERE week = last_week), 0) AS sentiment,
       sum(ssum) FILTER (WHERE week < last_week)
           / nullif(sum(scored) FILTER (WHERE week < last_week), 0) AS baseline_sentiment,
       (SELECT count(*) FROM conv, latest WHERE week = last_week) AS week_total,
       (SELECT count(*) FROM conv, latest WHERE week < last_week) / 4 AS baseline_total
FROM cells, latest
GROUP BY intent, last_week
ORDER BY intent
"""

# Per agent (participant name; the assigned agent where no agent or bot spoke): the means of
# agents.py's measures over the conversations the agent took part in.
AGENTS_SQL = """
WITH conv AS (
    SELECT c.conversation_id, c.agent AS assigned,
           coalesce(m.duration_s, m.elapsed_s, c.duration_seconds) AS handle_s,
           coalesce(m.timed, false) AS timed
    FROM conversations_current c
    LEFT JOIN metrics_conversation_current m USING (conversation_id)
),
speakers AS (
    SELECT p.conversation_id, p.participant_id,
           coalesce(nullif(trim(p.name), ''), p.participant_id) AS agent,
           CASE WHEN p.role = 'bot' THEN 'ai' ELSE 'human' END AS kind,
           mp.talk_share, mp.question_count, mp.longest_monologue_s, mp.interruptions
    FROM participants_current p
    JOIN metrics_participant_current mp USING (conversation_id, participant_id)
    WHERE p.role IN ('agent', 'bot') AND mp.message_count > 0
),
turns AS (
    -- Patience: the pause before an agent's turn when the segment that ended last before
    -- it was the customer's (a backchannel inside the customer's turn is no reply).
    SELECT u.conversation_id, u.participant_id, p.role, u.start_s, u.end_s,
           max(u.end_s) OVER w AS floor_end, arg_max(p.role, u.end_s) OVER w AS floor_role
    FROM utterances_current u
    JOIN participants_current p USING (conversation_id, participant_id)
    WHERE NOT u.internal AND u.start_s IS NOT NULL AND u.end_s IS NOT NULL
    WINDOW w AS (PARTITION BY u.conversation_id ORDER BY u.start_s, u.seq
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
pauses AS (
    SELECT conversation_id, participant_id,
           sum(greatest(start_s - floor_end, 0)) AS pause_sum, count(*) AS pause_n
    FROM turns
    WHERE role IN ('agent', 'bot') AND floor_role = 'customer' AND end_s > floor_end
    GROUP BY ALL
),
taking_part AS (
    SELECT s.conversation_id, s.agent, s.kind, sum(s.talk_share) AS talk_share,
           sum(s.question_count) AS questions, max(s.longest_monologue_s) AS monologue_s,
           sum(s.interruptions) AS interruptions, sum(pa.pause_sum) AS pause_sum,
           coalesce(sum(pa.pause_n), 0) AS pause_n
    FROM speakers s LEFT JOIN pauses pa USING (conversation_id, participant_id)
    GROUP BY ALL
    UNION ALL
    SELECT conversation_id, assigned, 'human', NULL, NULL, NULL, NULL, NULL, 0
    FROM conv WHERE assigned IS NOT NULL
      AND conversation_id NOT IN (SELECT conversation_id FROM speakers)
),
outcome AS (
    SELECT conversation_id,
           any_value(value ->> 'status') FILTER (WHERE label = 'resolution.status') AS status,
           bool_or(TRY_CAST(value -> 'escalated' AS BOOLEAN))
               FILTER (WHERE label = 'resolution.status') AS escalated,
           any_value(TRY_CAST(value -> 'end' AS DOUBLE) - TRY_CAST(value -> 'start' AS DOUBLE))
               FILTER (WHERE label = 'sentiment.conversation'
                       AND value ->> 'trajectory_basis' = 'customer') AS sentiment_change
    FROM labels_current
    WHERE label IN ('resolution.status', 'sentiment.conversation')
    GROUP BY conversation_id
)
SELECT t.agent, t.kind,
       count(DISTINCT t.conversation_id) AS conversations,
       count(DISTINCT t.conversation_id) FILTER (WHERE c.timed) AS timed_conversations,
       avg(c.handle_s) AS handle_time_s, avg(t.talk_share) AS talk_share,
       avg(t.questions) AS questions_asked, avg(t.monologue_s) AS longest_monologue_s,
       sum(t.pause_sum) / nullif(sum(t.pause_n), 0) AS patience_s,
       sum(t.pause_n)::INTEGER AS patience_turns,
       avg(t.interruptions) FILTER (WHERE c.timed) AS interruptions,
       avg(o.sentiment_change) AS sentiment_change,
       avg((o.status = 'solved')::INTEGER) AS resolution_rate,
       avg(o.escalated::INTEGER) FILTER (WHERE o.status IS NOT NULL) AS escalation_rate,
       count(o.status) AS labelled_conversations
FROM taking_part t JOIN conv c USING (conversation_id) LEFT JOIN outcome o USING (conversation_id)
GROUP BY t.agent, t.kind
ORDER BY t.agent
"""

# Accounts whose stitched conversations raise the signal, followed for 90 days from the
# first; the others from the start of the data; churned before the start day: not at risk.
LIFT_SQL = """
WITH first_seen AS (
    SELECT ca.account_id, min(c.started_at) AS first_at
    FROM labels_current l
    JOIN conversations_current c USING (conversation_id)
    JOIN conversation_accounts ca USING (conversation_id)
    WHERE l.label = 'signal' AND l.value ->> 'signal' = ? AND c.started_at IS NOT NULL
    GROUP BY ca.account_id
),
followed AS (
    SELECT a.account_id, f.account_id IS NOT NULL AS exposed, a.churned_at,
           coalesce(f.first_at, (SELECT min(started_at) FROM conversations_current)) AS start_at
    FROM accounts a LEFT JOIN first_seen f USING (account_id)
),
flagged AS (
    SELECT exposed, start_at,
           churned_at < date_trunc('day', start_at) AS excluded,
           churned_at >= date_trunc('day', start_at)
               AND churned_at <= start_at + INTERVAL $window DAY AS churned
    FROM followed
)
SELECT exposed,
       count(*) FILTER (WHERE NOT coalesce(excluded, false)) AS accounts,
       count(*) FILTER (WHERE churned) AS churned,
       count(*) FILTER (WHERE excluded) AS excluded,
       count(*) FILTER (WHERE NOT coalesce(excluded, false) AND NOT coalesce(churned, false)
                        AND start_at + INTERVAL $window DAY > ?::TIMESTAMPTZ) AS incomplete
FROM flagged GROUP BY exposed ORDER BY exposed
"""
# Bare: the conversation's own account link instead of the stitch, raw labels.
LIFT_BARE_SQL = (
    _bare(LIFT_SQL)
    .replace("JOIN conversation_accounts ca USING (conversation_id)\n", "")
    .replace("ca.account_id", "c.account_id")
)


# -- checks -----------------------------------------------------------------------------------
class Mismatch(AssertionError):
    """The hand-written SQL and the API disagree: one of them is wrong."""


def _same(what: str, api: Any, sql: Any, tol: float = 0.0) -> None:
    if isinstance(api, float | int) and isinstance(sql, float | int) and tol:
        if not math.isclose(api, sql, rel_tol=1e-9, abs_tol=tol):
            raise Mismatch(f"{what}: API {api!r} != SQL {sql!r}")
    elif api != sql:
        raise Mismatch(f"{what}: API {api!r} != SQL {sql!r}")


def _rows(warehouse: Warehouse, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    return warehouse.query(sql, list(params))


def check_trends(api: trends.VolumeTable, rows: list[dict[str, Any]]) -> str:
    cells = {(r["week"], r["intent"]): r for r in rows}
    _same("trend cells", len(api.points), len(cells))
    for p in api.points:
        r = cells.get((p.period, p.value))
        if r is None:
            raise Mismatch(f"trend {p.period} {p.value}: in the API, not in the SQL")
        _same(f"trend {p.period} {p.value} conversations", p.conversations, r["n"])
        _same(f"trend {p.period} {p.value} share", p.share, float(r["share"]), TOL)
        _same(f"trend {p.period} {p.value} sentiment", p.mean_sentiment, r["sentiment"], TOL)
        _same(f"trend {p.period} {p.value} scored", p.scored, r["scored"])
    weeks = {r["week"]: r for r in rows}
    for total in api.periods:
        r = weeks[total.period]
        _same(f"week {total.period} conversations", total.conversations, r["week_total"])
        _same(f"week {total.period} sentiment", total.mean_sentiment, r["week_sentiment"], TOL)
    return f"{len(api.points)} cells, {len(api.periods)} weeks"


def check_spikes(api: spikes.SpikeReport | None, rows: list[dict[str, Any]]) -> str:
    """Every value's figures (checked on a `significant_only=False` report)."""
    if api is None or not rows:
        raise Mismatch("spikes: no dated conversations")
    by_value = {r["intent"]: r for r in rows}
    _same("spike values", sorted(s.value for s in api.spikes), sorted(by_value))
    _same("spike week conversations", api.conversations, rows[0]["week_total"])
    _same(
        "baseline conversations / week", api.baseline_conversations, rows[0]["baseline_total"], 0.01
    )
    for s in api.spikes:
        r = by_value[s.value]
        _same(f"spike {s.value} current", s.current, r["current"])
        _same(f"spike {s.value} baseline counts", s.baseline_counts, r["baseline_counts"])
        _same(f"spike {s.value} sentiment", s.sentiment, r["sentiment"], TOL)
        _same(
            f"spike {s.value} baseline sentiment",
            s.baseline_sentiment,
            r["baseline_sentiment"],
            TOL,
        )
    flagged = ", ".join(s.headline for s in api.spikes if s.significant) or "none"
    return f"{len(api.spikes)} values, week of {api.period}, flagged: {flagged}"


_AGENT_MEASURES = list(agents.AgentMeasures.model_fields)


def check_agents(api: agents.TeamComparison, rows: list[dict[str, Any]]) -> str:
    by_agent = {r["agent"]: r for r in rows}
    _same("agents", sorted(c.agent for c in api.agents), sorted(by_agent))
    for card in api.agents:
        r = by_agent[card.agent]
        _same(f"agent {card.agent} kind", card.kind, r["kind"])
        for measure in _AGENT_MEASURES:
            value = getattr(card.measures, measure)
            _same(f"agent {card.agent} {measure}", value, r[measure], 1e-9)
    bots = [c.agent for c in api.agents if c.kind == "ai"]
    return f"{len(api.agents)} agents ({len(bots)} bot: {', '.join(bots)})"


def check_lift(api: business_marts.LiftResult, rows: list[dict[str, Any]]) -> str:
    by_group = {bool(r["exposed"]): r for r in rows}
    for exposed, group in ((True, api.with_signal), (False, api.without_signal)):
        r = by_group.get(exposed, {"accounts": 0, "churned": 0, "excluded": 0, "incomplete": 0})
        name = "with" if exposed else "without"
        _same(f"lift accounts {name} signal", group.accounts, r["accounts"])
        _same(f"lift churned {name} signal", group.outcomes, r["churned"])
    _same("lift excluded", api.excluded, sum(r["excluded"] for r in rows))
    _same("lift follow-up incomplete", api.followup_incomplete, sum(r["incomplete"] for r in rows))
    w, wo = api.with_signal, api.without_signal
    return (
        f"churn {w.outcomes}/{w.accounts} with {api.value} vs {wo.outcomes}/{wo.accounts} "
        f"without: lift {api.lift:.2f}, risk ratio {api.risk_ratio:.2f}"
        if api.lift is not None and api.risk_ratio is not None
        else f"churn {w.outcomes}/{w.accounts} vs {wo.outcomes}/{wo.accounts}"
    )


# -- timing -----------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    api: Callable[[], Any]
    sql: str
    params: list[Any]
    check: Callable[[Any, list[dict[str, Any]]], str]
    bare: str | None = None
    # What the check reads when it needs more than the timed call returns.
    check_api: Callable[[], Any] | None = None
    times: dict[str, list[float]] = field(default_factory=dict)


def _ms(values: list[float], q: float) -> float:
    """The q-quantile (0..1) in milliseconds, interpolated between the sorted runs."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return 1000 * (ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo))


def run_case(warehouse: Warehouse, case: Case, repeat: int, revised: bool) -> list[str]:
    """Check the figures, then time the variants round-robin after one warm-up run each.

    With revisions in the warehouse the bare SQL must disagree with the API (it reads old
    versions and superseded runs); without, it must agree."""
    variants: dict[str, Callable[[], Any]] = {
        "api": case.api,
        "sql": lambda: _rows(warehouse, case.sql, case.params),
    }
    if case.bare is not None:
        bare = case.bare
        variants["bare"] = lambda: _rows(warehouse, bare, case.params)
    problems = []
    api_result = (case.check_api or case.api)()
    for name in ("sql", "bare"):
        if name not in variants:
            continue
        try:
            note = case.check(api_result, variants[name]())
        except Mismatch as exc:
            if name == "bare" and revised:
                print(f"  {case.name} bare: differs, as it should with revisions ({exc})")
            else:
                problems.append(f"{case.name} ({name}): {exc}")
            continue
        if name == "sql":
            print(f"  {case.name}: SQL agrees with the API: {note}")
        elif revised:
            problems.append(f"{case.name} (bare): agrees with the API: the revisions test nothing")
        else:
            print(f"  {case.name} bare: agrees with the API (no revisions here)")
    for fn in variants.values():  # the warm-up
        fn()
    case.times = {name: [] for name in variants}
    for _ in range(repeat):
        for name, fn in variants.items():
            started = time.perf_counter()
            fn()
            case.times[name].append(time.perf_counter() - started)
    return problems


def print_table(cases: list[Case]) -> None:
    head = f"{'query':<8}{'API ms p50/p95':>17}{'SQL ms p50/p95':>17}{'bare ms p50/p95':>18}"
    print(head + f"{'API/SQL':>9}{'API/bare':>10}  target <= {TARGET_RATIO:g}x")
    for case in cases:
        cells = []
        for name in ("api", "sql", "bare"):
            t = case.times.get(name)
            cells.append(f"{_ms(t, 0.5):.0f} / {_ms(t, 0.95):.0f}" if t else "-")
        ratio = _ms(case.times["api"], 0.5) / _ms(case.times["sql"], 0.5)
        bare = case.times.get("bare")
        vs_bare = f"{_ms(case.times['api'], 0.5) / _ms(bare, 0.5):.2f}x" if bare else "-"
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(
            f"{case.name:<8}{cells[0]:>17}{cells[1]:>17}{cells[2]:>18}"
            f"{ratio:>8.2f}x{vs_bare:>10}  {verdict}"
        )
    print(
        "\nratio = API p50 / SQL p50: SQL is the same question over the *_current views "
        "(newest versions,\nlatest label runs), the target's yardstick. bare = that SQL on "
        "the base tables, skipping\nversions and runs: shown for what that logic costs; "
        "its figures are wrong as soon as a\nconversation has two versions or a component "
        "two runs (see the checks above)."
    )


# -- profile ----------------------------------------------------------------------------------
class _TimedConnection:
    """Stands in for `Warehouse.con` and records each statement's time in DuckDB (execute
    plus fetch), so an API call splits into its SQL and the Python around it."""

    def __init__(self, con: Any) -> None:
        self._con = con
        self.log: list[tuple[str, list[Any], float]] = []

    def execute(self, sql: str, params: Any = None) -> _TimedConnection:
        started = time.perf_counter()
        self._con.execute(sql, params or [])
        self.log.append((sql, list(params or []), time.perf_counter() - started))
        return self

    def _fetch(self, method: str) -> Any:
        started = time.perf_counter()
        out = getattr(self._con, method)()
        sql, params, seconds = self.log[-1]
        self.log[-1] = (sql, params, seconds + time.perf_counter() - started)
        return out

    def fetchall(self) -> Any:
        return self._fetch("fetchall")

    def fetchone(self) -> Any:
        return self._fetch("fetchone")

    @property
    def description(self) -> Any:
        return self._con.description

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _first_line(sql: str) -> str:
    text = " ".join(sql.split())
    return text[:90] + ("..." if len(text) > 90 else "")


def profile(warehouse: Warehouse, cases: list[Case]) -> None:
    real = warehouse.con
    for case in cases:
        timed = _TimedConnection(real)
        warehouse.con = timed  # type: ignore[assignment]
        try:
            started = time.perf_counter()
            case.api()
            total = time.perf_counter() - started
        finally:
            warehouse.con = real
        in_sql = sum(seconds for _, _, seconds in timed.log)
        print(
            f"\n{case.name}: {total * 1000:.0f} ms = {in_sql * 1000:.0f} ms in "
            f"{len(timed.log)} statements + {(total - in_sql) * 1000:.0f} ms Python"
        )
        for sql, _, seconds in sorted(timed.log, key=lambda x: -x[2])[:5]:
            print(f"  {seconds * 1000:7.1f} ms  {_first_line(sql)}")
        slowest, params, _ = max(timed.log, key=lambda x: x[2])
        _explain(warehouse, slowest, params)
        # The hand-written SQL's plan beside it, to see which operators the API adds.
        _explain(warehouse, case.sql, case.params, "SQL")


def _explain(warehouse: Warehouse, sql: str, params: list[Any], who: str = "API") -> None:
    """The costliest operators of EXPLAIN ANALYZE (each one's own time, summed over threads)."""
    body = re.sub(r"^\s*CREATE OR REPLACE TEMP TABLE \w+ AS", "", sql, flags=re.I)
    if not body.lstrip().upper().startswith(("SELECT", "WITH")):
        return
    plan = warehouse.con.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + body, params).fetchall()
    found: list[tuple[float, str]] = []

    def walk(node: dict[str, Any]) -> None:
        info = node.get("extra_info") or {}
        detail = info.get("Table") or info.get("Function") or info.get("Conditions") or ""
        detail = " ".join(str(detail).split())[:40]
        found.append((float(node.get("timing") or 0), f"{node['type']}[{detail}]"))
        for child in node.get("children", []):
            walk(child)

    for root in json.loads(plan[0][1])["operator"]:
        walk(root)
    top = sorted(found, reverse=True)[:6]
    print(
        f"  {who} plan, slowest operators: " + ", ".join(f"{n} {t * 1000:.0f} ms" for t, n in top)
    )


# -- main -------------------------------------------------------------------------------------
def build_cases(warehouse: Warehouse, signal: str) -> list[Case]:
    last = warehouse.con.execute("SELECT max(started_at) FROM conversations").fetchone()
    assert last is not None and last[0] is not None
    # Lift: "now" is the day after the newest conversation, fixed so reruns agree.
    as_of = datetime.combine(
        last[0].date() + timedelta(days=1), datetime.min.time(), last[0].tzinfo
    )
    window = 90
    return [
        Case(
            "trends",
            lambda: trends.volume(warehouse, "intent", "week"),
            TRENDS_SQL,
            [],
            check_trends,
            _bare(TRENDS_SQL),
        ),
        Case(
            "spikes",
            lambda: spikes.spikes(warehouse, "intent", "week"),
            SPIKES_SQL,
            [],
            check_spikes,
            _bare(SPIKES_SQL),
            lambda: spikes.spikes(warehouse, "intent", "week", significant_only=False),
        ),
        Case(
            "agents",
            lambda: agents.agent_scorecards(warehouse),
            AGENTS_SQL,
            [],
            check_agents,
            _bare(AGENTS_SQL),
        ),
        Case(
            "lift",
            lambda: business_marts.signal_outcome_lift(
                warehouse, signal, "churn", window, as_of=as_of
            ),
            LIFT_SQL.replace("$window", str(window)),
            [signal, as_of],
            check_lift,
            LIFT_BARE_SQL.replace("$window", str(window)),
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--utterances-per", type=int, default=10)
    parser.add_argument(
        "--db", type=Path, help="reuse this warehouse (made by synth_warehouse.py if absent)"
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per variant")
    parser.add_argument("--signal", default="churn_risk", help="signal for the lift query")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--revise",
        type=float,
        default=0.02,
        help="share of conversations given a 2nd version (and another share relabelled)",
    )
    parser.add_argument("--profile", action="store_true", help="split API time by statement")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "analytics.duckdb"
        if not path.exists():
            stats = generate_synthetic_warehouse(
                path, args.conversations, args.utterances_per, args.seed
            )
            print(
                f"generated {stats.conversations:,} conversations, {stats.utterances:,} "
                f"utterances, {stats.labels:,} labels in {stats.seconds:.1f} s"
            )
            with Warehouse(path) as warehouse:
                print(revise(warehouse, args.revise, args.seed))
        with Warehouse(path) as warehouse:
            con = warehouse.con
            counts = con.execute(
                "SELECT (SELECT count(*) FROM conversations_current), "
                "(SELECT count(*) FROM utterances_current), (SELECT count(*) FROM enrichments), "
                "(SELECT count(*) FROM runs WHERE run_id IN ('bench-revise', 'bench-rerun'))"
            ).fetchone()
            assert counts is not None
            print(
                f"{path}: {counts[0]:,} current conversations, {counts[1]:,} current "
                f"utterances, {counts[2]:,} labels"
            )
            started = time.perf_counter()
            if (
                "conversation_accounts" not in existing_tables(warehouse)
                or not (
                    con.execute("SELECT count(*) FROM conversation_accounts").fetchone() or [0]
                )[0]
            ):
                note = import_accounts(warehouse, Path(tmp), args.signal, args.seed)
                print(f"{note} in {time.perf_counter() - started:.1f} s")
            cases = build_cases(warehouse, args.signal)
            print(f"\nchecking figures, then {args.repeat} timed runs per variant:")
            problems = []
            for case in cases:
                problems += run_case(warehouse, case, args.repeat, revised=counts[3] > 0)
            print()
            print_table(cases)
            if args.profile:
                profile(warehouse, cases)
    load = os.getloadavg()
    print(f"\nload average at the end of the run: {load[0]:.2f} / {load[1]:.2f} (1 / 5 min)")
    if problems:
        print("\nMISMATCHES (the API and the hand-written SQL disagree):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
