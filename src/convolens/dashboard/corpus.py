"""The cross-conversation pages: topics & trends, agents, accounts & outcomes.

Each reads the analytics modules the CLI uses (`analytics.trends`, `spikes`, `cluster_store`,
`topics`, `agents`, `business_marts`), so a chart here and a `convolens` table agree.
These pages are for keys that may see the whole corpus (admin, analyst, viewer); a viewer
gets the same aggregates without conversation text, shaped as the API shapes them for it
(`analytics.viewer_view`): keyphrase topics and clusters by opaque name, no statements,
phrases or evidence conversations.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel

from convolens.analytics import agents as agent_marts
from convolens.analytics import business_marts, cluster_store, spikes, trends, viewer_view
from convolens.analytics.annotations import list_annotations
from convolens.analytics.before_after import before_after as compare_windows
from convolens.analytics.business_import import BusinessDataError
from convolens.dashboard import charts, data
from convolens.dashboard.daterange import DateRange, latest_day
from convolens.dashboard.label_flags import mark_flagged_series
from convolens.service.auth import Principal
from convolens.store.warehouse import Warehouse

__all__ = ["TrendQuery", "accounts", "agents", "cluster_name", "rising", "topics"]

SPIKE_DIMENSIONS = ("intent", "topic", "tracker", "signal")


class TrendQuery(BaseModel):
    """The topics & trends page's choices (query string)."""

    dimension: str = "intent"
    grain: str = "week"
    share: bool = False

    def checked(self) -> TrendQuery:
        dimension = (
            self.dimension if self.dimension in {d.value for d in trends.Dimension} else "intent"
        )
        grain = self.grain if self.grain in {g.value for g in trends.Grain} else "week"
        return TrendQuery(dimension=dimension, grain=grain, share=self.share)


def _opaque(db: Warehouse, principal: Principal) -> viewer_view.OpaqueNames | None:
    return None if principal.reads_text else viewer_view.OpaqueNames(db)


def rising(
    db: Warehouse,
    principal: Principal,
    *,
    limit: int = 6,
    as_of: date | None = None,
    names: viewer_view.OpaqueNames | None = None,
) -> list[dict[str, Any]]:
    """Values rising in the week holding `as_of` (default: the latest) against the 4 before
    it, over the labelled dimensions: significant spikes first, then the largest rises,
    marked not significant (the page mutes and hides those unless asked). With `names` (a
    viewer's), topics by name and no evidence conversations; otherwise each evidence
    conversation with the anchor of the utterance that shows the value."""
    found: list[tuple[str, spikes.Spike]] = []
    for dimension in SPIKE_DIMENSIONS:
        report = spikes.spikes(
            db, dimension, "week", min_count=2, significant_only=False, as_of=as_of
        )
        if names is not None:
            report = viewer_view.spike_report(report, names)
        if report is None:
            continue
        found += [(dimension, s) for s in report.spikes if s.direction == "rising"]
    found.sort(key=lambda item: (not item[1].significant, -item[1].score))
    return [
        {
            "dimension": d,
            "spike": s,
            "anchors": data.evidence_anchors(db, principal, d, s.value, s.evidence)
            if names is None
            else {},
        }
        for d, s in found[:limit]
    ]


# Openers and pleasantries name no problem: "Hi there, we were charged twice" is
# "We were charged twice", and "Yeah, I'm glad you asked." is never a cluster's name.
_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening))(?: there)?"
    r"|yes|yeah|yep|ok(?:ay)?|so|well|um+|uh+)\b[\s,!.:-]*",
    re.IGNORECASE,
)
_PLEASANTRY = re.compile(
    r"\b(?:glad you asked|thanks?|thank you|sounds good|no worries|how are you|bye|cheers)\b",
    re.IGNORECASE,
)


def _short(text: str, limit: int = 70, keywords: Sequence[str] = ()) -> str:
    """The sentence of `text` that best names its problem: the one holding most of
    `keywords`, then the longest among pleasantry-free ones, greeting cut off, shortened
    at a word boundary within `limit` characters."""
    # PII placeholders (<PERSON>, [EMAIL]) say nothing about the problem.
    clean = " ".join(re.sub(r"<[A-Z_]+>|\[[A-Z_]+\]", " ", text).split()).strip(" \"'“”")
    sentences = [_GREETING.sub("", p).strip() for p in re.split(r"(?<=[.!?])\s+", clean)]
    sentences = [p[:1].upper() + p[1:] for p in sentences if p] or [clean]
    words = [k.lower() for k in keywords]

    def rank(sentence: str) -> tuple[int, int, int]:
        hits = sum(k in sentence.lower() for k in words)
        return hits, not _PLEASANTRY.search(sentence), min(len(sentence.split()), 12)

    sentence = max(sentences, key=rank)
    if len(sentence) <= limit:
        return sentence
    cut = sentence.rfind(" ", 0, limit - 1)
    return sentence[: cut if cut > limit // 2 else limit - 1].rstrip(",;:- ") + "…"


def cluster_name(cluster: cluster_store.ClusterSummary) -> str:
    """A cluster's name as a person would give it: the sentence of its most representative
    statement (the member nearest the centroid) that holds most of its keywords, short.
    The stored label (the top c-TF-IDF terms, "honest, bit different, called") stays the
    value trends and the CLI key on; the page shows the keywords beside the name."""
    if not cluster.representative:
        return cluster.label
    return _short(cluster.representative, keywords=cluster.phrases[:5]) or cluster.label


def topics(
    db: Warehouse, principal: Principal, query: TrendQuery, dates: DateRange
) -> dict[str, Any]:
    query = query.checked()
    names = _opaque(db, principal)
    start, end = dates.start, dates.end
    table = trends.volume(db, query.dimension, query.grain, start=start, end=end, top=8)
    mood = trends.sentiment_trend(db, None, grain=query.grain, start=start, end=end)
    report = spikes.spikes(
        db, query.dimension, query.grain, min_count=2, significant_only=False, as_of=end
    )
    notes = list_annotations(db)
    before_after = [
        compare_windows(db, None, None, note.id, window_days=28)
        for note in notes
        if note.dimension is not None and note.value
    ]
    clusters = cluster_store.list_clusters(db, examples=3)
    groups = [] if clusters else _hierarchy(db)
    anchors: dict[str, dict[str, str]] = {}
    if names is not None:
        table = viewer_view.volume_table(table, names)
        report = viewer_view.spike_report(report, names)
        before_after = [viewer_view.before_after(b, names) for b in before_after]
        clusters = viewer_view.clusters(clusters)
        groups = viewer_view.topic_tree(groups)
        notes = viewer_view.renamed_annotations(notes, names)
    else:
        clusters = [c.model_copy(update={"label": cluster_name(c)}) for c in clusters]
        if report is not None:
            anchors = {
                s.value: data.evidence_anchors(db, principal, query.dimension, s.value, s.evidence)
                for s in report.spikes[:12]
            }
        example_ids = [e.utterance_id for c in clusters for e in c.examples]
        anchors["__clusters__"] = data.utterance_anchors(db, example_ids)
    figures: dict[str, Any] = {}
    if table.periods:
        figures["volume"] = charts.trend_volume(table, share=query.share)
        if query.dimension == "intent":
            # Primary intents whose reviewed precision is under the bar are marked.
            figures["volume"] = mark_flagged_series(figures["volume"], db, "intent.primary")
    if mood:
        figures["mood"] = charts.sentiment_trend(mood, table.annotations)
    if clusters:
        # Chart labels shorter than the table's names: a long label squeezes the bars.
        figures["clusters"] = charts.bar_chart(
            [(_short(c.label, 36), c.size) for c in clusters[:15]]
        )
    elif groups:
        figures["treemap"] = charts.treemap(groups)
    return {
        "dates": dates,
        "presets": dates.presets(latest_day(db, principal)),
        "query": query,
        "dimensions": [d.value for d in trends.Dimension],
        "grains": [g.value for g in trends.Grain],
        "table": table,
        "report": report,
        "anchors": anchors,
        "annotations": notes,
        "before_after": before_after,
        "clusters": clusters,
        "groups": groups,
        "figures": figures,
    }


_topic_cache: dict[tuple[Any, ...], Any] = {}
_topic_lock = threading.Lock()


def _hierarchy(db: Warehouse) -> list[Any]:
    """The keyphrase topic hierarchy (when no clusters are stored), recomputed only when the
    keyphrases changed: it embeds every phrase, seconds on a large corpus."""
    from convolens.analytics.topics import topic_hierarchy

    stamp = db.query(
        "SELECT count(*) AS n, max(created_at) AS at FROM enrichments WHERE label = ?",
        ["topic.keyphrase"],
    )[0]
    key = (str(db.path), stamp["n"], stamp["at"])
    with _topic_lock:
        if key not in _topic_cache:
            _topic_cache.clear()
            _topic_cache[key] = topic_hierarchy(db, min_conversations=2)
        return list(_topic_cache[key])


def agents(db: Warehouse, principal: Principal, dates: DateRange) -> dict[str, Any]:
    team = agent_marts.agent_scorecards(db, dates.conversation_filter())
    versus = agent_marts.human_vs_ai(db, dates.conversation_filter())
    figures: dict[str, Any] = {}
    cards = team.agents
    if cards:
        figures["volume"] = charts.bar_chart(
            [(c.agent, c.measures.conversations) for c in cards],
            color={c.agent: charts.PALETTE[1] if c.kind == "ai" else charts.PALETTE[0]
                   for c in cards},
        )  # fmt: skip
        figures["benchmark"] = charts.agent_benchmark(team)
    return {
        "dates": dates,
        "presets": dates.presets(latest_day(db, principal)),
        "team": team,
        "versus": versus,
        "measures": list(agent_marts.MEASURES),
        "figures": figures,
    }


def accounts(db: Warehouse, principal: Principal, dates: DateRange) -> dict[str, Any]:
    activity = data.account_activity(db, principal, dates)
    scope = dates.conversation_filter()
    context: dict[str, Any] = {
        "rows": activity, "figures": {}, "business": None, "dates": dates,
        "presets": dates.presets(latest_day(db, principal)),
    }  # fmt: skip
    try:
        lifts = [
            business_marts.signal_outcome_lift(db, signal, "churn", 90, filters=scope)
            for signal in ("churn_risk", "competitor_evaluation", "pricing_objection")
        ]
        context["business"] = {
            "lifts": lifts,
            "issues": business_marts.issues_by_value(db, "intent", filters=scope)[:12],
            "campaigns": business_marts.campaign_view(db, filters=scope),
        }
        context["figures"]["lift"] = charts.lift_chart(lifts)
    except BusinessDataError as exc:
        # No accounts imported or nothing stitched: the page says what to run.
        context["business_missing"] = str(exc)
    friction = business_marts.friction_by_topic(db, "intent", filters=scope)[:12]
    context["friction"] = friction
    if activity:
        context["figures"]["accounts"] = charts.bar_chart(
            [(r["name"] or r["account_id"], r["conversations"]) for r in activity[:15]]
        )
    return context
