"""Timed metrics on hand-built timelines whose values were worked out by hand."""

from __future__ import annotations

import random

import pytest

from convolens.metrics import (
    MetricsResult,
    PairMetrics,
    ParticipantMetrics,
    Segment,
    compute_metrics,
    metrics_for_conversation,
)
from convolens.model import Conversation, Participant, Role, SourceInfo, Utterance

SENTENCE = "I think we should talk about this properly"
ROLES = {"A": "agent", "B": "customer"}


def seg(pid: str, start: float, end: float, text: str = SENTENCE) -> Segment:
    return Segment(participant_id=pid, text=text, start=start, end=end)


def rows(result: MetricsResult) -> dict[str, ParticipantMetrics]:
    return {row.participant_id: row for row in result.participants}


def pair(result: MetricsResult, p: str, q: str) -> PairMetrics:
    (row,) = [r for r in result.pairs if (r.participant_id, r.other_participant_id) == (p, q)]
    return row


def test_overlap_talk_and_listen() -> None:
    result = compute_metrics([seg("A", 0.0, 10.0), seg("B", 8.0, 12.0)], ROLES)
    conv = result.conversation
    a, b = rows(result)["A"], rows(result)["B"]
    assert conv.timed is True
    assert conv.duration_s == pytest.approx(12.0)
    assert conv.speech_s == pytest.approx(12.0)
    assert conv.silence_s == pytest.approx(0.0)
    assert conv.overlap_s == pytest.approx(2.0)
    assert conv.interruptions == 1
    assert conv.speaker_switches == conv.exchanges == 1
    assert conv.switches_per_minute == pytest.approx(5.0)  # 1 switch in 12 s
    assert (a.talk_s, b.talk_s) == (pytest.approx(10.0), pytest.approx(4.0))
    assert a.talk_share == pytest.approx(10 / 14)
    assert b.talk_share == pytest.approx(4 / 14)
    assert a.talk_ratio == pytest.approx(10 / 12)
    assert a.listen_s == pytest.approx(2.0)  # B talks 8-12, A is silent for 10-12
    assert b.listen_s == pytest.approx(8.0)  # A talks 0-10, B is silent for 0-8
    assert a.overlap_s == b.overlap_s == pytest.approx(2.0)
    assert (b.interruptions, b.interrupted, a.interruptions, a.interrupted) == (1, 0, 0, 1)
    assert pair(result, "A", "B").overlap_s == pytest.approx(2.0)
    assert pair(result, "B", "A").interruptions == 1
    assert pair(result, "A", "B").interruptions == 0
    assert len(result.pairs) == 2


def test_silences_gap_of_exactly_three_seconds_is_not_long() -> None:
    segments = [seg("A", 0.0, 1.0), seg("B", 4.0, 5.0), seg("A", 8.5, 9.0)]
    conv = compute_metrics(segments, ROLES, duration_seconds=13.0).conversation
    assert conv.duration_s == pytest.approx(13.0)
    assert conv.speech_s == pytest.approx(2.5)
    assert conv.silence_s == pytest.approx(10.5)
    # 1-4 is exactly 3.0 (not long); 5-8.5 (3.5) and the trailing 9-13 (4.0) are.
    assert conv.long_silence_count == 2
    assert conv.long_silence_s == pytest.approx(7.5)


def test_leading_silence_counts() -> None:
    conv = compute_metrics([seg("A", 3.5, 4.0)], ROLES).conversation
    assert (conv.long_silence_count, conv.long_silence_s) == (1, pytest.approx(3.5))
    conv = compute_metrics([seg("A", 3.0, 4.0)], ROLES).conversation
    assert (conv.long_silence_count, conv.long_silence_s) == (0, 0.0)


def test_duration_seconds_extends_the_timeline() -> None:
    result = compute_metrics([seg("A", 0.0, 10.0)], ROLES, duration_seconds=60.0)
    assert result.conversation.duration_s == pytest.approx(60.0)
    assert result.conversation.silence_s == pytest.approx(50.0)
    assert result.conversation.long_silence_s == pytest.approx(50.0)
    assert rows(result)["A"].talk_ratio == pytest.approx(10 / 60)
    # A shorter declared duration never cuts speech off.
    short = compute_metrics([seg("A", 0.0, 10.0)], ROLES, duration_seconds=5.0)
    assert short.conversation.duration_s == pytest.approx(10.0)


def test_short_backchannel_does_not_break_a_monologue() -> None:
    segments = [seg("A", 0.0, 10.0), seg("B", 10.5, 11.5, "yeah"), seg("A", 12.0, 20.0)]
    result = compute_metrics(segments, ROLES)
    assert rows(result)["A"].longest_monologue_s == pytest.approx(20.0)
    assert rows(result)["B"].longest_monologue_s == pytest.approx(1.0)


def test_long_interjection_breaks_a_monologue() -> None:
    segments = [
        seg("A", 0.0, 10.0),
        seg("B", 10.5, 13.0, "Sure, that sounds good"),
        seg("A", 13.5, 20.0),
    ]
    result = compute_metrics(segments, ROLES)
    assert rows(result)["A"].longest_monologue_s == pytest.approx(10.0)
    assert rows(result)["B"].longest_monologue_s == pytest.approx(2.5)


def test_interjection_of_exactly_two_seconds_breaks() -> None:
    broken = [seg("A", 0.0, 5.0), seg("B", 6.0, 8.0), seg("A", 9.0, 20.0)]
    assert rows(compute_metrics(broken, ROLES))["A"].longest_monologue_s == pytest.approx(11.0)
    kept = [seg("A", 0.0, 5.0), seg("B", 6.0, 7.9), seg("A", 9.0, 20.0)]
    assert rows(compute_metrics(kept, ROLES))["A"].longest_monologue_s == pytest.approx(20.0)


def test_monologue_survives_own_pauses_and_several_short_interjections() -> None:
    paused = [seg("A", 0.0, 5.0), seg("A", 30.0, 40.0)]
    assert rows(compute_metrics(paused, ROLES))["A"].longest_monologue_s == pytest.approx(40.0)
    chatty = [
        seg("A", 0.0, 10.0),
        seg("B", 3.0, 4.0, "yeah"),
        seg("B", 6.0, 7.5, "right right"),
        seg("A", 11.0, 15.0),
    ]
    assert rows(compute_metrics(chatty, ROLES))["A"].longest_monologue_s == pytest.approx(15.0)


def test_interjections_inside_another_long_turn_do_not_chain() -> None:
    # B holds the floor 0-30; A's remarks at 1-5 and 6-10 are two turns, not a monologue.
    segments = [seg("B", 0.0, 30.0), seg("A", 1.0, 5.0), seg("A", 6.0, 10.0)]
    result = compute_metrics(segments, ROLES)
    assert rows(result)["A"].longest_monologue_s == pytest.approx(4.0)
    assert rows(result)["B"].longest_monologue_s == pytest.approx(30.0)


def test_backchannel_inside_the_other_turn_then_a_question_is_no_monologue() -> None:
    segments = [
        seg("A", 0.0, 4.0),
        seg("B", 3.0, 6.0, "Happy to be here."),
        seg("A", 10.0, 20.0),
        seg("B", 12.0, 12.5, "yeah"),
        seg("B", 22.0, 24.0, "What does it cost?"),
    ]
    result = compute_metrics(segments, ROLES)
    assert rows(result)["B"].longest_monologue_s == pytest.approx(3.0)
    assert rows(result)["A"].longest_monologue_s == pytest.approx(10.0)


def test_talking_over_the_speaker_without_taking_the_floor_does_not_break() -> None:
    # B talks 4 s over A but stops while A is still speaking: A keeps the floor.
    segments = [seg("A", 0.0, 10.0), seg("B", 3.0, 7.0), seg("A", 11.0, 15.0)]
    assert rows(compute_metrics(segments, ROLES))["A"].longest_monologue_s == pytest.approx(15.0)


def test_simultaneous_starts_overlap_but_do_not_interrupt() -> None:
    for segments in (
        [seg("A", 5.0, 10.0), seg("B", 5.0, 8.0)],
        [seg("B", 5.0, 8.0), seg("A", 5.0, 10.0)],
    ):
        result = compute_metrics(segments, ROLES)
        assert result.conversation.overlap_s == pytest.approx(3.0)
        assert pair(result, "A", "B").overlap_s == pytest.approx(3.0)
        assert result.conversation.interruptions == 0
        assert all(r.interruptions == 0 and r.interrupted == 0 for r in result.participants)


def test_sentence_interrupts_but_backchannel_does_not() -> None:
    segments = [
        seg("A", 0.0, 10.0),
        seg("B", 3.0, 4.0, "Yeah, right."),
        seg("B", 6.0, 9.0, "Wait, that is not what I ordered"),
    ]
    result = compute_metrics(segments, ROLES)
    a, b = rows(result)["A"], rows(result)["B"]
    assert result.conversation.interruptions == 1
    assert (b.interruptions, a.interrupted) == (1, 1)
    assert (a.interruptions, b.interrupted) == (0, 0)
    assert result.conversation.overlap_s == pytest.approx(4.0)
    # Backchannels in other forms are ignored as well.
    for text in ("mm-hmm", "OK, got it!", "uh huh", "I see."):
        quiet = compute_metrics([seg("A", 0.0, 10.0), seg("B", 3.0, 4.0, text)], ROLES)
        assert quiet.conversation.interruptions == 0, text


def test_starting_exactly_when_the_other_stops_is_not_an_interruption() -> None:
    result = compute_metrics([seg("A", 0.0, 5.0), seg("B", 5.0, 7.0)], ROLES)
    assert result.conversation.interruptions == 0
    assert result.conversation.overlap_s == 0.0


def test_one_segment_interrupts_each_speaker_at_most_once() -> None:
    nested = [seg("A", 0.0, 5.0), seg("A", 2.0, 8.0), seg("B", 3.0, 4.0, "I disagree with it")]
    assert pair(compute_metrics(nested, ROLES), "B", "A").interruptions == 1
    roles = {"A": "agent", "B": "customer", "C": "agent"}
    three = [seg("A", 0.0, 10.0), seg("C", 0.0, 10.0), seg("B", 5.0, 6.0, "Hold on, both of you")]
    result = compute_metrics(three, roles)
    assert result.conversation.interruptions == 2
    assert rows(result)["B"].interruptions == 2
    assert pair(result, "B", "A").interruptions == pair(result, "B", "C").interruptions == 1
    assert pair(result, "A", "C").interruptions == 0  # simultaneous start
    assert result.conversation.overlap_s == pytest.approx(10.0)
    assert len(result.pairs) == 6


LATENCY_TIMELINE = [
    seg("A", 0.0, 1.0),
    seg("B", 2.0, 3.0),  # B waits 1.0
    seg("A", 3.0, 4.0),  # A waits 0.0
    seg("B", 3.5, 5.0),  # B starts before A ends: 0.0
    seg("A", 6.0, 7.0),  # A waits 1.0
    seg("B", 10.0, 11.0),  # B waits 3.0
    seg("A", 11.0, 12.0),  # A waits 0.0
    seg("B", 18.0, 19.0),  # B waits 6.0
    seg("B", 19.5, 20.0),  # follows B itself: no latency
]


def test_latency_median_and_p90() -> None:
    roles = {"A": "customer", "B": "agent"}
    result = compute_metrics(LATENCY_TIMELINE, roles)
    a, b = rows(result)["A"], rows(result)["B"]
    # B: [0, 1, 3, 6] -> median 2.0; p90 position 2.7 -> 3 + 0.7 * 3
    assert b.median_latency_s == pytest.approx(2.0)
    assert b.p90_latency_s == pytest.approx(5.1)
    # A: [0, 0, 1] -> median 0.0; p90 position 1.8 -> 0 + 0.8 * 1
    assert a.median_latency_s == pytest.approx(0.0)
    assert a.p90_latency_s == pytest.approx(0.8)
    # Without sent_at, response times come from the same speech timings.
    assert b.median_response_s == pytest.approx(2.0)
    assert result.conversation.median_response_s == pytest.approx(1.0)
    # First response: customer A's first turn ends at 1.0, agent B starts at 2.0.
    assert result.conversation.first_response_s == pytest.approx(1.0)
    assert (b.first_response_s, a.first_response_s) == (pytest.approx(1.0), None)
    assert result.conversation.speaker_switches == 7
    assert result.conversation.switches_per_minute == pytest.approx(7 / (20 / 60))


def test_unsorted_input_gives_the_same_result() -> None:
    roles = {"A": "customer", "B": "agent"}
    expected = compute_metrics(LATENCY_TIMELINE, roles)
    shuffled = list(LATENCY_TIMELINE)
    random.Random(7).shuffle(shuffled)
    assert compute_metrics(shuffled, roles) == expected


def test_words_per_minute_uses_union_talk_time() -> None:
    segments = [seg("A", 0.0, 20.0, "word " * 20), seg("A", 10.0, 30.0, "word " * 30)]
    a = rows(compute_metrics(segments, ROLES))["A"]
    assert (a.word_count, a.talk_s) == (50, pytest.approx(30.0))
    assert a.words_per_minute == pytest.approx(100.0)


def test_participant_without_segments_gets_a_row() -> None:
    roles = {"A": "agent", "B": "customer", "S": "agent"}
    result = compute_metrics([seg("A", 0.0, 10.0), seg("B", 8.0, 12.0)], roles)
    s = rows(result)["S"]
    assert result.conversation.participant_count == 3
    assert (s.message_count, s.word_count, s.question_count) == (0, 0, 0)
    assert (s.talk_s, s.talk_share, s.talk_ratio) == (0.0, 0.0, 0.0)
    assert s.listen_s == pytest.approx(12.0)
    assert s.words_per_minute is None
    assert s.longest_monologue_s == 0.0
    assert (s.median_latency_s, s.p90_latency_s) == (None, None)
    assert (s.interruptions, s.interrupted, s.overlap_s) == (0, 0, 0.0)
    assert (s.first_response_s, s.median_response_s) == (None, None)
    assert pair(result, "S", "A").overlap_s == 0.0
    assert len(result.pairs) == 6


def test_unknown_author_is_added_and_roles_are_normalised() -> None:
    result = compute_metrics([seg("A", 0.0, 1.0), seg("X", 1.0, 2.0)], {"A": Role.agent})
    assert [(r.participant_id, r.role) for r in result.participants] == [
        ("A", "agent"),
        ("X", "unknown"),
    ]


def test_untimed_conversation_has_no_timed_fields() -> None:
    segments = [Segment("A", "Hello there?"), Segment("B", "Hi"), Segment("A", "Bye")]
    result = compute_metrics(segments, ROLES, duration_seconds=30.0)
    conv = result.conversation
    assert conv.timed is False
    assert (conv.duration_s, conv.silence_s, conv.overlap_s, conv.interruptions) == (None,) * 4
    assert conv.switches_per_minute is None
    assert conv.speaker_switches == 2
    assert (conv.message_count, conv.word_count, conv.question_count) == (3, 4, 1)
    assert result.pairs == []
    assert all(r.talk_s is None and r.longest_monologue_s is None for r in result.participants)


def test_empty_conversation() -> None:
    result = compute_metrics([], ROLES)
    assert result.conversation.timed is False
    assert result.conversation.message_count == 0
    assert result.conversation.speaker_switches == 0
    assert [r.message_count for r in result.participants] == [0, 0]


def test_metrics_for_a_timed_conversation() -> None:
    conversation = Conversation(
        channel="call",
        source=SourceInfo(system="test"),
        duration_seconds=30.0,
        participants=[
            Participant(participant_id="ag", role=Role.agent),
            Participant(participant_id="cu", role=Role.customer),
        ],
        utterances=[
            Utterance(participant_id="cu", text="Hi, my order is late?", start=0.5, end=3.0),
            Utterance(participant_id="ag", text="Let me check that for you.", start=4.0, end=6.0),
            Utterance(participant_id="cu", text="Thanks", start=6.5, end=7.0),
        ],
    )
    result = metrics_for_conversation(conversation)
    conv = result.conversation
    assert conv.timed is True
    assert (conv.message_count, conv.word_count, conv.question_count) == (3, 12, 1)
    assert conv.duration_s == pytest.approx(30.0)
    assert conv.speech_s == pytest.approx(5.0)
    assert conv.silence_s == pytest.approx(25.0)
    assert (conv.long_silence_count, conv.long_silence_s) == (1, pytest.approx(23.0))
    assert conv.first_response_s == pytest.approx(1.0)
    ag = rows(result)["ag"]
    assert (ag.role, ag.talk_s, ag.first_response_s) == ("agent", pytest.approx(2.0), 1.0)
