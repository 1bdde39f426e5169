"""Phone-line copies of evaluation audio, for WER and DER under telephony conditions.

    .venv/bin/python eval/telephony.py FILE ... [--out .cache/telephony] [--condition telephony]

A telephone call reaches a contact centre band-limited to the 300-3400 Hz voice channel,
sampled at 8 kHz and G.711 mu-law encoded (1 byte a sample); recordings keep that format,
stereo with the agent on the left and the customer on the right, or a mono mix. Conditions:

- clean: the file as it is;
- telephony: 4th-order Butterworth band-pass 300-3400 Hz (causal, as a line is),
  resampled to 8 kHz (scipy's polyphase filter), written as an 8 kHz G.711 mu-law WAV by
  ffmpeg's pcm_mulaw encoder (PyAV, the library convolens decodes with); every channel
  kept, so a stereo call stays stereo;
- telephony_noise: white noise at 10 dB SNR (against the active-speech power) added before
  the line, then as telephony (a noisy handset);
- telephony_mp3: the line's 8 kHz signal archived as MP3 at 32 kbit/s (LAME) instead of mu-law.

The pipeline decodes the written file as it decodes any upload (speech/decode.py: back to
16 kHz float), so what is measured is the whole path a phone recording takes. The same
input gives the same file (the noise is seeded from the file name).
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.signal import butter, resample_poly, sosfilt

from convolens.speech.decode import SAMPLE_RATE, decode_audio

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "telephony"
LINE_RATE = 8000
BAND_HZ = (300.0, 3400.0)
NOISE_SNR_DB = 10.0
MP3_BIT_RATE = 32000
CONDITIONS = ("clean", "telephony", "telephony_noise", "telephony_mp3")
DESCRIPTIONS = {
    "clean": "as recorded",
    "telephony": "300-3400 Hz, 8 kHz, G.711 mu-law",
    "telephony_noise": f"white noise at {NOISE_SNR_DB:g} dB SNR, then the telephony line",
    "telephony_mp3": f"300-3400 Hz, 8 kHz, MP3 {MP3_BIT_RATE // 1000} kbit/s",
}


def band_limit(samples: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The voice channel: 300-3400 Hz, as a causal filter (a line has no look-ahead)."""
    sos = butter(4, BAND_HZ, btype="bandpass", fs=rate, output="sos")
    return np.asarray(sosfilt(sos, samples), dtype=np.float32)


def active_power(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Mean power of the 20 ms frames within 40 dB of the loudest: the speech, not the
    pauses, so a call with long silences gets the same noise as a dense one."""
    frame = rate // 50
    n = samples.size // frame
    if n == 0:
        return float(np.mean(samples.astype(np.float64) ** 2)) if samples.size else 0.0
    power = np.mean(samples[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    active = power[power >= power.max() * 1e-4]
    return float(active.mean())


def add_noise(samples: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """White Gaussian noise `snr_db` below the active-speech power."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(active_power(samples) / 10 ** (snr_db / 10))
    return (samples + rng.normal(0.0, scale, samples.size)).astype(np.float32)


def line_signal(samples: np.ndarray) -> np.ndarray:
    """16 kHz float -> the band-limited 8 kHz signal a phone line carries, in [-1, 1]."""
    narrow = resample_poly(band_limit(samples), LINE_RATE, SAMPLE_RATE)
    return np.clip(narrow, -1.0, 1.0).astype(np.float32)


def write_line_audio(channels: Sequence[np.ndarray], path: Path, codec: str) -> Path:
    """Encode 8 kHz channels with ffmpeg: 'pcm_mulaw' (WAV, G.711) or 'libmp3lame' (MP3)."""
    import av

    if codec not in ("pcm_mulaw", "libmp3lame"):
        raise ValueError(f"unsupported line codec {codec!r}")
    layout = "mono" if len(channels) == 1 else "stereo"
    if len(channels) > 2:
        raise ValueError(f"{path.name}: {len(channels)} channels; a call has one or two")
    length = min(c.size for c in channels)
    pcm = np.stack([np.round(c[:length] * 32767) for c in channels]).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="wav" if codec == "pcm_mulaw" else "mp3") as out:
        options = {"bit_rate": MP3_BIT_RATE} if codec == "libmp3lame" else {}
        stream = out.add_stream(codec, rate=LINE_RATE, layout=layout, **options)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16p", layout=layout)
        frame.rate = LINE_RATE
        for packet in stream.encode(frame):  # PyAV converts to the encoder's sample format
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def convert(path: Path, condition: str, out_dir: Path = CACHE, *, mono: bool = False) -> Path:
    """`path` as it would be stored after a phone call under `condition`; 'clean' is `path`.

    Every channel is kept (a stereo call stays agent left, customer right) unless `mono`:
    then the channels are mixed down first, as a mono call recorder does.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; one of {', '.join(CONDITIONS)}")
    if condition == "clean":
        return path
    channels = decode_audio(path, mono=mono).channels
    if condition == "telephony_noise":
        seed = zlib.crc32(path.name.encode())
        channels = [add_noise(c, NOISE_SNR_DB, seed + i) for i, c in enumerate(channels)]
    line = [line_signal(c) for c in channels]
    codec, suffix = (
        ("libmp3lame", ".mp3") if condition == "telephony_mp3" else ("pcm_mulaw", ".wav")
    )
    # The parent folder's name keeps same-named files apart (librispeech/x.flac, x.wav).
    layout = "mono" if len(line) == 1 else "stereo"
    target = out_dir / condition / f"{path.parent.name}__{path.stem}__{layout}{suffix}"
    return write_line_audio(line, target, codec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=CACHE)
    parser.add_argument("--condition", choices=CONDITIONS[1:], default="telephony")
    parser.add_argument("--mono", action="store_true", help="mix the channels down first")
    args = parser.parse_args()
    for path in args.files:
        print(convert(path, args.condition, args.out, mono=args.mono))
    return 0


if __name__ == "__main__":
    sys.exit(main())
