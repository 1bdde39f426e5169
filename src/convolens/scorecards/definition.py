"""A quality scorecard: a versioned YAML file of sections and weighted criteria.

Each criterion names how it is judged (`check.kind`):

- `say`: the speaker says something (phrases, or meaning close to example sentences)
  within a window of turns ("greets within the first 2 agent turns");
- `forbidden`: the speaker must not say it (compliance): a match fails, with the words;
- `order`: step `first` must come before step `then` ("verifies identity before
  discussing the account"); N/A when `then` never happens;
- `dynamics`: a threshold on talk share, longest monologue, interruptions or silence;
- `sentiment_recovery`: a customer who turned negative ends better than their low point;
- `resolution`: the resolution component's verdict is one of `statuses`.

`applies_when` makes a criterion (or the whole scorecard) N/A where it does not apply:
queue, channel, conversation type, or a mention ("only if a refund was discussed").
`auto_fail: true` zeroes the total when the criterion fails. The `scorecard_version` is
the team's `version` plus a hash of the content, so an edit without a bump still starts a
new lineage (as for taxonomies).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from convolens.model import Role

__all__ = [
    "DEFAULT_SCORECARDS",
    "Condition",
    "Criterion",
    "Scorecard",
    "ScorecardError",
    "Section",
    "load_scorecard",
    "load_scorecards",
]

DATA = Path(__file__).parent / "data"
DEFAULT_SCORECARDS: tuple[Path, ...] = (DATA / "support.yaml", DATA / "sales.yaml")
_ID = r"^[a-z0-9_][a-z0-9_.\-]*$"
# all-MiniLM-L6-v2 cosines: paraphrases of an example score ~0.55-0.8, unrelated support
# chatter stays below ~0.35 (the same scale the trackers use).
DEFAULT_MEANING_THRESHOLD = 0.55
# A scorecard has a few hundred nodes; this bounds what a hostile file can make us build.
MAX_NODES = 20_000
METRICS = (
    "agent_talk_share",
    "customer_talk_share",
    "agent_longest_monologue_s",
    "agent_interruptions",
    "longest_silence_s",
)


class ScorecardError(ValueError):
    """A scorecard that does not validate; the message names file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phrases(_Strict):
    """What to listen for: exact phrases (whole words, any case) and/or example sentences
    matched by meaning (cosine of MiniLM embeddings at least `threshold`)."""

    phrases: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    threshold: float = Field(default=DEFAULT_MEANING_THRESHOLD, gt=0, le=1)
    speaker: Role | Literal["any"] = Role.agent

    @model_validator(mode="after")
    def _something(self) -> Phrases:
        if any(not p.strip() for p in [*self.phrases, *self.examples]):
            raise ValueError("phrases and examples must not be empty strings")
        if not self.phrases and not self.examples:
            raise ValueError("give at least one phrase or example")
        return self


class Window(_Strict):
    """Which turns to look in: the speaker's first or last N turns, or all of them."""

    first_turns: int | None = Field(default=None, ge=1)
    last_turns: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> Window:
        if self.first_turns is not None and self.last_turns is not None:
            raise ValueError("give first_turns or last_turns, not both")
        return self


class SayCheck(Phrases):
    kind: Literal["say"]
    window: Window = Field(default_factory=Window)


class ForbiddenCheck(Phrases):
    kind: Literal["forbidden"]


class OrderCheck(_Strict):
    kind: Literal["order"]
    first: Phrases
    then: Phrases


class DynamicsCheck(_Strict):
    kind: Literal["dynamics"]
    metric: Literal[
        "agent_talk_share",
        "customer_talk_share",
        "agent_longest_monologue_s",
        "agent_interruptions",
        "longest_silence_s",
    ]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bound(self) -> DynamicsCheck:
        if self.min is None and self.max is None:
            raise ValueError("give min or max")
        return self


class SentimentRecoveryCheck(_Strict):
    kind: Literal["sentiment_recovery"]
    # A customer utterance at or below this sentiment score makes the criterion apply.
    negative_below: float = Field(default=-0.3, ge=-1, le=0)
    # Pass when the customer's last utterances average at least this.
    recovered_at: float = Field(default=0.0, ge=-1, le=1)
    last_turns: int = Field(default=2, ge=1)


ResolutionStatus = Literal["solved", "escalated", "abandoned", "unresolved", "pending"]


def _solved() -> list[ResolutionStatus]:
    return ["solved"]


class ResolutionCheck(_Strict):
    kind: Literal["resolution"]
    statuses: list[ResolutionStatus] = Field(default_factory=_solved, min_length=1)


Check = Annotated[
    SayCheck
    | ForbiddenCheck
    | OrderCheck
    | DynamicsCheck
    | SentimentRecoveryCheck
    | ResolutionCheck,
    Field(discriminator="kind"),
]


class Condition(_Strict):
    """Where a criterion (or a scorecard) applies; every given field must hold."""

    queues: list[str] | None = None
    channels: list[str] | None = None
    conversation_types: list[str] | None = None
    mentions: Phrases | None = None
    timed: bool | None = None


class Criterion(_Strict):
    id: str = Field(pattern=_ID)
    description: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)
    auto_fail: bool = False
    # A required step of the script: live calls alert when it is missed (realtime).
    required_step: bool = False
    applies_when: Condition | None = None
    check: Check


class Section(_Strict):
    name: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)
    criteria: list[Criterion] = Field(min_length=1)


class Scorecard(_Strict):
    """A validated scorecard; build it with `load_scorecard` for errors naming the line."""

    name: str = Field(pattern=_ID)
    version: str = Field(min_length=1)
    description: str = ""
    pass_mark: float = Field(default=80.0, ge=0, le=100)
    applies_when: Condition | None = None
    sections: list[Section] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        # YAML reads `version: 1.10` as 1.1: numbers are refused rather than reformatted.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"quote the version in YAML: version: {json.dumps(str(value))}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Scorecard:
        ids = [c.id for c in self.criteria]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"criterion ids must be unique: {', '.join(repeated)}")
        return self

    @property
    def criteria(self) -> list[Criterion]:
        return [c for s in self.sections for c in s.criteria]

    @property
    def content_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:8]

    @property
    def scorecard_version(self) -> str:
        """`name@version+hash`: what each stored score records."""
        return f"{self.name}@{self.version}+{self.content_hash}"

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(criterion_id)

    def section_of(self, criterion_id: str) -> Section:
        for s in self.sections:
            if any(c.id == criterion_id for c in s.criteria):
                return s
        raise KeyError(criterion_id)


# -- loading, with line numbers ----------------------------------------------------------
def _with_lines(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    """The Python value of a composed YAML node; `lines` maps each value's path to its line."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            out[key] = _with_lines(value_node, (*path, key), lines)
            lines.setdefault((*path, key), key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_with_lines(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _parse_yaml(text: str, where: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise ScorecardError(f"{where}: nested too deeply to be a scorecard") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScorecardError(f"{where}{line}: not valid YAML: {problem}") from None
    if node is None:
        raise ScorecardError(f"{where}: empty file; a scorecard needs name, version, sections")
    if _size(node) > MAX_NODES:
        raise ScorecardError(f"{where}: over {MAX_NODES:,} YAML nodes (aliases included)")
    lines: dict[tuple[Any, ...], int] = {}
    try:
        return _with_lines(node, (), lines), lines
    except (TypeError, ValueError, RecursionError, yaml.YAMLError):
        # Unhashable keys ({[a]: 1}), nesting past the stack: not a scorecard.
        raise ScorecardError(f"{where}: not a scorecard (keys must be plain names)") from None


def _size(node: yaml.Node) -> int:
    """Nodes in the tree, counting an alias each time it is used (a billion-laughs file
    is tiny as text and huge as data); stops counting past MAX_NODES."""
    count, stack = 0, [node]
    while stack and count <= MAX_NODES:
        current = stack.pop()
        count += 1
        if isinstance(current, yaml.MappingNode):
            stack.extend(n for pair in current.value for n in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return count


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    # pydantic adds the union tag ("say") into loc; drop parts the YAML does not have.
    path: tuple[Any, ...] = ()
    best = lines.get(())
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
            best = lines[path]
    return best


def _field(loc: tuple[Any, ...], data: Any) -> str:
    """A readable field path: sections[0].criteria[2] (greeting).check.phrases."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id") or node.get("name"), str):
                out += f" ({node.get('id') or node.get('name')})"
        elif isinstance(node, dict) and part in node:
            out += f".{part}" if out else str(part)
            node = node[part]
        elif part in ("say", "forbidden", "order", "dynamics", "sentiment_recovery", "resolution"):
            continue  # the discriminator's tag: not a key of the file
        else:
            out += f".{part}" if out else str(part)
            node = None
    return out or "scorecard"


def scorecard_from_data(
    data: Any, where: str = "scorecard", lines: dict[tuple[Any, ...], int] | None = None
) -> Scorecard:
    if not isinstance(data, dict):
        raise ScorecardError(f"{where}: a scorecard is a mapping with name, version, sections")
    try:
        return Scorecard.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(loc, lines or {})
            at = f"line {line}: " if line else ""
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{at}{_field(loc, data)}: {message}")
        raise ScorecardError(f"{where}: " + "; ".join(problems)) from None


def load_scorecard(source: str | Path | dict[str, Any] | Scorecard) -> Scorecard:
    """A scorecard from a YAML path, YAML text or a mapping; errors name line and field."""
    if isinstance(source, Scorecard):
        return source
    if isinstance(source, dict):
        return scorecard_from_data(source)
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ScorecardError(f"{path.name}: cannot read: {reason}") from None
        where = path.name
    else:
        text, where = str(source), "scorecard"
    data, lines = _parse_yaml(text, where)
    return scorecard_from_data(data, where, lines)


def parse_scorecard(content: str | dict[str, Any], where: str = "scorecard") -> Scorecard:
    """A scorecard from YAML text or a mapping, never from a path (for content that
    arrives over the network: a string is always the scorecard itself)."""
    if isinstance(content, dict):
        return scorecard_from_data(content, where)
    data, lines = _parse_yaml(content, where)
    return scorecard_from_data(data, where, lines)


def load_scorecards(
    sources: list[str | Path | dict[str, Any] | Scorecard] | None = None,
) -> list[Scorecard]:
    """Several scorecards (default: the shipped support and sales ones); names unique."""
    cards = [load_scorecard(s) for s in (sources if sources else DEFAULT_SCORECARDS)]
    names = [c.name for c in cards]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ScorecardError(f"two scorecards named {', '.join(repeated)}")
    return cards
