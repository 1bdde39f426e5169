"""Mappings: read JSON/JSONL of any shape (and CSV columns) without glue code.

A mapping says where a conversation's fields sit in a record, with JSONPath-like paths:
`dialogHeader.sessionID`, `sender.name`, `dialogContent[*]` (every element), `items[0]`,
alternatives `agent|client` (the first that has a value), `key(author)` (the key under
which `author` was found: "agent" or "client"), and `$file` (the file's name without its
suffix). Role values go through a value map, then built-in synonyms ("Support",
"Customer Service" -> agent; "client", "User" -> customer; any case); a value nothing
recognises is stored as unknown with a warning, never a reject. A mapping file is TOML:

    [conversation]
    id = "dialogHeader.sessionID"
    started_at = "dialogHeader.conversationDateTime"
    [conversation.meta]
    company = "dialogHeader.company"
    [messages]
    path = "dialogContent[*]"
    text = "message"
    author = "agent|client|client1"
    role = "key(author)"
    sent_at = "datetime"
    [roles]
    client1 = "customer"
    [defaults]
    channel = "social"

`[columns]` maps CSV columns (FIELD = "COLUMN"), as `--map` does for CSV files.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from convolens.ingest.base import describe_validation_error
from convolens.ingest.json_paths import KEY_OF, MappingError, compile_path, first, select
from convolens.ingest.plain_transcript import parse_transcript_text, turns_to_messages
from convolens.ingest.roles import name_role, transcript_roles
from convolens.model import Role

__all__ = [
    "ConversationPaths",
    "FieldMapping",
    "MappingError",
    "MessagePaths",
    "apply_mapping",
    "load_mapping",
    "mapping_from_pairs",
    "normalize_role",
    "parse_mapping_text",
]


# Role values seen in real exports; compared case-insensitively, spaces/underscores alike.
ROLE_SYNONYMS: dict[str, Role] = {
    **{
        name: Role.agent
        for name in (
            "agent", "support", "staff", "employee", "rep", "representative", "operator",
            "advisor", "adviser", "admin", "company", "brand", "team", "customer service",
            "customer support", "customer care", "service", "helpdesk", "human agent",
        )
    },
    **{
        name: Role.customer
        for name in (
            "customer", "client", "user", "caller", "requester", "requestor", "end user",
            "enduser", "visitor", "consumer", "member", "contact", "lead", "prospect", "guest",
        )
    },
    **{
        name: Role.bot
        for name in ("bot", "chatbot", "assistant", "virtual agent", "ivr", "automated")
    },
    **{name: Role.unknown for name in ("unknown", "other", "none", "")},
}  # fmt: skip


def normalize_role(value: Any, mapped: Mapping[str, str] | None = None) -> Role | None:
    """The role a source value means, or None when nothing recognises it.

    The user's value map first (exact, then any case), then the built-in synonyms, then
    the speaker-label rules of `roles.name_role` ("client1", "Agent Smith")."""
    if value is None:
        return Role.unknown
    text = str(value).strip()
    table = mapped or {}
    folded_table = {key.casefold(): role for key, role in table.items()}
    if text in table or text.casefold() in folded_table:
        return Role(table.get(text) or folded_table[text.casefold()])
    key = " ".join(text.casefold().replace("_", " ").replace("-", " ").split())
    if key in ROLE_SYNONYMS:
        return ROLE_SYNONYMS[key]
    return name_role(text)


_ROLE_VALUES = {role.value for role in Role}


class MessagePaths(BaseModel):
    """Where each message is (`path`, from the conversation) and its fields, within it."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(default=None, description="e.g. 'dialogContent[*]'")
    text: str | None = None
    author: str | None = None
    role: str | None = None
    name: str | None = None
    email: str | None = None
    sent_at: str | None = None
    start: str | None = None
    end: str | None = None
    internal: str | None = None


class ConversationPaths(BaseModel):
    """Where each conversation is (`path`, from the top-level record) and its fields."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    id: str | None = None
    started_at: str | None = None
    channel: str | None = None
    language: str | None = None
    subject: str | None = None
    source: str | None = None
    platform: str | None = None
    queue: str | None = None
    agent: str | None = None
    campaign: str | None = None
    tags: str | None = None
    duration_seconds: str | None = None
    transcript: str | None = Field(
        default=None, description="A text field of 'Name: text' lines, read as the messages."
    )
    meta: dict[str, str] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)


class FieldMapping(BaseModel):
    """A whole mapping: JSON paths, role values, defaults, and CSV columns."""

    model_config = ConfigDict(extra="forbid")

    format: str | None = None
    conversation: ConversationPaths = Field(default_factory=ConversationPaths)
    messages: MessagePaths = Field(default_factory=MessagePaths)
    roles: dict[str, str] = Field(default_factory=dict, description="source value -> role")
    defaults: dict[str, str] = Field(
        default_factory=dict, description="channel, source or language when the data has none"
    )
    columns: dict[str, str] = Field(default_factory=dict, description="CSV: field -> column")

    @field_validator("format")
    @classmethod
    def _known_format(cls, fmt: str | None) -> str | None:
        from convolens.ingest.registry import adapter_names  # registry loads the adapters

        if fmt is not None and fmt not in adapter_names():
            raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(adapter_names())}")
        return fmt

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: dict[str, str]) -> dict[str, str]:
        for value, role in roles.items():
            if role not in _ROLE_VALUES:
                known = ", ".join(sorted(_ROLE_VALUES))
                raise ValueError(f"roles.{value} = {role!r}: a role is one of {known}")
        return roles

    @field_validator("defaults")
    @classmethod
    def _known_defaults(cls, defaults: dict[str, str]) -> dict[str, str]:
        unknown = set(defaults) - {"channel", "source", "language"}
        if unknown:
            raise ValueError(
                f"defaults: unknown key(s) {sorted(unknown)}; use channel, source, language"
            )
        return defaults

    @property
    def maps_json(self) -> bool:
        """True when the mapping says anything about JSON records."""
        return bool(
            self.conversation.model_dump(exclude_defaults=True)
            or self.messages.model_dump(exclude_defaults=True)
            or self.roles
            or self.defaults
        )

    def check_paths(self) -> None:
        """Parse every path once, so that a typo is one clear error before any record."""
        paths = {
            **{f"conversation.{k}": v for k, v in self.conversation.model_dump().items()},
            **{f"messages.{k}": v for k, v in self.messages.model_dump().items()},
        }
        for where, value in paths.items():
            if isinstance(value, dict):
                for key, path in value.items():
                    compile_path(path, f"{where}.{key}")
            elif value:
                compile_path(value, where)


# -- applying ------------------------------------------------------------------------------
_MESSAGE_DEFAULTS = {
    "text": "text|message|content|body",
    "author": "author|speaker|participant_id|participant|from|sender|name|user",
    "role": "role",
    "name": "name",
    "email": "email",
    "sent_at": "sent_at|timestamp|time|datetime|created_at",
    "start": "start",
    "end": "end",
    "internal": "internal",
}
_CONVERSATION_SCALARS = (
    "id", "started_at", "channel", "language", "subject", "source", "platform", "queue",
    "agent", "campaign", "duration_seconds",
)  # fmt: skip


@dataclass
class Mapped:
    """One conversation as documented conversation JSON, with what the mapping noticed."""

    record: dict[str, Any]
    locator: str
    warnings: list[str]


def _scalar(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return json.dumps(value, ensure_ascii=False)[:500]


def apply_mapping(record: Any, mapping: FieldMapping, *, file_stem: str = "") -> list[Mapped]:
    """The conversations a mapping finds in one top-level record, as documented JSON
    objects for `conversation_from_record` (which validates them)."""
    conversation_paths = mapping.conversation
    if conversation_paths.path:
        found = select(record, conversation_paths.path)
        if not found:
            raise MappingError(f"conversation path {conversation_paths.path!r} found nothing")
        items = found
    else:
        items = [record]
    results = []
    for number, item in enumerate(items, start=1):
        locator = f"conversation {number}" if conversation_paths.path else ""
        results.append(_one(item, mapping, file_stem, locator, multiple=len(items) > 1))
    return results


def _table(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    return value if isinstance(value, dict) else {}


def _or_default(path: str | None, default: str) -> str:
    """The user's path, falling back to the documented name: a record already in the
    documented shape reads the same with or without a mapping."""
    if not path:
        return default
    if path.strip() == "$file" or KEY_OF.match(path.strip()):
        return path
    return f"{path}|{default}"


def _get(item: Any, path: str | None, file_stem: str) -> Any:
    if not path:
        return None
    if path.strip() == "$file":
        return file_stem or None
    return first(item, path)[0]


def _one(item: Any, mapping: FieldMapping, file_stem: str, locator: str, multiple: bool) -> Mapped:
    if not isinstance(item, dict):
        raise MappingError(f"expected a JSON object for a conversation, got {type(item).__name__}")
    paths = mapping.conversation
    warnings: list[str] = []
    out: dict[str, Any] = {}
    for key in _CONVERSATION_SCALARS:
        value = _scalar(_get(item, _or_default(getattr(paths, key), key), file_stem))
        if value is not None:
            out[key] = str(value) if key == "id" else value
    if "id" in out and multiple and paths.id and paths.id.strip() == "$file":
        out["id"] = f"{out['id']}#{locator.split()[-1]}"
    for key in ("channel", "source", "language"):
        if key not in out and key in mapping.defaults:
            out[key] = mapping.defaults[key]
    if paths.tags or "tags" in item:
        tags = select(item, _or_default(paths.tags, "tags"))
        flat = tags[0] if len(tags) == 1 and isinstance(tags[0], list) else tags
        out["tags"] = [str(_scalar(tag)) for tag in flat if tag not in (None, "")]
    meta = {key: _scalar(_get(item, path, file_stem)) for key, path in paths.meta.items()}
    if meta := {**_table(item, "meta"), **{k: v for k, v in meta.items() if v is not None}}:
        out["meta"] = meta
    links = {key: _get(item, path, file_stem) for key, path in paths.links.items()}
    mapped_links = {k: str(_scalar(v)) for k, v in links.items() if v is not None}
    if links := {**_table(item, "links"), **mapped_links}:
        out["links"] = links

    if paths.transcript:
        text = _get(item, paths.transcript, file_stem)
        if not isinstance(text, str) or not text.strip():
            raise MappingError(f"transcript {paths.transcript!r}: no text found")
        messages = turns_to_messages(parse_transcript_text(text))
        if not messages:
            raise MappingError(
                f"transcript {paths.transcript!r}: no 'Name: text' lines found in the text"
            )
        said: dict[str, list[str]] = {}
        for message in messages:
            said.setdefault(message["author"], []).append(message["text"])
        # As for a transcript file: labels and what each speaker says decide the roles.
        inferred = transcript_roles(said, channel=out.get("channel"))
        for message in messages:
            author = message["author"]
            role = inferred.get(author, Role.unknown).value
            message["role"] = (
                _role_value(author, mapping, warnings) if _mapped(author, mapping) else role
            )
        out["messages"] = messages
        return Mapped(out, locator, warnings)

    raw_messages = (
        select(item, mapping.messages.path) if mapping.messages.path else item.get("messages")
    )
    if not raw_messages:
        where = mapping.messages.path or "messages"
        raise MappingError(f"no messages found at {where!r}")
    if not isinstance(raw_messages, list):
        raw_messages = [raw_messages]
    out["messages"] = []
    empty = 0
    for message in raw_messages:
        converted = _message(message, mapping, warnings, file_stem)
        text = converted.get("text")
        if (isinstance(text, str) and not text.strip()) or (text is None and converted):
            # One empty line of a long meeting must not lose the meeting: skipped, said.
            empty += 1
            continue
        out["messages"].append(converted)
    if empty:
        warnings.append(f"{empty} message(s) with no text skipped")
    if not out["messages"]:
        raise MappingError("every message found has no text")
    return Mapped(out, locator, warnings)


def _message(
    message: Any, mapping: FieldMapping, warnings: list[str], file_stem: str
) -> dict[str, Any]:
    if not isinstance(message, dict):
        # A bare string is a message with no author: keep its text.
        return {"author": "unknown", "text": message} if isinstance(message, str) else {}
    paths = mapping.messages
    out: dict[str, Any] = {}
    author_key: str | None = None
    for key, default in _MESSAGE_DEFAULTS.items():
        path = _or_default(getattr(paths, key), default)
        key_of = KEY_OF.match(path.strip())
        if key_of:
            continue  # resolved after the field it names
        value, found_under = first(message, path) if path != "$file" else (file_stem, None)
        if key == "author":
            author_key = found_under
        if value is not None:
            out[key] = _scalar(value) if key != "text" else value
    if paths.role and (key_of := KEY_OF.match(paths.role.strip())):
        if key_of["field"] != "author":
            raise MappingError("messages.role: key(...) names the author field: key(author)")
        out["role"] = author_key
    if "role" in out:
        out["role"] = _role_value(out["role"], mapping, warnings)
    if "author" in out:
        out["author"] = str(out["author"])
    elif "text" in out:
        out["author"] = out.get("role") or "unknown"
    return out


def _role_value(value: Any, mapping: FieldMapping, warnings: list[str]) -> str:
    role = normalize_role(value, mapping.roles)
    if role is None:
        note = (
            f"role value {str(value)[:40]!r} not recognised; stored as 'unknown' "
            "(map it under [roles])"
        )
        if note not in warnings:
            warnings.append(note)
        return Role.unknown.value
    return role.value


def _mapped(value: str, mapping: FieldMapping) -> bool:
    return value.casefold() in {key.casefold() for key in mapping.roles}


# -- loading -------------------------------------------------------------------------------
def parse_mapping_text(text: str, *, source: str = "mapping") -> FieldMapping:
    """A mapping from TOML or JSON text (API form field, file contents)."""
    stripped = text.strip()
    try:
        data = json.loads(stripped) if stripped.startswith("{") else tomllib.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MappingError(f"{source}: not valid TOML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{source}: a mapping is a table of settings")
    if data and not set(data) & set(FieldMapping.model_fields):
        # A flat table of FIELD = COLUMN pairs: the older CSV mapping file.
        data = {"columns": data}
    try:
        mapping = FieldMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"{source}: {describe_validation_error(exc)}") from None
    mapping.check_paths()
    return mapping


def load_mapping(path: Any) -> FieldMapping:
    """A mapping file (TOML, or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path.name}: cannot read mapping: {exc}") from None
    return parse_mapping_text(text, source=path.name)


def mapping_from_pairs(
    pairs: Iterable[str], base: FieldMapping | None = None, *, csv_fields: Iterable[str] = ()
) -> FieldMapping:
    """`FIELD=PATH` pairs (the CLI's `--map`) on top of `base`.

    `messages`/`conversations` set where messages/conversations are; message fields
    (text, author, role, sent_at, ...) and conversation fields (id, started_at, channel,
    ..., meta.X, links.X) are paths; `roles.VALUE=ROLE` maps a role value. A pair whose
    field is a CSV column name (`csv_fields`) is also kept for CSV files."""
    data = (base or FieldMapping()).model_dump(exclude_defaults=True)
    csv_known = set(csv_fields)
    message_fields = set(MessagePaths.model_fields) - {"path"}
    conversation_fields = set(ConversationPaths.model_fields) - {"path", "meta", "links"}
    for pair in pairs:
        field, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not field or not value:
            raise MappingError(
                f"{pair!r}: use FIELD=COLUMN (CSV) or FIELD=PATH (JSON), "
                "e.g. text=body or author=sender.name"
            )
        used = False
        if field in csv_known:
            data.setdefault("columns", {})[field] = value
            used = True
        head, _, rest = field.partition(".")
        if field == "messages":
            data.setdefault("messages", {})["path"] = value
        elif field == "conversations":
            data.setdefault("conversation", {})["path"] = value
        elif field in message_fields:
            data.setdefault("messages", {})[field] = value
        elif field == "conversation_id" or field in conversation_fields:
            key = "id" if field == "conversation_id" else field
            data.setdefault("conversation", {})[key] = value
        elif head in ("meta", "links") and rest:
            data.setdefault("conversation", {}).setdefault(head, {})[rest] = value
        elif head == "roles" and rest:
            data.setdefault("roles", {})[rest] = value
        elif head == "defaults" and rest:
            data.setdefault("defaults", {})[rest] = value
        elif not used:
            known = sorted({"messages", "conversations", *message_fields, *conversation_fields})
            raise MappingError(
                f"{pair!r}: unknown field {field!r}; fields are {', '.join(known)}, "
                "meta.NAME, links.NAME, roles.VALUE, defaults.NAME"
            )
    try:
        mapping = FieldMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(describe_validation_error(exc)) from None
    mapping.check_paths()
    return mapping
