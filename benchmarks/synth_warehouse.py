"""A large synthetic warehouse for the analytics benchmark, filled by bulk SQL in seconds.

    python benchmarks/synth_warehouse.py /tmp/synth.duckdb [--conversations 100000]
        [--utterances-per 10] [--seed 0] [--no-utterance-labels]

The analytics queries (trends, spikes, agents, lift) must be timed on 100,000
conversations / 1,000,000 utterances, and neither ingesting nor labelling that many for
real fits in a benchmark run on 2 cores. So the rows are made inside DuckDB with
`INSERT ... SELECT` over `range()`, in the real schema (the migrations applied by
`Warehouse(path)`) and in the shapes the enrichment components write, so every view
(`*_current`, `labels_current`) and every analytics function reads them as it reads
real data:

- conversations over 26 weeks (Mondays from 2026-05-04), channels, queues, 40 human
  agents plus the bot "Nori", ~5,000 accounts (`ACC-10000`...), a campaign on some;
- two participants each (customer with an email at the account's domain; agent or bot),
  `utterances_per` utterances alternating between them, timed for calls and meetings;
- `metrics_conversation` and `metrics_participant` rows;
- labels with lineage and `enrichment_status` rows: `intent.primary`, `topic.keyphrase`
  and `topic.conversation`, `tracker.match`, `signal`, `sentiment.participant` /
  `.conversation` (and `.utterance` unless turned off), `resolution.status`.

Values are drawn from `hash(i, salt, seed)`, not `random()`, so a seed gives the same
warehouse on any number of threads. The intent mix is skewed like real support traffic,
customer sentiment depends on the intent, and one spike is planted: in the last week
about 4 % of conversations are extra `bug_report` / "app crashes" ones, angrier than
usual, so the spike detector has something to find.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from convolens.store.warehouse import Warehouse

__all__ = ["SynthStats", "generate_synthetic_warehouse"]

START = "2026-05-04 00:00:00+00"  # a Monday
WEEKS = 26
ACCOUNTS = 5000
AGENTS = 40
RUN_ID = "synth-enrich"

# intent, parent, weight, mean customer sentiment, topics
_INTENTS: list[tuple[str, str, int, float, list[str]]] = [
    ("how_to", "product", 14, 0.1, ["dashboard filters", "report scheduling"]),
    ("login_problem", "account", 10, -0.25, ["two-factor code", "sso login loop"]),
    ("invoice_request", "billing", 9, 0.15, ["invoice copy", "vat number"]),
    ("bug_report", "product", 6, -0.35, ["app crashes", "export failed", "sync error"]),
    ("feature_request", "product", 8, 0.05, ["slack integration", "dark mode"]),
    ("password_reset", "account", 8, -0.05, ["reset link", "password reset"]),
    ("pricing_question", "billing", 7, 0.1, ["annual discount", "seat pricing"]),
    ("double_charge", "billing", 4, -0.45, ["duplicate charge", "renewal charge"]),
    ("refund_request", "billing", 5, -0.3, ["refund status", "money back"]),
    ("order_status", "orders", 6, 0.0, ["tracking number", "shipment"]),
    ("delivery_problem", "orders", 4, -0.4, ["late delivery", "missing package"]),
    ("cancel_subscription", "subscription", 4, -0.35, ["cancel plan", "contract end"]),
    ("upgrade_plan", "subscription", 4, 0.3, ["add seats", "business plan"]),
    ("integration_setup", "product", 5, 0.0, ["erp connector", "api key"]),
    ("complaint", "feedback", 3, -0.6, ["slow support", "poor service"]),
    ("compliment", "feedback", 3, 0.6, ["great support", "helpful agent"]),
]
# intent -> (tracker that matches in it, signal it raises)
_TRACKED: dict[str, tuple[str, str]] = {
    "bug_report": ("bug_report", "bug_report"),
    "feature_request": ("feature_request", "feature_request"),
    "pricing_question": ("pricing_objection", "pricing_objection"),
    "cancel_subscription": ("churn_risk", "churn_risk"),
    "upgrade_plan": ("expansion_interest", "expansion_interest"),
    "complaint": ("escalation_request", "churn_risk"),
}
_CHANNELS = ["chat"] * 9 + ["email"] * 4 + ["ticket"] * 3 + ["call"] * 3 + ["meeting"]
_QUEUES = ["Support", "Billing", "Sales", "Orders", "Tier 2", "Customer Success"]
_CUSTOMER_LINES = [
    "Hi, I need some help with my account please.",
    "It started happening after the last update.",
    "We have about forty people on the team who use it every day.",
    "Can you tell me what I should do next?",
    "That did not work, I still see the same thing.",
]
_AGENT_LINES = [
    "Thanks for reaching out, let me take a look at that for you.",
    "Could you tell me which browser or app version you are using?",
    "I have checked your account and I can see what happened.",
    "I have fixed it on our side, could you try again now?",
    "Is there anything else I can help you with today?",
]


@dataclass
class SynthStats:
    conversations: int
    utterances: int
    labels: int
    seconds: float


def _lit(values: list[str]) -> str:
    """A DuckDB list literal of strings (our own constants, quotes doubled)."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def generate_synthetic_warehouse(
    path: str | Path,
    conversations: int = 100_000,
    utterances_per: int = 10,
    seed: int = 0,
    *,
    utterance_labels: bool = True,
) -> SynthStats:
    """Fill the warehouse at `path` (created and migrated; must hold no conversations)."""
    if conversations < 1 or utterances_per < 2:
        raise ValueError("need at least 1 conversation and 2 utterances per conversation")
    started = time.perf_counter()
    with Warehouse(path) as warehouse:
        con = warehouse.con
        existing = con.execute("SELECT count(*) FROM conversations").fetchone()
        if existing and existing[0]:
            raise ValueError(f"{path} already holds conversations; use a fresh file")
        seed = int(seed)
        # u(i, salt): a uniform [0, 1) draw, the same for the same (i, salt, seed).
        con.execute(
            f"CREATE OR REPLACE TEMP MACRO u(i, salt) AS "
            f"(hash(i, salt, {seed}) % 1000003)::DOUBLE / 1000003"
        )
        weighted = [k for k, row in enumerate(_INTENTS) for _ in range(row[2])]
        rows = []
        for k, (name, parent, _, mood, topics) in enumerate(_INTENTS):
            tracked = _TRACKED.get(name)
            tracker, signal = (f"'{v}'" for v in tracked) if tracked else ("NULL", "NULL")
            rows.append(f"({k}, '{name}', '{parent}', {mood}, {_lit(topics)}, {tracker}, {signal})")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE intent_ref AS SELECT * FROM (VALUES "
            + ", ".join(rows)
            + ") AS t(k, intent, parent, mood, topics, tracker, signal)"
        )
        spike_week = WEEKS - 1
        # One row per conversation with every attribute the tables below are made from.
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE syn AS
            WITH base AS (
                SELECT i,
                       'syn-' || lpad(i::VARCHAR, 7, '0') AS cid,
                       TIMESTAMPTZ '{START}'
                           + to_seconds(floor(u(i, 'when') * {WEEKS * 7 * 86400})::BIGINT)
                           AS started_at,
                       {_lit(_CHANNELS)}[1 + floor(u(i, 'channel') * {len(_CHANNELS)})::INT]
                           AS channel,
                       [{", ".join(map(str, weighted))}][
                           1 + floor(u(i, 'intent') * {len(weighted)})::INT] AS k0,
                       floor(u(i, 'agent') * {AGENTS})::INT AS agent_no,
                       u(i, 'bot') < 0.12 AS by_bot,
                       10000 + floor(u(i, 'account') * {ACCOUNTS})::INT AS account_no,
                       u(i, 'noise') AS noise
                FROM range({conversations}) r(i)
            ), planted AS (
                SELECT *,
                       -- The planted spike: extra angry crash reports in the last week.
                       date_diff('week', TIMESTAMPTZ '{START}', started_at) = {spike_week}
                           AND u(i, 'spike') < 0.04 AS spiked
                FROM base
            )
            SELECT p.*, CASE WHEN spiked THEN 3 ELSE k0 END AS k,
                   r.intent, r.parent,
                   CASE WHEN spiked THEN 'app crashes'
                        ELSE r.topics[1 + floor(u(i, 'topic') * len(r.topics))::INT] END
                       AS topic,
                   r.tracker, r.signal,
                   greatest(-1.0, least(1.0,
                       r.mood - CASE WHEN spiked THEN 0.3 ELSE 0 END + (noise - 0.5) * 0.8))
                       AS mood,
                   CASE WHEN by_bot AND channel = 'chat' THEN 'Nori'
                        ELSE 'Agent ' || lpad((agent_no + 1)::VARCHAR, 2, '0') END AS agent,
                   by_bot AND channel = 'chat' AS bot,
                   {_lit(_QUEUES)}[1 + agent_no % {len(_QUEUES)}] AS queue,
                   'ACC-' || account_no AS account_id,
                   channel IN ('call', 'meeting') AS timed
            FROM planted p JOIN intent_ref r ON r.k = CASE WHEN spiked THEN 3 ELSE k0 END
            """
        )
        _fill(con, utterances_per, utterance_labels)
        counts = con.execute(
            "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM utterances), "
            "(SELECT count(*) FROM enrichments)"
        ).fetchone()
        con.execute("DROP TABLE syn; DROP TABLE intent_ref")
        con.execute("CHECKPOINT")
    assert counts is not None
    return SynthStats(
        conversations=int(counts[0]),
        utterances=int(counts[1]),
        labels=int(counts[2]),
        seconds=round(time.perf_counter() - started, 2),
    )


def _fill(con: object, per: int, utterance_labels: bool) -> None:
    execute = con.execute  # type: ignore[attr-defined]
    execute(
        "INSERT INTO runs (run_id, kind, started_at, finished_at, convolens_version, args) "
        f"VALUES ('{RUN_ID}', 'enrich', now(), now(), 'synthetic', '{{}}')"
    )
    execute(
        f"""
        INSERT INTO conversations BY NAME
        SELECT cid AS conversation_id, 1 AS version, md5(cid) AS content_hash,
               '{RUN_ID}' AS run_id, now() AS ingested_at, channel, 'en' AS language,
               started_at,
               CASE WHEN timed THEN 120 + round(noise * 1080) END AS duration_seconds,
               NULL AS subject, 'synthetic' AS source_system, i::VARCHAR AS source_id,
               'synthetic' AS source_format, NULL AS platform, queue, agent,
               CASE WHEN queue = 'Sales' AND u(i, 'campaign') < 0.4 THEN 'CMP-FALL26' END
                   AS campaign,
               []::VARCHAR[] AS tags, account_id, NULL AS user_id, NULL AS order_id,
               NULL AS ticket_id,
               CASE WHEN queue = 'Sales' AND u(i, 'campaign') < 0.4 THEN 'CMP-FALL26' END
                   AS campaign_id,
               2 AS participant_count, {per} AS utterance_count, NULL AS meta
        FROM syn
        """
    )
    execute(
        """
        INSERT INTO participants BY NAME
        SELECT cid AS conversation_id, 1 AS version, 'c' AS participant_id, 0 AS position,
               'Customer ' || i AS name, 'customer' AS role,
               'user' || (i % 7) || '@' || lower(replace(account_id, '-', '')) || '.example.com'
                   AS email, NULL AS external_ids
        FROM syn
        UNION ALL
        SELECT cid, 1, 'a', 1, agent, CASE WHEN bot THEN 'bot' ELSE 'agent' END,
               CASE WHEN bot THEN NULL
                    ELSE lower(replace(agent, ' ', '.')) || '@northwindcloud.com' END, NULL
        FROM syn
        """
    )
    execute(
        f"""
        INSERT INTO utterances BY NAME
        SELECT s.cid || ':' || q.seq AS utterance_id, s.cid AS conversation_id, 1 AS version,
               q.seq, CASE WHEN q.seq % 2 = 0 THEN 'c' ELSE 'a' END AS participant_id,
               CASE WHEN q.seq = 0 THEN 'I have a question about ' || s.topic || '.'
                    WHEN q.seq % 2 = 0
                        THEN {_lit(_CUSTOMER_LINES)}[1 + (s.i + q.seq) % {len(_CUSTOMER_LINES)}]
                    ELSE {_lit(_AGENT_LINES)}[1 + (s.i + q.seq) % {len(_AGENT_LINES)}]
               END AS text,
               CASE WHEN s.timed THEN q.seq * 20.0 END AS start_s,
               CASE WHEN s.timed THEN q.seq * 20.0 + 16.0 END AS end_s,
               CASE WHEN NOT s.timed THEN s.started_at + to_seconds(q.seq * 45) END AS sent_at,
               NULL AS channel_index, FALSE AS internal, NULL AS meta
        FROM syn s CROSS JOIN range({per}) q(seq)
        """
    )
    execute(
        f"""
        INSERT INTO metrics_conversation BY NAME
        SELECT cid AS conversation_id, 1 AS version, 1 AS metrics_version,
               '{RUN_ID}' AS run_id, now() AS computed_at, timed, 2 AS participant_count,
               {per} AS message_count, {per} * 11 AS word_count,
               1 + floor(noise * 4)::INT AS question_count,
               CASE WHEN timed THEN {per} * 20.0 END AS duration_s,
               CASE WHEN timed THEN {per} * 16.0 END AS speech_s,
               CASE WHEN timed THEN {per} * 4.0 END AS silence_s,
               CASE WHEN timed THEN floor(noise * 3)::INT END AS long_silence_count,
               CASE WHEN timed THEN noise * 12 END AS long_silence_s,
               CASE WHEN timed THEN noise * 5 END AS overlap_s,
               CASE WHEN timed THEN floor(u(i, 'interrupt') * 4)::INT END AS interruptions,
               {per - 1} AS speaker_switches,
               CASE WHEN timed THEN ({per - 1}) / ({per} * 20.0 / 60) END
                   AS switches_per_minute,
               5 + u(i, 'first') * 600 AS first_response_s,
               10 + u(i, 'median') * 120 AS median_response_s,
               {per // 2} AS exchanges,
               CASE WHEN timed THEN {per} * 20.0 ELSE {per - 1} * 45.0 END AS elapsed_s
        FROM syn
        """
    )
    execute(
        f"""
        INSERT INTO metrics_participant BY NAME
        SELECT cid AS conversation_id, 1 AS version, 1 AS metrics_version,
               '{RUN_ID}' AS run_id, participant_id,
               CASE WHEN participant_id = 'c' THEN 'customer'
                    WHEN bot THEN 'bot' ELSE 'agent' END AS role,
               {per // 2} AS message_count, {per // 2} * 11 AS word_count,
               floor(u(i, 'q' || participant_id) * 4)::INT AS question_count,
               CASE WHEN timed THEN {per // 2} * 16.0 * share * 2 END AS talk_s,
               CASE WHEN timed THEN share END AS talk_share,
               CASE WHEN timed THEN share / (1 - share) END AS talk_ratio,
               CASE WHEN timed THEN {per // 2} * 16.0 * (1 - share) * 2 END AS listen_s,
               CASE WHEN timed THEN 130 + u(i, 'wpm' || participant_id) * 40 END
                   AS words_per_minute,
               CASE WHEN timed THEN 10 + u(i, 'mono' || participant_id) * 80 END
                   AS longest_monologue_s,
               CASE WHEN timed THEN 0.3 + u(i, 'lat' || participant_id) END
                   AS median_latency_s,
               CASE WHEN timed THEN 1 + u(i, 'p90' || participant_id) * 2 END
                   AS p90_latency_s,
               CASE WHEN timed THEN floor(u(i, 'int' || participant_id) * 3)::INT END
                   AS interruptions,
               CASE WHEN timed THEN floor(u(i, 'ed' || participant_id) * 3)::INT END
                   AS interrupted,
               CASE WHEN timed THEN noise * 2.5 END AS overlap_s,
               CASE WHEN participant_id = 'a' THEN 5 + u(i, 'first') * 600 END
                   AS first_response_s,
               CASE WHEN participant_id = 'a' THEN 10 + u(i, 'median') * 120 END
                   AS median_response_s
        FROM (
            SELECT syn.*, v.participant_id,
                   CASE WHEN v.participant_id = 'a' THEN 0.35 + u(i, 'share') * 0.4
                        ELSE 0.65 - u(i, 'share') * 0.4 END AS share
            FROM syn CROSS JOIN (VALUES ('c'), ('a')) v(participant_id)
        ) p
        """
    )
    _labels(execute, per, utterance_labels)


def _labels(execute: object, per: int, utterance_labels: bool) -> None:
    run = execute  # type: ignore[assignment]
    # Every label row: (cid, utterance_id, component, label, value JSON, confidence, evidence).
    lineage = (
        f"'1' AS component_version, NULL AS model_id, NULL AS taxonomy_version, "
        f"'{RUN_ID}' AS run_id, now() AS created_at"
    )

    def insert(select: str) -> None:
        run(  # type: ignore[operator]
            f"""
            INSERT INTO enrichments BY NAME
            SELECT conversation_id || ':' || label || ':' || n AS enrichment_id,
                   conversation_id, 1 AS version, utterance_id, component, label, value,
                   confidence, evidence, {lineage}
            FROM ({select})
                AS x(conversation_id, utterance_id, component, label, n, value, confidence,
                     evidence)
            """
        )

    first_turn = "json_array(json_object('utterance_id', cid || ':0', 'start', 0, 'end', 20))"
    insert(
        f"""
        SELECT cid AS conversation_id, NULL AS utterance_id, 'intents' AS component,
               'intent.primary' AS label, 0 AS n,
               json_object('intent', intent, 'parent', parent, 'path', [parent, intent],
                           'score', round(1 + noise, 4), 'utterances', [cid || ':0'])
                   AS value,
               round(0.45 + u(i, 'iconf') * 0.55, 4) AS confidence, {first_turn} AS evidence
        FROM syn
        """
    )
    insert(
        f"""
        SELECT cid, NULL, 'topics', 'topic.keyphrase', t.rank,
               json_object('phrase', t.phrase, 'score', round(0.7 - t.rank * 0.1, 4),
                           'rank', t.rank, 'count', 1),
               round(0.7 - t.rank * 0.1, 4), {first_turn}
        FROM syn CROSS JOIN LATERAL (
            SELECT * FROM (VALUES (1, topic), (2, intent), (3, queue)) v(rank, phrase)
        ) t
        UNION ALL
        SELECT cid, NULL, 'topics', 'topic.conversation', 0,
               json_object('phrases', [topic, intent, queue], 'scores', [0.6, 0.5, 0.4]),
               0.6, {first_turn}
        FROM syn
        """
    )
    insert(
        f"""
        SELECT cid, cid || ':0', 'trackers', 'tracker.match', 0,
               json_object('tracker', tracker, 'match', 'exact', 'text', topic),
               1.0, {first_turn}
        FROM syn WHERE tracker IS NOT NULL AND u(i, 'tracked') < 0.7
        UNION ALL
        SELECT cid, cid || ':2', 'trackers', 'tracker.match', 1,
               json_object('tracker', 'competitor_mention', 'match', 'semantic',
                           'similarity', 0.6),
               0.6, json_array(json_object('utterance_id', cid || ':2', 'start', 0, 'end', 30))
        FROM syn WHERE u(i, 'competitor') < 0.05
        """
    )
    insert(
        f"""
        SELECT cid, NULL, 'signals', 'signal', 0,
               json_object('signal', signal, 'strength', 'medium',
                           'score', round(0.4 + u(i, 'sig') * 0.5, 4),
                           'reasons', ['intent ' || intent], 'sources', ['intents']),
               round(0.4 + u(i, 'sig') * 0.5, 4), {first_turn}
        FROM syn WHERE signal IS NOT NULL
        UNION ALL
        SELECT cid, NULL, 'signals', 'signal', 1,
               json_object('signal', 'churn_risk', 'strength', 'low', 'score', 0.45,
                           'reasons', ['negative sentiment'], 'sources', ['sentiment']),
               0.45, {first_turn}
        FROM syn WHERE mood < -0.6 AND coalesce(signal, '') <> 'churn_risk'
        """
    )
    label = (
        "CASE WHEN {s} < -0.25 THEN 'negative' WHEN {s} > 0.25 THEN 'positive' ELSE 'neutral' END"
    )
    agent_mood = "(0.25 + (u(i, 'amood') - 0.5) * 0.3)"
    insert(
        f"""
        SELECT cid, NULL, 'sentiment', 'sentiment.participant', 0,
               json_object('participant_id', 'c', 'score', round(mood, 4),
                           'label', {label.format(s="mood")}, 'utterances', {per // 2}),
               0.8, {first_turn}
        FROM syn
        UNION ALL
        SELECT cid, NULL, 'sentiment', 'sentiment.participant', 1,
               json_object('participant_id', 'a', 'score', round({agent_mood}, 4),
                           'label', {label.format(s=agent_mood)}, 'utterances', {per // 2}),
               0.8, {first_turn}
        FROM syn
        UNION ALL
        SELECT cid, NULL, 'sentiment', 'sentiment.conversation', 0,
               json_object('score', round((mood + {agent_mood}) / 2, 4),
                           'label', {label.format(s=f"((mood + {agent_mood}) / 2)")},
                           'start', round(mood - 0.1, 4), 'end', round(mood + 0.1, 4),
                           'trajectory', 'steady', 'trajectory_basis', 'customer'),
               0.8, {first_turn}
        FROM syn
        """
    )
    if utterance_labels:
        insert(
            f"""
            SELECT s.cid, s.cid || ':' || q.seq, 'sentiment', 'sentiment.utterance', q.seq,
                   json_object('label', {label.format(s="s.mood")}, 'score', round(s.mood, 4)),
                   0.8,
                   json_array(json_object('utterance_id', s.cid || ':' || q.seq,
                                          'start', 0, 'end', 40))
            FROM syn s CROSS JOIN range(0, {per}, 2) q(seq)
            UNION ALL
            SELECT s.cid, s.cid || ':' || q.seq, 'sentiment', 'sentiment.utterance', q.seq,
                   json_object('label', 'positive', 'score', 0.3), 0.8,
                   json_array(json_object('utterance_id', s.cid || ':' || q.seq,
                                          'start', 0, 'end', 40))
            FROM syn s CROSS JOIN range(1, {per}, 2) q(seq)
            """
        )
    insert(
        f"""
        SELECT cid, NULL, 'resolution', 'resolution.status', 0,
               json_object('status', st, 'reasons', ['synthetic'],
                           'escalated', st = 'escalated',
                           'escalation_kinds',
                           CASE WHEN st = 'escalated' THEN ['transfer'] ELSE [] END),
               0.7, {first_turn}
        FROM (
            SELECT *, CASE WHEN u(i, 'res') < 0.12 + greatest(0, -mood) * 0.2 THEN 'escalated'
                           WHEN u(i, 'res') < 0.75 THEN 'solved'
                           WHEN u(i, 'res') < 0.9 THEN 'unresolved'
                           ELSE 'pending' END AS st
            FROM syn
        )
        """
    )
    run(  # type: ignore[operator]
        f"""
        INSERT INTO enrichment_status BY NAME
        SELECT cid AS conversation_id, 1 AS version, c.component, '1' AS component_version,
               '{RUN_ID}' AS run_id, 1 AS labels, NULL AS taxonomy_version,
               now() AS processed_at
        FROM syn CROSS JOIN (
            VALUES ('intents'), ('topics'), ('trackers'), ('signals'), ('sentiment'),
                   ('resolution')
        ) c(component)
        """
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="warehouse file (default: a temporary one)")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--utterances-per", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-utterance-labels", action="store_true")
    args = parser.parse_args(argv)
    path = Path(args.path) if args.path else Path(tempfile.mkdtemp()) / "synth.duckdb"
    stats = generate_synthetic_warehouse(
        path,
        args.conversations,
        args.utterances_per,
        args.seed,
        utterance_labels=not args.no_utterance_labels,
    )
    size = path.stat().st_size / 2**20
    print(
        f"{path}: {stats.conversations:,} conversations, {stats.utterances:,} utterances, "
        f"{stats.labels:,} labels in {stats.seconds:.1f} s ({size:.0f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
