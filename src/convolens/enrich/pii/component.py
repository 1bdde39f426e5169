"""The `pii` enrichment component: the first one, so every later one sees redacted text.

It rewrites the utterance texts (and the subject) of the documents it labels
(`rewrites_text = True`); the runner stores the redacted text in the normalised layer, so
exports, `show`, summaries and every later component see it, and the verbatim source stays
only in the raw layer. Its labels (`pii.entity`, `pii.summary`) never hold the original
value: only the type, the score and the span of the replacement in the redacted text.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.pii.detect import REDACTED, participant_terms
from convolens.enrich.pii.policy import INTAKE_POLICY_KEY, PiiConfig, policy_version
from convolens.enrich.pii.redact import Redactor, redact_words
from convolens.model import Role

__all__ = ["PiiComponent"]

_TAG_PARTS = re.compile(r"<([A-Z_]*[A-Z])(_[0-9a-f]{8})?>")


def _tag_type(tag: str) -> tuple[str, bool]:
    """("PERSON", False) for "<PERSON>", ("EMAIL_ADDRESS", True) for a hashed one."""
    match = _TAG_PARTS.fullmatch(tag)
    return (match.group(1), bool(match.group(2))) if match else (tag.strip("<>"), False)


# Participants whose names are product names, not people.
_NOT_PEOPLE = {Role.bot}


class PiiComponent(Component):
    """Finds PII (trained NER + rules) and replaces it in every utterance and the subject."""

    name: ClassVar[str] = "pii"
    version: ClassVar[str] = "2"
    assigns: ClassVar[tuple[str, ...]] = ("pii.entity", "pii.summary")
    description: ClassVar[str] = (
        "PII redaction (trained NER + rules): names, emails, phones, cards, IBANs, SSNs, "
        "account numbers, addresses, dates of birth; spoken and split digits too"
    )
    rewrites_text: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.settings = PiiConfig.model_validate(self.config)
        self.redactor = Redactor(self.settings)
        self.model_id = self.redactor.model_id
        # The configuration decides what a label means: it is this component's taxonomy.
        self.taxonomy_version = policy_version(self.settings)

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        return [self._one(doc) for doc in batch]

    def _reported(self, doc: Doc) -> list[Annotation]:
        """The labels of text intake redacted: one per replacement it left."""
        annotations: list[Annotation] = []
        counts: Counter[str] = Counter()
        for index, utterance in enumerate(doc.conversation.utterances):
            annotations += self._intake_tags(doc, index, utterance.text, set(), counts)
        if counts:
            annotations.append(
                Annotation(
                    label="pii.summary",
                    value={"redacted": sum(counts.values()), "by_type": dict(counts)},
                )
            )
        return annotations

    def _intake_tags(
        self,
        doc: Doc,
        index: int,
        text: str,
        fresh: set[tuple[int, int]],
        counts: Counter[str],
    ) -> list[Annotation]:
        """Labels for the replacements in `text` this run did not make (intake's)."""
        out = []
        for match in REDACTED.finditer(text):
            if match.span() in fresh:
                continue
            entity_type, hashed = _tag_type(match.group())
            counts[entity_type] += 1
            out.append(
                Annotation(
                    label="pii.entity",
                    value={
                        "type": entity_type,
                        "operator": "hash" if hashed else "tag",
                        "replacement": match.group(),
                        "at": "intake",
                    },
                    utterance_id=doc.utterance_ids[index],
                    evidence=[Evidence(doc.utterance_ids[index], *match.span())],
                )
            )
        return out

    def _one(self, doc: Doc) -> list[Annotation]:
        conversation = doc.conversation
        people = [p for p in conversation.participants if p.role not in _NOT_PEOPLE]
        names = participant_terms([p.name for p in people], [p.email for p in people])
        # A bot's name ("Nori, Northwind's virtual assistant") is the product's, not a person's.
        bots = participant_terms(
            [p.name for p in conversation.participants if p.role in _NOT_PEOPLE], []
        )
        utterances = conversation.utterances
        texts = [u.text for u in utterances]
        # Intake redacted this text under this very policy (ingest.redact_intake), with the
        # participants' real names: reading it again finds nothing, only what it replaced.
        if conversation.meta.get(INTAKE_POLICY_KEY) == self.taxonomy_version:
            return self._reported(doc)
        parses = None
        if self.settings.detector == "presidio":
            from convolens.enrich.nlp import parsed

            parses = parsed([doc], self.redactor._presidio.nlp)[0]
        redacted = self.redactor.redact(texts, parses, participants=names, keep=bots)
        annotations: list[Annotation] = []
        counts: Counter[str] = Counter()
        for index, utterance in enumerate(utterances):
            new_text, redactions = redacted[index]
            if redactions:
                if utterance.words:
                    replaced = redact_words(
                        utterance.text, [w.text for w in utterance.words], redactions
                    )
                    for word, text in zip(utterance.words, replaced, strict=True):
                        word.text = text
                utterance.text = new_text
            for item in redactions:
                counts[item.entity_type] += 1
                annotations.append(
                    Annotation(
                        label="pii.entity",
                        value={
                            "type": item.entity_type,
                            "operator": self.settings.operator_for(item.entity_type),
                            "replacement": item.replacement,
                        },
                        confidence=round(item.score, 4),
                        utterance_id=doc.utterance_ids[index],
                        evidence=[Evidence(doc.utterance_ids[index], item.start, item.end)],
                    )
                )
            # Intake redacted the text before it was stored (ingest.redact_intake): what it
            # replaced is reported too, so the labels say what the text held either way.
            fresh = {(item.start, item.end) for item in redactions}
            annotations += self._intake_tags(doc, index, utterance.text, fresh, counts)
        subject = conversation.subject
        if subject:
            new_subject, found = self.redactor.redact([subject], participants=names, keep=bots)[0]
            if found:
                conversation.subject = new_subject
                counts.update(item.entity_type for item in found)
        if counts:
            annotations.append(
                Annotation(
                    label="pii.summary",
                    value={"redacted": sum(counts.values()), "by_type": dict(counts)},
                )
            )
        return annotations
