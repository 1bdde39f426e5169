"""Helpdesk ticket exports (Zendesk-style): one conversation per ticket.

A JSON document holds the tickets and the users they refer to:

    {"tickets": [{"id": 4312, "subject": "...", "status": "solved", "priority": "normal",
       "created_at": "2026-03-02T09:14:00Z", "updated_at": "...", "requester_id": 901,
       "assignee_id": 17, "group": "Billing", "brand": "...", "tags": ["refund"],
       "via": {"channel": "web"}, "organization_id": 55, "external_id": "ORDER-1234",
       "custom_fields": [{"id": 1, "value": "x"}],
       "comments": [{"id": 1, "author_id": 901, "body": "...", "public": true,
                     "created_at": "..."}]}],
     "users": [{"id": 901, "name": "Maria Lopez", "email": "maria@example.com",
                "role": "end-user"},
               {"id": 17, "name": "Sam Patel", "email": "sam@acme.com", "role": "agent"}]}

A single ticket object, or JSONL with one ticket object per line, is read too; there each
ticket may carry its own "users" list. Comment text is "body" (or "plain_body"; HTML is
stripped when only "html_body" is given); a comment with "public": false is an internal
note. User roles map end-user -> customer, agent/admin -> agent, "bot" (or a name such as
"Answer Bot") -> bot; users missing from "users" are the assignee (agent), the requester
(customer) or unknown.

Bad records: a ticket without "id" or without any usable comment is rejected (locator
"ticket <id>", "ticket #<position>" in a document, "line N" in JSONL); a comment without
body, author or created_at is skipped with a warning and the ticket kept. Invalid JSON
rejects the one JSONL line, or the whole document with the error position.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

from pydantic import ValidationError

from convolens.ingest.base import (
    Adapter,
    JsonError,
    Parsed,
    ParseResult,
    RawRecord,
    Reject,
    SourceFile,
    decode_bytes,
    describe_validation_error,
    json_bytes,
    load_json,
    parse_timestamp,
    safe_reason,
)
from convolens.ingest.registry import register_adapter
from convolens.model import Conversation, Role

__all__ = ["HelpdeskAdapter", "html_to_text"]

_AGENT_ROLES = {"agent", "admin"}
_CUSTOMER_ROLES = {"end-user", "end_user", "enduser", "customer"}
# "Answer Bot", "chatbot", "AnswerBot" are bots; "Abbott" and "Talbot" are not.
_BOT_WORD = re.compile(r"\b(?:chat)?bot\b", re.IGNORECASE)
_BOT_CAMEL = re.compile(r"[a-z]Bot\b")
_EXPORT_HEAD = re.compile(r'^\{\s*"tickets"\s*:\s*\[')
_TICKET_KEYS_HEAD = re.compile(r'"comments"\s*:\s*\[')
_REQUESTER_HEAD = re.compile(r'"(?:requester_id|subject)"\s*:')
_SNIFF_BYTES = 1024 * 1024
_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "pre"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Block elements separate lines; without this "<p>a</p><p>b</p>" reads "ab".
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML comment body: tags dropped, entities decoded."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def _is_ticket(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "comments" in value
        and ("requester_id" in value or "subject" in value)
    )


def _is_export(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("tickets"), list)) or _is_ticket(value)


def _line_is_ticket(line: str) -> bool:
    try:
        return _is_ticket(load_json(line))
    except JsonError:
        return False


def _index_users(items: Any) -> dict[str, dict[str, Any]]:
    # Keyed by str(id): exports mix 901 and "901" between users and comments.
    if not isinstance(items, list):
        return {}
    return {
        str(user["id"]): user
        for user in items
        if isinstance(user, dict) and user.get("id") not in (None, "")
    }


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _comment_text(comment: dict[str, Any]) -> str | None:
    text = _text(comment.get("body")) or _text(comment.get("plain_body"))
    if text is None and _text(comment.get("html_body")):
        text = html_to_text(comment["html_body"]) or None
    return text


def _is_public(value: Any) -> bool:
    # Zendesk comments are public unless marked otherwise; some CSV-to-JSON tools write
    # the flag as a string.
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no")
    return value is None or bool(value)


def _role(user: dict[str, Any] | None, key: str, requester: str, assignee: str) -> Role:
    role = str((user or {}).get("role") or "").lower()
    name = str((user or {}).get("name") or "")
    if role == "bot" or _BOT_WORD.search(name) or _BOT_CAMEL.search(name):
        return Role.bot
    if role in _AGENT_ROLES:
        return Role.agent
    if role in _CUSTOMER_ROLES:
        return Role.customer
    if key == assignee:
        return Role.agent
    return Role.customer if key == requester else Role.unknown


def _key(value: Any) -> str:
    # Ids are strings or numbers; an object or list where an id belongs is no id.
    if value in (None, "") or isinstance(value, bool | dict | list):
        return ""
    return str(value)


class HelpdeskAdapter(Adapter):
    name = "zendesk"
    suffixes = (".json", ".jsonl")
    description = "Zendesk-style ticket export (JSON or JSONL), one conversation per ticket"

    def sniff(self, source: SourceFile) -> bool:
        # Detection reads the head only: a big file of another format must not be parsed
        # (or held) whole just to learn that it is not a ticket export.
        head = source.head(_SNIFF_BYTES)
        whole = len(head) < _SNIFF_BYTES
        text = (source.text if whole else decode_bytes(head).text).lstrip("\ufeff \t\r\n")
        if not text.startswith("{"):
            return False
        if _EXPORT_HEAD.match(text[:4096]):
            return True
        if whole:
            try:
                return _is_export(load_json(text))
            except JsonError:
                pass
        elif _TICKET_KEYS_HEAD.search(text) and _REQUESTER_HEAD.search(text):
            return True  # a single big ticket object
        # JSONL, or a truncated export, which is still ours: the parser says where it breaks.
        return _line_is_ticket(text.split("\n", 1)[0])

    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        path = str(source.path)
        text = source.text
        if source.path.suffix.lower() == ".jsonl":
            yield from self._parse_lines(path, text)
            return
        try:
            document = load_json(text)
        except JsonError as exc:
            lines = [line for line in text.split("\n") if line.strip()]
            if len(lines) > 1 and _line_is_ticket(lines[0]):
                # JSONL saved as .json: read it line by line rather than lose it all.
                yield from self._parse_lines(path, text)
                return
            where = f" ({exc.where().replace(' column', ', column')})" if exc.lineno else ""
            reason = f"invalid JSON: {exc.msg}{where}"
            yield Reject(path, "file", reason, self.name, payload=source.data)
            return

        users: dict[str, dict[str, Any]] = {}
        if isinstance(document, dict) and "tickets" in document:
            tickets, users = document["tickets"], _index_users(document.get("users"))
            problem = None if isinstance(tickets, list) else "'tickets' must be a list"
            if document.get("users") is not None and not isinstance(document["users"], list):
                problem = "'users' must be a list"
        elif isinstance(document, list) or _is_ticket(document):
            tickets, problem = document if isinstance(document, list) else [document], None
        else:
            tickets, problem = [], "not a ticket export: expected {'tickets': [...]} or a ticket"
        if problem is not None:
            yield Reject(path, "file", problem, self.name, payload=source.data)
            return
        if not tickets:
            yield Reject(path, "file", "no tickets in this export", self.name)
        for position, ticket in enumerate(tickets, start=1):
            yield self._safe_ticket(path, ticket, users, f"ticket #{position}", None)

    def _parse_lines(self, path: str, text: str) -> Iterator[ParseResult]:
        # split("\n"), not splitlines(): U+2028 may sit unescaped inside a JSON string.
        if not text.strip():
            yield Reject(path, "file", "empty file: no tickets", self.name)
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            try:
                ticket = load_json(line)
            except JsonError as exc:
                reason = f"invalid JSON: {exc.msg}" + (
                    f" (column {exc.colno})" if exc.colno else ""
                )
                yield Reject(path, f"line {number}", reason, self.name, payload=line.encode())
                continue
            yield self._safe_ticket(path, ticket, {}, f"line {number}", line)

    def _safe_ticket(
        self,
        path: str,
        ticket: Any,
        shared_users: dict[str, dict[str, Any]],
        where: str,
        line: str | None,
    ) -> ParseResult:
        # One ticket that trips the converter is that ticket's reject; the export goes on.
        try:
            return self._ticket(path, ticket, shared_users, where, line)
        except Exception as exc:
            ticket_id = _key(ticket.get("id")) if isinstance(ticket, dict) else ""
            locator = f"ticket {ticket_id}" if ticket_id and len(ticket_id) < 80 else where
            payload = line.encode("utf-8", errors="replace") if line is not None else None
            return Reject(path, locator, safe_reason(exc), self.name, payload=payload)

    def _ticket(
        self,
        path: str,
        ticket: Any,
        shared_users: dict[str, dict[str, Any]],
        where: str,
        line: str | None,
    ) -> ParseResult:
        """One ticket -> Parsed, or Reject; `where` locates a ticket that has no id."""

        def reject(locator: str, reason: str) -> Reject:
            payload = line.encode() if line is not None else json_bytes(ticket)
            return Reject(path, locator, reason, self.name, payload=payload)

        if not isinstance(ticket, dict):
            return reject(where, f"expected a ticket object, got {type(ticket).__name__}")
        ticket_id = _key(ticket.get("id"))
        if not ticket_id:
            return reject(where, "missing 'id'")
        locator = f"ticket {ticket_id}"
        users = {**shared_users, **_index_users(ticket.get("users"))}

        comments = ticket.get("comments")
        if not isinstance(comments, list):
            return reject(locator, "missing 'comments'")
        usable: list[dict[str, Any]] = []
        problems: list[str] = []
        for position, comment in enumerate(comments, start=1):
            comment_id = comment.get("id") if isinstance(comment, dict) else None
            problem, entry = self._comment(comment)
            if problem is not None:
                problems.append(f"comment {comment_id or f'#{position}'}: {problem}")
            elif entry is not None:
                usable.append(entry)
        if not usable:
            detail = f" ({'; '.join(problems)})" if problems else ""
            return reject(locator, f"no usable comments{detail}")
        warnings = [f"ticket {ticket_id} {problem}, skipped" for problem in problems]
        # Exports list comments in arbitrary order; the sort is stable for equal times.
        usable.sort(key=lambda entry: entry["sent_at"])

        assignee = _key(ticket.get("assignee_id"))
        authors = [entry.pop("author") for entry in usable]
        participants = _participants(_key(ticket.get("requester_id")), assignee, authors, users)

        try:
            started_at = parse_timestamp(ticket.get("created_at"))
        except ValueError as exc:
            warnings.append(f"{locator}: 'created_at' {exc}; using the first comment's time")
            started_at = None
        via = ticket.get("via")
        group = ticket.get("group")
        tags = ticket.get("tags")
        payload = {
            "channel": "ticket",
            "source": {
                "system": self.options.source_system or "zendesk",
                "source_id": ticket_id,
                "platform": _text(via.get("channel")) if isinstance(via, dict) else None,
                "queue": _text(group.get("name")) if isinstance(group, dict) else _text(group),
                "agent": participants[assignee]["name"] if assignee else None,
                "tags": [str(tag) for tag in tags] if isinstance(tags, list) else [],
            },
            "started_at": started_at or usable[0]["sent_at"],
            "subject": _text(ticket.get("subject")) or _text(ticket.get("raw_subject")),
            "links": {
                "ticket_id": ticket_id,
                "account_id": _key(ticket.get("organization_id")) or None,
                "order_id": _key(ticket.get("external_id")) or None,
            },
            "participants": list(participants.values()),
            "utterances": usable,
            "meta": {
                key: ticket[key]
                for key in ("status", "priority", "brand", "custom_fields", "updated_at")
                if ticket.get(key) is not None
            },
        }
        try:
            conversation = Conversation.model_validate(payload)
        except ValidationError as exc:
            return reject(locator, describe_validation_error(exc))

        if line is not None:
            data = line.encode("utf-8")
        else:
            data = json_bytes(_with_users(ticket, users, participants))
        return Parsed(conversation, [RawRecord(path, locator, data, "utf-8")], self.name, warnings)

    @staticmethod
    def _comment(comment: Any) -> tuple[str | None, dict[str, Any] | None]:
        """(why it is unusable, None) or (None, utterance fields plus its author key)."""
        if not isinstance(comment, dict):
            return f"expected an object, got {type(comment).__name__}", None
        text = _comment_text(comment)
        if text is None:
            return "missing 'body'", None
        author = _key(comment.get("author_id"))
        if not author:
            return "missing 'author_id'", None
        try:
            sent_at = parse_timestamp(comment.get("created_at"))
        except ValueError as exc:
            return f"'created_at' {exc}", None
        if sent_at is None:
            return "missing 'created_at'", None
        comment_id = comment.get("id")
        return None, {
            "participant_id": f"user-{author}",
            "author": author,
            "text": text,
            "sent_at": sent_at,
            "internal": not _is_public(comment.get("public")),
            "meta": {} if comment_id is None else {"comment_id": comment_id},
        }


def _participants(
    requester: str, assignee: str, authors: list[str], users: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Participant fields by user id: requester, assignee, then authors as they first write."""
    participants: dict[str, dict[str, Any]] = {}
    for key in (requester, assignee, *authors):
        if not key or key in participants:
            continue
        user = users.get(key) or {}
        participants[key] = {
            "participant_id": f"user-{key}",
            "name": _text(user.get("name")),
            "email": _text(user.get("email")),
            "role": _role(user or None, key, requester, assignee),
            "external_ids": {"zendesk_user_id": key},
        }
    return participants


def _with_users(
    ticket: dict[str, Any], users: dict[str, dict[str, Any]], referenced: dict[str, Any]
) -> dict[str, Any]:
    """The ticket with the users it refers to embedded, as a JSONL line would carry them.

    A raw record must replay on its own; the document-level "users" list would be lost.
    """
    own = _index_users(ticket.get("users"))
    extra = [users[key] for key in referenced if key in users and key not in own]
    if not extra or (ticket.get("users") is not None and not isinstance(ticket["users"], list)):
        return ticket
    return {**ticket, "users": [*(ticket.get("users") or []), *extra]}


# Ahead of the generic conversation JSON adapter, whatever the import order.
register_adapter(HelpdeskAdapter, before="json")
