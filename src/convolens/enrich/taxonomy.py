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

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "DEFAULT_TAXONOMY",
    "MIN_EXAMPLES",
    "OUT_OF_SCOPE",
    "GroupDefinition",
    "IntentDefinition",
    "Taxonomy",
    "TaxonomyReport",
    "load_taxonomy",
    "validate_taxonomy",
]

DEFAULT_TAXONOMY = Path(__file__).parent / "data" / "default_taxonomy.yaml"
# Fewer than three examples leave nothing to cross-validate and a class the classifier
# learns from one phrasing; teams are warned below RECOMMENDED_EXAMPLES.
MIN_EXAMPLES = 3
RECOMMENDED_EXAMPLES = 8
# The label given to utterances that match no intent; reserved so no intent can take it.
OUT_OF_SCOPE = "out_of_scope"
_NAME = r"^[A-Za-z0-9_.\-]+$"


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
    """A validated taxonomy from a YAML path or a dict; errors name the intent and field."""
    if isinstance(source, Taxonomy):
        return source
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML: {exc}") from None
        where = str(path)
    else:
        data, where = dict(source), "taxonomy"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with name, version and intents")
    try:
        taxonomy = Taxonomy.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{where}: {_describe(exc, data)}") from None
    try:
        taxonomy.check()
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return taxonomy


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


def validate_taxonomy(source: str | Path) -> TaxonomyReport:
    """Check a taxonomy file without raising: errors and warnings come back in the report."""
    try:
        taxonomy = load_taxonomy(source)
    except (OSError, ValueError) as exc:
        return TaxonomyReport(path=str(source), ok=False, errors=[str(exc)])
    warnings = [
        f"intent {i.name!r} has {len(i.examples)} examples; {RECOMMENDED_EXAMPLES}+ varied "
        "ones classify far better"
        for i in taxonomy.intents
        if len(i.examples) < RECOMMENDED_EXAMPLES
    ]
    if not taxonomy.out_of_scope and taxonomy.threshold is None:
        warnings.append(
            "no out_of_scope examples and no threshold: the rejection threshold falls back to "
            "rejecting the least confident 5% of the examples' own cross-validated predictions"
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
    )
