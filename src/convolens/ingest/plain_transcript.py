"""Plain-text transcripts: "Name: text" lines, "#Person1#: text" lines, Otter-style blocks.

One `.txt` file is one conversation. Three layouts are read:

- one turn per line, `Name: text` (optionally after a `[00:01:02]` or `00:01:02` time);
- DialogSum style, `#Person1#: text` (the speaker is `Person1`);
- Otter.ai exports: a `Name  0:03` header line (name, spaces, m:ss or h:mm:ss), then the
  turn's text on the lines below, up to the next header.

A line that names no speaker continues the previous turn. Roles come from the sidecar,
the speakers' labels and what they say (`roles.py`), as for subtitles; timings, when the
file has them, are the turn's start in seconds from the start of the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from convolens.ingest.base import (
    Adapter,
    ParseResult,
    Reject,
    SourceFile,
)
from convolens.ingest.registry import register_adapter
from convolens.ingest.sidecar import Sidecar, read_sidecar
from convolens.ingest.transcript_files import speaker_slug, transcript_conversation, unique_id

__all__ = ["PlainTranscriptAdapter", "Turn", "parse_transcript_text"]

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?"
# A name is 1-5 words of letters/digits (with _ . ' - @ inside); "#Person1#" too.
_NAME = r"#[\w .\-]{1,40}#|[^\W\d_][\w'.\-@]*(?: [\w'.\-@]+){0,4}"
_LINE_TURN = re.compile(
    rf"^\s*(?:\[?(?P<time>{_TIME})\]?\s+)?(?P<name>{_NAME})\s*:\s+(?P<text>\S.*)$"
)
_OTTER_HEADER = re.compile(rf"^(?P<name>{_NAME})\s+(?P<time>{_TIME})\s*$")
_MAX_NAME = 48


@dataclass
class Turn:
    """One speaker turn of a text transcript."""

    speaker: str
    text: str
    start: float | None = None


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    parts = [float(part) for part in value.split(":")]
    total = 0.0
    for part in parts:
        total = total * 60 + part
    return round(total, 3)


def _speaker(name: str) -> str | None:
    name = name.strip()
    if name.startswith("#") and name.endswith("#") and len(name) > 2:
        return name.strip("#").strip() or None
    if len(name) > _MAX_NAME:
        return None
    # Every word that starts with a letter is capitalised ("Dana Ruiz", "Speaker 1", "SPEAKER_00");
    # "so basically: ..." is text, not a speaker. Email addresses are names too.
    if "@" in name:
        return name
    return name if all(w[0].isupper() or w[0].isdigit() for w in name.split()) else None


def parse_transcript_text(text: str) -> list[Turn]:
    """Speaker turns of a plain-text transcript, in order (empty if none names a speaker)."""
    turns: list[Turn] = []
    lines = text.lstrip("\ufeff").splitlines()
    otter = _is_otter(lines)
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if otter:
            header = _OTTER_HEADER.match(stripped)
            speaker = _speaker(header["name"]) if header else None
            if header and speaker:
                turns.append(Turn(speaker, "", _seconds(header["time"])))
                continue
        else:
            match = _LINE_TURN.match(stripped)
            speaker = _speaker(match["name"]) if match else None
            if match and speaker:
                turns.append(Turn(speaker, match["text"].strip(), _seconds(match["time"])))
                continue
        if turns:  # a line naming no speaker goes on with the previous turn
            turns[-1].text = f"{turns[-1].text} {stripped}".strip()
    return [turn for turn in turns if turn.text]


def _is_otter(lines: list[str]) -> bool:
    """Otter blocks: at least one `Name  0:00` header followed by a text line."""
    headers = 0
    for index, line in enumerate(lines[:-1]):
        header = _OTTER_HEADER.match(line.strip())
        if header and _speaker(header["name"]) and lines[index + 1].strip():
            headers += 1
    return headers >= 1 and not any(_LINE_TURN.match(line.strip()) for line in lines[:3])


def _looks_like_transcript(head: str) -> bool:
    lines = [line for line in head.splitlines() if line.strip()][:40]
    if _is_otter(lines):
        return True
    named = 0
    for line in lines:
        match = _LINE_TURN.match(line.strip())
        named += bool(match and _speaker(match["name"]))
    return named >= 2 and named * 2 >= len(lines)


def turns_to_messages(turns: list[Turn]) -> list[dict[str, Any]]:
    """Turns as documented conversation-JSON messages (author, text, start)."""
    messages: list[dict[str, Any]] = []
    for turn in turns:
        message: dict[str, Any] = {"author": turn.speaker, "text": turn.text}
        if turn.start is not None:
            message["start"] = turn.start
        messages.append(message)
    return messages


class PlainTranscriptAdapter(Adapter):
    name = "transcript"
    suffixes = (".txt",)
    sniff_in_folders = True
    description = (
        "Plain-text transcripts: 'Name: text' or '#Person1#: text' lines, Otter.ai exports "
        "(+ optional .meta.json)."
    )

    def sniff(self, source: SourceFile) -> bool:
        if source.path.suffix.lower() not in self.suffixes:
            return False
        head = source.head(16 * 1024).decode("utf-8", errors="replace")
        return _looks_like_transcript(head)

    def parse(self, source: SourceFile) -> Iterator[ParseResult]:
        path = str(source.path)

        def reject(reason: str) -> Reject:
            return Reject(path, "file", reason, self.name, payload=source.data)

        sidecar, sidecar_raw, problem = read_sidecar(source.path)
        if problem is not None:
            yield reject(problem)
            return
        sidecar = sidecar or Sidecar()
        turns = parse_transcript_text(source.text)
        if not turns:
            yield reject(
                "no speaker turns found: expected 'Name: text' lines, '#Person1#: text' "
                "lines or Otter-style 'Name  0:00' blocks"
            )
            return
        speakers: dict[str, str] = {}
        utterances: list[dict[str, Any]] = []
        for turn in turns:
            if turn.speaker not in speakers:
                taken = set(speakers.values())
                speakers[turn.speaker] = unique_id(speaker_slug(turn.speaker), taken)
            utterance: dict[str, Any] = {"participant_id": speakers[turn.speaker]}
            utterance["text"] = turn.text
            if turn.start is not None:
                utterance["start"] = turn.start
            utterances.append(utterance)
        # A timed turn ends where the next one starts. The file does not say when the last
        # one ends: it gets no length rather than an invented one (the model wants both).
        for current, following in zip(utterances, [*utterances[1:], {}], strict=True):
            if "start" in current:
                current["end"] = max(current["start"], following.get("start", current["start"]))
        yield from transcript_conversation(
            source,
            self.name,
            self.options,
            sidecar=sidecar,
            sidecar_raw=sidecar_raw,
            speakers=speakers,
            utterances=utterances,
        )


register_adapter(PlainTranscriptAdapter)
