"""Seeded two-speaker synthetic calls with reference RTTMs, for diarization evaluation.

    .venv/bin/python eval/synthetic_calls.py [--out .cache/synthetic_calls] [--seed 0]

Each call alternates two voices over ~14 turns in the shape of a support call: gaps of
0.15-0.8 s, some turns that start before the other voice finishes (0.3-0.9 s of overlap),
and short backchannels ("yeah", "okay", "mm-hmm") both between turns and spoken over the
other voice. Files: `<name>.wav` (16 kHz mono) and `<name>.rttm`, one reference segment
per spoken clip (the clip's voiced span, so a clip's trimmed silence is not "speech").

Voices (needs `apt-get install espeak-ng`):
- espeak-ng pairs, from easy (male/female) to same-timbre (en-us vs en-us+m3, which
  resemblyzer's embeddings cannot tell apart);
- a real-voice call: LibriSpeech 1089-134686 (one reader) against JFK's inaugural
  excerpt, both cut at their pauses (../shared/data/audio).
The same seed gives the same files.
"""

from __future__ import annotations

import argparse
import io
import random
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from convolens.speech.decode import decode_audio

RATE = 16000
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "audio"

PAIRS = {
    "synth_m_f": ("en-us", "en+f3"),
    "synth_gb_m7": ("en-gb", "en-us+m7"),
    "synth_us_m3": ("en-us", "en-us+m3"),
    "synth_m1_f2": ("en-us+m1", "en+f2"),
}
AGENT = [
    "Thank you for calling, this is Dana, how can I help you today?",
    "I can see your account here, let me pull up the last invoice.",
    "I understand, that charge should not have been applied twice.",
    "I have issued a refund, it will show in three to five business days.",
    "Is there anything else I can help you with on this account?",
    "Could you confirm the email address on the account for me please?",
    "I will send you a confirmation message as soon as this is done.",
    "Let me check with the billing team, it will only take a minute.",
]
CUSTOMER = [
    "Hi, I was charged twice for my subscription this month.",
    "Yes, it is the one from the third of March.",
    "That would be great, I really need that money back.",
    "Sure, it is the same address I used when I signed up.",
    "No, that is everything, thank you for sorting it out so quickly.",
    "I tried the website first but the page kept timing out.",
    "Okay, and will I get an email when the refund goes through?",
    "I have been a customer for about four years now.",
]
BACKCHANNELS = ["yeah", "okay", "mm-hmm", "right", "sure"]


def _espeak(text: str, voice: str, speed: int) -> np.ndarray:
    out = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    samples = resample_poly(pcm.astype(np.float32) / 32768, RATE, rate).astype(np.float32)
    return _trim(samples)


def _trim(samples: np.ndarray, floor: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > floor)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples[:0]


def _pieces(samples: np.ndarray, min_gap_s: float = 0.25) -> list[np.ndarray]:
    """Cut a reading at its pauses: runs of 20 ms frames near its noise floor lasting at
    least min_gap_s; each piece spans its first to last loud frame."""
    frame = RATE // 50
    n = samples.size // frame
    energy = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    # Relative floor: JFK's recording has a noise floor well above digital silence.
    loud = energy > max(0.005, 2 * float(np.percentile(energy, 10)))
    pieces, start, quiet = [], None, 0
    for i, is_loud in enumerate(loud):
        if is_loud:
            start = i if start is None else start
            quiet, last = 0, i
        elif start is not None:
            quiet += 1
            if quiet >= int(min_gap_s * 50):
                pieces.append(samples[start * frame : (last + 1) * frame])
                start = None
    if start is not None:
        pieces.append(samples[start * frame : (last + 1) * frame])
    return [p for p in pieces if p.size > 0.4 * RATE]


def _layout(
    rng: random.Random,
    a_clips: list[np.ndarray],
    b_clips: list[np.ndarray],
    bc: dict[str, list[np.ndarray]],
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Alternating turns with gaps, overlaps and backchannels; returns audio and reference."""
    placed: list[tuple[int, np.ndarray, str]] = []
    t = int(0.5 * RATE)
    speakers = ("A", "B")
    clips = {"A": list(a_clips), "B": list(b_clips)}
    for turn in range(14):
        who = speakers[turn % 2]
        other = speakers[(turn + 1) % 2]
        clip = clips[who][turn // 2 % len(clips[who])]
        roll = rng.random()
        if turn and roll < 0.25:
            start = t - int(rng.uniform(0.3, 0.9) * RATE)  # talks over the end of the last turn
        else:
            start = t + int(rng.uniform(0.15, 0.8) * RATE)
        placed.append((start, clip, who))
        if clip.size > 2.5 * RATE and rng.random() < 0.35:
            # The listener says "mm-hmm" over the middle of a long turn.
            back = bc[other][rng.randrange(len(bc[other]))]
            placed.append((start + int(rng.uniform(0.4, 0.6) * clip.size), back, other + "bc"))
        t = start + clip.size
        if rng.random() < 0.2:
            # A backchannel in the pause before the same speaker carries on.
            gap = t + int(rng.uniform(0.2, 0.4) * RATE)
            back = bc[other][rng.randrange(len(bc[other]))]
            placed.append((gap, back, other + "bc"))
            t = gap + back.size + int(rng.uniform(0.2, 0.4) * RATE)
            placed.append((t, clips[who][(turn // 2 + 1) % len(clips[who])][: 2 * RATE], who))
            t += min(2 * RATE, clips[who][(turn // 2 + 1) % len(clips[who])].size)
    total = max(s + c.size for s, c, _ in placed) + int(0.5 * RATE)
    audio = np.zeros(total, dtype=np.float32)
    reference = []
    for start, clip, who in placed:
        audio[start : start + clip.size] += clip
        reference.append((start / RATE, (start + clip.size) / RATE, who[0]))
    peak = float(np.max(np.abs(audio))) or 1.0
    return (audio / peak * 0.7).astype(np.float32), reference


def _write(out: Path, name: str, audio: np.ndarray, reference: list[tuple[float, float, str]]):
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(out / f"{name}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    lines = [
        f"SPEAKER {name} 1 {s:.3f} {e - s:.3f} <NA> <NA> {who} <NA> <NA>"
        for s, e, who in sorted(reference)
    ]
    (out / f"{name}.rttm").write_text("\n".join(lines) + "\n")


def build(out: Path, seed: int) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for index, (name, (voice_a, voice_b)) in enumerate(PAIRS.items()):
        rng = random.Random(seed * 100 + index)
        a = [_espeak(x, voice_a, rng.randrange(150, 175)) for x in AGENT]
        b = [_espeak(x, voice_b, rng.randrange(150, 175)) for x in CUSTOMER]
        bc = {
            v: [_espeak(x, voice, 170) for x in BACKCHANNELS]
            for v, voice in (("A", voice_a), ("B", voice_b))
        }
        audio, ref = _layout(rng, a, b, bc)
        _write(out, name, audio, ref)
        names.append(name)
    # Real voices: a LibriSpeech reader against JFK.
    reader = np.concatenate(
        [
            decode_audio(SHARED / "librispeech" / f"1089-134686-000{i}.flac", mono=True).channels[0]
            for i in (0, 1)
        ]
    )
    jfk = decode_audio(SHARED / "jfk.flac", mono=True).channels[0]
    rng = random.Random(seed * 100 + 99)
    a, b = _pieces(reader), _pieces(jfk)
    short = {
        who: [p[: int(0.6 * RATE)] for p in sorted(pieces, key=len)[:3]]
        for who, pieces in (("A", a), ("B", b))
    }
    audio, ref = _layout(rng, a, b, short)
    _write(out, "real_reader_jfk", audio, ref)
    names.append("real_reader_jfk")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "synthetic_calls")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in build(args.out, args.seed):
        print(args.out / f"{name}.wav")
    return 0


if __name__ == "__main__":
    sys.exit(main())
