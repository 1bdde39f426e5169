"""Engine settings and the models every session shares, loaded once per process.

A server creates one `RealtimeModels` at start-up (`shared_models()` keeps one per config)
and hands it to each `StreamSession`: the Whisper model, the VAD, the sentence embedder,
spaCy and the enrichment components are then loaded once, not per connection. Both the
CTranslate2 model and ONNX Runtime sessions serve concurrent calls from several threads.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from convolens.enrich.nlp import MODEL_LOADING
from convolens.realtime.alerts import AlertConfig
from convolens.realtime.insights import InsightModels
from convolens.realtime.stream_asr import RATE, EndpointSettings
from convolens.realtime.utterance_asr import UtteranceAsr

if TYPE_CHECKING:
    from convolens.ingest.redact_intake import IntakeRedactor

__all__ = ["RealtimeConfig", "RealtimeModels", "shared_models"]


class RealtimeConfig(BaseModel):
    """Server-side settings of the engine (a client's `start` cannot change them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asr_model: str = Field(default="tiny.en", description="'tiny.en', 'base' or a folder")
    compute_type: str = "int8"
    cpu_threads: int | None = Field(default=None, ge=1, description="None: all cores")
    asr_context: Literal["short", "full"] = "short"
    vad_threshold: float = Field(default=0.5, gt=0, lt=1)
    endpoint_silence_ms: int = Field(default=500, ge=100, le=5000)
    prefinal_silence_ms: int = Field(default=250, ge=0, description="0: no speculative decode")
    speech_pad_ms: int = Field(default=200, ge=0, le=1000)
    max_utterance_s: float = Field(default=15.0, ge=2, le=28)
    min_speech_ms: int = Field(default=200, ge=0)
    interim_every_s: float = Field(default=1.0, ge=0, description="0: no interim transcripts")
    refine_timings: bool = True
    # Separate the voices of mono streams with CAM++ as they go (realtime/live_diarize.py);
    # a session's `start` may turn it on or off. Off here, on in the server's settings.
    diarize: bool = False
    topics_every: int = Field(default=3, ge=1, description="utterances between topic updates")
    topics_window: int = Field(default=200, ge=1, description="latest utterances topics read")
    alerts: AlertConfig = Field(default_factory=AlertConfig)

    @model_validator(mode="after")
    def _check(self) -> RealtimeConfig:
        # The speculative decode reads the padded audio, so it must already be there.
        if self.prefinal_silence_ms and not (
            self.speech_pad_ms <= self.prefinal_silence_ms < self.endpoint_silence_ms
        ):
            raise ValueError("need speech_pad_ms <= prefinal_silence_ms < endpoint_silence_ms")
        if self.speech_pad_ms >= self.endpoint_silence_ms:
            raise ValueError("speech_pad_ms must be below endpoint_silence_ms")
        return self

    def endpointing(self) -> EndpointSettings:
        return EndpointSettings(
            threshold=self.vad_threshold,
            endpoint_silence_ms=self.endpoint_silence_ms,
            prefinal_silence_ms=self.prefinal_silence_ms,
            speech_pad_ms=self.speech_pad_ms,
            max_utterance_s=self.max_utterance_s,
            min_speech_ms=self.min_speech_ms,
            interim_every_s=self.interim_every_s,
        )


class RealtimeModels:
    """ASR and insight models, loaded on first use, or all at once by `load()`."""

    def __init__(self, config: RealtimeConfig | None = None) -> None:
        self.config = config or RealtimeConfig()
        # Shared with every other model load in the process (enrich/nlp.py says why).
        self._lock = MODEL_LOADING
        self._asr: UtteranceAsr | None = None
        self._insights: InsightModels | None = None
        self._speaker_embedder: Any = None
        # Live text is redacted before any event carries it (the `[components.pii]`
        # policy a server sets here; None with `redact` off: the component is disabled).
        self.pii: dict[str, Any] | None = None
        self.redact = True

    @property
    def redactor(self) -> IntakeRedactor | None:
        if not self.redact:
            return None
        from convolens.ingest.redact_intake import intake_redactor

        with self._lock:
            return intake_redactor(self.pii)

    @property
    def asr(self) -> UtteranceAsr:
        with self._lock:
            if self._asr is None:
                c = self.config
                backend = _whisper(c.asr_model, c.compute_type, c.cpu_threads)
                self._asr = UtteranceAsr(
                    backend, context=c.asr_context, refine_timings=c.refine_timings
                )
            return self._asr

    @property
    def speaker_embedder(self) -> Any:
        """CAM++, the batch diarizer's embedder (loaded once, shared by every session)."""
        with self._lock:
            if self._speaker_embedder is None:
                from convolens.speech.campplus import CamPlusEmbedder

                self._speaker_embedder = _OneAtATime(CamPlusEmbedder())
            return self._speaker_embedder

    @property
    def insights(self) -> InsightModels:
        with self._lock:
            if self._insights is None:
                self._insights = _insight_models()
            return self._insights

    def load(self, *, asr: bool = True) -> RealtimeModels:
        """Load everything now and run each model once, so no session pays first-use costs
        (the first CTranslate2 decode and spaCy parse are several times slower)."""
        from convolens.enrich.base import Doc
        from convolens.model import Conversation

        insights = self.insights
        warm = Conversation.model_validate(
            {
                "channel": "chat",
                "source": {"system": "warm-up"},
                "started_at": "2026-01-05T10:00:00Z",
                "participants": [{"participant_id": "a", "role": "agent"}],
                "utterances": [
                    {"participant_id": "a", "text": "I'll send you the invoice by Friday."}
                ],
            }
        )
        doc = Doc("warm-up", 1, warm, ["warm-up:0"])
        for component in (insights.sentiment, insights.trackers, insights.dialogue):
            component([doc])
        insights.topics([doc])
        if self.redactor is not None:
            self.redactor.redact_text("Thanks, Dana.", [])
        if asr:
            noise = np.random.default_rng(0).normal(0, 0.01, RATE).astype(np.float32)
            self.asr(noise)
            if self.config.diarize:
                self.speaker_embedder(noise, [(0.0, 1.0)], RATE)
        return self


class _OneAtATime:
    """A speaker embedder that sessions share, called by one thread at a time: senko's
    filterbank front end is one C object, not made for concurrent calls."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.dim = embedder.dim
        # Shared with every other model load in the process (enrich/nlp.py says why).
        self._lock = MODEL_LOADING

    def __call__(self, audio: Any, windows: list[tuple[float, float]], sample_rate: int) -> Any:
        with self._lock:
            return self.embedder(audio, windows, sample_rate)


_SHARED: dict[str, RealtimeModels] = {}
_SHARED_LOCK = threading.Lock()


# Configs that differ only in endpointing or alerts share the loaded models.
@functools.lru_cache(maxsize=4)
def _whisper(model: str, compute_type: str, cpu_threads: int | None) -> Any:
    from convolens.speech.asr import FasterWhisperAsr

    return FasterWhisperAsr(model, compute_type=compute_type, cpu_threads=cpu_threads)


@functools.lru_cache(maxsize=1)
def _insight_models() -> InsightModels:
    return InsightModels()


def shared_models(config: RealtimeConfig | None = None) -> RealtimeModels:
    """The process-wide `RealtimeModels` for a config (created, not loaded, on first use)."""
    config = config or RealtimeConfig()
    key = config.model_dump_json()
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = RealtimeModels(config)
        return _SHARED[key]
