"""Recordings end to end: transcript text, speaker separation, roles and metric values."""

import shutil
from pathlib import Path

import pytest

from convolens.analyze import analyze
from convolens.ingest.base import IngestOptions
from convolens.ingest.pipeline import ingest_paths
from convolens.model import Role
from convolens.speech.options import SpeechOptions
from convolens.speech.transcribe import SpeechPipeline, to_conversation

TINY = IngestOptions(speech=SpeechOptions(model="tiny.en"))
CHAT = Path(__file__).resolve().parents[1] / "data" / "json" / "chats.jsonl"


def _words(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c == " ")


@pytest.fixture(scope="module")
def stereo(tiny_asr, audio_dir):  # type: ignore[no-untyped-def]
    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en"), asr=tiny_asr)
    return pipeline.transcribe(audio_dir / "stereo_call.wav")


def test_stereo_call_is_split_by_channel_with_roles_from_what_is_said(stereo):
    assert stereo.separation == "channels"
    speakers = {s.participant_id: s for s in stereo.speakers}
    assert speakers["ch0"].role == Role.agent and speakers["ch1"].role == Role.customer
    said = {sid: " ".join(w.text for w in words) for sid, words in stereo.turns}
    agent = _words(" ".join(" ".join(w.text for w in ws) for s, ws in stereo.turns if s == "ch0"))
    customer = _words(
        " ".join(" ".join(w.text for w in ws) for s, ws in stereo.turns if s == "ch1")
    )
    assert "thank you for calling northwind support" in agent
    assert "refund it today" in agent and "charged two times" in customer
    assert "charged" not in agent and said


def test_stereo_turns_follow_the_recording(stereo, layout):
    truth = layout["stereo_call.wav"]["segments"]
    assert [sid for sid, _ in stereo.turns] == ["ch0", "ch1"] * 4
    for (_, words), expected in zip(stereo.turns, truth, strict=True):
        # Word timings tightened to voice activity land within a quarter second.
        assert words[0].start == pytest.approx(expected["start"], abs=0.25)
        assert words[-1].end == pytest.approx(expected["end"], abs=0.25)


def test_stereo_metrics_measure_the_known_overlap_and_silence(warehouse, audio_dir):
    report = ingest_paths(warehouse, [audio_dir / "stereo_call.wav"], options=TINY)
    assert report.written.new == 1 and not report.rejects
    analyze(warehouse)
    (m,) = warehouse.query("SELECT * FROM metrics_conversation_current")
    # Crafted: 1.0 s of overlap (turns 2-3) and one 4.0 s silence (turns 5-6).
    assert m["timed"] and m["overlap_s"] == pytest.approx(1.0, abs=0.15)
    assert m["long_silence_count"] >= 1
    assert m["long_silence_s"] == pytest.approx(4.0, abs=0.2)
    assert m["duration_s"] == pytest.approx(29.895, abs=0.05)
    rows = {r["participant_id"]: r for r in warehouse.query("SELECT * FROM metrics_participant")}
    assert rows["ch1"]["interruptions"] == 1 and rows["ch0"]["interruptions"] == 0
    # Agent speech in the recording: 3.70 + 3.05 + 3.34 + 2.07 = 12.15 s.
    assert rows["ch0"]["talk_s"] == pytest.approx(12.15, abs=0.5)
    words = warehouse.query("SELECT count(*) AS n FROM words_current")[0]["n"]
    assert words > 40


@pytest.mark.parametrize(
    "name", ["call.mp3", "call.ogg", "call.m4a", "call.webm", "telephony_8k.wav"]
)
def test_every_container_transcribes(tiny_asr, audio_dir, name):
    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en", num_speakers=1), asr=tiny_asr)
    transcript = pipeline.transcribe(audio_dir / name)
    text = _words(" ".join(w.text for _, ws in transcript.turns for w in ws))
    expected = "internet connection" if name.startswith("telephony") else "cancel my plan"
    assert expected in text


def test_video_keeps_container_facts(tiny_asr, audio_dir):
    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en", num_speakers=1), asr=tiny_asr)
    transcript = pipeline.transcribe(audio_dir / "video_with_audio.mp4")
    conversation = to_conversation(transcript, source_id="sha256:test")
    assert conversation.channel == "video"
    assert conversation.duration_seconds == pytest.approx(4.0, abs=0.05)
    assert conversation.meta["media"]["has_video"] is True
    assert "recorded video meeting" in _words(conversation.utterances[0].text)


def test_a_folder_of_text_audio_and_broken_files(warehouse, audio_dir, tmp_path, monkeypatch):
    for name in (
        "call.mp3",
        "video_with_audio.mp4",
        "corrupt.mp3",
        "empty.wav",
        "silent.wav",
        "video_no_audio.mp4",
        "truncated.flac",
    ):
        shutil.copy(audio_dir / name, tmp_path / name)
    shutil.copy(CHAT, tmp_path / "chats.jsonl")
    options = IngestOptions(speech=SpeechOptions(model="tiny.en", num_speakers=1))
    report = ingest_paths(warehouse, [tmp_path], options=options)
    assert report.per_format == {"audio": 2, "json": 3}
    reasons = {
        Path(r.source_path).name: r.reason for r in report.rejects if r.source_format == "audio"
    }
    assert reasons == {
        "corrupt.mp3": reasons["corrupt.mp3"],
        "empty.wav": "empty file (0 bytes)",
        "silent.wav": "no speech recognised in 5.0 s of audio",
        "video_no_audio.mp4": "video file has no audio stream; nothing to transcribe",
        "truncated.flac": reasons["truncated.flac"],
    }
    assert reasons["corrupt.mp3"].startswith("not a readable audio or video file")
    assert "looks truncated" in reasons["truncated.flac"]
    channels = {r["channel"] for r in warehouse.query("SELECT channel FROM conversations")}
    assert channels == {"call", "video", "chat"}
    # Re-ingest: recordings already stored are recognised by hash, not transcribed again.
    original = SpeechPipeline.transcribe

    def transcribe_unless_stored(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(path).name in ("call.mp3", "video_with_audio.mp4"):
            raise AssertionError(f"stored recording {path} was transcribed again")
        return original(self, path, *args, **kwargs)  # rejected files are tried again

    monkeypatch.setattr(SpeechPipeline, "transcribe", transcribe_unless_stored)
    again = ingest_paths(warehouse, [tmp_path], options=options)
    assert again.written.new == 0 and again.written.unchanged == 5
    assert len(again.rejects) == len(report.rejects)


def test_word_timings_are_tightened_to_voice_activity():
    from convolens.speech.transcribe import refine_word_timings
    from convolens.speech.types import AsrWord, SpeechRegion

    words = [AsrWord("hello", 1.3, 1.9), AsrWord("there", 1.9, 2.8), AsrWord("again", 9.0, 9.5)]
    regions = [SpeechRegion(1.1, 2.4), SpeechRegion(5.0, 6.0)]
    refined = refine_word_timings(words, regions)
    # Late start pulled back to the region, run-on end cut where speech stops,
    # a word outside any region left alone.
    assert [(w.start, w.end) for w in refined] == [(1.1, 1.9), (1.9, 2.4), (9.0, 9.5)]


def test_mono_call_is_diarized_into_the_two_voices(tiny_asr, audio_dir, layout):
    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en"), asr=tiny_asr)
    transcript = pipeline.transcribe(audio_dir / "mono_call.flac")
    assert transcript.separation == "diarization"
    truth = layout["mono_call.flac"]["segments"]
    # Every turn lands on the right voice: labels alternate exactly as in the recording.
    labels = [sid for sid, _ in transcript.turns]
    assert len(labels) == len(truth) == 8
    agent_label = labels[0]
    for label, expected in zip(labels, truth, strict=True):
        assert (label == agent_label) == (expected["speaker"] == "agent")
    roles = {s.participant_id: s.role for s in transcript.speakers}
    assert roles[agent_label] == Role.agent
    assert sorted(roles.values()) == [Role.agent, Role.customer]
    for (_, words), expected in zip(transcript.turns, truth, strict=True):
        assert words[0].start == pytest.approx(expected["start"], abs=0.25)


class RttmDiarizer:
    """Another engine's output (here: reference turns from an RTTM file) plugged in through
    the Diarizer interface, as a pyannote user would."""

    def __init__(self, path: Path) -> None:
        from convolens.speech.types import SpeakerTurn

        self.turns = []
        for line in path.read_text().splitlines():
            parts = line.split()
            start, length, speaker = float(parts[3]), float(parts[4]), parts[7]
            self.turns.append(SpeakerTurn(start, start + length, speaker))

    def __call__(self, audio, sample_rate=16000, num_speakers=None):  # type: ignore[no-untyped-def]
        return sorted(self.turns, key=lambda t: t.start)


def test_a_user_diarizer_plugs_in(tiny_asr, shared_audio):
    from convolens.speech.types import Diarizer

    diarizer = RttmDiarizer(shared_audio / "two_speakers_sample.rttm")
    assert isinstance(diarizer, Diarizer)
    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en"), asr=tiny_asr, diarizer=diarizer)
    transcript = pipeline.transcribe(shared_audio / "two_speakers_sample.wav")
    reference = {t.speaker for t in diarizer.turns}
    assert {s.participant_id for s in transcript.speakers} == reference
    assert len(transcript.turns) >= 4


def test_split_words_are_joined_as_the_recogniser_wrote_them():
    from convolens.speech.transcribe import join_words
    from convolens.speech.types import AsrWord

    words = [
        AsrWord("peppered", 0.0, 0.5),
        AsrWord("flour", 0.5, 0.8),
        AsrWord("-fatten", 0.8, 1.2, joins_previous=True),
        AsrWord("sauce.", 1.2, 1.6),
    ]
    assert join_words(words) == "peppered flour-fatten sauce."


def test_a_few_seconds_of_one_voice_is_one_speaker(tiny_asr, audio_dir):
    pipeline = SpeechPipeline(SpeechOptions(model="tiny.en"), asr=tiny_asr)
    transcript = pipeline.transcribe(audio_dir / "telephony_8k.wav")
    assert transcript.separation == "single" and len(transcript.speakers) == 1
