"""Speaker identity on real voices: enrol an agent from a few seconds of audio, and a
recording ingested afterwards names the speaker who matches (role agent; the other voice
of the call becomes the customer). Voices that were never enrolled stay unnamed."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from convolens.cli import app
from convolens.ingest.base import IngestOptions
from convolens.ingest.pipeline import ingest_paths
from convolens.model import Role
from convolens.speech.campplus import CamPlusEmbedder
from convolens.speech.decode import decode_audio
from convolens.speech.identity import (
    DEFAULT_THRESHOLD,
    EnrolmentError,
    _solo_spans,
    match_voices,
    voice_embedding,
    voice_print,
)
from convolens.speech.options import SpeechOptions
from convolens.speech.types import SpeakerTurn
from convolens.speech.voices import enrol_voice, enrolled_voices, list_voices, remove_voice
from convolens.store.reader import load_conversation
from convolens.store.warehouse import Warehouse

RATE = 16000
CALLER = Path(__file__).resolve().parents[1] / "data" / "audio" / "voices" / "customer_en.flac"
runner = CliRunner(env={"COLUMNS": "200"})


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="module")
def embedder() -> CamPlusEmbedder:
    return CamPlusEmbedder()


@pytest.fixture(scope="module")
def jfk(shared_audio: Path) -> np.ndarray:
    return decode_audio(shared_audio / "jfk.flac", mono=True).channels[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, jfk: np.ndarray) -> dict:
    """JFK's first 4.5 s to enrol from; a call of a caller (espeak-ng, tests/data/audio/
    voices) and then JFK's last 6 s (speech the print never heard) after a pause."""
    folder = tmp_path_factory.mktemp("voices")
    caller = decode_audio(CALLER).mono
    call = np.concatenate([caller, np.zeros(RATE // 2, np.float32), jfk[-6 * RATE :]])
    return {
        "enrol": _write_wav(folder / "jfk_enrol.wav", jfk[: int(4.5 * RATE)]),
        "call": _write_wav(folder / "call.wav", call),
        "caller_s": caller.size / RATE,
    }


def test_the_enrolled_agent_is_named_in_a_later_call(warehouse: Warehouse, clips: dict) -> None:
    done = enrol_voice(warehouse, "John Kennedy", clips["enrol"])
    assert done["name"] == "John Kennedy" and done["role"] == "agent"
    assert done["speech_seconds"] >= 3.0 and not done["replaced"]
    options = IngestOptions(speech=SpeechOptions(model="tiny.en", num_speakers=2))
    report = ingest_paths(warehouse, [clips["call"]], options=options)
    assert report.written.new == 1, report.summary_line()
    (row,) = warehouse.query("SELECT conversation_id FROM conversations_current")
    conversation = load_conversation(warehouse, row["conversation_id"])
    by_id = {p.participant_id: p for p in conversation.participants}
    named = [p for p in conversation.participants if p.name == "John Kennedy"]
    assert len(named) == 1 and named[0].role == Role.agent
    (other,) = [p for p in conversation.participants if p.name != "John Kennedy"]
    assert other.role == Role.customer
    # The named speaker is the one who says JFK's words, after the caller.
    jfk_words = " ".join(
        u.text for u in conversation.utterances if by_id[u.participant_id] is named[0]
    ).lower()
    assert "country" in jfk_words
    # ... and most of whose speech comes after the caller's (the diarizer lends ~3 s of
    # the caller's stretch to JFK's speaker on this clip; the name follows the voice).
    before = after = 0.0
    for u in conversation.utterances:
        if u.participant_id == named[0].participant_id and u.start is not None:
            if u.start < clips["caller_s"] - 0.5:
                before += (u.end or u.start) - u.start
            else:
                after += (u.end or u.start) - u.start
    assert after > before and after > 3.0, (before, after)
    caller_words = " ".join(
        u.text for u in conversation.utterances if u.participant_id == other.participant_id
    ).lower()
    assert "country" not in caller_words and "refund" in caller_words
    (identity,) = conversation.meta["speaker_identity"]
    assert identity["participant_id"] == named[0].participant_id
    assert identity["score"] >= DEFAULT_THRESHOLD
    # The prints never reach the run log.
    runs = warehouse.query("SELECT CAST(args AS VARCHAR) AS args FROM runs WHERE kind = 'ingest'")
    assert runs and all("embedding" not in r["args"] and '"voices":' not in r["args"] for r in runs)


def test_voices_never_enrolled_stay_unnamed(
    embedder: CamPlusEmbedder, jfk: np.ndarray, shared_audio: Path
) -> None:
    sample = decode_audio(shared_audio / "two_speakers_sample.wav", mono=True).channels[0]
    turns = []
    for line in (shared_audio / "two_speakers_sample.rttm").read_text().splitlines():
        parts = line.split()
        start, length = float(parts[3]), float(parts[4])
        turns.append(SpeakerTurn(start, start + length, parts[7]))
    speakers = {
        who: voice_embedding(sample, _solo_spans(turns, who), embedder)
        for who in {t.speaker for t in turns}
    }
    assert all(v is not None for v in speakers.values())
    kennedy = voice_embedding(jfk, [(0.0, 4.5)], embedder)
    assert kennedy is not None
    from convolens.speech.identity import VoicePrint

    prints = [VoicePrint("John Kennedy", Role.agent, kennedy, 4.5)]
    assert match_voices(speakers, prints, DEFAULT_THRESHOLD) == []  # type: ignore[arg-type]
    # ... while JFK's own later speech matches his print.
    later = voice_embedding(jfk, [(5.0, jfk.size / RATE)], embedder)
    assert later is not None
    (found,) = match_voices({"S1": later}, prints, DEFAULT_THRESHOLD)
    assert found.name == "John Kennedy" and found.score >= DEFAULT_THRESHOLD


def test_too_little_speech_is_refused_with_the_file_named(
    tmp_path: Path, jfk: np.ndarray, embedder: CamPlusEmbedder
) -> None:
    short = _write_wav(tmp_path / "hello.wav", jfk[: int(1.5 * RATE)])
    with pytest.raises(EnrolmentError, match=r"hello\.wav: .* at least 3 s"):
        voice_print(short, "Dana", embedder=embedder)
    silent = _write_wav(tmp_path / "silence.wav", np.zeros(5 * RATE, np.float32))
    with pytest.raises(EnrolmentError, match=r"silence\.wav: 0\.0 s of speech"):
        voice_print(silent, "Dana", embedder=embedder)


def test_cli_enrol_list_remove(tmp_path: Path, clips: dict) -> None:
    db = str(tmp_path / "voices.duckdb")
    Warehouse(db).close()
    enrolled = runner.invoke(app, ["speakers", "enrol", "Dana", str(clips["enrol"]), "--db", db])
    assert enrolled.exit_code == 0, enrolled.output
    assert "enrolled Dana (agent) from" in enrolled.output
    again = runner.invoke(app, ["speakers", "enrol", "Dana", str(clips["enrol"]), "--db", db])
    assert "re-enrolled Dana" in again.output
    listed = runner.invoke(app, ["speakers", "list", "--json", "--db", db])
    rows = json.loads(listed.output)
    assert [(r["name"], r["role"]) for r in rows] == [("Dana", "agent")]
    assert "embedding" not in rows[0]
    short = _write_wav(tmp_path / "tiny.wav", np.zeros(RATE, np.float32))
    refused = runner.invoke(app, ["speakers", "enrol", "Sam", str(short), "--db", db])
    assert refused.exit_code == 1 and "tiny.wav" in refused.output
    assert "Traceback" not in refused.output and str(tmp_path) not in refused.output
    removed = runner.invoke(app, ["speakers", "remove", "Dana", "--db", db])
    assert removed.exit_code == 0 and "removed Dana" in removed.output
    missing = runner.invoke(app, ["speakers", "remove", "Dana", "--db", db])
    assert missing.exit_code == 1
    with Warehouse(db) as warehouse:
        assert list_voices(warehouse) == [] and enrolled_voices(warehouse) == []
        assert not remove_voice(warehouse, "Dana")
