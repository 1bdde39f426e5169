"""Typed responses of the convolens REST API, for the Python SDK (`convolens.client`).

Why a separate set of models: the service's own models live in modules that import
FastAPI and DuckDB (routes, auth, the job queue), and the SDK must work where only httpx
and pydantic are installed (a CRM integration, a notebook). These mirror the wire format
of `/v1` (docs and `/openapi.json` are the reference); `tests/service/test_client.py`
checks that their fields match the service's models so the two cannot drift apart.

Models accept unknown fields (`extra="allow"`): a newer server adding a field must not
break an older SDK.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "PARTS",
    "Accepted",
    "Aggregates",
    "ApiKey",
    "ApiKeyCreated",
    "ConversationHeader",
    "ConversationIn",
    "ConversationList",
    "ConversationResult",
    "ConversationSummary",
    "ConversationTypeInfo",
    "Definition",
    "Deleted",
    "Evidence",
    "Job",
    "JobStatus",
    "Label",
    "Lineage",
    "MessageIn",
    "Metrics",
    "Participant",
    "ParticipantIn",
    "StructuredSummary",
    "SummaryItem",
    "Utterance",
    "Webhook",
    "WebhookCreated",
    "Word",
]

JobStatus = Literal["scheduled", "running", "completed", "failed"]
# The parts of a conversation's results (GET /v1/conversations/{id}/{part}).
PARTS: tuple[str, ...] = (
    "type", "sentiment", "intents", "topics", "entities", "questions", "action_items",
    "trackers", "signals", "resolution", "summary", "pii",
)  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- submitting -----------------------------------------------------------------------------
class MessageIn(_Model):
    author: str | None = None
    text: str
    sent_at: str | None = None


class ParticipantIn(_Model):
    id: str
    name: str | None = None
    role: str | None = None
    email: str | None = None


class ConversationIn(_Model):
    """A text conversation (the JSON format of docs/formats.md); extra keys (queue, tags,
    links, meta, ...) pass through to the server."""

    id: str | None = None
    source: str | None = None
    channel: str | None = None
    language: str | None = None
    started_at: str | None = None
    subject: str | None = None
    agent: str | None = None
    participants: list[ParticipantIn] = Field(default_factory=list)
    messages: list[MessageIn] = Field(min_length=1)


class Accepted(_Model):
    """The 202 answer to a submit or upload: the job to wait for and, where known at once,
    the conversation id the results will have (uploads of exports learn theirs in the job)."""

    conversation_id: str | None = None
    conversation_ids: list[str] = Field(default_factory=list)
    job_id: str
    status_url: str


class Job(_Model):
    job_id: str
    kind: str
    status: JobStatus
    conversation_id: str | None = None
    stage: str | None = None
    progress: float | None = None
    attempts: int
    max_attempts: int
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    webhook_url: str | None = None
    created_by: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    run_after: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed")


# -- results --------------------------------------------------------------------------------
class Evidence(_Model):
    """A character span [start, end) of one utterance's (redacted) text."""

    utterance_id: str
    start: int
    end: int


class Lineage(_Model):
    """What produced a label, so it can be trusted and reproduced."""

    component: str | None = None
    component_version: str | None = None
    model_id: str | None = None
    taxonomy_version: str | None = None
    run_id: str | None = None


_LINEAGE_FIELDS = tuple(Lineage.model_fields)


class Label(_Model):
    """One label. The server sends lineage flat beside the label; here it is grouped under
    `lineage` (either shape is accepted)."""

    label: str
    value: Any = None
    confidence: float | None = None
    utterance_id: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    lineage: Lineage = Field(default_factory=Lineage)

    @model_validator(mode="before")
    @classmethod
    def _group_lineage(cls, data: Any) -> Any:
        if isinstance(data, dict) and "lineage" not in data:
            data = dict(data)
            data["lineage"] = {k: data.pop(k) for k in _LINEAGE_FIELDS if k in data}
        return data


class ConversationTypeInfo(_Model):
    """What kind of conversation it is (the `conversation.type` label, read for a person):
    support, sales, meeting, interview or other."""

    type: str = Field(description="support, sales, meeting, interview or other.")
    confidence: float | None = Field(
        default=None, description="The winning type's share of the evidence, 0..1; 1 when set "
        "by configuration."
    )  # fmt: skip
    customer: bool = Field(default=False, description="Someone outside is served (a customer).")
    overridden: bool = Field(
        default=False,
        description="Set per source by configuration (by_source, by_queue, by_tag, by_channel), "
        "not inferred.",
    )
    reasons: list[str] = Field(default_factory=list, description="Why this type.")
    scores: dict[str, float] = Field(default_factory=dict, description="Each type's score.")
    evidence: list[Evidence] = Field(
        default_factory=list, description="The words whose cues counted for this type."
    )


class SummaryItem(_Model):
    """One item of a structured summary field: the sentence (lead-in filler cut), who said
    it, and the span of the utterance it rests on."""

    text: str
    utterance_id: str = Field(description="The utterance it rests on.")
    start: int = Field(description="First character of the span in that utterance.")
    end: int = Field(description="One past the span's last character.")
    speaker: str | None = None
    owner: str | None = Field(default=None, description="Next steps, action items: who.")
    due: str | None = Field(default=None, description="Action items: ISO date, if said.")
    kind: str | None = Field(default=None, description="Action items: commitment or request.")
    status: str | None = Field(default=None, description="Support outcome: the resolution.")
    name: str | None = Field(default=None, description="Competitors: the name.")
    title: str | None = Field(default=None, description="Meeting topics: the topic's words.")
    start_time: float | None = Field(default=None, description="Topics: start, in seconds.")
    end_time: float | None = Field(default=None, description="Topics: end, in seconds.")
    first_turn: int | None = Field(default=None, description="Topics: first utterance (seq).")
    last_turn: int | None = Field(default=None, description="Topics: last utterance (seq).")
    evidence: list[Evidence] = Field(
        default_factory=list, description="The span(s) it rests on (utterance_id, start, end)."
    )

    @model_validator(mode="before")
    @classmethod
    def _own_span(cls, data: Any) -> Any:
        # Stored items carry their span flat; the evidence list names it like a label's.
        if isinstance(data, dict) and not data.get("evidence") and "utterance_id" in data:
            data = dict(data)
            data["evidence"] = [{k: data.get(k) for k in ("utterance_id", "start", "end")}]
        return data


class StructuredSummary(_Model):
    """The summary a person would write for this type of conversation (the
    `summary.extractive` label, read for a person): an overview line and named fields."""

    type: str = Field(description="The conversation type the fields are for.")
    overview: str | None = Field(default=None, description="A short third-person line.")
    fields: dict[str, list[SummaryItem]] = Field(
        default_factory=dict,
        description="support: reason, actions_taken, outcome, next_steps; sales: needs, "
        "objections, competitors, next_steps, commitments; meeting: topics, decisions, "
        "action_items, open_questions; interview: questions, key_points, topics; other: "
        "key_points, action_items. An empty list: nothing to rest it on.",
    )


class Participant(_Model):
    participant_id: str
    name: str | None = None
    role: str | None = None
    email: str | None = None
    external_ids: Any = None


class ConversationHeader(_Model):
    """The current version's header (all the warehouse's conversation columns)."""

    conversation_id: str
    version: int | None = None
    channel: str
    source_id: str | None = None
    source_system: str | None = None
    started_at: str | None = None
    subject: str | None = None
    language: str | None = None
    queue: str | None = None
    agent: str | None = None
    utterance_count: int = 0
    participants: list[Participant] = Field(default_factory=list)
    meta: Any = None


class Word(_Model):
    text: str
    start_s: float
    end_s: float
    confidence: float | None = None


class Utterance(_Model):
    utterance_id: str
    seq: int
    participant_id: str
    text: str
    start_s: float | None = None
    end_s: float | None = None
    sent_at: str | None = None
    channel_index: int | None = None
    internal: bool = False
    words: list[Word] | None = None  # only with words=True


class Metrics(_Model):
    """Conversation metrics (one row) and per-participant metrics, as the warehouse has them."""

    conversation: dict[str, Any] | None = None
    participants: list[dict[str, Any]] = Field(default_factory=list)


class ConversationResult(_Model):
    """Everything about one conversation: header, utterances, metrics, and each requested
    part as a list of labels (None for a part that was not asked for)."""

    header: ConversationHeader = Field(validation_alias=AliasChoices("conversation", "header"))
    utterances: list[Utterance] = Field(default_factory=list)
    metrics: Metrics = Field(default_factory=Metrics)
    type: list[Label] | None = None
    sentiment: list[Label] | None = None
    intents: list[Label] | None = None
    topics: list[Label] | None = None
    entities: list[Label] | None = None
    questions: list[Label] | None = None
    action_items: list[Label] | None = None
    trackers: list[Label] | None = None
    signals: list[Label] | None = None
    resolution: list[Label] | None = None
    summary: list[Label] | None = None
    pii: list[Label] | None = None
    # Read from the `type` and `summary` parts (present when those parts were asked for).
    conversation_type: ConversationTypeInfo | None = None
    structured_summary: StructuredSummary | None = None

    @property
    def conversation_id(self) -> str:
        return self.header.conversation_id

    def parts(self) -> dict[str, list[Label]]:
        """The parts that were returned, by name."""
        return {name: rows for name in PARTS if (rows := getattr(self, name)) is not None}

    def labels(self, name: str) -> list[Label]:
        """Every returned label called `name` (e.g. "intent.primary"), whatever its part."""
        return [row for rows in self.parts().values() for row in rows if row.label == name]

    @property
    def primary_intent(self) -> str | None:
        found = self.labels("intent.primary")
        return found[0].value.get("intent") if found and isinstance(found[0].value, dict) else None

    def text(self, evidence: Evidence) -> str:
        """The text an evidence span points at."""
        for utterance in self.utterances:
            if utterance.utterance_id == evidence.utterance_id:
                return utterance.text[evidence.start : evidence.end]
        raise KeyError(f"no utterance {evidence.utterance_id!r} in this result")


class ConversationSummary(_Model):
    conversation_id: str
    source_id: str | None = None
    channel: str
    started_at: str | None = None
    subject: str | None = None
    agent: str | None = None
    utterance_count: int
    primary_intent: str | None = None
    sentiment: str | None = None
    conversation_type: str | None = None


class ConversationList(_Model):
    total: int
    items: list[ConversationSummary]


class Aggregates(_Model):
    conversations: int
    utterances: int
    by_channel: dict[str, int]
    primary_intents: dict[str, int]
    sentiment: dict[str, int]
    signals: dict[str, int]
    trackers: dict[str, int]
    mean_sentiment: float | None = None


class Deleted(_Model):
    conversation_id: str
    rows: dict[str, int]


# -- administration -------------------------------------------------------------------------
class ApiKey(_Model):
    key_id: str
    name: str
    role: Literal["admin", "analyst", "agent", "viewer"]
    agent: str | None = None
    created_at: str
    revoked: bool = False
    source: Literal["api", "generated", "environment"] = "api"
    # A key from CONVOLENS_ADMIN_KEY while the server runs without that variable.
    disabled: bool = False


class ApiKeyCreated(ApiKey):
    key: str  # shown once: only its hash is stored


class Webhook(_Model):
    hook_id: str
    url: str
    events: list[str]
    rule: dict[str, Any] | None = None
    payload_format: Literal["json", "slack"]
    active: bool
    created_by: str | None = None
    created_at: datetime


class WebhookCreated(Webhook):
    secret: str  # shown once: receivers verify X-Convolens-Signature with it


class Definition(_Model):
    kind: Literal["taxonomy", "trackers"]
    name: str
    version: int
    active: bool
    content_sha256: str
    created_at: str
    summary: dict[str, Any] = Field(default_factory=dict)
    content: Any = None
