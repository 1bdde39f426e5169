"""Text measures and response times of written conversations (sent_at timestamps)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from convolens.metrics import (
    MetricsResult,
    ParticipantMetrics,
    Segment,
    compute_metrics,
    is_backchannel,
    metrics_for_conversation,
    question_count,
    word_count,
)
from convolens.model import Conversation, Participant, Role, SourceInfo, Utterance

T0 = datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)


def msg(pid: str, seconds: float, text: str = "a message") -> Segment:
    return Segment(participant_id=pid, text=text, sent_at=T0 + timedelta(seconds=seconds))


def rows(result: MetricsResult) -> dict[str, ParticipantMetrics]:
    return {row.participant_id: row for row in result.participants}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world -- 3pm!", 3),
        ("  spaced   out\ttext\n", 3),
        ("— … ?! --", 0),
        ("l'été à 5€", 3),
        ("", 0),
    ],
)
def test_word_count(text: str, expected: int) -> None:
    assert word_count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Really?? OK? fine", 2),
        ("What?! No way? (Seriously?)", 3),
        ("Is it done?", 1),
        ("see https://example.com/a?b=1 for details.", 0),
        ("No questions here.", 0),
        ("¿Qué? ok", 1),
    ],
)
def test_question_count(text: str, expected: int) -> None:
    assert question_count(text) == expected


@pytest.mark.parametrize(
    "text", ["yeah", "Mm-hmm.", "OK, got it!", "uh huh", "I see", "yeah yeah okay", "...", "Right?"]
)
def test_backchannels(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize(
    "text", ["yeah I think so", "yeah yeah yeah yeah", "Wait", "got", "it", "no, that's wrong"]
)
def test_not_backchannels(text: str) -> None:
    assert not is_backchannel(text)


CHAT = [
    msg("C", 0, "My parcel never arrived. Where is it?"),
    msg("A", 120, "Sorry to hear that! Let me check."),
    msg("C", 180, "Thanks"),
    msg("C", 210, "Any news??"),
    msg("A", 600, "It was re-sent today."),
]
CHAT_ROLES = {"C": "customer", "A": "agent"}


def test_response_times_from_sent_at() -> None:
    result = compute_metrics(CHAT, CHAT_ROLES)
    conv = result.conversation
    a, c = rows(result)["A"], rows(result)["C"]
    assert conv.timed is False
    assert conv.elapsed_s == pytest.approx(600.0)
    # Responses: A after 120 s, C after 60 s, A 390 s after C's last message (at 210 s).
    assert a.median_response_s == pytest.approx(255.0)
    assert c.median_response_s == pytest.approx(60.0)
    assert conv.median_response_s == pytest.approx(120.0)
    assert conv.first_response_s == pytest.approx(120.0)
    assert (a.first_response_s, c.first_response_s) == (pytest.approx(120.0), None)
    assert conv.speaker_switches == conv.exchanges == 3
    assert conv.question_count == 2
    assert (conv.duration_s, conv.switches_per_minute, conv.silence_s) == (None, None, None)
    assert result.pairs == []
    assert all(r.talk_s is None and r.interruptions is None for r in result.participants)


def test_text_messages_are_sorted_by_sent_at() -> None:
    shuffled = list(CHAT)
    random.Random(3).shuffle(shuffled)
    assert compute_metrics(shuffled, CHAT_ROLES) == compute_metrics(CHAT, CHAT_ROLES)


def test_first_response_starts_at_the_first_customer_message() -> None:
    roles = {"B": "bot", "C": "customer", "A": "agent"}
    segments = [msg("B", 0, "Hi! I'm the assistant."), msg("C", 60), msg("B", 65), msg("A", 300)]
    result = compute_metrics(segments, roles)
    assert result.conversation.first_response_s == pytest.approx(5.0)
    assert rows(result)["A"].first_response_s == pytest.approx(240.0)
    assert rows(result)["B"].first_response_s == pytest.approx(5.0)
    assert rows(result)["C"].first_response_s is None


def test_another_customer_is_not_the_first_response() -> None:
    roles = {"C1": "customer", "C2": "customer", "A": "agent"}
    result = compute_metrics([msg("C1", 0), msg("C2", 10), msg("A", 50)], roles)
    assert result.conversation.first_response_s == pytest.approx(50.0)
    assert rows(result)["C2"].first_response_s == pytest.approx(10.0)


def test_first_response_without_roles_uses_the_first_author() -> None:
    result = compute_metrics([msg("X", 0), msg("X", 5), msg("Y", 30)], {})
    assert result.conversation.first_response_s == pytest.approx(30.0)
    assert [r.role for r in result.participants] == ["unknown", "unknown"]


def test_naive_timestamps_are_read_as_utc() -> None:
    naive = Segment("C", "hi", sent_at=datetime(2024, 3, 1, 10, 0, 0))
    result = compute_metrics([naive, msg("A", 60)], CHAT_ROLES)
    assert result.conversation.first_response_s == pytest.approx(60.0)


def test_no_timing_at_all() -> None:
    segments = [Segment("A", "x"), Segment("B", "y"), Segment("B", "z"), Segment("A", "w")]
    conv = compute_metrics(segments, CHAT_ROLES).conversation
    assert conv.speaker_switches == 2  # input order
    assert (conv.first_response_s, conv.median_response_s, conv.elapsed_s) == (None,) * 3


def test_partly_timed_still_gives_response_times() -> None:
    segments = [
        Segment("C", "help me", start=0.0, end=1.0),
        Segment("A", "untimed note"),
        Segment("A", "sure", start=3.0, end=4.0),
    ]
    conv = compute_metrics(segments, CHAT_ROLES).conversation
    assert conv.timed is False
    assert conv.first_response_s == pytest.approx(2.0)
    assert conv.median_response_s == pytest.approx(2.0)


def test_metrics_for_a_chat_leaves_out_internal_notes() -> None:
    conversation = Conversation(
        channel="chat",
        source=SourceInfo(system="test"),
        participants=[
            Participant(participant_id="c", role=Role.customer),
            Participant(participant_id="a", role=Role.agent),
        ],
        utterances=[
            Utterance(
                participant_id="c", text="My package never arrived. Can you help?", sent_at=T0
            ),
            Utterance(
                participant_id="a",
                text="checking with the warehouse",
                sent_at=T0 + timedelta(minutes=1),
                internal=True,
            ),
            Utterance(
                participant_id="a",
                text="Sorry about that! I've re-sent it.",
                sent_at=T0 + timedelta(minutes=5),
            ),
        ],
    )
    result = metrics_for_conversation(conversation)
    conv = result.conversation
    assert (conv.message_count, conv.word_count, conv.question_count) == (2, 13, 1)
    assert conv.first_response_s == pytest.approx(300.0)
    assert conv.elapsed_s == pytest.approx(300.0)
    assert rows(result)["a"].role == "agent"
