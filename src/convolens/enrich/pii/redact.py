"""Replacing what the detector found: one operator per type, positions kept for evidence.

- ``tag`` (default): ``<PERSON>``, ``<EMAIL_ADDRESS>``, ...: readable, and the type survives;
- ``hash``: ``<PERSON_1a2b3c4d>``, a salted sha256 prefix, so the same value links across
  conversations without being readable;
- ``mask``: every character becomes ``*``: lengths and offsets stay unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from convolens.enrich.pii.policy import PiiConfig

__all__ = ["Redaction", "Redactor", "redact_words", "replacement"]


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
        findings = self.detector.find(texts, participants, keep)
        out: list[tuple[str, list[Redaction]]] = []
        for text, found in zip(texts, findings, strict=True):
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
            out.append(("".join(pieces), redactions))
        return out


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
