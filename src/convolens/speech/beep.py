"""Editing decoded audio: the 1 kHz tone (or silence) over given spans, and lossless
FLAC out (PyAV, already the speech extra's decoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from convolens.store.private import private_file

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BEEP_AMPLITUDE", "BEEP_HZ", "RAMP_S", "Mode", "redact_samples", "tone", "write_flac"]

BEEP_HZ = 1000.0
BEEP_AMPLITUDE = 0.2  # -14 dBFS: clearly a beep, not painful
RAMP_S = 0.005  # the tone fades in and out over 5 ms: no click at its edges

Mode = Literal["beep", "silence"]


class _Span(Protocol):
    start: float
    end: float


def tone(n: int, sample_rate: int) -> np.ndarray:
    """`n` samples of the beep, faded in and out."""
    import numpy as np

    t = np.arange(n, dtype=np.float64) / sample_rate
    wave = BEEP_AMPLITUDE * np.sin(2 * np.pi * BEEP_HZ * t)
    ramp = min(n // 2, int(RAMP_S * sample_rate))
    if ramp:
        fade = np.linspace(0.0, 1.0, ramp, endpoint=False)
        wave[:ramp] *= fade
        wave[n - ramp :] *= fade[::-1]
    return wave.astype(np.float32)


def redact_samples(
    channels: list[np.ndarray],
    spans: Sequence[_Span],
    sample_rate: int = 16000,
    mode: Mode = "beep",
) -> None:
    """Replace each span in every channel (in place) by the 1 kHz tone or by silence."""
    for span in spans:
        for samples in channels:
            a = max(0, int(span.start * sample_rate))
            b = min(len(samples), round(span.end * sample_rate))
            if b <= a:
                continue
            samples[a:b] = tone(b - a, sample_rate) if mode == "beep" else 0.0


# FLAC takes up to 8 channels; FFmpeg names their layouts.
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def write_flac(path: Path, channels: list[np.ndarray], sample_rate: int) -> None:
    import av
    import numpy as np

    if len(channels) > len(_LAYOUTS):  # past FLAC's limit: one channel, mixed down
        channels = [np.mean(np.stack(channels), axis=0)]
    pcm = np.stack([np.clip(np.round(c * 32768.0), -32768, 32767) for c in channels])
    pcm = pcm.astype("<i2")
    layout = _LAYOUTS[len(channels)]
    with private_file(path) as out:
        container = av.open(out, "w", format="flac")
        try:
            stream: Any = container.add_stream("flac", rate=sample_rate, layout=layout)
            step = 1 << 16  # frames of 4 s: memory stays flat on long recordings
            for at in range(0, pcm.shape[1], step):
                block = np.ascontiguousarray(pcm[:, at : at + step].T).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(block, format="s16", layout=layout)
                frame.sample_rate = sample_rate
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        finally:
            container.close()
