"""The top of a conversation page: what kind of conversation it is, the overview line, and
the structured summary of that kind, each item linked to the utterance it rests on.

The type and the fields are read by `service.understanding`, as the API reads them; this
module only orders and names the fields for a person and finds each item's anchor on the
page (`u-<seq>`, the transcript's list items).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from convolens.client.models import ConversationTypeInfo, StructuredSummary, SummaryItem
from convolens.service import understanding

__all__ = ["FIELDS", "TYPE_NAMES", "FieldSection", "Located", "TypePanel", "type_panel"]

TYPE_NAMES = {
    "support": "Support conversation",
    "sales": "Sales conversation",
    "meeting": "Meeting",
    "interview": "Interview",
    "other": "Conversation",
}
# Per type, the fields in the order a reader of that kind of record wants them.
FIELDS: dict[str, list[tuple[str, str]]] = {
    "support": [("reason", "Reason for contact"), ("actions_taken", "What was done"),
                ("outcome", "Outcome"), ("next_steps", "Next steps")],
    "sales": [("needs", "Needs"), ("objections", "Objections"), ("competitors", "Competitors"),
              ("next_steps", "Next steps"), ("commitments", "Commitments")],
    "meeting": [("topics", "Topics"), ("decisions", "Decisions"),
                ("action_items", "Action items"), ("open_questions", "Open questions")],
    "interview": [("questions", "Questions asked"), ("key_points", "Key points"),
                  ("topics", "Topics")],
    "other": [("key_points", "Key points"), ("action_items", "Action items")],
}  # fmt: skip


class Located(BaseModel):
    """A summary item with where it is on the page."""

    item: SummaryItem
    anchor: str | None  # `u-<seq>`; None when the utterance is not on the page
    seq: int | None = None
    start_s: float | None = None  # the utterance's start in a timed conversation


class FieldSection(BaseModel):
    name: str
    heading: str
    items: list[Located]


class TypePanel(BaseModel):
    kind: ConversationTypeInfo | None
    name: str
    summary: StructuredSummary | None
    sections: list[FieldSection]
    # The resolution card only where resolution means something (support, untyped).
    shows_resolution: bool


def type_panel(labels: list[dict[str, Any]], utterances: list[dict[str, Any]]) -> TypePanel | None:
    """The panel of a conversation from its labels and its page's utterances; None when it
    has neither a type nor a structured summary (labelled before either existed)."""
    kind = understanding.conversation_type(labels)
    summary = understanding.structured_summary(labels)
    if kind is None and summary is None:
        return None
    where = {u["utterance_id"]: u for u in utterances}
    type_name = kind.type if kind is not None else summary.type if summary is not None else ""
    # The fields of the type the summary was made for, in order; any other it holds after.
    order = FIELDS.get(summary.type, []) if summary is not None else []
    fields = summary.fields if summary is not None else {}
    named = dict(order)
    names = [n for n, _ in order] + [n for n in fields if n not in named]
    sections = []
    for name in names:
        located = []
        for item in fields.get(name, []):
            u = where.get(item.utterance_id)
            if u is None:
                located.append(Located(item=item, anchor=None))
                continue
            located.append(
                Located(item=item, anchor=f"u-{u['seq']}", seq=u["seq"], start_s=u.get("start_s"))
            )
        heading = named.get(name) or name.replace("_", " ").capitalize()
        sections.append(FieldSection(name=name, heading=heading, items=located))
    probe = {"label": "resolution.status", "value": {}}
    return TypePanel(
        kind=kind,
        name=TYPE_NAMES.get(type_name, type_name.capitalize() or "Conversation"),
        summary=summary,
        sections=sections,
        shows_resolution=not understanding.support_only(probe, kind),
    )
