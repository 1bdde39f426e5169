"""The wire shapes of a conversation's results, as /v1/conversations/{id}[/...] sends them.

These are the API's response models: they type the OpenAPI schema (so a client generator
or a reader of /docs sees fields, not "object") and FastAPI checks every response against
them. The SDK's models (client/models.py) read the same JSON and regroup it (lineage under
`lineage`, the header as `header`); these keep the wire's flat shape. Open objects
(`extra="allow"`): the warehouse may add a column or a label field without a release of
the schema, and a client must ignore what it does not know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from convolens.client.models import ConversationTypeInfo, StructuredSummary

__all__ = [
    "ConversationOut",
    "EvidenceSpan",
    "HeaderOut",
    "LabelOut",
    "MetricsOut",
    "ParticipantOut",
    "UtteranceOut",
    "WordOut",
]


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# A time as the warehouse gives it, written as ISO 8601 text (kept exactly as sent).
IsoTime = Annotated[str, BeforeValidator(_iso)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class EvidenceSpan(_Open):
    """The words a label rests on: characters [start, end) of one utterance's stored
    (redacted) text."""

    utterance_id: str = Field(description="The utterance, '<conversation_id>:<seq>'.")
    start: int = Field(description="First character (0-based).", ge=0)
    end: int = Field(description="One past the last character.", ge=0)


_LABEL_EXAMPLE: dict[str, JsonValue] = {
    "label": "tracker.match",
    "value": {"tracker": "churn_risk", "match": "exact", "phrase": "won't be renewing",
              "text": "won't be renewing"},
    "confidence": 1.0,
    "utterance_id": "cv-7a7cfeadef9138b29bc8:0",
    "evidence": [{"utterance_id": "cv-7a7cfeadef9138b29bc8:0", "start": 75, "end": 92}],
    "component": "trackers",
    "component_version": "1",
    "model_id": "all-MiniLM-L6-v2",
    "taxonomy_version": "0ebe97d1c2a4",
    "run_id": "enrich-20261206T144700-1a2b3c",
}  # fmt: skip


class LabelOut(_Open):
    """One label with its evidence and lineage (what produced it)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_LABEL_EXAMPLE]})

    label: str = Field(
        description="The label's name, e.g. conversation.type, sentiment.conversation, "
        "intent.primary, tracker.match, signal, question, action_item, summary.extractive."
    )
    value: Any = Field(
        default=None, description="The label's content (an object whose fields depend on it)."
    )
    confidence: float | None = Field(default=None, description="0..1 where the component has one.")
    utterance_id: str | None = Field(
        default=None, description="The utterance it labels; null for conversation-level labels."
    )
    evidence: list[EvidenceSpan] = Field(
        default_factory=list, description="The spans of text the label rests on."
    )
    component: str | None = Field(default=None, description="The component that wrote it.")
    component_version: str | None = Field(default=None, description="That component's version.")
    model_id: str | None = Field(default=None, description="The model it used, if any.")
    taxonomy_version: str | None = Field(
        default=None, description="Hash of the taxonomy/tracker definitions it used."
    )
    run_id: str | None = Field(default=None, description="The enrichment run that wrote it.")


class ParticipantOut(_Open):
    participant_id: str = Field(description="Id within the conversation.")
    name: str | None = Field(default=None, description="Display name (customers' redacted).")
    role: str | None = Field(default=None, description="agent, customer, bot or unknown.")
    email: str | None = Field(default=None, description="Email (customers' redacted).")
    external_ids: Any = Field(default=None, description="Ids in other systems, if given.")


class HeaderOut(_Open):
    """The current version's header: every column of the warehouse's conversation row."""

    conversation_id: str = Field(description="convolens id, 'cv-' + 20 hex digits.")
    version: int | None = Field(default=None, description="1 for the first ingest, +1 per change.")
    channel: str = Field(description="chat, email, call, meeting, ticket, sms or social.")
    source_system: str | None = Field(default=None, description="Where it came from.")
    source_id: str | None = Field(default=None, description="Its id there.")
    started_at: IsoTime | None = Field(default=None, description="ISO 8601 start.")
    subject: str | None = Field(default=None, description="Subject or title.")
    language: str | None = Field(default=None, description="Language the source declared.")
    queue: str | None = Field(default=None, description="Queue or team.")
    agent: str | None = Field(default=None, description="Assigned agent.")
    utterance_count: int = Field(default=0, description="Messages or speech turns.")
    participants: list[ParticipantOut] = Field(default_factory=list)
    meta: Any = Field(default=None, description="Source fields kept as given.")


class WordOut(_Open):
    text: str
    start_s: float = Field(description="Seconds from the start of the recording.")
    end_s: float
    confidence: float | None = None


class UtteranceOut(_Open):
    """A message or speech turn (text as stored: redacted at intake)."""

    utterance_id: str = Field(description="'<conversation_id>:<seq>'.")
    seq: int = Field(description="Position in the conversation, from 0.")
    participant_id: str = Field(description="Who said or wrote it.")
    text: str
    start_s: float | None = Field(default=None, description="Speech start in seconds (calls).")
    end_s: float | None = Field(default=None, description="Speech end in seconds (calls).")
    sent_at: IsoTime | None = Field(default=None, description="When written (ISO 8601).")
    channel_index: int | None = Field(default=None, description="Audio channel, if separate.")
    internal: bool = Field(default=False, description="An internal note, not sent.")
    words: list[WordOut] | None = Field(default=None, description="Only with words=true.")


class MetricsOut(_Open):
    """Conversation dynamics (docs/metrics.md): one conversation row, one per participant."""

    conversation: dict[str, Any] | None = Field(
        default=None, description="talk, silence, overlap, response times, exchanges, ..."
    )
    participants: list[dict[str, Any]] = Field(
        default_factory=list, description="Per participant: talk share, monologues, ..."
    )


_PART = "Labels of this part (present when the part was asked for; all by default)."


class ConversationOut(_Open):
    """Everything about one conversation: header, utterances, metrics and each part."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "conversation": {"conversation_id": "cv-7a7cfeadef9138b29bc8", "version": 1,
                                     "channel": "chat", "source_system": "intercom",
                                     "source_id": "chat-20261106-0010",
                                     "started_at": "2026-11-06T21:34:00+00:00",
                                     "agent": "Sam Patel", "utterance_count": 19,
                                     "participants": [{"participant_id": "a1",
                                                       "name": "Sam Patel", "role": "agent"}]},
                    "utterances": [{"utterance_id": "cv-7a7cfeadef9138b29bc8:0", "seq": 0,
                                    "participant_id": "c1",
                                    "text": "Our renewal is Nov 20 and we won't be renewing.",
                                    "sent_at": "2026-11-06T21:34:08+00:00", "internal": False}],
                    "metrics": {"conversation": {"message_count": 19, "exchanges": 16},
                                "participants": []},
                    "trackers": [_LABEL_EXAMPLE],
                }
            ]
        },
    )  # fmt: skip

    conversation: HeaderOut = Field(description="The header of the current version.")
    utterances: list[UtteranceOut] = Field(default_factory=list)
    metrics: MetricsOut = Field(default_factory=MetricsOut)
    type: list[LabelOut] | None = Field(default=None, description=_PART)
    sentiment: list[LabelOut] | None = Field(default=None, description=_PART)
    intents: list[LabelOut] | None = Field(default=None, description=_PART)
    topics: list[LabelOut] | None = Field(default=None, description=_PART)
    entities: list[LabelOut] | None = Field(default=None, description=_PART)
    questions: list[LabelOut] | None = Field(default=None, description=_PART)
    action_items: list[LabelOut] | None = Field(default=None, description=_PART)
    trackers: list[LabelOut] | None = Field(default=None, description=_PART)
    signals: list[LabelOut] | None = Field(default=None, description=_PART)
    resolution: list[LabelOut] | None = Field(default=None, description=_PART)
    summary: list[LabelOut] | None = Field(default=None, description=_PART)
    pii: list[LabelOut] | None = Field(default=None, description=_PART)
    conversation_type: ConversationTypeInfo | None = Field(
        default=None,
        description="The `type` part read for a person: type, confidence, whether set by "
        "configuration, evidence (present with the type part; null if never classified).",
    )
    structured_summary: StructuredSummary | None = Field(
        default=None,
        description="The `summary` part read for a person: the overview line and the fields "
        "of this type of conversation, each item with the span it rests on (present with the "
        "summary part; null without a summary).",
    )
