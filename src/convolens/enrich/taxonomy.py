"""A team's own intent taxonomy: a versioned YAML file of intents and their example utterances.

Intents are what the classifier learns, so the file is the training set: each intent has a
name, a description and at least `MIN_EXAMPLES` customer utterances. Intents may sit under
a `parent` (another intent or a `groups:` node) so reports can roll "refund" up to
"billing"; the hierarchy is checked for unknown parents and cycles. Optional
`out_of_scope:` examples (things customers say that are none of these intents) teach the
classifier what to reject and let the rejection threshold be chosen on data.

The `taxonomy_version` is the team's `version` plus a hash of the content, so an edit made
without bumping `version` still starts a new lineage: labels from the old file are never
mixed with labels from the new one under the same version string.

    name: acme-support
    version: "3"
    threshold: 0.4            # optional: reject intents below this probability
    groups:
      - {name: billing, description: Money matters}
    intents:
      - name: refund
        parent: billing
        description: Customer wants money back.
        examples: ["I want a refund", "can I get my money back", "refund my last payment"]
    out_of_scope: ["what's the capital of Peru", ...]
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

__all__ = [
    "DEFAULT_TAXONOMY",
    "MIN_EXAMPLES",
    "OUT_OF_SCOPE",
    "GroupDefinition",
    "IntentDefinition",
    "Taxonomy",
    "TaxonomyReport",
    "load_taxonomy",
    "normalise_name",
    "validate_taxonomy",
]

log = logging.getLogger(__name__)

DEFAULT_TAXONOMY = Path(__file__).parent / "data" / "default_taxonomy.yaml"
# Fewer than three examples leave nothing to cross-validate and a class the classifier
# learns from one phrasing; teams are warned below RECOMMENDED_EXAMPLES.
MIN_EXAMPLES = 3
RECOMMENDED_EXAMPLES = 8
# The label given to utterances that match no intent; reserved so no intent can take it.
OUT_OF_SCOPE = "out_of_scope"
_NAME = r"^[A-Za-z0-9_.\-]+$"
# CSV exports of published data sets (Banking77's train.csv): which columns hold what.
_CSV_TEXT = ("text", "example", "utterance", "query", "sentence")
_CSV_LABEL = ("category", "intent", "label", "name")


class GroupDefinition(BaseModel):
    """A node of the hierarchy that is not itself an intent (e.g. "billing")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=_NAME)
    description: str = ""
    parent: str | None = None


class IntentDefinition(BaseModel):
    """One intent: a class of the classifier, learnt from its examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=_NAME)
    description: str = ""
    examples: list[str] = Field(min_length=MIN_EXAMPLES)
    parent: str | None = None

    @field_validator("examples")
    @classmethod
    def _examples(cls, examples: list[str]) -> list[str]:
        cleaned = [" ".join(e.split()) for e in examples]
        if any(not e for e in cleaned):
            raise ValueError("examples must not be empty strings")
        repeated = sorted({e for e, n in Counter(e.lower() for e in cleaned).items() if n > 1})
        if repeated:
            raise ValueError(f"repeated examples: {repeated}")
        return cleaned


class Taxonomy(BaseModel):
    """A validated taxonomy; build it with `load_taxonomy` for errors that name the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    threshold: float | None = Field(default=None, gt=0, lt=1)
    groups: list[GroupDefinition] = Field(default_factory=list)
    intents: list[IntentDefinition] = Field(min_length=2)
    out_of_scope: list[str] = Field(default_factory=list)
    # What the loader changed to accept the file as written (not part of the content hash:
    # they describe the source, the cleaned content is what is hashed).
    _load_warnings: list[str] = PrivateAttr(default_factory=list)
    _original_names: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def load_warnings(self) -> list[str]:
        """Repeated examples dropped and names normalised while loading."""
        return list(self._load_warnings)

    @property
    def original_names(self) -> dict[str, str]:
        """Normalised intent/group name -> the name as the source wrote it."""
        return dict(self._original_names)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        # YAML reads `version: 2` and `version: 1.10` as numbers; a version is a string
        # (and 1.10 != 1.1), so numbers are refused rather than silently reformatted.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"quote the version in YAML: version: {json.dumps(str(value))}")
        return value

    @field_validator("out_of_scope")
    @classmethod
    def _out_of_scope(cls, examples: list[str]) -> list[str]:
        cleaned = [" ".join(e.split()) for e in examples]
        if any(not e for e in cleaned):
            raise ValueError("examples must not be empty strings")
        return cleaned

    @property
    def taxonomy_version(self) -> str:
        """`version` plus the first 8 hex digits of the content hash, e.g. "3+1a2b3c4d"."""
        return f"{self.version}+{self.content_hash()[:8]}"

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of everything that defines the labels."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def intent_names(self) -> list[str]:
        return [i.name for i in self.intents]

    def intent(self, name: str) -> IntentDefinition:
        for intent in self.intents:
            if intent.name == name:
                return intent
        raise KeyError(f"taxonomy {self.name!r} has no intent {name!r}")

    def parent_of(self, name: str) -> str | None:
        return self._parents().get(name)

    def ancestors(self, name: str) -> list[str]:
        """Parents of intent or group `name`, nearest first ("double_charge" -> billing...)."""
        parents = self._parents()
        if name not in parents:
            raise KeyError(f"taxonomy {self.name!r} has no intent or group {name!r}")
        out: list[str] = []
        current = parents[name]
        while current is not None:
            out.append(current)
            current = parents[current]
        return out

    def path(self, name: str) -> list[str]:
        """Root first, `name` last: ["billing", "charge_dispute"]."""
        return [*reversed(self.ancestors(name)), name]

    def _parents(self) -> dict[str, str | None]:
        parents = {group.name: group.parent for group in self.groups}
        parents.update({intent.name: intent.parent for intent in self.intents})
        return parents

    def check(self) -> None:
        """Cross-field rules; raises ValueError naming the intent and field at fault."""
        nodes: list[GroupDefinition | IntentDefinition] = [*self.groups, *self.intents]
        counts = Counter(node.name for node in nodes)
        duplicates = sorted(n for n, c in counts.items() if c > 1)
        if duplicates:
            raise ValueError(f"duplicate intent/group names: {', '.join(duplicates)}")
        if OUT_OF_SCOPE in counts:
            raise ValueError(f"{OUT_OF_SCOPE!r} is reserved for utterances matching no intent")
        for node in nodes:
            kind = "intent" if isinstance(node, IntentDefinition) else "group"
            if node.parent is not None and node.parent not in counts:
                raise ValueError(
                    f"{kind} {node.name!r}: parent: unknown intent or group {node.parent!r}"
                )
        parents = self._parents()
        for node in nodes:
            kind = "intent" if isinstance(node, IntentDefinition) else "group"
            seen = [node.name]
            current = parents[node.name]
            while current is not None:
                if current in seen:
                    cycle = " -> ".join([*seen[seen.index(current) :], current])
                    raise ValueError(f"{kind} {node.name!r}: parent: cycle {cycle}")
                seen.append(current)
                current = parents[current]
        # One utterance under two intents is a contradiction the classifier cannot learn.
        owner: dict[str, str] = {}
        for intent in self.intents:
            for example in intent.examples:
                key = example.lower()
                if key in owner:
                    raise ValueError(
                        f"intent {intent.name!r}: examples: {example!r} is also an example "
                        f"of {owner[key]!r}"
                    )
                owner[key] = intent.name
        for example in self.out_of_scope:
            if example.lower() in owner:
                raise ValueError(
                    f"out_of_scope: {example!r} is also an example of {owner[example.lower()]!r}"
                )


def load_taxonomy(source: str | Path | Mapping[str, Any] | Taxonomy) -> Taxonomy:
    """A validated taxonomy from a YAML path, a CSV data set (`text,category` columns, as
    Banking77 publishes it) or a dict; errors name the intent and field.

    Published data sets are accepted as they are: repeated examples are dropped (an
    example repeated under another intent keeps its first intent; an off-topic example
    that is also an intent example is dropped), and names outside [A-Za-z0-9_.-]
    ("reverted_card_payment?") are normalised. Each change is logged as a warning and kept
    in `load_warnings`; `original_names` maps each normalised name back to the source's.
    """
    if isinstance(source, Taxonomy):
        return source
    if isinstance(source, str | Path):
        path = Path(source)
        where = str(path)
        if path.suffix.lower() in (".csv", ".tsv"):
            data: Any = _read_csv(path)
        else:
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ValueError(f"{path}: invalid YAML: {exc}") from None
    else:
        data, where = dict(source), "taxonomy"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with name, version and intents")
    try:
        data, changes, original = _accept_as_written(data)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    try:
        taxonomy = Taxonomy.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{where}: {_describe(exc, data)}") from None
    try:
        taxonomy.check()
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    for change in changes:
        log.warning("%s: %s", where, change)
    taxonomy._load_warnings = changes
    taxonomy._original_names = original
    return taxonomy


def normalise_name(name: str) -> str:
    """An intent/group name the taxonomy accepts: other characters become "_", trimmed
    ("reverted_card_payment?" -> "reverted_card_payment", "Card Payment" -> "Card_Payment")."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip())).strip("_")


def _accept_as_written(
    data: dict[str, Any],
) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """The document with names normalised and repeated examples dropped, what changed,
    and normalised -> original names. Anything not shaped as expected is left for the
    validation to report."""
    data = dict(data)
    changes: list[str] = []
    renamed: dict[str, str] = {}
    nodes = [
        item
        for key in ("groups", "intents")
        if isinstance(data.get(key), list)
        for item in data[key]
        if isinstance(item, dict)
    ]
    taken = {n["name"] for n in nodes if isinstance(n.get("name"), str)}
    for node in nodes:
        name = node.get("name")
        if not isinstance(name, str) or re.match(_NAME, name) or not normalise_name(name):
            continue
        new = normalise_name(name)
        if new in taken or new in renamed:
            other = renamed.get(new, new)
            raise ValueError(f"{name!r} normalised is {new!r}, which {other!r} already is")
        renamed[new] = name
        taken.add(new)
        changes.append(f"name {name!r} normalised to {new!r}")
    back = {original: new for new, original in renamed.items()}
    for key in ("groups", "intents"):
        if isinstance(data.get(key), list):
            data[key] = [
                {
                    **item,
                    "name": back.get(str(item["name"]), item["name"]),
                    **({"parent": back[item["parent"]]} if item.get("parent") in back else {}),
                }
                if isinstance(item, dict) and isinstance(item.get("name"), str)
                else item
                for item in data[key]
            ]
    owner: dict[str, str] = {}
    for position, intent in enumerate(data.get("intents") or []):
        if not isinstance(intent, dict) or not isinstance(intent.get("examples"), list):
            continue
        label = intent.get("name") or f"#{position + 1}"
        kept, dropped, elsewhere = [], 0, Counter[str]()
        for example in intent["examples"]:
            folded = " ".join(example.split()).lower() if isinstance(example, str) else None
            if folded and folded in owner:
                if owner[folded] == label:
                    dropped += 1
                else:
                    elsewhere[owner[folded]] += 1
                continue
            if folded:
                owner[folded] = label
            kept.append(example)
        if dropped:
            changes.append(f"intent {label!r}: {dropped} repeated example(s) dropped")
        for first, count in sorted(elsewhere.items()):
            changes.append(
                f"intent {label!r}: {count} example(s) also under {first!r} dropped "
                "(kept under the first intent)"
            )
        data["intents"][position] = {**intent, "examples": kept}
    if isinstance(data.get("out_of_scope"), list):
        seen: set[str] = set()
        kept_oos = []
        for example in data["out_of_scope"]:
            folded = " ".join(example.split()).lower() if isinstance(example, str) else None
            if folded is not None and (folded in seen or folded in owner):
                continue
            if folded is not None:
                seen.add(folded)
            kept_oos.append(example)
        if len(kept_oos) < len(data["out_of_scope"]):
            changes.append(
                f"out_of_scope: {len(data['out_of_scope']) - len(kept_oos)} repeated example(s) "
                "or intent examples dropped"
            )
        data["out_of_scope"] = kept_oos
    return data, changes, renamed


def _read_csv(path: Path) -> dict[str, Any]:
    """A `text,category` data set as a taxonomy named after the file, intents in the order
    they first appear."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    columns = {c.strip().lower(): c for c in reader.fieldnames or []}
    text_col = next((columns[c] for c in _CSV_TEXT if c in columns), None)
    label_col = next((columns[c] for c in _CSV_LABEL if c in columns), None)
    if text_col is None or label_col is None:
        raise ValueError(
            f"{path}: expected a text column ({', '.join(_CSV_TEXT)}) and an intent column "
            f"({', '.join(_CSV_LABEL)}); found {', '.join(columns) or 'no header'}"
        )
    examples: dict[str, list[str]] = {}
    for row in reader:
        label, example = (row.get(label_col) or "").strip(), (row.get(text_col) or "").strip()
        if label and example:
            examples.setdefault(label, []).append(example)
    return {
        "name": path.stem,
        "version": "1",
        "intents": [{"name": k, "examples": v} for k, v in examples.items()],
    }


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """pydantic's locations ("intents.3.examples") rewritten as "intent 'refund': examples"."""
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "taxonomy"
        if len(loc) >= 2 and loc[0] in ("intents", "groups") and isinstance(loc[1], int):
            items = data.get(str(loc[0])) or []
            item = items[loc[1]] if loc[1] < len(items) else None
            name = item.get("name") if isinstance(item, dict) else None
            kind = "intent" if loc[0] == "intents" else "group"
            label = repr(name) if name else f"#{loc[1] + 1}"
            field = ".".join(str(p) for p in loc[2:]) or "definition"
            where = f"{kind} {label}: {field}"
        problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


class TaxonomyReport(BaseModel):
    """What `convolens taxonomy validate` prints: errors, or the taxonomy's shape."""

    path: str
    ok: bool
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    name: str | None = None
    version: str | None = None
    taxonomy_version: str | None = None
    intents: int = 0
    groups: int = 0
    examples: int = 0
    out_of_scope_examples: int = 0
    # intent -> [path from the root, number of examples]
    tree: dict[str, tuple[list[str], int]] = Field(default_factory=dict)
    # normalised name -> the name as the file wrote it ("reverted_card_payment?")
    renamed: dict[str, str] = Field(default_factory=dict)


def validate_taxonomy(source: str | Path) -> TaxonomyReport:
    """Check a taxonomy file without raising: errors and warnings come back in the report."""
    try:
        taxonomy = load_taxonomy(source)
    except (OSError, ValueError) as exc:
        return TaxonomyReport(path=str(source), ok=False, errors=[str(exc)])
    warnings = taxonomy.load_warnings + [
        f"intent {i.name!r} has {len(i.examples)} examples; {RECOMMENDED_EXAMPLES}+ varied "
        "ones classify far better"
        for i in taxonomy.intents
        if len(i.examples) < RECOMMENDED_EXAMPLES
    ]
    if not taxonomy.out_of_scope and taxonomy.threshold is None:
        warnings.append(
            "no out_of_scope examples and no threshold: the rejection threshold falls back to "
            "rejecting the least confident 2% of the examples' own cross-validated predictions"
        )
    return TaxonomyReport(
        path=str(source),
        ok=True,
        warnings=warnings,
        name=taxonomy.name,
        version=taxonomy.version,
        taxonomy_version=taxonomy.taxonomy_version,
        intents=len(taxonomy.intents),
        groups=len(taxonomy.groups),
        examples=sum(len(i.examples) for i in taxonomy.intents),
        out_of_scope_examples=len(taxonomy.out_of_scope),
        tree={i.name: (taxonomy.path(i.name), len(i.examples)) for i in taxonomy.intents},
        renamed=taxonomy.original_names,
    )
