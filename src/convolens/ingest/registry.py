"""Adapters by name, and auto-detection of a file's format.

Adapters register with `@register_adapter`; the built-in ones live in this package and
are imported here so that `--format` and detection see them.
"""

from __future__ import annotations

from convolens.ingest.base import Adapter, IngestOptions, SourceFile

__all__ = ["adapter_names", "detect_format", "get_adapter", "register_adapter"]

_ADAPTERS: dict[str, type[Adapter]] = {}
# Detection asks adapters in this order; specific formats (helpdesk JSON) before the
# generic ones they resemble (conversation JSON).
_DETECTION_ORDER: list[str] = []


def register_adapter(cls: type[Adapter], *, before: str | None = None) -> type[Adapter]:
    _ADAPTERS[cls.name] = cls
    if cls.name not in _DETECTION_ORDER:
        if before is not None and before in _DETECTION_ORDER:
            _DETECTION_ORDER.insert(_DETECTION_ORDER.index(before), cls.name)
        else:
            _DETECTION_ORDER.append(cls.name)
    return cls


def _load_builtins() -> None:
    # Imported for their registration side effect, in detection order.
    from convolens.ingest import (  # noqa: F401
        audio,
        csv_messages,
        email_thread,
        helpdesk,
        json_conversations,
        plain_transcript,
        subtitles,
    )


def adapter_names() -> list[str]:
    _load_builtins()
    return list(_DETECTION_ORDER)


def get_adapter(name: str, options: IngestOptions | None = None) -> Adapter:
    _load_builtins()
    try:
        return _ADAPTERS[name](options)
    except KeyError:
        known = ", ".join(sorted(_ADAPTERS))
        raise ValueError(f"unknown format {name!r}; choose one of: {known}") from None


def detect_format(source: SourceFile, options: IngestOptions | None = None) -> str | None:
    """The first registered adapter whose `sniff` accepts the file, or None."""
    _load_builtins()
    for name in _DETECTION_ORDER:
        if _ADAPTERS[name](options).sniff(source):
            return name
    return None
