"""The dashboard's Data health page: label drift (the PSI series per component, this
window's figures) and intake health (recent findings, each source's expected fields and
fill rates, and its runs' volumes).

Same data and scoping as `/v1/drift` and `/v1/data-health`: admins, analysts and viewers
(aggregates; viewers see no per-value distribution), not agents.
"""

from __future__ import annotations

from typing import Annotated, Any

import plotly.graph_objects as go
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from convolens.dashboard.charts import PALETTE
from convolens.dashboard.routes import PREFIX, Who, _PageRoute, render
from convolens.dashboard.session import require_page
from convolens.health import drift, store
from convolens.service.auth import Principal
from convolens.service.state import Db
from convolens.store.warehouse import Warehouse

__all__ = ["data_health_page", "router"]

router = APIRouter(prefix=PREFIX, route_class=_PageRoute, include_in_schema=False)


def _layout(fig: go.Figure, height: int = 300) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 40, "r": 16, "t": 28, "b": 36},
        font={"family": "system-ui, sans-serif", "size": 12},
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


def drift_chart(report: drift.DriftReport) -> go.Figure:
    """PSI per component over the series' windows, with the threshold as a dashed line."""
    fig = go.Figure()
    names = sorted({p.component for p in report.series})
    for i, name in enumerate(names):
        points = [p for p in report.series if p.component == name]
        fig.add_trace(
            go.Scatter(
                x=[str(p.until) for p in points],
                y=[p.psi for p in points],
                name=name,
                mode="lines+markers",
                line={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    fig.add_hline(
        y=report.settings.psi_threshold,
        line={"dash": "dash", "color": "#d9534f"},
        annotation_text=f"drift > {report.settings.psi_threshold:g}",
    )
    fig.update_yaxes(title="PSI vs the reference window", rangemode="tozero")
    fig.update_layout(showlegend=True)  # one component is still named
    fig.update_xaxes(title="last day of the recent window")
    return _layout(fig)


def volume_chart(sources: list[store.SourceHealth]) -> go.Figure:
    fig = go.Figure()
    for i, source in enumerate(sources):
        fig.add_trace(
            go.Bar(
                x=[v.created_at.strftime("%Y-%m-%d %H:%M:%S") for v in source.volumes],
                y=[v.records for v in source.volumes],
                name=source.source,
                marker={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    fig.update_yaxes(title="records per ingest run")
    return _layout(fig, 260)


def data_health_page(
    db: Warehouse, principal: Principal, recent_days: int, reference_days: int
) -> dict[str, Any]:
    settings = drift.DriftSettings(recent_days=recent_days, reference_days=reference_days)
    report = drift.drift_report(db, settings)
    if not principal.reads_text:
        for component in report.components:
            component.distribution = []
    sources = store.source_health(db)
    return {
        "report": report,
        "findings": store.list_findings(db, limit=200),
        "sources": sources,
        "figures": {"drift": drift_chart(report), "volume": volume_chart(sources)},
    }


@router.get("/data-health", response_class=HTMLResponse)
def data_health(
    request: Request,
    db: Db,
    who: Who,
    recent_days: Annotated[int, Query(ge=1, le=366)] = 7,
    reference_days: Annotated[int, Query(ge=1, le=3660)] = 28,
) -> HTMLResponse:
    require_page(who, "data_health")
    return render(
        "data_health.html", request, who, active="data_health",
        **data_health_page(db, who, recent_days, reference_days),
    )  # fmt: skip
