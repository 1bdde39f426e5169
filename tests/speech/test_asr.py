"""The real packaged Whisper models on real speech: tiny.en and base."""

import hashlib
from itertools import pairwise

import pytest

from convolens.speech.decode import decode_audio
from convolens.speech.models import (
    BASE_SHA256,
    BASE_SIZE,
    ModelNotAvailableError,
    resolve_whisper_model,
)

JFK = "and so my fellow americans ask not what your country can do for you"


def _text(result) -> str:
    words = " ".join(w.text for s in result.segments for w in s.words).lower()
    return "".join(c for c in words if c.isalnum() or c == " ")


def test_tiny_en_transcribes_jfk_with_word_timings(tiny_asr, shared_audio):
    result = tiny_asr.transcribe(decode_audio(shared_audio / "jfk.flac", mono=True).mono)
    assert JFK in _text(result)
    words = [w for s in result.segments for w in s.words]
    assert all(w.start <= w.end for w in words)
    assert all(a.start <= b.start for a, b in pairwise(words))
    assert words[-1].end <= 11.05 and result.model_id == "whisper-tiny.en-ct2"


def test_base_transcribes_jfk_and_detects_english(base_asr, shared_audio):
    result = base_asr.transcribe(decode_audio(shared_audio / "jfk.flac", mono=True).mono)
    assert JFK in _text(result)
    assert result.language == "en" and result.model_id == "whisper-base-ct2"


def test_base_assembles_from_packages_and_verifies_the_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVOLENS_CACHE", str(tmp_path))
    path, _ = resolve_whisper_model("base")
    model = path / "model.bin"
    assert model.stat().st_size == BASE_SIZE
    assert hashlib.sha256(model.read_bytes()).hexdigest() == BASE_SHA256
    assert {p.name for p in path.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    # A second resolve reuses the assembled file.
    mtime = model.stat().st_mtime_ns
    assert resolve_whisper_model("base")[0] == path and model.stat().st_mtime_ns == mtime


def test_unknown_model_names_say_what_is_accepted():
    with pytest.raises(ModelNotAvailableError, match=r"use 'base', 'tiny\.en' or a local"):
        resolve_whisper_model("large-v3")
