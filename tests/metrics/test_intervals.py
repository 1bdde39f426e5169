"""Interval helpers: union, lengths, intersections, gaps, multi-speaker time, quantiles."""

from __future__ import annotations

import pytest

from convolens.metrics.intervals import (
    covered_by_at_least,
    gaps,
    intersection_length,
    median,
    quantile,
    total_length,
    union,
)


def test_union_merges_overlapping_and_touching_and_drops_empty() -> None:
    spans = [(5.0, 7.0), (0.0, 2.0), (1.0, 3.0), (3.0, 4.0), (9.0, 9.0), (6.0, 6.5)]
    assert union(spans) == [(0.0, 4.0), (5.0, 7.0)]
    assert union([]) == []
    assert union([(2.0, 2.0)]) == []


def test_total_length_of_union() -> None:
    assert total_length(union([(0.0, 10.0), (8.0, 12.0), (20.0, 21.5)])) == pytest.approx(13.5)
    assert total_length([]) == 0


def test_intersection_length() -> None:
    assert intersection_length([(0.0, 10.0)], [(8.0, 12.0)]) == pytest.approx(2.0)
    a = [(0.0, 2.0), (4.0, 6.0), (8.0, 10.0)]
    b = [(1.0, 5.0), (5.5, 9.0)]
    # 1-2, 4-5, 5.5-6, 8-9
    assert intersection_length(a, b) == pytest.approx(3.5)
    assert intersection_length(b, a) == pytest.approx(3.5)
    assert intersection_length(a, []) == 0.0
    # Touching intervals share no time.
    assert intersection_length([(0.0, 1.0)], [(1.0, 2.0)]) == 0.0


def test_gaps_include_leading_and_trailing() -> None:
    assert gaps([(1.0, 2.0), (5.0, 6.0)], 10.0) == [(0.0, 1.0), (2.0, 5.0), (6.0, 10.0)]
    assert gaps([(0.0, 10.0)], 10.0) == []
    assert gaps([], 4.0) == [(0.0, 4.0)]
    assert gaps([], 0.0) == []


def test_covered_by_at_least_two_and_three_speakers() -> None:
    a = [(0.0, 10.0)]
    b = [(5.0, 15.0)]
    c = [(8.0, 9.0), (14.0, 20.0)]
    # >= 2: 5-10 (A, B) and 14-15 (B, C) -> 6
    assert covered_by_at_least([a, b, c], 2) == pytest.approx(6.0)
    # >= 3: 8-9 only
    assert covered_by_at_least([a, b, c], 3) == pytest.approx(1.0)
    # Two-party fast path and the empty / single-speaker cases.
    assert covered_by_at_least([a, b]) == pytest.approx(5.0)
    assert covered_by_at_least([a, [], b]) == pytest.approx(5.0)
    assert covered_by_at_least([a]) == 0.0
    assert covered_by_at_least([]) == 0.0


def test_quantile_matches_numpy_linear() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert quantile(values, 0.5) == pytest.approx(2.5)
    # position 0.9 * 3 = 2.7 -> 3 + 0.7 * (4 - 3)
    assert quantile(values, 0.9) == pytest.approx(3.7)
    assert quantile(values, 0.0) == 1.0
    assert quantile(values, 1.0) == 4.0
    assert quantile([7.0], 0.9) == 7.0
    assert quantile([], 0.5) is None


def test_median_sorts_its_input() -> None:
    assert median([5.0, 1.0, 3.0]) == 3.0
    assert median([4.0, 1.0]) == pytest.approx(2.5)
    assert median([]) is None
