"""What every intake adapter shares: the source file, its decoded text, and the results.

An adapter turns one or more source files into `Parsed` conversations (each carrying the
verbatim raw records it came from) and `Reject`s (a record that could not be read, with
where and why). An adapter never raises for bad *content*: the batch goes on.
"""

from __future__ import annotations

import io
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import IO, Any, ClassVar

from charset_normalizer import from_bytes
from pydantic import BaseModel, Field, ValidationError

from convolens.model import Conversation
from convolens.speech.options import SpeechOptions

__all__ = [
    "Adapter",
    "AlreadyIngested",
    "DecodedText",
    "IngestOptions",
    "JsonError",
    "Parsed",
    "RawRecord",
    "Reject",
    "SourceFile",
    "decode_bytes",
    "describe_validation_error",
    "guarded",
    "load_json",
    "parse_timestamp",
    "safe_reason",
    "strip_paths",
]

MIB = 1024 * 1024


class IngestOptions(BaseModel):
    """Options an adapter may read; the CLI fills them from flags."""

    csv_mapping: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> CSV column name"
    )
    csv_delimiter: str | None = None
    upload_name: str | None = Field(
        default=None,
        description="The name an uploaded file was given (it is spooled under another): "
        "what a mapping's $file reads.",
    )
    mapping: dict[str, Any] = Field(
        default_factory=dict,
        description="A field mapping for JSON/JSONL (ingest.mapping.FieldMapping, as a dict).",
    )
    default_channel: str | None = None
    source_system: str | None = Field(
        default=None, description="Override the source system recorded for each conversation."
    )
    agent_domains: list[str] = Field(
        default_factory=list,
        description="Email domains whose senders are agents (email adapter); guessed if empty.",
    )
    speech: SpeechOptions = Field(default_factory=SpeechOptions)
    # Bounds that keep one hostile file from taking the process's memory: formats read
    # whole (CSV, email, subtitles, ticket exports) refuse bigger files, and no adapter
    # builds one conversation from a bigger record. JSON arrays stream, so a big JSON
    # file is fine as long as each conversation in it is under the record bound.
    max_file_mb: float = Field(default=256, gt=0, description="Largest file read whole (MiB).")
    max_record_mb: float = Field(default=16, gt=0, description="Largest single record (MiB).")

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * MIB)

    @property
    def max_record_bytes(self) -> int:
        return int(self.max_record_mb * MIB)


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str
    # Set when the bytes were not UTF-8 and the encoding had to be guessed.
    detected: bool = False


def decode_bytes(data: bytes) -> DecodedText:
    """Decode source bytes: UTF-8 (with or without BOM) first, else the detected charset.

    UTF-8 is tried strictly first because it is by far the most common and charset
    detection on large files is slow; anything else (Latin-1 exports, UTF-16 from Excel)
    goes through charset-normalizer rather than crashing or mangling characters.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return DecodedText(data[3:].decode("utf-8", errors="replace"), "utf-8-sig")
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is not None:
        return DecodedText(str(best), best.encoding, detected=True)
    # Undetectable: cp1252 maps almost every byte, so nothing is lost silently.
    return DecodedText(data.decode("cp1252", errors="replace"), "cp1252", detected=True)


class SourceFile:
    """One input file; adapters share its bytes and decoded text, read on first use.

    Nothing is read up front: detection looks at `head()` only, and adapters that stream
    (JSON arrays) `open()` the file instead of holding it all in memory.
    """

    def __init__(self, path: Path, data: bytes | None = None) -> None:
        self.path = path
        self._data = data

    @classmethod
    def read(cls, path: Path) -> SourceFile:
        """A file that exists and can be opened (OSError otherwise); its bytes stay on disk."""
        with path.open("rb"):
            pass
        return cls(path)

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.path.read_bytes()
        return self._data

    @cached_property
    def size(self) -> int:
        return len(self._data) if self._data is not None else self.path.stat().st_size

    def head(self, size: int = 64 * 1024) -> bytes:
        """The first `size` bytes, without reading the rest."""
        if self._data is not None:
            return self._data[:size]
        with self.path.open("rb") as handle:
            return handle.read(size)

    def open(self) -> IO[bytes]:
        return io.BytesIO(self._data) if self._data is not None else self.path.open("rb")

    @cached_property
    def decoded(self) -> DecodedText:
        return decode_bytes(self.data)

    @property
    def text(self) -> str:
        return self.decoded.text

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class RawRecord:
    """A source record kept verbatim in the raw layer, for replay and audit."""

    source_path: str
    locator: str
    payload: bytes
    encoding: str | None = None


@dataclass
class Parsed:
    conversation: Conversation
    raw: list[RawRecord]
    source_format: str
    # Non-fatal problems (e.g. an unreadable attachment) worth keeping with the record.
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def content_hash(self) -> str:
        # Computed once: the pipeline compares duplicates by it, the writer versions by it.
        return self.conversation.content_hash()


@dataclass
class Reject:
    """A record that could not be ingested: which one, and why."""

    source_path: str
    locator: str
    reason: str
    source_format: str | None = None
    payload: bytes | None = None

    def describe(self) -> str:
        where = Path(self.source_path).name
        return (
            f"{where} {self.locator}: {self.reason}" if self.locator else f"{where}: {self.reason}"
        )


@dataclass
class AlreadyIngested:
    """A source the warehouse already holds unchanged, recognised before costly parsing
    (a recording is not transcribed again)."""

    source_path: str
    source_format: str


ParseResult = Parsed | Reject | AlreadyIngested


class Adapter(ABC):
    """Base class of intake adapters; subclasses register themselves in `ingest.registry`.

    `name` is what `--format` takes; `suffixes` and `sniff` drive auto-detection.
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    # Adapters that read a file whole are refused files over `max_file_mb`; those that
    # stream it (or, like audio, hand the path to a decoder) set this.
    reads_whole_file: ClassVar[bool] = True
    # Suffixes as common as .txt: inside a folder such a file is taken only when `sniff`
    # accepts it (notes.txt beside the exports is not a transcript to reject).
    sniff_in_folders: ClassVar[bool] = False

    def __init__(self, options: IngestOptions | None = None) -> None:
        self.options = options or IngestOptions()
        # Long media report progress through this: (file, seconds done, seconds total).
        self.on_progress: Callable[[Path, float, float], None] | None = None
        # Ingest keys (see AudioAdapter) of sources the warehouse already holds.
        self.known_keys: set[str] = set()

    def sniff(self, source: SourceFile) -> bool:
        """True if this adapter can read `source`; by default, decided by suffix alone."""
        return source.path.suffix.lower() in self.suffixes

    @abstractmethod
    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        """Yield a result per conversation or rejected record in one file."""

    def parse_many(self, sources: Iterable[SourceFile]) -> Iterator[ParseResult]:
        """Parse several files of this format; adapters whose conversations span files
        (email threads) override this to assemble across them."""
        for source in sources:
            # One file's failure is that file's reject, not the end of the batch.
            yield from guarded(self.parse(source), str(source.path), self.name)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad field, e.g. "messages.3.text: Field required"."""
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if not location:
            parts.append(message)
            continue
        if item["type"] == "missing":
            message = f"missing '{item['loc'][-1]}'" if item["loc"] else "missing field"
            parts.append(f"{location}: {message}" if len(item["loc"]) > 1 else message)
        else:
            parts.append(f"{location}: {message}")
    return "; ".join(parts)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 strings (with 'Z'), epoch seconds/milliseconds, or datetimes, as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            # Epoch values past year 9999 (or NaN): data, not a crash.
            raise ValueError(f"not a timestamp: {_short(value)} is out of range") from None
    elif isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return parse_timestamp(float(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                f"not a timestamp: {_short(value)} (use ISO-8601, e.g. 2026-03-01T09:15:00Z)"
            ) from exc
    else:
        raise ValueError(f"not a timestamp: {_short(value)}")
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError(f"not a timestamp: {_short(value)} is out of range") from None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class JsonError(ValueError):
    """JSON that cannot be read, with where (1-based line and column; 0 if unknown)."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.msg, self.lineno, self.colno = message, line, column

    def where(self) -> str:
        return f"line {self.lineno} column {self.colno}" if self.lineno else "position unknown"


def load_json(text: str | bytes) -> Any:
    """`json.loads` whose every failure is a `JsonError`: syntax, nesting too deep for the
    parser (RecursionError) and integers too long to convert all become data errors."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonError(exc.msg, exc.lineno, exc.colno) from None
    except RecursionError:
        raise JsonError("nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise JsonError(str(exc).split(";")[0]) from None


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s/'\"]+/)+([^\s/'\"]+)")


def strip_paths(text: str) -> str:
    """`text` with every absolute path cut to its file name: reasons reach API callers,
    who have no business knowing the server's folders."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def safe_reason(exc: BaseException, limit: int = 300) -> str:
    """An unexpected exception as a one-line reject reason: its type and message, with
    absolute paths cut to their file name (no server paths) and no traceback."""
    message = strip_paths(" ".join(str(exc).split()))
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    name = type(exc).__name__
    return f"could not be read ({name}: {message})" if message else f"could not be read ({name})"


def guarded(
    results: Iterator[ParseResult], source_path: str | Callable[[], str], fmt: str
) -> Iterator[ParseResult]:
    """The last line of defence around an adapter: an exception that escapes it becomes a
    reject naming the file (or, for `source_path()`, the file being read when it broke)
    and the last record read, and the batch goes on."""
    last = ""
    try:
        for result in results:
            if isinstance(result, Parsed) and result.raw:
                last = result.raw[-1].locator
            elif isinstance(result, Reject):
                last = result.locator
            yield result
    except Exception as exc:
        locator = f"after {last}" if last else ""
        path = source_path if isinstance(source_path, str) else source_path()
        yield Reject(path, locator, safe_reason(exc), fmt)


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON for raw payloads that were parsed out of a larger document."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # A JSON escape can carry an unpaired surrogate ("\\ud800"): keep the rest readable.
    return text.encode("utf-8", errors="replace")
