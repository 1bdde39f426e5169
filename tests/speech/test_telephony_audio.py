"""The phone-line condition of the speech evals (eval/telephony.py) on real audio.

The written file must be what a contact centre stores (8 kHz G.711 mu-law WAV, the call's
channels kept), readable by convolens' own decode path, and still transcribable.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.signal import welch

from convolens.speech.decode import decode_audio
from convolens.speech.options import SpeechOptions
from convolens.speech.transcribe import SpeechPipeline, to_conversation

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))
from telephony import active_power, add_noise, convert, line_signal


def wav_chunks(path: Path) -> dict[bytes, bytes]:
    """RIFF chunks by id (fmt, data, ...)."""
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    chunks, offset = {}, 12
    while offset + 8 <= len(raw):
        chunk_id, size = (
            raw[offset : offset + 4],
            struct.unpack("<I", raw[offset + 4 : offset + 8])[0],
        )
        chunks[chunk_id] = raw[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)
    return chunks


def g711_mulaw_expand(codes: np.ndarray) -> np.ndarray:
    """ITU-T G.711 mu-law expansion (the reference g711.c ulaw2linear), int16 scale."""
    u = ~codes.astype(np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)


def band_power(samples: np.ndarray, low: float, high: float) -> float:
    freqs, power = welch(samples, fs=16000, nperseg=1024)
    return float(power[(freqs >= low) & (freqs < high)].sum())


def test_stereo_call_becomes_8khz_mulaw_that_convolens_decodes(
    shared_audio: Path, tmp_path: Path
) -> None:
    source = shared_audio / "stereo_diarization.wav"  # one voice per channel, 5 s
    clean = decode_audio(source)
    path = convert(source, "telephony", tmp_path)

    chunks = wav_chunks(path)
    tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    # WAVE_FORMAT_MULAW, the call's two channels, 8 kHz, one byte a sample.
    assert (tag, channels, rate, byte_rate, align, bits) == (7, 2, 8000, 16000, 2, 8)
    codes = np.frombuffer(chunks[b"data"], dtype=np.uint8).reshape(-1, 2).T
    assert abs(codes.shape[1] - 5.0 * 8000) <= 8

    # The bytes are G.711 mu-law of the band-limited 8 kHz signal: expanded with the
    # standard's own table they give it back within mu-law's quantisation step (~3 %).
    for index in (0, 1):
        line = np.round(line_signal(clean.channels[index]) * 32767)[: codes.shape[1]]
        expanded = g711_mulaw_expand(codes[index])
        error = np.abs(expanded - line)
        assert np.all(error <= 0.035 * np.abs(line) + 8), float(np.max(error))

    decoded = decode_audio(path)
    assert (decoded.codec, decoded.source_sample_rate, decoded.source_channels) == (
        "pcm_mulaw",
        8000,
        2,
    )
    assert decoded.sample_rate == 16000 and len(decoded.channels) == 2
    assert decoded.duration == pytest.approx(clean.duration, abs=0.01)
    for heard, original in zip(decoded.channels, clean.channels, strict=True):
        # The voice band survives; above the line's 3.4 kHz edge and below 300 Hz it is gone.
        in_band = band_power(heard, 500, 3000)
        assert in_band == pytest.approx(band_power(original, 500, 3000), rel=0.1)
        above = band_power(heard, 4000, 8000)
        assert above < 1e-3 * in_band and above < 0.01 * band_power(original, 4000, 8000)
        assert band_power(heard, 0, 150) < 0.01 * band_power(original, 0, 150)


def test_mono_mix_noise_and_mp3_variants(shared_audio: Path, tmp_path: Path) -> None:
    source = shared_audio / "stereo_diarization.wav"
    mono = decode_audio(convert(source, "telephony", tmp_path, mono=True))
    assert (mono.codec, mono.source_sample_rate, mono.source_channels) == ("pcm_mulaw", 8000, 1)

    # 10 dB below the speech's active power (pauses do not dilute it).
    speech = decode_audio(source).channels[0]
    noise = add_noise(speech, 10.0, seed=0) - speech
    snr_db = 10 * np.log10(active_power(speech) / np.mean(noise.astype(np.float64) ** 2))
    assert snr_db == pytest.approx(10.0, abs=0.1)
    noisy_path = convert(source, "telephony_noise", tmp_path)
    noisy = decode_audio(noisy_path)
    assert (noisy.codec, noisy.source_channels) == ("pcm_mulaw", 2)
    quiet = slice(0, 1600)  # the right channel's first 0.1 s: silence before its voice
    assert np.std(noisy.channels[1][quiet]) > 20 * np.std(decode_audio(source).channels[1][quiet])
    # Seeded: the same input gives the same file.
    assert convert(source, "telephony_noise", tmp_path).read_bytes() == noisy_path.read_bytes()

    mp3 = decode_audio(convert(source, "telephony_mp3", tmp_path))
    assert (mp3.container, mp3.source_sample_rate, mp3.source_channels) == ("mp3", 8000, 2)
    assert mp3.duration == pytest.approx(5.0, abs=0.1)


def test_phone_call_still_transcribes_channel_by_channel(
    shared_audio: Path, tmp_path: Path, tiny_asr: Any
) -> None:
    path = convert(shared_audio / "stereo_diarization.wav", "telephony", tmp_path)
    # Ingest defaults for channels: 'auto' must still see two parties on the phone line.
    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en"), asr=tiny_asr)
    transcript = pipeline.transcribe(path)
    assert transcript.separation == "channels"
    conversation = to_conversation(transcript, source_id=path.name)
    said = {
        channel: " ".join(u.text for u in conversation.utterances if u.participant_id == channel)
        for channel in ("ch0", "ch1")
    }
    words = {
        k: "".join(c for c in v.lower() if c.isalpha() or c == " ").split() for k, v in said.items()
    }
    assert " ".join(words["ch0"]).endswith(
        "against the wizard who had vanished behind the curtain on the left"
    )
    assert " ".join(words["ch1"]) == "the horizon seems extremely distant"
