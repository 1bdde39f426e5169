"""Generic conversation JSON: one object per conversation, in a JSON document or JSONL.

A file may hold one conversation object, an array of them, `{"conversations": [...]}`,
or one object per line (JSONL). The object schema is documented in docs/formats.md.
Array elements are decoded one by one so that a truncated file still yields every
complete conversation before the damage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from convolens.ingest.base import (
    Adapter,
    Parsed,
    ParseResult,
    RawRecord,
    Reject,
    SourceFile,
    describe_validation_error,
    parse_timestamp,
)
from convolens.ingest.registry import register_adapter
from convolens.model import Conversation

__all__ = ["JsonConversationAdapter", "RecordError", "conversation_from_record"]

_AUTHOR_KEYS = ("author", "speaker", "participant_id", "participant", "from")
_SOURCE_KEYS = ("platform", "queue", "agent", "campaign")
_LINK_KEYS = ("account_id", "user_id", "order_id", "ticket_id", "campaign_id")
_TOP_KEYS = {
    "id",
    "source",
    "channel",
    "language",
    "started_at",
    "duration_seconds",
    "subject",
    "tags",
    "links",
    "meta",
    "participants",
    "messages",
    *_SOURCE_KEYS,
}
_MESSAGE_KEYS = {
    "text",
    "sent_at",
    "start",
    "end",
    "channel_index",
    "internal",
    "words",
    "meta",
    "role",
    "name",
    "email",
    *_AUTHOR_KEYS,
}


class RecordError(ValueError):
    """A record that cannot become a conversation; the message says which field and why."""


def _author_of(message: dict[str, Any], index: int) -> str:
    for key in _AUTHOR_KEYS:
        value = message.get(key)
        if value not in (None, ""):
            return str(value)
    raise RecordError(f"message {index + 1}: missing 'author'")


def conversation_from_record(
    record: Any, *, default_system: str, default_channel: str
) -> Conversation:
    """Turn one documented JSON object into a validated `Conversation`."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    unknown = set(record) - _TOP_KEYS
    if unknown:
        raise RecordError(f"unknown field(s) {sorted(unknown)}; put extra data under 'meta'")
    messages = record.get("messages")
    if messages is None:
        raise RecordError("missing 'messages'")
    if not isinstance(messages, list) or not messages:
        raise RecordError("'messages' must be a non-empty list")

    participants: dict[str, dict[str, Any]] = {}
    by_name: dict[str, str] = {}
    for item in record.get("participants") or []:
        if not isinstance(item, dict) or not item.get("id"):
            raise RecordError("each participant needs an 'id'")
        pid = str(item["id"])
        participants[pid] = {
            "participant_id": pid,
            "name": item.get("name"),
            "role": item.get("role") or "unknown",
            "email": item.get("email"),
            "external_ids": {k: str(v) for k, v in (item.get("external_ids") or {}).items()},
        }
        if item.get("name"):
            by_name[str(item["name"])] = pid

    utterances = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RecordError(f"message {index + 1}: expected an object")
        unknown = set(message) - _MESSAGE_KEYS
        if unknown:
            raise RecordError(f"message {index + 1}: unknown field(s) {sorted(unknown)}")
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RecordError(f"message {index + 1}: missing 'text'")
        author = _author_of(message, index)
        pid = author if author in participants else by_name.get(author, author)
        if pid not in participants:
            # Undeclared authors are common in chat exports: declare them from the message.
            participants[pid] = {
                "participant_id": pid,
                "name": message.get("name") or author,
                "role": message.get("role") or "unknown",
                "email": message.get("email"),
            }
        try:
            sent_at = parse_timestamp(message.get("sent_at"))
        except ValueError as exc:
            raise RecordError(f"message {index + 1}: 'sent_at' {exc}") from None
        utterances.append(
            {
                "participant_id": pid,
                "text": text,
                "start": message.get("start"),
                "end": message.get("end"),
                "sent_at": sent_at,
                "channel_index": message.get("channel_index"),
                "internal": bool(message.get("internal", False)),
                "words": message.get("words"),
                "meta": message.get("meta") or {},
            }
        )

    tags = record.get("tags") or []
    try:
        started_at = parse_timestamp(record.get("started_at"))
    except ValueError as exc:
        raise RecordError(f"'started_at' {exc}") from None
    if started_at is None:
        # Chat exports often omit it: the first message's time is when it started.
        times = [u["sent_at"] for u in utterances if isinstance(u["sent_at"], datetime)]
        started_at = min(times) if times else None
    source_id = record.get("id")
    payload = {
        "channel": record.get("channel") or default_channel,
        "source": {
            "system": record.get("source") or default_system,
            "source_id": None if source_id in (None, "") else str(source_id),
            "tags": [str(tag) for tag in (tags if isinstance(tags, list) else [tags])],
            **{key: record.get(key) for key in _SOURCE_KEYS},
        },
        "language": record.get("language"),
        "started_at": started_at,
        "duration_seconds": record.get("duration_seconds"),
        "subject": record.get("subject"),
        "links": {key: _as_str(v) for key, v in (record.get("links") or {}).items()},
        "participants": list(participants.values()),
        "utterances": utterances,
        "meta": record.get("meta") or {},
    }
    try:
        return Conversation.model_validate(payload)
    except ValidationError as exc:
        raise RecordError(_rename_fields(describe_validation_error(exc))) from None


def _as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _rename_fields(text: str) -> str:
    # Report errors in the file's vocabulary (1-based "message N"), not the model's.
    text = re.sub(r"\butterance (\d+)\b", lambda m: f"message {int(m.group(1)) + 1}", text)
    return re.sub(r"\butterances\.(\d+)\.", lambda m: f"message {int(m.group(1)) + 1}: ", text)


class JsonConversationAdapter(Adapter):
    name = "json"
    suffixes = (".json", ".jsonl", ".ndjson")
    description = "Conversation JSON or JSONL (one conversation per object, `messages[]`)."

    def _convert(self, source: SourceFile, locator: str, record: Any, raw: str) -> ParseResult:
        try:
            conversation = conversation_from_record(
                record,
                default_system=self.options.source_system or "json",
                default_channel=self.options.default_channel or "chat",
            )
        except RecordError as exc:
            return Reject(str(source.path), locator, str(exc), self.name, raw.encode("utf-8"))
        raw_record = RawRecord(
            str(source.path), locator, raw.encode("utf-8"), source.decoded.encoding
        )
        return Parsed(conversation, [raw_record], self.name)

    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        text = source.text
        stripped = text.lstrip()
        if source.path.suffix.lower() in (".jsonl", ".ndjson") or _looks_like_jsonl(stripped):
            yield from self._parse_lines(source, text)
        elif stripped.startswith("["):
            yield from self._parse_array(source, text, text.index("[") + 1)
        else:
            yield from self._parse_document(source, text)

    def _parse_lines(self, source: SourceFile, text: str) -> Iterator[ParseResult]:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            locator = f"line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Reject(
                    str(source.path),
                    locator,
                    f"invalid JSON: {exc.msg} (column {exc.colno})",
                    self.name,
                    line.encode("utf-8"),
                )
                continue
            yield self._convert(source, locator, record, line)

    def _parse_document(self, source: SourceFile, text: str) -> Iterator[ParseResult]:
        stripped = text.lstrip()
        # {"conversations": [...]}: decode the array element by element, like a bare array.
        if stripped.startswith("{") and '"conversations"' in stripped[:200]:
            marker = text.find("[", text.find('"conversations"'))
            if marker != -1:
                yield from self._parse_array(source, text, marker + 1)
                return
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Reject(
                str(source.path),
                f"line {exc.lineno}",
                f"invalid JSON: {exc.msg} (column {exc.colno}); nothing read from this file",
                self.name,
            )
            return
        yield self._convert(source, "record 1", record, text.strip())

    def _parse_array(self, source: SourceFile, text: str, position: int) -> Iterator[ParseResult]:
        decoder = json.JSONDecoder()
        number = 0
        length = len(text)
        while True:
            position = _skip_space(text, position)
            if position >= length:
                yield Reject(
                    str(source.path),
                    f"after record {number}",
                    "file ends before the closing ']' (truncated?)",
                    self.name,
                )
                return
            if text[position] == "]":
                return
            number += 1
            line = text.count("\n", 0, position) + 1
            locator = f"record {number} (line {line})"
            try:
                record, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                # Past a syntax error element boundaries are unknowable: report and stop,
                # keeping every complete record read so far.
                yield Reject(
                    str(source.path),
                    locator,
                    f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                    f"{number - 1} earlier record(s) kept, the rest of the file skipped",
                    self.name,
                    text[position : position + 2000].encode("utf-8"),
                )
                return
            yield self._convert(source, locator, record, text[position:end])
            position = _skip_space(text, end)
            if position < length and text[position] == ",":
                position += 1


def _skip_space(text: str, position: int) -> int:
    length = len(text)
    while position < length and text[position] in " \t\r\n":
        position += 1
    return position


def _looks_like_jsonl(stripped: str) -> bool:
    # Several top-level objects, one per line: '{...}\n{...}'.
    if not stripped.startswith("{"):
        return False
    first_line = stripped.split("\n", 1)[0].strip()
    if not first_line.endswith("}"):
        return False
    try:
        json.loads(first_line)
    except json.JSONDecodeError:
        return False
    return "\n" in stripped.strip()


register_adapter(JsonConversationAdapter)
