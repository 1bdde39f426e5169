"""Components by name. Built-ins are imported only when used (their models are heavy)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from convolens.enrich.base import Component

__all__ = ["DEFAULT_COMPONENTS", "component_names", "get_component", "register_component"]

# name -> "module:Class"; order is the default run order (a component after what it requires).
_BUILTIN: dict[str, str] = {
    # PII first: every later component, export and summary sees the redacted text.
    "pii": "convolens.enrich.pii:PiiComponent",
    # Early: later components apply by conversation type (support, sales, meeting, ...).
    "conversation_type": "convolens.enrich.conversation_type:ConversationTypeComponent",
    "sentiment": "convolens.enrich.sentiment:SentimentComponent",
    "intents": "convolens.enrich.intents:IntentComponent",
    "entities": "convolens.enrich.entities:EntityComponent",
    "dialogue_acts": "convolens.enrich.dialogue_acts:DialogueActComponent",
    "trackers": "convolens.enrich.trackers:TrackerComponent",
    "topics": "convolens.enrich.keyphrases:KeyphraseComponent",
    "resolution": "convolens.enrich.resolution:ResolutionComponent",
    "signals": "convolens.enrich.signals:SignalComponent",
    # Last: it quotes action items and decisions found by the components before it.
    "summary": "convolens.enrich.summary:SummaryComponent",
    # Auto-QA: reads sentiment and resolution labels; scores against versioned scorecards.
    "scorecard": "convolens.scorecards.component:ScorecardComponent",
}
DEFAULT_COMPONENTS: tuple[str, ...] = tuple(_BUILTIN)
_REGISTERED: dict[str, type[Component]] = {}


def register_component(cls: type[Component]) -> type[Component]:
    """Make a user's component available by name (`convolens analyze --component NAME`)."""
    _REGISTERED[cls.name] = cls
    return cls


def component_names() -> list[str]:
    return list(dict.fromkeys([*_BUILTIN, *_REGISTERED]))


def component_class(name: str) -> type[Component]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise ValueError(f"unknown component {name!r}; choose from: {', '.join(component_names())}")
    module, _, attribute = _BUILTIN[name].partition(":")
    try:
        cls: type[Component] = getattr(import_module(module), attribute)
    except ImportError as exc:
        raise ImportError(
            f"component {name!r} needs {exc.name}: pip install 'convolens[enrich]'"
        ) from None
    return cls


def get_component(name: str, config: dict[str, Any] | None = None) -> Component:
    return component_class(name)(config)
