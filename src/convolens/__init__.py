"""convolens: self-hosted conversation intelligence."""

from convolens.model import (
    BusinessLinks,
    Channel,
    Conversation,
    Participant,
    Role,
    SourceInfo,
    Utterance,
    Word,
)

__version__ = "0.1.0"

__all__ = [
    "BusinessLinks",
    "Channel",
    "Conversation",
    "Participant",
    "Role",
    "SourceInfo",
    "Utterance",
    "Word",
    "__version__",
]
