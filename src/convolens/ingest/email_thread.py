"""Email intake: .eml files and .mbox archives, rebuilt into one conversation per thread.

Threads are assembled across every file given to one `parse_many` call, from the
Message-ID, In-Reply-To and References headers (union-find: a message joins the thread
of every id it references, present or not). The thread root is the message none of whose
referenced ids is present in the batch, the oldest one if there are several; its
Message-ID (without <>) is the conversation's `source.source_id`. Messages without a
Message-ID get a synthetic one from a hash of their bytes. Messages are never merged by
subject: without threading headers a message is a conversation of its own, which keeps
the result predictable (two unrelated "Invoice" emails stay apart). A Message-ID seen
twice in one batch is kept once (the first), with a warning.

Bodies: text/plain preferred, else text/html as text; quoted replies and signatures are
removed by `email_text.clean_body`. Broken MIME parts and unknown charsets become
warnings; a message is rejected only when no text at all can be read from it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from pydantic import ValidationError

from convolens.ingest.base import (
    Adapter,
    Parsed,
    ParseResult,
    RawRecord,
    Reject,
    SourceFile,
    describe_validation_error,
    safe_reason,
)
from convolens.ingest.email_text import clean_body, extract_text, strip_reply_prefix
from convolens.ingest.registry import register_adapter
from convolens.model import Channel, Conversation, Participant, Role, SourceInfo, Utterance

__all__ = ["EmailAdapter"]

# With no agent_domains option, a domain is taken as the company's when any address on it
# has one of these local parts (support@acme.com makes jane@acme.com an agent).
AGENT_LOCAL_PARTS = frozenset(
    {"support", "help", "helpdesk", "service", "billing", "sales", "success", "care", "team"}
    | {"noreply", "no-reply", "hello", "accounts"}
)
# ...except public mailbox providers: a customer's sales@gmail.com is no company domain.
_FREEMAIL = frozenset(
    {"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com"}
    | {"icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "web.de", "protonmail.com"}
)
# A file is taken for an email only if it starts with at least one of these headers.
_MAIL_HEADERS = frozenset(
    {"from", "to", "cc", "subject", "date", "message-id", "received", "return-path"}
    | {"mime-version", "in-reply-to", "references", "sender", "reply-to", "delivered-to"}
)
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNKNOWN_SENDER = "unknown-sender"


@dataclass
class _Message:
    source: SourceFile
    locator: str  # raw-layer locator: the file name, or "message N <id>" in an mbox
    label: str  # for warnings: "reply.eml" or "archive.mbox message 3"
    raw: bytes
    message_id: str
    parents: list[str]
    in_reply_to: str | None
    subject: str | None
    sent_at: datetime | None
    sender: tuple[str, str]
    to: list[str]
    cc: list[str]
    text: str
    warnings: list[str] = field(default_factory=list)

    def __lt__(self, other: _Message) -> bool:  # date order; undated last; then by id
        return self._key < other._key

    @property
    def _key(self) -> tuple[bool, datetime, str]:
        return (self.sent_at is None, self.sent_at or _EPOCH, self.message_id)


class EmailAdapter(Adapter):
    name = "email"
    suffixes = (".eml", ".mbox")
    description = "Email: .eml files and .mbox archives, threaded into conversations."

    def sniff(self, source: SourceFile) -> bool:
        return super().sniff(source) or source.head(5) == b"From "

    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        return self.parse_many([source])

    def parse_many(self, sources: Iterable[SourceFile]) -> Iterator[ParseResult]:
        messages: dict[str, _Message] = {}
        late_warnings: dict[str, list[str]] = {}
        for source in sources:
            for item in self._read_file(source):
                if isinstance(item, Reject):
                    yield item
                elif item.message_id in messages:
                    first = messages[item.message_id].label
                    late_warnings.setdefault(item.message_id, []).append(
                        f"{item.label}: same Message-ID as {first}; skipped as a duplicate"
                    )
                else:
                    messages[item.message_id] = item
        # Agent domains are learnt from the whole batch: a mailbox where support@ appears in
        # some threads tells who the agents are in threads where they write as name@.
        domains = self._agent_domains(list(messages.values()))
        for group in _threads(messages.values()):
            try:
                yield self._conversation(group, late_warnings, domains)
            except Exception as exc:  # one thread that trips the assembler is its reject
                root = min(group)
                yield Reject(str(root.source.path), root.locator, safe_reason(exc), self.name)

    # -- reading ---------------------------------------------------------------------

    def _read_file(self, source: SourceFile) -> Iterator[_Message | Reject]:
        if not source.data.strip():
            yield Reject(str(source.path), "", f"{source.name} is empty", self.name)
            return
        archive = source.path.suffix.lower() == ".mbox" or (
            source.path.suffix.lower() != ".eml" and source.data.startswith(b"From ")
        )
        chunks = _split_mbox(source.data) if archive else [source.data]
        for number, raw in enumerate(chunks or [source.data], start=1):
            where = f"message {number}" if archive else ""
            try:
                yield self._read_message(source, raw, where)
            except Exception as exc:  # a parser bug must not stop the batch
                reason = f"could not read message: {type(exc).__name__}: {exc}"
                yield Reject(str(source.path), where, reason, self.name, raw)

    def _read_message(self, source: SourceFile, raw: bytes, where: str) -> _Message | Reject:
        label = f"{source.name} {where}".strip()
        msg = message_from_bytes(raw, policy=policy.default)
        if not any(key.lower() in _MAIL_HEADERS for key in msg):
            # Reject.describe() already names the file.
            reason = (
                "not an email message: it does not start with mail headers "
                "(From:, Subject:, Date:, ...)"
            )
            return Reject(str(source.path), where, reason, self.name, raw)
        warnings: list[str] = []
        own_ids = _ids(_header(msg, "Message-ID"))
        message_id = own_ids[0] if own_ids else _synthetic_id(raw)
        in_reply_to = _ids(_header(msg, "In-Reply-To"))
        parents = [i for i in _ids(_header(msg, "References")) + in_reply_to if i != message_id]
        body, body_warnings = extract_text(msg, label)
        warnings += body_warnings
        if body is None:
            return Reject(str(source.path), where, "no readable text body", self.name, raw)
        senders = _addresses(msg, "From")
        if not senders:
            warnings.append(f"{label}: no sender address in From:; sender recorded as unknown")
        locator = source.name
        if where:
            locator = f"{where} <{message_id}>" if own_ids else where
        return _Message(
            source=source,
            locator=locator,
            label=label,
            raw=raw,
            message_id=message_id,
            parents=list(dict.fromkeys(parents)),
            in_reply_to=in_reply_to[0] if in_reply_to else None,
            subject=_header(msg, "Subject"),
            sent_at=_date(msg, label, warnings),
            sender=senders[0] if senders else ("", ""),
            to=[address for _, address in _addresses(msg, "To")],
            cc=[address for _, address in _addresses(msg, "Cc")],
            text=clean_body(body) or body.strip(),
            warnings=warnings,
        )

    # -- assembling ------------------------------------------------------------------

    def _conversation(
        self, group: list[_Message], late: dict[str, list[str]], domains: set[str]
    ) -> ParseResult:
        present = {m.message_id for m in group}
        root = min([m for m in group if not present.intersection(m.parents)] or group)
        # The thread is named after its original message: the root's own id, or, when the
        # original is not in this batch, the first id of the root's References (which every
        # reply carries), so a partial thread keeps the same canonical id.
        thread_id = root.parents[0] if root.parents else root.message_id
        ordered = sorted(group)
        participants: dict[str, Participant] = {}
        try:
            utterances = []
            for m in ordered:
                name, address = m.sender
                pid = address.lower() or _UNKNOWN_SENDER
                role = _role(address, domains) if address else Role.unknown
                participants.setdefault(
                    pid,
                    Participant(
                        participant_id=pid, name=name or None, role=role, email=address or None
                    ),
                )
                meta = {"message_id": m.message_id, "subject": m.subject, "to": m.to, "cc": m.cc}
                meta["in_reply_to"] = m.in_reply_to
                utterances.append(
                    Utterance(participant_id=pid, text=m.text, sent_at=m.sent_at, meta=meta)
                )
            conversation = Conversation(
                channel=Channel.email,
                source=SourceInfo(
                    system=self.options.source_system or "email",
                    source_id=thread_id,
                    # The first staff member to write owns the thread, as in a helpdesk.
                    agent=next(
                        (p.name or p.email for p in participants.values() if p.role == Role.agent),
                        None,
                    ),
                ),
                started_at=next((m.sent_at for m in ordered if m.sent_at), None),
                subject=strip_reply_prefix(root.subject) or None,
                participants=list(participants.values()),
                utterances=utterances,
            )
        except ValidationError as exc:
            reason = f"invalid thread: {describe_validation_error(exc)}"
            return Reject(str(root.source.path), root.locator, reason, self.name, root.raw)
        warnings = [w for m in ordered for w in m.warnings + late.get(m.message_id, [])]
        raw = [RawRecord(str(m.source.path), m.locator, m.raw) for m in ordered]
        return Parsed(conversation, raw, self.name, warnings)

    def _agent_domains(self, group: list[_Message]) -> set[str]:
        if self.options.agent_domains:
            return {d.strip().lstrip("@").lower() for d in self.options.agent_domains}
        guessed = set()
        for m in group:
            for address in [m.sender[1], *m.to, *m.cc]:
                local, _, domain = address.lower().rpartition("@")
                if local in AGENT_LOCAL_PARTS and domain and domain not in _FREEMAIL:
                    guessed.add(domain)
        return guessed


def _role(address: str, agent_domains: set[str]) -> Role:
    domain = address.rpartition("@")[2].lower()
    agent = any(domain == d or domain.endswith("." + d) for d in agent_domains)
    return Role.agent if agent else Role.customer


def _threads(messages: Iterable[_Message]) -> list[list[_Message]]:
    """Union-find over message ids: each message is joined with every id it references."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    items = list(messages)
    for m in items:
        for other in m.parents:
            a, b = find(m.message_id), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[_Message]] = {}
    for m in items:
        groups.setdefault(find(m.message_id), []).append(m)
    return sorted(groups.values(), key=min)


def _split_mbox(data: bytes) -> list[bytes]:
    """Messages of an mbox, as stored: without the "From " envelope line and the blank
    line that separates them. A "From " line starts a message only at the start of the
    file or after a blank line, so an unescaped "From " inside a body does not split it."""
    messages: list[list[bytes]] = []
    previous_blank = True
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From ") and previous_blank:
            messages.append([])
        elif messages:
            messages[-1].append(line)
        previous_blank = not line.strip()
    out = []
    for lines in messages:
        chunk = b"".join(lines)
        for separator in (b"\r\n", b"\n"):
            if chunk.endswith(separator * 2):
                chunk = chunk[: -len(separator)]
                break
        out.append(chunk)
    return out


def _header(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
        text = None if value is None else str(value)
    except Exception:  # a malformed header the parser chokes on: use it raw
        text = next((str(v) for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    text = " ".join(_unescape(text).split()) if text else ""
    return text or None


def _unescape(text: str) -> str:
    # Raw 8-bit header bytes come back from the parser as surrogate escapes, which
    # cannot be stored: read them as UTF-8, the usual encoding of unencoded headers.
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return text.encode("utf-8", "replace").decode("utf-8")


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    try:
        values = [str(v) for v in msg.get_all(name) or []]
    except Exception:
        values = [str(v) for k, v in msg.raw_items() if k.lower() == name.lower()]
    values = [_unescape(value) for value in values]
    return [(n.strip(), a.strip()) for n, a in getaddresses(values) if "@" in a]


def _ids(value: str | None) -> list[str]:
    if not value:
        return []
    found = _MESSAGE_ID.findall(value)
    if not found and len(value.split()) == 1 and "@" in value:
        found = [value.strip("<>")]
    return list(dict.fromkeys(found))


def _synthetic_id(raw: bytes) -> str:
    return f"sha256-{hashlib.sha256(raw).hexdigest()[:32]}@convolens.invalid"


def _date(msg: Message, label: str, warnings: list[str]) -> datetime | None:
    value = _header(msg, "Date")
    if value is None:
        warnings.append(f"{label}: no Date header; time unknown")
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        warnings.append(f"{label}: unreadable Date {value!r}; time unknown")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


register_adapter(EmailAdapter)
