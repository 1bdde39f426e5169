"""Live under load: end of speech -> final transcript while a batch transcription job runs,
with live priority on and off, for 1 and 5 concurrent live streams, in one run.

    python benchmarks/live_bench.py [--streams 1,5] [--batch-model base] [--batch-seconds 120]
                                    [--quick]

For each mode (CONVOLENS_LIVE_PRIORITY=1, then 0) a fresh `convolens serve` starts on
localhost (labelling components off, so a job is transcription + diarization + metrics;
one job worker) and loads its models. Then, for each stream count: a batch job
(the shared two-speaker sample tiled to `--batch-seconds`, mono, transcribed with
`--batch-model`) is uploaded and kept going (a new one as soon as one completes) while
N live streams send real recordings of ../shared/data/audio (mono, 100 ms PCM16 frames,
each sent once its audio has been "recorded") over WebSocket through the SDK. Mono
streams are diarized live (the server's default).

Latency of a final = its arrival at the client minus the moment the frame holding its
last word was sent; it includes the endpoint's 500 ms of silence, which is how long a
final must wait by design. Finals closed by `stop` (not by an endpoint) are left out, and
so are finals that arrived when no batch job was running. Printed per mode and stream
count: finals, median, p90, max, and the batch jobs' progress (audio seconds transcribed
per wall second over the jobs that ran during the streams), so "yields, not stops" shows.
Figures depend on what else the machine runs: the load average is printed beside them.
`--quick` checks that everything works (1 stream of 11 s, a 30 s tiny.en batch job).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from convolens.client import Client, StreamEvent
from convolens.enrich.registry import DEFAULT_COMPONENTS
from convolens.service.local import LocalServer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "audio"
ADMIN_KEY = "clk_benchadmin_rDZLdZft2Ot_hW2DRMwYHCoDKec3bX4BMg-cmCdFp80"
FRAME_MS = 100
RATE = 16000
STREAMED = [
    SHARED / "two_speakers_sample.wav",
    SHARED / "jfk.flac",
    SHARED / "librispeech" / "1089-134686-0000.flac",
    SHARED / "librispeech" / "1089-134686-0001.flac",
]


def mono_frames(path: Path) -> list[bytes]:
    from convolens.speech.decode import decode_audio

    samples = decode_audio(path, mono=True).channels[0]
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    step = RATE * FRAME_MS // 1000 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def batch_audio(seconds: float) -> np.ndarray:
    from convolens.speech.decode import decode_audio

    mono = decode_audio(SHARED / "two_speakers_sample.wav", mono=True).channels[0]
    return np.tile(mono, int(np.ceil(seconds * RATE / mono.size)))[: int(seconds * RATE)]


def batch_recording(folder: Path, audio: np.ndarray, number: int) -> Path:
    """A new file per job: the server skips a recording it already holds (same bytes), so
    each copy gets its own faint noise (-80 dBFS, seeded by the job's number)."""
    noise = np.random.default_rng(number).normal(0, 1e-4, audio.size)
    path = folder / f"batch-{number}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(audio + noise, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@dataclass
class Stream:
    path: Path
    frames: list[bytes]
    t0: float = 0.0
    events: list[StreamEvent] = field(default_factory=list)
    error: str | None = None

    def run(self, url: str) -> None:
        def recorded():  # type: ignore[no-untyped-def]
            self.t0 = time.perf_counter()
            for index, frame in enumerate(self.frames):
                time.sleep(max(0.0, self.t0 + (index + 1) * FRAME_MS / 1000 - time.perf_counter()))
                yield frame

        try:
            with Client(url, api_key=ADMIN_KEY, timeout=120) as api:
                for event in api.stream({"channels": 1, "sample_rate": RATE}, recorded()):
                    self.events.append(event)
        except Exception as exc:  # reported beside the figures
            self.error = f"{type(exc).__name__}: {exc}"

    def latencies(self, busy: list[tuple[float, float]]) -> list[float]:
        audio_s = len(self.frames) * FRAME_MS / 1000
        # A diarized utterance holding two voices comes as several finals (`<id>.2` ...),
        # all made when the utterance ends: its latency is its last voice's, measured
        # from the utterance's end (an earlier part's own `end` is not an end of speech).
        last: dict[str, StreamEvent] = {}
        for event in (e for e in self.events if e.type == "transcript.final"):
            base = str(event.utterance_id).rsplit(".", 1)[0]
            ends = float(getattr(event, "end", 0.0) or 0.0)
            if base not in last or ends >= float(getattr(last[base], "end", 0.0) or 0.0):
                last[base] = event
        out = []
        for final in last.values():
            end = float(getattr(final, "end", 0.0) or 0.0)
            if end > audio_s - 1.0:
                continue  # closed by stop, not by the endpoint
            arrived = float(final.received_at or 0.0)
            if not any(a <= arrived <= b for a, b in busy):
                continue  # no batch job was running
            sent = self.t0 + np.ceil(end / (FRAME_MS / 1000) - 1e-9) * FRAME_MS / 1000
            out.append(arrived - sent)
        return out


class BatchLoad:
    """Keeps one batch transcription job running until stopped; records when jobs ran."""

    def __init__(self, url: str, audio: np.ndarray, folder: Path) -> None:
        self.url, self.audio, self.folder = url, audio, folder
        self.seconds = audio.size / RATE
        self.busy: list[tuple[float, float]] = []  # perf_counter spans with a job running
        self.jobs: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.running = threading.Event()

    def __enter__(self) -> BatchLoad:
        self._thread.start()
        if not self.running.wait(300):
            raise TimeoutError("the batch job never started")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(900)

    def _loop(self) -> None:
        with Client(self.url, api_key=ADMIN_KEY, timeout=120) as api:
            while not self._stop.is_set():
                recording = batch_recording(self.folder, self.audio, time.time_ns())
                job = api.upload(recording, metadata={"channel": "meeting"})
                while api.job(job).status == "scheduled":
                    time.sleep(0.1)
                began = time.perf_counter()
                self.running.set()
                done = api.wait(job, timeout=1800, poll=0.2)
                ended = time.perf_counter()
                self.busy.append((began, ended))
                assert done.started_at and done.finished_at
                wall = (
                    datetime.fromisoformat(done.finished_at)
                    - datetime.fromisoformat(done.started_at)
                ).total_seconds()
                self.jobs.append({"wall_s": wall, "audio_s": self.seconds})


def server_for(folder: Path, priority: bool, batch_model: str) -> LocalServer:
    config = folder / "components.toml"
    config.write_text(
        "".join(f"[components.{name}]\nenabled = false\n" for name in DEFAULT_COMPONENTS)
    )
    return LocalServer(
        folder / "live.duckdb",
        folder / "server.log",
        args=["--workers", "1", "--asr-model", batch_model],
        CONVOLENS_ADMIN_KEY=ADMIN_KEY,
        CONVOLENS_CONFIG=str(config),
        CONVOLENS_LIVE_PRIORITY="1" if priority else "0",
    )


def wait_ready(url: str, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    with Client(url, api_key=ADMIN_KEY) as api:
        while not api.health().get("ready", True):
            if time.monotonic() > deadline:
                raise TimeoutError("the server's models did not load")
            time.sleep(0.5)


def one_round(url: str, n: int, audio: np.ndarray, folder: Path, files: list[Path]) -> dict:
    streams = [Stream(files[i % len(files)], mono_frames(files[i % len(files)])) for i in range(n)]
    load = os.getloadavg()[0]
    with BatchLoad(url, audio, folder) as batch:
        threads = [threading.Thread(target=s.run, args=(url,)) for s in streams]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Leaving the block waited for the job in progress: every job's span is known.
    latencies = [x for s in streams for x in s.latencies(batch.busy)]
    audio = sum(j["audio_s"] for j in batch.jobs)
    wall = sum(j["wall_s"] for j in batch.jobs)
    return {
        "streams": n,
        "finals": len(latencies),
        "median": statistics.median(latencies) if latencies else float("nan"),
        "p90": float(np.percentile(latencies, 90)) if latencies else float("nan"),
        "max": max(latencies) if latencies else float("nan"),
        "jobs": len(batch.jobs),
        "batch_x": audio / wall if wall else float("nan"),
        "load": load,
        "errors": [s.error for s in streams if s.error],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,5", help="Concurrent live streams per round.")
    parser.add_argument("--batch-model", default="base", help="Whisper model of the batch job.")
    parser.add_argument("--batch-seconds", type=float, default=120.0, help="Batch audio length.")
    parser.add_argument("--quick", action="store_true", help="A short check that it all works.")
    args = parser.parse_args()
    counts = [int(x) for x in args.streams.split(",")]
    files = STREAMED
    if args.quick:
        counts, files = [1], [SHARED / "jfk.flac"]
        args.batch_model, args.batch_seconds = "tiny.en", 30.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        audio = batch_audio(args.batch_seconds)
        for priority in (True, False):
            folder = Path(tmp) / ("on" if priority else "off")
            folder.mkdir()
            server = server_for(folder, priority, args.batch_model)
            server.start(timeout=300)
            try:
                wait_ready(server.url)
                for n in counts:
                    row = one_round(server.url, n, audio, folder, files)
                    rows.append({"priority": "on" if priority else "off", **row})
                    print(f"  done: priority {rows[-1]['priority']}, {n} stream(s)", flush=True)
            finally:
                server.stop()
    print(
        f"\nend of speech -> final, while a {args.batch_seconds:.0f} s {args.batch_model} "
        "batch transcription runs (same machine, same run)"
    )
    print(
        f"{'priority':8} {'streams':>7} {'finals':>6} {'median':>8} {'p90':>8} {'max':>8} "
        f"{'batch jobs':>10} {'batch x RT':>10} {'load':>5}"
    )
    for r in rows:
        print(
            f"{r['priority']:8} {r['streams']:>7} {r['finals']:>6} {r['median']:>7.2f}s "
            f"{r['p90']:>7.2f}s {r['max']:>7.2f}s {r['jobs']:>10} {r['batch_x']:>10.1f} "
            f"{r['load']:>5.1f}" + (f"  ERRORS {r['errors']}" if r["errors"] else "")
        )
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
