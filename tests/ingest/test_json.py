from pathlib import Path

from convolens.ingest.base import IngestOptions, Parsed, Reject, SourceFile
from convolens.ingest.json_conversations import JsonConversationAdapter
from convolens.model import Role

DATA = Path(__file__).resolve().parents[1] / "data" / "json"


def _parse(name: str) -> tuple[list[Parsed], list[Reject]]:
    results = list(JsonConversationAdapter(IngestOptions()).parse(SourceFile.read(DATA / name)))
    return [r for r in results if isinstance(r, Parsed)], [
        r for r in results if isinstance(r, Reject)
    ]


def test_jsonl_keeps_valid_lines_and_rejects_bad_ones_with_line_numbers():
    parsed, rejects = _parse("chats.jsonl")
    assert [p.conversation.source.source_id for p in parsed] == [
        "chat-1001",
        "chat-1002",
        "chat-1005",
    ]
    assert [(r.locator, r.reason) for r in rejects] == [
        ("line 3", "message 1: missing 'text'"),
        ("line 4", rejects[1].reason),
    ]
    assert rejects[1].reason.startswith("invalid JSON")


def test_jsonl_fields_map_onto_the_canonical_model():
    parsed, _ = _parse("chats.jsonl")
    chat = parsed[0].conversation
    assert chat.channel == "chat" and chat.source.system == "intercom"
    assert chat.source.queue == "Access" and chat.source.agent == "Sam Patel"
    assert chat.source.tags == ["login"] and chat.links.account_id == "ACC-1"
    assert [p.role for p in chat.participants] == [Role.customer, Role.agent]
    assert chat.participants[0].email == "ann@lee.io"
    assert chat.utterances[1].text == "Sure, which device are you on?"
    assert chat.utterances[1].sent_at.isoformat() == "2026-09-01T10:02:00+00:00"
    # Undeclared authors become participants with the role their message gives.
    bot_chat = parsed[1].conversation
    assert {(p.participant_id, p.role) for p in bot_chat.participants} == {
        ("Bo", Role.customer),
        ("Nori", Role.bot),
    }
    # started_at defaults to the first message.
    assert bot_chat.started_at.isoformat() == "2026-09-02T08:00:00+00:00"


def test_raw_record_is_the_verbatim_line():
    parsed, _ = _parse("chats.jsonl")
    first_line = (DATA / "chats.jsonl").read_text().splitlines()[0]
    assert parsed[0].raw[0].payload == first_line.encode()
    assert parsed[0].raw[0].locator == "line 1"


def test_json_array_with_timings():
    parsed, rejects = _parse("calls.json")
    assert not rejects
    call = parsed[0].conversation
    assert call.is_timed and call.channel == "call" and call.duration_seconds == 30.0
    assert [(u.start, u.end) for u in call.utterances][:2] == [(0.0, 4.0), (3.0, 6.0)]


def test_truncated_array_keeps_complete_records_and_says_where_it_broke():
    parsed, rejects = _parse("truncated.json")
    assert [p.conversation.source.source_id for p in parsed] == ["call-1"]
    assert len(rejects) == 1
    assert rejects[0].locator.startswith("record 2")
    assert "1 earlier record(s) kept" in rejects[0].reason


def test_ids_are_stable_and_content_hash_changes_with_content():
    first, _ = _parse("chats.jsonl")
    second, _ = _parse("chats.jsonl")
    assert [p.conversation.conversation_id for p in first] == [
        p.conversation.conversation_id for p in second
    ]
    conversation = first[0].conversation
    edited = conversation.model_copy(deep=True)
    edited.utterances[0].text = "I still can't log in."
    assert edited.content_hash() != conversation.content_hash()
    assert conversation.conversation_id.startswith("cv-")


def test_unknown_top_level_field_is_rejected_with_a_hint(tmp_path):
    path = tmp_path / "odd.json"
    path.write_text('{"id": "x", "custmer": "y", "messages": [{"author": "a", "text": "hi"}]}')
    results = list(JsonConversationAdapter().parse(SourceFile.read(path)))
    assert isinstance(results[0], Reject)
    assert "custmer" in results[0].reason and "meta" in results[0].reason


def test_timing_errors_name_the_message_in_the_file_vocabulary(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "t", "messages": [{"author": "a", "text": "x", "start": 1.0}]}\n'
        '{"id": "u", "messages": [{"author": "a", "text": "ok", "start": 0, "end": 1},'
        ' {"author": "a", "text": "x", "start": 3.0, "end": 1.0}]}\n'
    )
    reasons = [r.reason for r in JsonConversationAdapter().parse(SourceFile.read(path))]
    assert reasons == [
        "message 1 needs both 'start' and 'end', or neither",
        "message 2 ends (1.0) before it starts (3.0)",
    ]
