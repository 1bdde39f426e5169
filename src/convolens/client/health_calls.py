"""The SDK's drift and data-health calls (GET /v1/drift, POST /v1/drift/check,
GET /v1/data-health, GET /v1/data-health/sources), shared by `Client` and `AsyncClient`."""

from __future__ import annotations

from datetime import date
from typing import Any

from convolens.client.calls import _Call, _model
from convolens.health.models import DriftReport, HealthFinding, SourceHealth

__all__ = ["data_health_call", "data_health_sources_call", "drift_call"]


def drift_call(
    *,
    check: bool = False,
    recent_days: int | None = None,
    reference_days: int | None = None,
    until: date | str | None = None,
    component: list[str] | None = None,
    psi_threshold: float | None = None,
    series_points: int | None = None,
    embeddings: bool | None = None,
) -> _Call[DriftReport]:
    params: dict[str, Any] = {
        "recent_days": recent_days,
        "reference_days": reference_days,
        "until": str(until) if until is not None else None,
        "component": component,
        "psi_threshold": psi_threshold,
        "series_points": series_points,
        "embeddings": embeddings,
    }
    method, path = ("POST", "/v1/drift/check") if check else ("GET", "/v1/drift")
    return _Call(method, path, _model(DriftReport), params=params)


def data_health_call(
    run_id: str | None = None,
    source: str | None = None,
    check: str | None = None,
    limit: int | None = None,
) -> _Call[list[HealthFinding]]:
    params = {"run_id": run_id, "source": source, "check": check, "limit": limit}
    return _Call("GET", "/v1/data-health", _model(list[HealthFinding]), params=params)


def data_health_sources_call() -> _Call[list[SourceHealth]]:
    return _Call("GET", "/v1/data-health/sources", _model(list[SourceHealth]))
