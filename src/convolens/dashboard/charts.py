"""Plotly figures built on the server and handed to the page as JSON.

Building figures here (not in browser code) keeps one language for the numbers and the
charts, lets tests read a figure's data, and leaves the page's script to one call:
`Plotly.newPlot(element, figure.data, figure.layout)`. The JSON is escaped for an HTML
<script> element, so a label holding "</script>" cannot end it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup

from convolens.dashboard.transcript import Timeline

__all__ = [
    "agent_benchmark",
    "bar_chart",
    "figure_json",
    "lift_chart",
    "sentiment_trajectory",
    "sentiment_trend",
    "stacked_volume",
    "timeline_chart",
    "treemap",
    "trend_volume",
    "weekly_sentiment",
]

SENTIMENT_COLORS = {"negative": "#d9534f", "neutral": "#9aa5b1", "positive": "#3c9d5d"}
PALETTE = ["#2f6fde", "#e8871e", "#3c9d5d", "#8e5bd6", "#d9534f", "#17a2b8", "#b5892a",
           "#6c757d", "#e83e8c", "#20c997"]  # fmt: skip


def _layout(fig: go.Figure, height: int = 300, **extra: Any) -> go.Figure:
    settings: dict[str, Any] = {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 40, "r": 16, "t": 28, "b": 36},
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "legend": {"orientation": "h", "y": -0.18},
    }
    fig.update_layout(**{**settings, **extra})
    return fig


def figure_json(fig: go.Figure) -> Markup:
    """The figure as JSON safe inside <script type="application/json">."""
    text = fig.to_json()
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return Markup(text)


def stacked_volume(rows: Sequence[dict[str, Any]], *, x: str, group: str, y: str) -> go.Figure:
    """Stacked bars: `y` per `x` (a period), one colour per `group` (e.g. channel)."""
    periods = sorted({str(r[x]) for r in rows})
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        series[str(r[group])][str(r[x])] = float(r[y] or 0)
    fig = go.Figure()
    for i, (name, values) in enumerate(sorted(series.items())):
        fig.add_bar(
            name=name, x=periods, y=[values.get(p, 0) for p in periods],
            marker_color=PALETTE[i % len(PALETTE)],
        )  # fmt: skip
    # Periods are ISO dates (a week's Monday): a date axis labels them "Sep 7".
    return _layout(fig, barmode="stack", xaxis={"type": "date"}, bargap=0.15)


def weekly_sentiment(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Mean conversation sentiment per week (line) over the share negative (bars)."""
    weeks = [str(r["week"]) for r in rows]
    fig = go.Figure()
    fig.add_bar(
        name="share negative", x=weeks, y=[r["negative_share"] for r in rows],
        marker_color=SENTIMENT_COLORS["negative"], opacity=0.35, yaxis="y2",
    )  # fmt: skip
    fig.add_scatter(
        name="mean sentiment", x=weeks, y=[r["mean_score"] for r in rows],
        mode="lines+markers", line={"color": PALETTE[0], "width": 2},
    )  # fmt: skip
    return _layout(
        fig,
        xaxis={"type": "date"},
        yaxis={"title": "mean score", "range": [-1, 1], "zeroline": True},
        yaxis2={"title": "negative", "overlaying": "y", "side": "right", "range": [0, 1],
                "tickformat": ".0%", "showgrid": False},
    )  # fmt: skip


def bar_chart(
    counts: dict[str, float] | Sequence[tuple[str, float]],
    *,
    horizontal: bool = True,
    color: str | dict[str, str] = PALETTE[0],
    height: int | None = None,
    value_format: str | None = None,
) -> go.Figure:
    items = list(counts.items()) if isinstance(counts, dict) else list(counts)
    names = [str(k) for k, _ in items]
    values = [v for _, v in items]
    colors = [color.get(n, PALETTE[0]) for n in names] if isinstance(color, dict) else color
    fig = go.Figure()
    if horizontal:
        # Largest on top: Plotly draws the first category at the bottom.
        fig.add_bar(y=names[::-1], x=values[::-1], orientation="h",
                    marker_color=colors[::-1] if isinstance(colors, list) else colors)  # fmt: skip
    else:
        fig.add_bar(x=names, y=values, marker_color=colors)
    fig = _layout(fig, height=height or max(180, 26 * len(items) + 60), showlegend=False)
    if horizontal:
        fig.update_layout(margin={"l": 160}, yaxis={"automargin": True})
    if value_format:
        fig.update_layout(**{"xaxis" if horizontal else "yaxis": {"tickformat": value_format}})
    return fig


def timeline_chart(line: Timeline) -> go.Figure:
    """One row per speaker (their talk), then silence and overlap, over the call's time."""
    fig = go.Figure()
    rows = [*line.speakers.items(), ("silence", line.silence), ("overlap", line.overlap)]
    colors = {"silence": "#c7ccd1", "overlap": "#d9534f"}
    for i, (name, spans) in enumerate(rows):
        if not spans:
            continue
        fig.add_bar(
            name=name,
            y=[name] * len(spans),
            base=[round(s, 2) for s, _ in spans],
            x=[round(e - s, 2) for s, e in spans],
            orientation="h",
            marker_color=colors.get(name, PALETTE[i % len(PALETTE)]),
            hovertemplate="%{base:.1f}s + %{x:.1f}s<extra>" + name + "</extra>",
        )
    order = [name for name, _ in rows][::-1]
    return _layout(
        fig,
        height=70 + 34 * len(rows),
        barmode="overlay",
        showlegend=False,
        xaxis={"title": "seconds", "range": [0, line.duration]},
        yaxis={"categoryorder": "array", "categoryarray": order, "automargin": True},
        margin={"l": 110, "r": 16, "t": 16, "b": 40},
    )


def sentiment_trajectory(points: Sequence[dict[str, Any]], *, timed: bool) -> go.Figure:
    """Sentiment per utterance, one line per speaker; a point's customdata is its seq,
    so a click scrolls the transcript to that utterance."""
    by_speaker: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in points:
        by_speaker[p["speaker"]].append(p)
    fig = go.Figure()
    for i, (speaker, items) in enumerate(by_speaker.items()):
        fig.add_scatter(
            name=speaker,
            x=[p["start_s"] if timed else p["seq"] for p in items],
            y=[p["score"] for p in items],
            customdata=[p["seq"] for p in items],
            text=[p["snippet"] for p in items],
            mode="lines+markers",
            line={"color": PALETTE[i % len(PALETTE)], "shape": "spline", "smoothing": 0.6},
            hovertemplate="%{y:.2f} · %{text}<extra>" + speaker + "</extra>",
        )
    return _layout(
        fig,
        height=260,
        xaxis={"title": "seconds" if timed else "message"},
        yaxis={"range": [-1.05, 1.05], "zeroline": True, "title": "sentiment"},
    )


def treemap(groups: Sequence[Any]) -> go.Figure:
    """Topic groups and their topics (TopicNode-like: label, topic_id, counts, children)."""
    ids, labels, parents, values = [], [], [], []
    for g in groups:
        ids.append(g.topic_id)
        labels.append(g.label)
        parents.append("")
        # "remainder": a group is as big as its topics (its own value is 0).
        values.append(0)
        for child in g.children:
            if child.topic_id == g.topic_id:
                continue
            ids.append(child.topic_id)
            labels.append(child.label)
            parents.append(g.topic_id)
            values.append(child.conversation_count)
    fig = go.Figure(
        go.Treemap(
            ids=ids, labels=labels, parents=parents, values=values, branchvalues="remainder",
            hovertemplate="%{label}: %{value} conversations<extra></extra>",
        )
    )  # fmt: skip
    return _layout(fig, height=420, margin={"l": 4, "r": 4, "t": 24, "b": 4})


def _annotate(fig: go.Figure, notes: Sequence[Any], *, labels: bool = True) -> None:
    """Release/campaign annotations as dotted vertical lines labelled at the top."""
    for note in notes:
        at = note.at.date().isoformat()
        fig.add_vline(x=at, line_dash="dot", line_color="#8e5bd6", opacity=0.7)
        if not labels:
            continue
        fig.add_annotation(
            x=at, y=1, yref="paper", text=note.label, showarrow=False, xanchor="left",
            font={"size": 10, "color": "#6a3fb0"}, textangle=-90, yanchor="top",
        )  # fmt: skip


def trend_volume(table: Any, *, share: bool = False) -> go.Figure:
    """A `trends.VolumeTable`: conversations per period stacked by value, or each value's
    share of the period's conversations as lines; a period without the value counts 0."""
    periods = [p.period.isoformat() for p in table.periods]
    by_value: dict[str, dict[str, Any]] = defaultdict(dict)
    for p in table.points:
        by_value[p.value][p.period.isoformat()] = p
    fig = go.Figure()
    for i, (value, cells) in enumerate(by_value.items()):
        ys = [
            (cells[x].share if share else cells[x].conversations) if x in cells else 0
            for x in periods
        ]
        mood = [cells[x].mean_sentiment if x in cells else None for x in periods]
        style: dict[str, Any] = {"marker_color": PALETTE[i % len(PALETTE)]}
        hover = ("%{y:.0%}" if share else "%{y}") + " · sentiment %{customdata:.2f}"
        if share:
            fig.add_scatter(name=value, x=periods, y=ys, customdata=mood, mode="lines+markers",
                            hovertemplate=hover + "<extra>" + value + "</extra>",
                            line={"color": PALETTE[i % len(PALETTE)]})  # fmt: skip
        else:
            fig.add_bar(name=value, x=periods, y=ys, customdata=mood,
                        hovertemplate=hover + "<extra>" + value + "</extra>", **style)  # fmt: skip
    _annotate(fig, table.annotations)
    return _layout(
        fig,
        height=360,
        barmode="stack",
        xaxis={"type": "date"},
        yaxis={"title": "share" if share else "conversations",
               "tickformat": ".0%" if share else ""},
    )  # fmt: skip


def sentiment_trend(points: Sequence[Any], notes: Sequence[Any] = ()) -> go.Figure:
    """Mean customer sentiment per period with its 95 % interval (`trends.SentimentPoint`)."""
    xs = [p.period.isoformat() for p in points]
    ys = [p.mean_sentiment for p in points]
    fig = go.Figure()
    fig.add_scatter(
        name="customer sentiment", x=xs, y=ys, mode="lines+markers",
        error_y={"type": "data", "array": [p.ci95 or 0 for p in points], "visible": True,
                 "color": "#9aa5b1"},
        line={"color": PALETTE[0]},
    )  # fmt: skip
    _annotate(fig, notes, labels=False)
    return _layout(
        fig, height=280, xaxis={"type": "date"}, yaxis={"range": [-1, 1], "title": "mean"}
    )


def agent_benchmark(team: Any) -> go.Figure:
    """Each agent's percentile on every measure (100 = best on the team): a heatmap."""
    measures = list(team.better)
    agents = [c.agent for c in team.agents]
    z = [[c.stats[m].percentile if m in c.stats else None for m in measures] for c in team.agents]
    fig = go.Figure(
        go.Heatmap(
            z=z, x=[m.removesuffix("_s").replace("_", " ") for m in measures], y=agents,
            zmin=0, zmax=100,
            colorscale="RdYlGn", colorbar={"title": "pct"},
            hovertemplate="%{y} · %{x}: %{z:.0f}th percentile<extra></extra>",
        )
    )  # fmt: skip
    return _layout(
        fig,
        height=90 + 30 * len(agents),
        margin={"l": 110, "r": 16, "t": 16, "b": 90},
        yaxis={"autorange": "reversed"},
    )


def lift_chart(lifts: Sequence[Any]) -> go.Figure:
    """Outcome rate with the signal, without it and over all accounts, with 95 % intervals
    (`business_marts.LiftResult`), one group of bars per signal."""
    fig = go.Figure()
    groups = [("with signal", "with_signal"), ("without", "without_signal"),
              ("all accounts", "all_accounts")]  # fmt: skip
    for i, (name, field) in enumerate(groups):
        rates = [getattr(r, field) for r in lifts]
        fig.add_bar(
            name=name,
            x=[r.value for r in lifts],
            y=[g.rate for g in rates],
            error_y={
                "type": "data", "symmetric": False,
                "array": [(g.ci_high - g.rate) if g.rate is not None and g.ci_high is not None
                          else 0 for g in rates],
                "arrayminus": [(g.rate - g.ci_low) if g.rate is not None and g.ci_low is not None
                               else 0 for g in rates],
            },
            marker_color=[PALETTE[4], PALETTE[7], PALETTE[0]][i],
            customdata=[f"{g.outcomes}/{g.accounts}" for g in rates],
            hovertemplate="%{y:.0%} (%{customdata})<extra>" + name + "</extra>",
        )  # fmt: skip
    return _layout(
        fig, height=300, barmode="group", yaxis={"tickformat": ".0%", "title": "churned"}
    )
