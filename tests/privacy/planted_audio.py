"""A real recording with a phone number spoken in it, and a real server that ingests it.

The recording: a real customer turn from tests/data/audio/mono_call.flac ("Hi, I was
charged two times for my subscription this month."), a pause, then espeak-ng (en-us, male)
saying "Thanks. My phone number is" / "415, 555, 0134." / "Please call me back tomorrow."
The digits are a clip of their own, so where they are is known to the sample
(`PlantedRecording.digits`), whatever the recogniser's word timings say.
"""

from __future__ import annotations

import subprocess
import sys
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from live_server import ROOT, Server, role_keys, wait_job

from convolens.enrich.registry import DEFAULT_COMPONENTS
from convolens.speech.decode import decode_audio

ESPEAK = Path("/usr/bin/espeak-ng")
RATE = 16000
REAL_TURN = ROOT / "tests" / "data" / "audio" / "mono_call.flac"
# tests/data/audio/README.md: turn 1 (customer) of mono_call.flac is 4.996750-9.043625 s.
REAL_SPAN = (4.9, 9.2)
DIGITS_TEXT = "415, 555, 0134."
DIGIT_RUNS = ("415", "555", "0134")


@dataclass
class PlantedRecording:
    path: Path
    digits: tuple[float, float]  # seconds: where the spoken number is
    real_speech: tuple[float, float]  # seconds: the real customer turn


def _spoken(text: str, folder: Path, name: str) -> np.ndarray:
    if not ESPEAK.exists():
        raise RuntimeError(f"{ESPEAK} is missing: apt-get install espeak-ng")
    out = folder / f"{name}.wav"
    subprocess.run(
        [str(ESPEAK), "-v", "en-us+m3", "-s", "140", "-w", str(out), text],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    samples = decode_audio(out).channels[0]
    voiced = np.flatnonzero(np.abs(samples) > 1e-3)
    return samples[voiced[0] : voiced[-1] + 1]  # trimmed: the clip is the speech


def planted_recording(folder: Path) -> PlantedRecording:
    """Writes planted.wav (16 kHz mono 16-bit) into `folder`."""
    real = decode_audio(REAL_TURN).channels[0]
    turn = real[int(REAL_SPAN[0] * RATE) : int(REAL_SPAN[1] * RATE)]
    intro = _spoken("Thanks. My phone number is", folder, "intro")
    digits = _spoken(DIGITS_TEXT, folder, "digits")
    outro = _spoken("Please call me back tomorrow.", folder, "outro")

    def pause(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * RATE), np.float32)

    # 1.5 s after the real turn: longer than a pause within one utterance (1.0 s).
    parts = [pause(0.5), turn, pause(1.5), intro, pause(0.3), digits, pause(0.5), outro]
    parts.append(pause(0.5))
    digits_at = sum(len(p) for p in parts[:5]) / RATE
    samples = np.concatenate(parts)
    path = folder / "planted.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return PlantedRecording(
        path=path,
        digits=(digits_at, digits_at + len(digits) / RATE),
        real_speech=(0.5, 0.5 + len(turn) / RATE),
    )


@dataclass
class RecordedServer:
    server: Server
    keys: dict[str, str]
    planted: PlantedRecording
    own: str  # the planted recording: uploaded by the agent key, so the agent's own
    other: str  # a recording the admin uploaded (tests/data/audio/call.mp3)


def _upload(server: Server, key: str, path: Path) -> str:
    with server.client(key) as client, path.open("rb") as handle:
        accepted = client.post("/v1/uploads", files={"file": (path.name, handle, "audio/wav")})
        assert accepted.status_code == 202, accepted.text
        return str(accepted.json()["job_id"])


@contextmanager
def recorded_server(folder: Path, *, other: bool = True) -> Iterator[RecordedServer]:
    """A server whose jobs transcribe (tiny.en) and redact (the `pii` component alone of
    the labelling components), with the planted recording uploaded by an agent key and,
    with `other`, a second recording uploaded by the admin."""
    config = folder / "components.toml"
    off = [name for name in DEFAULT_COMPONENTS if name != "pii"]
    config.write_text("".join(f"[components.{name}]\nenabled = false\n" for name in off))
    planted = planted_recording(folder)
    server = Server(folder / "w.duckdb", folder / "server.log", CONVOLENS_CONFIG=str(config))
    server.env["CONVOLENS_PRELOAD"] = "0"
    server.start()
    try:
        keys = role_keys(server)
        jobs = {"own": _upload(server, keys["agent"], planted.path)}
        if other:
            jobs["other"] = _upload(server, keys["admin"], ROOT / "tests/data/audio/call.mp3")
        ids: dict[str, str] = {}
        with server.client() as admin:
            for name, job_id in jobs.items():
                job = wait_job(admin, job_id, timeout=400)
                assert job["status"] == "completed", job
                ids[name] = job["result"]["conversation_ids"][0]
        yield RecordedServer(server, keys, planted, ids["own"], ids.get("other", ""))
    finally:
        server.stop()
