"""Recordings are served with their PII beeped out (issue #12 item 5), to the roles that
read text; the original only to an admin who confirms.

A real server transcribes a real recording in which a phone number is spoken (see
planted_audio.py); the tests read the served audio's samples, run Whisper on it, and call
the audio routes as every role.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from planted_audio import DIGIT_RUNS, RATE, ROOT, RecordedServer, recorded_server

from convolens.speech.audio_redaction import BEEP_HZ, PAD_S, recording_files
from convolens.speech.decode import decode_audio

COOKIE = "convolens_dashboard_key"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedServer]:
    with recorded_server(tmp_path_factory.mktemp("recorded")) as running:
        yield running


def _get(r: RecordedServer, role: str | None, path: str, **kw: object) -> httpx.Response:
    key = r.keys[role] if role else None
    with r.server.client(key) as client:
        if key and path.startswith("/dashboard"):
            client.cookies.set(COOKIE, key)
        return client.get(path, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served(recorded: RecordedServer, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The recording as an analyst hears it, decoded (16 kHz mono)."""
    response = _get(recorded, "analyst", f"/v1/conversations/{recorded.own}/audio")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/flac"
    path = tmp_path_factory.mktemp("served") / "served.flac"
    path.write_bytes(response.content)
    return decode_audio(path).channels[0]


def _words(recorded: RecordedServer) -> list[dict[str, Any]]:
    utterances = _get(
        recorded, "analyst", f"/v1/conversations/{recorded.own}/utterances", params={"words": True}
    ).json()
    return [w for u in utterances for w in u["words"]]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) sample runs where `mask` holds."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def test_the_spoken_number_is_beeped_and_the_rest_is_unchanged(
    recorded: RecordedServer, served: np.ndarray
) -> None:
    original = decode_audio(recorded.planted.path).channels[0]
    assert len(served) == len(original)
    # The text shows the number redacted, and its words keep their timings.
    words = _words(recorded)
    pii = [w for w in words if "PHONE_NUMBER" in str(w["text"])]
    assert pii, "the phone number was not redacted in the text"
    first = min(w["start_s"] for w in pii)
    last = max(w["end_s"] for w in pii)
    # The words said before and after it.
    before = max(w["end_s"] for w in words if w["end_s"] <= first)
    after = min(w["start_s"] for w in words if w["start_s"] >= last)

    changed = np.abs(served - original) > 3 / 32768
    runs = _runs(changed)
    assert runs
    # What changed lies around the redacted words (padded) and in the pauses next to
    # them, never over another word.
    lo, hi = min(before, first - PAD_S), max(after, last + PAD_S)
    assert runs[0][0] / RATE >= lo - 0.001 and runs[-1][1] / RATE <= hi + 0.001, (
        [(a / RATE, b / RATE) for a, b in runs[:3] + runs[-3:]],
        (before, first, last, after),
    )
    # The spoken digits (known to the sample) are all gone: every voiced sample changed.
    d0, d1 = (int(t * RATE) for t in recorded.planted.digits)
    voiced = np.abs(original[d0:d1]) > 1e-3
    assert changed[d0:d1][voiced].mean() > 0.98
    # ... replaced by a 1 kHz tone, not noise: the spectrum peaks at 1 kHz.
    spectrum = np.abs(np.fft.rfft(served[d0:d1]))
    peak_hz = np.fft.rfftfreq(d1 - d0, 1 / RATE)[int(np.argmax(spectrum))]
    assert abs(peak_hz - BEEP_HZ) < 5
    near = np.abs(np.fft.rfftfreq(d1 - d0, 1 / RATE) - BEEP_HZ) < 30
    assert (spectrum[near] ** 2).sum() / (spectrum**2).sum() > 0.9
    # The real customer turn before it is bit for bit what was uploaded.
    r0, r1 = (int(t * RATE) for t in recorded.planted.real_speech)
    assert np.abs(served[r0:r1] - original[r0:r1]).max() <= 1 / 32768


def _digits_heard(text: str) -> str:
    """The digits in a transcript, number words included ("four one five" -> "415")."""
    words = {
        "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
        "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    }  # fmt: skip
    tokens = re.findall(r"[a-z]+|\d", text.lower())
    return "".join(words.get(t, t if t.isdigit() else " ") for t in tokens)


def test_whisper_does_not_hear_the_number_in_the_served_audio(
    recorded: RecordedServer, served: np.ndarray
) -> None:
    from convolens.speech.asr import FasterWhisperAsr

    # The number was heard in the original: the raw layer (admin, confirm) holds it.
    raw = _get(recorded, "admin", f"/v1/conversations/{recorded.own}/raw?confirm=true").text
    assert all(run in _digits_heard(raw) for run in DIGIT_RUNS[:2]), raw[:2000]
    # The base model (bigger than the tiny.en that transcribed the upload) on what is served.
    result = FasterWhisperAsr("base").transcribe(served, language="en")
    heard = " ".join(s.text for s in result.segments)
    digits = _digits_heard(heard)
    assert not [run for run in DIGIT_RUNS if run in digits], heard
    assert "subscription" in heard.lower() and "tomorrow" in heard.lower(), heard


# (role, path, expected status); {own}: the agent's recording, {other}: the admin's.
AUDIO_MATRIX = [
    ("admin", "/v1/conversations/{own}/audio", 200),
    ("analyst", "/v1/conversations/{own}/audio", 200),
    ("agent", "/v1/conversations/{own}/audio", 200),
    ("agent", "/v1/conversations/{other}/audio", 404),
    ("viewer", "/v1/conversations/{own}/audio", 403),
    (None, "/v1/conversations/{own}/audio", 401),
    ("admin", "/v1/conversations/{own}/audio?raw=true&confirm=true", 200),
    ("admin", "/v1/conversations/{own}/audio?raw=true", 422),
    ("analyst", "/v1/conversations/{own}/audio?raw=true&confirm=true", 403),
    ("agent", "/v1/conversations/{own}/audio?raw=true&confirm=true", 403),
    ("viewer", "/v1/conversations/{own}/audio?raw=true&confirm=true", 403),
    ("admin", "/dashboard/audio/{own}", 200),
    ("analyst", "/dashboard/audio/{own}", 200),
    ("agent", "/dashboard/audio/{own}", 200),
    ("agent", "/dashboard/audio/{other}", 404),
    ("viewer", "/dashboard/audio/{own}", 403),
    (None, "/dashboard/audio/{own}", 401),
]


def test_who_hears_what(recorded: RecordedServer, served: np.ndarray) -> None:
    redacted = _get(recorded, "analyst", f"/v1/conversations/{recorded.own}/audio").content
    uploaded = hashlib.sha256(recorded.planted.path.read_bytes()).hexdigest()
    got = {}
    for role, template, _ in AUDIO_MATRIX:
        path = template.format(own=recorded.own, other=recorded.other)
        response = _get(recorded, role, path)
        got[(role, path)] = response.status_code
        body = response.content
        if response.status_code == 200:
            assert response.headers["cache-control"] == "no-store"
            if "raw=true" in path:  # the original, byte for byte
                assert hashlib.sha256(body).hexdigest() == uploaded
                assert response.headers["content-type"].startswith("audio/")
            else:  # the redacted copy, and only it
                assert body == redacted
        else:
            assert body[:1] == b"{" and b"RIFF" not in body and b"fLaC" not in body
    expected = {
        (role, t.format(own=recorded.own, other=recorded.other)): s for role, t, s in AUDIO_MATRIX
    }
    assert got == expected


def test_players_can_seek(recorded: RecordedServer) -> None:
    """Range requests are answered (206): an <audio> element seeks with them."""
    whole = _get(recorded, "analyst", f"/dashboard/audio/{recorded.own}").content
    part = _get(
        recorded, "analyst", f"/dashboard/audio/{recorded.own}", headers={"Range": "bytes=100-299"}
    )
    assert part.status_code == 206
    assert part.content == whole[100:300]
    assert part.headers["content-range"] == f"bytes 100-299/{len(whole)}"


def test_a_conversation_without_recording_has_no_audio(recorded: RecordedServer) -> None:
    with recorded.server.client() as admin:
        accepted = admin.post(
            "/v1/conversations",
            json={"id": "no-audio-1", "messages": [{"author": "c", "text": "Hello there"}]},
        ).json()
    from live_server import wait_job

    with recorded.server.client() as admin:
        assert wait_job(admin, accepted["job_id"])["status"] == "completed"
    response = _get(recorded, "admin", f"/v1/conversations/{accepted['conversation_id']}/audio")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "recording_not_found"


def test_cli_ingest_makes_the_copy_too(recorded: RecordedServer) -> None:
    """`convolens ingest` of a recording (here through the running server, which holds
    the warehouse) leaves the redacted copy the dashboard plays, as a job does."""
    from convolens.model import conversation_id_for

    recording = ROOT / "tests" / "data" / "audio" / "call.ogg"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), "ingest", str(recording),
         "--db", str(recorded.server.db), "--model", "tiny.en"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    digest = hashlib.sha256(recording.read_bytes()).hexdigest()
    cid = conversation_id_for("audio", f"sha256:{digest[:32]}")
    response = _get(recorded, "analyst", f"/v1/conversations/{cid}/audio")
    assert response.status_code == 200, response.text
    assert response.content[:4] == b"fLaC"
    assert recording_files(recorded.server.db, cid)


def test_a_live_stream_recording_is_served_redacted_too(
    recorded: RecordedServer, tmp_path: Path
) -> None:
    """A call streamed over WS /v1/stream: its recorded WAV gets the copy when its job
    ends, with the number beeped as in an upload."""
    from convolens.client import Client

    with Client(recorded.server.url, api_key=recorded.keys["agent"], timeout=120) as client:
        events = list(
            client.stream_file(
                recorded.planted.path, realtime=False, language="en", source_id="planted-live"
            )
        )
        stored = events[-1]
        assert stored.type == "stored", [e.type for e in events][-5:]
        assert client.wait(stored.job_id, timeout=300).status == "completed"
    response = _get(recorded, "agent", f"/v1/conversations/{stored.conversation_id}/audio")
    assert response.status_code == 200, response.text
    (tmp_path / "live.flac").write_bytes(response.content)
    served = decode_audio(tmp_path / "live.flac").channels[0]
    original = decode_audio(recorded.planted.path).channels[0]
    d0, d1 = (int(t * RATE) for t in recorded.planted.digits)
    voiced = np.abs(original[d0:d1]) > 1e-3
    changed = np.abs(served[: len(original)] - original) > 3 / 32768
    assert changed[d0:d1][voiced].mean() > 0.98
    r0, r1 = (int(t * RATE) for t in recorded.planted.real_speech)
    assert not changed[r0:r1].any()


def test_deleting_a_conversation_deletes_its_redacted_copy(recorded: RecordedServer) -> None:
    db: Path = recorded.server.db
    assert recording_files(db, recorded.other)  # the copy and its manifest
    with recorded.server.client() as admin:
        assert admin.delete(f"/v1/conversations/{recorded.other}").status_code == 200
    assert recording_files(db, recorded.other) == []
    assert recording_files(db, recorded.own)  # the other recording's copy stays


def test_spans_are_padded_into_pauses_but_never_over_another_word() -> None:
    from convolens.speech.audio_redaction import REACH_S, merge_spans, reach_into_pauses

    words = [
        {"start_s": 0.0, "end_s": 0.5},  # "my number is"
        {"start_s": 1.0, "end_s": 1.4},  # "415" (redacted)
        {"start_s": 1.45, "end_s": 1.9},  # "555" (redacted)
        {"start_s": 1.95, "end_s": 2.3},  # "thanks": right after
        {"start_s": 5.0, "end_s": 5.5},
    ]
    spans = reach_into_pauses([(1.0, 1.4, {"PHONE_NUMBER"}), (1.45, 1.9, {"PHONE_NUMBER"})], words)
    merged = merge_spans(spans, pad=0.0)
    assert len(merged) == 1 and merged[0].types == ["PHONE_NUMBER"]
    # Back to the end of the word before; forward only the padding, into "thanks".
    assert merged[0].start == 0.5 and merged[0].end == pytest.approx(1.9 + PAD_S)
    # With nothing after it, a span reaches REACH_S into the silence.
    alone = reach_into_pauses([(5.0, 5.5, {"PERSON"})], words[:4])
    assert alone[0][1] == pytest.approx(5.5 + REACH_S)


def test_silence_mode_and_leftovers_of_a_killed_write(tmp_path: Path) -> None:
    from convolens.speech.audio_redaction import RedactedSpan, audio_store, redact_samples

    samples = np.ones(16000, np.float32)
    redact_samples([samples], [RedactedSpan(start=0.25, end=0.5, types=["PERSON"])], mode="silence")
    assert not samples[4000:8000].any() and samples[:4000].all() and samples[8000:].all()
    db = tmp_path / "w.duckdb"
    store = audio_store(db)
    store.mkdir()
    stem = hashlib.sha256(b"cv-1").hexdigest()[:32]
    made = [store / f"{stem}-v1.flac", store / f"{stem}-v1.json", store / f".{stem}-v2.ab.partial"]
    for path in [*made, store / "other-v1.flac"]:
        path.write_bytes(b"x")
    assert recording_files(db, "cv-1") == sorted(made)
