"""Ingest files and folders into the warehouse: discover, detect, parse, write in batches.

Bad files and records become rows of the `rejects` table and lines of the report; they
never stop the batch. Writing is idempotent on the canonical conversation id.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from convolens.ingest.base import AlreadyIngested, IngestOptions, Parsed, Reject, SourceFile
from convolens.ingest.registry import adapter_names, detect_format, get_adapter
from convolens.store.warehouse import Warehouse
from convolens.store.writer import WriteStats, write_conversations, write_rejects

__all__ = ["IngestReport", "discover_files", "ingest_paths", "parse_paths"]

# Sidecar metadata files are read by the adapter of the file they describe.
_SIDECAR_SUFFIX = ".meta.json"


@dataclass
class IngestReport:
    run_id: str
    files: int = 0
    skipped_files: list[str] = field(default_factory=list)
    conversations: int = 0
    records: int = 0
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    per_format: Counter[str] = field(default_factory=Counter)
    written: WriteStats = field(default_factory=WriteStats)
    elapsed_s: float = 0.0

    @property
    def rejected_records(self) -> int:
        return len(self.rejects)

    def summary_line(self) -> str:
        total = self.records + self.rejected_records
        line = f"{self.rejected_records:,} of {total:,} records rejected"
        if self.rejects:
            line += ": " + "; ".join(r.describe() for r in self.rejects[:3])
            if len(self.rejects) > 3:
                line += f"; and {len(self.rejects) - 3} more (see the 'rejects' table)"
        return line

    def as_stats(self) -> dict[str, object]:
        return {
            "files": self.files,
            "skipped_files": len(self.skipped_files),
            "conversations": self.conversations,
            "records": self.records,
            "rejected_records": self.rejected_records,
            "new": self.written.new,
            "new_versions": self.written.new_versions,
            "unchanged": self.written.unchanged,
            "utterances": self.written.utterances,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _known_suffixes() -> set[str]:
    suffixes: set[str] = set()
    for name in adapter_names():
        suffixes.update(get_adapter(name).suffixes)
    return suffixes


# A folder holding this file is not read when a parent folder is ingested.
IGNORE_MARKER = ".convolensignore"


def discover_files(paths: Iterable[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """(files to read, files skipped in folders for an unknown suffix, missing paths).

    Files named explicitly are always read (their format may be sniffed); inside folders
    only files with a suffix some adapter claims are taken, hidden files never, and nothing
    under a folder holding an `IGNORE_MARKER` file (e.g. business records that sit beside
    the conversations: accounts.csv is not a chat export).
    """
    known = _known_suffixes()
    files: list[Path] = []
    skipped: list[Path] = []
    missing: list[Path] = []
    for path in paths:
        if path.is_dir():
            ignored = {marker.parent for marker in path.rglob(IGNORE_MARKER)}
            for child in sorted(path.rglob("*")):
                if not child.is_file() or any(
                    p.startswith(".") for p in child.relative_to(path).parts
                ):
                    continue
                if ignored and any(parent in ignored for parent in child.parents):
                    continue
                if child.name.endswith(_SIDECAR_SUFFIX):
                    continue
                (files if child.suffix.lower() in known else skipped).append(child)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(path)
    # One file named twice (or inside two named folders) is read once.
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, skipped, missing


def parse_paths(
    files: Sequence[Path],
    *,
    fmt: str | None = None,
    options: IngestOptions | None = None,
    on_file: Callable[[Path], None] | None = None,
    on_media_progress: Callable[[Path, float, float], None] | None = None,
    known_keys: set[str] | None = None,
) -> Iterator[Parsed | Reject | AlreadyIngested]:
    """Parse files, grouped by adapter; yields conversations and rejects as they come."""
    options = options or IngestOptions()
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        if fmt is not None:
            groups[fmt].append(path)
            continue
        try:
            source = SourceFile.read(path)
        except OSError as exc:
            if on_file:
                on_file(path)
            yield Reject(str(path), "", f"cannot read file: {exc.strerror or exc}")
            continue
        name = detect_format(source, options)
        if name is None:
            if on_file:
                on_file(path)
            yield Reject(
                str(path), "", f"unrecognised format; pass --format ({', '.join(adapter_names())})"
            )
            continue
        groups[name].append(path)

    for name, paths in groups.items():
        adapter = get_adapter(name, options)
        adapter.on_progress = on_media_progress
        adapter.known_keys = known_keys or set()
        unreadable: list[Reject] = []
        yield from adapter.parse_many(_read_each(paths, name, unreadable, on_file))
        yield from unreadable


def _read_each(
    paths: list[Path],
    fmt: str,
    unreadable: list[Reject],
    on_file: Callable[[Path], None] | None,
) -> Iterator[SourceFile]:
    """Read files lazily (one in memory at a time), noting those that cannot be read."""
    for path in paths:
        try:
            source = SourceFile.read(path)
        except OSError as exc:
            unreadable.append(Reject(str(path), "", f"cannot read file: {exc}", fmt))
            continue
        finally:
            if on_file:
                on_file(path)
        yield source


def ingest_paths(
    warehouse: Warehouse,
    paths: Sequence[Path | str],
    *,
    fmt: str | None = None,
    options: IngestOptions | None = None,
    batch_size: int = 2000,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
    on_media_progress: Callable[[Path, float, float], None] | None = None,
    admit: Callable[[Parsed], Parsed | Reject] | None = None,
) -> IngestReport:
    """Ingest `paths` (files or folders) into `warehouse`; returns what happened.

    `on_start(total_files)` and `on_file(path)` drive a progress bar;
    `on_media_progress(path, seconds_done, seconds_total)` one per long recording.
    `admit(parsed)` sees each conversation before it is written and returns it (maybe
    changed) or a Reject in its place: the service files an agent's uploads as theirs and
    refuses to write over conversations the key may not change.
    """
    if fmt is not None:
        get_adapter(fmt)  # fail fast on an unknown --format, before any work
    started = time.perf_counter()
    files, skipped, missing = discover_files(Path(p) for p in paths)
    run_id = warehouse.start_run(
        "ingest",
        {
            "paths": [str(p) for p in paths],
            "format": fmt,
            "options": (options or IngestOptions()).model_dump(),
        },
    )
    report = IngestReport(run_id=run_id, files=len(files), skipped_files=[str(p) for p in skipped])
    report.rejects.extend(Reject(str(p), "", "no such file or folder") for p in missing)
    if on_start:
        on_start(len(files))

    batch: list[Parsed] = []
    results = parse_paths(
        files,
        fmt=fmt,
        options=options,
        on_file=on_file,
        on_media_progress=on_media_progress,
        known_keys=warehouse.ingest_keys(),
    )
    for result in results:
        if isinstance(result, Reject):
            report.rejects.append(result)
            continue
        if isinstance(result, AlreadyIngested):
            report.conversations += 1
            report.written.unchanged += 1
            report.per_format[result.source_format] += 1
            continue
        if admit is not None:
            admitted = admit(result)
            if isinstance(admitted, Reject):
                report.rejects.append(admitted)
                continue
            result = admitted
        batch.append(result)
        report.conversations += 1
        report.records += len(result.raw)
        report.per_format[result.source_format] += 1
        report.warnings.extend(result.warnings)
        if len(batch) >= batch_size:
            report.written.add(write_conversations(warehouse, batch, run_id))
            batch.clear()
    if batch:
        report.written.add(write_conversations(warehouse, batch, run_id))
    write_rejects(warehouse, report.rejects, run_id)
    report.elapsed_s = time.perf_counter() - started
    warehouse.finish_run(run_id, report.as_stats())
    return report
