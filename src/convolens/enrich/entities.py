"""Entities: people, companies, places, dates, money, products, and the team's own names.

Two sources are merged per utterance:

1. the team's definitions (competitors, plans, roles, ...; TOML `[[entity]]` tables or the
   shipped `data/default_entities.toml`), matched with spaCy's PhraseMatcher and Matcher,
   which are what spaCy's EntityRuler runs inside. They match the shared parses read-only:
   the shared pipeline is never changed, no second tokenisation is needed, and token
   patterns can test lemmas and parts of speech;
2. people, organisations and places from the NER model trained here (enrich/ner.py:
   MiniLM fine-tuned on CoNLL-2003 + WNUT-17 + conversational frames; uncased, so raw ASR
   text reads like cased text), decoded span by span with organisation suffixes
   (`ner.decode_spans`); CoNLL-2003 dev figures in eval/entities.py;
3. spaCy's statistical NER (`en_core_web_sm`) on the same parses for the other types
   (dates, times, money, products, groups, events, ...), its labels mapped to ours.
   `ner = "spacy"` brings back spaCy for people, organisations and places too (version 1).

On overlap the team's match wins: "CompetitorX" is a competitor however NER labels it.
Text that PII redaction replaced ("<PERSON>", "<EMAIL_ADDRESS>") is never an entity.

`participant.affiliation` records a company a speaker states as their own: "this is Dana
from Acme Corp", "I'm calling from Globex", "I work at Initech", "thanks for calling Acme".
The company must be a proper noun or an organisation-like entity; places, dates and
common nouns ("calling from home", "from the UK") are not companies.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.ner import ENTITIES_NER_DIR, NerModel, shared_ner
from convolens.enrich.nlp import DEFAULT_SPACY_MODEL, PII_TAG, parsed, shared_nlp, spacy_model_id
from convolens.model import Role

__all__ = [
    "DEFAULT_ENTITIES",
    "NER_TYPES",
    "EntityComponent",
    "EntityDefinition",
    "Mention",
    "load_entities",
]

DEFAULT_ENTITIES = Path(__file__).parent / "data" / "default_entities.toml"
# spaCy (OntoNotes) label -> our type. CARDINAL and ORDINAL are left out: bare numbers
# ("2", "first") are not things a team searches conversations for.
NER_TYPES: dict[str, str] = {
    "PERSON": "person",
    "ORG": "organization",
    "GPE": "location",
    "LOC": "location",
    "FAC": "location",
    "DATE": "date",
    "TIME": "time",
    "MONEY": "money",
    "PRODUCT": "product",
    "NORP": "group",
    "EVENT": "event",
    "LANGUAGE": "language",
    "PERCENT": "percent",
    "QUANTITY": "quantity",
    "LAW": "law",
    "WORK_OF_ART": "work_of_art",
}
# Types that can be a speaker's company. PERSON and PRODUCT are in because the small model
# often labels unfamiliar company names so ("Thanks for calling Acme" -> PERSON).
COMPANY_TYPES = frozenset({"organization", "competitor", "company", "vendor", "partner"})
COMPANY_NER = frozenset({"ORG", "PRODUCT", "PERSON"})
# Verbs a first-person speaker states their company with: "I'm calling from", "I work at".
AFFILIATION_VERBS = frozenset({"call", "work", "be", "write", "reach", "contact", "speak", "ring"})
AFFILIATION_PREPS = frozenset({"from", "with", "at", "for"})
SELF_SUBJECTS = frozenset({"this", "it", "i", "name"})
GREETINGS = frozenset({"hi", "hello", "hey", "dear", "thanks", "glad", "uhhh", "ok", "okay"})
# The trained NER's types (its CoNLL labels are kept as `ner_label`: a PER from it is a
# person, unlike spaCy's PERSON that the affiliation rules take for a company), and the
# spaCy labels it decides instead of spaCy (MISC is left to spaCy's finer types).
_TRAINED_TYPES = {"PER": "person", "ORG": "organization", "LOC": "location"}
_TRAINED_DECIDES = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC"})
_LEADING_THE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_TRAILING_POSSESSIVE = re.compile(r"['\u2019]s$")


class EntityDefinition(BaseModel):
    """One team entity, validated; unknown keys are errors so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, description="Canonical name every match is reported as.")
    aliases: list[str] = Field(default_factory=list)
    patterns: list[str | list[dict[str, Any]]] = Field(default_factory=list)
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _check(self) -> EntityDefinition:
        phrases = [self.name, *self.aliases, *(p for p in self.patterns if isinstance(p, str))]
        if any(not p.strip() for p in phrases):
            raise ValueError("names, aliases and phrase patterns must not be empty")
        if any(isinstance(p, list) and not p for p in self.patterns):
            raise ValueError("a token pattern needs at least one token")
        return self

    def phrases(self) -> list[str]:
        """Name, aliases and phrase patterns, each once."""
        found = [self.name, *self.aliases, *(p for p in self.patterns if isinstance(p, str))]
        return list(dict.fromkeys(p.strip() for p in found))

    def token_patterns(self) -> list[list[dict[str, Any]]]:
        return [p for p in self.patterns if isinstance(p, list)]


def load_entities(source: str | Path | Iterable[dict[str, Any]]) -> list[EntityDefinition]:
    """Definitions from a TOML file path or a list of dicts; errors name entity and field."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from None
        raw = data.get("entity")
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"{path}: no [[entity]] tables found")
        where = str(path)
    else:
        raw = list(source)
        where = "entity definitions"
    definitions: list[EntityDefinition] = []
    for index, item in enumerate(raw):
        label = item.get("name") if isinstance(item, dict) else None
        label = repr(label) if label else f"#{index + 1}"
        try:
            definitions.append(EntityDefinition.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'definition'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ValueError(f"{where}: entity {label}: {problems}") from None
    keys = [(d.type, d.name.casefold()) for d in definitions]
    duplicates = sorted({f"{t}:{n}" for t, n in keys if keys.count((t, n)) > 1})
    if duplicates:
        raise ValueError(f"{where}: duplicate entities: {', '.join(duplicates)}")
    return definitions


@dataclass(slots=True)
class Mention:
    """An entity found in one utterance: a spaCy span, our type and canonical name."""

    span: Any
    type: str
    canonical: str
    source: str  # "ruler" (team definitions) or "ner"
    label: str  # spaCy's NER label, "TEAM" for team matches, "PROPN" for a bare proper noun

    @property
    def start(self) -> int:
        return int(self.span.start)

    @property
    def end(self) -> int:
        return int(self.span.end)


def ner_canonical(text: str) -> str:
    """NER text as a name: without a leading article or a trailing possessive."""
    text = " ".join(text.split())
    return _TRAILING_POSSESSIVE.sub("", _LEADING_THE.sub("", text)) or text


class EntityComponent(Component):
    """Labels `entity.mention`, `entity.summary` and `participant.affiliation`."""

    name = "entities"
    # 3: the NER retrained for 4 epochs (CoNLL dev ORG 0.858 through decode_spans), so
    # conversations labelled by version 2 are labelled again.
    version = "3"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    assigns: ClassVar[tuple[str, ...]] = (
        "entity.mention",
        "entity.summary",
        "participant.affiliation",
    )
    description = "People, companies, places, dates, money, products and team-defined names."

    def __init__(self, config: dict[str, Any] | None = None, *, nlp: Any | None = None) -> None:
        super().__init__(config)
        from spacy.matcher import Matcher, PhraseMatcher

        # `definitions`: a TOML path or a list of tables; `entities_file`: a TOML path
        # (both resolved against `convolens analyze --config`'s folder).
        source = (
            self.config.get("definitions") or self.config.get("entities_file") or DEFAULT_ENTITIES
        )
        self.definitions = load_entities(source)
        self.ner_types: dict[str, str] = dict(self.config.get("ner_types") or NER_TYPES)
        self.nlp = (
            nlp
            or self.config.get("nlp")
            or shared_nlp(self.config.get("spacy_model") or DEFAULT_SPACY_MODEL)
        )
        self.model_id = spacy_model_id(self.nlp)
        # People, organisations and places: the NER trained here, unless told "spacy".
        self.ner: NerModel | None = None
        if self.config.get("ner", "convolens") != "spacy":
            self.ner = shared_ner(self.config.get("ner_dir") or str(ENTITIES_NER_DIR))
            self.model_id = f"{self.ner.model_id}+{self.model_id}"
        canonical = json.dumps(
            {
                "entities": [d.model_dump(mode="json") for d in self.definitions],
                "ner_types": self.ner_types,
            },
            sort_keys=True,
        )
        self.taxonomy_version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        # Match keys are the definitions' indices, so a match maps straight back.
        vocab = self.nlp.vocab
        self._lower = PhraseMatcher(vocab, attr="LOWER")
        self._exact = PhraseMatcher(vocab, attr="ORTH")
        self._tokens = Matcher(vocab, validate=True)
        for index, definition in enumerate(self.definitions):
            key = str(index)
            matcher = self._exact if definition.case_sensitive else self._lower
            matcher.add(key, [self.nlp.make_doc(p) for p in definition.phrases()])
            if definition.token_patterns():
                try:
                    self._tokens.add(key, definition.token_patterns())
                except (ValueError, KeyError) as exc:
                    raise ValueError(
                        f"entity {definition.name!r}: invalid token pattern: {exc}"
                    ) from None

        # An empty matcher warns on every call: run only those with patterns.
        self._matchers = [m for m in (self._lower, self._exact, self._tokens) if len(m)]

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        spacy_docs = parsed(batch, self.nlp)
        tagged = self._tagged(batch)
        return [
            self._label(doc, sdocs, found)
            for doc, sdocs, found in zip(batch, spacy_docs, tagged, strict=True)
        ]

    def _tagged(self, batch: list[Doc]) -> list[list[list[tuple[int, int, str, float]]] | None]:
        """The trained NER's entities per utterance of each document, in one model batch."""
        if self.ner is None:
            return [None] * len(batch)
        texts = [u.text for doc in batch for u in doc.conversation.utterances]
        found = self.ner.entity_spans(texts)
        out: list[list[list[tuple[int, int, str, float]]] | None] = []
        at = 0
        for doc in batch:
            count = len(doc.conversation.utterances)
            out.append(found[at : at + count])
            at += count
        return out

    def mentions(
        self, sdoc: Any, tagged: list[tuple[int, int, str, float]] | None = None
    ) -> list[Mention]:
        """Team matches (longest first, no overlaps), then NER entities they do not overlap:
        `tagged` (the trained NER's people, organisations, places) when given, and spaCy's
        entities of the other types."""
        from spacy.util import filter_spans

        spans = []
        for matcher in self._matchers:
            for match_id, start, end in matcher(sdoc):
                span = sdoc[start:end]
                span.label_ = self.nlp.vocab.strings[match_id]
                spans.append(span)
        found: list[Mention] = []
        for span in filter_spans(spans):
            definition = self.definitions[int(span.label_)]
            found.append(Mention(span, definition.type, definition.name, "ruler", "TEAM"))
        taken = {i for m in found for i in range(m.start, m.end)}
        for start, end, kind, _ in tagged or ():
            span = sdoc.char_span(start, end, alignment_mode="expand")
            type_ = _TRAINED_TYPES.get(kind)
            if (
                span is None
                or type_ is None
                or any(i in taken for i in range(span.start, span.end))
            ):
                continue
            span = _trimmed(sdoc, span)
            if span is None or PII_TAG.search(span.text) or any(t.like_url for t in span):
                continue
            found.append(Mention(span, type_, ner_canonical(span.text), "ner", kind))
            taken.update(range(span.start, span.end))
        for ent in sdoc.ents:
            type_ = self.ner_types.get(ent.label_)
            if type_ is None or any(i in taken for i in range(ent.start, ent.end)):
                continue
            if tagged is not None and ent.label_ in _TRAINED_DECIDES:
                continue  # the trained model found (or rejected) these
            # A redacted value is nobody's name, and a tag beside a real word would make
            # the entity half tag ("<PERSON> Smith"): the whole entity is dropped.
            span = _trimmed(sdoc, ent)
            if span is None or PII_TAG.search(span.text) or any(t.like_url for t in span):
                continue
            # The small model often leaves the currency sign out of MONEY ("$49" -> "49").
            if ent.label_ == "MONEY" and ent.start > 0 and sdoc[ent.start - 1].tag_ == "$":
                span = sdoc[ent.start - 1 : ent.end]
            found.append(Mention(span, type_, ner_canonical(span.text), "ner", ent.label_))
        return sorted(found, key=lambda m: m.start)

    def _label(
        self,
        doc: Doc,
        sdocs: list[Any],
        tagged: list[list[tuple[int, int, str, float]]] | None = None,
    ) -> list[Annotation]:
        utterances = doc.conversation.utterances
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        out: list[Annotation] = []
        summary: dict[tuple[str, str], dict[str, Any]] = {}
        affiliations: set[tuple[str, str]] = set()
        for i, utterance in enumerate(utterances):
            if utterance.internal or not utterance.text.strip():
                continue
            uid, sdoc = doc.utterance_ids[i], sdocs[i]
            mentions = self.mentions(sdoc, tagged[i] if tagged is not None else None)
            participant = utterance.participant_id
            role = roles.get(participant, Role.unknown)
            for company, chars, name, how in self._affiliations(sdoc, mentions):
                # Surer when NER or the team's list already called it a company.
                sure = 0.9 if company.type in COMPANY_TYPES and company.label != "PROPN" else 0.7
                # The stated company is an organisation whatever NER called it, and a
                # proper noun NER missed ("calling from globex") is a mention too.
                if company.source == "ner" and company.type not in COMPANY_TYPES:
                    company.type = "organization"
                if company not in mentions:
                    mentions = sorted([*mentions, company], key=lambda m: m.start)
                key = (participant, company.canonical.casefold())
                if key in affiliations:
                    continue
                affiliations.add(key)
                value = {
                    "participant_id": participant,
                    "role": role.value,
                    "company": company.canonical,
                    "text": company.span.text,
                    "name": name,
                    "cue": how,
                }
                where = [Evidence(uid, *chars)]
                out.append(Annotation("participant.affiliation", value, sure, uid, where))
            for m in mentions:
                value = {
                    "type": m.type,
                    "text": m.span.text,
                    "canonical": m.canonical,
                    "source": m.source,
                }
                if m.source == "ner":
                    value["ner_label"] = m.label
                span = Evidence(uid, m.span.start_char, m.span.end_char)
                # spaCy's small NER gives no calibrated score; team matches are exact.
                confidence = 1.0 if m.source == "ruler" else None
                out.append(Annotation("entity.mention", value, confidence, uid, [span]))
                entry = summary.setdefault(
                    (m.type, m.canonical.casefold()),
                    {"type": m.type, "canonical": m.canonical, "count": 0, "first": span},
                )
                entry["count"] += 1
        if summary:
            out.append(_summary(list(summary.values())))
        return out

    def _affiliations(
        self, sdoc: Any, mentions: list[Mention]
    ) -> list[tuple[Mention, tuple[int, int], str | None, str]]:
        """(company, evidence char span, stated name, cue) for each stated affiliation."""
        by_token = {i: m for m in mentions for i in range(m.start, m.end)}
        found = []
        for token in sdoc:
            lower = token.lower_
            name_token = None
            if lower in AFFILIATION_PREPS and token.dep_ == "prep":
                introduction = _self_introduction(token)
                if introduction is None:
                    continue
                start, name_token = introduction
                obj = next((c for c in token.children if c.dep_ == "pobj"), None)
                how = "self_introduction"
            elif lower in {"calling", "contacting", "choosing"} and _thanks_before(token):
                obj = next((c for c in token.children if c.dep_ == "dobj"), None)
                start = token.sent.start
                how = "greeting"
            else:
                continue
            # "Thanks for calling Acme": the thing called is the company, even where NER
            # reads it as a person ("calling Maria" is the same shape to a tagger).
            greeting = how == "greeting"
            company = _company(sdoc, obj, by_token, greeting) if obj is not None else None
            if company is None:
                continue
            # A stated name is reported only when it is one: not a tag, not "this".
            named = by_token.get(name_token.i) if name_token is not None else None
            name = named.canonical if named is not None and named.type == "person" else None
            span = (sdoc[start].idx, company.span.end_char)
            found.append((company, span, name, how))
        return found


def _trimmed(sdoc: Any, ent: Any) -> Any | None:
    """The entity without the handles, greetings and punctuation NER swept in at its edges
    ("@RockstarSupport Hello" -> nothing, "@Acme Hi Justin" -> "Justin")."""

    def junk(token: Any) -> bool:
        return (
            token.is_punct
            or token.like_email
            or token.text[:1] in {"@", "#"}
            or token.pos_ == "INTJ"
            or token.lower_ in GREETINGS
        )

    start, end = ent.start, ent.end
    while start < end and junk(sdoc[start]):
        start += 1
    while end > start and junk(sdoc[end - 1]):
        end -= 1
    span = sdoc[start:end]
    return span if end > start and any(ch.isalnum() for ch in span.text) else None


def _summary(entries: list[dict[str, Any]]) -> Annotation:
    """`entity.summary`: each canonical entity once with its count, evidence its first mention."""
    entries = sorted(entries, key=lambda e: (-e["count"], e["type"]))
    by_type: dict[str, int] = {}
    for entry in entries:
        by_type[entry["type"]] = by_type.get(entry["type"], 0) + 1
    value = {
        "entities": [{k: e[k] for k in ("type", "canonical", "count")} for e in entries],
        "unique_by_type": by_type,
        "mentions": sum(e["count"] for e in entries),
    }
    return Annotation("entity.summary", value, None, None, [e["first"] for e in entries])


def _self_introduction(prep: Any) -> tuple[int, Any] | None:
    """(token index where "I'm calling" / "this is Dana" starts, the name token or None)
    when `prep` ("from", "with", ...) introduces the speaker; None otherwise: "the
    invoice from Acme" and "it's from Acme" are about Acme, not about who is speaking."""
    head = prep.head

    def subjects(token: Any) -> list[Any]:
        return [c for c in token.children if c.dep_ in {"nsubj", "nsubjpass"}]

    first_person = [s for s in subjects(head) if s.lower_ in {"i", "we"}]
    # "I'm at the airport" says where, not who: after "be" only "with"/"from" count.
    where = head.lemma_ == "be" and prep.lower_ not in {"with", "from"}
    if first_person and head.lemma_ in AFFILIATION_VERBS and not where:
        return min(s.i for s in first_person), None
    # "this is Dana from Acme" / "my name is <PERSON> from Acme": the prep hangs on "is".
    if head.lemma_ == "be" and any(s.lower_ in SELF_SUBJECTS for s in subjects(head)):
        name = next((c for c in head.children if c.dep_ == "attr" and c.i < prep.i), None)
        if name is not None:
            return min(s.left_edge.i for s in subjects(head)), name
    # ... or on the name itself: "I'm Dana from Acme".
    if head.dep_ in {"attr", "appos", "npadvmod", "dep"} and head.head.lemma_ == "be":
        selves = [s for s in subjects(head.head) if s.lower_ in SELF_SUBJECTS | {"we"}]
        if selves:
            return min(s.left_edge.i for s in selves), head
    return None


def _thanks_before(token: Any) -> bool:
    """ "thank(s) (you) for calling X": the greeting agents open with."""
    window = token.doc[max(token.sent.start, token.i - 4) : token.i]
    return (
        token.i > 0
        and token.doc[token.i - 1].lower_ == "for"
        and any(t.lower_ in {"thanks", "thank"} for t in window)
    )


def _company(
    sdoc: Any, obj: Any, by_token: dict[int, Mention], person_too: bool = False
) -> Mention | None:
    """The company a preposition or verb points at: an entity there, or proper nouns."""
    mention = by_token.get(obj.i)
    if mention is not None:
        labels = COMPANY_NER | {"PER"} if person_too else COMPANY_NER
        if mention.type in COMPANY_TYPES or (mention.source == "ner" and mention.label in labels):
            return mention
        return None
    if obj.pos_ != "PROPN" or PII_TAG.fullmatch(obj.text):
        return None
    start = obj.i
    while start > obj.left_edge.i and sdoc[start - 1].pos_ == "PROPN":
        start -= 1
    span = sdoc[start : obj.i + 1]
    return Mention(span, "organization", ner_canonical(span.text), "ner", "PROPN")
