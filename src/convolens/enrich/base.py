"""What every understanding component shares: the document it reads and the labels it writes.

A component is a class that loads its model once in `__init__` and labels a batch of
documents in `__call__` (the shape Ray Data and thread pools run unchanged). It declares
what it `requires` (labels of earlier components) and what it `assigns`, and every label
it returns carries its evidence: the utterances and character spans it rests on. The
runner adds the lineage (component, version, model, taxonomy version, run id).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from convolens.model import Conversation

__all__ = ["Annotation", "Component", "Doc", "Evidence", "languages_of"]


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
    # Conversation types (`conversation_type.CONVERSATION_TYPES`) this component labels;
    # None: every type. `needs_customer`: only where a customer takes part (support-only
    # labels such as resolution have no meaning in an internal meeting). A document it
    # does not apply to gets no labels, whoever calls the component (runner, stream, user).
    applies_to: ClassVar[frozenset[str] | None] = None
    needs_customer: ClassVar[bool] = False
    # Languages (ISO 639-1) the component's models and cue lists read; None: any. A
    # conversation in another language gets one `<name>.skipped` label ("skipped: language
    # es") instead of labels from a model that cannot read it; in a mixed conversation the
    # component sees only the utterances in its languages and the rest are named skipped.
    languages: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None and not getattr(call, "_filters_types", False):
            setattr(cls, "__call__", _only_applicable(call))  # noqa: B010 - mypy: no method assign

    def applies(self, doc: Doc) -> bool:
        """Whether this component labels `doc`, given its conversation type."""
        if self.applies_to is None and not self.needs_customer:
            return True
        from convolens.enrich.conversation_type import conversation_type_of

        kind = conversation_type_of(doc)
        if self.applies_to is not None and kind.get("type") not in self.applies_to:
            return False
        return not (self.needs_customer and not kind.get("customer"))

    def language_view(self, doc: Doc) -> tuple[Doc | None, list[Annotation]]:
        """The part of `doc` in this component's languages (None: nothing), and the
        `<name>.skipped` labels that say what was left out and why."""
        if self.languages is None:
            return doc, []
        conversation_language, per_utterance = languages_of(doc)
        outside = [
            i
            for i, lang in enumerate(per_utterance)
            if lang is not None and lang not in self.languages
        ]
        if (conversation_language is not None and conversation_language not in self.languages) or (
            outside and len(outside) == len(per_utterance)
        ):
            language = conversation_language or per_utterance[outside[0]]
            return None, [self._skipped(str(language), [])]
        if not outside:
            return doc, []
        skipped: dict[str, list[Evidence]] = {}
        for i in outside:
            skipped.setdefault(str(per_utterance[i]), []).append(doc.whole(i))
        kept = [i for i in range(len(per_utterance)) if i not in set(outside)]
        utterances = doc.conversation.utterances
        view = Doc(
            doc.conversation_id,
            doc.version,
            doc.conversation.model_copy(update={"utterances": [utterances[i] for i in kept]}),
            [doc.utterance_ids[i] for i in kept],
            # The same list: labels earlier components gave any utterance stay visible.
            annotations=doc.annotations,
            # Only what is about the whole conversation: other scratch is by position.
            cache={
                k: v for k, v in doc.cache.items() if k in ("conversation_type", _LANGUAGES_KEY)
            },
        )
        view.cache[_LANGUAGES_KEY] = (conversation_language, [per_utterance[i] for i in kept])
        return view, [self._skipped(lang, ev) for lang, ev in skipped.items()]

    def _skipped(self, language: str, evidence: list[Evidence]) -> Annotation:
        return Annotation(
            f"{self.name}.skipped",
            {
                "skipped": f"language {language}",
                "language": language,
                "reads": sorted(self.languages or ()),
                "utterances": len(evidence) or None,
            },
            evidence=evidence,
        )

    @abstractmethod
    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        """Labels for each document of the batch, in order."""


_LANGUAGES_KEY = "languages"


def languages_of(doc: Doc) -> tuple[str | None, list[str | None]]:
    """The conversation's language and each utterance's (stored at ingest; identified
    here for documents that never went through the warehouse, e.g. live streams)."""
    cached = doc.cache.get(_LANGUAGES_KEY)
    if cached is None:
        from convolens.enrich.language import identify_languages

        found = identify_languages(doc.conversation)
        cached = doc.cache[_LANGUAGES_KEY] = (found.language, found.utterances)
    return cached  # type: ignore[no-any-return]


_Call = Callable[[Component, list[Doc]], list[list[Annotation]]]


def _only_applicable(call: _Call) -> _Call:
    """`call` run on the documents the component applies to; the others get no labels."""

    @functools.wraps(call)
    def filtered(self: Component, batch: list[Doc]) -> list[list[Annotation]]:
        keep: list[int] = []
        views: list[Doc] = []
        out: list[list[Annotation]] = [[] for _ in batch]
        for i, doc in enumerate(batch):
            if not self.applies(doc):
                continue
            view, out[i] = self.language_view(doc)
            if view is not None:
                keep.append(i)
                views.append(view)
        if len(keep) == len(batch) and all(v is d for v, d in zip(views, batch, strict=True)):
            return call(self, batch)
        results = call(self, views) if views else []
        for i, found in zip(keep, results, strict=True):
            out[i] = [*out[i], *found]
        return out

    filtered._filters_types = True  # type: ignore[attr-defined]
    return filtered
