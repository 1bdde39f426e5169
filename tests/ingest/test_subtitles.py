"""WebVTT / SRT transcripts: speakers, float timings, sidecar metadata, rejects."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from convolens.ingest.base import IngestOptions, Parsed, Reject, SourceFile
from convolens.ingest.registry import detect_format, get_adapter
from convolens.ingest.subtitles import SubtitleAdapter
from convolens.model import Channel, Role

DATA = Path(__file__).resolve().parent.parent / "data" / "subtitles"


def parse(path: Path, options: IngestOptions | None = None) -> list[Parsed | Reject]:
    return list(SubtitleAdapter(options).parse(SourceFile.read(path)))


def parse_one(path: Path, options: IngestOptions | None = None) -> Parsed:
    results = parse(path, options)
    assert len(results) == 1
    assert isinstance(results[0], Parsed), results[0]
    return results[0]


def parse_text(tmp_path: Path, name: str, text: str) -> list[Parsed | Reject]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return parse(path)


def test_vtt_voice_tags_overlap_and_sidecar() -> None:
    result = parse_one(DATA / "call-0042.vtt")
    conv = result.conversation
    assert conv.channel is Channel.call
    assert [(p.participant_id, p.name, p.role) for p in conv.participants] == [
        ("dana-ruiz", "Dana Ruiz", Role.agent),  # the sidecar's "agent"
        ("tom-becker", "Tom Becker", Role.customer),  # the sidecar's "roles"
    ]
    speakers = [u.participant_id for u in conv.utterances]
    assert speakers == ["dana-ruiz", "tom-becker", "tom-becker", "dana-ruiz", "dana-ruiz"]
    first, second = conv.utterances[:2]
    # Float timings, not webvtt-py's truncated whole seconds; cue 2 overlaps cue 1.
    assert (first.start, first.end) == (0.5, 3.5)
    assert (second.start, second.end) == (3.2, 7.25)
    assert second.start is not None and second.start < 3.5  # before cue 1 ends
    assert conv.utterances[3].end == 14.125
    assert conv.utterances[4].start == 62.0
    # Multi-line cue joined with a space; inline tags removed.
    assert first.text == "Thank you for calling Acme support, this is Dana. How can I help?"
    assert conv.utterances[4].text == "I've issued a full refund for the duplicate charge."
    assert first.meta == {"cue": "1"}

    source = conv.source
    assert (source.system, source.source_id, source.queue, source.agent) == (
        "dialpad",
        "0042",
        "Billing",
        "Dana Ruiz",
    )
    assert source.tags == ["refund", "billing"]
    assert conv.language == "en"
    assert conv.subject == "Duplicate charge on March invoice"
    assert conv.duration_seconds == 71.5
    assert conv.started_at == datetime(2026, 3, 2, 9, 14, tzinfo=UTC)
    assert conv.links.account_id == "55"  # numeric in the sidecar, a string in the model
    assert conv.links.order_id == "ORDER-1234"
    assert conv.meta == {"recording": "rec-0042.wav"}

    file_raw, sidecar_raw = result.raw
    assert file_raw.locator == "file"
    assert file_raw.payload == (DATA / "call-0042.vtt").read_bytes()
    assert file_raw.encoding == "utf-8"
    assert sidecar_raw.locator == "sidecar"
    assert sidecar_raw.payload == (DATA / "call-0042.meta.json").read_bytes()


def test_srt_name_prefixes_and_continuation() -> None:
    conv = parse_one(DATA / "support-call.srt").conversation
    assert [(p.participant_id, p.name) for p in conv.participants] == [
        ("agent-smith", "Agent Smith"),
        ("maria-lopez", "Maria Lopez"),
        ("speaker-02", "SPEAKER_02"),
    ]
    # No sidecar: "Agent Smith" is the agent by label, Maria the other side; the splinter
    # SPEAKER_02 says nothing of its role (tests/ingest/test_roles.py has the rules).
    assert [p.role for p in conv.participants] == [Role.agent, Role.customer, Role.unknown]
    turns = [(u.participant_id, u.text) for u in conv.utterances]
    assert turns == [
        ("agent-smith", "Good morning, you're through to Northwind billing."),
        ("maria-lopez", "Hi, I can't log in to my account since yesterday."),
        ("maria-lopez", "It says my password expired."),  # no prefix: continuation
        ("agent-smith", "No problem. I'll send you a reset link right now."),
        ("speaker-02", "Thanks!"),
    ]
    assert (conv.utterances[0].start, conv.utterances[0].end) == (1.0, 4.25)
    assert conv.utterances[3].end == 15.75
    assert [u.meta.get("cue") for u in conv.utterances] == ["1", "2", "3", "4", "5"]
    assert conv.source.system == "transcript"
    assert conv.source.source_id is None
    assert conv.duration_seconds == 17.2  # end of the last cue when no sidecar says


def test_latin1_srt_is_decoded() -> None:
    result = parse_one(DATA / "latin1-call.srt")
    conv = result.conversation
    assert [p.name for p in conv.participants] == ["Jürgen Müller", "Anna Weiß"]
    assert [p.participant_id for p in conv.participants] == ["jurgen-muller", "anna-weiss"]
    assert conv.utterances[0].text.startswith("Grüß Gott")
    assert "Müller" in conv.utterances[1].text
    assert result.raw[0].encoding is not None and result.raw[0].encoding != "utf-8"


def test_malformed_vtt_is_rejected_with_file_and_cue() -> None:
    path = DATA / "bad" / "broken-timing.vtt"
    (reject,) = parse(path)
    assert isinstance(reject, Reject)
    assert reject.source_path == str(path)
    assert reject.source_format == "subtitles"
    assert reject.locator == "cue 2"
    assert "00:00:0x.500" in reject.reason and "line 8" in reject.reason
    assert reject.describe().startswith("broken-timing.vtt cue 2:")


def test_malformed_sidecar_rejects_the_transcript() -> None:
    (reject,) = parse(DATA / "bad" / "broken-sidecar.vtt")
    assert isinstance(reject, Reject)
    assert "broken-sidecar.meta.json" in reject.reason
    assert "invalid JSON" in reject.reason


def test_sidecar_with_unknown_key_or_bad_role_is_rejected(tmp_path: Path) -> None:
    shutil.copy(DATA / "support-call.srt", tmp_path / "c.srt")
    (tmp_path / "c.meta.json").write_text('{"roles": {"Maria Lopez": "client"}}')
    (reject,) = parse(tmp_path / "c.srt")
    assert isinstance(reject, Reject)
    assert "c.meta.json" in reject.reason and "roles" in reject.reason
    (tmp_path / "c.meta.json").write_text('{"langauge": "en"}')
    (reject,) = parse(tmp_path / "c.srt")
    assert isinstance(reject, Reject) and "langauge" in reject.reason


def test_broken_srt_timing_is_rejected_not_dropped(tmp_path: Path) -> None:
    text = "1\n00:00:01,000 --> 00:00:02,000\nTom: hi\n\n2\n00:00:0x,000 --> 00:00:03,000\nbye\n"
    (reject,) = parse_text(tmp_path, "bad.srt", text)
    assert isinstance(reject, Reject)
    assert reject.locator == "cue 2"
    assert "line 6" in reject.reason


def test_not_a_subtitle_file(tmp_path: Path) -> None:
    (reject,) = parse_text(tmp_path, "notes.vtt", "just some notes\n")
    assert isinstance(reject, Reject)
    assert "WEBVTT" in reject.reason
    (reject,) = parse_text(tmp_path, "empty.vtt", "WEBVTT\n")
    assert isinstance(reject, Reject)


def test_end_before_start_is_rejected(tmp_path: Path) -> None:
    text = "WEBVTT\n\n00:00:05.000 --> 00:00:02.000\n<v Tom>hi\n"
    (reject,) = parse_text(tmp_path, "backwards.vtt", text)
    assert isinstance(reject, Reject)
    assert "before it starts" in reject.reason


def test_unknown_speaker_and_prefix_heuristic(tmp_path: Path) -> None:
    text = (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.000\nhello, anyone there?\n\n"
        "00:00:01.000 --> 00:00:02.000\nso basically: it broke\n\n"
        "00:00:02.000 --> 00:00:03.000\nSpeaker 1: yes, hi\n\n"
        "00:00:03.000 --> 00:00:04.000\nTOM: hi\n\n"
        "00:00:04.000 --> 00:00:05.000\nTom: hello\n"
    )
    (result,) = parse_text(tmp_path, "anon.vtt", text)
    assert isinstance(result, Parsed)
    conv = result.conversation
    assert [p.participant_id for p in conv.participants] == ["unknown", "speaker-1", "tom", "tom-2"]
    assert [u.participant_id for u in conv.utterances] == [
        "unknown",
        "unknown",  # lowercase "so basically:" is text, not a speaker
        "speaker-1",
        "tom",
        "tom-2",  # "TOM" and "Tom" are different labels; ids must stay unique
    ]
    assert conv.utterances[1].text == "so basically: it broke"
    assert conv.utterances[2].text == "yes, hi"


def test_default_channel_and_source_system_options(tmp_path: Path) -> None:
    options = IngestOptions(default_channel="meeting", source_system="zoom")
    conv = parse_one(DATA / "support-call.srt", options).conversation
    assert conv.channel is Channel.meeting
    assert conv.source.system == "zoom"
    # The sidecar's own values win over the defaults.
    conv = parse_one(DATA / "call-0042.vtt", options).conversation
    assert conv.channel is Channel.call and conv.source.system == "dialpad"


@pytest.mark.parametrize("name", ["call-0042.vtt", "support-call.srt", "latin1-call.srt"])
def test_parsing_twice_is_stable(name: str) -> None:
    first = parse_one(DATA / name).conversation
    second = parse_one(DATA / name).conversation
    assert first.conversation_id == second.conversation_id
    assert first.content_hash() == second.content_hash()
    assert first == second


def test_content_id_without_sidecar_id_changes_with_content(tmp_path: Path) -> None:
    base = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v Tom>hi\n"
    (one,) = parse_text(tmp_path, "a.vtt", base)
    (two,) = parse_text(tmp_path, "b.vtt", base.replace("hi", "hello"))
    assert isinstance(one, Parsed) and isinstance(two, Parsed)
    assert one.conversation.conversation_id != two.conversation.conversation_id


def test_registered_and_detected(tmp_path: Path) -> None:
    assert isinstance(get_adapter("subtitles"), SubtitleAdapter)
    assert detect_format(SourceFile.read(DATA / "call-0042.vtt")) == "subtitles"
    # Format by content when the suffix says nothing.
    path = tmp_path / "transcript.txt"
    path.write_bytes((DATA / "call-0042.vtt").read_bytes())
    source = SourceFile.read(path)
    assert SubtitleAdapter().sniff(source)
    (result,) = SubtitleAdapter().parse(source)
    assert isinstance(result, Parsed) and len(result.conversation.utterances) == 5
    srt = tmp_path / "transcript2.txt"
    srt.write_bytes((DATA / "support-call.srt").read_bytes())
    assert SubtitleAdapter().sniff(SourceFile.read(srt))
    (result,) = SubtitleAdapter().parse(SourceFile.read(srt))
    assert isinstance(result, Parsed) and len(result.conversation.utterances) == 5
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    assert not SubtitleAdapter().sniff(SourceFile.read(other))
