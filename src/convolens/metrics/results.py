"""Input and result records of the metrics engine (plain dataclasses, cheap to build)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "METRICS_VERSION",
    "ConversationMetrics",
    "MetricsResult",
    "PairMetrics",
    "ParticipantMetrics",
    "Segment",
]

# Stored next to every metrics row; bump when a definition in docs/metrics.md changes so
# the warehouse knows which rows to recompute.
METRICS_VERSION: int = 1


@dataclass(frozen=True, slots=True)
class Segment:
    """One utterance as the metrics see it: who, what, and when."""

    participant_id: str
    text: str
    start: float | None = None  # seconds from conversation start
    end: float | None = None
    sent_at: datetime | None = None  # tz-aware UTC (naive values are read as UTC)


@dataclass(slots=True)
class ParticipantMetrics:
    """Per-participant metrics; timed-only fields are None when the conversation is untimed."""

    participant_id: str
    role: str  # 'agent' | 'customer' | 'bot' | 'unknown'
    message_count: int
    word_count: int
    question_count: int
    talk_s: float | None
    talk_share: float | None
    talk_ratio: float | None
    listen_s: float | None
    words_per_minute: float | None
    longest_monologue_s: float | None
    median_latency_s: float | None
    p90_latency_s: float | None
    interruptions: int | None  # interruptions this participant made
    interrupted: int | None  # times this participant was interrupted
    overlap_s: float | None  # time this participant overlaps anyone else
    first_response_s: float | None
    median_response_s: float | None


@dataclass(slots=True)
class PairMetrics:
    """Overlap and interruptions between two participants (one row per ordered pair)."""

    participant_id: str
    other_participant_id: str
    overlap_s: float
    interruptions: int  # times participant_id interrupted other_participant_id


@dataclass(slots=True)
class ConversationMetrics:
    """Whole-conversation metrics; see docs/metrics.md for every formula."""

    timed: bool
    participant_count: int
    message_count: int
    word_count: int
    question_count: int
    duration_s: float | None
    speech_s: float | None
    silence_s: float | None
    long_silence_count: int | None
    long_silence_s: float | None
    overlap_s: float | None
    interruptions: int | None
    speaker_switches: int
    switches_per_minute: float | None
    first_response_s: float | None
    median_response_s: float | None
    exchanges: int
    elapsed_s: float | None


@dataclass(slots=True)
class MetricsResult:
    conversation: ConversationMetrics
    participants: list[ParticipantMetrics]
    pairs: list[PairMetrics]
