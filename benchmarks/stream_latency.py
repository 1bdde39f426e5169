"""Realtime latency over loopback: recordings streamed at real-time pace to `WS /v1/stream`.

    python benchmarks/stream_latency.py [--concurrent 1] [--frame-ms 100] [--url URL --key KEY]

Starts `convolens serve` in a subprocess on a fresh warehouse (or uses `--url`), waits
until its models are loaded (`/v1/health` ready), then streams real recordings through the
SDK as a live source would: 100 ms PCM16 frames, each sent once its audio has been
"recorded" (the sender's clock starts with the first frame). Recordings: the example
support call (stereo, agent and customer on their own channels) and the synthetic stereo
and mono calls of the speech tests.

For every final transcript, latency = its arrival at the client minus the moment the frame
holding the utterance's last word was sent (t0 + ceil(end / frame) x frame); for the
first insight the same, with the next event about the same utterance. Utterances still
open when the audio ends are left out: they are final at `stop`, not at an endpoint.
Prints p50/p95 per recording and overall against the target (p95 <= 800 ms on 2 cores);
`--concurrent N` streams N copies of each recording at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from api_load import ADMIN_KEY, ROOT, Server

from convolens.client import AsyncClient, Client, StreamEvent
from convolens.client.stream import file_frames

TARGET_P95_MS = 800.0
RECORDINGS = [
    (
        ROOT / "examples" / "recordings" / "call-20261117-0031.flac",
        [
            {"name": "Leo Martin", "role": "agent", "channel": 0},
            {"name": "Maria Lopez", "role": "customer", "channel": 1},
        ],
    ),
    (
        ROOT / "tests" / "data" / "audio" / "stereo_call.wav",
        [
            {"name": "Agent", "role": "agent", "channel": 0},
            {"name": "Customer", "role": "customer", "channel": 1},
        ],
    ),
    (ROOT / "tests" / "data" / "audio" / "mono_call.flac", []),
]


@dataclass
class StreamRun:
    name: str
    events: list[StreamEvent] = field(default_factory=list)
    t0: float = 0.0
    audio_s: float = 0.0
    error: str | None = None
    to_final: list[float] = field(default_factory=list)
    to_insight: list[float] = field(default_factory=list)

    def measure(self, frame_s: float) -> None:
        finals = [e for e in self.events if e.type == "transcript.final"]
        for final in finals:
            end = float(getattr(final, "end", 0.0) or 0.0)
            if end > self.audio_s - 1.0:
                continue  # closed by stop, not by the endpoint
            sent = self.t0 + np.ceil(end / frame_s - 1e-9) * frame_s
            self.to_final.append(float(final.received_at or 0.0) - sent)
            nxt = next(
                (
                    e
                    for e in self.events
                    if e.seq > final.seq and e.utterance_id == final.utterance_id
                ),
                None,
            )
            if nxt is not None:
                self.to_insight.append(float(nxt.received_at or 0.0) - sent)


async def stream_recording(
    url: str, key: str, path: Path, speakers: list[dict[str, object]], frame_ms: int, tag: str
) -> StreamRun:
    """One recording at real-time pace through the async SDK; every event kept."""
    shape, frames = await asyncio.to_thread(file_frames, path, frame_ms)
    run = StreamRun(name=f"{path.name}{tag}")
    run.audio_s = len(frames) * frame_ms / 1000  # the last frame may be short: close enough

    async def recorded() -> AsyncIterator[bytes]:
        run.t0 = time.perf_counter()
        for index, frame in enumerate(frames):
            await asyncio.sleep(
                max(0.0, run.t0 + (index + 1) * frame_ms / 1000 - time.perf_counter())
            )
            yield frame

    try:
        async with AsyncClient(url, key) as api:
            async for event in api.stream(
                None,
                recorded(),
                speakers=speakers,
                language="en",
                source_id=f"bench-{path.stem}{tag}-{time.time_ns()}",
                **shape,
            ):
                run.events.append(event)
    except Exception as exc:  # reported, counted as an error
        run.error = f"{type(exc).__name__}: {exc}"
    if not run.events or run.events[-1].type != "stored":
        run.error = run.error or "the stream did not end with a stored event"
    errors = [e for e in run.events if e.type == "error"]
    if errors and not run.error:
        run.error = f"{len(errors)} error event(s): {getattr(errors[0], 'message', '')}"
    run.measure(frame_ms / 1000)
    return run


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


async def run_all(url: str, key: str, frame_ms: int, concurrent: int) -> list[StreamRun]:
    runs: list[StreamRun] = []
    for path, speakers in RECORDINGS:
        batch = [
            stream_recording(url, key, path, speakers, frame_ms, f"#{i}" if concurrent > 1 else "")
            for i in range(concurrent)
        ]
        runs += await asyncio.gather(*batch)
    return runs


def report(runs: list[StreamRun], concurrent: int) -> int:
    head = f"{'finals':>6} {'final p50':>10} {'p95':>7} {'insight p50':>12} {'p95':>7}"
    print(f"\n{'recording':34} {head}")
    for run in runs:
        print(
            f"{run.name:34} {len(run.to_final):>6} {pct(run.to_final, 50):>8.0f}ms "
            f"{pct(run.to_final, 95):>5.0f}ms {pct(run.to_insight, 50):>10.0f}ms "
            f"{pct(run.to_insight, 95):>5.0f}ms" + (f"  ERROR {run.error}" if run.error else "")
        )
    finals = [x for r in runs for x in r.to_final]
    insights = [x for r in runs for x in r.to_insight]
    p95 = pct(finals, 95)
    print(
        f"\nall ({len(finals)} utterances, {concurrent} stream(s) at a time): end -> final "
        f"p50 {pct(finals, 50):.0f} ms, p95 {p95:.0f} ms; end -> first insight "
        f"p50 {pct(insights, 50):.0f} ms, p95 {pct(insights, 95):.0f} ms"
    )
    verdict = "met" if p95 <= TARGET_P95_MS else "NOT met"
    print(f"target: p95 end -> final <= {TARGET_P95_MS:.0f} ms: {verdict} "
          f"({p95 / TARGET_P95_MS:.2f}x the target)")  # fmt: skip
    errors = [r for r in runs if r.error]
    print(f"errors: {len(errors)}")
    return 1 if errors else 0


def wait_ready(url: str, key: str, timeout: float = 600.0) -> float:
    t0 = time.perf_counter()
    with Client(url, key) as api:
        while not api.health().get("ready", True):
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the server's models did not load")
            time.sleep(0.5)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=1, help="Copies of each stream at once.")
    parser.add_argument("--frame-ms", type=int, default=100, help="Audio per binary frame.")
    parser.add_argument("--url", help="A running server (else one is started).")
    parser.add_argument("--key", default=ADMIN_KEY, help="API key for --url.")
    args = parser.parse_args()
    if args.url:
        wait_ready(args.url, args.key)
        return report(
            asyncio.run(run_all(args.url, args.key, args.frame_ms, args.concurrent)),
            args.concurrent,
        )
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "stream.duckdb", Path(tmp) / "server.log", workers=1)
        server.start()
        try:
            print(
                f"server {server.url}: models loaded in {wait_ready(server.url, ADMIN_KEY):.1f} s"
            )
            runs = asyncio.run(run_all(server.url, ADMIN_KEY, args.frame_ms, args.concurrent))
            return report(runs, args.concurrent)
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
