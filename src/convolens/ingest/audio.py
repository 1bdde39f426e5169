"""Audio and video recordings: transcribed, speaker-separated, one conversation per file.

The heavy work is `speech.transcribe.SpeechPipeline`, built once per adapter (so the
model loads once per ingest run). The raw layer keeps the file's hash, size and media
description plus the full recogniser output (segments and words) for replay; the audio
itself stays where it is. A `<stem>.meta.json` sidecar supplies ids, links, channel
speakers and the speaker count (docs/formats.md).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from convolens.ingest.base import (
    Adapter,
    AlreadyIngested,
    Parsed,
    ParseResult,
    RawRecord,
    Reject,
    SourceFile,
    safe_reason,
    strip_paths,
)
from convolens.ingest.registry import register_adapter
from convolens.ingest.sidecar import read_sidecar

__all__ = ["MEDIA_SUFFIXES", "AudioAdapter"]

MEDIA_SUFFIXES = (
    ".wav",
    ".flac",
    ".mp3",
    ".m4a",
    ".aac",
    ".ogg",
    ".oga",
    ".opus",
    ".wma",
    ".amr",
    ".webm",
    ".mp4",
    ".m4v",
    ".mkv",
    ".mov",
    ".avi",
)


_PIPELINES: dict[str, Any] = {}
_PIPELINES_LOCK = threading.Lock()


def _shared_pipeline(options: Any) -> Any:
    """One speech pipeline (Whisper, VAD, voice embedder) per process and settings: a
    server ingesting upload after upload must not load the models for each."""
    from convolens.speech.transcribe import SpeechPipeline

    key = options.model_dump_json()
    with _PIPELINES_LOCK:
        if key not in _PIPELINES:
            _PIPELINES[key] = SpeechPipeline(options)
        return _PIPELINES[key]


class AudioAdapter(Adapter):
    name = "audio"
    suffixes = MEDIA_SUFFIXES
    # The decoder reads the file itself; recordings may be far bigger than text exports.
    reads_whole_file = False
    description = "Audio or video recordings: transcribed (faster-whisper), speakers separated."

    _pipeline = None

    @property
    def pipeline(self):  # type: ignore[no-untyped-def]
        if self._pipeline is None:
            self._pipeline = _shared_pipeline(self.options.speech)
        return self._pipeline

    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        path = str(source.path)
        sidecar, sidecar_raw, problem = read_sidecar(source.path)
        if problem:
            yield Reject(path, "", problem, self.name)
            return
        digest = hashlib.sha256(source.data).hexdigest()
        # Same recording, same sidecar, same model: the stored transcript stands.
        key_parts = [digest, sidecar_raw[2] if sidecar_raw else b"", self.options.speech.model]
        ingest_key = hashlib.sha256(repr(key_parts).encode()).hexdigest()
        if ingest_key in self.known_keys:
            yield AlreadyIngested(path, self.name)
            return
        try:
            from convolens.speech.decode import AudioDecodeError
            from convolens.speech.transcribe import NoSpeechError, to_conversation
        except ImportError as exc:
            yield Reject(
                path,
                "",
                f"audio needs the speech extra ({exc.name}): pip install 'convolens[speech]'",
                self.name,
            )
            return

        def progress(done: float, total: float) -> None:
            if self.on_progress is not None:
                self.on_progress(source.path, done, total)

        try:
            transcript = self.pipeline.transcribe(
                source.path, sidecar, on_progress=progress, voices=self.options.speech.voices
            )
        except (AudioDecodeError, NoSpeechError) as exc:
            # The library's message names the file; Reject.describe() does that already.
            reason = strip_paths(str(exc).removeprefix(f"{source.path.name}: "))
            yield Reject(path, "", reason, self.name)
            return
        except Exception as exc:  # a decoder tripped by hostile bytes: this file's reject
            yield Reject(path, "", safe_reason(exc), self.name)
            return
        conversation = to_conversation(
            transcript, source_id=f"sha256:{digest[:32]}", sidecar=sidecar
        )
        record = {
            "file": source.path.name,
            "sha256": digest,
            "ingest_key": ingest_key,
            "bytes": len(source.data),
            "media": transcript.audio.media_info(),
            "separation": transcript.separation,
            "speakers": [asdict(s) for s in transcript.speakers],
            "asr": [
                {
                    "model": r.model_id,
                    "language": r.language,
                    "language_probability": r.language_probability,
                    "duration": r.duration,
                    "segments": [asdict(s) for s in r.segments],
                }
                for r in transcript.asr
            ],
        }
        payload = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
        raw = [RawRecord(path, "recording", payload, "utf-8")]
        if sidecar_raw is not None:
            raw.append(RawRecord(*sidecar_raw))
        yield Parsed(conversation, raw, self.name, list(transcript.audio.warnings))


register_adapter(AudioAdapter)
