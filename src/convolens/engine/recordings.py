"""Recordings on an engine: decode, transcribe and diarize on the workers.

`ingest_on(engine, warehouse, paths, ...)` is `ingest_paths` with the costly part, the
recordings, parsed by `RecordingWorker`s (one speech pipeline load per worker, one
recording per item); text formats are read here as before. What comes back goes through
the same intake as a local ingest (duplicate checks, PII redaction before anything is
stored, quarantine, versions), so the warehouse ends up the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from convolens.engine.base import BatchWorker, Engine, WorkerSpec
from convolens.engine.local import LocalEngine
from convolens.ingest.audio import MEDIA_SUFFIXES
from convolens.ingest.base import IngestOptions, ParseResult
from convolens.ingest.pipeline import IngestReport, ingest_paths, parse_paths
from convolens.store.warehouse import Warehouse

__all__ = ["RecordingWorker", "ingest_on"]


class RecordingWorker(BatchWorker):
    """Parses one recording per item with the speech models loaded once per worker."""

    def __init__(self, options: IngestOptions) -> None:
        from convolens.ingest.audio import _shared_pipeline

        self.options = options
        # Whisper, VAD and the voice embedder load now, once, not per recording; without
        # the speech extra each recording is rejected naming it.
        with contextlib.suppress(ImportError):
            _shared_pipeline(options.speech)

    def process(self, item: tuple[str, frozenset[str]]) -> list[ParseResult]:
        path, known = item
        return list(
            parse_paths([Path(path)], fmt="audio", options=self.options, known_keys=set(known))
        )


def ingest_on(
    engine: Engine,
    warehouse: Warehouse,
    paths: Sequence[Path | str],
    *,
    fmt: str | None = None,
    options: IngestOptions | None = None,
    **kwargs: Any,
) -> IngestReport:
    """`ingest_paths`, with recordings transcribed on `engine`'s workers."""
    if isinstance(engine, LocalEngine) or fmt not in (None, "audio"):
        return ingest_paths(warehouse, paths, fmt=fmt, options=options, **kwargs)
    options = options or IngestOptions()
    return ingest_paths(
        warehouse,
        paths,
        fmt=fmt,
        options=options,
        parse=_parse_with(engine, options),
        **kwargs,
    )


def _parse_with(engine: Engine, settings: IngestOptions) -> Callable[..., Iterator[ParseResult]]:
    def parse(
        files: Sequence[Path],
        *,
        fmt: str | None = None,
        options: IngestOptions | None = None,
        on_file: Callable[[Path], None] | None = None,
        on_media_progress: Callable[[Path, float, float], None] | None = None,
        known_keys: set[str] | None = None,
    ) -> Iterator[ParseResult]:
        media = [f for f in files if fmt == "audio" or f.suffix.lower() in MEDIA_SUFFIXES]
        others = [f for f in files if f not in set(media)]
        known = frozenset(known_keys or ())
        options = options or settings
        spec = WorkerSpec(RecordingWorker, (options,))
        first_media = bool(media) and (not others or files.index(media[0]) < files.index(others[0]))

        def recordings() -> Iterator[ParseResult]:
            for path, results in zip(
                media, engine.run(spec, [(str(p), known) for p in media]), strict=True
            ):
                if on_file:
                    on_file(path)
                yield from results

        def texts() -> Iterator[ParseResult]:
            if others:
                yield from parse_paths(
                    others,
                    fmt=fmt,
                    options=options,
                    on_file=on_file,
                    on_media_progress=on_media_progress,
                    known_keys=known_keys,
                )

        # The adapters' order as a local run reads them (first file's format first), so
        # that which copy of a duplicated id is kept does not depend on the engine.
        if first_media:
            yield from recordings()
            yield from texts()
        else:
            yield from texts()
            yield from recordings()

    return parse
