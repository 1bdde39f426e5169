"""Conversation dynamics metrics: talk, silence, overlap, interruptions, response times."""

from convolens.metrics.compute import LONG_SILENCE_S, compute_metrics, metrics_for_conversation
from convolens.metrics.results import (
    METRICS_VERSION,
    ConversationMetrics,
    MetricsResult,
    PairMetrics,
    ParticipantMetrics,
    Segment,
)
from convolens.metrics.text import is_backchannel, question_count, word_count
from convolens.metrics.timed import MONOLOGUE_BREAK_S

__all__ = [
    "LONG_SILENCE_S",
    "METRICS_VERSION",
    "MONOLOGUE_BREAK_S",
    "ConversationMetrics",
    "MetricsResult",
    "PairMetrics",
    "ParticipantMetrics",
    "Segment",
    "compute_metrics",
    "is_backchannel",
    "metrics_for_conversation",
    "question_count",
    "word_count",
]
