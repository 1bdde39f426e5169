"""The canonical conversation model every adapter produces and every component reads.

Pydantic models because this is the boundary between source files, the warehouse and the
API; see docs/data-model.md for the field-by-field contract.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BusinessLinks",
    "Channel",
    "Conversation",
    "Participant",
    "Role",
    "SourceInfo",
    "Utterance",
    "Word",
    "canonical_conversation_id",
    "conversation_id_for",
]


class Channel(StrEnum):
    chat = "chat"
    email = "email"
    ticket = "ticket"
    call = "call"
    meeting = "meeting"
    video = "video"


class Role(StrEnum):
    agent = "agent"
    customer = "customer"
    bot = "bot"
    unknown = "unknown"


class _Model(BaseModel):
    # Unknown keys are an error at the boundary: a typo in a mapping must not vanish silently.
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


def _as_utc(value: datetime | None) -> datetime | None:
    # Sources mix naive and zoned timestamps; naive ones are taken as UTC so that
    # response times between them are always computable.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Word(_Model):
    """One recognised or tokenised word with its timing, in seconds from conversation start."""

    text: str
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    confidence: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Word:
        if self.end < self.start:
            raise ValueError(
                f"word {self.text!r} ends ({self.end}) before it starts ({self.start})"
            )
        return self


class Participant(_Model):
    """Someone (or something) who speaks or writes in a conversation."""

    participant_id: str = Field(min_length=1, description="Unique within the conversation.")
    name: str | None = None
    role: Role = Role.unknown
    email: str | None = None
    external_ids: dict[str, str] = Field(default_factory=dict)


class Utterance(_Model):
    """One message or one speech turn.

    Timed sources (calls, transcripts) set `start`/`end` in seconds from the start of the
    conversation; written sources set `sent_at`. Both may be present.
    """

    participant_id: str
    text: str
    start: float | None = Field(default=None, ge=0)
    end: float | None = Field(default=None, ge=0)
    sent_at: datetime | None = None
    channel_index: int | None = Field(default=None, ge=0)
    internal: bool = Field(default=False, description="Internal note, not seen by the customer.")
    words: list[Word] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    # Timing rules are checked by `Conversation` for all its utterances in one loop: a
    # validator per utterance costs more than the rest of validation at 100k messages.
    def timing_error(self) -> str | None:
        if (self.start is None) != (self.end is None):
            return "needs both 'start' and 'end', or neither"
        if self.start is not None and self.end is not None and self.end < self.start:
            return f"ends ({self.end}) before it starts ({self.start})"
        return None

    @property
    def is_timed(self) -> bool:
        return self.start is not None


class SourceInfo(_Model):
    """Where a conversation came from and how the source system filed it."""

    system: str = Field(min_length=1, description="Source system, e.g. 'zendesk', 'email', 'csv'.")
    source_id: str | None = Field(default=None, description="The source system's own id.")
    platform: str | None = None
    queue: str | None = None
    agent: str | None = None
    campaign: str | None = None
    tags: list[str] = Field(default_factory=list)


class BusinessLinks(_Model):
    """Ids that join a conversation to business records (CRM, orders, campaigns)."""

    account_id: str | None = None
    user_id: str | None = None
    order_id: str | None = None
    ticket_id: str | None = None
    campaign_id: str | None = None


class Conversation(_Model):
    """A normalised conversation: participants plus their utterances in time order."""

    conversation_id: str = Field(default="", description="Canonical id; derived if left empty.")
    channel: Channel
    source: SourceInfo
    language: str | None = None
    started_at: datetime | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    subject: str | None = None
    links: BusinessLinks = Field(default_factory=BusinessLinks)
    participants: list[Participant]
    utterances: list[Utterance]
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Conversation:
        known = {p.participant_id for p in self.participants}
        if len(known) != len(self.participants):
            raise ValueError("participant ids must be unique within a conversation")
        for index, utterance in enumerate(self.utterances):
            if utterance.participant_id not in known:
                raise ValueError(
                    f"utterance {index} names participant {utterance.participant_id!r}, "
                    f"who is not among the participants {sorted(known)}"
                )
            problem = utterance.timing_error()
            if problem:
                raise ValueError(f"utterance {index} {problem}")
            if utterance.sent_at is not None and utterance.sent_at.tzinfo is not UTC:
                utterance.sent_at = _as_utc(utterance.sent_at)
        self.started_at = _as_utc(self.started_at)
        if not self.conversation_id:
            self.conversation_id = canonical_conversation_id(self)
        return self

    def content_hash(self) -> str:
        """Hash of everything except the id: equal hashes mean re-ingest changes nothing.

        The JSON is pydantic's own serialisation: fields in model order, dict keys in
        source order, so the same source always hashes the same.
        """
        payload = self.model_dump_json(exclude={"conversation_id"})
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def is_timed(self) -> bool:
        return bool(self.utterances) and all(u.is_timed for u in self.utterances)


def canonical_conversation_id(conversation: Conversation) -> str:
    """Stable id: source system + source id when the source has one, else the content hash.

    The `cv-` prefix and 20 hex characters (80 bits) keep ids short enough to type in
    `convolens show` while making collisions negligible at warehouse scale.
    """
    source = conversation.source
    if source.source_id:
        return conversation_id_for(source.system, source.source_id)
    key = f"content\x1f{conversation.content_hash()}"
    return "cv-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


def conversation_id_for(system: str, source_id: str) -> str:
    """The canonical id of the conversation a source system knows as `source_id` (the service
    tells a client the id of an upload before it is transcribed)."""
    key = f"{system.lower()}\x1f{source_id}"
    return "cv-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
