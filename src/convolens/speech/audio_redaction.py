"""Recordings with their PII beeped (or silenced): the copy every key that reads text hears
(the original: admin keys only, with confirm).

Which stretches of audio go is decided from the words, in two ways whose union is taken:
- the words whose stored text the PII redactor replaced (`<PHONE_NUMBER>`,
  `<PERSON_1a2b3c4d>`, `****`), with their stored timings: what the text shows redacted;
- the redactor (`convolens.enrich.pii.Redactor`) run here over the recogniser's own words
  from the raw layer (the original text, grouped into the stored utterances), so the audio
  is redacted even where the text was not (yet), e.g. a job run without labelling.
A value can span several words ("415 555 0134"). Word timings are approximate (Whisper
often ends a word before its sound does), so each span is padded (`PAD_S`) and then
reaches into the pause around it, up to the neighbouring words (at most `REACH_S`): a
beep over silence costs nothing, a syllable left over costs a digit. Spans closer than
`MERGE_GAP_S` are merged. Every channel is edited: the other side of a call can carry
the value as echo.

The copy is 16 kHz FLAC, the timeline the word timings were measured on, kept beside the
warehouse (`<warehouse>.audio/`, owner-only) with a JSON manifest (spans, types: never a
value). The original stays where intake put it (the spooled upload: the raw layer), served
to admin keys only, with confirm (GET /v1/conversations/{id}/audio?raw=true&confirm=true).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from convolens.speech.beep import BEEP_HZ, Mode, redact_samples, write_flac
from convolens.store.private import private_dir, private_file

if TYPE_CHECKING:
    from convolens.enrich.pii.redact import Redactor
    from convolens.store.warehouse import Warehouse

__all__ = [
    "BEEP_HZ",
    "MERGE_GAP_S",
    "PAD_S",
    "REACH_S",
    "RecordingCopy",
    "RedactedSpan",
    "audio_redactor",
    "audio_store",
    "find_recording",
    "merge_spans",
    "pii_spans",
    "reach_into_pauses",
    "recording_files",
    "recordings_without_copy",
    "redact_recordings",
    "redact_samples",
    "store_redacted_recording",
]

log = logging.getLogger("convolens.speech")

PAD_S = 0.08  # word timings are approximate: take this much more on each side
REACH_S = 0.5  # ... and up to this much more, where no other word is said
MERGE_GAP_S = 0.25  # shorter gaps between spans are beeped too (no speech fragment between)
# A stored word the redactor replaced: a tag or hash (<TYPE>, <TYPE_1a2b3c4d>) or a mask
# (****), perhaps with the punctuation the recogniser attached.
_REPLACED = re.compile(r"""^[\s"'(\[]*(?:<[A-Z][A-Z0-9_]*>|\*+)[\s.,;:!?"')\]]*$""")
# Words of the raw layer further than this from every stored word were dropped by the
# recogniser's guards (repeats, invented trailing words): not in the transcript.
_MAX_ASSIGN_S = 1.0


class RedactedSpan(BaseModel):
    """A stretch of audio replaced, in seconds, and the PII types heard in it."""

    start: float
    end: float
    types: list[str]


class RecordingCopy(BaseModel):
    """The manifest kept beside a redacted copy (no value, only where and what type)."""

    conversation_id: str
    version: int
    file: str  # the copy's name in the audio store
    original: str  # where the original is (the raw layer): admin + confirm only
    media_type: str = "audio/flac"
    sample_rate: int = 16000
    channels: int
    duration_s: float
    mode: Mode
    spans: list[RedactedSpan]
    detector: str | None
    redacted_at: str

    def path(self, store: Path) -> Path:
        return store / self.file


# -- where copies live ------------------------------------------------------------------
def audio_store(db_path: Path) -> Path:
    """The folder of redacted copies beside a warehouse file."""
    return db_path.with_name(db_path.stem + ".audio")


def _stem(conversation_id: str) -> str:
    # Ids can hold any character: the file name is a digest of the id.
    return hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:32]


def recording_files(db_path: Path, conversation_id: str) -> list[Path]:
    """Every redacted copy and manifest of a conversation (all versions, and any file a
    killed process left half written), for erasure."""
    store = audio_store(db_path)
    if not store.is_dir():
        return []
    stem = _stem(conversation_id)
    return sorted([*store.glob(f"{stem}-v*.*"), *store.glob(f".{stem}-v*.partial")])


def find_recording(wh: Warehouse, conversation_id: str, version: int) -> RecordingCopy | None:
    """The manifest of a version's redacted copy, if one was made and its file is there."""
    manifest = audio_store(wh.path) / f"{_stem(conversation_id)}-v{version}.json"
    try:
        copy = RecordingCopy.model_validate_json(manifest.read_bytes())
    except (OSError, ValueError):
        return None
    if copy.conversation_id != conversation_id or not copy.path(audio_store(wh.path)).is_file():
        return None
    return copy


# -- which stretches go -----------------------------------------------------------------
@dataclass
class _Word:
    text: str
    start: float
    end: float
    joins_previous: bool = False


@dataclass
class _Utterance:
    utterance_id: str
    channel: int | None
    words: list[_Word] = field(default_factory=list)


def merge_spans(
    spans: Iterable[tuple[float, float, Iterable[str]]],
    *,
    pad: float = PAD_S,
    gap: float = MERGE_GAP_S,
    duration: float | None = None,
) -> list[RedactedSpan]:
    """Padded, clipped to [0, duration], and merged where closer than `gap`."""
    padded = sorted(
        (max(0.0, s - pad), e + pad if duration is None else min(duration, e + pad), set(t))
        for s, e, t in spans
    )
    out: list[RedactedSpan] = []
    for start, end, types in padded:
        if end <= start:
            continue
        if out and start - out[-1].end <= gap:
            out[-1].end = max(out[-1].end, end)
            out[-1].types = sorted(set(out[-1].types) | types)
        else:
            out.append(RedactedSpan(start=start, end=end, types=sorted(types)))
    for span in out:
        span.start, span.end = round(span.start, 4), round(span.end, 4)
    return out


def reach_into_pauses(
    spans: Sequence[tuple[float, float, set[str]]], words: Sequence[dict[str, Any]]
) -> list[tuple[float, float, set[str]]]:
    """Each span padded by `PAD_S`, and further into the pause on each side up to the
    nearest word it does not cover (at most `REACH_S`)."""
    ends = sorted(float(w["end_s"]) for w in words)
    starts = sorted(float(w["start_s"]) for w in words)
    out = []
    for start, end, types in spans:
        at = bisect.bisect_right(ends, start) - 1  # the last word ending before the span
        before = ends[at] if at >= 0 else 0.0
        at = bisect.bisect_left(starts, end)  # the first word starting after it
        after = starts[at] if at < len(starts) else end + REACH_S
        out.append(
            (
                min(start - PAD_S, max(before, start - REACH_S)),
                max(end + PAD_S, min(after, end + REACH_S)),
                types,
            )
        )
    return out


def _stored_words(wh: Warehouse, conversation_id: str) -> list[dict[str, Any]]:
    return wh.query(
        "SELECT w.utterance_id, w.text, w.start_s, w.end_s, u.channel_index "
        "FROM words_current w JOIN utterances_current u "
        "ON u.utterance_id = w.utterance_id AND u.conversation_id = w.conversation_id "
        "WHERE w.conversation_id = ? ORDER BY w.start_s, w.utterance_id, w.word_index",
        [conversation_id],
    )


def _raw_words(wh: Warehouse, conversation_id: str, version: int) -> tuple[str, Any] | None:
    """('recording', the recogniser's output) or ('stream', the conversation as received)."""
    rows = wh.query(
        "SELECT locator, decode(payload) AS payload FROM raw_interactions "
        "WHERE conversation_id = ? AND version = ? AND locator IN ('recording', 'stream') "
        "ORDER BY raw_id LIMIT 1",
        [conversation_id, version],
    )
    if not rows:
        return None
    return str(rows[0]["locator"]), json.loads(rows[0]["payload"])


def _original_utterances(
    wh: Warehouse, conversation_id: str, version: int, stored: list[dict[str, Any]]
) -> list[_Utterance]:
    """The original words of each stored utterance, read from the raw layer.

    The recogniser's words carry the timings it gave (the stored ones were tightened to
    voice activity), so each is given to the utterance of the nearest stored word on its
    channel."""
    raw = _raw_words(wh, conversation_id, version)
    if raw is None:
        return []
    locator, payload = raw
    if locator == "stream":
        out = []
        for seq, u in enumerate(payload.get("utterances") or []):
            words = [
                _Word(str(w["text"]), float(w["start"]), float(w["end"]))
                for w in u.get("words") or []
            ]
            out.append(_Utterance(f"{conversation_id}:{seq}", u.get("channel_index"), words))
        return out
    split = payload.get("separation") == "channels"
    by_channel: dict[int | None, list[dict[str, Any]]] = {}
    for w in stored:
        by_channel.setdefault(w["channel_index"] if split else None, []).append(w)
    centres = {
        ch: [(float(w["start_s"]) + float(w["end_s"])) / 2 for w in words]
        for ch, words in by_channel.items()
    }
    utterances: dict[str, _Utterance] = {}
    for index, result in enumerate(payload.get("asr") or []):
        channel = index if split else None
        candidates, mids = by_channel.get(channel, []), centres.get(channel, [])
        for segment in result.get("segments") or []:
            for w in segment.get("words") or []:
                word = _Word(
                    str(w.get("text") or ""),
                    float(w["start"]),
                    float(w["end"]),
                    bool(w.get("joins_previous")),
                )
                near = _nearest(mids, (word.start + word.end) / 2)
                if near is None or abs(mids[near] - (word.start + word.end) / 2) > _MAX_ASSIGN_S:
                    continue
                uid = candidates[near]["utterance_id"]
                utterances.setdefault(uid, _Utterance(uid, channel)).words.append(word)
    for utterance in utterances.values():
        utterance.words.sort(key=lambda w: w.start)
    return list(utterances.values())


def _nearest(sorted_values: Sequence[float], value: float) -> int | None:
    if not sorted_values:
        return None
    at = bisect.bisect_left(sorted_values, value)
    options = [i for i in (at - 1, at) if 0 <= i < len(sorted_values)]
    return min(options, key=lambda i: abs(sorted_values[i] - value))


def _joined(words: list[_Word]) -> tuple[str, list[tuple[int, int]]]:
    """The utterance text as the recogniser wrote it, and each word's character span."""
    pieces: list[str] = []
    offsets: list[tuple[int, int]] = []
    length = 0
    for i, w in enumerate(words):
        token = w.text if i == 0 or w.joins_previous else " " + w.text.lstrip()
        start = length + (len(token) - len(token.lstrip()))
        pieces.append(token)
        length += len(token)
        offsets.append((start, length))
    return "".join(pieces), offsets


def _participant_terms(wh: Warehouse, conversation_id: str) -> tuple[list[str], list[str]]:
    from convolens.enrich.pii.detect import participant_terms

    rows = wh.query(
        "SELECT name, email, role FROM participants_current WHERE conversation_id = ?",
        [conversation_id],
    )
    people = [r for r in rows if r["role"] != "bot"]
    bots = [r for r in rows if r["role"] == "bot"]
    return (
        participant_terms([r["name"] for r in people], [r["email"] for r in people]),
        participant_terms([r["name"] for r in bots], []),
    )


def pii_spans(
    wh: Warehouse, conversation_id: str, version: int, redactor: Redactor | None
) -> list[tuple[float, float, set[str]]]:
    """Unpadded (start, end, types) of every word to take out (see the module docstring)."""
    stored = _stored_words(wh, conversation_id)
    found: list[tuple[float, float, set[str]]] = [
        (float(w["start_s"]), float(w["end_s"]), {_type_of(w["text"])})
        for w in stored
        if _REPLACED.match(w["text"] or "")
    ]
    if redactor is None:
        return found
    utterances = [u for u in _original_utterances(wh, conversation_id, version, stored) if u.words]
    joined = [_joined(u.words) for u in utterances]
    names, bots = _participant_terms(wh, conversation_id)
    results = redactor.redact([text for text, _ in joined], participants=names, keep=bots)
    for utterance, (_, offsets), (_, redactions) in zip(utterances, joined, results, strict=True):
        for item in redactions:
            for word, (a, b) in zip(utterance.words, offsets, strict=True):
                if a < item.original_end and item.original_start < b:
                    found.append((word.start, word.end, {item.entity_type}))
    # A raw word's timing is the recogniser's; the stored one may reach further: take both.
    return found


def _type_of(text: str) -> str:
    match = re.search(r"<([A-Z][A-Z0-9_]*?)(?:_[0-9a-f]{8})?>", text)
    return match.group(1) if match else "MASKED"


def store_redacted_recording(
    wh: Warehouse,
    conversation_id: str,
    version: int,
    original: Path,
    redactor: Redactor | None,
    *,
    mode: Mode = "beep",
) -> RecordingCopy:
    """Decode `original`, take out the PII spans, write the copy and its manifest."""
    from convolens.speech.decode import decode_audio

    audio = decode_audio(original)
    channels = [c.copy() for c in audio.channels]
    found = pii_spans(wh, conversation_id, version, redactor)
    spans = merge_spans(
        reach_into_pauses(found, _stored_words(wh, conversation_id)), pad=0.0,
        duration=audio.duration,
    )  # fmt: skip
    redact_samples(channels, spans, audio.sample_rate, mode)
    store = private_dir(audio_store(wh.path))
    stem = f"{_stem(conversation_id)}-v{version}"
    # Written under a temporary name and renamed: a reader never gets half a file.
    partial = store / f".{stem}.{uuid.uuid4().hex}.partial"
    try:
        write_flac(partial, channels, audio.sample_rate)
        os.replace(partial, store / f"{stem}.flac")
    finally:
        partial.unlink(missing_ok=True)
    copy = RecordingCopy(
        conversation_id=conversation_id,
        version=version,
        file=f"{stem}.flac",
        original=str(original),
        channels=len(channels),
        duration_s=round(audio.duration, 3),
        mode=mode,
        spans=spans,
        detector=getattr(redactor, "model_id", None),
        redacted_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    manifest = store / f".{stem}.{uuid.uuid4().hex}.json.partial"
    try:
        with private_file(manifest) as out:
            out.write(copy.model_dump_json(indent=1).encode("utf-8"))
        os.replace(manifest, store / f"{stem}.json")
    finally:
        manifest.unlink(missing_ok=True)
    return copy


@functools.lru_cache(maxsize=4)
def _redactor(config_json: str) -> Redactor:
    from convolens.enrich.pii.policy import PiiConfig
    from convolens.enrich.pii.redact import Redactor

    return Redactor(PiiConfig.model_validate_json(config_json))


def audio_redactor(pii_config: dict[str, Any]) -> Redactor:
    """The redactor of a `[components.pii]` table, loaded once per process and policy."""
    from convolens.enrich.pii.policy import PiiConfig

    return _redactor(PiiConfig.model_validate(pii_config).model_dump_json())


def redact_recordings(
    wh: Warehouse,
    conversation_ids: Iterable[str],
    pii_config: dict[str, Any] | None,
    *,
    audio: Path | None = None,
    mode: Mode = "beep",
) -> list[RecordingCopy]:
    """A redacted copy of the current version of each recorded conversation.

    `pii_config` is the `[components.pii]` table (None where that component is disabled:
    then only the words the text redaction replaced are taken out). The original is
    `audio` when given (a live stream's recording), else the file the raw layer was read
    from (an upload's spooled file), when it is still there. A conversation whose copy
    cannot be made gets none and is logged: no copy means nothing is served (only admins
    can fetch the original), never the original in its place.
    """
    made: list[RecordingCopy] = []
    for cid in conversation_ids:
        try:
            heads = wh.query(
                "SELECT h.version, r.source_path FROM conversation_heads h "
                "JOIN raw_interactions r ON r.conversation_id = h.conversation_id "
                "AND r.version = h.version AND r.locator IN ('recording', 'stream') "
                "WHERE h.conversation_id = ? LIMIT 1",
                [cid],
            )
            if not heads:
                continue  # not a recording
            original = audio or Path(heads[0]["source_path"])
            if not original.is_file():
                continue
            redactor = audio_redactor(pii_config) if pii_config is not None else None
            made.append(
                store_redacted_recording(
                    wh, cid, int(heads[0]["version"]), original, redactor, mode=mode
                )
            )
        except Exception as exc:  # one recording's failure never fails the others or the job
            log.warning("no redacted copy of a recording (%s): %s", cid, type(exc).__name__)
    return made


def recordings_without_copy(wh: Warehouse) -> list[str]:
    """Recorded conversations whose current version has no redacted copy yet (what
    `convolens ingest` passes to `redact_recordings` after a run)."""
    rows = wh.query(
        "SELECT DISTINCT h.conversation_id, h.version FROM conversation_heads h "
        "JOIN raw_interactions r ON r.conversation_id = h.conversation_id "
        "AND r.version = h.version AND r.locator = 'recording' ORDER BY 1"
    )
    return [
        r["conversation_id"]
        for r in rows
        if find_recording(wh, r["conversation_id"], int(r["version"])) is None
    ]
