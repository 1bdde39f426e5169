"""The canonical conversation model every adapter produces and every component reads.

Pydantic models because this is the boundary between source files, the warehouse and the
API; see docs/data-model.md for the field-by-field contract.
"""

from __future__ import annotations

import hashlib
import math
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

# How deep `meta` may nest: deeper JSON is a hostile input, not metadata, and would
# exhaust the serialiser's stack when the conversation is hashed or stored.
MAX_META_DEPTH = 32


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
    # Infinity and NaN are no timing or duration; JSON parsers accept them, so refuse here.
    model_config = ConfigDict(extra="forbid", validate_assignment=False, allow_inf_nan=False)


def _as_utc(value: datetime | None, what: str = "timestamp") -> datetime | None:
    # Sources mix naive and zoned timestamps; naive ones are taken as UTC so that
    # response times between them are always computable.
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{what} {value.isoformat()} is out of range") from None


def _text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as UTF-8 (an unpaired surrogate, e.g. from a JSON
    escape "\\ud800" or an undecodable email header), else None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"invalid Unicode (unpaired surrogate U+{code:04X} at character {exc.start})"
    return None


def _value_problem(value: Any, depth: int = 1) -> str | None:
    """The first reason a JSON-like `meta` value cannot be stored, else None."""
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, dict | list | tuple):
        if depth > MAX_META_DEPTH:
            return f"nested deeper than {MAX_META_DEPTH} levels"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            problem = _text_problem(key) if isinstance(key, str) else None
            if problem is None:
                problem = _value_problem(item, depth + 1)
                # Name the key where the problem is, but not a whole chain of nested ones.
                if problem and not problem.startswith("nested") and ": " not in problem:
                    problem = f"{key}: {problem}"
            if problem:
                return problem
    return None


def _fields_problem(fields: dict[str, Any]) -> str | None:
    for name, value in fields.items():
        problem = _text_problem(value) if isinstance(value, str) else None
        if problem:
            return f"{name}: {problem}"
    return None


_HASH_EXCLUDE: dict[str, Any] = {"conversation_id": True, "utterances": {"__all__": {"language"}}}


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
    # Audio channels; far beyond any real recording, and within the warehouse's int32.
    channel_index: int | None = Field(default=None, ge=0, le=255)
    internal: bool = Field(default=False, description="Internal note, not seen by the customer.")
    words: list[Word] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    language: str | None = Field(
        default=None,
        max_length=16,
        description="ISO 639-1 code; identified at ingest when the source does not say "
        "(enrich/language.py). Not part of the content hash: it is derived, not content.",
    )

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
            problem = utterance.timing_error() or _text_problem(utterance.text)
            if problem is None and utterance.meta:
                problem = _value_problem(utterance.meta)
                problem = problem and f"meta: {problem}"
            if problem is None and utterance.words:
                problem = next(filter(None, (_text_problem(w.text) for w in utterance.words)), None)
            if problem:
                raise ValueError(f"utterance {index} {problem}")
            if utterance.sent_at is not None and utterance.sent_at.tzinfo is not UTC:
                utterance.sent_at = _as_utc(utterance.sent_at, f"utterance {index} sent_at")
        self.started_at = _as_utc(self.started_at, "started_at")
        problem = self._text_fields_problem()
        if problem:
            raise ValueError(problem)
        if not self.conversation_id:
            self.conversation_id = canonical_conversation_id(self)
        return self

    def _text_fields_problem(self) -> str | None:
        # Everything else that ends up as text in the warehouse: UTF-8 only, bounded meta.
        # Attributes are read directly: model_dump here would cost more than validation.
        meta_problem = _value_problem(self.meta) if self.meta else None
        if meta_problem:
            return f"meta: {meta_problem}"
        for index, p in enumerate(self.participants):
            fields = {"participant_id": p.participant_id, "name": p.name, "email": p.email}
            problem = _fields_problem(fields)
            problem = problem or (_value_problem(p.external_ids) if p.external_ids else None)
            if problem:
                return f"participant {index} {problem}"
        source, links = self.source, self.links
        fields = {
            "subject": self.subject,
            "language": self.language,
            "conversation_id": self.conversation_id,
            "source.system": source.system,
            "source.source_id": source.source_id,
            "source.platform": source.platform,
            "source.queue": source.queue,
            "source.agent": source.agent,
            "source.campaign": source.campaign,
            **{f"links.{k}": getattr(links, k) for k in type(links).model_fields},
            **{f"source.tags.{i}": tag for i, tag in enumerate(source.tags)},
        }
        return _fields_problem(fields)

    def content_hash(self) -> str:
        """Hash of everything except the id: equal hashes mean re-ingest changes nothing.

        The JSON is pydantic's own serialisation: fields in model order, dict keys in
        source order, so the same source always hashes the same.
        """
        # Utterance languages are derived at ingest (and absent in warehouses written before
        # they were): leaving them out keeps every stored hash, so re-ingest stays a no-op.
        payload = self.model_dump_json(exclude=_HASH_EXCLUDE)
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
