"""One meaning per parameter name across the API, written into /openapi.json.

Most parameters mean the same on every route that takes them (`since`, `limit`,
`dimension`, a path's `*_id`), so they are described once here rather than in forty
`Query(description=...)` copies that drift apart. A route's own description always wins;
this fills only what a route left blank, and `BY_ROUTE` says what a name means where it
means something else. tests/service/test_openapi_typed.py fails on any parameter that
ends up without a description, so a new route's new parameter gets one (here or inline).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["BY_ROUTE", "GLOSSARY", "describe_parameters", "install"]

GLOSSARY: dict[str, str] = {
    # filters over conversations
    "since": "Only conversations (or entries) from this day or time on (ISO 8601).",
    "until": "Only conversations (or entries) before this day or time (ISO 8601).",
    "channel": "Only this channel: chat, email, call, meeting, ticket, sms or social.",
    "agent": "Only this agent's conversations (their name as stored).",
    "intent": "Only conversations whose primary intent is this one.",
    "topic": "Only conversations with a keyphrase containing this text.",
    "sentiment": "Only conversations whose overall sentiment is negative, neutral or positive.",
    "tracker": "Only conversations where this tracker matched.",
    "signal": "The business signal, e.g. churn_risk, competitor_evaluation.",
    "scorecard": "The scorecard's name (GET /v1/scorecards lists them).",
    # paging
    "limit": "At most this many rows.",
    "offset": "Skip this many rows first (paging).",
    # analytics
    "dimension": "What to count by: intent, topic, tracker, signal, channel, queue, agent "
    "or cluster.",
    "grain": "Period length: day, week or month.",
    "top": "Keep only the values with the most conversations (this many).",
    "baseline": "Periods before the one examined that form the baseline.",
    "min_count": "Ignore values with fewer conversations than this (on the larger side).",
    "value": "The value of the dimension to compare.",
    "window_days": "Days on each side of the date (or after the signal) to look at.",
    "min_conversations": "Leave out agents with fewer conversations than this.",
    "repeat_days": "A contact from the same account within this many days is a repeat.",
    "examples": "Member statements to include per cluster.",
    # ids in paths and queries
    "conversation_id": "The conversation: its convolens id (cv-...) or its source id.",
    "ref": "The conversation: its convolens id (cv-...) or its source id.",
    "job_id": "The job's id, as POST /v1/conversations or /v1/uploads returned it.",
    "key_id": "The API key's id (the part after 'clk_', before the next '_').",
    "hook_id": "The webhook's id.",
    "delivery_id": "The webhook delivery's id.",
    "cluster_id": "The cluster's id (GET /v1/analytics/clusters).",
    "item_id": "The review item's id.",
    "batch_id": "Only items of this review batch.",
    "run_id": "Only this run (an ingest run's id).",
    "target_id": "Only entries about this target (a conversation, key or webhook id).",
    "name": "The scorecard's name.",
    "version": "The taxonomy version number.",
    "from": "The earlier scorecard version.",
    "to": "The later scorecard version.",
    # review, audit, health
    "component": "Only labels of this component.",
    "label": "Only this label (e.g. intent.primary).",
    "bar": "The quality a label must reach (precision, 0..1) to pass.",
    "min_reviews": "Reviews needed before a label's quality is judged.",
    "source": "Only this source system.",
    "via": "Only actions taken this way: api, dashboard or cli.",
    "format": "json (default) or csv.",
    "content": "Include each definition's full content, not only its name and version.",
}

# (path, name) -> description, where a name means something else on that route.
BY_ROUTE: dict[tuple[str, str], str] = {
    ("/v1/jobs", "status"): "Only jobs in this state: scheduled, running, completed, failed.",
    ("/v1/webhooks/deliveries", "status"): "Only deliveries in this state (e.g. delivered, "
    "failed, pending).",
    ("/v1/analytics/agents", "kind"): "Only human agents (human) or only bots (ai).",
    ("/v1/analytics/lift", "outcome"): "The account outcome to measure, e.g. churn.",
    ("/v1/audit", "outcome"): "Only entries with this outcome (e.g. ok, denied, error).",
    ("/v1/data-health", "limit"): "At most this many ingest runs.",
}


def describe_parameters(spec: dict[str, Any]) -> int:
    """Fill blank parameter descriptions in an OpenAPI document; returns how many."""
    filled = 0
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("description"):
                    continue
                name = parameter.get("name", "")
                text = BY_ROUTE.get((path, name)) or GLOSSARY.get(name)
                if text:
                    parameter["description"] = text
                    filled += 1
    return filled


def install(app: FastAPI) -> None:
    """Describe the app's parameters in its /openapi.json (built once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            describe_parameters(build())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
