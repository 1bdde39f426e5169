"""Generic conversation JSON: one object per conversation, in a JSON document or JSONL.

A file may hold one conversation object, an array of them, `{"conversations": [...]}`,
or one object per line (JSONL). The object schema is documented in docs/formats.md.
Array elements are decoded one by one so that a truncated file still yields every
complete conversation before the damage.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from convolens.ingest.base import (
    MIB,
    Adapter,
    JsonError,
    Parsed,
    ParseResult,
    RawRecord,
    Reject,
    SourceFile,
    describe_validation_error,
    load_json,
    parse_timestamp,
)
from convolens.ingest.mapping import FieldMapping, MappingError, apply_mapping, normalize_role
from convolens.ingest.registry import register_adapter
from convolens.model import Conversation, Role

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
            if not _is_scalar(value):
                raise RecordError(f"message {index + 1}: '{key}' must be a string")
            return str(value)
    raise RecordError(f"message {index + 1}: missing 'author'")


def _is_scalar(value: Any) -> bool:
    # Ids are strings; exports often write them as numbers. Anything else is a mistake.
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _expect(value: Any, kind: type, what: str) -> Any:
    """`value` if it is None or a `kind`; else a RecordError naming what it is instead."""
    if value is None or isinstance(value, kind):
        return value
    names: dict[type, str] = {dict: "an object", list: "a list"}
    raise RecordError(f"{what} must be {names.get(kind, kind.__name__)}, not {_json_type(value)}")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _role(value: Any, role_values: Mapping[str, str] | None, warnings: list[str] | None) -> str:
    """A role value as stored: exact names pass, synonyms ("client", "Support") and the
    user's value map are translated; anything else is unknown with a warning, not an error."""
    if value in (None, ""):
        return Role.unknown.value
    if isinstance(value, str) and value in Role.__members__ and not role_values:
        return value
    role = normalize_role(value, role_values)
    if role is None:
        role = Role.unknown
        note = f"role value {str(value)[:40]!r} not recognised; stored as 'unknown'"
        if warnings is not None and note not in warnings:
            warnings.append(note)
    return role.value


def conversation_from_record(
    record: Any,
    *,
    default_system: str,
    default_channel: str,
    role_values: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> Conversation:
    """Turn one documented JSON object into a validated `Conversation`.

    `role_values` maps source role values to roles (a mapping's `[roles]`); notes about
    values stored as unknown go to `warnings`."""
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

    for key, kind in (("participants", list), ("links", dict), ("meta", dict)):
        _expect(record.get(key), kind, f"'{key}'")

    participants: dict[str, dict[str, Any]] = {}
    by_name: dict[str, str] = {}
    for position, item in enumerate(record.get("participants") or [], start=1):
        if not isinstance(item, dict) or not _is_scalar(item.get("id")) or item["id"] == "":
            raise RecordError(f"participant {position}: needs an 'id' (a string or number)")
        external = _expect(
            item.get("external_ids"), dict, f"participant {position}: 'external_ids'"
        )
        pid = str(item["id"])
        participants[pid] = {
            "participant_id": pid,
            "name": item.get("name"),
            "role": _role(item.get("role"), role_values, warnings),
            "email": item.get("email"),
            "external_ids": {k: str(v) for k, v in (external or {}).items()},
        }
        if item.get("name") and _is_scalar(item["name"]):
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
                "role": _role(message.get("role"), role_values, warnings),
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
    if not all(_is_scalar(tag) for tag in (tags if isinstance(tags, list) else [tags])):
        raise RecordError("'tags' must be a list of strings")
    try:
        started_at = parse_timestamp(record.get("started_at"))
    except ValueError as exc:
        raise RecordError(f"'started_at' {exc}") from None
    if started_at is None:
        # Chat exports often omit it: the first message's time is when it started.
        times = [u["sent_at"] for u in utterances if isinstance(u["sent_at"], datetime)]
        started_at = min(times) if times else None
    source_id = record.get("id")
    if source_id is not None and not _is_scalar(source_id):
        raise RecordError(f"'id' must be a string or number, not {_json_type(source_id)}")
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
    # Arrays and JSONL stream (one record in memory at a time); see `_text_chunks`.
    reads_whole_file = False
    _encoding = "utf-8"

    @cached_property
    def _mapping(self) -> FieldMapping | None:
        if not self.options.mapping:
            return None
        mapping = FieldMapping.model_validate(self.options.mapping)
        return mapping if mapping.maps_json else None

    def _convert(
        self, source: SourceFile, locator: str, record: Any, raw: str
    ) -> Iterator[ParseResult]:
        path, payload = str(source.path), raw.encode("utf-8")
        mapping = self._mapping
        records: list[tuple[str, Any, list[str]]] = [(locator, record, [])]
        if mapping is not None:
            try:
                named = Path(self.options.upload_name) if self.options.upload_name else source.path
                mapped = apply_mapping(record, mapping, file_stem=named.stem)
            except MappingError as exc:
                yield Reject(path, locator, f"mapping: {exc}", self.name, payload)
                return
            records = [
                (f"{locator}, {m.locator}" if m.locator else locator, m.record, m.warnings)
                for m in mapped
            ]
        for where, item, warnings in records:
            try:
                conversation = conversation_from_record(
                    item,
                    default_system=self.options.source_system or "json",
                    default_channel=self.options.default_channel or "chat",
                    role_values=mapping.roles if mapping else None,
                    warnings=warnings,
                )
            except RecordError as exc:
                yield Reject(path, where, str(exc), self.name, payload)
                continue
            raw_record = RawRecord(path, where, payload, self._encoding)
            notes = [f"{source.path.name} {where}: {note}" for note in warnings]
            yield Parsed(conversation, [raw_record], self.name, notes)

    def _too_big(self, source: SourceFile, locator: str, size: int, rest: str = "") -> Reject:
        limit = self.options.max_record_mb
        reason = (
            f"record of {size / MIB:.1f} MiB is over the {limit:g} MiB limit for one "
            f"conversation; not read{rest} (split it, or raise max_record_mb)"
        )
        return Reject(str(source.path), locator, reason, self.name)

    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        chunks, self._encoding = _text_chunks(source)
        head = next(chunks, "")
        stripped = head.lstrip("\ufeff \t\r\n")
        if not stripped:
            # An empty file is reported, not skipped: the user meant to ingest something.
            yield Reject(str(source.path), "", "empty file: no records", self.name)
            return
        if source.path.suffix.lower() in (".jsonl", ".ndjson") or _looks_like_jsonl(stripped):
            yield from self._parse_lines(source, itertools.chain([head], chunks))
        elif stripped.startswith("["):
            yield from self._parse_array(source, chunks, head, head.index("[") + 1)
        elif stripped.startswith("{") and '"conversations"' in stripped[:200]:
            # {"conversations": [...]}: decode the array element by element, like a bare array.
            marker = head.find("[", head.find('"conversations"'))
            if marker != -1:
                yield from self._parse_array(source, chunks, head, marker + 1)
            else:
                yield from self._parse_document(source)
        else:
            yield from self._parse_document(source)

    def _parse_lines(self, source: SourceFile, chunks: Iterator[str]) -> Iterator[ParseResult]:
        records = 0
        limit = self.options.max_record_bytes
        for number, line in _lines(chunks, limit):
            locator = f"line {number}"
            if line is None:
                yield self._too_big(source, locator, limit + 1)
                records += 1
                continue
            if not line.strip():
                continue
            records += 1
            try:
                record = load_json(line)
            except JsonError as exc:
                column = f" (column {exc.colno})" if exc.colno else ""
                yield Reject(
                    str(source.path),
                    locator,
                    f"invalid JSON: {exc.msg}{column}",
                    self.name,
                    line.encode("utf-8"),
                )
                continue
            yield from self._convert(source, locator, record, line)
        if not records:
            yield Reject(str(source.path), "", "no records: only blank lines", self.name)

    def _parse_document(self, source: SourceFile) -> Iterator[ParseResult]:
        if source.size > self.options.max_record_bytes:
            yield self._too_big(source, "record 1", source.size)
            return
        text = source.text
        try:
            record = load_json(text)
        except JsonError as exc:
            yield Reject(
                str(source.path),
                f"line {exc.lineno}" if exc.lineno else "",
                f"invalid JSON: {exc.msg}"
                + (f" (column {exc.colno})" if exc.colno else "")
                + "; nothing read from this file",
                self.name,
            )
            return
        yield from self._convert(source, "record 1", record, text.strip())

    def _parse_array(
        self, source: SourceFile, chunks: Iterator[str], buffer: str, position: int
    ) -> Iterator[ParseResult]:
        """Decode array elements one at a time from text read chunk by chunk: memory holds
        one record (and one chunk), whatever the size of the file."""
        path, limit = str(source.path), self.options.max_record_bytes
        decoder = json.JSONDecoder()
        stream = _Stream(chunks, buffer, position)
        number = 0
        while True:
            if not stream.skip_space():
                yield Reject(
                    path,
                    f"after record {number}",
                    "file ends before the closing ']' (truncated?)",
                    self.name,
                )
                return
            if stream.current == "]":
                if not number:
                    yield Reject(path, "", "no records: the array is empty", self.name)
                return
            number += 1
            locator = f"record {number} (line {stream.line})"
            try:
                record, raw = stream.decode(decoder, limit)
            except _TooBig as exc:
                rest = "; it and the rest of the file skipped" if exc.unbounded else ""
                yield self._too_big(source, locator, exc.size, rest)
                if exc.unbounded:
                    return
                continue
            except JsonError as exc:
                # Past a syntax error element boundaries are unknowable: report and stop,
                # keeping every complete record read so far.
                yield Reject(
                    path,
                    locator,
                    f"invalid JSON: {exc.msg} ({exc.where().replace(' column', ', column')}); "
                    f"{number - 1} earlier record(s) kept, the rest of the file skipped",
                    self.name,
                    stream.text_from_here(2000).encode("utf-8", errors="replace"),
                )
                return
            yield from self._convert(source, locator, record, raw)
            if stream.skip_space() and stream.current == ",":
                stream.advance(1)


# Files up to this size are decoded whole, with charset detection; bigger ones stream as
# UTF-8 (the encoding of every JSON exporter that produces files this big).
STREAM_ABOVE = 8 * MIB
_CHUNK = MIB


def _text_chunks(source: SourceFile) -> tuple[Iterator[str], str]:
    """The file's text as an iterator of chunks, and its encoding."""
    if source.size <= STREAM_ABOVE:
        return iter([source.text]), source.decoded.encoding

    def read() -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        with source.open() as handle:
            while block := handle.read(_CHUNK):
                yield decoder.decode(block)
            yield decoder.decode(b"", final=True)

    return read(), "utf-8"


def _lines(chunks: Iterator[str], limit: int) -> Iterator[tuple[int, str | None]]:
    """(line number, text) per "\\n"-separated line; text None for a line over `limit`
    characters, which is dropped as it is read rather than held.

    Only "\\n" ends a line: U+2028 and other characters that `str.splitlines` breaks on
    may sit unescaped inside a JSON string."""
    number, pending, oversize = 0, "", False
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split("\n")
        for line in complete:
            number += 1
            too_long = oversize or len(line) > limit
            yield number, None if too_long else line.removesuffix("\r")
            oversize = False
        if len(pending) > limit:
            oversize, pending = True, ""
    if pending or oversize:
        yield number + 1, None if oversize else pending.removesuffix("\r")


class _TooBig(Exception):
    def __init__(self, size: int, unbounded: bool) -> None:
        self.size, self.unbounded = size, unbounded


class _Stream:
    """A window on text arriving in chunks, with the line number of the current position."""

    def __init__(self, chunks: Iterator[str], buffer: str, position: int) -> None:
        self.chunks, self.buffer, self.position = chunks, buffer, position
        self.line = buffer.count("\n", 0, position) + 1
        self.exhausted = False

    def more(self) -> bool:
        """Read one more chunk, dropping what was consumed; False at the end of the file."""
        for chunk in self.chunks:
            if chunk:
                self.buffer = self.buffer[self.position :] + chunk
                self.position = 0
                return True
        self.exhausted = True
        return False

    def skip_space(self) -> bool:
        """Move to the next non-space character; False if the file ends first."""
        while True:
            self.position = _skip_space(self.buffer, self.position, self)
            if self.position < len(self.buffer):
                return True
            if not self.more():
                return False

    @property
    def current(self) -> str:
        return self.buffer[self.position]

    def advance(self, count: int) -> None:
        end = self.position + count
        self.line += self.buffer.count("\n", self.position, end)
        self.position = end

    def text_from_here(self, size: int) -> str:
        return self.buffer[self.position : self.position + size]

    def decode(self, decoder: json.JSONDecoder, limit: int) -> tuple[Any, str]:
        """The JSON value at the current position and its text, reading more as needed."""
        while True:
            start = self.position
            try:
                value, end = decoder.raw_decode(self.buffer, start)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(self.buffer) - 16 or exc.msg.startswith(
                    "Unterminated string"
                )
                if incomplete and not self.exhausted:
                    if len(self.buffer) - start > limit:
                        raise _TooBig(len(self.buffer) - start, unbounded=True) from None
                    if self.more():
                        continue
                line = self.line + self.buffer.count("\n", start, exc.pos)
                column = exc.pos - self.buffer.rfind("\n", 0, exc.pos)
                raise JsonError(exc.msg, line, column) from None
            except RecursionError:
                raise JsonError("nested too deeply to read", self.line, 1) from None
            except ValueError as exc:  # an integer of more than 4,300 digits
                raise JsonError(str(exc).split(";")[0], self.line, 1) from None
            if end >= len(self.buffer) and not self.exhausted and self.more():
                continue  # a number may go on in the next chunk
            raw = self.buffer[start:end]
            self.advance(end - start)
            if len(raw) > limit:
                raise _TooBig(len(raw), unbounded=False)
            return value, raw


def _skip_space(text: str, position: int, stream: _Stream | None = None) -> int:
    length = len(text)
    start = position
    while position < length and text[position] in " \t\r\n":
        position += 1
    if stream is not None:
        stream.line += text.count("\n", start, position)
    return position


def _looks_like_jsonl(stripped: str) -> bool:
    # Several top-level objects, one per line: '{...}\n{...}'.
    if not stripped.startswith("{"):
        return False
    first_line = stripped.split("\n", 1)[0].strip()
    if not first_line.endswith("}"):
        return False
    try:
        load_json(first_line)
    except JsonError:
        return False
    return "\n" in stripped.strip()


register_adapter(JsonConversationAdapter)
