"""Speaker identity: enrolled CAM++ voice prints against held-out speech of the same and
other voices; prints the equal error rate, the threshold at it, and what the shipped
threshold (speech/identity.py DEFAULT_THRESHOLD) gives.

    .venv/bin/python eval/speaker_identity.py

Voices (needs `apt-get install espeak-ng` for the synthetic ones):
- real: the two speakers of the pyannote sample (their solo stretches from its RTTM), JFK,
  a LibriSpeech reader (print from one utterance, tests from the other), the two voices
  of the faster-whisper stereo file (tests only: under 3 s each);
- synthetic: eight espeak-ng voices, among them same-timbre pairs (en-us / en-us+m3).
A print is made from the first ~3 s of a voice's speech (enrolment's minimum) and each
test from 2 s of other speech, the amount one turn of a call gives.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))

from synthetic_calls import AGENT, CUSTOMER, RATE, SHARED, _espeak, _pieces  # noqa: E402

from convolens.speech.campplus import CamPlusEmbedder  # noqa: E402
from convolens.speech.decode import decode_audio  # noqa: E402
from convolens.speech.identity import DEFAULT_THRESHOLD, _solo_spans, voice_embedding  # noqa: E402
from convolens.speech.types import SpeakerTurn  # noqa: E402

SYNTH_VOICES = ["en-us", "en-us+m3", "en-gb", "en-us+m7", "en+f3", "en+f2", "en-us+m1", "en-gb+f4"]
ENROL_S, TEST_S = 3.0, 2.0

Embed = Callable[[np.ndarray], np.ndarray | None]


def _chunks(samples: np.ndarray, seconds: float) -> list[np.ndarray]:
    size = int(seconds * RATE)
    return [samples[i : i + size] for i in range(0, samples.size - int(0.8 * size) + 1, size)]


def _rttm_solo(rttm: Path, audio: np.ndarray) -> dict[str, np.ndarray]:
    turns = []
    for line in rttm.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, length = float(parts[3]), float(parts[4])
            turns.append(SpeakerTurn(start, start + length, parts[7]))
    out: dict[str, np.ndarray] = {}
    for who in sorted({t.speaker for t in turns}):
        # Only what nobody else says at the same time.
        spans = _solo_spans(turns, who)
        out[who] = np.concatenate([audio[int(s * RATE) : int(e * RATE)] for s, e in spans])
    return out


def voices() -> tuple[dict[str, tuple[np.ndarray, list[np.ndarray]]], set[str]]:
    """voice -> (enrolment audio, [test audio]); and which voices are real."""
    found: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
    sample = decode_audio(SHARED / "two_speakers_sample.wav", mono=True).channels[0]
    for who, speech in _rttm_solo(SHARED / "two_speakers_sample.rttm", sample).items():
        enrol, rest = speech[: int(ENROL_S * RATE)], speech[int(ENROL_S * RATE) :]
        found[f"sample_{who}"] = (enrol, _chunks(rest, TEST_S))
    jfk = np.concatenate(_pieces(decode_audio(SHARED / "jfk.flac", mono=True).channels[0]))
    found["jfk"] = (jfk[: int(ENROL_S * RATE)], _chunks(jfk[int(ENROL_S * RATE) :], TEST_S))
    books = [
        np.concatenate(
            _pieces(decode_audio(SHARED / "librispeech" / f"1089-134686-000{i}.flac").mono)
        )
        for i in (0, 1)
    ]
    rest = np.concatenate([books[0][int(ENROL_S * RATE) :], books[1]])
    found["reader_1089"] = (books[0][: int(ENROL_S * RATE)], _chunks(rest, TEST_S))
    stereo = decode_audio(SHARED / "stereo_diarization.wav").channels
    for side, channel in zip(("left", "right"), stereo, strict=True):
        found[f"stereo_{side}"] = (np.zeros(0, np.float32), [np.concatenate(_pieces(channel))])
    real = set(found)
    sentences = AGENT + CUSTOMER
    for k, voice in enumerate(SYNTH_VOICES):
        said = [_espeak(sentences[(k + j) % len(sentences)], voice, 165) for j in range(4)]
        found[f"espeak_{voice}"] = (said[0], said[1:])
    return found, real


def equal_error(target: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(EER, threshold at it): where false rejects and false accepts cross."""
    best = (1.0, 0.0)
    for threshold in np.linspace(-0.2, 1.0, 1201):
        frr = float(np.mean(target < threshold))
        far = float(np.mean(other >= threshold))
        gap = abs(frr - far)
        if gap < best[0] or (gap == best[0] and threshold < best[1]):
            best = (gap, float(threshold))
            eer = (frr + far) / 2
    threshold = best[1]
    frr = float(np.mean(target < threshold))
    far = float(np.mean(other >= threshold))
    eer = (frr + far) / 2
    return eer, threshold


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = parser.parse_args()
    embedder = CamPlusEmbedder()

    def embed(audio: np.ndarray) -> np.ndarray | None:
        if audio.size < RATE // 2:
            return None
        return voice_embedding(audio, [(0.0, audio.size / RATE)], embedder)

    data, real = voices()
    prints = {v: embed(enrol) for v, (enrol, _) in data.items() if enrol.size}
    tests = [(v, embed(t)) for v, (_, ts) in data.items() for t in ts]
    rows = []  # (enrolled voice, test voice, score)
    for voice, vector in prints.items():
        for truth, test in tests:
            if vector is not None and test is not None:
                rows.append((voice, truth, float(np.dot(vector, test))))
    print(f"{len(prints)} prints, {len(tests)} tests, {len(rows)} trials")
    for subset, keep in (
        ("all", lambda a, b: True),
        ("real", lambda a, b: a in real and b in real),
        ("synthetic", lambda a, b: a not in real and b not in real),
    ):
        chosen = [r for r in rows if keep(r[0], r[1])]
        target = np.array([s for a, b, s in chosen if a == b])
        other = np.array([s for a, b, s in chosen if a != b])
        eer, at = equal_error(target, other)
        frr = float(np.mean(target < args.threshold))
        far = float(np.mean(other >= args.threshold))
        print(
            f"{subset:9} targets {len(target):3} (min {target.min():.3f}, median "
            f"{np.median(target):.3f})  others {len(other):4} (max {other.max():.3f}, median "
            f"{np.median(other):.3f})  EER {eer * 100:.1f} % at {at:.2f}  |  at "
            f"{args.threshold:.2f}: false reject {frr * 100:.1f} %, false accept {far * 100:.1f} %"
        )
    print("threshold  real FR/FA        synthetic FR/FA")
    for threshold in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8):
        cells = []
        for keep in (
            lambda a, b: a in real and b in real,
            lambda a, b: a not in real and b not in real,
        ):
            chosen = [r for r in rows if keep(r[0], r[1])]
            target = np.array([s for a, b, s in chosen if a == b])
            other = np.array([s for a, b, s in chosen if a != b])
            rejected = np.mean(target < threshold) * 100
            accepted = np.mean(other >= threshold) * 100
            cells.append(f"{rejected:5.1f} / {accepted:5.1f} %")
        print(f"{threshold:9.2f}  {cells[0]:17}  {cells[1]}")
    # Open-set identification as the pipeline does it: the best print if it passes.
    correct = 0
    for truth, test in tests:
        if test is None:
            continue
        scores = {v: float(np.dot(p, test)) for v, p in prints.items() if p is not None}
        best = max(scores, key=lambda v: scores[v])
        said = best if scores[best] >= args.threshold else None
        expected = truth if truth in prints else None
        correct += said == expected
    usable = sum(1 for _, t in tests if t is not None)
    print(
        f"identification at {args.threshold:.2f}: {correct}/{usable} tests right "
        f"({correct / usable * 100:.1f} %; unenrolled voices must stay unnamed)"
    )
    hardest = sorted(((s, a, b) for a, b, s in rows if a != b), reverse=True)[:3]
    print("closest other voices:", ", ".join(f"{a} ~ {b} {s:.3f}" for s, a, b in hardest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
