"""Diarization error rate of the two diarizers side by side, on real and synthetic calls.

    .venv/bin/python eval/diarization_der.py [--data PATH] [--synthetic PATH] [--repeat 1]
                                             [--only NAME ...] [--target 0.15]

Systems (both behind the `Diarizer` protocol):
- resemblyzer: ClusteringDiarizer (silero VAD, resemblyzer GE2E windows, spectral
  clustering) -- the light fallback;
- segmentation: SegmentationDiarizer (pyannote segmentation-3.0 speech/overlap activity,
  CAM++ embeddings, spectral clustering, overlap given to a second speaker) -- the default.

Files: `two_speakers_sample.wav/.rttm` from ../shared/data/audio, and the seeded two-speaker
calls of eval/synthetic_calls.py (built into --synthetic when missing: espeak-ng voice
pairs from male/female to same-timbre, and a real-voice call, a LibriSpeech reader against
JFK). Each file is decoded as the pipeline decodes it and diarized with the known count
(the call default) and with the count estimated.

The segmentation diarizer also runs "at most 2": what a call gets when nobody gives the
count (one voice, a voicemail, or two).

DER is pyannote.metrics' DiarizationErrorRate over the whole file, at collar 0.25 s
(pyannote's convention: the total width forgiven around reference boundaries) and 0;
overlapped reference speech is scored. Components are shares of the reference speech;
"pooled" sums the error seconds of all files. Speed: wall-clock and CPU seconds of the
warm diarizer call per second of audio, with the load average at the time, since the
evaluation box is shared.

Exit status 1 when the segmentation diarizer's known-count pooled DER (collar 0.25) on the
files is above --target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate

from convolens.speech.decode import decode_audio
from convolens.speech.types import Diarizer, SpeakerTurn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "audio"
SYNTHETIC = ROOT / ".cache" / "synthetic_calls"
COMPONENTS = ("missed detection", "false alarm", "confusion")


def load_rttm(path: Path) -> Annotation:
    reference = Annotation(uri=path.stem)
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, length = float(parts[3]), float(parts[4])
            reference[Segment(start, start + length)] = parts[7]
    return reference


def to_annotation(turns: list[SpeakerTurn], uri: str) -> Annotation:
    hypothesis = Annotation(uri=uri)
    for index, turn in enumerate(turns):
        hypothesis[Segment(turn.start, turn.end), str(index)] = turn.speaker
    return hypothesis


def details(reference: Annotation, turns: list[SpeakerTurn], duration: float, collar: float):
    metric = DiarizationErrorRate(collar=collar)
    return metric(
        reference,
        to_annotation(turns, reference.uri or ""),
        uem=Segment(0, duration),
        detailed=True,
    )


def score(reference: Annotation, turns: list[SpeakerTurn], duration: float) -> list[str]:
    """One printed line per collar: DER and its components as shares of reference speech."""
    lines = []
    for collar in (0.25, 0.0):
        d = details(reference, turns, duration, collar)
        total = d["total"]
        lines.append(
            f"    collar {collar:4.2f}: DER {d['diarization error rate']:6.1%}"
            f"  (missed {d['missed detection'] / total:5.1%},"
            f" false alarm {d['false alarm'] / total:5.1%},"
            f" confusion {d['confusion'] / total:5.1%})"
        )
    return lines


def systems() -> dict[str, Callable[[], Diarizer]]:
    from convolens.speech.diarize import ClusteringDiarizer
    from convolens.speech.neural_diarize import SegmentationDiarizer

    return {"resemblyzer": ClusteringDiarizer, "segmentation": SegmentationDiarizer}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--synthetic", type=Path, default=SYNTHETIC)
    parser.add_argument("--repeat", type=int, default=1, help="warm runs timed per setting")
    parser.add_argument("--only", nargs="*", help="file names (stems) to run")
    parser.add_argument("--target", type=float, default=0.15, help="pooled DER bound, c0.25")
    parser.add_argument(
        "--systems", nargs="*", default=["resemblyzer", "segmentation"], help="which to run"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress in logs

    files = [args.data / "two_speakers_sample.wav"]
    if not (args.synthetic / "real_reader_jfk.wav").is_file():
        from synthetic_calls import build  # type: ignore[import-not-found]

        build(args.synthetic, 0)
    files += sorted(args.synthetic.glob("*.wav"))
    if args.only:
        files = [f for f in files if f.stem in args.only]
    loaded = []
    for wav in files:
        audio = decode_audio(wav, mono=True).channels[0]
        loaded.append((wav.stem, audio, load_rttm(wav.with_suffix(".rttm"))))
    print(f"cpus={os.cpu_count()}  load average at start {os.getloadavg()[0]:.1f}")

    pooled: dict[tuple[str, str, float], dict[str, float]] = {}
    count_errors: dict[tuple[str, str], int] = {}
    speed: dict[str, list[float]] = {}
    for system, factory in systems().items():
        if system not in args.systems:
            continue
        diarizer = factory()
        started = time.perf_counter()
        diarizer(loaded[0][1], 16000, num_speakers=2)
        print(f"\n== {system}: first call (loads models) {time.perf_counter() - started:.1f} s")
        for name, audio, reference in loaded:
            duration = audio.size / 16000
            known = len(reference.labels())
            modes: list[tuple[str, int | None, int | None]] = [
                ("known", known, None),
                ("estimated", None, None),
            ]
            if system == "segmentation":
                # What a call gets when nobody gives the count: one voice or two.
                modes.append(("at most 2", None, 2))
            for mode, count, bound in modes:
                wall, cpu = [], []
                turns: list[SpeakerTurn] = []
                call: Any = diarizer
                for _ in range(max(1, args.repeat)):
                    t0, c0 = time.perf_counter(), time.process_time()
                    if bound is None:
                        turns = call(audio, 16000, num_speakers=count)
                    else:
                        turns = call(audio, 16000, num_speakers=count, max_speakers=bound)
                    wall.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                found = len({t.speaker for t in turns})
                count_errors[(system, mode)] = count_errors.get((system, mode), 0) + (
                    found != known
                )
                speed.setdefault(system, []).extend([duration, min(wall), min(cpu)])
                print(
                    f"  {name} ({duration:.0f} s, {known} spk) {mode}: {found} found;"
                    f" {duration / min(wall):.1f}x real time wall, {duration / min(cpu):.1f}x"
                    f" per CPU-second; load {os.getloadavg()[0]:.1f}"
                )
                print("\n".join(score(reference, turns, duration)))
                for collar in (0.25, 0.0):
                    d = details(reference, turns, duration, collar)
                    sums = pooled.setdefault((system, mode, collar), {})
                    for key in ("total", *COMPONENTS):
                        sums[key] = sums.get(key, 0.0) + d[key]

    print("\n== pooled over", ", ".join(name for name, _, _ in loaded))
    for (system, mode, collar), sums in pooled.items():
        total = sums["total"]
        errors = sum(sums[k] for k in COMPONENTS)
        print(
            f"  {system:12s} {mode:9s} collar {collar:4.2f}: DER {errors / total:6.1%}"
            f" (missed {sums['missed detection'] / total:5.1%},"
            f" false alarm {sums['false alarm'] / total:5.1%},"
            f" confusion {sums['confusion'] / total:5.1%})"
        )
    for (system, mode), errors in count_errors.items():
        print(f"  speaker-count errors {system} {mode}: {errors}/{len(loaded)} files")
    print("  (speaker counts on single-speaker files: tests/speech/test_neural_diarize.py)")
    for system, values in speed.items():
        audio_s, wall_s, cpu_s = sum(values[0::3]), sum(values[1::3]), sum(values[2::3])
        print(
            f"  speed {system}: {audio_s / wall_s:.1f}x real time wall,"
            f" {audio_s / cpu_s:.1f}x per CPU-second (2 cores: ~{2 * audio_s / cpu_s:.0f}x if idle)"
        )
    print(f"  load average at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    if ("segmentation", "known", 0.25) not in pooled:
        return 0
    sums = pooled[("segmentation", "known", 0.25)]
    der = sum(sums[k] for k in COMPONENTS) / sums["total"]
    ok = der <= args.target
    print(f"\nsegmentation known-count pooled DER (c0.25) {der:.1%} vs target {args.target:.0%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
