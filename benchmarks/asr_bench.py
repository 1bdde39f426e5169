"""Speech throughput: raw faster-whisper against the convolens pipeline, same model and audio.

    .venv/bin/python benchmarks/asr_bench.py [--model base] [--minutes 10] [--clip-minutes M]
        [--repeat N] [--batch-size 8]

Builds a test recording from real speech on disk (two_speakers_sample.wav, jfk.flac, the
LibriSpeech utterances of ../shared/data/audio and tests/data/audio/mono_call.flac), repeated
with 0.6 s silences up to --minutes at 16 kHz mono, written to a temporary WAV that every
path reads. Then, in this process, after one warm-up call per model on jfk.flac (load times
reported apart):

1. raw faster-whisper: `WhisperModel(dir, device="cpu", compute_type="int8")`,
   `transcribe(wav, beam_size=1, word_timestamps=True, vad_filter=True)`;
2. the convolens pipeline, ASR only: `SpeechPipeline(channels="mono", num_speakers=1,
   diarize=False)` with its own `FasterWhisperAsr` (target: >= 0.95x raw's speed);
3. the full pipeline: ASR + `ClusteringDiarizer` (num_speakers=2) + `to_conversation` +
   `metrics_for_conversation` (target: >= 6x real time on 2 cores);
4. batched ASR (`FasterWhisperAsr(batch_size=8)`) against sequential on the whole file
   (target: batched >= 1.8x sequential).

(1)-(3) use the first --clip-minutes of the file (default: all of it); with --repeat N, (1)
and (2) run N times alternated, batched (4) N times, and the fastest of each is compared
(the machine is shared).
Real-time factor (RTF) = audio seconds / wall seconds. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba-cache")

import jiwer
import numpy as np
import numpy.typing as npt

from convolens.metrics import metrics_for_conversation
from convolens.speech.asr import FasterWhisperAsr
from convolens.speech.decode import SAMPLE_RATE, decode_audio
from convolens.speech.models import resolve_whisper_model
from convolens.speech.options import SpeechOptions
from convolens.speech.transcribe import (
    MediaTranscript,
    SpeechPipeline,
    join_words,
    to_conversation,
)
from convolens.speech.types import AsrResult, AudioArray, Diarizer, SpeakerTurn

# The WER normaliser is the evaluation's own, so both scripts score words alike.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from asr_wer import NORMALISE

ROOT = Path(__file__).resolve().parents[1]
SHARED_AUDIO = ROOT.parent / "shared" / "data" / "audio"
SOURCES = [
    SHARED_AUDIO / "two_speakers_sample.wav",
    SHARED_AUDIO / "jfk.flac",
    *sorted((SHARED_AUDIO / "librispeech").glob("*.flac")),
    ROOT / "tests" / "data" / "audio" / "mono_call.flac",
]
WARMUP = SHARED_AUDIO / "jfk.flac"
DIARIZE_WARMUP = SHARED_AUDIO / "two_speakers_sample.wav"
GAP_S = 0.6

TARGET_ASR_VS_RAW = 0.95
TARGET_FULL_RTF = 6.0
TARGET_BATCHED_VS_SEQUENTIAL = 1.8


@dataclass
class Run:
    label: str
    audio_s: float
    wall_s: float
    words: int
    text: str

    @property
    def rtf(self) -> float:
        return self.audio_s / self.wall_s


class TimedDiarizer:
    """Wraps a Diarizer to add up the seconds spent in it (implements Diarizer)."""

    def __init__(self, inner: Diarizer) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __call__(
        self, audio: AudioArray, sample_rate: int = 16000, num_speakers: int | None = None
    ) -> list[SpeakerTurn]:
        started = time.perf_counter()
        try:
            return self.inner(audio, sample_rate, num_speakers)
        finally:
            self.seconds += time.perf_counter() - started


class TimedAsr:
    """Wraps FasterWhisperAsr to add up the seconds spent recognising (implements AsrBackend)."""

    def __init__(self, inner: FasterWhisperAsr) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.seconds = 0.0

    def transcribe(self, audio: AudioArray, *, language: str | None = None) -> AsrResult:
        started = time.perf_counter()
        try:
            return self.inner.transcribe(audio, language=language)
        finally:
            self.seconds += time.perf_counter() - started


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def build_audio(minutes: float) -> tuple[npt.NDArray[np.float32], list[str]]:
    """Real speech, the sources in turn with short silences, cut to `minutes`."""
    pieces = []
    used = []
    for path in SOURCES:
        if path.exists():
            pieces.append(decode_audio(path, mono=True).mono)
            used.append(f"{path.name} ({pieces[-1].size / SAMPLE_RATE:.1f} s)")
    if not pieces:
        raise SystemExit("no source audio found; expected " + ", ".join(map(str, SOURCES)))
    gap = np.zeros(round(GAP_S * SAMPLE_RATE), dtype=np.float32)
    target = round(minutes * 60 * SAMPLE_RATE)
    out: list[npt.NDArray[np.float32]] = []
    total = 0
    while total < target:
        for piece in pieces:
            out += [piece, gap]
            total += piece.size + gap.size
            if total >= target:
                break
    return np.concatenate(out)[:target], used


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(pcm.tobytes())


def timed(label: str, audio_s: float, call: Callable[[], str]) -> Run:
    started = time.perf_counter()
    text = call()
    wall = time.perf_counter() - started
    run = Run(label, audio_s, wall, len(text.split()), text)
    print(
        f"  {label:47} {audio_s:6.1f} s audio {wall:8.2f} s wall  RTF {run.rtf:6.2f}x  "
        f"{run.words:5} words  peak RSS {peak_rss_mib():5.0f} MiB"
    )
    return run


def raw_transcribe(model: Any, path: Path) -> str:
    segments, _info = model.transcribe(
        str(path), beam_size=1, word_timestamps=True, vad_filter=True
    )
    return " ".join(segment.text.strip() for segment in segments)  # consumes the generator


def transcript_text(transcript: MediaTranscript) -> str:
    return " ".join(join_words(words) for _speaker, words in transcript.turns)


def difference(reference: str, hypothesis: str) -> float:
    """WER of one transcript against another (how much batched mode changes the words)."""
    return float(
        jiwer.wer(
            reference, hypothesis, reference_transform=NORMALISE, hypothesis_transform=NORMALISE
        )
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="'base', 'tiny.en' or a model directory")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the test file")
    parser.add_argument(
        "--clip-minutes",
        type=float,
        default=None,
        help="measure (1)-(3) on the first M minutes only (default: the whole file)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run (1) and (2) alternated, and batched (4), N times; compare the fastest of each",
    )
    args = parser.parse_args(argv)

    print(f"convolens ASR benchmark: model {args.model}, int8, beam 1, word timestamps, VAD on")
    print(f"machine: {load_note()} at start")
    samples, used = build_audio(args.minutes)
    full_s = samples.size / SAMPLE_RATE
    clip_s = min(full_s, (args.clip_minutes or args.minutes) * 60)
    print(f"test audio: {full_s:.1f} s at 16 kHz mono from {', '.join(used)}, repeated")

    with tempfile.TemporaryDirectory(prefix="asr-bench-") as folder:
        long_wav = Path(folder) / "long.wav"
        write_wav(long_wav, samples)
        clip_wav = long_wav
        if clip_s < full_s:
            clip_wav = Path(folder) / "clip.wav"
            write_wav(clip_wav, samples[: round(clip_s * SAMPLE_RATE)])
        print(f"(1)-(3) measured on the first {clip_s:.1f} s; (4) on all {full_s:.1f} s\n")

        from faster_whisper import WhisperModel

        print("loading (each model warmed up once on jfk.flac, 11 s):")
        started = time.perf_counter()
        model_dir, model_id = resolve_whisper_model(args.model)
        resolve_s = time.perf_counter() - started
        started = time.perf_counter()
        raw_model = WhisperModel(str(model_dir), device="cpu", compute_type="int8")
        raw_load_s = time.perf_counter() - started
        raw_transcribe(raw_model, WARMUP)
        started = time.perf_counter()
        asr = FasterWhisperAsr(args.model, compute_type="int8", beam_size=1)
        asr_load_s = time.perf_counter() - started
        asr_timer = TimedAsr(asr)  # splits (2) into recogniser and the pipeline around it
        asr_only = SpeechPipeline(
            SpeechOptions(model=args.model, channels="mono", num_speakers=1, diarize=False),
            asr=asr_timer,
        )
        asr_only.transcribe(WARMUP)
        print(f"  model {model_id} at {model_dir} (resolved in {resolve_s:.2f} s)")
        print(f"  raw WhisperModel: {raw_load_s:.2f} s (cpu_threads default: 4 per faster-whisper)")
        print(f"  convolens FasterWhisperAsr: {asr_load_s:.2f} s (cpu_threads {os.cpu_count()})")

        diarizer: TimedDiarizer | None = None
        try:
            # assign_speakers: what SpeechPipeline needs besides the diarizer itself.
            from convolens.speech.diarize import ClusteringDiarizer, assign_speakers  # noqa: F401

            started = time.perf_counter()
            inner = ClusteringDiarizer()
            inner(decode_audio(DIARIZE_WARMUP, mono=True).mono, SAMPLE_RATE, 2)
            print(
                f"  ClusteringDiarizer (silero VAD + resemblyzer) load + first 30 s call: "
                f"{time.perf_counter() - started:.2f} s"
            )
            diarizer = TimedDiarizer(inner)
        except ImportError as exc:
            print(f"  ClusteringDiarizer not available ({exc}); (3) not measured")
        print(f"  peak RSS after loading: {peak_rss_mib():.0f} MiB\n")

        print("measured:")
        raws: list[Run] = []
        pipes: list[Run] = []
        for attempt in range(1, args.repeat + 1):
            # Alternated, so that a burst of load from elsewhere hits both alike.
            suffix = f" #{attempt}" if args.repeat > 1 else ""
            raws.append(
                timed(
                    f"(1) raw faster-whisper{suffix}",
                    clip_s,
                    lambda: raw_transcribe(raw_model, clip_wav),
                )
            )
            asr_timer.seconds = 0.0
            pipes.append(
                timed(
                    f"(2) convolens pipeline, ASR only{suffix}",
                    clip_s,
                    lambda: transcript_text(asr_only.transcribe(clip_wav)),
                )
            )
            around = pipes[-1].wall_s - asr_timer.seconds
            print(
                f"      of which recogniser {asr_timer.seconds:.2f} s; decode, timing "
                f"refinement, turns {around:.2f} s ({around / pipes[-1].wall_s:.1%})"
            )
        raw = min(raws, key=lambda run: run.wall_s)
        pipe = min(pipes, key=lambda run: run.wall_s)
        if args.repeat > 1:
            print(f"      (1) and (2) below use the fastest of {args.repeat} runs each")

        full: Run | None = None
        if diarizer is not None:
            timed_asr = TimedAsr(asr)
            pipeline = SpeechPipeline(
                SpeechOptions(model=args.model, channels="mono", num_speakers=2),
                asr=timed_asr,
                diarizer=diarizer,
            )
            diarizer.seconds = 0.0
            metrics_s = 0.0

            def full_run() -> str:
                nonlocal metrics_s
                transcript = pipeline.transcribe(clip_wav)
                conversation = to_conversation(transcript, source_id="bench")
                started = time.perf_counter()
                result = metrics_for_conversation(conversation)
                metrics_s = time.perf_counter() - started
                assert result is not None
                return transcript_text(transcript)

            try:
                full = timed("(3) full pipeline: ASR + diarization + metrics", clip_s, full_run)
            except Exception as exc:  # diarization is young: report it, measure the rest
                print(f"  (3) full pipeline FAILED, not measured: {type(exc).__name__}: {exc}")
            else:
                other = full.wall_s - timed_asr.seconds - diarizer.seconds - metrics_s
                print(
                    f"      of which ASR {timed_asr.seconds:.2f} s, diarization "
                    f"{diarizer.seconds:.2f} s, metrics {metrics_s:.3f} s, "
                    f"decode, timing refinement, turns, conversation {other:.2f} s"
                )

        started = time.perf_counter()
        batched_asr = FasterWhisperAsr(
            args.model, compute_type="int8", beam_size=1, batch_size=args.batch_size
        )
        batched_load_s = time.perf_counter() - started
        batched_pipeline = SpeechPipeline(
            SpeechOptions(model=args.model, channels="mono", num_speakers=1, diarize=False),
            asr=batched_asr,
        )
        batched_pipeline.transcribe(WARMUP)
        print(f"  (batched model loaded in {batched_load_s:.2f} s and warmed up)")
        if clip_wav == long_wav:
            sequential = pipe
            print("  (4) sequential: the run of (2) above (same file)")
        else:
            sequential = timed(
                "(4) sequential (convolens, batch_size None)",
                full_s,
                lambda: transcript_text(asr_only.transcribe(long_wav)),
            )
        batched = min(
            (
                timed(
                    f"(4) batched (convolens, batch_size {args.batch_size})"
                    + (f" #{attempt}" if args.repeat > 1 else ""),
                    full_s,
                    lambda: transcript_text(batched_pipeline.transcribe(long_wav)),
                )
                for attempt in range(1, args.repeat + 1)
            ),
            key=lambda run: run.wall_s,
        )
        changed = difference(sequential.text, batched.text)

    asr_ratio = pipe.rtf / raw.rtf
    batch_ratio = batched.rtf / sequential.rtf
    print(f"\npeak RSS (ru_maxrss) at the end: {peak_rss_mib():.0f} MiB")
    print(f"machine: {load_note()} at the end (2-core machine shared with other test runs)")
    print(f"batched transcript vs sequential: {changed:.1%} WER (words batched mode changes)")
    print(f"words: raw {raw.words}, pipeline {pipe.words} on the same {clip_s:.0f} s\n")

    checks = [
        (
            f"pipeline ASR speed vs raw faster-whisper: {asr_ratio:.2f}x "
            f"(target >= {TARGET_ASR_VS_RAW}x)",
            asr_ratio >= TARGET_ASR_VS_RAW,
        ),
        (
            f"full pipeline RTF: {full.rtf:.2f}x real time (target >= {TARGET_FULL_RTF}x)"
            if full
            else f"full pipeline RTF: not measured (target >= {TARGET_FULL_RTF}x)",
            full is not None and full.rtf >= TARGET_FULL_RTF,
        ),
        (
            f"batched vs sequential: {batch_ratio:.2f}x "
            f"(target >= {TARGET_BATCHED_VS_SEQUENTIAL}x)",
            batch_ratio >= TARGET_BATCHED_VS_SEQUENTIAL,
        ),
    ]
    print("summary:")
    for line, ok in checks:
        print(f"  {verdict(ok):6} {line}")
    return 0 if all(ok for _line, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
