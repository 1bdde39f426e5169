"""One decode per endpointed utterance, fast enough for live calls on a few CPU cores.

faster-whisper on one utterance (<= 15 s, so one 30 s window): greedy, no temperature
fallback, no timestamp tokens (word timings come from the cross-attention alignment), no
conditioning on earlier text. By default the encoder reads a short context (the
utterance + 2 s, at least 10 s) instead of 30 s of mostly padding: the encoder is most of
Whisper's cost and scales with its input. Measured with tiny.en on 23 real and synthetic
test utterances (90 s; tests/data/audio, jfk, LibriSpeech, stereo_diarization) on this
2-core machine while shared: WER 2.6 % against 2.2 % with the full context, decode p50
160-300 ms against 570-810 ms. Two guards keep short contexts safe: output that repeats
itself (gzip compression ratio > 2.4) is decoded again with the full context, and the
sign-off Whisper invents when it runs out of speech ("Thank you.", "Okay.") is dropped
from the end when its first word's probability is low (see `_TAIL_PHRASES`). Words are
then tightened to a tight VAD as the batch pipeline does (`refine_word_timings`).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from convolens.speech.types import AsrWord, AudioArray

__all__ = ["Recognised", "UtteranceAsr"]

RATE = 16000
_REPEAT_RATIO = 2.4  # gzip compression ratio above which Whisper output is a loop
# What Whisper says when it runs out of speech (learnt from video subtitles). At the end of
# an utterance, with a first word it gives under `_TAIL_MAX_P`, such a phrase is not speech:
# on the 23 test utterances of the docstring, the three such tails had p <= 0.19 and no
# other word was dropped.
_TAIL_PHRASES = frozenset(
    {
        *("thank you", "thanks", "thank you very much", "thanks for watching", "okay", "ok"),
        *("bye", "you", "so", "oh", "um", "uh", "yeah", "hmm"),
    }
)
_TAIL_MAX_P = 0.35


@dataclass
class Recognised:
    """One utterance's words (seconds from the start of the audio given) and how it went."""

    words: list[AsrWord]
    text: str
    language: str | None
    elapsed_s: float
    full_context: bool  # decoded with the full 30 s context (by choice or after a loop)


def _install_short_context(model: Any) -> threading.local:
    """Let `model.encode` read only the first `local.frames` mel frames, per thread.

    faster-whisper always pads features to 3,000 frames (30 s); CTranslate2's encoder
    accepts fewer. The limit is thread-local because one model serves every session.
    """
    existing = getattr(model, "_convolens_context", None)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    local = threading.local()
    original = model.encode

    def encode(features: np.ndarray) -> Any:
        frames = getattr(local, "frames", None)
        if frames is not None and features.shape[-1] > frames:
            features = features[..., :frames]
        return original(features)

    model.encode = encode
    model._convolens_context = local
    return local


class UtteranceAsr:
    """Transcribes one endpointed utterance with a loaded `FasterWhisperAsr`."""

    def __init__(
        self,
        asr: Any,
        *,
        context: Literal["short", "full"] = "short",
        context_margin_s: float = 2.0,
        min_context_s: float = 10.0,
        refine_timings: bool = True,
    ) -> None:
        self.asr = asr
        self.model_id: str = asr.model_id
        self.context = context
        self.margin = context_margin_s
        self.min_context = min_context_s
        self.refine_timings = refine_timings
        self.multilingual = bool(asr.model.model.is_multilingual)
        self._local = _install_short_context(asr.model)
        self._vad: Any = None

    def __call__(
        self, audio: AudioArray, *, language: str | None = None, speech_end_s: float | None = None
    ) -> Recognised:
        started = time.perf_counter()
        duration = audio.size / RATE
        frames = None
        if self.context == "short":
            # Mel frames are 10 ms and the encoder halves them: keep the count even.
            wanted = 2 * math.ceil(max(duration + self.margin, self.min_context) * 50)
            frames = wanted if wanted < 3000 else None
        segments, info = self._decode(audio, language, frames, duration)
        full = frames is None
        if not full and any(s.compression_ratio > _REPEAT_RATIO for s in segments):
            segments, info = self._decode(audio, language, None, duration)
            full = True
        words = [
            AsrWord(
                w.word.strip(),
                float(w.start),
                float(w.end),
                float(w.probability),
                joins_previous=index > 0 and not w.word[:1].isspace(),
            )
            for s in segments
            for index, w in enumerate(s.words or ())
            if w.word.strip()
        ]
        words = self._clean(words, audio, duration, speech_end_s)
        from convolens.speech.transcribe import join_words

        return Recognised(
            words, join_words(words), info.language, time.perf_counter() - started, full
        )

    def _decode(
        self, audio: AudioArray, language: str | None, frames: int | None, duration: float
    ) -> tuple[list[Any], Any]:
        self._local.frames = frames
        try:
            segments, info = self.asr.model.transcribe(
                audio,
                language=language or self.asr.language,
                beam_size=self.asr.beam_size,
                word_timestamps=True,
                vad_filter=False,
                without_timestamps=True,
                temperature=0.0,
                condition_on_previous_text=False,
                # ~4 tokens a second is fast speech; far more is a loop, cut short.
                max_new_tokens=int(12 * duration) + 12,
                hotwords=self.asr.hotwords,
                initial_prompt=self.asr.initial_prompt,
            )
            return list(segments), info
        finally:
            self._local.frames = None

    def _clean(
        self, words: list[AsrWord], audio: AudioArray, duration: float, speech_end: float | None
    ) -> list[AsrWord]:
        """Drop words past the audio or begun after the voice stopped (Whisper's trailing
        "Thank you."), repeated spans and unvoiced trailing fragments, then tighten
        timings to a tight VAD."""
        limit = duration if speech_end is None else min(duration, speech_end + 0.1)
        kept = _strip_tail([w for w in words if w.start < limit])
        kept = [
            AsrWord(w.text, w.start, min(w.end, duration), w.probability, w.joins_previous)
            for w in kept
        ]
        if not kept:
            return kept
        from convolens.speech.guards import guard_words
        from convolens.speech.transcribe import refine_word_timings
        from convolens.speech.vad import SileroVad

        if self._vad is None:
            # The batch pipeline's boundary settings: where speech starts and stops.
            self._vad = SileroVad(min_silence_ms=150, speech_pad_ms=30)
        regions = self._vad(audio, RATE)
        # Repeated spans and a made-up fragment at the end ("... on the left. Thank").
        kept = guard_words(kept, regions)
        if not self.refine_timings:
            return kept
        return refine_word_timings(kept, regions)


def _strip_tail(words: list[AsrWord]) -> list[AsrWord]:
    """Without a trailing sign-off phrase that Whisper made up (see `_TAIL_PHRASES`)."""
    for size in (4, 3, 2, 1):
        if len(words) <= size:
            continue  # an utterance that is only "Thank you." is kept: someone said it
        tail = words[-size:]
        phrase = " ".join(
            "".join(c for c in w.text.lower() if c.isalpha() or c == " ") for w in tail
        ).strip()
        if phrase in _TAIL_PHRASES and (tail[0].probability or 0.0) < _TAIL_MAX_P:
            return words[:-size]
    return words
