"""The previous PII detector: Presidio's analyzer over the spaCy small pipeline.

Presidio's regex + checksum recognizers (emails, phones, cards, IBANs, SSNs, IPs) plus person
names from `en_core_web_sm`, and a street-address pattern. It is what convolens shipped before
the trained NER (`detector = "presidio"` selects it) and what eval/pii.py compares against:
on CoNLL-2003 dev it masks ~71 % of person tokens and erases organisation names as people.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from convolens.enrich.nlp import shared_nlp
from convolens.enrich.pii.policy import PiiConfig
from convolens.enrich.pii.redact import Redaction

__all__ = ["PRESIDIO_ENTITIES", "PresidioRedactor"]

PRESIDIO_ENTITIES: tuple[str, ...] = (
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


NON_PII_SPACY_LABELS = (
    "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "LAW", "PRODUCT",
    "WORK_OF_ART", "LANGUAGE", "EVENT", "FAC",
)  # fmt: skip


class PresidioRedactor:
    """Presidio analyzer + anonymizer over the shared spaCy pipeline, batched."""

    def __init__(self, config: PiiConfig) -> None:
        self.config = config
        self.entities = [e for e in config.entities if e in PRESIDIO_ENTITIES]
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
                entities=self.entities,
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
        for entity in self.entities:
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
