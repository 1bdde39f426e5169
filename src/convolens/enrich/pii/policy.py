"""The redaction policy: which PII types are replaced, how, and what is never touched.

Configured in `[components.pii]` of `convolens analyze --config FILE` (docs/privacy.md):

    [components.pii]
    entities = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "ACCOUNT_NUMBER"]
    operator = "tag"                       # tag | hash | mask, for every type ...
    operators = { EMAIL_ADDRESS = "hash" } # ... unless named here
    allow_list = ["Northwind", "Ada"]      # never redacted (whole words, any case)
    deny_list = ["Project Falcon"]         # always redacted (as <CUSTOM>)

The team's entity definitions and trackers (the files `[components.entities]` and
`[components.trackers]` use, or the shipped defaults) are kept too: a competitor, plan or
product the team tracks is business, not a person.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from convolens.enrich.nlp import DEFAULT_SPACY_MODEL

__all__ = [
    "ALL_TYPES",
    "DEFAULT_ENTITIES",
    "INTAKE_POLICY_KEY",
    "KeepList",
    "Operator",
    "PiiConfig",
    "policy_version",
    "team_terms",
]

Operator = Literal["tag", "hash", "mask"]

# Redacted unless a policy says otherwise.
DEFAULT_ENTITIES: tuple[str, ...] = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "ACCOUNT_NUMBER",
    "IP_ADDRESS",
    "STREET_ADDRESS",
    "DATE_OF_BIRTH",
    "CUSTOM",
)
# Found and reported (`pii.entity` is not written for them) but kept by default: an order or
# ticket id links a conversation to the business records it is about and names nobody.
ALL_TYPES: tuple[str, ...] = (*DEFAULT_ENTITIES, "ORDER_ID")


class PiiConfig(BaseModel):
    """What to detect and how to replace it; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: tuple[str, ...] = DEFAULT_ENTITIES
    operator: Operator = "tag"
    operators: dict[str, Operator] = Field(default_factory=dict)
    # A finding's score must reach this: patterns with a checksum score 1.0, the NER's
    # person probability is its score, bare number runs 0.5-0.9 by their context.
    score_threshold: float = Field(default=0.4, ge=0, le=1)
    # P(person) at which a word is a name, unless the NER gives organisation + place + other
    # names at least `business_veto` ("Zelle": 0.18 person, 0.79 organisation). Chosen on
    # CoNLL-2003 dev (training/ner/MODEL_CARD.md): 0.98 person-token recall, 0.24 % of other
    # tokens masked; WNUT-17 dev 0.83 / 1.5 %.
    person_threshold: float = Field(default=0.1, gt=0, le=1)
    business_veto: float = Field(default=0.6, gt=0, le=1)
    allow_list: tuple[str, ...] = ()
    deny_list: tuple[str, ...] = ()
    # Keep the team's entity definitions and tracker phrases (never redacted).
    keep_team_entities: bool = True
    entities_file: str | None = None
    trackers: str | None = None
    # Participants' display names and email local parts are names wherever they appear.
    participant_names: bool = True
    hash_salt: str = ""
    # "convolens": the trained NER + rules here; "presidio": the previous Presidio + spaCy
    # small pipeline, kept for comparison (eval/pii.py) and for deployments pinned to it.
    detector: Literal["convolens", "presidio"] = "convolens"
    ner_model: str | None = None
    spacy_model: str = DEFAULT_SPACY_MODEL

    def operator_for(self, entity_type: str) -> Operator:
        return self.operators.get(entity_type, self.operator)


# `conversations.meta` key where intake records the policy it redacted with (its version).
INTAKE_POLICY_KEY = "pii_policy"


def policy_version(config: PiiConfig) -> str:
    """The policy's version: what a redaction means (the salt changes no decision)."""
    return hashlib.sha256(config.model_dump_json(exclude={"hash_salt"}).encode()).hexdigest()[:12]


def _phrase_regex(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive whole-word regex for many phrases, longest first."""
    parts = sorted({" ".join(p.split()) for p in phrases if p.strip()}, key=len, reverse=True)
    if not parts:
        return None
    body = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in parts)
    return re.compile(rf"(?<![\w@.])(?:{body})(?![\w@])", re.IGNORECASE)


class KeepList:
    """Spans of text that are never redacted as a person: allow-listed and team terms."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self.phrases = tuple(dict.fromkeys(" ".join(p.split()) for p in phrases if p.strip()))
        self.pattern = _phrase_regex(self.phrases)

    def spans(self, text: str) -> list[tuple[int, int]]:
        if self.pattern is None:
            return []
        return [m.span() for m in self.pattern.finditer(text)]


class DenyList(KeepList):
    """Spans that are always redacted (as CUSTOM)."""


def team_terms(config: PiiConfig) -> list[str]:
    """Names, aliases and phrases of the team's entity definitions and trackers."""
    if not config.keep_team_entities:
        return []
    from convolens.enrich.entities import DEFAULT_ENTITIES as ENTITY_FILE
    from convolens.enrich.entities import load_entities
    from convolens.enrich.trackers import DEFAULT_TRACKERS, load_trackers

    terms: list[str] = []
    for definition in load_entities(Path(config.entities_file or ENTITY_FILE)):
        terms.extend(definition.phrases())
    for tracker in load_trackers(Path(config.trackers or DEFAULT_TRACKERS)):
        terms.extend(tracker.phrases)
    return terms
