"""Makes the extra espeak-ng recordings (16 kHz FLAC): a Spanish caller for the language
tests (languages/), an English caller for the speaker-identity tests (voices/).

    apt-get install -y espeak-ng
    .venv/bin/python tests/data/audio/make_extra_clips.py

espeak-ng speaks at 22.05 kHz; PyAV resamples to 16 kHz mono and writes FLAC.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import av

HERE = Path(__file__).resolve().parent
CLIPS = {
    "languages/spanish_billing.flac": (
        "es",
        "Hola, buenas tardes. Me cobraron dos veces la factura de este mes "
        "y necesito que me devuelvan el dinero, por favor.",
    ),
    "voices/customer_en.flac": (
        "en-us",
        "Hi, I was charged twice for my subscription this month, and I would like a refund please.",
    ),
}


def make(name: str, voice: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(wav), text], check=True)
        (HERE / name).parent.mkdir(exist_ok=True)
        with av.open(str(wav)) as source, av.open(str(HERE / name), "w") as out:
            stream = out.add_stream("flac", rate=16000)
            stream.layout = "mono"
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
            for frame in source.decode(audio=0):
                for resampled in resampler.resample(frame):
                    for packet in stream.encode(resampled):
                        out.mux(packet)
            for resampled in resampler.resample(None):
                for packet in stream.encode(resampled):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)


if __name__ == "__main__":
    for name, (voice, text) in CLIPS.items():
        make(name, voice, text)
        print(name)
