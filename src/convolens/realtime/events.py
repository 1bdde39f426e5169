"""Every message of the streaming protocol, as pydantic models (see docs/streaming.md).

Client messages arrive as JSON text frames (`start`, `message`, `stop`) or as binary audio
frames; `parse_client_message` validates a decoded text frame. Server events are what the
engine emits; each carries `type`, `seq` (1, 2, ... within a session), `t` (seconds of
stream time the event refers to, see docs/streaming.md "Timing") and `emitted_at` (UTC
wall clock when the engine produced it). Unknown keys in client messages are errors, so
a typo ("sample_rte") is reported instead of silently falling back to a default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from convolens.enrich.trackers import TrackerDefinition
from convolens.model import Role

__all__ = [
    "INSIGHTS",
    "ActionItemEvent",
    "AlertEvent",
    "ClientMessage",
    "ErrorEvent",
    "QuestionEvent",
    "RevisedUtterance",
    "SentimentEvent",
    "ServerEvent",
    "SpeakerRevisionEvent",
    "SpeakerSpec",
    "StartMessage",
    "StartedEvent",
    "StopMessage",
    "StoppedEvent",
    "StoredEvent",
    "TextMessage",
    "TopicsEvent",
    "TrackerEvent",
    "TranscriptFinalEvent",
    "TranscriptInterimEvent",
    "WordTiming",
    "parse_client_message",
]

INSIGHTS = ("sentiment", "questions", "action_items", "trackers", "topics", "alerts")
Insight = Literal["sentiment", "questions", "action_items", "trackers", "topics", "alerts"]


class _Client(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpeakerSpec(_Client):
    """A participant: who speaks on an audio channel, or writes text messages."""

    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.unknown
    channel: int | None = Field(default=None, ge=0, le=7)


class StartMessage(_Client):
    """Opens the session; audio and text messages are refused before it."""

    type: Literal["start"]
    language: str | None = Field(default=None, description="None: English-only models say en")
    sample_rate: int = Field(default=16000, ge=8000, le=48000)
    encoding: Literal["pcm16"] = "pcm16"
    channels: int = Field(default=1, ge=1, le=2, description="2: one speaker per channel")
    speakers: list[SpeakerSpec] = Field(default_factory=list)
    trackers: list[TrackerDefinition] | None = Field(
        default=None, description="None: the default trackers"
    )
    insights: list[Insight] | None = Field(default=None, description="None: all of them")
    source_id: str | None = Field(default=None, max_length=500)
    channel_kind: Literal["call", "chat", "meeting"] = "call"
    # Filed on the stored conversation, as a batch source's fields are (filters, analytics).
    agent: str | None = Field(default=None, max_length=200, description="None: the agent speaker")
    queue: str | None = Field(default=None, max_length=200)
    account_id: str | None = Field(default=None, max_length=200)
    # Mono audio without a declared channel speaker: separate the voices as the call goes
    # (realtime/live_diarize.py). None: the server's setting (on for `convolens serve`).
    diarize: bool | None = None
    max_speakers: int | None = Field(
        default=None, ge=1, le=8, description="None: 2 for calls, estimated (<= 8) otherwise"
    )

    @model_validator(mode="after")
    def _check(self) -> StartMessage:
        names = [s.name for s in self.speakers]
        if len(set(names)) != len(names):
            raise ValueError("speaker names must be unique")
        channels = [s.channel for s in self.speakers if s.channel is not None]
        if len(set(channels)) != len(channels):
            raise ValueError("each audio channel carries one speaker")
        if any(c >= self.channels for c in channels):
            raise ValueError(f"speaker channels must be below channels={self.channels}")
        return self


class TextMessage(_Client):
    """A written message (chat) or a typed note; skips ASR and goes straight to insights."""

    type: Literal["message"]
    speaker: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20000)
    sent_at: datetime | None = None


class StopMessage(_Client):
    type: Literal["stop"]


ClientMessage = Annotated[StartMessage | TextMessage | StopMessage, Field(discriminator="type")]
_CLIENT = TypeAdapter(ClientMessage)


def parse_client_message(data: Any) -> StartMessage | TextMessage | StopMessage:
    """Validate a decoded JSON text frame; raises pydantic's ValidationError."""
    return _CLIENT.validate_python(data)


# --- server events -------------------------------------------------------------------


class ServerEvent(BaseModel):
    """Fields every event has; the engine fills `seq` and `emitted_at` when it emits."""

    type: str
    seq: int = 0
    t: float = Field(default=0.0, description="Seconds of stream time it refers to.")
    emitted_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class _AboutUtterance(ServerEvent):
    utterance_id: str
    participant_id: str
    speaker: str | None = None
    role: Role = Role.unknown
    lag_ms: float | None = Field(
        default=None,
        description="Wall ms from the arrival of the utterance's last audio (or its text) "
        "to this event.",
    )


class StartedEvent(ServerEvent):
    type: Literal["started"] = "started"
    session_id: str
    participants: list[dict[str, Any]]
    sample_rate: int
    channels: int
    language: str | None
    insights: list[str]
    asr_model: str | None
    endpoint_silence_ms: int


class TranscriptInterimEvent(ServerEvent):
    type: Literal["transcript.interim"] = "transcript.interim"
    utterance_id: str
    participant_id: str
    speaker: str | None = None
    role: Role = Role.unknown
    channel: int | None = None
    text: str
    start: float


class WordTiming(BaseModel):
    text: str
    start: float
    end: float
    confidence: float | None = None


class TranscriptFinalEvent(_AboutUtterance):
    type: Literal["transcript.final"] = "transcript.final"
    channel: int | None = None
    source: Literal["audio", "text"]
    text: str
    start: float | None = Field(description="First word's start, seconds of stream audio.")
    end: float | None = Field(description="Last word's end: measure latency from here.")
    words: list[WordTiming] = Field(default_factory=list)
    sent_at: datetime | None = None
    asr_ms: float | None = Field(default=None, description="Time of the decode that gave it.")
    speculative: bool = Field(
        default=False, description="Decoded before the endpoint, while the silence ran on."
    )


class SentimentEvent(_AboutUtterance):
    type: Literal["sentiment"] = "sentiment"
    label: Literal["negative", "neutral", "positive"]
    score: float = Field(ge=-1, le=1, description="P(positive) - P(negative)")
    probabilities: dict[str, float]


class QuestionEvent(_AboutUtterance):
    type: Literal["question"] = "question"
    text: str
    kind: str
    start_char: int
    end_char: int
    confidence: float | None = None


class ActionItemEvent(_AboutUtterance):
    type: Literal["action_item"] = "action_item"
    kind: Literal["commitment", "request"]
    text: str
    owner: str | None
    owner_role: str | None
    requested_by: str | None = None
    due: str | None = Field(default=None, description="ISO date, when a due phrase resolves")
    due_text: str | None = None
    follow_up: bool = False
    start_char: int
    end_char: int
    confidence: float | None = None


class TrackerEvent(_AboutUtterance):
    type: Literal["tracker"] = "tracker"
    tracker: str
    how: Literal["exact", "fuzzy", "semantic"]
    text: str = Field(description="The matched text (the whole utterance when semantic).")
    phrase: str | None = None
    example: str | None = None
    start_char: int
    end_char: int
    confidence: float | None = None


class TopicPhrase(BaseModel):
    phrase: str
    score: float
    count: int


class TopicsEvent(ServerEvent):
    type: Literal["topics"] = "topics"
    phrases: list[TopicPhrase]
    utterances: int = Field(description="Utterances the phrases were drawn from.")


class AlertEvidence(BaseModel):
    utterance_id: str
    start_char: int | None = None
    end_char: int | None = None
    text: str | None = None


class AlertEvent(ServerEvent):
    type: Literal["alert"] = "alert"
    rule: Literal["negative_sentiment_streak", "churn_risk", "escalation", "script_adherence"]
    severity: Literal["low", "medium", "high"]
    message: str
    evidence: list[AlertEvidence]
    details: dict[str, Any] = Field(default_factory=dict)
    lag_ms: float | None = None


class RevisedUtterance(BaseModel):
    utterance_id: str
    participant_id: str
    speaker: str | None
    role: Role = Role.unknown
    previous_participant_id: str
    previous_speaker: str | None


class SpeakerRevisionEvent(ServerEvent):
    """Earlier finals of a diarized mono stream now belong to another speaker
    ('reclustered': more speech moved them), or their speaker was named by an enrolled
    voice ('identified'). The stored conversation has the revised labels; insight events
    already sent are not repeated."""

    type: Literal["speaker.revision"] = "speaker.revision"
    reason: Literal["reclustered", "identified"]
    utterances: list[RevisedUtterance]
    participants: list[dict[str, Any]] = Field(description="Every participant, as revised.")


class ErrorEvent(ServerEvent):
    type: Literal["error"] = "error"
    code: str
    message: str
    fatal: bool = Field(default=False, description="False: the session goes on.")
    detail: list[dict[str, Any]] | None = None


class StoredEvent(ServerEvent):
    """Sent by the server after `stopped`: the conversation is saved and its full pipeline
    (metrics and every enrichment component) runs as a job."""

    type: Literal["stored"] = "stored"
    session_id: str
    conversation_id: str
    job_id: str
    status_url: str


class StoppedEvent(ServerEvent):
    type: Literal["stopped"] = "stopped"
    session_id: str
    conversation_id: str
    duration_s: float
    utterances: int
    words: int
    by_participant: dict[str, int]
    events: dict[str, int]
    alerts: dict[str, int]
