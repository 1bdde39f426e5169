"""Decode any audio or video container to 16 kHz float32, mono or per channel (PyAV).

Video files contribute their first audio track; the container's duration and metadata
are kept. Every failure is an `AudioDecodeError` that names the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convolens.speech.types import AudioArray

__all__ = [
    "SAMPLE_RATE",
    "AudioDecodeError",
    "AudioTooLongError",
    "DecodedAudio",
    "decode_audio",
    "probe_media",
]

SAMPLE_RATE = 16000


class AudioDecodeError(ValueError):
    """The file cannot be turned into audio samples; the message says which and why."""


class AudioTooLongError(AudioDecodeError):
    """The stream runs past the `max_seconds` the caller accepts."""


@dataclass
class DecodedAudio:
    path: str
    channels: list[AudioArray]  # one 16 kHz float32 array per channel (or one, mixed down)
    sample_rate: int
    source_channels: int  # channel count in the file
    source_sample_rate: int
    codec: str
    container: str
    duration: float  # seconds of decoded audio
    container_duration: float | None  # what the container declares (video length, ...)
    has_video: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def mono(self) -> AudioArray:
        if len(self.channels) == 1:
            return self.channels[0]
        return np.mean(np.stack(self.channels), axis=0).astype(np.float32)

    def media_info(self) -> dict[str, Any]:
        """What the warehouse keeps about the media (the samples themselves stay in the file)."""
        return {
            "container": self.container,
            "codec": self.codec,
            "channels": self.source_channels,
            "sample_rate": self.source_sample_rate,
            "duration_s": round(self.duration, 3),
            "container_duration_s": self.container_duration,
            "has_video": self.has_video,
            "metadata": self.metadata,
        }


def _open(path: Path) -> Any:
    import av

    if not path.exists():
        raise AudioDecodeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path.name}: empty file (0 bytes)")
    try:
        return av.open(str(path))
    except av.error.InvalidDataError as exc:
        raise AudioDecodeError(
            f"{path.name}: not a readable audio or video file ({exc.strerror or exc}); "
            "it may be corrupt or truncated"
        ) from None
    except (av.error.FFmpegError, OSError) as exc:
        raise AudioDecodeError(f"{path.name}: cannot open: {exc}") from None


def probe_media(path: str | Path) -> dict[str, Any]:
    """Container, streams and duration without decoding samples."""
    path = Path(path)
    container = _open(path)
    try:
        return {
            "container": container.format.name,
            "duration_s": container.duration / 1_000_000 if container.duration else None,
            "audio_streams": len(container.streams.audio),
            "video_streams": len(container.streams.video),
            "metadata": dict(container.metadata),
        }
    finally:
        container.close()


def decode_audio(
    path: str | Path, *, mono: bool = False, max_seconds: float | None = None
) -> DecodedAudio:
    """Decode the first audio stream of `path` to 16 kHz float32.

    `mono=False` keeps each channel (a stereo call has agent and customer on separate
    channels); `mono=True` mixes them down. `max_seconds` refuses a longer stream while
    decoding: a small, highly compressed file can hold hours, and the declared duration
    can be missing or wrong, so only the decoded samples are trusted.
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        if not container.streams.audio:
            kind = "video file" if container.streams.video else "file"
            raise AudioDecodeError(
                f"{path.name}: {kind} has no audio stream; nothing to transcribe"
            )
        stream = container.streams.audio[0]
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        channels_in = stream.codec_context.channels or 1
        keep = 1 if mono else channels_in
        # 'fltp' gives one plane per channel; the resampler also does the mixdown.
        layout = "mono" if keep == 1 else stream.codec_context.layout.name
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
        decoded_samples = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    decoded_samples += chunks[-1].shape[-1]
                if limit is not None and decoded_samples > limit:
                    raise AudioTooLongError(
                        f"{path.name}: longer than {max_seconds:g} s; send a shorter excerpt"
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:
            if not chunks:
                raise AudioDecodeError(
                    f"{path.name}: cannot decode {codec} audio ({exc}); convert it to WAV or FLAC"
                ) from None
            # A damaged tail: keep what decoded, as players do.
        if not chunks:
            raise AudioDecodeError(f"{path.name}: the audio stream holds no samples")
        samples = np.concatenate(chunks, axis=1).astype(np.float32)
        declared = container.duration / 1_000_000 if container.duration else None
        decoded = samples.shape[1] / SAMPLE_RATE
        warnings = []
        # Raw AAC (ADTS) and MP3 streams only estimate their length from the bitrate.
        estimated = container.format.name in ("aac", "mp3")
        if declared and not estimated and decoded < 0.9 * declared - 0.5:
            warnings.append(
                f"{path.name}: decoded {decoded:.1f} s of the {declared:.1f} s the container "
                "declares; the file looks truncated"
            )
        return DecodedAudio(
            path=str(path),
            channels=[np.ascontiguousarray(samples[i]) for i in range(samples.shape[0])],
            sample_rate=SAMPLE_RATE,
            source_channels=channels_in,
            source_sample_rate=stream.codec_context.sample_rate or 0,
            codec=codec,
            container=container.format.name,
            duration=decoded,
            container_duration=declared,
            has_video=bool(container.streams.video),
            metadata={str(k): str(v) for k, v in container.metadata.items()},
            warnings=warnings,
        )
    finally:
        container.close()
