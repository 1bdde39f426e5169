"""Speech test fixtures: real packaged Whisper models, loaded once per session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

AUDIO = Path(__file__).resolve().parents[1] / "data" / "audio"
SHARED_AUDIO = Path(__file__).resolve().parents[3] / "shared" / "data" / "audio"


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return AUDIO


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    if not SHARED_AUDIO.is_dir():
        pytest.fail(f"{SHARED_AUDIO} is missing: the shared datasets sit beside the checkout")
    return SHARED_AUDIO


@pytest.fixture(scope="session")
def layout() -> dict[str, Any]:
    return json.loads((AUDIO / "layout.json").read_text())["files"]


@pytest.fixture(scope="session")
def tiny_asr():  # type: ignore[no-untyped-def]
    from convolens.speech.asr import FasterWhisperAsr

    return FasterWhisperAsr("tiny.en")


@pytest.fixture(scope="session")
def base_asr():  # type: ignore[no-untyped-def]
    from convolens.speech.asr import FasterWhisperAsr

    return FasterWhisperAsr("base")
