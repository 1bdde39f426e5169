"""A conversation's type and its structured summary, read from the stored labels: the typed
`conversation_type` and `structured_summary` of GET /v1/conversations/{id} and the top of
its dashboard page (one reading for both, so the two never disagree).

Also which stored labels have a meaning for a type: resolution and escalation only where a
customer is served in a support (or untyped) conversation, churn risk never for a prospect
(`support_only`). The components already skip those conversations; the dashboard uses this
to hide stale labels written before a conversation's type was known.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from convolens.client.models import ConversationTypeInfo, StructuredSummary, SummaryItem
from convolens.enrich.resolution import ResolutionComponent
from convolens.enrich.signals import DEFAULT_RULES

__all__ = [
    "TYPE_LABEL",
    "conversation_type",
    "structured_summary",
    "support_only",
]

log = logging.getLogger("convolens.service")

TYPE_LABEL = "conversation.type"
SUMMARY_LABEL = "summary.extractive"
# Reasons `enrich.conversation_type.classify` gives a type set by configuration (labels
# stored before it also said `overridden`).
_CONFIGURED = "configured for "
_RESOLUTION_LABELS = frozenset({"resolution.status", "escalation"})


def _first(rows: Iterable[dict[str, Any]], label: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("label") == label and isinstance(r.get("value"), dict)),
                None)  # fmt: skip


def conversation_type(rows: Iterable[dict[str, Any]]) -> ConversationTypeInfo | None:
    """The type of a conversation from its labels (rows as `results.labels` gives them);
    None when it was never classified."""
    row = _first(rows, TYPE_LABEL)
    if row is None:
        return None
    value = row["value"]
    reasons = [str(r) for r in value.get("reasons") or []]
    try:
        return ConversationTypeInfo(
            type=str(value.get("type") or "other"),
            confidence=row.get("confidence"),
            customer=bool(value.get("customer")),
            overridden=bool(value.get("overridden"))
            or any(r.startswith(_CONFIGURED) for r in reasons),
            reasons=reasons,
            scores=value.get("scores") or {},
            evidence=row.get("evidence") or [],
        )
    except ValidationError as exc:  # a label of another shape: no type, never a 500
        log.warning("conversation.type label not readable: %s", exc.errors()[0]["msg"])
        return None


def structured_summary(rows: Iterable[dict[str, Any]]) -> StructuredSummary | None:
    """The structured summary of a conversation (`summary.extractive`); None without one.
    An item that does not read (no text or span) is left out rather than failing the page."""
    row = _first(rows, SUMMARY_LABEL)
    if row is None:
        return None
    value = row["value"]
    fields: dict[str, list[SummaryItem]] = {}
    for name, items in (value.get("fields") or {}).items():
        fields[str(name)] = []
        for item in items if isinstance(items, list) else []:
            try:
                fields[str(name)].append(SummaryItem.model_validate(item))
            except ValidationError:
                continue
    overview = value.get("overview") or value.get("text")
    return StructuredSummary(
        type=str(value.get("type") or "other"),
        overview=str(overview) if overview else None,
        fields=fields,
    )


def support_only(row: dict[str, Any], kind: ConversationTypeInfo | None) -> bool:
    """Whether a stored label has no meaning for a conversation of this type: resolution
    and escalation outside support (or without a customer), churn risk for a prospect."""
    if kind is None:
        return False
    label = row.get("label")
    if label in _RESOLUTION_LABELS:
        # The same test the resolution component makes before it labels anything.
        types = ResolutionComponent.applies_to
        needs_customer = ResolutionComponent.needs_customer
        return (types is not None and kind.type not in types) or (
            needs_customer and not kind.customer
        )
    value = row.get("value")
    if label == "signal" and isinstance(value, dict) and value.get("signal") == "churn_risk":
        churn_types = DEFAULT_RULES["churn_risk"].types  # a prospect cannot churn
        return churn_types is not None and kind.type not in churn_types
    return False
