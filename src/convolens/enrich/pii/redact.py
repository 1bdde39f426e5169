"""Replacing what the detector found: one operator per type, positions kept for evidence.

- ``tag`` (default): ``<PERSON>``, ``<EMAIL_ADDRESS>``, ...: readable, and the type survives;
- ``hash``: ``<PERSON_1a2b3c4d>``, a salted sha256 prefix, so the same value links across
  conversations without being readable;
- ``mask``: every character becomes ``*``: lengths and offsets stay unchanged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from convolens.enrich.pii.policy import PiiConfig

if TYPE_CHECKING:
    from convolens.enrich.pii.detect import Finding

__all__ = [
    "CHUNK_CHARS",
    "Redaction",
    "RedactionGroup",
    "Redactor",
    "chunk_spans",
    "redact_words",
    "replacement",
]

# Two letters in a row: what the NER needs to find a name (a bare number, date or id has
# none and is left to the patterns).
_WORDLIKE = re.compile(r"[^\W\d_]{2}")
# The longest piece of text the detectors read at once: well under spaCy's max_length
# (1,000,000) and a few NER windows (256 word pieces each), so patterns stay linear and a
# name near the end of a huge message is read with the words around it.
CHUNK_CHARS = 2000


@dataclass(frozen=True)
class RedactionGroup:
    """The texts of one conversation, with the name words of its people and its bots."""

    texts: list[str]
    participants: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    # text index -> index of a text of the same length the NER reads in its place: a
    # field ("jane_doe-passport.pdf") is read once, as its separators-as-spaces twin.
    read_as: dict[int, int] = field(default_factory=dict)


class Redaction(BaseModel):
    """One replaced value: its type and where the replacement sits in the redacted text."""

    entity_type: str
    start: int
    end: int
    original_start: int
    original_end: int
    score: float
    replacement: str


def replacement(config: PiiConfig, entity_type: str, value: str) -> str:
    """What `value` of `entity_type` becomes under the policy's operator for that type."""
    operator = config.operator_for(entity_type)
    if operator == "mask":
        return "*" * len(value)
    if operator == "hash":
        # Case and spacing differ between mentions of one value ("John Smith", "john
        # smith"); normalise so they link.
        key = " ".join(value.lower().split())
        digest = hashlib.sha256((config.hash_salt + key).encode()).hexdigest()[:8]
        return f"<{entity_type}_{digest}>"
    return f"<{entity_type}>"


class Redactor:
    """Detects and replaces PII in batches of texts under one policy."""

    def __init__(self, config: PiiConfig | None = None) -> None:
        self.config = config or PiiConfig()
        self._presidio: Any = None
        if self.config.detector == "presidio":
            from convolens.enrich.pii.presidio_baseline import PresidioRedactor

            self._presidio = PresidioRedactor(self.config)
            self.model_id = self._presidio.model_id
        else:
            from convolens.enrich.pii.detect import Detector

            self.detector = Detector(self.config)
            self.model_id = f"rules+{self.detector.ner.model_id}"
        self.redacted_types = frozenset(self.config.entities)

    def redact(
        self,
        texts: list[str],
        parses: Sequence[Any] | None = None,
        *,
        participants: list[str] | None = None,
        keep: list[str] | None = None,
    ) -> list[tuple[str, list[Redaction]]]:
        """Each text redacted, with what was replaced (positions in the redacted text).

        `participants`: name words of the conversation's participants (display names,
        email local parts), redacted as people wherever they occur; `keep`: names that are
        not people here (bots' names). `parses` are only read
        by the Presidio detector (spaCy Docs of `texts`).
        """
        if self._presidio is not None:
            result: list[tuple[str, list[Redaction]]] = self._presidio.redact(texts, parses)
            return result
        return self.redact_groups([RedactionGroup(texts, participants or [], keep or [])])[0]

    def redact_groups(
        self, groups: Sequence[RedactionGroup]
    ) -> list[list[tuple[str, list[Redaction]]]]:
        """`redact` for several conversations at once: the NER reads the chunks of every
        group in one batch (full model batches), each group keeps its own participants.

        Texts longer than `CHUNK_CHARS` are read in chunks cut at sentence ends or spaces,
        so a message of any length is redacted (never refused) and no detector reads more
        than the NER's and spaCy's limits at once.
        """
        if self._presidio is not None:
            return [self.redact(g.texts, participants=g.participants, keep=g.keep) for g in groups]
        from convolens.enrich.pii.detect import Finding

        chunks: list[str] = []
        sources: list[str] = []  # what the NER reads for each chunk
        owners: list[list[tuple[int, int]]] = []  # per group: (text index, chunk offset)
        for group in groups:
            mine = []
            for index, text in enumerate(group.texts):
                twin = group.texts[group.read_as[index]] if index in group.read_as else None
                alias = twin if twin and len(twin) == len(text) <= CHUNK_CHARS else None
                for start, end in chunk_spans(text):
                    chunks.append(text[start:end])
                    sources.append(alias or text[start:end])
                    mine.append((index, start))
            owners.append(mine)
        # Conversations repeat themselves (quoted replies, To/Cc lists, names in fields):
        # the model reads each distinct chunk once, and only chunks with words in them.
        unique = list(dict.fromkeys(s for s in sources if _WORDLIKE.search(s)))
        read = dict(zip(unique, self.detector.ner.words(unique), strict=True))
        tagged = [read.get(source, []) for source in sources]
        out: list[list[tuple[str, list[Redaction]]]] = []
        cursor = 0
        for group, mine in zip(groups, owners, strict=True):
            found = self.detector.find(
                chunks[cursor : cursor + len(mine)],
                group.participants,
                group.keep,
                read=tagged[cursor : cursor + len(mine)],
            )
            cursor += len(mine)
            per_text: list[list[Finding]] = [[] for _ in group.texts]
            for (index, offset), findings in zip(mine, found, strict=True):
                for f in findings:
                    per_text[index].append(
                        Finding(f.start + offset, f.end + offset, f.entity_type, f.score, f.source)
                    )
            out.append([self._replace(t, f) for t, f in zip(group.texts, per_text, strict=True)])
        return out

    def _replace(self, text: str, found: list[Finding]) -> tuple[str, list[Redaction]]:
        pieces: list[str] = []
        redactions: list[Redaction] = []
        cursor = 0
        length = 0
        for item in found:
            if item.entity_type not in self.redacted_types:
                continue
            pieces.append(text[cursor : item.start])
            length += item.start - cursor
            new = replacement(self.config, item.entity_type, text[item.start : item.end])
            redactions.append(
                Redaction(
                    entity_type=item.entity_type,
                    start=length,
                    end=length + len(new),
                    original_start=item.start,
                    original_end=item.end,
                    score=round(item.score, 4),
                    replacement=new,
                )
            )
            pieces.append(new)
            length += len(new)
            cursor = item.end
        pieces.append(text[cursor:])
        return "".join(pieces), redactions


def chunk_spans(text: str, limit: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """Consecutive (start, end) spans covering `text`, each at most `limit` characters, cut
    after a line or sentence end where there is one in the second half of the window, else
    at the last space, else hard (a run of 2,000 characters without a space is no name)."""
    spans: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        half = limit // 2
        cut = max(window.rfind("\n"), *(window.rfind(p) + 1 for p in (". ", "! ", "? ")))
        if cut < half:
            cut = window.rfind(" ")
        if cut < half:
            cut = limit
        spans.append((start, start + cut))
        start += cut
    spans.append((start, len(text)))
    return spans


def redact_words(original: str, words: list[str], redactions: list[Redaction]) -> list[str]:
    """Word texts for a redacted utterance: a word that overlapped a replaced value becomes
    the replacement (so word-level exports leak nothing); the others stay as they were.

    Word positions are found by scanning `original` in order (an utterance's text is its
    words joined); a word that cannot be located is replaced, to err on the safe side.
    """
    if not redactions:
        return list(words)
    out: list[str] = []
    cursor = 0
    for word in words:
        token = word.strip()
        at = original.find(token, cursor) if token else -1
        if at < 0:
            out.append(redactions[0].replacement)
            continue
        cursor = at + len(token)
        hit = next(
            (r for r in redactions if r.original_start < cursor and at < r.original_end), None
        )
        out.append(hit.replacement if hit else word)
    return out
