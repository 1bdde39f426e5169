"""JSONPath-like paths for mappings: `a.b`, `a[*]`, `a[0]`, `a|b`, `key(author)`, `$file`.

Small on purpose: a mapping names where a field sits, it does not filter or compute, so
the full JSONPath language (and a dependency for it) would only add ways to go wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["KEY_OF", "MappingError", "compile_path", "first", "select"]


class MappingError(ValueError):
    """A mapping that cannot be used; the message says which entry and why."""


_SEGMENT = re.compile(r"^(?P<key>[^\[\]]*)(?P<index>(?:\[(?:\*|-?\d+)\])*)$")
_INDEX = re.compile(r"\[(\*|-?\d+)\]")
KEY_OF = re.compile(r"^key\((?P<field>\w+)\)$")

Step = tuple[str, str | int | None]  # ("key", name) | ("index", n) | ("all", None)


def compile_path(path: str, where: str) -> list[list[Step]]:
    """A path as alternatives, each a list of steps; MappingError naming `where` if bad."""
    if not path or not path.strip():
        raise MappingError(f"{where}: empty path")
    if path.strip() == "$file" or KEY_OF.match(path.strip()):
        return []
    alternatives = []
    for alternative in path.split("|"):
        steps: list[Step] = []
        for segment in alternative.strip().removeprefix("$.").split("."):
            match = _SEGMENT.match(segment)
            if match is None or (not match["key"] and not match["index"]):
                raise MappingError(
                    f"{where}: cannot read path {path!r} at {segment!r} (use a.b, a[*], a[0], a|b)"
                )
            if match["key"]:
                steps.append(("key", match["key"]))
            for index in _INDEX.findall(match["index"]):
                steps.append(("all", None) if index == "*" else ("index", int(index)))
        alternatives.append(steps)
    return alternatives


def _walk(value: Any, steps: list[Step]) -> Iterator[Any]:
    if not steps:
        yield value
        return
    (kind, arg), rest = steps[0], steps[1:]
    if kind == "key":
        if isinstance(value, dict) and arg in value:
            yield from _walk(value[arg], rest)
    elif kind == "index":
        if isinstance(value, list) and isinstance(arg, int) and -len(value) <= arg < len(value):
            yield from _walk(value[arg], rest)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, rest)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item, rest)


def select(value: Any, path: str) -> list[Any]:
    """Every value `path` reaches in `value` (the first alternative that reaches any)."""
    for steps in compile_path(path, "path"):
        found = list(_walk(value, steps))
        if found:
            return found
    return []


def first(value: Any, path: str) -> tuple[Any, str | None]:
    """(the first non-empty value `path` reaches, the key it was found under)."""
    for steps in compile_path(path, "path"):
        for found in _walk(value, steps):
            if found not in (None, "", [], {}):
                last = next((arg for kind, arg in reversed(steps) if kind == "key"), None)
                return found, str(last) if last is not None else None
    return None, None
