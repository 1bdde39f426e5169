"""Marts over conversations stitched to accounts: outcome lift, issue value, friction, campaigns.

The questions leaders ask of conversations once they are tied to accounts: do accounts
that mention a competitor churn more, which issues touch the most ARR, which topics take
the most effort to resolve, which campaigns bring confused customers. Each mart is one SQL
statement over the warehouse (labels, metrics, `conversation_accounts`, `accounts`); Python
only does arithmetic on the handful of counts that come back (the confidence intervals).

Lift, in epidemiology's terms: accounts "exposed" to a signal (first found in a stitched
conversation on date t0) are followed for `window_days` after t0, and the share with the
outcome (churn, or a new order) is compared with the accounts without the signal, followed
from the start of the data (or `since`). Accounts that had already churned before their
start day are not at risk and are left out; accounts whose window runs past `as_of` are
counted as they stand and reported (`followup_incomplete`); an account's `created_at` is
not used, so one created inside the baseline window counts as at risk from its start.
Outcome dates compare by day. The rates carry Wilson 95 % intervals (sound
for small counts and rates near 0 or 1, unlike the normal approximation); the risk ratio
against accounts without the signal carries the log (Katz) interval, and the lift against
all accounts a delta-method interval on the log scale that accounts for the exposed being
part of "all". A zero count in either group gets the Haldane correction (+0.5 to each
count, +1 to each group) for the intervals only.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from convolens.analytics.business_import import BusinessDataError, existing_tables
from convolens.analytics.trends import current_labels
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse, now_utc

__all__ = [
    "CONFUSION_INTENTS",
    "DIMENSIONS",
    "CampaignRow",
    "CampaignView",
    "ExposedAccount",
    "FrictionRow",
    "GroupRate",
    "IssueValue",
    "LiftResult",
    "campaign_view",
    "friction_by_topic",
    "issues_by_value",
    "risk_ratio_ci",
    "signal_outcome_lift",
    "wilson_interval",
]

Z95 = 1.959963984540054

# dimension -> (label, SQL for the issue key of one labels_current row `l`).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "signal": ("signal", "json_extract_string(l.value, '$.signal')"),
    "intent": ("intent.primary", "json_extract_string(l.value, '$.intent')"),
    "tracker": ("tracker.match", "json_extract_string(l.value, '$.tracker')"),
    # As in trends.py: a conversation's topic is its top keyphrase; `keyphrase` is any.
    "topic": ("topic.conversation", "lower(trim(json_extract_string(l.value, '$.phrases[0]')))"),
    "keyphrase": ("topic.keyphrase", "lower(trim(json_extract_string(l.value, '$.phrase')))"),
    "resolution": ("resolution.status", "json_extract_string(l.value, '$.status')"),
}

# Intents of customers who do not know how to do something or what it costs: the mark of a
# campaign that promised more than it explained.
CONFUSION_INTENTS = ("how_to", "integration_setup", "pricing_question", "free_trial")

Outcome = Literal["churn", "order"]


class GroupRate(BaseModel):
    accounts: int
    outcomes: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


class ExposedAccount(BaseModel):
    account_id: str
    name: str | None
    first_seen_at: datetime = Field(description="start of the first conversation with it")
    conversation_id: str = Field(description="that conversation, as evidence")
    outcome_at: datetime | None
    outcome_in_window: bool
    excluded: bool = Field(description="churned before the signal: not at risk")


class LiftResult(BaseModel):
    dimension: str
    value: str
    outcome: Outcome
    window_days: int
    baseline_start: datetime | None = Field(
        description="where accounts without it are followed from"
    )
    as_of: datetime
    with_signal: GroupRate
    without_signal: GroupRate
    all_accounts: GroupRate
    lift: float | None = Field(description="rate with the signal / rate of all accounts")
    lift_ci: tuple[float, float] | None
    risk_ratio: float | None = Field(description="rate with / rate without the signal")
    risk_ratio_ci: tuple[float, float] | None
    excluded: int = Field(description="accounts churned before their start date (not at risk)")
    followup_incomplete: int = Field(description="at-risk accounts whose window ends after as_of")
    accounts: list[ExposedAccount]


class IssueValue(BaseModel):
    issue: str
    conversations: int
    stitched_conversations: int
    accounts: int
    total_arr: float
    churned_accounts: int
    churned_arr: float
    arr_share: float | None = Field(description="total_arr / the ARR of all accounts")


class FrictionRow(BaseModel):
    issue: str
    conversations: int
    avg_exchanges: float | None
    escalation_rate: float | None
    avg_handle_time_s: float | None
    repeat_contacts: int
    repeat_contact_rate: float | None


class CampaignRow(BaseModel):
    campaign_id: str
    name: str | None
    channel: str | None
    started_at: datetime | None
    conversations: int
    via_conversation: int = Field(description="the conversation names the campaign")
    via_account: int = Field(description="the stitched account was acquired by it")
    accounts: int
    confused: int
    confused_share: float
    negative: int
    negative_share: float


class CampaignView(BaseModel):
    campaigns: list[CampaignRow]
    conversations: int = Field(description="all conversations in the filter, for the baseline")
    confused_share: float | None
    negative_share: float | None
    confusion_intents: list[str]


# -- statistics -----------------------------------------------------------------------------
def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial rate; None when n is 0."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _corrected(a: int, n1: int, c: int, n0: int) -> tuple[float, float, float, float]:
    if a == 0 or c == 0:
        return a + 0.5, n1 + 1.0, c + 0.5, n0 + 1.0
    return float(a), float(n1), float(c), float(n0)


def risk_ratio_ci(
    a: int, n1: int, c: int, n0: int, z: float = Z95
) -> tuple[float | None, tuple[float, float] | None]:
    """(a/n1) / (c/n0) with its log-method (Katz) interval; None where undefined."""
    if n1 <= 0 or n0 <= 0:
        return None, None
    ratio = (a / n1) / (c / n0) if c > 0 else None
    a2, m1, c2, m0 = _corrected(a, n1, c, n0)
    se = math.sqrt(max(0.0, 1 / a2 - 1 / m1 + 1 / c2 - 1 / m0))
    centre = math.log((a2 / m1) / (c2 / m0))
    return ratio, (math.exp(centre - z * se), math.exp(centre + z * se))


def _lift_ci(
    a: int, n1: int, c: int, n0: int, z: float = Z95
) -> tuple[float | None, tuple[float, float] | None]:
    """(a/n1) / ((a+c)/(n1+n0)): the exposed are part of the whole, so the log ratio's
    variance (delta method, independent binomials a and c) is
    (c / (a (a+c)))^2 a (1 - a/n1) + (1/(a+c))^2 c (1 - c/n0)."""
    if n1 <= 0 or n0 <= 0:
        return None, None
    ratio = (a / n1) / ((a + c) / (n1 + n0)) if a + c > 0 else None
    a2, m1, c2, m0 = _corrected(a, n1, c, n0)
    total = a2 + c2
    variance = (c2 / (a2 * total)) ** 2 * a2 * (1 - a2 / m1) + (1 / total) ** 2 * c2 * (1 - c2 / m0)
    centre = math.log((a2 / m1) / (total / (m1 + m0)))
    se = math.sqrt(max(0.0, variance))
    return ratio, (math.exp(centre - z * se), math.exp(centre + z * se))


def _rate(outcomes: int, accounts: int) -> GroupRate:
    ci = wilson_interval(outcomes, accounts)
    return GroupRate(
        accounts=accounts,
        outcomes=outcomes,
        rate=outcomes / accounts if accounts else None,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
    )


# -- helpers --------------------------------------------------------------------------------
def _dimension(dimension: str) -> tuple[str, str]:
    if dimension not in DIMENSIONS:
        raise BusinessDataError(
            f"unknown dimension {dimension!r}; choose one of: {', '.join(DIMENSIONS)}"
        )
    return DIMENSIONS[dimension]


# Stand-ins for business tables never created (nothing imported, read-only warehouse), so
# the marts that work without business data (friction, campaigns) still run.
_EMPTY = {
    "accounts": "(SELECT NULL::VARCHAR AS account_id, NULL::DOUBLE AS arr, "
    "NULL::TIMESTAMPTZ AS churned_at, NULL::VARCHAR AS campaign_id WHERE false)",
    "conversation_accounts": "(SELECT NULL::VARCHAR AS conversation_id, "
    "NULL::VARCHAR AS account_id WHERE false)",
    "campaigns": "(SELECT NULL::VARCHAR AS campaign_id, NULL::VARCHAR AS name, "
    "NULL::VARCHAR AS channel, NULL::TIMESTAMPTZ AS started_at WHERE false)",
}


def _relations(warehouse: Warehouse) -> dict[str, str]:
    present = existing_tables(warehouse)
    return {name: name if name in present else empty for name, empty in _EMPTY.items()}


def _require_stitched(warehouse: Warehouse) -> None:
    row = None
    if {"accounts", "conversation_accounts", "orders"} <= existing_tables(warehouse):
        row = warehouse.con.execute(
            "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM conversation_accounts)"
        ).fetchone()
    if not row or not row[0]:
        raise BusinessDataError(
            "no accounts imported yet: run 'convolens import accounts FILE' first"
        )
    if not row[1]:
        raise BusinessDataError("no conversation is stitched to an account: run 'convolens stitch'")


def _filtered(filters: ConversationFilter | None) -> tuple[str, list[Any]]:
    where, params = (filters or ConversationFilter()).where()
    sql = (
        "SELECT c.conversation_id, c.version, c.started_at, c.account_id, c.campaign_id, "
        f"c.campaign FROM conversations_current c {where}"
    )
    return sql, params


# -- lift -----------------------------------------------------------------------------------
# outcome -> (its time, on or after the start day; "not at risk" condition). Days, not
# instants: CRM exports carry dates, and a churn dated the day of the call (midnight) must
# not count as "churned before it".
_OUTCOME_SQL = {
    "churn": (
        "CASE WHEN a.churned_at >= date_trunc('day', k.start_at) THEN a.churned_at END",
        "a.churned_at < date_trunc('day', k.start_at)",
    ),
    "order": (
        "(SELECT min(o.ordered_at) FROM orders o WHERE o.account_id = a.account_id "
        "AND o.ordered_at >= date_trunc('day', k.start_at))",
        "false",
    ),
}


def signal_outcome_lift(
    warehouse: Warehouse,
    signal: str = "competitor_evaluation",
    outcome: Outcome = "churn",
    window_days: int = 90,
    *,
    dimension: str = "signal",
    filters: ConversationFilter | None = None,
    min_confidence: float = 0.0,
    as_of: datetime | None = None,
) -> LiftResult:
    """Outcome rate within `window_days` of accounts whose conversations show `signal` (a
    value of `dimension`: a signal, intent, tracker, topic phrase or resolution status),
    against accounts without it and all accounts, with counts and 95 % intervals."""
    if outcome not in _OUTCOME_SQL:
        raise BusinessDataError(f"unknown outcome {outcome!r}; choose churn or order")
    if window_days <= 0:
        raise BusinessDataError("window_days must be positive")
    label, key = _dimension(dimension)
    _require_stitched(warehouse)
    conv_sql, conv_params = _filtered(filters)
    outcome_at, not_at_risk = _OUTCOME_SQL[outcome]
    since = filters.since if filters else None
    as_of = as_of or now_utc()
    sql = f"""
        WITH conv AS ({conv_sql}),
        hits AS (
            SELECT ca.account_id, min(conv.started_at) AS first_at,
                   arg_min(conv.conversation_id, conv.started_at) AS conversation_id
            FROM ({current_labels(label)}) l
            JOIN conv USING (conversation_id, version)
            JOIN conversation_accounts ca USING (conversation_id)
            WHERE l.label = ? AND {key} = ? AND coalesce(l.confidence, 1.0) >= ?
              AND conv.started_at IS NOT NULL
            GROUP BY ca.account_id
        ),
        baseline AS (
            SELECT coalesce(?::TIMESTAMPTZ, (SELECT min(started_at) FROM conv)) AS start_at
        ),
        cohort AS (
            SELECT a.account_id, a.name, h.account_id IS NOT NULL AS exposed, h.first_at,
                   h.conversation_id, coalesce(h.first_at, b.start_at) AS start_at
            FROM accounts a LEFT JOIN hits h USING (account_id) CROSS JOIN baseline b
        ),
        followed AS (
            SELECT k.*, {outcome_at} AS outcome_at, coalesce({not_at_risk}, false) AS excluded
            FROM cohort k JOIN accounts a USING (account_id)
        )
        SELECT *, NOT excluded AND outcome_at IS NOT NULL
                  AND outcome_at <= start_at + to_days(?) AS in_window,
               NOT excluded AND start_at + to_days(?) > ?::TIMESTAMPTZ AS incomplete,
               (SELECT start_at FROM baseline) AS baseline_start
        FROM followed
    """
    params = [*conv_params, label, signal, min_confidence, since, window_days, window_days, as_of]
    stage = "_lift_rows"
    warehouse.con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {sql}", params)
    try:
        counts = {
            bool(exposed): (int(n), int(events), int(excluded), int(incomplete))
            for exposed, n, events, excluded, incomplete in warehouse.con.execute(
                f"SELECT exposed, count(*) FILTER (WHERE NOT excluded), "
                f"count(*) FILTER (WHERE in_window), count(*) FILTER (WHERE excluded), "
                f"count(*) FILTER (WHERE incomplete AND NOT in_window) FROM {stage} GROUP BY 1"
            ).fetchall()
        }
        exposed_rows = warehouse.query(
            f"SELECT * FROM {stage} WHERE exposed ORDER BY first_at, account_id"
        )
        start_row = warehouse.con.execute(
            f"SELECT any_value(baseline_start) FROM {stage}"
        ).fetchone()
    finally:
        warehouse.con.execute(f"DROP TABLE IF EXISTS {stage}")
    n1, a, x1, i1 = counts.get(True, (0, 0, 0, 0))
    n0, c, x0, i0 = counts.get(False, (0, 0, 0, 0))
    ratio, ratio_ci = risk_ratio_ci(a, n1, c, n0)
    lift, lift_ci = _lift_ci(a, n1, c, n0)
    return LiftResult(
        dimension=dimension,
        value=signal,
        outcome=outcome,
        window_days=window_days,
        baseline_start=start_row[0] if start_row else None,
        as_of=as_of,
        with_signal=_rate(a, n1),
        without_signal=_rate(c, n0),
        all_accounts=_rate(a + c, n1 + n0),
        lift=lift,
        lift_ci=lift_ci if a + c > 0 else None,
        risk_ratio=ratio,
        risk_ratio_ci=ratio_ci,
        excluded=x1 + x0,
        followup_incomplete=i1 + i0,
        accounts=[
            ExposedAccount(
                account_id=r["account_id"],
                name=r["name"],
                first_seen_at=r["first_at"],
                conversation_id=r["conversation_id"],
                outcome_at=r["outcome_at"],
                outcome_in_window=bool(r["in_window"]),
                excluded=bool(r["excluded"]),
            )
            for r in exposed_rows
        ],
    )


# -- issues weighted by value ---------------------------------------------------------------
def _issues_cte(dimension: str) -> tuple[str, str]:
    label, key = _dimension(dimension)
    # Out-of-scope turns are not an issue anyone can act on.
    sql = (
        f"SELECT DISTINCT l.conversation_id, {key} AS issue FROM labels_current l "
        "JOIN conv USING (conversation_id, version) "
        f"WHERE l.label = ? AND {key} IS NOT NULL AND {key} <> 'out_of_scope'"
    )
    return sql, label


def issues_by_value(
    warehouse: Warehouse,
    dimension: str = "intent",
    *,
    filters: ConversationFilter | None = None,
) -> list[IssueValue]:
    """Per issue: conversations, distinct accounts, their total ARR and the ARR that churned.

    An account counts once per issue however many of its conversations raise it, so ARR is
    never double counted within an issue (across issues it is, by design: both touch it).
    """
    _require_stitched(warehouse)
    conv_sql, conv_params = _filtered(filters)
    issues_sql, label = _issues_cte(dimension)
    rows = warehouse.query(
        f"""
        WITH conv AS ({conv_sql}),
        issues AS ({issues_sql}),
        linked AS (
            SELECT i.issue, i.conversation_id, ca.account_id
            FROM issues i LEFT JOIN conversation_accounts ca USING (conversation_id)
        ),
        volume AS (
            SELECT issue, count(DISTINCT conversation_id) AS conversations,
                   count(DISTINCT conversation_id) FILTER (WHERE account_id IS NOT NULL)
                       AS stitched_conversations
            FROM linked GROUP BY issue
        ),
        worth AS (
            SELECT t.issue, count(*) AS accounts, sum(coalesce(a.arr, 0)) AS total_arr,
                   count(*) FILTER (WHERE a.churned_at IS NOT NULL) AS churned_accounts,
                   sum(coalesce(a.arr, 0)) FILTER (WHERE a.churned_at IS NOT NULL) AS churned_arr
            FROM (SELECT DISTINCT issue, account_id FROM linked WHERE account_id IS NOT NULL) t
            JOIN accounts a USING (account_id)
            GROUP BY t.issue
        )
        SELECT v.issue, v.conversations, v.stitched_conversations,
               coalesce(w.accounts, 0) AS accounts, coalesce(w.total_arr, 0) AS total_arr,
               coalesce(w.churned_accounts, 0) AS churned_accounts,
               coalesce(w.churned_arr, 0) AS churned_arr,
               coalesce(w.total_arr, 0) / nullif((SELECT sum(arr) FROM accounts), 0) AS arr_share
        FROM volume v LEFT JOIN worth w USING (issue)
        ORDER BY total_arr DESC, conversations DESC, issue
        """,
        [*conv_params, label],
    )
    return [IssueValue(**row) for row in rows]


# -- friction -------------------------------------------------------------------------------
def friction_by_topic(
    warehouse: Warehouse,
    dimension: str = "intent",
    *,
    filters: ConversationFilter | None = None,
    repeat_days: int = 7,
) -> list[FrictionRow]:
    """Per issue: exchanges, escalation rate, handle time and repeat contacts.

    A conversation is a repeat contact when the same customer (stitched account, else the
    source's account link, else the customer's email address) starts another conversation,
    on any channel, within `repeat_days`: the first one did not settle it. Needs no stitch,
    but stitched accounts join a customer's chats, calls and emails together.
    """
    linked = _relations(warehouse)["conversation_accounts"]
    conv_sql, conv_params = _filtered(filters)
    issues_sql, label = _issues_cte(dimension)
    rows = warehouse.query(
        f"""
        WITH conv AS ({conv_sql}),
        issues AS ({issues_sql}),
        outcome AS (
            SELECT conversation_id,
                   bool_or(TRY_CAST(json_extract(value, '$.escalated') AS BOOLEAN)) AS escalated
            FROM labels_current WHERE label = 'resolution.status' GROUP BY conversation_id
        ),
        emails AS (
            SELECT conversation_id, min(lower(email)) AS email FROM participants_current
            WHERE role = 'customer' AND email LIKE '%_@_%' GROUP BY conversation_id
        ),
        customers AS (
            SELECT c.conversation_id, c.started_at,
                   coalesce('account:' || ca.account_id, 'link:' || nullif(c.account_id, ''),
                            'email:' || e.email) AS customer
            FROM conversations_current c
            LEFT JOIN {linked} ca USING (conversation_id)
            LEFT JOIN emails e USING (conversation_id)
        ),
        nexts AS (
            SELECT conversation_id, started_at,
                   lead(started_at) OVER (
                       PARTITION BY customer ORDER BY started_at, conversation_id
                   ) AS next_at
            FROM customers WHERE customer IS NOT NULL AND started_at IS NOT NULL
        ),
        measured AS (
            SELECT i.issue, m.exchanges, o.escalated,
                   coalesce(m.duration_s, m.elapsed_s) AS handle_s,
                   CASE WHEN n.conversation_id IS NOT NULL
                        THEN coalesce(n.next_at <= n.started_at + to_days(?), false) END
                       AS repeated
            FROM issues i JOIN conv c USING (conversation_id)
            LEFT JOIN metrics_conversation m USING (conversation_id, version)
            LEFT JOIN outcome o USING (conversation_id)
            LEFT JOIN nexts n USING (conversation_id)
        )
        SELECT issue, count(*) AS conversations, avg(exchanges) AS avg_exchanges,
               avg(escalated::INTEGER) AS escalation_rate, avg(handle_s) AS avg_handle_time_s,
               count(*) FILTER (WHERE repeated) AS repeat_contacts,
               avg(repeated::INTEGER) AS repeat_contact_rate
        FROM measured GROUP BY issue
        ORDER BY conversations DESC, issue
        """,
        [*conv_params, label, repeat_days],
    )
    return [FrictionRow(**row) for row in rows]


# -- campaigns ------------------------------------------------------------------------------
def campaign_view(
    warehouse: Warehouse,
    *,
    filters: ConversationFilter | None = None,
    confusion_intents: tuple[str, ...] | list[str] = CONFUSION_INTENTS,
) -> CampaignView:
    """Per campaign: conversations and the share with confusion-type intents or negative
    sentiment, beside the same shares over all conversations.

    A conversation belongs to the campaign it names (`campaign_id`, `campaign`), else to the
    campaign that acquired its stitched account. Negative: the conversation's sentiment, or
    any customer's, is labelled negative.
    """
    rel = _relations(warehouse)
    linked, accounts, known = rel["conversation_accounts"], rel["accounts"], rel["campaigns"]
    conv_sql, conv_params = _filtered(filters)
    sql = f"""
        WITH conv AS ({conv_sql}),
        confused AS (
            SELECT DISTINCT conversation_id FROM labels_current
            WHERE label IN ('intent.primary', 'intent.utterance')
              AND list_contains(?::VARCHAR[], json_extract_string(value, '$.intent'))
        ),
        negative AS (
            SELECT DISTINCT l.conversation_id FROM labels_current l
            LEFT JOIN participants_current p
              ON p.conversation_id = l.conversation_id AND p.version = l.version
             AND p.participant_id = json_extract_string(l.value, '$.participant_id')
            WHERE json_extract_string(l.value, '$.label') = 'negative'
              AND (l.label = 'sentiment.conversation'
                   OR (l.label = 'sentiment.participant' AND p.role = 'customer'))
        ),
        marked AS (
            SELECT v.conversation_id, ca.account_id,
                   nullif(trim(coalesce(v.campaign_id, v.campaign)), '') AS own,
                   a.campaign_id AS acquired,
                   f.conversation_id IS NOT NULL AS is_confused,
                   n.conversation_id IS NOT NULL AS is_negative
            FROM conv v
            LEFT JOIN {linked} ca USING (conversation_id)
            LEFT JOIN {accounts} a ON a.account_id = ca.account_id
            LEFT JOIN confused f USING (conversation_id)
            LEFT JOIN negative n USING (conversation_id)
        )
        SELECT coalesce(own, acquired) AS campaign_id, k.name, k.channel, k.started_at,
               count(*) AS conversations,
               count(*) FILTER (WHERE own IS NOT NULL) AS via_conversation,
               count(*) FILTER (WHERE own IS NULL) AS via_account,
               count(DISTINCT account_id) AS accounts,
               count(*) FILTER (WHERE is_confused) AS confused,
               count(*) FILTER (WHERE is_confused) / count(*) AS confused_share,
               count(*) FILTER (WHERE is_negative) AS negative,
               count(*) FILTER (WHERE is_negative) / count(*) AS negative_share,
               grouping(coalesce(own, acquired)) AS is_total
        FROM marked LEFT JOIN {known} k ON k.campaign_id = coalesce(own, acquired)
        GROUP BY GROUPING SETS ((coalesce(own, acquired), k.name, k.channel, k.started_at), ())
        ORDER BY is_total, conversations DESC, campaign_id
    """
    rows = warehouse.query(sql, [*conv_params, list(confusion_intents)])
    total = next((r for r in rows if r["is_total"]), None)
    campaigns = [
        CampaignRow(**{k: v for k, v in r.items() if k != "is_total"})
        for r in rows
        if not r["is_total"] and r["campaign_id"] is not None
    ]
    return CampaignView(
        campaigns=campaigns,
        conversations=int(total["conversations"]) if total else 0,
        confused_share=total["confused_share"] if total and total["conversations"] else None,
        negative_share=total["negative_share"] if total and total["conversations"] else None,
        confusion_intents=list(confusion_intents),
    )
