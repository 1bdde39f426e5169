"""CSV exports with one row per message, grouped into conversations by a column.

Columns are found by canonical name or a common alias; `--map field=column` (or a
mapping file) names them explicitly. A row that cannot be read is rejected with its line
number; the rest of its conversation is kept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from convolens.ingest.base import Adapter, Parsed, ParseResult, RawRecord, Reject, SourceFile
from convolens.ingest.json_conversations import RecordError, conversation_from_record
from convolens.ingest.registry import register_adapter

__all__ = ["CANONICAL_COLUMNS", "CsvMessagesAdapter"]

# canonical field -> accepted header names (lower-cased), first match wins.
CANONICAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "conversation_id": ("conversation_id", "conversation", "chat_id", "thread_id", "session_id"),
    "text": ("text", "message", "body", "content"),
    "author": ("author", "speaker", "sender", "from", "participant"),
    "role": ("role", "author_role", "sender_type"),
    "email": ("email", "author_email", "sender_email"),
    "sent_at": ("sent_at", "timestamp", "time", "created_at", "date"),
    "start": ("start", "start_s", "start_seconds"),
    "end": ("end", "end_s", "end_seconds"),
    "internal": ("internal", "private"),
    "channel": ("channel",),
    "language": ("language", "lang"),
    "subject": ("subject",),
    "platform": ("platform",),
    "queue": ("queue", "team", "group"),
    "agent": ("agent", "assignee"),
    "campaign": ("campaign",),
    "tags": ("tags",),
    **{key: (key,) for key in ("account_id", "user_id", "order_id", "ticket_id", "campaign_id")},
}
_REQUIRED = ("text", "author")
_CONVERSATION_FIELDS = (
    "channel",
    "language",
    "subject",
    "platform",
    "queue",
    "agent",
    "campaign",
)
_LINK_FIELDS = ("account_id", "user_id", "order_id", "ticket_id", "campaign_id")
_TRUE = {"1", "true", "yes", "y", "t"}


class CsvMessagesAdapter(Adapter):
    name = "csv"
    suffixes = (".csv", ".tsv")
    description = "CSV with one row per message (columns mappable with --map)."

    def _columns(self, header: list[str]) -> dict[str, str]:
        """canonical field -> actual header name, honouring the user's mapping first."""
        lowered = {name.strip().lower(): name for name in header}
        found: dict[str, str] = {}
        columns = {**self.options.mapping.get("columns", {}), **self.options.csv_mapping}
        for field, column in columns.items():
            if field not in CANONICAL_COLUMNS:
                known = ", ".join(CANONICAL_COLUMNS)
                raise RecordError(f"mapping names unknown field {field!r}; fields are: {known}")
            if column.strip().lower() not in lowered:
                raise RecordError(
                    f"mapping {field}={column} names a column the file lacks "
                    f"(columns: {', '.join(header)})"
                )
            found[field] = lowered[column.strip().lower()]
        for field, aliases in CANONICAL_COLUMNS.items():
            if field in found:
                continue
            for alias in aliases:
                if alias in lowered and lowered[alias] not in found.values():
                    found[field] = lowered[alias]
                    break
        missing = [field for field in _REQUIRED if field not in found]
        if missing:
            names = ", ".join(f"'{field}'" for field in missing)
            raise RecordError(
                f"missing column {names} (columns: {', '.join(header)}); "
                f"name the column in a mapping: {missing[0]}=COLUMN"
            )
        return found

    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        text = source.text
        path = str(source.path)
        delimiter = self.options.csv_delimiter or _sniff_delimiter(text, source.path.suffix)
        # The stdlib's 128 KiB field limit would end the file at one long message; the
        # record bound is the limit that matters (a bigger field is that row's reject).
        csv.field_size_limit(max(csv.field_size_limit(), self.options.max_record_bytes))
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        lines = text.splitlines(keepends=True)
        try:
            header = next(reader)
        except StopIteration:
            yield Reject(path, "", "empty file: no header row", self.name)
            return
        except csv.Error as exc:
            yield Reject(path, "line 1", f"unreadable header row: {exc}", self.name)
            return
        try:
            columns = self._columns(header)
        except RecordError as exc:
            yield Reject(path, "line 1", str(exc), self.name, lines[0].encode() if lines else None)
            return
        index = {field: header.index(column) for field, column in columns.items()}
        width = len(header)

        # conversation key -> (first row's fields, [message dicts], [raw records])
        groups: dict[str, tuple[dict[str, str], list[dict[str, Any]], list[RawRecord]]] = {}
        previous_end = 1
        rows = 0
        for row in _rows(reader):
            first_line, previous_end = previous_end + 1, reader.line_num
            if isinstance(row, csv.Error):
                # The reader cannot resynchronise after a broken field: what was read so
                # far is kept, the rest of the file is reported rather than guessed at.
                reason = f"unreadable row: {row}; this row and the rest of the file not read"
                yield Reject(path, f"line {first_line}", reason, self.name)
                rows += 1
                break
            raw_text = "".join(lines[first_line - 1 : previous_end])
            locator = f"line {first_line}"
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            if len(row) > width:
                yield Reject(
                    path,
                    locator,
                    f"expected {width} fields, found {len(row)}",
                    self.name,
                    raw_text.encode(),
                )
                continue
            # Exports often drop trailing empty cells; the required-field check below
            # then names exactly what is missing.
            row += [""] * (width - len(row))
            values = {field: row[position].strip() for field, position in index.items()}
            missing = [field for field in _REQUIRED if not values[field]]
            if missing:
                yield Reject(path, locator, f"missing '{missing[0]}'", self.name, raw_text.encode())
                continue
            key = values.get("conversation_id") or f"file:{source.path.name}"
            message: dict[str, Any] = {
                "author": values["author"],
                "text": values["text"],
                "role": values.get("role") or None,
                "email": values.get("email") or None,
                "sent_at": values.get("sent_at") or None,
                "internal": values.get("internal", "").lower() in _TRUE,
            }
            try:
                for bound in ("start", "end"):
                    if values.get(bound):
                        message[bound] = float(values[bound])
            except ValueError:
                yield Reject(
                    path,
                    locator,
                    f"'{bound}' is not a number: {values[bound]!r}",
                    self.name,
                    raw_text.encode(),
                )
                continue
            group = groups.setdefault(key, (dict(values), [], []))
            # Conversation-level columns are often filled on one row only: take the first value.
            for field in (*_CONVERSATION_FIELDS, *_LINK_FIELDS, "tags"):
                if values.get(field) and not group[0].get(field):
                    group[0][field] = values[field]
            group[1].append({k: v for k, v in message.items() if v is not None})
            group[2].append(
                RawRecord(path, locator, raw_text.encode("utf-8"), source.decoded.encoding)
            )

        if not rows:
            # Header only: an export of nothing is worth saying, not skipping silently.
            yield Reject(path, "", "header row only: no messages", self.name)
        for key, (first, messages, raws) in groups.items():
            yield self._conversation(source, key, first, messages, raws)

    def _conversation(
        self,
        source: SourceFile,
        key: str,
        first: dict[str, str],
        messages: list[dict[str, Any]],
        raws: list[RawRecord],
    ) -> ParseResult:
        record: dict[str, Any] = {
            "id": None if key.startswith("file:") else key,
            "messages": messages,
            "links": {field: first[field] for field in _LINK_FIELDS if first.get(field)},
            "meta": {"source_file": source.path.name},
        }
        record.update({f: first[f] for f in _CONVERSATION_FIELDS if first.get(f)})
        if first.get("tags"):
            record["tags"] = [
                t.strip() for t in first["tags"].replace(",", ";").split(";") if t.strip()
            ]
        lines = f"lines {raws[0].locator.split()[-1]}-{raws[-1].locator.split()[-1]}"
        locator = f"conversation {key} ({lines})"
        try:
            conversation = conversation_from_record(
                record,
                default_system=self.options.source_system or "csv",
                default_channel=self.options.default_channel or "chat",
                role_values=self.options.mapping.get("roles") or None,
            )
        except RecordError as exc:
            return Reject(str(source.path), locator, str(exc), self.name)
        return Parsed(conversation, raws, self.name)


def _rows(reader: Any) -> Iterator[list[str] | csv.Error]:
    """The reader's rows, ending with the csv.Error that stopped it, if one did."""
    try:
        yield from reader
    except csv.Error as exc:
        yield exc


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix.lower() == ".tsv":
        return "\t"
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


register_adapter(CsvMessagesAdapter)
