"""What a reviewer judges in a label: its categorical value, the model's runner-up, the choices.

Enrichment values are JSON objects shaped by each component (`{"intent": ...}`,
`{"label": "negative", ...}`, `{"type": "support", ...}`). A label is reviewable when one
categorical value can be read from it; free text (summaries, action items) is not.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["VALUE_KEYS", "categorical_value", "margin"]

# Keys that hold a label's category, in the order they are tried.
VALUE_KEYS = ("intent", "label", "type", "act", "emotion", "tracker", "category", "outcome")
# Longer strings are prose, not a category a reviewer picks from a list.
_MAX_VALUE = 80


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def categorical_value(value: Any) -> str | None:
    """The category a label asserts ("refund", "negative", "support"), or None."""
    data = _loads(value)
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, str):
        return data if 0 < len(data) <= _MAX_VALUE else None
    if isinstance(data, dict):
        for key in VALUE_KEYS:
            found = data.get(key)
            if isinstance(found, str) and 0 < len(found) <= _MAX_VALUE:
                return found
    return None


def margin(value: Any) -> float | None:
    """How far the model's choice led its runner-up (top-two probability or score gap), or
    None when the value lists no alternatives. A small margin is a disagreement case: the
    model nearly said something else."""
    data = _loads(value)
    if not isinstance(data, dict):
        return None
    scores: list[float] = []
    if isinstance(data.get("probabilities"), dict):
        scores = [float(v) for v in data["probabilities"].values() if isinstance(v, int | float)]
    else:
        for key in ("top", "candidates"):
            pairs = data.get(key)
            if isinstance(pairs, list):
                scores = [
                    float(p[1])
                    for p in pairs
                    if isinstance(p, list | tuple) and len(p) == 2 and isinstance(p[1], int | float)
                ]
                break
    if len(scores) < 2:
        return None
    first, second = sorted(scores, reverse=True)[:2]
    return first - second
