"""Metrics that need speech timings: talk, overlap, interruptions, monologues, latency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from convolens.metrics.intervals import Interval

__all__ = [
    "MONOLOGUE_BREAK_S",
    "TimedTimeline",
    "interruption_counts",
    "latencies",
    "longest_monologues",
    "speaker_unions",
]

# An interjection by someone else this long (seconds) takes the floor and ends a monologue;
# anything shorter ("yeah", "right, and then?") is listening, not a turn.
MONOLOGUE_BREAK_S = 2.0


@dataclass(slots=True)
class TimedTimeline:
    """Timed segments as parallel lists, sorted by start (ties keep input order)."""

    participant_ids: list[str] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.participant_ids)


def speaker_unions(timeline: TimedTimeline) -> dict[str, list[Interval]]:
    """Each speaker's speech as a sorted, disjoint union of intervals.

    The timeline is already in start order, so each speaker's union is merged in the same
    single pass instead of being re-sorted per speaker.
    """
    merged: dict[str, list[Interval]] = {}
    open_start: dict[str, float] = {}
    open_end: dict[str, float] = {}
    for pid, start, end in zip(
        timeline.participant_ids, timeline.starts, timeline.ends, strict=True
    ):
        if end <= start:
            continue  # zero-length segments cover no time (see intervals.union)
        current_end = open_end.get(pid)
        if current_end is None:
            merged[pid] = []
            open_start[pid], open_end[pid] = start, end
        elif start <= current_end:
            if end > current_end:
                open_end[pid] = end
        else:
            merged[pid].append((open_start[pid], current_end))
            open_start[pid], open_end[pid] = start, end
    for pid, spans in merged.items():
        spans.append((open_start[pid], open_end[pid]))
    return merged


def longest_monologues(
    timeline: TimedTimeline, break_s: float = MONOLOGUE_BREAK_S
) -> dict[str, float]:
    """Longest monologue per speaker: chained own segments, latest end minus first start.

    A speaker's next segment joins the current chain unless someone else holds the floor
    in between: a segment by another participant lasting at least `break_s` that is
    still going after the chain's end (it started before the next segment, since they
    arrive in start order). So "yeah" inside P's turn does not break P's monologue, and
    P's own backchannels inside someone else's long turn do not chain into one.
    Tracking the latest long-segment end of the top two authors makes each step O(1).
    """
    chain_start: dict[str, float] = {}
    chain_end: dict[str, float] = {}
    best: dict[str, float] = {}
    top_end = float("-inf")  # latest end of a long segment, by anyone
    top_author: str | None = None
    runner_up_end = float("-inf")  # latest long end by an author other than top_author
    for pid, start, end in zip(
        timeline.participant_ids, timeline.starts, timeline.ends, strict=True
    ):
        began = chain_start.get(pid)
        if began is None:
            chain_start[pid], chain_end[pid] = start, end
        elif (top_end if top_author != pid else runner_up_end) > chain_end[pid]:
            length = chain_end[pid] - began
            if length > best.get(pid, 0.0):
                best[pid] = length
            chain_start[pid], chain_end[pid] = start, end
        elif end > chain_end[pid]:
            chain_end[pid] = end
        if end - start >= break_s:
            if pid == top_author:
                top_end = max(top_end, end)
            elif end > top_end:
                runner_up_end, top_end, top_author = top_end, end, pid
            elif end > runner_up_end:
                runner_up_end = end
    for pid, began in chain_start.items():
        length = chain_end[pid] - began
        if length > best.get(pid, 0.0):
            best[pid] = length
    return best


def latencies(timeline: TimedTimeline) -> dict[str, list[float]]:
    """Per speaker, the silence before each turn that follows someone else's segment.

    `max(0, start - previous end)`: a reply that overlaps the previous turn has no wait.
    """
    out: dict[str, list[float]] = {}
    pids, starts, ends = timeline.participant_ids, timeline.starts, timeline.ends
    for k in range(1, len(pids)):
        pid = pids[k]
        if pid != pids[k - 1]:
            gap = starts[k] - ends[k - 1]
            out.setdefault(pid, []).append(gap if gap > 0.0 else 0.0)
    return out


def interruption_counts(
    timeline: TimedTimeline, is_backchannel: Callable[[str], bool]
) -> dict[tuple[str, str], int]:
    """Counts of `(interrupter, interrupted)`: a segment starting strictly inside another's.

    Sweep in start order keeping, per speaker, the latest end among segments that started
    strictly earlier: a segment starting at t falls inside one of Q's segments exactly when
    that running maximum exceeds t. Segments sharing a start are checked before any of them
    updates the maxima, so simultaneous starts never count. Backchannels never interrupt,
    and a segment counts once per interrupted speaker however many of its segments it cuts.
    """
    counts: dict[tuple[str, str], int] = {}
    max_end: dict[str, float] = {}
    pids, starts, ends, texts = (
        timeline.participant_ids,
        timeline.starts,
        timeline.ends,
        timeline.texts,
    )
    n = len(pids)
    pending: list[tuple[str, float]] = []  # updates held back until a run of equal starts ends
    for k in range(n):
        t = starts[k]
        pid = pids[k]
        victims: list[str] | None = None
        for q, e in max_end.items():
            if e > t and q != pid:
                if victims is None:
                    victims = [q]
                else:
                    victims.append(q)
        # The text check is the expensive part; only run it for actual overlaps.
        if victims is not None and not is_backchannel(texts[k]):
            for q in victims:
                counts[(pid, q)] = counts.get((pid, q), 0) + 1
        pending.append((pid, ends[k]))
        if k + 1 < n and starts[k + 1] == t:
            continue
        for who, end in pending:
            if end > max_end.get(who, t):
                max_end[who] = end
        pending.clear()
    return counts
