"""Wire models of the enrolled-voice routes (`/v1/speakers`), kept apart from the server
code that fills them so the SDK needs only httpx and pydantic. A voice print itself is
biometric data and never crosses the wire: these models have no field for it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["EnrolledSpeaker", "SpeakerEnrolled", "SpeakerRole"]

# The participant roles (convolens.model.Role) a name can bring to the speakers it names.
SpeakerRole = Literal["agent", "customer", "bot", "unknown"]


class EnrolledSpeaker(BaseModel):
    """An enrolled voice: who, the role that comes with the name, and what the print rests on."""

    name: str
    role: SpeakerRole
    samples: int = Field(
        description="voice prints kept under this name: one (re-enrolling replaces it)"
    )
    speech_seconds: float = Field(description="seconds of speech the print was made from")
    model: str = Field(description="the embedding model the print was made with")
    enrolled_at: datetime


class SpeakerEnrolled(EnrolledSpeaker):
    """The answer to an enrolment."""

    replaced: bool = Field(description="true when the name was enrolled before (re-enrolment)")
