"""The `compute_metrics` entry point: text counts, timed dynamics and response times together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from convolens.metrics.intervals import (
    covered_by_at_least,
    gaps,
    intersection_length,
    median,
    quantile,
    total_length,
    union,
)
from convolens.metrics.results import (
    ConversationMetrics,
    MetricsResult,
    PairMetrics,
    ParticipantMetrics,
    Segment,
)
from convolens.metrics.text import (
    ResponseTimes,
    is_backchannel,
    question_count,
    response_times,
    word_count,
)
from convolens.metrics.timed import (
    TimedTimeline,
    interruption_counts,
    latencies,
    longest_monologues,
    speaker_unions,
)

if TYPE_CHECKING:
    from convolens.model import Conversation

__all__ = ["LONG_SILENCE_S", "compute_metrics", "metrics_for_conversation"]

# A gap in speech strictly longer than this (seconds) is a "long silence": dead air a
# customer notices, rather than the pause of a normal turn change.
LONG_SILENCE_S = 3.0
_ROLES = frozenset({"agent", "customer", "bot", "unknown"})
_by_start = attrgetter("start")


def _role(value: object) -> str:
    # Accepts the model's Role enum or plain strings; anything unrecognised is 'unknown'
    # so downstream group-bys see only the four documented values.
    text = str(getattr(value, "value", value)).lower()
    return text if text in _ROLES else "unknown"


def _utc(value: datetime) -> datetime:
    # Naive timestamps are read as UTC, as the model does, so they subtract from aware ones.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _timeline(ordered: Sequence[Segment]) -> TimedTimeline:
    starts: list[float] = [seg.start for seg in ordered]  # type: ignore[misc]
    ends: list[float] = [seg.end for seg in ordered]  # type: ignore[misc]
    # Clamp malformed timings (negative start, end before start) instead of failing: the
    # model validates them, but Segments may also come from raw warehouse rows.
    if (starts and starts[0] < 0.0) or any(e < s for s, e in zip(starts, ends, strict=True)):
        starts = [s if s > 0.0 else 0.0 for s in starts]
        ends = [e if e > s else s for s, e in zip(starts, ends, strict=True)]
    return TimedTimeline(
        participant_ids=[seg.participant_id for seg in ordered],
        starts=starts,
        ends=ends,
        texts=[seg.text for seg in ordered],
    )


def _responses(
    segments: Sequence[Segment],
    timeline: TimedTimeline | None,
    roles: Mapping[str, str],
) -> tuple[ResponseTimes | None, float | None]:
    """Response times from sent_at when any segment has one, else from speech timings."""
    written = [s for s in segments if s.sent_at is not None]
    if written:
        # Stable sort on the timestamp alone: equal sent_at keep their input order.
        stamped = sorted(
            ((_utc(s.sent_at), s.participant_id) for s in written),  # type: ignore[arg-type]
            key=itemgetter(0),
        )
        origin = stamped[0][0]
        offsets = [(when - origin).total_seconds() for when, _ in stamped]
        pids = [pid for _, pid in stamped]
        return response_times(pids, offsets, offsets, roles), offsets[-1]
    if timeline is None:
        # Partly timed: the segments that have timings still give response times.
        timed_part = [s for s in segments if s.start is not None and s.end is not None]
        if not timed_part:
            return None, None
        timeline = _timeline(sorted(timed_part, key=_by_start))
    return response_times(timeline.participant_ids, timeline.starts, timeline.ends, roles), None


def compute_metrics(
    segments: Sequence[Segment],
    roles: Mapping[str, str],
    duration_seconds: float | None = None,
) -> MetricsResult:
    """All metrics of one conversation; `roles` (participant_id -> role) lists the participants.

    Participants without segments still get a row; segment authors missing from `roles`
    are added with role 'unknown'. Segments may come in any order.
    """
    if not isinstance(segments, list | tuple):
        segments = list(segments)  # iterated several times below
    role_of = {str(pid): _role(role) for pid, role in roles.items()}
    messages = dict.fromkeys(role_of, 0)
    words = dict.fromkeys(role_of, 0)
    questions = dict.fromkeys(role_of, 0)
    timed = bool(segments)
    all_written = bool(segments)
    for seg in segments:
        pid = seg.participant_id
        if pid not in role_of:
            role_of[pid] = "unknown"
            messages[pid] = words[pid] = questions[pid] = 0
        messages[pid] += 1
        words[pid] += word_count(seg.text)
        questions[pid] += question_count(seg.text)
        if seg.start is None or seg.end is None:
            timed = False
        if seg.sent_at is None:
            all_written = False
    participant_ids = list(role_of)

    # Time order for switches: speech start when timed, sent_at when every message has one,
    # else the order given (the model keeps utterances in time order).
    if timed:
        ordered = sorted(segments, key=_by_start)  # stable: ties keep input order
    elif all_written:
        ordered = sorted(segments, key=lambda s: _utc(s.sent_at))  # type: ignore[arg-type]
    else:
        ordered = list(segments)
    switches = sum(
        1
        for k in range(1, len(ordered))
        if ordered[k].participant_id != ordered[k - 1].participant_id
    )
    timeline = _timeline(ordered) if timed else None
    responses, elapsed = _responses(segments, timeline, role_of)
    if responses is None:
        responses = ResponseTimes()

    conversation = ConversationMetrics(
        timed=timed,
        participant_count=len(participant_ids),
        message_count=len(segments),
        word_count=sum(words.values()),
        question_count=sum(questions.values()),
        duration_s=None,
        speech_s=None,
        silence_s=None,
        long_silence_count=None,
        long_silence_s=None,
        overlap_s=None,
        interruptions=None,
        speaker_switches=switches,
        switches_per_minute=None,
        first_response_s=responses.first,
        median_response_s=median(responses.all),
        exchanges=switches,
        elapsed_s=elapsed,
    )
    participants = [
        ParticipantMetrics(
            participant_id=pid,
            role=role_of[pid],
            message_count=messages[pid],
            word_count=words[pid],
            question_count=questions[pid],
            talk_s=None,
            talk_share=None,
            talk_ratio=None,
            listen_s=None,
            words_per_minute=None,
            longest_monologue_s=None,
            median_latency_s=None,
            p90_latency_s=None,
            interruptions=None,
            interrupted=None,
            overlap_s=None,
            first_response_s=responses.first_by_participant.get(pid),
            median_response_s=median(responses.by_participant.get(pid, ())),
        )
        for pid in participant_ids
    ]
    pairs: list[PairMetrics] = []
    if timeline is not None:
        pairs = _fill_timed(timeline, duration_seconds, conversation, participants, participant_ids)
    return MetricsResult(conversation=conversation, participants=participants, pairs=pairs)


def _fill_timed(
    timeline: TimedTimeline,
    duration_seconds: float | None,
    conversation: ConversationMetrics,
    participants: list[ParticipantMetrics],
    participant_ids: list[str],
) -> list[PairMetrics]:
    """Fill the timed-only fields in place; returns the pair rows."""
    unions = speaker_unions(timeline)
    duration = max(duration_seconds or 0.0, max(timeline.ends))
    speech = union(chain.from_iterable(unions.values()))
    speech_s = total_length(speech)
    long_gaps = [hi - lo for lo, hi in gaps(speech, duration) if hi - lo > LONG_SILENCE_S]
    interruptions = interruption_counts(timeline, is_backchannel)
    lats = latencies(timeline)
    monologues = longest_monologues(timeline)

    conversation.duration_s = duration
    conversation.speech_s = speech_s
    conversation.silence_s = duration - speech_s
    conversation.long_silence_count = len(long_gaps)
    conversation.long_silence_s = sum(long_gaps)
    conversation.overlap_s = covered_by_at_least(unions.values(), 2)
    conversation.interruptions = sum(interruptions.values())
    conversation.switches_per_minute = (
        conversation.speaker_switches / (duration / 60.0) if duration > 0 else None
    )

    # Pair overlaps are symmetric: compute each unordered pair once.
    pair_overlap: dict[tuple[str, str], float] = {}
    for i, p in enumerate(participant_ids):
        for q in participant_ids[i + 1 :]:
            value = intersection_length(unions.get(p, ()), unions.get(q, ()))
            pair_overlap[(p, q)] = pair_overlap[(q, p)] = value
    pairs = [
        PairMetrics(p, q, pair_overlap[(p, q)], interruptions.get((p, q), 0))
        for p in participant_ids
        for q in participant_ids
        if p != q
    ]

    talk = {pid: total_length(unions.get(pid, ())) for pid in participant_ids}
    total_talk = sum(talk.values())
    speakers = [pid for pid in participant_ids if unions.get(pid)]
    for row in participants:
        pid = row.participant_id
        own = unions.get(pid, [])
        others = [q for q in speakers if q != pid]
        if len(others) == 1:
            # Two-party calls (the common case): "everyone else" is one union already.
            others_union = unions[others[0]]
            overlap = pair_overlap[(pid, others[0])]
        else:
            others_union = union(chain.from_iterable(unions[q] for q in others))
            overlap = intersection_length(own, others_union)
        talk_s = talk[pid]
        values = sorted(lats.get(pid, ()))
        row.talk_s = talk_s
        row.talk_share = talk_s / total_talk if total_talk > 0 else None
        row.talk_ratio = talk_s / duration if duration > 0 else None
        row.listen_s = total_length(others_union) - overlap
        row.words_per_minute = row.word_count / (talk_s / 60.0) if talk_s > 0 else None
        row.longest_monologue_s = monologues.get(pid, 0.0)
        row.median_latency_s = quantile(values, 0.5)
        row.p90_latency_s = quantile(values, 0.9)
        row.interruptions = sum(v for (a, _), v in interruptions.items() if a == pid)
        row.interrupted = sum(v for (_, b), v in interruptions.items() if b == pid)
        row.overlap_s = overlap
    return pairs


def metrics_for_conversation(conversation: Conversation) -> MetricsResult:
    """Metrics of a canonical `Conversation`.

    Internal notes are left out: the customer never sees them, so they are not part of the
    conversation's dynamics (an internal note must not count as the first response).
    """
    segments = [
        Segment(u.participant_id, u.text, u.start, u.end, u.sent_at)
        for u in conversation.utterances
        if not u.internal
    ]
    roles = {p.participant_id: p.role.value for p in conversation.participants}
    return compute_metrics(segments, roles, conversation.duration_seconds)
