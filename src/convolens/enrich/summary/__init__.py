"""Conversation summaries by conversation type (`component.SummaryComponent`), the optional
LLM backends (`llm`), and the pieces they are built from: extractive selection, topic
segmentation, structured fields and the overview line."""

from convolens.enrich.summary.component import ROLE_NAMES, SummaryComponent
from convolens.enrich.summary.extractive import lexrank
from convolens.enrich.summary.fields import DECISION_CUES
from convolens.enrich.summary.llm import (
    LlmBackend,
    LlmError,
    LlmUnavailableError,
    OpenAICompatibleBackend,
    scrub_contact_details,
)
from convolens.enrich.summary.settings import SummaryConfig

__all__ = [
    "DECISION_CUES",
    "ROLE_NAMES",
    "LlmBackend",
    "LlmError",
    "LlmUnavailableError",
    "OpenAICompatibleBackend",
    "SummaryComponent",
    "SummaryConfig",
    "lexrank",
    "scrub_contact_details",
]
