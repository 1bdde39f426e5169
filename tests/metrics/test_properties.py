"""Property tests: invariants of the timed metrics, and sweeps checked against brute force."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convolens.metrics import MetricsResult, Segment, compute_metrics, is_backchannel

TEXTS = ["yeah", "mm-hmm", "ok got it", "No, that is not right", "Can you say that again?"]
IDS = ["p0", "p1", "p2", "p3"]
ROLES = ["agent", "customer", "bot", "unknown"]

# Coarse grids (quarter seconds) make ties, touching intervals and simultaneous starts
# common, which is where sweep lines go wrong.
_time = st.integers(min_value=0, max_value=240).map(lambda q: q / 4)
_length = st.integers(min_value=0, max_value=48).map(lambda q: q / 4)


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[Segment], dict[str, str], float | None]:
    count = draw(st.integers(min_value=1, max_value=4))
    ids = IDS[:count]
    roles = {pid: draw(st.sampled_from(ROLES)) for pid in ids}
    segments = [
        Segment(
            participant_id=draw(st.sampled_from(ids)),
            text=draw(st.sampled_from(TEXTS)),
            start=(start := draw(_time)),
            end=start + draw(_length),
        )
        for _ in range(draw(st.integers(min_value=1, max_value=25)))
    ]
    duration = draw(st.none() | st.floats(min_value=0, max_value=120, allow_nan=False))
    return segments, roles, duration


def _elementary(segments: list[Segment], duration: float) -> list[tuple[float, float, set[str]]]:
    """Brute force: split [0, duration] at every endpoint; list who speaks in each piece."""
    points = sorted({0.0, duration} | {s.start for s in segments} | {s.end for s in segments})
    pieces = []
    for lo, hi in pairwise(points):
        mid = (lo + hi) / 2
        speakers = {s.participant_id for s in segments if s.start < mid < s.end}
        pieces.append((lo, hi, speakers))
    return pieces


def _ordered(segments: list[Segment]) -> list[Segment]:
    return sorted(segments, key=lambda s: s.start)


def _brute_interruptions(segments: list[Segment]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for s in segments:
        if is_backchannel(s.text):
            continue
        victims = {
            q.participant_id
            for q in segments
            if q.participant_id != s.participant_id and q.start < s.start < q.end
        }
        for victim in victims:
            counts[(s.participant_id, victim)] = counts.get((s.participant_id, victim), 0) + 1
    return counts


def _brute_monologue(segments: list[Segment], pid: str) -> float:
    ordered = _ordered(segments)
    best = 0.0
    chain: list[Segment] = []
    for index, s in enumerate(ordered):
        if s.participant_id != pid:
            continue
        chain_end = max((c.end for c in chain), default=0.0)
        broken = not chain or any(
            o.participant_id != pid and o.end - o.start >= 2.0 and o.end > chain_end
            for o in ordered[:index]
        )
        if broken:
            if chain:
                best = max(best, max(c.end for c in chain) - chain[0].start)
            chain = [s]
        else:
            chain.append(s)
    if chain:
        best = max(best, max(c.end for c in chain) - chain[0].start)
    return best


@settings(max_examples=300, deadline=None)
@given(conversations())
def test_timed_invariants(case: tuple[list[Segment], dict[str, str], float | None]) -> None:
    segments, roles, duration_seconds = case
    result = compute_metrics(segments, roles, duration_seconds)
    conv = result.conversation
    duration = conv.duration_s
    assert conv.timed and duration is not None
    assert conv.speech_s is not None and conv.silence_s is not None
    assert conv.silence_s + conv.speech_s == pytest.approx(duration)
    assert conv.silence_s >= -1e-9
    assert 0.0 <= (conv.long_silence_s or 0.0) <= conv.silence_s + 1e-9
    talk = {row.participant_id: row.talk_s or 0.0 for row in result.participants}
    for row in result.participants:
        assert row.talk_s is not None and row.listen_s is not None
        assert row.talk_s <= duration + 1e-9
        assert row.listen_s + row.talk_s <= duration + 1e-9
        assert (row.overlap_s or 0.0) <= row.talk_s + 1e-9
    if sum(talk.values()) > 0:
        shares = [row.talk_share or 0.0 for row in result.participants]
        assert sum(shares) == pytest.approx(1.0)
    for pair in result.pairs:
        assert (
            pair.overlap_s <= min(talk[pair.participant_id], talk[pair.other_participant_id]) + 1e-9
        )
    assert conv.overlap_s is not None
    assert conv.overlap_s <= conv.speech_s + 1e-9


@settings(max_examples=300, deadline=None)
@given(conversations())
def test_sweeps_match_brute_force(case: tuple[list[Segment], dict[str, str], float | None]) -> None:
    segments, roles, duration_seconds = case
    result = compute_metrics(segments, roles, duration_seconds)
    conv = result.conversation
    assert conv.duration_s is not None
    pieces = _elementary(segments, conv.duration_s)
    assert conv.speech_s == pytest.approx(sum(hi - lo for lo, hi, who in pieces if who))
    assert conv.overlap_s == pytest.approx(sum(hi - lo for lo, hi, who in pieces if len(who) >= 2))
    for row in result.participants:
        pid = row.participant_id
        assert row.talk_s == pytest.approx(sum(hi - lo for lo, hi, who in pieces if pid in who))
        alone_out = sum(hi - lo for lo, hi, who in pieces if who - {pid} and pid not in who)
        assert row.listen_s == pytest.approx(alone_out)
        assert row.longest_monologue_s == pytest.approx(_brute_monologue(segments, pid))
    for pair in result.pairs:
        both = {pair.participant_id, pair.other_participant_id}
        assert pair.overlap_s == pytest.approx(
            sum(hi - lo for lo, hi, who in pieces if both <= who)
        )
    expected = _brute_interruptions(segments)
    for pair in result.pairs:
        key = (pair.participant_id, pair.other_participant_id)
        assert pair.interruptions == expected.get(key, 0)
    assert conv.interruptions == sum(expected.values())


@settings(max_examples=100, deadline=None)
@given(conversations(), st.randoms(use_true_random=False))
def test_interval_metrics_do_not_depend_on_input_order(
    case: tuple[list[Segment], dict[str, str], float | None], rng: random.Random
) -> None:
    segments, roles, duration_seconds = case
    shuffled = list(segments)
    rng.shuffle(shuffled)

    def key(result: MetricsResult) -> list[object]:
        c = result.conversation
        return [c.speech_s, c.silence_s, c.overlap_s, c.long_silence_count, c.interruptions] + [
            (r.talk_s, r.listen_s, r.overlap_s, r.interruptions, r.interrupted)
            for r in result.participants
        ]

    before = key(compute_metrics(segments, roles, duration_seconds))
    after = key(compute_metrics(shuffled, roles, duration_seconds))
    assert _close(after, before)


def _close(a: list[object], b: list[object]) -> bool:
    flat_a = [x for item in a for x in (item if isinstance(item, tuple) else (item,))]
    flat_b = [x for item in b for x in (item if isinstance(item, tuple) else (item,))]
    return all(x == pytest.approx(y) for x, y in zip(flat_a, flat_b, strict=True))
