"""Plain-text transcripts ("Name: text", "#Person1#:", Otter blocks) and meeting VTT exports
(Zoom's "Name: text" cues, Teams' <v Name> voice tags) become named, timed turns."""

from pathlib import Path

from convolens.ingest.base import IngestOptions, Parsed, Reject, SourceFile
from convolens.ingest.pipeline import discover_files, parse_paths
from convolens.ingest.registry import detect_format

OTTER = """Dana Ruiz  0:00
Thanks for calling Acme, how can I help you today?

Tom Becker  0:05
I want to cancel my account.
It costs too much.

Dana Ruiz  1:02:03
Sorry to hear that, let me check your plan.
"""
LINES = """[00:00:01] Agent: Hi, thanks for calling, how can I help?
[00:00:04] Customer: My bill is wrong
it doubled this month
[00:00:09] Agent: Let me check that for you.
"""
PERSONS = "#Person1#: Hello, how are you doing today?\n#Person2#: Not great.\n#Person1#: Why?\n"
ZOOM_VTT = """WEBVTT

1
00:00:01.000 --> 00:00:03.500
Dana Ruiz: Good morning, everyone.

2
00:00:04.000 --> 00:00:06.000
Li Wei: Morning! Shall we start with the roadmap?
"""
TEAMS_VTT = """WEBVTT

0a1b/1-0
00:00:00.000 --> 00:00:02.000
<v Dana Ruiz>Good morning, everyone.</v>

0a1b/2-0
00:00:02.500 --> 00:00:05.000
<v Li Wei>Morning! Shall we start?</v>
"""


def _one(path: Path) -> Parsed:
    results = list(parse_paths([path], options=IngestOptions()))
    assert len(results) == 1 and isinstance(results[0], Parsed), results
    return results[0]


def _turns(parsed: Parsed) -> list[tuple[str, str, float | None, float | None]]:
    names = {p.participant_id: p.name for p in parsed.conversation.participants}
    return [
        (names[u.participant_id] or "", u.text, u.start, u.end)
        for u in parsed.conversation.utterances
    ]


def test_otter_blocks_are_timed_turns_with_roles(tmp_path):
    path = tmp_path / "call.txt"
    path.write_text(OTTER)
    parsed = _one(path)
    assert parsed.source_format == "transcript"
    assert _turns(parsed) == [
        ("Dana Ruiz", "Thanks for calling Acme, how can I help you today?", 0.0, 5.0),
        ("Tom Becker", "I want to cancel my account. It costs too much.", 5.0, 3723.0),
        ("Dana Ruiz", "Sorry to hear that, let me check your plan.", 3723.0, 3723.0),
    ]
    roles = {p.name: p.role.value for p in parsed.conversation.participants}
    assert roles == {"Dana Ruiz": "agent", "Tom Becker": "customer"}


def test_name_colon_lines_with_times_and_continuations(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text(LINES)
    assert _turns(_one(path)) == [
        ("Agent", "Hi, thanks for calling, how can I help?", 1.0, 4.0),
        ("Customer", "My bill is wrong it doubled this month", 4.0, 9.0),
        ("Agent", "Let me check that for you.", 9.0, 9.0),
    ]


def test_dialogsum_person_tags_name_the_speakers(tmp_path):
    path = tmp_path / "dialogue.txt"
    path.write_text(PERSONS)
    assert [(name, text) for name, text, *_ in _turns(_one(path))] == [
        ("Person1", "Hello, how are you doing today?"),
        ("Person2", "Not great."),
        ("Person1", "Why?"),
    ]


def test_a_text_file_that_is_no_transcript_is_left_alone_in_a_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("Remember to renew the domain.\nAnd buy milk.\n")
    (tmp_path / "call.txt").write_text(OTTER)
    files, skipped, _ = discover_files([tmp_path])
    assert [f.name for f in files] == ["call.txt"]
    assert [f.name for f in skipped] == ["notes.txt"]
    # Named explicitly, it is read and refused with a reason, not a traceback.
    assert detect_format(SourceFile.read(tmp_path / "notes.txt")) is None
    reject = next(iter(parse_paths([tmp_path / "notes.txt"], fmt="transcript")))
    assert isinstance(reject, Reject) and "no speaker turns found" in reject.reason


def test_zoom_and_teams_vtt_keep_speaker_names(tmp_path):
    for name, text in (("zoom.vtt", ZOOM_VTT), ("teams.vtt", TEAMS_VTT)):
        path = tmp_path / name
        path.write_text(text)
        turns = _turns(_one(path))
        assert [speaker for speaker, *_ in turns] == ["Dana Ruiz", "Li Wei"], name
        assert turns[0][1] == "Good morning, everyone."
        assert not turns[1][1].startswith("Li Wei")
