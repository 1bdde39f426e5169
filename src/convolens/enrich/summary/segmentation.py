"""Topic segments of a long conversation: TextTiling (Hearst 1997) over sentence
embeddings instead of word counts, and the Pk / WindowDiff measures to tune it.

Each gap between two turns is scored by the cosine between the mean embedding of the
`window` content turns before it and of the `window` after it; a gap whose depth (how far
the similarity dips below the peaks on either side) is more than `depth` standard
deviations above the mean depth becomes a boundary, if both sides keep `min_turns` turns.
Backchannels ("yeah", "mm-hmm") carry no topic and are left out of the windows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["boundaries_to_labels", "pk", "texttiling", "window_diff"]


def texttiling(
    vectors: np.ndarray, *, window: int, depth: float, min_turns: int, most: int
) -> list[int]:
    """Indices (into `vectors`) where a new topic starts, ascending, without 0."""
    n = len(vectors)
    if n < 2 * min_turns:
        return []
    gaps = np.zeros(n)
    for gap in range(1, n):
        left = vectors[max(0, gap - window) : gap].mean(axis=0)
        right = vectors[gap : gap + window].mean(axis=0)
        norm = float(np.linalg.norm(left) * np.linalg.norm(right)) or 1.0
        gaps[gap] = float(left @ right) / norm
    scores = np.zeros(n)
    for gap in range(1, n):
        # The nearest peaks, as TextTiling climbs while the similarity rises.
        k = gap
        while k > 1 and gaps[k - 1] >= gaps[k]:
            k -= 1
        peak_left = gaps[k]
        k = gap
        while k < n - 1 and gaps[k + 1] >= gaps[k]:
            k += 1
        peak_right = gaps[k]
        scores[gap] = (peak_left - gaps[gap]) + (peak_right - gaps[gap])
    valid = scores[1:]
    cutoff = valid.mean() + depth * valid.std()
    chosen: list[int] = []
    for gap in sorted(range(1, n), key=lambda g: -scores[g]):
        if scores[gap] <= cutoff or len(chosen) >= most - 1:
            break
        if gap < min_turns or n - gap < min_turns:
            continue
        if any(abs(gap - c) < min_turns for c in chosen):
            continue
        chosen.append(gap)
    return sorted(chosen)


def boundaries_to_labels(boundaries: list[int], n: int) -> list[int]:
    """Segment number of each of `n` items, from the starts of segments 2, 3, ..."""
    labels, segment, starts = [], 0, set(boundaries)
    for i in range(n):
        if i in starts:
            segment += 1
        labels.append(segment)
    return labels


def _default_k(reference: list[int]) -> int:
    # Half the mean true segment length (Beeferman et al. 1999).
    segments = len(set(reference)) or 1
    return max(2, round(len(reference) / segments / 2))


def pk(reference: list[int], hypothesis: list[int], k: int | None = None) -> float:
    """Probability that two items `k` apart are wrongly put in the same or different
    segments (lower is better)."""
    k = k or _default_k(reference)
    n = len(reference)
    if n <= k:
        return 0.0
    errors = sum(
        (reference[i] == reference[i + k]) != (hypothesis[i] == hypothesis[i + k])
        for i in range(n - k)
    )
    return errors / (n - k)


def window_diff(reference: list[int], hypothesis: list[int], k: int | None = None) -> float:
    """WindowDiff (Pevzner & Hearst 2002): windows whose boundary counts differ."""
    k = k or _default_k(reference)
    n = len(reference)
    if n <= k:
        return 0.0
    errors = sum(
        (reference[i + k] - reference[i]) != (hypothesis[i + k] - hypothesis[i])
        for i in range(n - k)
    )
    return errors / (n - k)
