"""WebVTT and SRT transcripts: one file is one conversation (a call by default).

Each cue becomes one utterance, timed in seconds from the start of the file. The speaker
of a cue is, in order of preference: the WebVTT voice tag (`<v Dana Ruiz>`), a `Name:`
prefix at the start of the cue text (stripped from the text), the previous cue's speaker
(captioners only name a speaker when the turn changes), or "Unknown". Consecutive cues of
one speaker stay separate utterances so that their timings survive.

Roles come from the sidecar, the speakers' labels ("Agent", "Caller") and what they say
(`roles.py`). What a transcript cannot say (source id, start time, business links) comes from an
optional sidecar `<stem>.meta.json` next to it, e.g. `call-0042.vtt` + `call-0042.meta.json`:

    {"id": "0042", "source": "dialpad", "channel": "call", "language": "en",
     "started_at": "2026-03-02T09:14:00Z", "duration_seconds": 312.5, "subject": "...",
     "platform": "...", "queue": "...", "agent": "Dana Ruiz", "campaign": "...",
     "tags": ["refund"], "roles": {"Dana Ruiz": "agent", "Tom": "customer"},
     "links": {"account_id": "A-17"}, "meta": {...}}

All keys are optional; unknown keys reject the transcript (a typo must not vanish). Without
"id" the conversation id is derived from the content. Without "duration_seconds" the
duration is the end of the last cue.
"""

from __future__ import annotations

import ast
import io
import re
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from convolens.ingest.base import (
    Adapter,
    ParseResult,
    Reject,
    SourceFile,
)
from convolens.ingest.registry import register_adapter
from convolens.ingest.sidecar import Sidecar, read_sidecar
from convolens.ingest.transcript_files import speaker_slug, transcript_conversation, unique_id

__all__ = ["SubtitleAdapter"]

_UNKNOWN = "Unknown"
_TIMESTAMP = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})$")
# An SRT timing line (milliseconds at most); a line with "-->" that does not match is a
# broken cue, which webvtt-py would silently drop rather than report.
_SRT_TIME = r"\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}"
_SRT_TIMING = re.compile(rf"^\s*({_SRT_TIME})\s*-->\s*({_SRT_TIME})")
_VTT_TIME = r"(?:\d+:)?\d{2}:\d{2}\.\d{3}"
_VTT_TIMING = re.compile(rf"^\s*{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}")
# A speaker prefix: 1-4 words (letters, digits, _ . ' -) then a colon and a space.
_WORD = r"(?:[^\W\d_][\w'.\-]*|\d+)"
_PREFIX = re.compile(rf"^(?P<name>{_WORD}(?: {_WORD}){{0,3}})\s*:(?:\s+|$)")
_MAX_NAME = 40


def _seconds(value: str) -> float:
    # caption.start_in_seconds truncates to whole seconds; timings need milliseconds.
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        raise ValueError(f"not a cue timestamp: {value!r}")
    hours, minutes, seconds, fraction = match.groups()
    millis = int(fraction.ljust(3, "0"))
    total = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return round(total + millis / 1000, 3)


def _is_speaker_name(name: str) -> bool:
    if len(name) > _MAX_NAME:
        return False
    # Every word that starts with a letter is capitalised: "Dana Ruiz", "Speaker 1",
    # "SPEAKER_00"; "so basically: ..." is text, not a speaker.
    return all(word[0].isupper() or word.isdigit() for word in name.split())


def _split_prefix(text: str) -> tuple[str | None, str]:
    match = _PREFIX.match(text)
    if match is None or not _is_speaker_name(match["name"]):
        return None, text
    return match["name"], text[match.end() :].strip()


class SubtitleAdapter(Adapter):
    name = "subtitles"
    suffixes = (".vtt", ".srt")
    description = "WebVTT / SRT transcripts, one conversation per file (+ optional .meta.json)"

    def sniff(self, source: SourceFile) -> bool:
        if source.path.suffix.lower() in self.suffixes:
            return True
        # Only the head is looked at, so sniffing a large file of another format is cheap.
        head = source.head(512).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
        return head.startswith("WEBVTT") or _looks_like_srt(head)

    def _format_of(self, source: SourceFile) -> str:
        suffix = source.path.suffix.lower()
        if suffix in self.suffixes:
            return suffix[1:]
        return "vtt" if source.text.lstrip("\ufeff \t\r\n").startswith("WEBVTT") else "srt"

    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        path = str(source.path)

        def reject(reason: str, locator: str = "file") -> Reject:
            return Reject(path, locator, reason, self.name, payload=source.data)

        sidecar, sidecar_raw, problem = read_sidecar(source.path)
        if problem is not None:
            yield reject(problem)
            return
        fmt = self._format_of(source)
        text = source.text.lstrip("\ufeff \t\r\n")
        if fmt == "srt" and (bad := _bad_srt_cue(text)) is not None:
            yield reject(*bad)
            return
        try:
            document = webvtt.from_buffer(io.StringIO(text), format=fmt, strict=True)
        except MalformedFileError:
            expected = "'WEBVTT' header" if fmt == "vtt" else "cue number and timing line"
            yield reject(f"not a valid {fmt.upper()} file (expected a {expected} first)")
            return
        except MalformedCaptionError as exc:
            yield reject(*_describe_bad_cue(str(exc), text))
            return
        captions: list[Any] = list(document.captions)
        if fmt == "srt":
            _restore_srt_identifiers(captions, text)

        sidecar = sidecar or Sidecar()
        warnings: list[str] = []
        speakers: dict[str, str] = {}  # name -> participant id, in order of appearance
        utterances: list[dict[str, Any]] = []
        previous: str | None = None
        for position, caption in enumerate(captions, start=1):
            cue = f"cue {caption.identifier or position}"
            body = " ".join(line.strip() for line in caption.text.split("\n") if line.strip())
            speaker = (caption.voice or "").strip() or None
            if speaker is None:
                speaker, body = _split_prefix(body)
            speaker = speaker or previous or _UNKNOWN
            previous = speaker
            if not body:
                warnings.append(f"{cue}: no text, skipped")
                continue
            if speaker not in speakers:
                speakers[speaker] = unique_id(speaker_slug(speaker), set(speakers.values()))
            utterance: dict[str, Any] = {"participant_id": speakers[speaker], "text": body}
            utterance["start"], utterance["end"] = _seconds(caption.start), _seconds(caption.end)
            utterance["meta"] = {"cue": caption.identifier} if caption.identifier else {}
            utterances.append(utterance)
        if not utterances:
            yield reject("no cues with text")
            return
        yield from transcript_conversation(
            source,
            self.name,
            self.options,
            sidecar=sidecar,
            sidecar_raw=sidecar_raw,
            speakers=speakers,
            utterances=utterances,
            language=_header_language(document),
            duration_seconds=max(u["end"] for u in utterances),
            warnings=warnings,
        )


def _header_language(document: Any) -> str | None:
    # De-facto WebVTT header line, written by YouTube and most caption tools.
    for line in getattr(document, "metadata", None) or []:
        key, _, value = line.partition(":")
        if key.strip().lower() == "language" and value.strip():
            return value.strip()
    return None


def _looks_like_srt(head: str) -> bool:
    lines = [line for line in head.splitlines() if line.strip()][:2]
    return len(lines) == 2 and lines[0].strip().isdigit() and bool(_SRT_TIMING.match(lines[1]))


def _bad_srt_cue(text: str) -> tuple[str, str] | None:
    """(reason, locator) of the first cue whose timing line is broken, else None."""
    lines = _lines(text)
    for number, line in enumerate(lines, start=1):
        if "-->" in line and not _SRT_TIMING.match(line):
            before = lines[number - 2].strip() if number > 1 else ""
            locator = f"cue {before}" if before.isdigit() else f"line {number}"
            return f"malformed cue timing at line {number}: {line.strip()!r}", locator
    return None


def _describe_bad_cue(message: str, text: str) -> tuple[str, str]:
    """(reason, locator) from webvtt-py's "Invalid cue block [...]" message."""
    try:
        block = ast.literal_eval(message[message.index("[") :])
    except (ValueError, SyntaxError):
        block = None
    arrows = [line for line in block or [] if "-->" in line]
    if not arrows:
        return f"malformed cue: {message}", "file"
    locator = "file" if "-->" in block[0] else f"cue {block[0].strip()}"
    bad = next((line for line in arrows if not _VTT_TIMING.match(line)), None)
    lines = _lines(text)
    number = next((i for i, line in enumerate(lines, 1) if line == (bad or arrows[-1])), "?")
    if bad is not None:
        return f"malformed cue at line {number}: {bad.strip()!r} is not a valid cue timing", locator
    # strict parsing also refuses a cue that follows the previous one without a blank line.
    return f"malformed cue: no empty line before the cue timing at line {number}", locator


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _restore_srt_identifiers(captions: list[Any], text: str) -> None:
    # webvtt-py drops SRT cue numbers; recover them from the text by cue timings.
    lines = _lines(text)
    numbers: dict[tuple[float, float], deque[str]] = defaultdict(deque)
    for index, line in enumerate(lines[1:], start=1):
        match = _SRT_TIMING.match(line)
        if match and lines[index - 1].strip().isdigit():
            key = (_seconds(match[1]), _seconds(match[2]))
            numbers[key].append(lines[index - 1].strip())
    for caption in captions:
        queue = numbers.get((_seconds(caption.start), _seconds(caption.end)))
        if queue:
            caption.identifier = queue.popleft()


register_adapter(SubtitleAdapter)
