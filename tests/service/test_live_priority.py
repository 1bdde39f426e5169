"""Live streams before batch jobs (engine/priority.py) on the real server: a stream's
finals arrive while a recording is being transcribed, and the job still finishes (batch
work yields to live work; it is not stopped). The stream is a mono two-speaker call, so
the same run shows the server's incremental diarization through the SDK. Timing belongs
to benchmarks/live_bench.py."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from live_server import ADMIN_KEY, ROOT, unlabelled_server

from convolens.client import Client, StreamEvent
from convolens.client.stream import apply_revision

SHARED = ROOT.parent / "shared" / "data" / "audio"
FRAME_MS = 100


def long_recording(path: Path) -> Path:
    """The shared two-speaker sample three times over (90 s): a job that takes a while."""
    from convolens.speech.decode import decode_audio

    mono = decode_audio(SHARED / "two_speakers_sample.wav", mono=True).channels[0]
    pcm = (np.clip(np.tile(mono, 3), -1, 1) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm)
    return path


def conversation_frames() -> list[bytes]:
    """Four single-voice turns of the two-speaker sample with 1 s of silence between
    (tests/realtime/test_live_diarize.py): a mono call the server separates as it goes."""
    from convolens.speech.decode import decode_audio

    mono = decode_audio(SHARED / "two_speakers_sample.wav", mono=True).channels[0]
    silence = np.zeros(16000, dtype=np.float32)
    parts = [silence]
    for start, end in [(10.57, 14.49), (7.55, 8.32), (21.9, 27.8), (18.6, 21.45)]:
        parts += [mono[int(start * 16000) : int(end * 16000)], silence]
    pcm = (np.clip(np.concatenate(parts), -1, 1) * 32767).astype("<i2").tobytes()
    step = 16000 * FRAME_MS // 1000 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def paced(frames: list[bytes]) -> Iterator[bytes]:
    start = time.perf_counter()
    for index, frame in enumerate(frames):
        time.sleep(max(0.0, start + (index + 1) * FRAME_MS / 1000 - time.perf_counter()))
        yield frame


def test_a_live_final_arrives_while_a_batch_job_runs_and_the_job_finishes(
    tmp_path: Path,
) -> None:
    recording = long_recording(tmp_path / "meeting.wav")
    with unlabelled_server(tmp_path) as server, Client(server.url, api_key=ADMIN_KEY) as api:
        job = api.upload(recording, metadata={"channel": "meeting"})
        deadline = time.monotonic() + 120
        while api.job(job).status != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert api.job(job).status == "running"
        finals: dict[str, StreamEvent] = {}
        during, revised = [], []
        latest: dict[str, str] = {}  # utterance id -> speaker id of its latest revision
        for event in api.stream({"channels": 1, "insights": []}, paced(conversation_frames())):
            if event.type == "transcript.final":
                finals[str(event.utterance_id)] = event
                during.append(api.job(job).status)
            elif event.type == "speaker.revision":
                revised += apply_revision(finals, event)
                latest |= {u["utterance_id"]: u["participant_id"] for u in event.utterances}
        text = " ".join(getattr(f, "text", "") for f in finals.values()).lower()
        assert "new jersey" in text and "yankee" in text
        # The batch job was still at work when the live finals came ...
        assert during[0] == "running", during
        # ... the server separated the two voices as they came, revising an early turn
        # (the SDK applies the revision to the finals it kept) ...
        assert {getattr(f, "participant_id", None) for f in finals.values()} == {"spk1", "spk2"}
        assert revised and {u: getattr(finals[u], "participant_id", None) for u in revised} == {
            u: latest[u] for u in revised
        }
        # ... and the job was only held back, never stopped: it completes.
        done = api.wait(job, timeout=600)
        assert done.status == "completed" and done.result["conversations"] == 1
