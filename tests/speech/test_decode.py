"""PyAV decoding of every container we accept, and clear errors for the ones we cannot."""

import numpy as np
import pytest

from convolens.speech.decode import SAMPLE_RATE, AudioDecodeError, decode_audio, probe_media


@pytest.mark.parametrize(
    ("name", "codec"),
    [("call.mp3", "mp3"), ("call.ogg", "opus"), ("call.m4a", "aac"), ("call.webm", "opus")],
)
def test_compressed_formats_decode_to_16k_float(audio_dir, name, codec):
    audio = decode_audio(audio_dir / name)
    assert audio.sample_rate == SAMPLE_RATE
    assert codec in audio.codec
    assert len(audio.channels) == 1 and audio.channels[0].dtype == np.float32
    assert audio.duration == pytest.approx(4.0, abs=0.1)
    assert 0.01 < float(np.abs(audio.channels[0]).max()) <= 1.0


def test_stereo_keeps_channels_apart_and_mono_mixes(audio_dir, layout):
    audio = decode_audio(audio_dir / "stereo_call.wav")
    assert len(audio.channels) == 2 and audio.source_channels == 2
    assert audio.duration == pytest.approx(layout["stereo_call.wav"]["duration"], abs=0.01)
    # The first turn is the agent's, on the left channel only.
    first = slice(int(1.0 * SAMPLE_RATE), int(4.0 * SAMPLE_RATE))
    assert np.abs(audio.channels[0][first]).max() > 0.05
    assert np.abs(audio.channels[1][first]).max() < 0.01
    mixed = decode_audio(audio_dir / "stereo_call.wav", mono=True)
    assert len(mixed.channels) == 1 and mixed.channels[0].shape == audio.channels[0].shape


def test_telephony_8k_is_resampled(audio_dir):
    audio = decode_audio(audio_dir / "telephony_8k.wav")
    assert audio.source_sample_rate == 8000 and audio.sample_rate == SAMPLE_RATE
    assert audio.channels[0].size == pytest.approx(3.403 * SAMPLE_RATE, abs=SAMPLE_RATE * 0.01)


def test_video_uses_the_audio_track_and_keeps_container_facts(audio_dir):
    audio = decode_audio(audio_dir / "video_with_audio.mp4")
    assert audio.has_video and audio.codec == "aac"
    assert audio.container_duration == pytest.approx(4.0, abs=0.05)
    assert probe_media(audio_dir / "video_with_audio.mp4")["video_streams"] == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.wav", "empty.wav: empty file (0 bytes)"),
        ("corrupt.mp3", "corrupt.mp3: not a readable audio or video file"),
        ("video_no_audio.mp4", "video_no_audio.mp4: video file has no audio stream"),
    ],
)
def test_unreadable_files_name_the_file_and_the_reason(audio_dir, name, message):
    with pytest.raises(AudioDecodeError) as caught:
        decode_audio(audio_dir / name)
    assert str(caught.value).startswith(message)


def test_silence_decodes(audio_dir):
    audio = decode_audio(audio_dir / "silent.wav")
    assert audio.duration == pytest.approx(5.0) and float(np.abs(audio.mono).max()) < 1e-3


def test_truncated_file_keeps_what_decodes_and_says_it_is_truncated(audio_dir):
    audio = decode_audio(audio_dir / "truncated.flac")
    assert audio.duration < 1.0
    assert audio.warnings == [
        "truncated.flac: decoded 0.5 s of the 29.9 s the container declares; "
        "the file looks truncated"
    ]
