"""Speaker embeddings of audio windows with resemblyzer's GE2E voice encoder.

resemblyzer ships its weights in the wheel (no hub download). Its usual preprocessing,
``preprocess_wav``, also trims long silences, which would shift every window's timing; we
keep only the part that matters for embeddings, the volume normalisation (measured 4 points
of DER worse without it), and apply it to each window.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from convolens.speech.types import AudioArray

__all__ = ["MIN_WINDOW_S", "ResemblyzerEmbedder"]

_RATE = 16000  # resemblyzer's mel front end assumes 16 kHz
_TARGET_DBFS = -30  # resemblyzer's audio_norm_target_dBFS
# Windows shorter than this carry too little voice for a usable embedding (one resemblyzer
# partial is 1.6 s); they are widened symmetrically around their centre to this length,
# clipped to the signal, rather than dropped, so that every window still gets a row.
MIN_WINDOW_S = 0.5
_BATCH = 256  # partials per forward pass: bounds memory on long recordings


def _ensure_numba_cache() -> None:
    # librosa (through resemblyzer) JIT-compiles with numba; without a writable cache the
    # first call recompiles for ~19 s in every process. numba reads the variable when it is
    # first imported, so this must run before resemblyzer/librosa are.
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    for cache in (
        Path.home() / ".cache" / "convolens" / "numba",
        Path(tempfile.gettempdir()) / "convolens-numba",
    ):
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        os.environ["NUMBA_CACHE_DIR"] = str(cache)
        return


class ResemblyzerEmbedder:
    """L2-normalised 256-d resemblyzer embeddings, one per window (implements SpeakerEmbedder).

    The model is loaded once, here; calls are then cheap (~3 ms per 1.5 s window on
    2 CPU cores, windows batched).
    """

    def __init__(self, device: str = "cpu") -> None:
        _ensure_numba_cache()
        with warnings.catch_warnings():
            # resemblyzer imports webrtcvad, which imports the deprecated pkg_resources, and
            # a deprecated scipy.ndimage namespace: noise for our users, not actionable.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            from resemblyzer import VoiceEncoder
            from resemblyzer.audio import normalize_volume, wav_to_mel_spectrogram

        self._normalize_volume = normalize_volume
        self._wav_to_mel = wav_to_mel_spectrogram
        self._encoder: Any = VoiceEncoder(device, verbose=False)
        self.dim = 256

    def __call__(
        self, audio: AudioArray, windows: list[tuple[float, float]], sample_rate: int = 16000
    ) -> npt.NDArray[np.float32]:
        if sample_rate != _RATE:
            raise ValueError(f"ResemblyzerEmbedder needs 16 kHz audio, got {sample_rate} Hz")
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        out = np.zeros((len(windows), self.dim), dtype=np.float32)
        partials: list[npt.NDArray[np.float32]] = []  # mel slices of all windows, in order
        owners: list[int] = []  # window row of each partial
        for row, (start, end) in enumerate(windows):
            chunk = self._window(samples, start, end)
            if chunk is None:
                continue  # digital silence: leave a zero row (there is no voice to embed)
            for mel in self._partials(chunk):
                partials.append(mel)
                owners.append(row)
        if not partials:
            return out
        # The same computation as VoiceEncoder.embed_utterance, but all windows' partials go
        # through the LSTM in a few batches instead of one call per window (~10x faster).
        raw = np.concatenate(
            [
                self._forward(np.stack(partials[i : i + _BATCH]))
                for i in range(0, len(partials), _BATCH)
            ]
        )
        sums = np.zeros_like(out)
        np.add.at(sums, np.asarray(owners), raw)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        filled = norms[:, 0] > 0
        out[filled] = sums[filled] / norms[filled]
        return out

    def _window(
        self, samples: npt.NDArray[np.float32], start: float, end: float
    ) -> npt.NDArray[np.float32] | None:
        """The window's samples, widened to MIN_WINDOW_S and volume-normalised."""
        min_len = int(MIN_WINDOW_S * _RATE)
        lo = max(0, round(start * _RATE))
        hi = min(samples.size, round(end * _RATE))
        if hi - lo < min_len:
            centre = (lo + hi) // 2
            lo = max(0, min(centre - min_len // 2, samples.size - min_len))
            hi = min(samples.size, lo + min_len)
        chunk = samples[lo:hi]
        if chunk.size == 0 or not np.any(chunk):
            return None  # normalize_volume would take log(0)
        normalised = self._normalize_volume(chunk, _TARGET_DBFS, increase_only=True)
        return np.asarray(normalised, dtype=np.float32)

    def _partials(self, wav: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        # As embed_utterance: 1.6 s partials at resemblyzer's default rate and coverage,
        # zero-padding the tail so the last partial is complete.
        wav_slices, mel_slices = self._encoder.compute_partial_slices(wav.size, 1.3, 0.75)
        if wav_slices[-1].stop >= wav.size:
            wav = np.pad(wav, (0, wav_slices[-1].stop - wav.size))
        mel = self._wav_to_mel(wav)
        return [np.asarray(mel[s], dtype=np.float32) for s in mel_slices]

    def _forward(self, mels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        import torch

        with torch.no_grad():
            batch = torch.from_numpy(mels).to(self._encoder.device)
            return np.asarray(self._encoder(batch).cpu().numpy(), dtype=np.float32)
