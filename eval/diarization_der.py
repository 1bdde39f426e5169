"""Diarization error rate of ClusteringDiarizer on a recording with a reference RTTM.

    .venv/bin/python eval/diarization_der.py [--data PATH] [--name two_speakers_sample]
                                             [--repeat 3]

Data (default ../shared/data/audio beside the repository): `<name>.wav` and `<name>.rttm`.
The audio is decoded with `convolens.speech.decode.decode_audio(mono=True)` (what the
pipeline gets) and diarized with the default ClusteringDiarizer (silero VAD, resemblyzer,
spectral clustering) twice: with the known speaker count from the RTTM and with the count
estimated (num_speakers=None). For comparison, the single-speaker baseline labels all of the
diarizer's speech as one speaker (num_speakers=1: the same VAD, no clustering).

DER is pyannote.metrics' DiarizationErrorRate over the whole file (uem = 0..duration), at
collar 0.25 s (the usual forgiveness at reference boundaries) and 0; overlapped reference
speech is scored, so a one-label-per-frame diarizer misses the second speaker there. Each
component is reported as a share of the reference speech.

Timings: the first call (model load, numba JIT) is reported on its own; the real-time
factor is the median of --repeat warm runs (processing seconds / audio seconds).

Exit status 1 when the known-count DER at collar 0.25 is above --target (default 0.20).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate

from convolens.speech.decode import decode_audio
from convolens.speech.diarize import ClusteringDiarizer
from convolens.speech.types import SpeakerTurn

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"


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
    for turn in turns:
        hypothesis[Segment(turn.start, turn.end)] = turn.speaker
    return hypothesis


def score(reference: Annotation, turns: list[SpeakerTurn], duration: float) -> list[str]:
    """One printed line per collar: DER and its components as shares of reference speech."""
    hypothesis = to_annotation(turns, reference.uri or "")
    lines = []
    for collar in (0.25, 0.0):
        metric = DiarizationErrorRate(collar=collar)
        d = metric(reference, hypothesis, uem=Segment(0.0, duration), detailed=True)
        total = d["total"]
        lines.append(
            f"  collar {collar:4.2f}: DER {d['diarization error rate']:6.1%}"
            f"  (missed {d['missed detection'] / total:5.1%},"
            f" false alarm {d['false alarm'] / total:5.1%},"
            f" confusion {d['confusion'] / total:5.1%};"
            f" {total:.2f} s scored speech)"
        )
    return lines


def der_at(reference: Annotation, turns: list[SpeakerTurn], duration: float, collar: float):
    metric = DiarizationErrorRate(collar=collar)
    return metric(reference, to_annotation(turns, ""), uem=Segment(0.0, duration))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with <name>.wav/.rttm")
    parser.add_argument("--name", default="two_speakers_sample")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs timed per setting")
    parser.add_argument("--target", type=float, default=0.20, help="DER bound, collar 0.25")
    args = parser.parse_args()

    wav, rttm = args.data / f"{args.name}.wav", args.data / f"{args.name}.rttm"
    if not (wav.is_file() and rttm.is_file()):
        print(f"missing {wav} or {rttm}", file=sys.stderr)
        return 2
    reference = load_rttm(rttm)
    audio = decode_audio(wav, mono=True).channels[0]
    duration = audio.size / 16000
    known = len(reference.labels())
    print(f"{wav.name}: {duration:.1f} s, {known} reference speakers, cpus={os.cpu_count()}")

    diarizer = ClusteringDiarizer()
    started = time.perf_counter()
    diarizer(audio, 16000, num_speakers=known)
    print(
        f"first call (loads silero + resemblyzer, numba JIT): {time.perf_counter() - started:.2f} s"
    )
    print(
        f"settings: window {diarizer.window_s} s, step {diarizer.step_s} s, "
        f"prune {diarizer.prune}, VAD min silence 500 ms, pad 200 ms"
    )

    known_der = 1.0
    for label, count in (
        (f"known count ({known})", known),
        ("estimated count", None),
        ("single-speaker baseline", 1),
    ):
        seconds = []
        turns: list[SpeakerTurn] = []
        for _ in range(max(1, args.repeat)):
            started = time.perf_counter()
            turns = diarizer(audio, 16000, num_speakers=count)
            seconds.append(time.perf_counter() - started)
        found = len({t.speaker for t in turns})
        rtf = statistics.median(seconds) / duration
        print(f"\n{label}: {found} speakers, {len(turns)} turns, RTF {rtf:.3f} ({1 / rtf:.0f}x)")
        print("\n".join(score(reference, turns, duration)))
        if count == known:
            known_der = der_at(reference, turns, duration, 0.25)

    ok = known_der <= args.target
    print(
        f"\nknown-count DER (collar 0.25) {known_der:.1%} vs target {args.target:.0%}: "
        f"{'ok' if ok else 'ABOVE TARGET'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
