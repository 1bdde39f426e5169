"""Speech recognition with faster-whisper (CTranslate2): word timings on, VAD filter on.

`FasterWhisperAsr` loads its model once in `__init__` and transcribes many arrays; with
`batch_size` set it uses faster-whisper's batched pipeline (VAD chunks decoded together),
which is what makes long files and many files fast on a few cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from convolens.engine.priority import LIVE
from convolens.speech.models import DEFAULT_MODEL, resolve_whisper_model
from convolens.speech.types import AsrResult, AsrSegment, AsrWord, AudioArray

__all__ = ["FasterWhisperAsr"]


class FasterWhisperAsr:
    """The default ASR backend (implements `AsrBackend`)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int | None = None,
        beam_size: int = 1,
        vad_filter: bool = True,
        batch_size: int | None = None,
        language: str | None = None,
        hotwords: str | None = None,
        initial_prompt: str | None = None,
    ) -> None:
        try:
            from faster_whisper import BatchedInferencePipeline, WhisperModel
        except ImportError:
            raise ImportError(
                "transcription needs faster-whisper: pip install 'convolens[speech]'"
            ) from None
        path, self.model_id = resolve_whisper_model(model)
        self.model = WhisperModel(
            str(path),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads or os.cpu_count() or 1,
        )
        self.batched = BatchedInferencePipeline(self.model) if batch_size else None
        self.batch_size = batch_size
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.language = language
        self.hotwords = hotwords
        self.initial_prompt = initial_prompt

    def transcribe(
        self,
        audio: AudioArray,
        *,
        language: str | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> AsrResult:
        """Transcribe 16 kHz mono audio; `on_progress(seconds_done)` after each segment."""
        options: dict[str, Any] = {
            "language": language or self.language,
            "beam_size": self.beam_size,
            "word_timestamps": True,
            "vad_filter": self.vad_filter,
            "hotwords": self.hotwords,
            "initial_prompt": self.initial_prompt,
        }
        if self.batched is not None:
            segments, info = self.batched.transcribe(audio, batch_size=self.batch_size, **options)
        else:
            segments, info = self.model.transcribe(audio, **options)
        result: list[AsrSegment] = []
        pending = iter(segments)  # each next() decodes one more 30 s window
        while True:
            # A server's live streams go first: wait while one has audio pending
            # (bounded, so the job still moves; engine/priority.py).
            LIVE.yield_to_live()
            segment = next(pending, None)
            if segment is None:
                break
            words = [
                AsrWord(
                    w.word.strip(),
                    float(w.start),
                    float(w.end),
                    float(w.probability),
                    joins_previous=index > 0 and not w.word[:1].isspace(),
                )
                for index, w in enumerate(segment.words or ())
                if w.word.strip()
            ]
            result.append(
                AsrSegment(segment.text.strip(), float(segment.start), float(segment.end), words)
            )
            if on_progress is not None:
                on_progress(float(segment.end))
        return AsrResult(
            segments=result,
            language=info.language,
            language_probability=float(info.language_probability),
            duration=float(info.duration),
            model_id=self.model_id,
        )
