"""Guards against words Whisper invents, on real recordings and real Whisper output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convolens.speech.decode import decode_audio
from convolens.speech.guards import drop_repeated_spans, drop_unvoiced_tail, guard_words
from convolens.speech.types import AsrWord, SpeechRegion
from convolens.speech.vad import SileroVad

TIGHT = SileroVad(min_silence_ms=150, speech_pad_ms=30)  # the pipeline's boundary VAD


@pytest.fixture(scope="module")
def jfk(shared_audio: Path, tiny_asr):  # type: ignore[no-untyped-def]
    """JFK's sentence padded to 40 s with silence, its real words and voice activity."""
    speech = decode_audio(shared_audio / "jfk.flac", mono=True).channels[0]
    audio = np.concatenate([speech, np.zeros(40 * 16000 - speech.size, dtype=np.float32)])
    words = [w for s in tiny_asr.transcribe(audio).segments for w in s.words]
    return audio, words, TIGHT(audio, 16000)


def test_real_speech_passes_untouched(jfk) -> None:  # type: ignore[no-untyped-def]
    # "... what your country can do for you, ask what you can do for your country":
    # "can do for" comes twice at a natural pace inside speech, and is kept.
    _, words, regions = jfk
    assert len(words) >= 20
    assert guard_words(words, regions) == words


def test_a_looped_tail_squeezed_after_the_speech_is_dropped(jfk) -> None:  # type: ignore[no-untyped-def]
    # Whisper's loop as seen on a 40 s file: the last 16 words written again, squeezed
    # into 0.6 s where the recording is silent.
    _, words, regions = jfk
    end = words[-1].end
    tail = words[-16:]
    looped = [
        AsrWord(w.text, end + i * 0.6 / 16, end + (i + 1) * 0.6 / 16, 0.6)
        for i, w in enumerate(tail)
    ]
    assert guard_words(words + looped, regions) == words
    # The same loop inside speech is still implausible: 27 words a second.
    inside = [
        AsrWord(w.text, 2.0 + i * 0.6 / 16, 2.0 + (i + 1) * 0.6 / 16, 0.6)
        for i, w in enumerate(tail)
    ]
    assert drop_repeated_spans(words + inside, regions) == words


def test_a_repeat_at_a_natural_pace_inside_speech_is_kept() -> None:
    regions = [SpeechRegion(0.0, 5.0)]
    said = ["no,", "no,", "no,", "no,", "no,", "no."]
    words = [AsrWord(t, 0.3 * i, 0.3 * i + 0.25, 0.9) for i, t in enumerate(said)]
    assert drop_repeated_spans(words, regions) == words


def test_unvoiced_trailing_words_are_dropped(jfk) -> None:  # type: ignore[no-untyped-def]
    _, words, regions = jfk
    invented = [AsrWord("Thank", words[-1].end + 2.0, words[-1].end + 2.3, 0.8)]
    assert drop_unvoiced_tail(words + invented, regions) == words


def test_a_sure_last_word_just_past_the_vad_edge_is_kept(jfk) -> None:  # type: ignore[no-untyped-def]
    # "sauce" on a phone-line LibriSpeech clip: VAD speech ends at 9.41 s, Whisper puts
    # the word at 9.50-9.88 s with high probability. It was said; an unsure word there,
    # or a sure one long after the speech, was not.
    _, words, regions = jfk
    end = regions[-1].end
    said = AsrWord("sauce.", end + 0.09, end + 0.47, 0.9)
    assert drop_unvoiced_tail([*words, said], regions)[-1] == said
    unsure = AsrWord("sauce.", end + 0.09, end + 0.47, 0.2)
    assert drop_unvoiced_tail([*words, unsure], regions) == words
    late = AsrWord("sauce.", end + 1.0, end + 1.3, 0.9)
    assert drop_unvoiced_tail([*words, late], regions) == words


@pytest.mark.parametrize(("channel", "ending"), [(0, "on the left."), (1, "extremely distant.")])
def test_live_finals_do_not_end_with_invented_words(shared_audio, base_asr, channel, ending):  # type: ignore[no-untyped-def]
    # Whisper base on each channel of stereo_diarization.wav, decoded as a live final,
    # appends "Most." (p 0.02) and "that. And..." (p 0.10, 0.29) without the guard.
    from convolens.realtime.utterance_asr import UtteranceAsr

    audio = decode_audio(shared_audio / "stereo_diarization.wav").channels[channel]
    final = UtteranceAsr(base_asr)(audio)
    assert final.text.endswith(ending), final.text
    assert len(final.words) >= 5
