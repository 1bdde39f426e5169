"""What the pages show, read through the same functions as the API and the CLI.

Counts come from the API's own `aggregates` and `list_conversations` (so a page and
/v1 never disagree), conversations from `service.results`, corpus tables from
`analytics.report`; the few page-only series (volume per week, alerts) are single SQL
queries scoped by the API's filter clause, so an agent's overview counts only their
conversations, as /v1/aggregates does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, Field

from convolens.client.models import Aggregates, ConversationList
from convolens.dashboard.daterange import DateRange
from convolens.dashboard.transcript import (
    Insight,
    Timeline,
    insights_from_labels,
    marked_text,
    spans_by_utterance,
    timeline,
)
from convolens.service import results, understanding
from convolens.service.auth import Principal
from convolens.service.params import EARLIEST, LATEST
from convolens.store.warehouse import Warehouse

__all__ = [
    "ConversationView",
    "ListFilters",
    "aggregates",
    "alerts",
    "conversation_view",
    "evidence_anchors",
    "filter_options",
    "list_page",
    "utterance_anchors",
    "weekly_sentiment",
    "weekly_volume",
]

PAGE_SIZE = 25


class ListFilters(BaseModel):
    """The conversation list's filters, as the form sends them (empty strings = unset)."""

    channel: str = ""
    agent: str = ""
    intent: str = ""
    sentiment: str = ""
    tracker: str = ""
    signal: str = ""
    topic: str = ""
    type: str = ""  # the conversation type: support, sales, meeting, interview, other
    since: str = ""  # YYYY-MM-DD, inclusive
    until: str = ""  # YYYY-MM-DD, inclusive
    q: str = ""
    # Bounded: a huge page number is a 422, not an OFFSET DuckDB cannot take.
    page: int = Field(default=1, ge=1, le=1_000_000)

    def query(self, **change: Any) -> str:
        """The query string of these filters with `change` applied (for page links)."""
        from urllib.parse import urlencode

        values = {**self.model_dump(), **change}
        return urlencode(
            {k: v for k, v in values.items() if v not in ("", None) and (k, v) != ("page", 1)}
        )

    def active(self) -> bool:
        return any(v for k, v in self.model_dump().items() if k != "page")

    def besides_dates(self) -> dict[str, Any]:
        """The filters other than the date range (what a preset link keeps)."""
        return self.model_dump(exclude={"since", "until", "page"})


def _day(value: str, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    if not EARLIEST <= day <= LATEST:  # 9999-12-31 + 1 day would overflow: ignored too
        return None
    at = datetime.combine(day, time.min, tzinfo=UTC)
    return at + timedelta(days=1) if end else at


def _scope(
    db: Warehouse, principal: Principal, dates: DateRange | None = None
) -> tuple[str, list[Any]]:
    since, until = dates.bounds() if dates is not None else (None, None)
    return results.conversation_filter_sql(principal, since=since, until=until)


def aggregates(db: Warehouse, principal: Principal, dates: DateRange | None = None) -> Aggregates:
    from convolens.service.routes_conversations import aggregates as api_aggregates

    since, until = dates.bounds() if dates is not None else (None, None)
    return api_aggregates(db, principal, since=since, until=until)


def list_page(db: Warehouse, principal: Principal, filters: ListFilters) -> ConversationList:
    from convolens.service.routes_conversations import list_conversations

    sentiment = (
        filters.sentiment if filters.sentiment in ("negative", "neutral", "positive") else None
    )
    # An unknown type (an old link, a hand-edited URL) matches nothing rather than a 422.
    kind = filters.type or None
    return list_conversations(
        db, principal, channel=filters.channel or None, agent=filters.agent or None,
        since=_day(filters.since), until=_day(filters.until, end=True),
        intent=filters.intent or None, topic=filters.topic or None, sentiment=sentiment,
        tracker=filters.tracker or None, signal=filters.signal or None, q=filters.q or None,
        conversation_type=kind, limit=PAGE_SIZE, offset=(max(filters.page, 1) - 1) * PAGE_SIZE,
    )  # fmt: skip


def filter_options(db: Warehouse, principal: Principal) -> dict[str, list[str]]:
    """The values each filter can take in this key's scope (the form's choices)."""
    where, params = _scope(db, principal)
    scope = f"SELECT conversation_id FROM conversations_current c{where}"

    def column(sql: str) -> list[str]:
        return [str(r["v"]) for r in db.query(sql, params) if r["v"] is not None]

    def label(name: str, field: str) -> list[str]:
        return column(
            f"SELECT DISTINCT value->>'{field}' AS v FROM labels_current "
            f"WHERE label = '{name}' AND conversation_id IN ({scope}) ORDER BY 1"
        )

    return {
        "channel": column(f"SELECT DISTINCT c.channel AS v FROM conversations_current c{where} "
                          "ORDER BY 1"),
        "agent": column(f"SELECT DISTINCT c.agent AS v FROM conversations_current c{where} "
                        "ORDER BY 1"),
        "intent": label("intent.primary", "intent"),
        "tracker": label("tracker.match", "tracker"),
        "signal": label("signal", "signal"),
        "type": label("conversation.type", "type"),
        "sentiment": ["negative", "neutral", "positive"],
    }  # fmt: skip


def weekly_volume(
    db: Warehouse, principal: Principal, dates: DateRange | None = None
) -> list[dict[str, Any]]:
    """Conversations per ISO week (its Monday) and channel."""
    where, params = _scope(db, principal, dates)
    return db.query(
        "SELECT strftime(date_trunc('week', c.started_at), '%Y-%m-%d') AS week, c.channel, "
        f"count(*) AS conversations FROM conversations_current c{where} "
        f"{'AND' if where else 'WHERE'} c.started_at IS NOT NULL GROUP BY ALL ORDER BY 1, 2",
        params,
    )


def weekly_sentiment(
    db: Warehouse, principal: Principal, dates: DateRange | None = None
) -> list[dict[str, Any]]:
    """Mean conversation sentiment and the share labelled negative, per ISO week."""
    where, params = _scope(db, principal, dates)
    return db.query(
        "SELECT strftime(date_trunc('week', c.started_at), '%Y-%m-%d') AS week, "
        "round(avg(CAST(l.value->>'score' AS DOUBLE)), 3) AS mean_score, "
        "round(avg(CASE WHEN l.value->>'label' = 'negative' THEN 1.0 ELSE 0.0 END), 3) "
        "AS negative_share, count(*) AS conversations "
        "FROM conversations_current c JOIN labels_current l "
        "ON l.conversation_id = c.conversation_id AND l.label = 'sentiment.conversation'"
        f"{where} {'AND' if where else 'WHERE'} c.started_at IS NOT NULL "
        "GROUP BY 1 ORDER BY 1",
        params,
    )


def alerts(
    db: Warehouse, principal: Principal, limit: int = 12, dates: DateRange | None = None
) -> list[dict[str, Any]]:
    """The latest tracker hits and churn-risk signals, newest conversation first; the
    words that raised them only for keys that may read conversation text."""
    where, params = _scope(db, principal, dates)
    rows = db.query(
        "SELECT c.conversation_id, c.source_id, c.channel, c.agent, c.started_at, l.label, "
        "coalesce(l.value->>'tracker', l.value->>'signal') AS name, "
        "coalesce(TRY_CAST(l.value->>'score' AS DOUBLE), l.confidence) AS score, "
        "u.text AS text, u.seq AS seq, CAST(l.evidence->0->>'start' AS INTEGER) AS ev_start, "
        "CAST(l.evidence->0->>'end' AS INTEGER) AS ev_end "
        "FROM conversations_current c JOIN labels_current l "
        "ON l.conversation_id = c.conversation_id "
        "AND (l.label = 'tracker.match' OR (l.label = 'signal' "
        "AND l.value->>'signal' = 'churn_risk')) "
        "LEFT JOIN utterances_current u ON u.utterance_id = "
        "coalesce(l.utterance_id, l.evidence->0->>'utterance_id')"
        f"{where} ORDER BY c.started_at DESC NULLS LAST, c.conversation_id, l.label, name "
        f"LIMIT {int(limit)}",
        params,
    )
    for r in rows:
        text, start, end = r.pop("text"), r.pop("ev_start"), r.pop("ev_end")
        # The utterance's anchor on its conversation's page (viewers get no link at all).
        seq = r.pop("seq")
        r["anchor"] = f"u-{seq}" if principal.reads_text and seq is not None else ""
        r["quote"] = None
        if principal.reads_text and text:
            quote = text[start:end] if start is not None and end else text
            r["quote"] = quote if len(quote) <= 160 else quote[:157] + "..."
    return rows


class ConversationView(BaseModel):
    header: dict[str, Any]
    utterances: list[dict[str, Any]]
    metrics: dict[str, Any]
    insights: list[Insight]
    parts: dict[str, list[dict[str, Any]]]
    timeline: Timeline | None
    trajectory: list[dict[str, Any]]
    timed: bool


def conversation_view(db: Warehouse, principal: Principal, ref: str) -> ConversationView:
    """One conversation as its page shows it (404/409 as the API, via find_conversation)."""
    header = results.find_conversation(db, principal, ref)
    cid = header["conversation_id"]
    names = {p["participant_id"]: p["name"] or p["participant_id"] for p in header["participants"]}
    roles = {p["participant_id"]: p["role"] for p in header["participants"]}
    rows = results.utterances(db, cid, words=True)
    every = tuple(sorted({name for names_ in results.PARTS.values() for name in names_}))
    labels = results.labels(db, cid, every)
    # Resolution, escalation, churn: none on a page where the type gives them no meaning.
    kind = understanding.conversation_type(labels)
    labels = [row for row in labels if not understanding.support_only(row, kind)]
    parts = {
        part: [row for row in labels if row["label"] in label_names]
        for part, label_names in results.PARTS.items()
    }
    insights = insights_from_labels(labels)
    spans = spans_by_utterance(insights)
    titles = {i.ref: f"{i.kind}: {i.title}" for i in insights}
    sentiment = {
        row["utterance_id"]: row["value"]
        for row in parts["sentiment"]
        if row["label"] == "sentiment.utterance"
    }
    intents = {
        row["utterance_id"]: row["value"].get("intent")
        for row in parts["intents"]
        if row["label"] == "intent.utterance" and not row["value"].get("out_of_scope")
    }
    timed = any(u["start_s"] is not None for u in rows)
    trajectory: list[dict[str, Any]] = []
    for u in rows:
        u["speaker"] = names.get(u["participant_id"], u["participant_id"])
        u["role"] = roles.get(u["participant_id"])
        u["html"] = marked_text(  # words: the player's click-to-seek and highlighting
            u["text"] or "", spans.get(u["utterance_id"], []), titles, words=u.pop("words")
        )
        u["sentiment"] = sentiment.get(u["utterance_id"])
        u["intent"] = intents.get(u["utterance_id"])
        if u["sentiment"] and (u["start_s"] is not None or not timed):
            text = u["text"] or ""
            trajectory.append({
                "speaker": u["speaker"], "seq": u["seq"], "start_s": u["start_s"],
                "score": u["sentiment"].get("score"),
                "snippet": text if len(text) <= 80 else text[:77] + "...",
            })  # fmt: skip
    metrics = results.metrics(db, cid)
    duration = (metrics.get("conversation") or {}).get("duration_s")
    return ConversationView(
        header=header,
        utterances=rows,
        metrics=metrics,
        insights=insights,
        parts=parts,
        timeline=timeline(rows, names, duration) if timed else None,
        trajectory=trajectory,
        timed=timed,
    )


def weekly_label_counts(
    db: Warehouse, principal: Principal, label: str, field: str, *, top: int = 6
) -> list[dict[str, Any]]:
    """Conversations per ISO week with each of the `top` most common values of a label."""
    where, params = _scope(db, principal)
    return db.query(
        "WITH hits AS (SELECT DISTINCT l.conversation_id, l.value->>? AS name, "
        "strftime(date_trunc('week', c.started_at), '%Y-%m-%d') AS week "
        "FROM conversations_current c JOIN labels_current l "
        f"ON l.conversation_id = c.conversation_id AND l.label = ?{where} "
        f"{'AND' if where else 'WHERE'} c.started_at IS NOT NULL), "
        "leaders AS (SELECT name FROM hits GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?) "
        "SELECT week, name, count(*) AS n FROM hits WHERE name IN (SELECT name FROM leaders) "
        "GROUP BY ALL ORDER BY 1, 2",
        [field, label, *params, top],
    )


def account_activity(
    db: Warehouse, principal: Principal, dates: DateRange | None = None
) -> list[dict[str, Any]]:
    """Per account: volume, channels, last contact, customer sentiment and the signals
    raised (most conversations first). Conversations count under the account they are
    stitched to (`convolens stitch`, with the account's name, plan, ARR and churn date)
    where business data was imported, else under the account id their source gave."""
    where, params = _scope(db, principal, dates)
    stitched = bool(
        db.query(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'conversation_accounts'"
        )
    ) and bool(db.query("SELECT 1 FROM conversation_accounts LIMIT 1"))
    if stitched:
        source = (
            "SELECT c.conversation_id, c.channel, c.started_at, ca.account_id, "
            "ca.rule AS stitched_by FROM conversations_current c "
            "JOIN conversation_accounts ca USING (conversation_id, version)" + where
        )
        details = (
            "a.name, a.plan, a.arr, a.churned_at, string_agg(DISTINCT s.stitched_by, ', ' "
            "ORDER BY s.stitched_by) AS stitched_by"
        )
        joined = "LEFT JOIN accounts a ON a.account_id = s.account_id"
    else:
        source = (
            "SELECT c.conversation_id, c.channel, c.started_at, c.account_id, "
            f"NULL AS stitched_by FROM conversations_current c{where} "
            f"{'AND' if where else 'WHERE'} c.account_id IS NOT NULL"
        )
        details = "NULL AS name, NULL AS plan, NULL AS arr, NULL AS churned_at, NULL AS stitched_by"
        joined = ""
    return db.query(
        f"WITH scoped AS ({source}), "
        "sig AS (SELECT s.account_id, l.value->>'signal' AS name, "
        "count(DISTINCT l.conversation_id) AS n FROM labels_current l "
        "JOIN scoped s USING (conversation_id) WHERE l.label = 'signal' GROUP BY ALL), "
        "sent AS (SELECT s.account_id, avg(CAST(l.value->>'score' AS DOUBLE)) AS mean_sentiment "
        "FROM labels_current l JOIN scoped s USING (conversation_id) "
        "WHERE l.label = 'sentiment.conversation' GROUP BY 1) "
        f"SELECT s.account_id, {details}, count(*) AS conversations, "
        "string_agg(DISTINCT s.channel, ', ' ORDER BY s.channel) AS channels, "
        "min(s.started_at) AS first_contact, max(s.started_at) AS last_contact, "
        "round(any_value(t.mean_sentiment), 3) AS mean_sentiment, "
        "coalesce((SELECT list(struct_pack(name := g.name, n := g.n) ORDER BY g.n DESC, g.name) "
        "FROM sig g WHERE g.account_id = s.account_id), []) AS signals "
        f"FROM scoped s LEFT JOIN sent t USING (account_id) {joined} "
        "GROUP BY ALL ORDER BY conversations DESC, s.account_id",
        params,
    )


def alert_counts(
    db: Warehouse, principal: Principal, dates: DateRange | None = None
) -> list[dict[str, Any]]:
    """Tracker hits and churn-risk signals counted (conversations, latest day): the
    alerts panel for keys that see aggregates only."""
    where, params = _scope(db, principal, dates)
    return db.query(
        "SELECT l.label, coalesce(l.value->>'tracker', l.value->>'signal') AS name, "
        "count(DISTINCT c.conversation_id) AS conversations, max(c.started_at) AS latest "
        "FROM conversations_current c JOIN labels_current l "
        "ON l.conversation_id = c.conversation_id "
        "AND (l.label = 'tracker.match' OR (l.label = 'signal' "
        f"AND l.value->>'signal' = 'churn_risk')){where} "
        "GROUP BY ALL ORDER BY latest DESC NULLS LAST, name",
        params,
    )


# label and value expression (over labels `l`) behind each spike dimension: literals only.
_SPIKE_LABELS = {
    "intent": ("intent.primary", "l.value->>'intent'"),
    "topic": ("topic.conversation", "lower(trim(l.value->'phrases'->>0))"),
    "tracker": ("tracker.match", "l.value->>'tracker'"),
    "signal": ("signal", "l.value->>'signal'"),
}


def evidence_anchors(
    db: Warehouse, principal: Principal, dimension: str, value: str, conversation_ids: list[str]
) -> dict[str, str]:
    """conversation id -> the anchor (`u-<seq>`) of the utterance whose label gave it
    `value` of `dimension`, so an evidence link opens the quote rather than the top of the
    conversation. Only conversations this key may read; none for keys without text."""
    found = _SPIKE_LABELS.get(dimension)
    if not principal.reads_text or found is None or not conversation_ids:
        return {}
    label, expression = found
    where, params = _scope(db, principal)
    rows = db.query(
        "SELECT l.conversation_id, min(u.seq) AS seq FROM labels_current l "
        "JOIN utterances_current u ON u.utterance_id = "
        "coalesce(l.utterance_id, l.evidence->0->>'utterance_id') "
        f"WHERE l.label = ? AND {expression} = ? AND list_contains(?, l.conversation_id) "
        f"AND l.conversation_id IN (SELECT c.conversation_id FROM conversations_current c{where}) "
        "GROUP BY 1",
        [label, value, conversation_ids, *params],
    )
    return {r["conversation_id"]: f"u-{r['seq']}" for r in rows if r["seq"] is not None}


def utterance_anchors(db: Warehouse, utterance_ids: list[str]) -> dict[str, str]:
    """utterance id -> its anchor on its conversation's page (`u-<seq>`)."""
    if not utterance_ids:
        return {}
    rows = db.query(
        "SELECT utterance_id, seq FROM utterances_current WHERE list_contains(?, utterance_id)",
        [utterance_ids],
    )
    return {r["utterance_id"]: f"u-{r['seq']}" for r in rows}
