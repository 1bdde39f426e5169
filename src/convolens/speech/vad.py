"""Voice activity detection with the silero VAD model that faster-whisper bundles.

faster-whisper ships silero VAD v6 as an ONNX file inside its wheel, so no model download is
needed. The defaults bridge short pauses (min silence 500 ms, 200 ms padding): diarization
references keep a speaker's turn running through brief pauses, and splitting there costs
missed speech (see /work/shared/research/diarization.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convolens.speech.types import AudioArray, SpeechRegion

__all__ = ["SileroVad"]

_MODEL_RATE = 16000  # the bundled ONNX model runs on 16 kHz audio only


@dataclass(frozen=True, slots=True)
class SileroVad:
    """Speech regions of 16 kHz mono audio, in seconds (implements VoiceActivityDetector).

    threshold: speech probability above which a 32 ms frame counts as speech.
    min_silence_ms: pauses shorter than this stay inside one region.
    speech_pad_ms: each region is widened by this much on both sides (regions that then
        touch are merged, so the result is sorted and non-overlapping).
    min_speech_ms: regions shorter than this are dropped.
    """

    threshold: float = 0.5
    min_silence_ms: int = 500
    speech_pad_ms: int = 200
    min_speech_ms: int = 0

    def __call__(self, audio: AudioArray, sample_rate: int = 16000) -> list[SpeechRegion]:
        # Imported here so that importing convolens.speech does not load onnxruntime.
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        if sample_rate != _MODEL_RATE:
            raise ValueError(f"SileroVad needs 16 kHz audio, got {sample_rate} Hz")
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            return []
        options = VadOptions(
            threshold=self.threshold,
            min_silence_duration_ms=self.min_silence_ms,
            speech_pad_ms=self.speech_pad_ms,
            min_speech_duration_ms=self.min_speech_ms,
        )
        stamps = get_speech_timestamps(samples, options, sampling_rate=sample_rate)
        duration = samples.size / sample_rate
        regions: list[SpeechRegion] = []
        for stamp in stamps:
            start = max(0.0, stamp["start"] / sample_rate)
            end = min(duration, stamp["end"] / sample_rate)
            if end <= start:
                continue
            # Padding can make neighbours touch; keep the output non-overlapping.
            if regions and start <= regions[-1].end:
                regions[-1] = SpeechRegion(regions[-1].start, max(regions[-1].end, end))
            else:
                regions.append(SpeechRegion(start, end))
        return regions
