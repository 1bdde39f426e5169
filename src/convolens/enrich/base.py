"""What every understanding component shares: the document it reads and the labels it writes.

A component is a class that loads its model once in `__init__` and labels a batch of
documents in `__call__` (the shape Ray Data and thread pools run unchanged). It declares
what it `requires` (labels of earlier components) and what it `assigns`, and every label
it returns carries its evidence: the utterances and character spans it rests on. The
runner adds the lineage (component, version, model, taxonomy version, run id).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from convolens.model import Conversation

__all__ = ["Annotation", "Component", "Doc", "Evidence"]


@dataclass(frozen=True, slots=True)
class Evidence:
    utterance_id: str
    start_char: int
    end_char: int

    def as_dict(self) -> dict[str, Any]:
        return {"utterance_id": self.utterance_id, "start": self.start_char, "end": self.end_char}


@dataclass(slots=True)
class Annotation:
    """One label: `label` names the field (e.g. "sentiment.utterance"), `value` is JSON."""

    label: str
    value: Any
    confidence: float | None = None
    utterance_id: str | None = None
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Doc:
    """A conversation as components see it, with the stored ids of its utterances."""

    conversation_id: str
    version: int
    conversation: Conversation
    utterance_ids: list[str]
    annotations: list[Annotation] = field(default_factory=list)
    # Scratch shared by components within one run (e.g. utterance embeddings, computed once).
    cache: dict[str, Any] = field(default_factory=dict)

    def whole(self, index: int) -> Evidence:
        """Evidence spanning all of utterance `index`."""
        return Evidence(self.utterance_ids[index], 0, len(self.conversation.utterances[index].text))

    def labels(self, name: str) -> list[Annotation]:
        return [a for a in self.annotations if a.label == name]


class Component(ABC):
    """Base class of enrichment components; register subclasses with `@register_component`."""

    name: ClassVar[str]
    version: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    assigns: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    # True for a component that changes the documents' text (PII redaction): the runner
    # stores the new text, and labels computed from the old text are recomputed.
    rewrites_text: ClassVar[bool] = False
    model_id: str | None = None
    taxonomy_version: str | None = None

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    @abstractmethod
    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        """Labels for each document of the batch, in order."""
