"""The cross-conversation pages: topics & trends, agents, accounts & outcomes.

Each reads the analytics modules the CLI uses (`analytics.trends`, `spikes`, `cluster_store`,
`topics`, `agents`, `business_marts`), so a chart here and a `convolens` table agree.
These pages are for keys that may see the whole corpus (admin, analyst, viewer); a viewer
gets the same aggregates without conversation text, shaped as the API shapes them for it
(`analytics.viewer_view`): keyphrase topics and clusters by opaque name, no statements,
phrases or evidence conversations.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel

from convolens.analytics import agents as agent_marts
from convolens.analytics import business_marts, cluster_store, spikes, trends, viewer_view
from convolens.analytics.annotations import list_annotations
from convolens.analytics.before_after import before_after as compare_windows
from convolens.analytics.business_import import BusinessDataError
from convolens.dashboard import charts, data
from convolens.service.auth import Principal
from convolens.store.warehouse import Warehouse

__all__ = ["TrendQuery", "accounts", "agents", "rising", "topics"]

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
    db: Warehouse, *, limit: int = 6, names: viewer_view.OpaqueNames | None = None
) -> list[dict[str, Any]]:
    """Values rising in the latest week against the 4 before it, over the labelled
    dimensions: significant spikes first, then the largest rises (marked not significant).
    With `names` (a viewer's), topics by name and no evidence conversations."""
    found: list[tuple[str, spikes.Spike]] = []
    for dimension in SPIKE_DIMENSIONS:
        report = spikes.spikes(db, dimension, "week", min_count=2, significant_only=False)
        if names is not None:
            report = viewer_view.spike_report(report, names)
        if report is None:
            continue
        found += [(dimension, s) for s in report.spikes if s.direction == "rising"]
    found.sort(key=lambda item: (not item[1].significant, -item[1].score))
    return [{"dimension": d, "spike": s} for d, s in found[:limit]]


def topics(db: Warehouse, principal: Principal, query: TrendQuery) -> dict[str, Any]:
    query = query.checked()
    names = _opaque(db, principal)
    table = trends.volume(db, query.dimension, query.grain, top=8)
    mood = trends.sentiment_trend(db, None, grain=query.grain)
    report = spikes.spikes(db, query.dimension, query.grain, min_count=2, significant_only=False)
    notes = list_annotations(db)
    before_after = [
        compare_windows(db, None, None, note.id, window_days=28)
        for note in notes
        if note.dimension is not None and note.value
    ]
    clusters = cluster_store.list_clusters(db, examples=3)
    groups = [] if clusters else _hierarchy(db)
    if names is not None:
        table = viewer_view.volume_table(table, names)
        report = viewer_view.spike_report(report, names)
        before_after = [viewer_view.before_after(b, names) for b in before_after]
        clusters = viewer_view.clusters(clusters)
        groups = viewer_view.topic_tree(groups)
        notes = viewer_view.renamed_annotations(notes, names)
    figures: dict[str, Any] = {
        "volume": charts.trend_volume(table, share=query.share),
        "mood": charts.sentiment_trend(mood, table.annotations),
    }
    if clusters:
        figures["clusters"] = charts.bar_chart([(c.label, c.size) for c in clusters[:15]])
    elif groups:
        figures["treemap"] = charts.treemap(groups)
    return {
        "query": query,
        "dimensions": [d.value for d in trends.Dimension],
        "grains": [g.value for g in trends.Grain],
        "table": table,
        "report": report,
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


def agents(db: Warehouse, principal: Principal) -> dict[str, Any]:
    team = agent_marts.agent_scorecards(db)
    versus = agent_marts.human_vs_ai(db)
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
        "team": team,
        "versus": versus,
        "measures": list(agent_marts.MEASURES),
        "figures": figures,
    }


def accounts(db: Warehouse, principal: Principal) -> dict[str, Any]:
    activity = data.account_activity(db, principal)
    context: dict[str, Any] = {"rows": activity, "figures": {}, "business": None}
    try:
        lifts = [
            business_marts.signal_outcome_lift(db, signal, "churn", 90)
            for signal in ("churn_risk", "competitor_evaluation", "pricing_objection")
        ]
        context["business"] = {
            "lifts": lifts,
            "issues": business_marts.issues_by_value(db, "intent")[:12],
            "campaigns": business_marts.campaign_view(db),
        }
        context["figures"]["lift"] = charts.lift_chart(lifts)
    except BusinessDataError as exc:
        # No accounts imported or nothing stitched: the page says what to run.
        context["business_missing"] = str(exc)
    friction = business_marts.friction_by_topic(db, "intent")[:12]
    context["friction"] = friction
    if activity:
        context["figures"]["accounts"] = charts.bar_chart(
            [(r["name"] or r["account_id"], r["conversations"]) for r in activity[:15]]
        )
    return context
