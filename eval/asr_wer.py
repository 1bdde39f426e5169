"""Word error rate of the convolens speech pipeline against raw faster-whisper, same model.

    .venv/bin/python eval/asr_wer.py [--model base] [--data PATH] [--show]
                                     [--conditions clean telephony ...]

Data (default ../shared/data/audio beside the repository): the rows of `references.tsv`
whose file is present (jfk.flac, both channels of stereo_diarization.wav) and the
LibriSpeech utterances in `librispeech/` (`*.trans.txt` beside the audio). Every item is
transcribed twice in this process with one loaded WhisperModel:

- raw: `WhisperModel.transcribe(path, beam_size=1, word_timestamps=True, vad_filter=True)`,
  segment texts joined; a stereo channel is fed as that channel's samples, decoded by
  `convolens.speech.decode.decode_audio` (the same input the pipeline gets);
- pipeline: `SpeechPipeline(SpeechOptions(channels="split" for per-channel references,
  else "mono", num_speakers=1))` -> `to_conversation` -> the utterances of participant
  `ch0` (left) / `ch1` (right), or all utterances.

Conditions (eval/telephony.py), each a column beside the others: clean (the files as
they are) and telephony (300-3400 Hz, 8 kHz, G.711 mu-law WAV: the stereo file stays a
two-channel call, the others become mono 8 kHz recordings), by default; telephony_noise
(10 dB SNR white noise before the line) and telephony_mp3 (the line archived as 32 kbit/s
MP3) on request. Raw and pipeline both read the converted file. Speed: the real-time factor
(wall seconds per audio second) of each pass; a stereo file's seconds count once.

Both are normalised with jiwer: lower case, hyphens and dashes to spaces (LibriSpeech
references write "flour fattened" where Whisper writes "flour-fattened"; deleting the hyphen
would score a compound as one wrong word), other punctuation removed, single spaces. The
pooled WER is the sum of errors over the sum of reference words. Exit status 1 when the pipeline's
pooled WER on the clean files is above raw faster-whisper's (it must lose nothing; the other
conditions print their verdicts too), 2 when there is no data.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import jiwer
from telephony import CONDITIONS, DESCRIPTIONS, convert  # type: ignore[import-not-found]

from convolens.speech.asr import FasterWhisperAsr
from convolens.speech.decode import decode_audio
from convolens.speech.options import SpeechOptions
from convolens.speech.transcribe import (
    MediaTranscript,
    NoSpeechError,
    SpeechPipeline,
    to_conversation,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"
CHANNEL_INDEX = {"left": 0, "right": 1}
AUDIO_SUFFIXES = (".flac", ".wav", ".mp3", ".ogg", ".m4a")

NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.SubstituteRegexes({r"[-\u2010-\u2015]": " "}),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


@dataclass(frozen=True)
class EvalItem:
    name: str  # what the table shows
    path: Path
    channel: str  # "all", "left" or "right"
    reference: str


@dataclass
class Score:
    reference_words: int
    errors: int  # substitutions + deletions + insertions

    @property
    def wer(self) -> float:
        return self.errors / self.reference_words if self.reference_words else 0.0


def score(reference: str, hypothesis: str) -> Score:
    out = jiwer.process_words(
        reference, hypothesis, reference_transform=NORMALISE, hypothesis_transform=NORMALISE
    )
    words = out.hits + out.substitutions + out.deletions
    return Score(words, out.substitutions + out.deletions + out.insertions)


def normalised(text: str) -> str:
    return " ".join(word for sentence in NORMALISE(text) for word in sentence)


def load_items(data: Path) -> list[EvalItem]:
    """references.tsv rows whose file is present, then the LibriSpeech utterances."""
    items: list[EvalItem] = []
    table = data / "references.tsv"
    if table.exists():
        with table.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                path = data / Path(row["file"]).name  # "faster_whisper/jfk.flac" -> jfk.flac
                if not path.exists():
                    continue  # e.g. whisper_cpp/jfk.wav: not shipped here
                channel = row["channel"].strip() or "all"
                if channel not in ("all", *CHANNEL_INDEX):
                    raise SystemExit(f"{table.name}: unknown channel {channel!r} for {path.name}")
                name = path.name if channel == "all" else f"{path.name} [{channel}]"
                items.append(EvalItem(name, path, channel, row["reference_text"].strip()))
    for transcript in sorted((data / "librispeech").glob("*.trans.txt")):
        for line in transcript.read_text(encoding="utf-8").splitlines():
            utterance, _, text = line.strip().partition(" ")
            if not utterance or not text:
                continue
            for suffix in AUDIO_SUFFIXES:
                path = transcript.parent / f"{utterance}{suffix}"
                if path.exists():
                    items.append(EvalItem(f"librispeech/{path.name}", path, "all", text))
                    break
    return items


def raw_text(model: Any, item: EvalItem) -> str:
    """Plain faster-whisper, as its README uses it; a channel is fed as its samples."""
    source: Any = str(item.path)
    if item.channel != "all":
        source = decode_audio(item.path, mono=False).channels[CHANNEL_INDEX[item.channel]]
    segments, _info = model.transcribe(source, beam_size=1, word_timestamps=True, vad_filter=True)
    return " ".join(segment.text.strip() for segment in segments)


def pipeline_text(transcript: MediaTranscript | None, item: EvalItem) -> str:
    if transcript is None:  # NoSpeechError: the pipeline returned nothing
        return ""
    conversation = to_conversation(transcript, source_id=item.path.name)
    wanted = None if item.channel == "all" else f"ch{CHANNEL_INDEX[item.channel]}"
    return " ".join(
        u.text for u in conversation.utterances if wanted is None or u.participant_id == wanted
    )


@dataclass
class ConditionRun:
    """One condition's rows, with the seconds of audio and of work it took."""

    condition: str
    rows: list[tuple[EvalItem, str, str, Score, Score]]
    audio_s: float  # per transcription pass: a stereo file counts once per pass
    raw_s: float
    pipeline_s: float

    def pooled(self) -> tuple[int, int, int]:
        """(reference words, raw errors, pipeline errors)."""
        return (
            sum(r[3].reference_words for r in self.rows),
            sum(r[3].errors for r in self.rows),
            sum(r[4].errors for r in self.rows),
        )


def run_condition(
    condition: str, items: list[EvalItem], asr: FasterWhisperAsr, pipelines: dict[str, Any]
) -> ConditionRun:
    """Transcribe every item as it reaches us under `condition` (eval/telephony.py): the
    converted file, decoded by the pipeline's own decode path."""
    raw_s = pipeline_s = audio_s = 0.0
    transcripts: dict[tuple[Path, str], MediaTranscript | None] = {}
    rows: list[tuple[EvalItem, str, str, Score, Score]] = []
    for item in items:
        # Per-channel references keep the call stereo (agent left, customer right);
        # the others become the mono mix a single-channel recorder stores.
        path = convert(item.path, condition, mono=item.channel == "all")
        heard = EvalItem(item.name, path, item.channel, item.reference)
        started = time.perf_counter()
        raw = raw_text(asr.model, heard)
        raw_s += time.perf_counter() - started

        mode = "mono" if item.channel == "all" else "split"
        key = (path, mode)
        if key not in transcripts:  # both channels of a stereo file come from one call
            audio_s += decode_audio(path).duration
            started = time.perf_counter()
            try:
                transcripts[key] = pipelines[mode].transcribe(path)
            except NoSpeechError:
                transcripts[key] = None
            pipeline_s += time.perf_counter() - started
        ours = pipeline_text(transcripts[key], heard)
        rows.append((item, raw, ours, score(item.reference, raw), score(item.reference, ours)))
    return ConditionRun(condition, rows, audio_s, raw_s, pipeline_s)


def report(runs: list[ConditionRun], show: bool) -> None:
    items = [row[0] for row in runs[0].rows]
    width = max(28, *(len(item.name) for item in items))
    columns = [(f"{run.condition} raw", f"{run.condition} pipeline") for run in runs]
    header = f"{'item':<{width}} {'ref words':>9}" + "".join(
        f" {raw:>{max(8, len(raw))}} {ours:>{max(12, len(ours))}}" for raw, ours in columns
    )

    def cells(values: list[tuple[str, str]]) -> str:
        return "".join(
            f" {a:>{max(8, len(raw))}} {b:>{max(12, len(ours))}}"
            for (a, b), (raw, ours) in zip(values, columns, strict=True)
        )

    print(header)
    print("-" * len(header))
    for index, item in enumerate(items):
        words = runs[0].rows[index][3].reference_words
        values = [
            (f"{run.rows[index][3].wer:.1%}", f"{run.rows[index][4].wer:.1%}") for run in runs
        ]
        print(f"{item.name:<{width}} {words:>9}" + cells(values))
    print("-" * len(header))
    pooled = [run.pooled() for run in runs]
    words = pooled[0][0]
    print(
        f"{'pooled':<{width}} {words:>9}"
        + cells([(f"{r / w:.1%}", f"{o / w:.1%}") for w, r, o in pooled])
    )
    print(f"{'errors':<{width}} {'':>9}" + cells([(str(r), str(o)) for _, r, o in pooled]))
    print()
    for run in runs:
        print(
            f"{run.condition} ({DESCRIPTIONS[run.condition]}): {run.audio_s:.1f} s of audio;"
            f" raw {run.raw_s:.2f} s (RTF {run.raw_s / run.audio_s:.3f}),"
            f" pipeline {run.pipeline_s:.2f} s (RTF {run.pipeline_s / run.audio_s:.3f},"
            f" {run.audio_s / run.pipeline_s:.1f}x real time)"
        )

    for run in runs:
        differing = [r for r in run.rows if normalised(r[1]) != normalised(r[2])]
        if differing:
            print(f"\n{run.condition}: transcripts that differ after normalisation:")
            for item, raw, ours, *_ in differing:
                print(
                    f"  {item.name}\n    raw:      {normalised(raw)}"
                    f"\n    pipeline: {normalised(ours)}"
                )
        else:
            print(
                f"{run.condition}: raw and pipeline transcripts are identical after normalisation"
            )
        if show:
            print(f"\n{run.condition}: references and hypotheses (normalised):")
            for item, raw, ours, *_ in run.rows:
                print(f"  {item.name}\n    reference: {normalised(item.reference)}")
                print(f"    raw:       {normalised(raw)}\n    pipeline:  {normalised(ours)}")
        verbatim = [r for r in run.rows if " ".join(r[1].split()) != " ".join(r[2].split())]
        if verbatim:
            print(f"{run.condition}: verbatim text differs (display only, not scored):")
            for item, raw, ours, *_ in verbatim:
                print(f"  {item.name}\n    raw:      {raw.strip()}\n    pipeline: {ours.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="'base', 'tiny.en' or a model directory")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="audio data folder")
    parser.add_argument(
        "--conditions",
        nargs="+",
        choices=CONDITIONS,
        default=["clean", "telephony"],
        help="how the audio reaches us (eval/telephony.py)",
    )
    parser.add_argument("--show", action="store_true", help="print every reference and hypothesis")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress in logs

    items = load_items(args.data)
    if not items:
        print(f"no evaluation data under {args.data}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    asr = FasterWhisperAsr(args.model, compute_type="int8", beam_size=1, vad_filter=True)
    load_s = time.perf_counter() - started
    pipelines: dict[str, Any] = {
        mode: SpeechPipeline(
            SpeechOptions(model=args.model, channels=mode, num_speakers=1), asr=asr
        )
        for mode in ("split", "mono")
    }
    print(f"model {args.model} ({asr.model_id}), int8, beam 1, word timestamps, VAD on")
    print(f"loaded in {load_s:.2f} s; {len(items)} items from {args.data}")
    print(f"conditions: {', '.join(f'{c} ({DESCRIPTIONS[c]})' for c in args.conditions)}\n")

    runs = [run_condition(condition, items, asr, pipelines) for condition in args.conditions]
    report(runs, args.show)

    print()
    worse = []
    for run in runs:
        words, raw_errors, ours_errors = run.pooled()
        raw_wer, ours_wer = raw_errors / words, ours_errors / words
        if ours_wer > raw_wer:
            worse.append(run.condition)
        verdict = "pipeline loses nothing" if ours_wer <= raw_wer else "pipeline is WORSE than raw"
        print(
            f"verdict {run.condition}: {verdict}"
            f" (pooled WER pipeline {ours_wer:.2%} vs raw {raw_wer:.2%})"
        )
    # The gate is the clean files: on converted audio raw faster-whisper reads the file
    # through its own s16 decoder and the pipeline through speech/decode.py (float), and
    # that alone can flip a borderline word, so those verdicts inform and do not fail.
    return 1 if "clean" in worse else 0


if __name__ == "__main__":
    sys.exit(main())
