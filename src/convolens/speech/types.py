"""Plain records and the small backend interfaces of the speech pipeline.

Backends (ASR, VAD, speaker embedder, diarizer) are protocols so that a user with another
engine (pyannote, NeMo, a cloud ASR) can pass their own object in; the defaults use the
models that registry packages ship (see speech/models.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "AsrBackend",
    "AsrResult",
    "AsrSegment",
    "AsrWord",
    "AudioArray",
    "Diarizer",
    "SpeakerEmbedder",
    "SpeakerTurn",
    "SpeechRegion",
    "VoiceActivityDetector",
]

# 16 kHz float32 mono samples in [-1, 1].
AudioArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SpeechRegion:
    start: float  # seconds
    end: float


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    start: float  # seconds
    end: float
    speaker: str  # a diarizer's label, e.g. "S0"


@dataclass(frozen=True, slots=True)
class AsrWord:
    text: str
    start: float
    end: float
    probability: float | None = None
    # Whisper marks word boundaries with a leading space; a token without one ("-fatten"
    # in "flour-fatten") continues the previous word and is joined without a space.
    joins_previous: bool = False


@dataclass(slots=True)
class AsrSegment:
    text: str
    start: float
    end: float
    words: list[AsrWord] = field(default_factory=list)


@dataclass(slots=True)
class AsrResult:
    segments: list[AsrSegment]
    language: str | None
    language_probability: float | None
    duration: float  # seconds of audio given to the recogniser
    model_id: str


@runtime_checkable
class AsrBackend(Protocol):
    model_id: str

    def transcribe(self, audio: AudioArray, *, language: str | None = None) -> AsrResult:
        """Transcribe 16 kHz mono audio, with word timings."""
        ...


@runtime_checkable
class VoiceActivityDetector(Protocol):
    def __call__(self, audio: AudioArray, sample_rate: int = 16000) -> list[SpeechRegion]:
        """Regions of speech, in seconds, sorted and non-overlapping."""
        ...


@runtime_checkable
class SpeakerEmbedder(Protocol):
    def __call__(
        self, audio: AudioArray, windows: list[tuple[float, float]], sample_rate: int = 16000
    ) -> npt.NDArray[np.float32]:
        """One L2-normalised embedding row per (start, end) window, in seconds."""
        ...


@runtime_checkable
class Diarizer(Protocol):
    def __call__(
        self, audio: AudioArray, sample_rate: int = 16000, num_speakers: int | None = None
    ) -> list[SpeakerTurn]:
        """Who spoke when: sorted turns with speaker labels."""
        ...
