"""The default diarizer (segmentation-3.0 + CAM++) on real recordings: DER, speaker counts,
overlapped speech, and the channel check for stereo files of one speaker."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from convolens.speech.decode import decode_audio
from convolens.speech.neural_diarize import SegmentationDiarizer
from convolens.speech.types import SpeakerTurn

RATE = 16000


@pytest.fixture(scope="module")
def diarizer() -> SegmentationDiarizer:
    return SegmentationDiarizer()  # models load once for the module


def _mono(path: Path) -> np.ndarray:
    return decode_audio(path, mono=True).channels[0]


def _der(rttm: Path, turns: list[SpeakerTurn], duration: float, collar: float) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(), Annotation()
    for line in rttm.read_text().splitlines():
        p = line.split()
        ref[Segment(float(p[3]), float(p[3]) + float(p[4]))] = p[7]
    for i, t in enumerate(turns):
        hyp[Segment(t.start, t.end), str(i)] = t.speaker
    return float(DiarizationErrorRate(collar=collar)(ref, hyp, uem=Segment(0, duration)))


@pytest.fixture(scope="module")
def sample(diarizer, shared_audio):  # type: ignore[no-untyped-def]
    audio = _mono(shared_audio / "two_speakers_sample.wav")
    return audio, diarizer(audio, RATE, num_speakers=2)


def test_two_speaker_sample_under_the_target_der(sample, shared_audio) -> None:  # type: ignore[no-untyped-def]
    audio, turns = sample
    assert {t.speaker for t in turns} == {"S0", "S1"}
    # Measured 6.2 % at collar 0.25 (eval/diarization_der.py; 9.7 % for resemblyzer); the
    # issue's target is 15 %.
    rttm = shared_audio / "two_speakers_sample.rttm"
    assert _der(rttm, turns, audio.size / RATE, 0.25) <= 0.15
    assert _der(rttm, turns, audio.size / RATE, 0.0) <= 0.22


def test_overlapped_speech_is_given_to_both_speakers(sample, shared_audio) -> None:  # type: ignore[no-untyped-def]
    # The reference has 1.9 s where both talk; the diarizer's turns overlap there too.
    _, turns = sample
    ref: dict[str, list[tuple[float, float]]] = {}
    for line in (shared_audio / "two_speakers_sample.rttm").read_text().splitlines():
        p = line.split()
        ref.setdefault(p[7], []).append((float(p[3]), float(p[3]) + float(p[4])))
    grid = np.arange(0, 30, 0.01)

    def active(spans: list[tuple[float, float]]) -> np.ndarray:
        return np.any([(grid >= a) & (grid < b) for a, b in spans], axis=0)

    ref_both = np.logical_and(*[active(v) for v in ref.values()])
    hyp = {s: [(t.start, t.end) for t in turns if t.speaker == s] for s in ("S0", "S1")}
    hyp_both = np.logical_and(*[active(v) for v in hyp.values()])
    assert ref_both.sum() * 0.01 > 1.5
    # Most of the overlapped reference speech is found as overlap, and little else is.
    assert (ref_both & hyp_both).sum() >= 0.5 * ref_both.sum()
    assert (hyp_both & ~ref_both).sum() <= 0.5 * hyp_both.sum()


def test_the_estimated_count_finds_the_two_voices(diarizer, sample) -> None:  # type: ignore[no-untyped-def]
    audio, _ = sample
    assert len({t.speaker for t in diarizer(audio, RATE)}) == 2
    assert len({t.speaker for t in diarizer(audio, RATE, max_speakers=2)}) == 2


def test_one_voice_stays_one_speaker_when_the_count_is_bounded(diarizer, shared_audio) -> None:  # type: ignore[no-untyped-def]
    for name in ("jfk.flac", "librispeech/1089-134686-0000.flac"):
        turns = diarizer(_mono(shared_audio / name), RATE, max_speakers=2)
        assert turns and {t.speaker for t in turns} == {"S0"}, name


def test_silence_and_tiny_inputs(diarizer) -> None:  # type: ignore[no-untyped-def]
    assert diarizer(np.zeros(5 * RATE, dtype=np.float32), RATE, num_speakers=2) == []
    assert diarizer(np.zeros(100, dtype=np.float32), RATE) == []
    with pytest.raises(ValueError):
        diarizer(np.zeros(RATE, dtype=np.float32), RATE, num_speakers=0)


# tests/data/audio/mono_call.flac: eight espeak turns (agent, customer, ...) with 1.0 s of
# digital silence between them; README.md there gives the layout. These are the turn ends.
_MONO_CALL_ENDS = (4.19675, 9.243625, 13.293125, 16.12675, 20.466313, 23.167063, 26.232937)


def test_silent_gaps_between_turns_are_not_speech(diarizer, data_dir) -> None:  # type: ignore[no-untyped-def]
    # The call with its gaps shortened to 0.3 s. segmentation-3.0 holds a turn through such a
    # gap (P(speech) stayed 0.5-0.99 on the espeak calls), so the turns used to run across
    # every gap; near-silent stretches of >= 0.2 s are now cut out of the turns.
    audio = _mono(data_dir / "audio" / "mono_call.flac")
    gap = 0.3
    pieces, previous, starts, ends = [], 0, [0.5], []
    for index, end in enumerate(_MONO_CALL_ENDS):
        cut = round(end * RATE)
        pieces += [audio[previous:cut], np.zeros(round(gap * RATE), dtype=np.float32)]
        previous = cut + RATE
        shift = index * (1.0 - gap)
        ends.append(end - shift)
        starts.append(end + 1.0 - shift - (1.0 - gap))
    pieces.append(audio[previous:])
    call = np.concatenate(pieces)
    ends.append(29.395187 - len(_MONO_CALL_ENDS) * (1.0 - gap))
    turns = diarizer(call, RATE, num_speakers=2)

    for gap_start in ends[:-1]:
        inside = sum(max(0.0, min(t.end, gap_start + gap) - max(t.start, gap_start)) for t in turns)
        assert inside <= 0.1, (gap_start, turns)
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(), Annotation()
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        ref[Segment(start, end)] = "agent" if index % 2 == 0 else "customer"
    for index, t in enumerate(turns):
        hyp[Segment(t.start, t.end), str(index)] = t.speaker
    der = DiarizationErrorRate(collar=0.25)(ref, hyp, uem=Segment(0, call.size / RATE))
    assert der <= 0.10  # measured 5.8 % at collar 0.25


def _write_stereo(path: Path, left: np.ndarray, right: np.ndarray) -> None:
    pcm = (np.clip(np.stack([left, right], axis=1), -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def test_one_speaker_in_both_channels_is_not_a_two_party_call(  # type: ignore[no-untyped-def]
    tiny_asr, shared_audio, tmp_path
) -> None:
    from convolens.speech.transcribe import SpeechOptions, SpeechPipeline

    jfk = _mono(shared_audio / "jfk.flac")
    rng = np.random.default_rng(0)
    noise = float(np.sqrt(np.mean(jfk**2))) / 10 ** (10 / 20)  # 10 dB SNR per channel
    left = jfk + rng.normal(0, noise, jfk.size).astype(np.float32)
    right = 0.7 * np.roll(jfk, 40) + rng.normal(0, noise, jfk.size).astype(np.float32)
    _write_stereo(tmp_path / "one_voice_stereo.wav", left, right)
    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en"), asr=tiny_asr)
    transcript = pipeline.transcribe(tmp_path / "one_voice_stereo.wav")
    assert transcript.separation == "single"
    words = [w.text for _, ws in transcript.turns for w in ws]
    assert words.count("country") + words.count("country.") + words.count("country,") == 2


def test_jfk_is_one_speaker_through_the_pipeline(tiny_asr, shared_audio) -> None:  # type: ignore[no-untyped-def]
    from convolens.speech.transcribe import SpeechOptions, SpeechPipeline, to_conversation

    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en"), asr=tiny_asr)
    transcript = pipeline.transcribe(shared_audio / "jfk.flac")
    assert transcript.separation == "single"
    assert [s.participant_id for s in transcript.speakers] == ["S0"]
    conversation = to_conversation(transcript, source_id="jfk")
    assert {u.participant_id for u in conversation.utterances} == {"S0"}
