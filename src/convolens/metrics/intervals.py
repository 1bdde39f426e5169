"""Interval and quantile helpers over plain float tuples: sorted sweeps, no numpy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "Interval",
    "covered_by_at_least",
    "gaps",
    "intersection_length",
    "median",
    "quantile",
    "total_length",
    "union",
]

Interval = tuple[float, float]


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint union of `(start, end)` intervals.

    Empty or inverted intervals are dropped: a zero-length segment covers no time, and
    keeping it would split one silence into two gaps. Touching intervals are merged.
    """
    spans = sorted(iv for iv in intervals if iv[1] > iv[0])
    if not spans:
        return []
    merged: list[Interval] = []
    cur_start, cur_end = spans[0]
    for start, end in spans:
        if start <= cur_end:
            if end > cur_end:
                cur_end = end
        else:
            merged.append((cur_start, cur_end))
            cur_start, cur_end = start, end
    merged.append((cur_start, cur_end))
    return merged


def total_length(spans: Iterable[Interval]) -> float:
    """Summed length of disjoint intervals (pass a `union`)."""
    return sum(end - start for start, end in spans)


def intersection_length(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    """Length of the intersection of two unions, by a two-pointer walk (O(len a + len b))."""
    i = j = 0
    total = 0.0
    len_a, len_b = len(a), len(b)
    while i < len_a and j < len_b:
        a_start, a_end = a[i]
        b_start, b_end = b[j]
        lo = a_start if a_start > b_start else b_start
        hi = a_end if a_end < b_end else b_end
        if hi > lo:
            total += hi - lo
        # Advance whichever interval ends first: it cannot meet anything further on.
        if a_end < b_end:
            i += 1
        else:
            j += 1
    return total


def gaps(spans: Sequence[Interval], duration: float, start: float = 0.0) -> list[Interval]:
    """Uncovered stretches of `[start, duration]` given a union, leading and trailing included."""
    out: list[Interval] = []
    cursor = start
    for lo, hi in spans:
        if lo > cursor:
            out.append((cursor, min(lo, duration)))
        if hi > cursor:
            cursor = hi
        if cursor >= duration:
            break
    if duration > cursor:
        out.append((cursor, duration))
    return [(lo, hi) for lo, hi in out if hi > lo]


def covered_by_at_least(unions: Iterable[Sequence[Interval]], count: int = 2) -> float:
    """Time during which at least `count` of the given unions are active (sweep line).

    Each union must be disjoint (one per speaker), so the number of open intervals at an
    instant is the number of distinct speakers talking.
    """
    non_empty = [u for u in unions if u]
    if len(non_empty) < count:
        return 0.0
    if count == 2 and len(non_empty) == 2:
        # The common two-party case needs no event sort.
        return intersection_length(non_empty[0], non_empty[1])
    events: list[tuple[float, int]] = []
    for spans in non_empty:
        for lo, hi in spans:
            events.append((lo, 1))
            events.append((hi, -1))
    # Ends sort before starts at equal times (-1 < 1); at a single instant this changes
    # no length, it only keeps the open count from overshooting.
    events.sort()
    total = 0.0
    active = 0
    previous = 0.0
    for time, delta in events:
        if active >= count:
            total += time - previous
        active += delta
        previous = time
    return total


def quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """Quantile with linear interpolation, as numpy's default: position = q * (n - 1)."""
    n = len(sorted_values)
    if n == 0:
        return None
    position = q * (n - 1)
    low = int(position)
    if low >= n - 1:
        return float(sorted_values[-1])
    fraction = position - low
    lo_value = sorted_values[low]
    return lo_value + (sorted_values[low + 1] - lo_value) * fraction


def median(values: Iterable[float]) -> float | None:
    """Median of unsorted values (None when empty)."""
    return quantile(sorted(values), 0.5)
