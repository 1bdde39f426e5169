"""What every intake adapter shares: the source file, its decoded text, and the results.

An adapter turns one or more source files into `Parsed` conversations (each carrying the
verbatim raw records it came from) and `Reject`s (a record that could not be read, with
where and why). An adapter never raises for bad *content*: the batch goes on.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from charset_normalizer import from_bytes
from pydantic import BaseModel, Field, ValidationError

from convolens.model import Conversation
from convolens.speech.options import SpeechOptions

__all__ = [
    "Adapter",
    "AlreadyIngested",
    "DecodedText",
    "IngestOptions",
    "Parsed",
    "RawRecord",
    "Reject",
    "SourceFile",
    "decode_bytes",
    "describe_validation_error",
    "parse_timestamp",
]


class IngestOptions(BaseModel):
    """Options an adapter may read; the CLI fills them from flags."""

    csv_mapping: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> CSV column name"
    )
    csv_delimiter: str | None = None
    default_channel: str | None = None
    source_system: str | None = Field(
        default=None, description="Override the source system recorded for each conversation."
    )
    agent_domains: list[str] = Field(
        default_factory=list,
        description="Email domains whose senders are agents (email adapter); guessed if empty.",
    )
    speech: SpeechOptions = Field(default_factory=SpeechOptions)


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


@dataclass
class SourceFile:
    """One input file, read once; adapters share its bytes and decoded text."""

    path: Path
    data: bytes

    @classmethod
    def read(cls, path: Path) -> SourceFile:
        return cls(path=path, data=path.read_bytes())

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
            yield from self.parse(source)


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
        return datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return parse_timestamp(float(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                f"not a timestamp: {value!r} (use ISO-8601, e.g. 2026-03-01T09:15:00Z)"
            ) from exc
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON for raw payloads that were parsed out of a larger document."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
