"""Redaction at intake: a conversation is redacted before the normalised layer is written.

Every text a non-admin can read is redacted here, once, by the `pii` policy: utterance and
word texts, the subject, string values anywhere in the conversation's and the utterances'
`meta` (an email's Subject and To/Cc, attachments' names, custom fields), tags, the
names and emails of the people taking part (staff and bots keep theirs: scorecards and an
agent's own view are keyed on them), participant ids that spell an address or a name,
and the ingest warnings. The verbatim source is stored only in `raw_interactions`.

The content hash is taken from the source before redaction, so re-ingesting the same
files is still recognised as unchanged. A conversation whose redaction fails, for any
reason, is quarantined (`Quarantined`): it is not written, and the others go on.
The NER and the policy are loaded once per process (`intake_redactor`) and every batch of
conversations goes through the model in one pass.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from convolens.enrich.pii.detect import participant_terms
from convolens.enrich.pii.policy import INTAKE_POLICY_KEY, PiiConfig, policy_version
from convolens.enrich.pii.redact import (
    Redaction,
    RedactionGroup,
    Redactor,
    redact_words,
    replacement,
)
from convolens.ingest.base import Parsed, Reject, safe_reason
from convolens.model import Conversation, Participant, Role, Utterance

__all__ = ["QUARANTINE_REASON", "IntakeRedactor", "Quarantined", "intake_redactor"]

QUARANTINE_REASON = (
    "quarantined: redaction failed, so it was not stored (an admin sees why with "
    "'convolens quarantine'; ingest it again after the fix)"
)

# Their names are the organisation's: agents are measured and scoped by them, a bot's
# name is the product's.
_STAFF = {Role.agent, Role.bot}
# Separators of file names and slugs ("jane_doe-passport.pdf"): read as spaces too, so the
# name words in them are seen.
_SEPARATORS = re.compile(r"[_\-./+]")
_EMAIL_LIKE = re.compile(r"@|\d{6,}")


@dataclass
class Quarantined:
    """A conversation redaction could not pass: where it came from and why."""

    parsed: Parsed
    reason: str

    def as_reject(self) -> Reject:
        """The line reports and job results show: the reason itself is for admins only
        (`convolens quarantine`), as it may quote what the redactor was reading."""
        first = self.parsed.raw[0] if self.parsed.raw else None
        return Reject(
            first.source_path if first else "",
            first.locator if first else "",
            QUARANTINE_REASON,
            self.parsed.source_format,
        )


@dataclass
class _Slot:
    """One string field outside the utterance texts, and how to put its redaction back."""

    text: str
    put: Callable[[str], None]


class IntakeRedactor:
    """Redacts every text field of parsed conversations under one policy."""

    def __init__(self, config: PiiConfig | None = None, redactor: Redactor | None = None):
        self.config = config or PiiConfig()
        self._redactor = redactor
        self._lock = threading.Lock()

    @property
    def redactor(self) -> Redactor:
        """The detectors, loaded on first use: a policy whose model cannot be loaded
        quarantines what it was given (with the reason) instead of stopping the caller."""
        with self._lock:
            if self._redactor is None:
                self._redactor = Redactor(self.config)
            return self._redactor

    def apply(self, batch: Sequence[Parsed]) -> tuple[list[Parsed], list[Quarantined]]:
        """The conversations redacted in place (returned), and those quarantined."""
        for item in batch:
            _ = item.content_hash  # of the source, before any text changes
        try:
            self._redact(list(batch))
            return list(batch), []
        except Exception:  # one of them is at fault: find it, the others go on
            pass
        passed: list[Parsed] = []
        quarantined: list[Quarantined] = []
        for item in batch:
            try:
                self._redact([item])
                passed.append(item)
            except Exception as exc:
                quarantined.append(Quarantined(item, _reason(exc)))
        return passed, quarantined

    def redact_utterance(self, utterance: Utterance, people: Sequence[Participant]) -> None:
        """One utterance's text and words redacted in place (a live stream's, before its
        events go out); `people` are the conversation's participants so far."""
        original = utterance.text
        utterance.text, found = self.redact_text(original, people)
        if found and utterance.words:
            replaced = redact_words(original, [w.text for w in utterance.words], found)
            for word, text in zip(utterance.words, replaced, strict=True):
                word.text = text

    def redact_text(self, text: str, people: Sequence[Participant]) -> tuple[str, list[Redaction]]:
        """`text` redacted, with what was replaced, as said among `people`."""
        humans = [p for p in people if p.role != Role.bot]
        names = participant_terms([p.name for p in humans], [p.email for p in humans])
        bots = participant_terms([p.name for p in people if p.role == Role.bot], [])
        return self.redactor.redact_groups([RedactionGroup([text], names, bots)])[0][0]

    # -- inside ---------------------------------------------------------------------

    def _redact(self, batch: list[Parsed]) -> None:
        self._redact_conversations([p.conversation for p in batch], [p.warnings for p in batch])

    def _redact_conversations(
        self, conversations: list[Conversation], warnings: list[list[str]]
    ) -> None:
        groups: list[RedactionGroup] = []
        slots: list[list[_Slot]] = []
        for conversation, notes in zip(conversations, warnings, strict=True):
            people = [p for p in conversation.participants if p.role != Role.bot]
            names = participant_terms([p.name for p in people], [p.email for p in people])
            bots = participant_terms(
                [p.name for p in conversation.participants if p.role == Role.bot], []
            )
            fields = _fields(conversation, notes)
            texts = [u.text for u in conversation.utterances]
            # A field is read as written and with its separators as spaces (same length;
            # empty where it has none: nothing more to read). The patterns read both; the
            # NER only the spaced one where there is one (the same words, better cut).
            as_spaces = [_spaced(s.text) for s in fields]
            first, twins = len(texts), len(texts) + len(fields)
            read_as = {first + k: twins + k for k, twin in enumerate(as_spaces) if twin}
            texts += [s.text for s in fields]
            texts += as_spaces
            groups.append(RedactionGroup(texts, names, bots, read_as))
            slots.append(fields)
        results = self.redactor.redact_groups(groups)
        for conversation, fields, result in zip(conversations, slots, results, strict=True):
            count = len(conversation.utterances)
            for utterance, (new_text, found) in zip(
                conversation.utterances, result[:count], strict=True
            ):
                if not found:
                    continue
                if utterance.words:
                    replaced = redact_words(
                        utterance.text, [w.text for w in utterance.words], found
                    )
                    for word, text in zip(utterance.words, replaced, strict=True):
                        word.text = text
                utterance.text = new_text
            plain = result[count : count + len(fields)]
            spaced = result[count + len(fields) :]
            for slot, (_, found), (_, also) in zip(fields, plain, spaced, strict=True):
                if found or also:
                    slot.put(self._merge(slot.text, [*found, *also]))
            self._participants(conversation)
            # The `pii` component reads this and does not run the detectors again.
            conversation.meta[INTAKE_POLICY_KEY] = policy_version(self.config)

    def _merge(self, text: str, found: list[Redaction]) -> str:
        """`text` with the union of the findings of both readings replaced."""
        spans: list[list[Any]] = []
        for item in sorted(found, key=lambda r: (r.original_start, -r.original_end)):
            if spans and item.original_start < spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], item.original_end)
                continue
            spans.append([item.original_start, item.original_end, item.entity_type])
        out, cursor = [], 0
        for start, end, entity_type in spans:
            out.append(text[cursor:start])
            out.append(replacement(self.config, entity_type, text[start:end]))
            cursor = end
        out.append(text[cursor:])
        return "".join(out)

    def _email_pseudonym(self, email: str) -> str:
        """A customer's address as `<EMAIL_ADDRESS_1a2b3c4d>@brightlane.io`: the person is
        gone, the organisation stays (accounts are stitched by their domain), and one
        address is one pseudonym everywhere (repeat contacts still link)."""
        if email.startswith("<EMAIL_ADDRESS"):  # already one (a batch retried item by item)
            return email
        _, at, domain = email.strip().rpartition("@")
        key = " ".join(email.lower().split())
        digest = hashlib.sha256((self.config.hash_salt + key).encode()).hexdigest()[:8]
        return f"<EMAIL_ADDRESS_{digest}>" + (f"@{domain.lower()}" if at and domain else "")

    def _participants(self, conversation: Conversation) -> None:
        """Customers' (and unknown speakers') names and emails replaced; an id that spells
        one becomes a pseudonym, the same for the same id and salt."""
        types = set(self.config.entities)
        renamed: dict[str, str] = {}
        for participant in conversation.participants:
            if participant.role in _STAFF:
                continue
            terms = participant_terms([participant.name], [participant.email])
            pid = participant.participant_id
            # A label that names no one ("Customer", "Caller 2", "Speaker") stays.
            if "PERSON" in types and participant.name and participant_terms([participant.name], []):
                participant.name = replacement(self.config, "PERSON", participant.name)
            if "EMAIL_ADDRESS" in types and participant.email:
                participant.email = self._email_pseudonym(participant.email)
            lowered = pid.lower()
            if _EMAIL_LIKE.search(pid) or any(t.lower() in lowered for t in terms):
                digest = hashlib.sha256((self.config.hash_salt + pid).encode()).hexdigest()
                renamed[pid] = f"{participant.role.value}-{digest[:10]}"
                participant.participant_id = renamed[pid]
            for key, value in list(participant.external_ids.items()):
                if "@" in value and "EMAIL_ADDRESS" in types:
                    participant.external_ids[key] = replacement(self.config, "EMAIL_ADDRESS", value)
        if renamed:
            for utterance in conversation.utterances:
                utterance.participant_id = renamed.get(
                    utterance.participant_id, utterance.participant_id
                )


def _spaced(text: str) -> str:
    spaced = _SEPARATORS.sub(" ", text)
    return spaced if spaced != text else ""


def _fields(conversation: Conversation, warnings: list[str]) -> list[_Slot]:
    """Every string outside the utterance texts that is stored readable."""
    slots: list[_Slot] = []
    if conversation.subject:
        slots.append(_Slot(conversation.subject, lambda v: setattr(conversation, "subject", v)))
    tags = conversation.source.tags
    for index, tag in enumerate(tags):
        slots.append(_Slot(tag, functools.partial(tags.__setitem__, index)))
    _strings(conversation.meta, slots)
    for utterance in conversation.utterances:
        _strings(utterance.meta, slots)
    for index, note in enumerate(warnings):
        slots.append(_Slot(note, functools.partial(warnings.__setitem__, index)))
    return slots


def _strings(value: dict[str, Any] | list[Any], slots: list[_Slot]) -> None:
    """Slots for the string values nested in a meta dict or list (keys are left alone)."""
    pairs: list[tuple[Any, Any]] = (
        list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    )
    for key, item in pairs:
        if isinstance(item, str):
            if item.strip():
                slots.append(_Slot(item, functools.partial(_put, value, key)))
        elif isinstance(item, dict | list):
            _strings(item, slots)


def _put(container: dict[str, Any] | list[Any], key: Any, text: str) -> None:
    container[key] = text


def _reason(exc: BaseException) -> str:
    """Why redaction failed (for admins), without server paths or a traceback."""
    return safe_reason(exc, limit=200).replace("could not be read", "redaction failed", 1)


@functools.lru_cache(maxsize=4)
def _cached(config_json: str) -> IntakeRedactor:
    return IntakeRedactor(PiiConfig.model_validate_json(config_json))


def intake_redactor(config: PiiConfig | dict[str, Any] | None = None) -> IntakeRedactor:
    """The redactor for `config` (a `[components.pii]` table or a PiiConfig), loaded once
    per process and policy: intake runs the NER on every batch."""
    settings = config if isinstance(config, PiiConfig) else PiiConfig.model_validate(config or {})
    return _cached(settings.model_dump_json())
