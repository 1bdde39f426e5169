"""Trends over time: how many conversations per topic, intent, tracker, signal, channel,
queue or agent each day, week or month, what share of all conversations that is, and how
the customers in them felt.

Leaders ask "what are customers contacting us about this week, and is it getting worse?".
The per-period counts answer it; the spike detector (`spikes.py`) and the before/after
view (`before_after.py`) build on the same SQL, and the charts carry the release and
campaign annotations (`annotations.py`) of their range. Every aggregate is one statement pushed
down to DuckDB over the `*_current` views; Python only shapes the aggregated rows.

What a value of each dimension is (counts are always conversations, never labels):

- intent: the conversation's primary intent (`intent.primary`, `value.intent`);
- topic: its top keyphrase (`topic.conversation`, `value.phrases[0]`, lower-cased);
- tracker: every tracker that matched in it (`tracker.match`, `value.tracker`);
- signal: every business signal it shows (`signal`, `value.signal`);
- channel, queue, agent: its own columns, "(none)" when unset;
- cluster: the label of its problem-statement cluster in the current clustering run
  (`cluster_members_current`, `analytics/cluster_store.py`), once one has run.

A conversation counts once per value, however many labels say so; trackers and signals
can give it several values, so their shares need not add up to 1. A share is over all
conversations of the period, labelled or not. Sentiment is the customer's: the mean
`sentiment.participant` score of the customer participants (agents stay polite whatever
happens, so their turns would dilute it), or the conversation's score where no customer
spoke. Periods are UTC days, ISO weeks (Monday) or months, named by their first day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

__all__ = [
    "AnnotationKind",
    "Dimension",
    "Grain",
    "PeriodTotal",
    "SentimentPoint",
    "TimelineAnnotation",
    "VolumePoint",
    "VolumeTable",
    "check_dimension",
    "scope_ctes",
    "sentiment_trend",
    "volume",
]


class Dimension(StrEnum):
    topic = "topic"
    intent = "intent"
    tracker = "tracker"
    signal = "signal"
    channel = "channel"
    queue = "queue"
    agent = "agent"
    cluster = "cluster"


class AnnotationKind(StrEnum):
    release = "release"
    campaign = "campaign"
    incident = "incident"
    note = "note"


class Grain(StrEnum):
    day = "day"
    week = "week"
    month = "month"


# label name -> SQL for the value, over the label rows `l`. Literals, never user input.
_LABELS: dict[Dimension, tuple[str, str]] = {
    Dimension.intent: ("intent.primary", "l.value->>'intent'"),
    Dimension.topic: ("topic.conversation", "lower(trim(l.value->'phrases'->>0))"),
    Dimension.tracker: ("tracker.match", "l.value->>'tracker'"),
    Dimension.signal: ("signal", "l.value->>'signal'"),
}
# The period's first day (UTC). Days and weeks by arithmetic on the epoch, five times
# cheaper than date_trunc on a TIMESTAMPTZ, which goes through the time-zone library for
# every row; 1970-01-05 was a Monday, so weeks are ISO weeks.
_PERIOD: dict[Grain, str] = {
    Grain.day: "(DATE '1970-01-01' + CAST(floor(epoch(c.started_at) / 86400) AS INTEGER))",
    Grain.week: (
        "(DATE '1970-01-05' + 7 * CAST(floor((epoch(c.started_at) - 345600) / 604800) AS INTEGER))"
    ),
    Grain.month: "CAST(date_trunc('month', CAST(c.started_at AS TIMESTAMP)) AS DATE)",
}
# Labels a component writes once per conversation (one primary intent, one topic list):
# no deduplication needed, which saves a GROUP BY over every conversation.
_ONE_PER_CONVERSATION = {Dimension.intent, Dimension.topic}
# One statement per conversation, so one cluster; unclustered statements have no value.
_CLUSTERS = """
    SELECT m.conversation_id, m.version, c.label AS value, m.similarity AS confidence
    FROM cluster_members_current m
    JOIN clusters c ON c.cluster_id = m.cluster_id AND c.run_id = m.run_id
"""
_COLUMNS: dict[Dimension, str] = {
    Dimension.channel: "c.channel",
    Dimension.queue: "coalesce(c.queue, '(none)')",
    Dimension.agent: "coalesce(c.agent, '(none)')",
}


def current_labels(*labels: str, within: str | None = None) -> str:
    """SQL for the rows of `labels` from the latest run of each component on each
    conversation version (only those in relation `within`, when given): what
    `labels_current` holds, less its join to the current versions, which callers make
    through `scope`. Several times faster than the view on 100,000 conversations: the
    latest-run lookup reads only the status rows of the components that wrote these
    labels, and with `within` only the conversations asked about reach the JSON parsing.
    (Without it, the semi-join would cost more than it saves.)"""
    names = ", ".join(f"'{label}'" for label in labels)
    restrict = f"SEMI JOIN {within} w USING (conversation_id, version)" if within else ""
    return f"""
        SELECT e.conversation_id, e.version, e.label, e.value, e.confidence
        FROM enrichments e
        {restrict}
        JOIN (
            SELECT conversation_id, version, component, arg_max(run_id, processed_at) AS run_id
            FROM enrichment_status
            WHERE component IN (SELECT DISTINCT component FROM enrichments WHERE label IN ({names}))
            GROUP BY ALL
        ) latest USING (conversation_id, version, component, run_id)
        WHERE e.label IN ({names})"""


def _mood(within: str | None) -> str:
    """The customer's mood per conversation version, from one scan of the sentiment labels."""
    return f"""
    SELECT l.conversation_id, l.version,
           coalesce(
               avg(TRY_CAST(l.fields[1] AS DOUBLE)) FILTER (WHERE p.participant_id IS NOT NULL),
               any_value(TRY_CAST(l.fields[1] AS DOUBLE))
                   FILTER (WHERE l.label = 'sentiment.conversation')
           ) AS score
    FROM (
        -- One JSON parse per row for both fields.
        SELECT *, json_extract_string(value, ['$.score', '$.participant_id']) AS fields
        FROM ({current_labels("sentiment.participant", "sentiment.conversation", within=within)})
    ) l
    LEFT JOIN (
        SELECT conversation_id, version, participant_id FROM participants WHERE role = 'customer'
    ) p
        ON l.label = 'sentiment.participant'
        AND p.conversation_id = l.conversation_id AND p.version = l.version
        AND p.participant_id = l.fields[2]
    GROUP BY l.conversation_id, l.version
"""


JOINED = (
    "scope s JOIN tagged t USING (conversation_id, version) "
    "LEFT JOIN mood m USING (conversation_id, version)"
)


# -- models ---------------------------------------------------------------------------------
class PeriodTotal(BaseModel):
    """All conversations of one period (the denominator of the shares)."""

    period: date
    conversations: int
    mean_sentiment: float | None


class VolumePoint(BaseModel):
    """One value of the dimension in one period."""

    period: date
    value: str
    conversations: int
    share: float = Field(description="Of all conversations in the period.")
    mean_sentiment: float | None = Field(description="Mean customer sentiment, -1..1.")
    scored: int = Field(description="Conversations with a sentiment score.")


class TimelineAnnotation(BaseModel):
    """A release, campaign, incident or note on the timeline."""

    id: int
    at: datetime
    kind: AnnotationKind
    label: str
    description: str | None = None
    dimension: Dimension | None = None
    value: str | None = None
    source: str | None = None


class VolumeTable(BaseModel):
    dimension: Dimension
    grain: Grain
    periods: list[PeriodTotal]
    points: list[VolumePoint]
    annotations: list[TimelineAnnotation] = Field(
        description="Annotations dated within the periods shown."
    )


class SentimentPoint(BaseModel):
    period: date
    conversations: int
    scored: int
    mean_sentiment: float | None
    ci95: float | None = Field(description="Half-width of the 95 % interval of the mean.")


# -- shared SQL -----------------------------------------------------------------------------
def as_dimension(dimension: str) -> Dimension:
    try:
        return Dimension(dimension)
    except ValueError:
        raise ValueError(
            f"unknown dimension {dimension!r}; choose from: {', '.join(d.value for d in Dimension)}"
        ) from None


def check_dimension(warehouse: Warehouse, dimension: Dimension | None) -> None:
    """Fail with what to do when the dimension's source is missing (clusters not fitted)."""
    if dimension is not Dimension.cluster:
        return
    found = warehouse.con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name IN ('cluster_members_current', 'clusters')"
    ).fetchall()
    if found[0][0] < 2:
        raise ValueError("no clusters in this warehouse yet: cluster the conversations first")


def as_grain(grain: str) -> Grain:
    try:
        return Grain(grain)
    except ValueError:
        raise ValueError(
            f"unknown grain {grain!r}; choose from: {', '.join(g.value for g in Grain)}"
        ) from None


def as_instant(value: date | datetime) -> datetime:
    """A date is its midnight UTC; a naive datetime is taken as UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(), UTC)


def bounds(
    start: date | datetime | None, end: date | datetime | None
) -> tuple[datetime | None, datetime | None]:
    """[since, until) instants: a date `end` includes its whole day, a datetime does not."""
    since = as_instant(start) if start is not None else None
    if end is None:
        return since, None
    if isinstance(end, datetime):
        return since, as_instant(end)
    return since, as_instant(end + timedelta(days=1))


def scope_ctes(
    dimension: Dimension | None,
    grain: Grain,
    filters: ConversationFilter | None,
    since: datetime | None,
    until: datetime | None,
    value: str | None = None,
) -> tuple[str, list[Any]]:
    """The CTEs every trend query starts from, and their parameters (in order):

    `scope` (conversation_id, version, started_at, period): the filtered, dated current
    conversations; `tagged` (conversation_id, version, value, confidence): one row per
    conversation and value of the dimension (only `value` when given); `mood`
    (conversation_id, version, score). Join them on (conversation_id, version).
    """
    where, params = (filters or ConversationFilter()).where()
    conditions = ["c.started_at IS NOT NULL"]
    if since is not None:
        conditions.append("c.started_at >= ?")
        params.append(since)
    if until is not None:
        conditions.append("c.started_at < ?")
        params.append(until)
    # Over part of the data only, the labels are narrowed to it before their JSON is read.
    narrow = "scope" if where or since is not None or until is not None else None
    where = (f"{where} AND " if where else " WHERE ") + " AND ".join(conditions)
    column = _COLUMNS.get(dimension) if dimension is not None else None
    scope = (
        "SELECT c.conversation_id, c.version, c.started_at, "
        f"{_PERIOD[grain]} AS period"
        + (f", {column} AS dimension_value" if column else "")
        + f" FROM conversations_current c{where}"
    )
    if dimension is None:
        tagged = (
            "SELECT conversation_id, version, 'all' AS value, "
            "CAST(NULL AS DOUBLE) AS confidence FROM scope"
        )
    elif column is not None:
        tagged = (
            "SELECT conversation_id, version, dimension_value AS value, "
            "CAST(NULL AS DOUBLE) AS confidence FROM scope"
        )
    elif dimension is Dimension.cluster:
        tagged = _CLUSTERS
    else:
        label, expression = _LABELS[dimension]
        tagged = (
            f"SELECT l.conversation_id, l.version, {expression} AS value, "
            f"l.confidence FROM ({current_labels(label, within=narrow)}) l"
        )
        if dimension not in _ONE_PER_CONVERSATION:
            # A tracker matching five times is one conversation with that tracker.
            tagged = (
                "SELECT conversation_id, version, value, max(confidence) AS confidence "
                f"FROM ({tagged}) GROUP BY ALL"
            )
    tagged = f"SELECT * FROM ({tagged}) WHERE value IS NOT NULL"
    if value is not None:
        tagged += " AND value = ?"
        params.append(value)
    # With one value, only its conversations need a mood.
    mood = _mood("tagged" if value is not None else narrow)
    ctes = f"scope AS ({scope}),\n tagged AS ({tagged}),\n mood AS ({mood})"
    return ctes, params


# -- volume and sentiment ---------------------------------------------------------------------
def volume(
    warehouse: Warehouse,
    dimension: str,
    grain: str = "week",
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    filters: ConversationFilter | None = None,
    top: int | None = None,
) -> VolumeTable:
    """Conversations, share and customer sentiment per period and value of `dimension`.

    `start`/`end` bound the conversations' start (dates inclusive); `top` keeps the values
    with the most conversations over the whole range. Periods without conversations are
    absent from `periods`; values absent from a period have no point there (count 0).
    """
    dim, g = as_dimension(dimension), as_grain(grain)
    if top is not None and top < 1:
        raise ValueError("top must be at least 1")
    check_dimension(warehouse, dim)
    since, until = bounds(start, end)
    ctes, params = scope_ctes(dim, g, filters, since, until)
    limit = f"LIMIT {int(top)}" if top is not None else ""
    rows = warehouse.query(
        f"""
        WITH {ctes},
        totals AS (
            SELECT s.period, count(*) AS n, avg(m.score) AS sentiment
            FROM scope s LEFT JOIN mood m USING (conversation_id, version)
            GROUP BY s.period
        ),
        cells AS (
            SELECT s.period, t.value, count(*) AS n, avg(m.score) AS sentiment,
                   count(m.score) AS scored
            FROM {JOINED} GROUP BY ALL
        ),
        kept AS (
            SELECT value FROM cells GROUP BY value ORDER BY sum(n) DESC, value {limit}
        )
        SELECT c.period, c.value, c.n, round(c.n / t.n, 4) AS share,
               round(c.sentiment, 4) AS sentiment, c.scored
        FROM cells c JOIN totals t USING (period) SEMI JOIN kept k USING (value)
        UNION ALL
        SELECT period, NULL, n, 1.0, round(sentiment, 4), NULL FROM totals
        ORDER BY period, value NULLS FIRST
        """,
        params,
    )
    periods = [
        PeriodTotal(period=r["period"], conversations=r["n"], mean_sentiment=r["sentiment"])
        for r in rows
        if r["value"] is None
    ]
    points = [
        VolumePoint(
            period=r["period"],
            value=r["value"],
            conversations=r["n"],
            share=r["share"],
            mean_sentiment=r["sentiment"],
            scored=r["scored"],
        )
        for r in rows
        if r["value"] is not None
    ]
    # Imported here: annotations.py builds on this module's types.
    from convolens.analytics.annotations import list_annotations

    # Periods run to the end of the last one shown, so its annotations are on the chart too.
    annotations: list[TimelineAnnotation] = []
    if periods:
        first, last = periods[0].period, periods[-1].period
        annotations = list_annotations(warehouse, start=first, end=period_end(last, g))
    return VolumeTable(
        dimension=dim, grain=g, periods=periods, points=points, annotations=annotations
    )


def sentiment_trend(
    warehouse: Warehouse,
    dimension: str | None,
    value: str | None = None,
    grain: str = "week",
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    filters: ConversationFilter | None = None,
) -> list[SentimentPoint]:
    """Mean customer sentiment per period of the conversations with `value` of
    `dimension` (all conversations when both are None), with a 95 % interval."""
    if value is not None and dimension is None:
        raise ValueError("a value needs its dimension")
    dim = as_dimension(dimension) if dimension is not None else None
    g = as_grain(grain)
    check_dimension(warehouse, dim)
    since, until = bounds(start, end)
    ctes, params = scope_ctes(dim, g, filters, since, until, value)
    rows = warehouse.query(
        f"""
        WITH {ctes}
        SELECT s.period, count(DISTINCT s.conversation_id) AS n, count(m.score) AS scored,
               round(avg(m.score), 4) AS sentiment,
               round(1.96 * stddev_samp(m.score) / sqrt(count(m.score)), 4) AS ci95
        FROM {JOINED}
        GROUP BY s.period ORDER BY s.period
        """,
        params,
    )
    return [
        SentimentPoint(
            period=r["period"],
            conversations=r["n"],
            scored=r["scored"],
            mean_sentiment=r["sentiment"],
            ci95=r["ci95"],
        )
        for r in rows
    ]


def period_start(day: date, grain: Grain) -> date:
    if grain is Grain.week:
        return day - timedelta(days=day.weekday())
    if grain is Grain.month:
        return day.replace(day=1)
    return day


def shift_period(start: date, grain: Grain, periods: int) -> date:
    """The start of the period `periods` after (negative: before) the one at `start`."""
    if grain is Grain.day:
        return start + timedelta(days=periods)
    if grain is Grain.week:
        return start + timedelta(weeks=periods)
    months = start.year * 12 + start.month - 1 + periods
    return date(months // 12, months % 12 + 1, 1)


def period_end(start: date, grain: Grain) -> date:
    """The last day of the period starting at `start`."""
    return shift_period(start, grain, 1) - timedelta(days=1)
