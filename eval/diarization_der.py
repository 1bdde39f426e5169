"""Diarization error rate of the diarizers and of ingest, clean and over a phone line.

    .venv/bin/python eval/diarization_der.py [--data PATH] [--synthetic PATH] [--repeat 1]
                                             [--only NAME ...] [--target 0.15]
                                             [--systems ...] [--conditions clean telephony ...]

Systems (the first two behind the `Diarizer` protocol):
- resemblyzer: ClusteringDiarizer (silero VAD, resemblyzer GE2E windows, spectral
  clustering) -- the light fallback;
- segmentation: SegmentationDiarizer (pyannote segmentation-3.0 speech/overlap activity,
  CAM++ embeddings, spectral clustering, overlap given to a second speaker) -- the default;
- pipeline: what ingest stores with its defaults (`SpeechPipeline(SpeechOptions())`:
  transcription, then the segmentation diarizer with at most 2 speakers for a call), the
  conversation's utterance spans scored as speaker turns; its speed includes the ASR.

Conditions (eval/telephony.py), printed side by side: clean, and telephony (each file as
a mono 8 kHz G.711 mu-law recording after a 300-3400 Hz line) by default; telephony_noise
and telephony_mp3 on request. The references are the clean file's (the line filter delays
speech by a few milliseconds at most).

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
clean files is above --target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate
from telephony import CONDITIONS, DESCRIPTIONS, convert  # type: ignore[import-not-found]

from convolens.speech.decode import decode_audio
from convolens.speech.types import Diarizer, SpeakerTurn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "audio"
SYNTHETIC = ROOT / ".cache" / "synthetic_calls"
COMPONENTS = ("missed detection", "false alarm", "confusion")


@dataclass
class Loaded:
    name: str  # the clean file's stem
    path: Path  # the file as heard under a condition (the clean file itself for "clean")
    audio: np.ndarray  # 16 kHz mono, decoded as the pipeline decodes it
    reference: Annotation


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


def pipeline_turns(pipeline: Any, path: Path) -> list[SpeakerTurn]:
    """What ingest stores for `path` with no sidecar: SpeechPipeline's defaults (channels
    auto, segmentation diarizer, at most 2 speakers for a call), the utterance spans of
    the canonical conversation as speaker turns."""
    from convolens.speech.transcribe import NoSpeechError, to_conversation

    try:
        transcript = pipeline.transcribe(path)
    except NoSpeechError:
        return []
    conversation = to_conversation(transcript, source_id=path.name)
    return [SpeakerTurn(u.start, u.end, u.participant_id) for u in conversation.utterances]


def load_condition(files: list[Path], condition: str) -> list[Loaded]:
    """Each file as it reaches us under `condition` (eval/telephony.py: a mono 8 kHz
    recording), decoded as the pipeline decodes it; references are the clean file's."""
    loaded = []
    for wav in files:
        path = convert(wav, condition, mono=True)
        audio = decode_audio(path, mono=True).channels[0]
        loaded.append(Loaded(wav.stem, path, audio, load_rttm(wav.with_suffix(".rttm"))))
    return loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--synthetic", type=Path, default=SYNTHETIC)
    parser.add_argument("--repeat", type=int, default=1, help="warm runs timed per setting")
    parser.add_argument("--only", nargs="*", help="file names (stems) to run")
    parser.add_argument("--target", type=float, default=0.15, help="pooled DER bound, c0.25")
    parser.add_argument(
        "--systems",
        nargs="*",
        default=["resemblyzer", "segmentation", "pipeline"],
        choices=["resemblyzer", "segmentation", "pipeline"],
        help="which to run; pipeline: ingest defaults (transcription + diarization)",
    )
    parser.add_argument(
        "--conditions",
        nargs="+",
        choices=CONDITIONS,
        default=["clean", "telephony"],
        help="how the audio reaches us (eval/telephony.py)",
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
    by_condition = {condition: load_condition(files, condition) for condition in args.conditions}
    print(f"cpus={os.cpu_count()}  load average at start {os.getloadavg()[0]:.1f}")
    for condition in args.conditions:
        print(f"condition {condition}: {DESCRIPTIONS[condition]}")

    # (system, mode, condition, collar) -> error seconds by component, and "total"
    pooled: dict[tuple[str, str, str, float], dict[str, float]] = {}
    count_errors: dict[tuple[str, str, str], int] = {}
    speed: dict[tuple[str, str], list[float]] = {}
    segmentation: Diarizer | None = None
    factories = systems()
    for system in args.systems:
        started = time.perf_counter()
        call: Any
        if system == "pipeline":
            from convolens.speech.options import SpeechOptions
            from convolens.speech.transcribe import SpeechPipeline

            # The ingest defaults, sharing the segmentation diarizer's loaded models.
            call = SpeechPipeline(SpeechOptions(), diarizer=segmentation)
            call.asr, call.diarizer  # noqa: B018  # load both models before timing
        else:
            call = factories[system]()
            call(by_condition[args.conditions[0]][0].audio, 16000, num_speakers=2)
            if system == "segmentation":
                segmentation = call
        print(f"\n== {system}: first call (loads models) {time.perf_counter() - started:.1f} s")
        modes: list[tuple[str, int | None, int | None]] = [("known", -1, None)]
        if system != "pipeline":
            modes.append(("estimated", None, None))
        if system == "segmentation":
            # What a call gets when nobody gives the count: one voice or two.
            modes.append(("at most 2", None, 2))
        if system == "pipeline":
            modes = [("ingest", None, None)]
        for condition in args.conditions:
            print(f"  -- {condition}")
            for item in by_condition[condition]:
                duration = item.audio.size / 16000
                known = len(item.reference.labels())
                for mode, count, bound in modes:
                    count = known if count == -1 else count
                    wall, cpu = [], []
                    turns: list[SpeakerTurn] = []
                    for _ in range(max(1, args.repeat)):
                        t0, c0 = time.perf_counter(), time.process_time()
                        if system == "pipeline":
                            turns = pipeline_turns(call, item.path)
                        elif bound is None:
                            turns = call(item.audio, 16000, num_speakers=count)
                        else:
                            turns = call(item.audio, 16000, num_speakers=count, max_speakers=bound)
                        wall.append(time.perf_counter() - t0)
                        cpu.append(time.process_time() - c0)
                    found = len({t.speaker for t in turns})
                    key = (system, mode, condition)
                    count_errors[key] = count_errors.get(key, 0) + (found != known)
                    speed.setdefault((system, condition), []).extend(
                        [duration, min(wall), min(cpu)]
                    )
                    print(
                        f"  {item.name} ({duration:.0f} s, {known} spk) {mode}: {found} found;"
                        f" {duration / min(wall):.1f}x real time wall,"
                        f" {duration / min(cpu):.1f}x per CPU-second;"
                        f" load {os.getloadavg()[0]:.1f}"
                    )
                    print("\n".join(score(item.reference, turns, duration)))
                    for collar in (0.25, 0.0):
                        d = details(item.reference, turns, duration, collar)
                        sums = pooled.setdefault((system, mode, condition, collar), {})
                        for component in ("total", *COMPONENTS):
                            sums[component] = sums.get(component, 0.0) + d[component]

    names = ", ".join(item.name for item in by_condition[args.conditions[0]])
    print(f"\n== pooled over {names}")
    print("   DER (missed / false alarm / confusion), shares of reference speech")
    settings = list(dict.fromkeys((s, m, c) for s, m, _, c in pooled))
    head = "".join(f" | {condition:<33}" for condition in args.conditions)
    print(f"  {'system':12s} {'mode':9s} {'collar':6s}{head}")
    for system, mode, collar in settings:
        cells = []
        for condition in args.conditions:
            sums = pooled[(system, mode, condition, collar)]
            total = sums["total"]
            errors = sum(sums[k] for k in COMPONENTS)
            cells.append(
                f"{errors / total:6.1%} ({sums['missed detection'] / total:4.1%} /"
                f" {sums['false alarm'] / total:4.1%} / {sums['confusion'] / total:4.1%})"
            )
        print(f"  {system:12s} {mode:9s} {collar:6.2f}" + "".join(f" | {c:<33}" for c in cells))
    files_n = len(by_condition[args.conditions[0]])
    for (system, mode, condition), errors in count_errors.items():
        print(f"  speaker-count errors {system} {mode} {condition}: {errors}/{files_n} files")
    print("  (speaker counts on single-speaker files: tests/speech/test_neural_diarize.py)")
    for (system, condition), values in speed.items():
        audio_s, wall_s, cpu_s = sum(values[0::3]), sum(values[1::3]), sum(values[2::3])
        what = " (ASR + diarization)" if system == "pipeline" else ""
        print(
            f"  speed {system}{what} {condition}: {audio_s / wall_s:.1f}x real time wall"
            f" (RTF {wall_s / audio_s:.3f}), {audio_s / cpu_s:.1f}x per CPU-second"
            f" (2 cores: ~{2 * audio_s / cpu_s:.0f}x if idle)"
        )
    print(f"  load average at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    if ("segmentation", "known", "clean", 0.25) not in pooled:
        return 0
    sums = pooled[("segmentation", "known", "clean", 0.25)]
    der = sum(sums[k] for k in COMPONENTS) / sums["total"]
    ok = der <= args.target
    print(
        f"\nsegmentation known-count pooled DER (c0.25, clean) {der:.1%}"
        f" vs target {args.target:.0%}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
