"""Ingest files and folders into the warehouse: discover, detect, parse, write in batches.

Bad files and records become rows of the `rejects` table and lines of the report; they
never stop the batch. Writing is idempotent on the canonical conversation id.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from convolens.health.intake import IntakeObserver
from convolens.health.intake_checks import HealthFinding
from convolens.ingest.base import (
    MIB,
    Adapter,
    AlreadyIngested,
    IngestOptions,
    Parsed,
    Reject,
    SourceFile,
    guarded,
    safe_reason,
)
from convolens.ingest.redact_intake import IntakeRedactor, intake_redactor
from convolens.ingest.registry import adapter_names, detect_format, get_adapter
from convolens.speech.voices import with_enrolled_voices
from convolens.store.quarantine import release_quarantine, write_quarantine
from convolens.store.warehouse import Warehouse
from convolens.store.writer import WriteStats, unchanged, write_conversations, write_rejects

__all__ = [
    "Coverage",
    "DryRun",
    "IngestReport",
    "discover_files",
    "dry_run_preview",
    "ingest_paths",
    "parse_paths",
]

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
    # Conversations redaction could not pass (also among `rejects`; why: `quarantine`).
    quarantined: int = 0
    # What this run got wrong against its sources' history (convolens.health).
    health: list[HealthFinding] = field(default_factory=list)

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
            "quarantined": self.quarantined,
            "new": self.written.new,
            "new_versions": self.written.new_versions,
            "unchanged": self.written.unchanged,
            "utterances": self.written.utterances,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass
class Coverage:
    """Per file: how many conversations had any speaker role and any time. A mapping that
    leaves role or time unmapped gives all-unknown roles and no dates: that is said."""

    files: dict[str, list[int]] = field(default_factory=dict)  # path -> [n, roles, times, meetings]

    def add(self, parsed: Parsed) -> None:
        conversation = parsed.conversation
        path = parsed.raw[0].source_path if parsed.raw else ""
        counts = self.files.setdefault(path, [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += any(p.role.value != "unknown" for p in conversation.participants)
        counts[2] += conversation.started_at is not None or any(
            u.sent_at is not None or u.start is not None for u in conversation.utterances
        )
        counts[3] += conversation.channel.value == "meeting"

    def warnings(self) -> list[str]:
        notes = []
        for path, (total, roles, times, meetings) in self.files.items():
            name = Path(path).name
            # Meetings have no agent and no customer: unknown roles are right there.
            if total and not roles and meetings < total:
                notes.append(
                    f"{name}: no speaker roles in any of its {total:,} conversation(s) (all "
                    "'unknown'); map a role field (role=FIELD) or role values ([roles])"
                )
            if total and not times:
                notes.append(
                    f"{name}: no timestamps in any of its {total:,} conversation(s); map a "
                    "time field (sent_at=FIELD or started_at=FIELD) to get dates"
                )
        return notes


def _known_suffixes() -> set[str]:
    suffixes: set[str] = set()
    for name in adapter_names():
        suffixes.update(get_adapter(name).suffixes)
    return suffixes


def _sniffed_adapters() -> dict[str, list[Adapter]]:
    """suffix -> the adapters that take a file of it in a folder only if it sniffs right."""
    found: dict[str, list[Adapter]] = defaultdict(list)
    for name in adapter_names():
        adapter = get_adapter(name)
        if adapter.sniff_in_folders:
            for suffix in adapter.suffixes:
                found[suffix].append(adapter)
    return found


def _taken(path: Path, sniffed: dict[str, list[Adapter]]) -> bool:
    adapters = sniffed.get(path.suffix.lower())
    if not adapters:
        return True
    try:
        source = SourceFile.read(path)
        return any(adapter.sniff(source) for adapter in adapters)
    except Exception:  # unreadable: named, so that the reader reports why
        return True


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
    sniffed = _sniffed_adapters()
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
                taken = child.suffix.lower() in known and _taken(child, sniffed)
                (files if taken else skipped).append(child)
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
    """Parse files, grouped by adapter; yields conversations and rejects as they come.

    Nothing raised while detecting or parsing one file escapes: it becomes that file's
    reject (`base.guarded`), and the other files are read.
    """
    options = options or IngestOptions()
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        if fmt is not None:
            groups[fmt].append(path)
            continue
        try:
            source = SourceFile.read(path)
            name = detect_format(source, options)
        except OSError as exc:
            if on_file:
                on_file(path)
            yield Reject(str(path), "", f"cannot read file: {exc.strerror or exc}")
            continue
        except Exception as exc:  # a sniffer tripped by hostile content
            if on_file:
                on_file(path)
            yield Reject(str(path), "", f"format not recognised: {safe_reason(exc)}")
            continue
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
        reading: list[Path] = []
        sources = _read_each(paths, adapter, unreadable, on_file, reading)
        # Adapters that assemble across files (email) are guarded as a whole too.
        yield from guarded(adapter.parse_many(sources), functools.partial(_last, reading), name)
        yield from unreadable


def _last(reading: list[Path]) -> str:
    return str(reading[-1]) if reading else ""


def _read_each(
    paths: list[Path],
    adapter: Adapter,
    unreadable: list[Reject],
    on_file: Callable[[Path], None] | None,
    reading: list[Path],
) -> Iterator[SourceFile]:
    """Open files lazily (one in memory at a time), noting those that cannot be read and
    those too big for an adapter that reads a file whole."""
    limit = adapter.options.max_file_bytes
    for path in paths:
        try:
            source = SourceFile.read(path)
            size = source.size
        except OSError as exc:
            unreadable.append(
                Reject(str(path), "", f"cannot read file: {exc.strerror or exc}", adapter.name)
            )
            continue
        finally:
            if on_file:
                on_file(path)
        if adapter.reads_whole_file and size > limit:
            reason = (
                f"file of {size / MIB:.3g} MiB is over the {adapter.options.max_file_mb:g} MiB "
                f"limit for {adapter.name} files (read whole); split it, or raise max_file_mb"
            )
            unreadable.append(Reject(str(path), "", reason, adapter.name))
            continue
        reading.append(path)
        yield source


def _source_paths(result: Parsed | Reject | AlreadyIngested) -> Iterator[str]:
    if isinstance(result, Parsed):
        yield from (record.source_path for record in result.raw)
    else:
        yield result.source_path


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
    parse: Callable[..., Iterable[Parsed | Reject | AlreadyIngested]] | None = None,
    redaction: IntakeRedactor | None = None,
    redact: bool = True,
) -> IngestReport:
    """Ingest `paths` (files or folders) into `warehouse`; returns what happened.

    One id, one conversation per batch: when a conversation id comes a second time in
    the same batch (two files, or two records of one file) with other content, the
    first one read is stored and the later one is a reject naming where the first came
    from; with the same content it is counted unchanged. Files are read in a fixed
    order, so the same batch ingested again changes nothing.

    `on_start(total_files)` and `on_file(path)` drive a progress bar;
    `on_media_progress(path, seconds_done, seconds_total)` one per long recording.
    `admit(parsed)` sees each conversation before it is written and returns it (maybe
    changed) or a Reject in its place: the service files an agent's uploads as theirs and
    refuses to write over conversations the key may not change.
    `parse` stands in for `parse_paths` (same arguments): the engines parse recordings
    on their workers (convolens.engine.recordings).

    Every conversation is redacted before it is written (`redact_intake`), by
    `redaction` (default: the default `pii` policy); one that cannot be is quarantined
    (a row of `quarantine` and a reject) and the others go on. `redact=False` stores the
    text as parsed: only for a deployment whose `pii` component is disabled.
    """
    if fmt is not None:
        get_adapter(fmt)  # fail fast on an unknown --format, before any work
    started = time.perf_counter()
    redactor = (redaction or intake_redactor()) if redact else None
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
    # conversation id -> (file, locator, content hash) of its first appearance this batch
    seen: dict[str, tuple[str, str, str]] = {}
    heard_from: set[str] = set()
    coverage = Coverage()
    intake = IntakeObserver()
    results = (parse or parse_paths)(
        files,
        fmt=fmt,
        # Recordings' speakers are named from the voices enrolled in this warehouse.
        options=with_enrolled_voices(warehouse, options),
        on_file=on_file,
        on_media_progress=on_media_progress,
        known_keys=warehouse.ingest_keys(),
    )
    for result in results:
        heard_from.update(_source_paths(result))
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
        coverage.add(result)
        intake.add(result)
        duplicate = _check_duplicate(result, seen)
        if isinstance(duplicate, Reject):
            report.rejects.append(duplicate)
            continue
        report.conversations += 1
        report.per_format[result.source_format] += 1
        if duplicate:
            report.records += len(result.raw)
            report.written.unchanged += 1
            report.warnings.append(duplicate)
            continue
        batch.append(result)
        report.records += len(result.raw)
        if len(batch) >= batch_size:
            _write(warehouse, batch, run_id, report, redactor)
            batch.clear()
    if batch:
        _write(warehouse, batch, run_id, report, redactor)
    # A file that gave nothing at all (empty, or only blank lines) is said, not skipped.
    report.rejects.extend(
        Reject(str(path), "", "no conversations or records found in this file")
        for path in files
        if str(path) not in heard_from
    )
    # File-level notes first: the report shows the first few warnings.
    report.warnings[:0] = coverage.warnings()
    write_rejects(warehouse, report.rejects, run_id)
    if warehouse.lake is not None:
        from convolens.store.lake_normalised import complete_lake

        report.warnings.extend(complete_lake(warehouse))  # what a failed lake write left out
    report.health = intake.finish(warehouse, run_id)
    report.elapsed_s = time.perf_counter() - started
    warehouse.finish_run(run_id, report.as_stats())
    return report


@dataclass
class DryRun:
    """What an ingest would read, without writing: the first conversations, every reject."""

    files: int = 0
    conversations: int = 0
    first: list[Parsed] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def dry_run_preview(
    paths: Sequence[Path | str],
    *,
    fmt: str | None = None,
    options: IngestOptions | None = None,
    show: int = 5,
) -> DryRun:
    """Parse `paths` as `ingest_paths` would and keep the first `show` conversations;
    nothing is written anywhere (recordings are still transcribed to be shown)."""
    if fmt is not None:
        get_adapter(fmt)
    files, _, missing = discover_files(Path(p) for p in paths)
    preview = DryRun(files=len(files))
    preview.rejects.extend(Reject(str(p), "", "no such file or folder") for p in missing)
    coverage = Coverage()
    for result in parse_paths(files, fmt=fmt, options=options):
        if isinstance(result, Reject):
            preview.rejects.append(result)
        elif isinstance(result, Parsed):
            preview.conversations += 1
            coverage.add(result)
            preview.warnings.extend(result.warnings)
            if len(preview.first) < show:
                preview.first.append(result)
        else:
            preview.conversations += 1
    preview.warnings[:0] = coverage.warnings()
    return preview


def _check_duplicate(result: Parsed, seen: dict[str, tuple[str, str, str]]) -> Reject | str | None:
    """None for a conversation id new to this batch; a warning (str) for a repeat with the
    same content; a Reject for a repeat with other content."""
    cid = result.conversation.conversation_id
    where = result.raw[0] if result.raw else None
    path, locator = (where.source_path, where.locator) if where else ("", "")
    first = seen.get(cid)
    if first is None:
        seen[cid] = (path, locator, result.content_hash)
        return None
    first_path, first_locator, first_hash = first
    named = result.conversation.source.source_id or cid
    origin = f"{Path(first_path).name} {first_locator}".strip()
    if first_hash == result.content_hash:
        return f"{Path(path).name} {locator}: same conversation as {origin}; read once".strip()
    reason = (
        f"duplicate conversation id {named!r} in this batch with other content; the first, "
        f"from {origin}, is kept (ingest this one on its own to store it as a new version)"
    )
    return Reject(path, locator, reason, result.source_format)


def _write(
    warehouse: Warehouse,
    batch: list[Parsed],
    run_id: str,
    report: IngestReport,
    redactor: IntakeRedactor | None,
) -> None:
    """Redact a batch and store it; what cannot be redacted is quarantined. If the
    warehouse refuses the batch, store item by item so that only the conversations it
    refuses are lost, each as a reject with the reason."""
    if redactor is not None:
        # What is stored already as it is would be redacted only for the writer to skip
        # it (re-ingesting a folder): count it, and redact only its warnings, which the
        # report shows.
        same = unchanged(warehouse, batch)
        for item in (item for item, skip in zip(batch, same, strict=True) if skip):
            report.written.unchanged += 1
            if item.warnings:
                try:
                    people = item.conversation.participants
                    report.warnings.extend(
                        redactor.redact_text(w, people)[0] for w in item.warnings
                    )
                except Exception:  # what redaction did not pass is not shown
                    report.warnings.append(
                        f"{len(item.warnings)} warning(s) withheld: redaction failed"
                    )
        batch = [item for item, skip in zip(batch, same, strict=True) if not skip]
        batch, held = redactor.apply(batch)
        # Warnings may quote the source (an attachment's name): reported once redacted.
        for item in batch:
            report.warnings.extend(item.warnings)
        if held:
            write_quarantine(warehouse, held, run_id)
            for quarantined in held:
                report.rejects.append(quarantined.as_reject())
                report.quarantined += 1
                report.conversations -= 1
                report.records -= len(quarantined.parsed.raw)
    else:
        for item in batch:
            report.warnings.extend(item.warnings)
    try:
        report.written.add(write_conversations(warehouse, batch, run_id))
        _release(warehouse, batch, run_id)
        return
    except Exception:
        pass  # each transaction rolled back whole; find the item(s) at fault
    for item in batch:
        try:
            report.written.add(write_conversations(warehouse, [item], run_id))
            _release(warehouse, [item], run_id)
        except Exception as exc:
            where = item.raw[0] if item.raw else None
            reason = safe_reason(exc).replace("could not be read", "could not be stored", 1)
            report.rejects.append(
                Reject(
                    where.source_path if where else "",
                    where.locator if where else "",
                    reason,
                    item.source_format,
                )
            )
            report.conversations -= 1
            report.records -= len(item.raw)


def _release(warehouse: Warehouse, stored: list[Parsed], run_id: str) -> None:
    """Quarantined conversations that this run redacted and stored are released."""
    release_quarantine(warehouse, [item.conversation.conversation_id for item in stored], run_id)
