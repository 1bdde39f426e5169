"""Realtime fixtures: the real models, loaded once per session, and the example call as PCM."""

from __future__ import annotations

import os

# Weights come from the installed packages; a hub look-up must never happen.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pytest

from convolens.realtime import RealtimeConfig, RealtimeModels

REPO = Path(__file__).resolve().parents[2]
CALL = REPO / "examples" / "recordings" / "call-20261117-0031.flac"


@pytest.fixture(scope="session")
def models() -> RealtimeModels:
    """The default engine (tiny.en, short context), warmed up as a server would."""
    return RealtimeModels(RealtimeConfig(asr_model="tiny.en")).load()


@pytest.fixture(scope="session")
def call_pcm() -> bytes:
    """The example stereo call (agent left, customer right) as interleaved 16 kHz PCM16."""
    from convolens.speech.decode import decode_audio

    audio = decode_audio(CALL)
    assert len(audio.channels) == 2 and audio.sample_rate == 16000
    stereo = np.clip(np.stack(audio.channels, axis=1), -1.0, 1.0)
    return (stereo * 32767).astype("<i2").tobytes()
