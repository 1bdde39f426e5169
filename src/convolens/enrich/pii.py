"""PII redaction: the first component, so every later one sees redacted text.

Detection is Presidio's analyzer (regex + checksum recognizers for emails, phone numbers,
card numbers, IBANs, SSNs, IPs, plus person names from the packaged spaCy model) with one
recognizer added here for street addresses, which Presidio has no English recognizer for.
Replacement is Presidio's anonymizer with one of three operators:

- ``tag`` (default): ``<PERSON>``, ``<EMAIL_ADDRESS>``, ...: readable, and the type survives;
- ``hash``: ``<PERSON_1a2b3c4d>``, a salted sha256 prefix, so the same value links across
  conversations without being readable;
- ``mask``: every character becomes ``*``: lengths and offsets stay unchanged.

The component rewrites the utterance texts of the documents it labels
(`rewrites_text = True`); the runner stores the redacted text in the normalised layer, so
exports, `show`, summaries and every later component see it, and the verbatim source stays
only in the raw layer. Its labels (`pii.entity`, `pii.summary`) never hold the original
value: only the type, the score and the span of the replacement in the redacted text.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.nlp import DEFAULT_SPACY_MODEL, parsed, shared_nlp

__all__ = [
    "DEFAULT_ENTITIES",
    "PiiComponent",
    "PiiConfig",
    "Redaction",
    "Redactor",
    "redact_words",
]

DEFAULT_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "STREET_ADDRESS",
    "PERSON",
)
# A number, a street name of one to three capitalised words and a street type, optionally a
# unit: "221B Baker Street", "42 Elm St, Apt 5". Anchored on the street type so a bare
# "3 items" never matches.
_STREET_TYPES = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|"
    "square|sq|terrace|way|parkway|pkwy|highway|hwy|close|crescent"
)
STREET_ADDRESS_PATTERN = (
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\.?\s+){1,3}(?:" + _STREET_TYPES + r")\b\.?"
    r"(?:,?\s+(?:apt|apartment|suite|unit|flat)\.?\s*#?\s*\w+)?"
)


class PiiConfig(BaseModel):
    """What to detect and how to replace it; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: tuple[str, ...] = DEFAULT_ENTITIES
    operator: Literal["tag", "hash", "mask"] = "tag"
    # Presidio scores: checksum-validated values ~1.0, spaCy names 0.85, bare phone-like
    # numbers 0.4 before context words raise them. 0.4 keeps phone numbers, drops noise.
    score_threshold: float = Field(default=0.4, ge=0, le=1)
    allow_list: tuple[str, ...] = ()
    hash_salt: str = ""
    spacy_model: str = DEFAULT_SPACY_MODEL


class Redaction(BaseModel):
    """One replaced value: its type and where the replacement sits in the redacted text."""

    entity_type: str
    start: int
    end: int
    original_start: int
    original_end: int
    score: float
    replacement: str


NON_PII_SPACY_LABELS = (
    "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "LAW", "PRODUCT",
    "WORK_OF_ART", "LANGUAGE", "EVENT", "FAC",
)  # fmt: skip


class Redactor:
    """Presidio analyzer + anonymizer over the shared spaCy pipeline, batched."""

    def __init__(self, config: PiiConfig | None = None) -> None:
        self.config = config or PiiConfig()
        from presidio_analyzer import AnalyzerEngine, PatternRecognizer, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.pattern import Pattern
        from presidio_anonymizer import AnonymizerEngine

        self.nlp = shared_nlp(self.config.spacy_model)
        # Presidio would `spacy.load` (or even download) its own copy: hand it ours.
        engine = SpacyNlpEngine(
            models=[{"lang_code": "en", "model_name": self.config.spacy_model}],
            # spaCy labels that name no PII: Presidio would warn about each one it meets.
            ner_model_configuration=NerModelConfiguration(labels_to_ignore=NON_PII_SPACY_LABELS),
        )
        engine.nlp = {"en": self.nlp}  # type: ignore[assignment]
        self._engine = engine
        registry = RecognizerRegistry(supported_languages=["en"])
        # Presidio warns once per recognizer of another language it skips: noise here.
        presidio_log = logging.getLogger("presidio-analyzer")
        level = presidio_log.level
        presidio_log.setLevel(logging.ERROR)
        try:
            registry.load_predefined_recognizers(languages=["en"], nlp_engine=engine)
        finally:
            presidio_log.setLevel(level)
        registry.remove_recognizer("EmailRecognizer")
        registry.add_recognizer(_offline_email_recognizer())
        registry.add_recognizer(
            PatternRecognizer(
                supported_entity="STREET_ADDRESS",
                name="StreetAddressRecognizer",
                patterns=[Pattern("street address", STREET_ADDRESS_PATTERN, 0.6)],
                context=["live", "address", "ship", "deliver", "send", "street"],
            )
        )
        self._analyzer = AnalyzerEngine(
            nlp_engine=engine, registry=registry, supported_languages=["en"]
        )
        self._anonymizer = AnonymizerEngine()
        meta = self.nlp.meta
        self.model_id = f"presidio+{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}"

    def redact(
        self, texts: list[str], parses: Sequence[Any] | None = None
    ) -> list[tuple[str, list[Redaction]]]:
        """Each text redacted, with what was replaced (positions in the redacted text).

        `parses` are spaCy Docs of `texts` already made (the runner's shared parses);
        otherwise one `nlp.pipe` runs over the batch (NER only), not one call per text as
        AnalyzerEngine.analyze would do.
        """
        results: list[tuple[str, list[Redaction]]] = []
        docs = (
            parses
            if parses is not None
            else self.nlp.pipe(texts, batch_size=64, disable=["parser"])
        )
        for text, spacy_doc in zip(texts, docs, strict=True):
            if not text.strip():
                results.append((text, []))
                continue
            found = self._analyzer.analyze(
                text=text,
                language="en",
                entities=list(self.config.entities),
                nlp_artifacts=self._engine._doc_to_nlp_artifact(spacy_doc, "en"),
                score_threshold=self.config.score_threshold,
                allow_list=list(self.config.allow_list) or None,
            )
            if not found:
                results.append((text, []))
                continue
            kept = _without_overlaps(text, found)
            anonymized = self._anonymizer.anonymize(
                text=text,
                analyzer_results=kept,
                operators=self._operators(),
                merge_entities_with_spaces=False,  # done in _without_overlaps
            )
            items = sorted(anonymized.items, key=lambda item: item.start)
            redactions = [
                Redaction(
                    entity_type=item.entity_type,
                    start=item.start,
                    end=item.end,
                    original_start=source.start,
                    original_end=source.end,
                    score=float(source.score),
                    replacement=item.text or "",
                )
                for item, source in zip(items, kept, strict=True)
            ]
            results.append((anonymized.text, redactions))
        return results

    def _operators(self) -> dict[str, Any]:
        from presidio_anonymizer.entities import OperatorConfig

        operator = self.config.operator
        if operator == "mask":
            return {
                "DEFAULT": OperatorConfig(
                    "mask", {"masking_char": "*", "chars_to_mask": 10_000, "from_end": False}
                )
            }
        operators = {}
        for entity in self.config.entities:
            if operator == "tag":
                operators[entity] = OperatorConfig("replace", {"new_value": f"<{entity}>"})
            else:
                operators[entity] = OperatorConfig("custom", {"lambda": self._hasher(entity)})
        operators["DEFAULT"] = OperatorConfig("replace", {"new_value": "<PII>"})
        return operators

    def _hasher(self, entity: str) -> Any:
        salt = self.config.hash_salt

        def digest(value: str) -> str:
            # Case and spacing differ between mentions of one value ("John Smith", "john
            # smith"); normalise so they link.
            key = " ".join(value.lower().split())
            return f"<{entity}_{hashlib.sha256((salt + key).encode()).hexdigest()[:8]}>"

        return digest


def _without_overlaps(text: str, found: list[Any]) -> list[Any]:
    """Non-overlapping results in text order, the higher score (then the longer) winning,
    and neighbours of one type with only spaces between merged ("John" "Smith": one name).

    Resolved here rather than by the anonymizer so each replacement maps back to exactly
    one detected span (its position in the original text is needed to redact words).
    """
    ranked = sorted(found, key=lambda r: (-r.score, -(r.end - r.start), r.start))
    kept: list[Any] = []
    for result in ranked:
        if all(result.end <= k.start or result.start >= k.end for k in kept):
            kept.append(result)
    merged: list[Any] = []
    for result in sorted(kept, key=lambda r: r.start):
        previous = merged[-1] if merged else None
        gap = text[previous.end : result.start] if previous else ""
        if previous and previous.entity_type == result.entity_type and gap and not gap.strip(" "):
            previous.end = result.end
            previous.score = max(previous.score, result.score)
        else:
            merged.append(result)
    return merged


def _offline_email_recognizer() -> Any:
    """Presidio's email recognizer, validating domains against tldextract's bundled suffix
    snapshot: by default tldextract fetches the list from the internet on first use."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extractor(pattern_text).fqdn)

    return OfflineEmailRecognizer()


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


class PiiComponent(Component):
    """Finds PII with Presidio and replaces it in every utterance (and the subject)."""

    name: ClassVar[str] = "pii"
    version: ClassVar[str] = "1"
    assigns: ClassVar[tuple[str, ...]] = ("pii.entity", "pii.summary")
    description: ClassVar[str] = (
        "PII redaction (Presidio + spaCy): emails, phones, cards, IBANs, addresses, names"
    )
    rewrites_text: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.settings = PiiConfig.model_validate(self.config)
        self.redactor = Redactor(self.settings)
        self.model_id = self.redactor.model_id
        # The configuration decides what a label means: it is this component's taxonomy.
        self.taxonomy_version = hashlib.sha256(
            self.settings.model_dump_json(exclude={"hash_salt"}).encode()
        ).hexdigest()[:12]

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        texts = [u.text for doc in batch for u in doc.conversation.utterances]
        # Parse through the shared cache: entities and dialogue acts reuse these parses for
        # every utterance redaction leaves unchanged, and re-parse only the others.
        parses = [p for per_doc in parsed(batch, self.redactor.nlp) for p in per_doc]
        redacted = self.redactor.redact(texts, parses)
        out: list[list[Annotation]] = []
        offset = 0
        for doc in batch:
            annotations: list[Annotation] = []
            counts: Counter[str] = Counter()
            for index, utterance in enumerate(doc.conversation.utterances):
                new_text, redactions = redacted[offset + index]
                if not redactions:
                    continue
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
                                "operator": self.settings.operator,
                                "replacement": item.replacement,
                            },
                            confidence=round(item.score, 4),
                            utterance_id=doc.utterance_ids[index],
                            evidence=[Evidence(doc.utterance_ids[index], item.start, item.end)],
                        )
                    )
            offset += len(doc.conversation.utterances)
            subject = doc.conversation.subject
            if subject:
                new_subject, found = self.redactor.redact([subject])[0]
                if found:
                    doc.conversation.subject = new_subject
                    counts.update(item.entity_type for item in found)
            if counts:
                annotations.append(
                    Annotation(
                        label="pii.summary",
                        value={"redacted": sum(counts.values()), "by_type": dict(counts)},
                    )
                )
            out.append(annotations)
        return out
