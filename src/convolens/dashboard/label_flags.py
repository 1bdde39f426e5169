"""Marks label values whose reviewed precision is under the bar on the dashboard's charts.

A chart of a label's values (the overview's intent mix, its sentiment mix) gets a ⚑ beside
each flagged value's bar and, on hover, the value's reviewed precision and interval; the
bar's name and colour stay as they were. The figures come from `review.figures`.
"""

from __future__ import annotations

from typing import Any

from convolens.review.figures import ValueQuality, flagged_values
from convolens.store.warehouse import Warehouse

__all__ = ["FLAG", "flag_note", "mark_flagged"]

FLAG = "⚑"


def flag_note(v: ValueQuality) -> str:
    """A flagged value's tooltip: its reviewed precision and interval."""
    low = f"{v.precision_low:.0%}" if v.precision_low is not None else "?"
    high = f"{v.precision_high:.0%}" if v.precision_high is not None else "?"
    share = f"{v.precision:.0%}" if v.precision is not None else "?"
    return f"reviewed precision {share} (95% CI {low}-{high}, {v.reviewed} reviews): below the bar"


def mark_flagged(fig: Any, db: Warehouse, label: str) -> Any:
    """`fig` (a bar chart of `label`'s values) with its flagged values marked."""
    flagged = flagged_values(db)
    if not any(key[0] == label for key in flagged):
        return fig
    for trace in fig.data:
        if trace.type != "bar":
            continue
        names = list(trace.y if trace.orientation == "h" else trace.x)
        notes = {n: flagged.get((label, str(n))) for n in names}
        trace.text = [FLAG if notes[n] else "" for n in names]
        trace.textposition = "outside"
        trace.hovertext = [
            f"{n} {FLAG} {flag_note(v)}" if (v := notes[n]) else str(n) for n in names
        ]
    return fig


def mark_flagged_series(fig: Any, db: Warehouse, label: str) -> Any:
    """`fig` (one trace per value of `label`, as the trends chart draws them) with each
    flagged value's legend name marked and its figures added to the hover."""
    flagged = flagged_values(db)
    for trace in fig.data:
        found = flagged.get((label, str(trace.name)))
        if found is None:
            continue
        note = flag_note(found)
        trace.name = f"{trace.name} {FLAG}"
        if trace.hovertemplate:
            head, _, _ = trace.hovertemplate.partition("<extra>")
            trace.hovertemplate = f"{head}<br>{note}<extra>{trace.name}</extra>"
    return fig
