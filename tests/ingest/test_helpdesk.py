"""Zendesk-style ticket exports: participants, roles, internal notes, rejects, raw layer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from convolens.ingest.base import IngestOptions, Parsed, Reject, SourceFile
from convolens.ingest.helpdesk import HelpdeskAdapter, html_to_text
from convolens.ingest.registry import detect_format, get_adapter
from convolens.model import Channel, Role

DATA = Path(__file__).resolve().parent.parent / "data" / "helpdesk"


def parse(path: Path, options: IngestOptions | None = None) -> list[Parsed | Reject]:
    return list(HelpdeskAdapter(options).parse(SourceFile.read(path)))


def split(results: list[Parsed | Reject]) -> tuple[dict[str, Parsed], list[Reject]]:
    parsed = {r.conversation.source.source_id or "": r for r in results if isinstance(r, Parsed)}
    return parsed, [r for r in results if isinstance(r, Reject)]


def test_export_three_tickets() -> None:
    parsed, rejects = split(parse(DATA / "zendesk-export.json"))
    assert rejects == []
    assert sorted(parsed) == ["4312", "4313", "4314"]

    result = parsed["4312"]
    conv = result.conversation
    assert conv.channel is Channel.ticket
    assert conv.subject == "Refund for duplicate charge"
    assert conv.started_at == datetime(2026, 3, 2, 9, 14, tzinfo=UTC)
    source = conv.source
    assert (source.system, source.platform, source.queue, source.agent) == (
        "zendesk",
        "web",
        "Billing",
        "Sam Patel",
    )
    assert source.tags == ["refund", "billing"]
    assert conv.links.ticket_id == "4312"
    assert conv.links.account_id == "55"
    assert conv.links.order_id == "ORDER-1234"
    assert conv.meta == {
        "status": "solved",
        "priority": "normal",
        "brand": "Acme",
        "custom_fields": [{"id": 1, "value": "card"}],
        "updated_at": "2026-03-03T16:40:12Z",
    }
    maria, sam = conv.participants
    assert (maria.participant_id, maria.name, maria.role, maria.email) == (
        "user-901",
        "Maria Lopez",
        Role.customer,
        "maria@example.com",
    )
    assert maria.external_ids == {"zendesk_user_id": "901"}
    assert (sam.participant_id, sam.role) == ("user-17", Role.agent)
    # Comments come out in created_at order (the export lists comment 3 before 2).
    assert [u.meta["comment_id"] for u in conv.utterances] == [1, 2, 3, 4]
    assert [u.internal for u in conv.utterances] == [False, True, False, False]
    assert [u.participant_id for u in conv.utterances] == [
        "user-901",
        "user-17",
        "user-17",
        "user-901",
    ]
    assert all(u.sent_at is not None and u.start is None for u in conv.utterances)
    assert result.warnings == []


def test_bot_admin_html_and_unknown_users() -> None:
    parsed, _ = split(parse(DATA / "zendesk-export.json"))
    conv = parsed["4313"].conversation
    roles = {p.participant_id: p.role for p in conv.participants}
    assert roles == {"user-902": Role.customer, "user-18": Role.agent, "user-5": Role.bot}
    bot_reply = conv.utterances[1]
    assert bot_reply.participant_id == "user-5"
    # html_body only: tags stripped, entities decoded, paragraphs kept apart.
    assert bot_reply.text == (
        "Thanks for reaching out!\nTrack your order here: tracking & we'll follow up."
    )
    assert conv.links.account_id is None and conv.links.order_id is None

    conv = parsed["4314"].conversation
    stranger = next(p for p in conv.participants if p.participant_id == "user-404")
    assert (stranger.name, stranger.role) == (None, Role.unknown)
    assert stranger.external_ids == {"zendesk_user_id": "404"}
    assert [u.internal for u in conv.utterances] == [False, True, True]


def test_ticket_missing_id_and_comment_missing_body() -> None:
    results = parse(DATA / "bad" / "missing-id.json")
    parsed, rejects = split(results)
    assert sorted(parsed) == ["6001", "6003"]  # nothing valid is lost
    (reject,) = rejects
    assert reject.locator == "ticket #2"
    assert reject.reason == "missing 'id'"
    assert reject.describe() == "missing-id.json ticket #2: missing 'id'"
    assert reject.payload is not None and json.loads(reject.payload)["subject"] == "Lost id"

    kept = parsed["6001"]
    assert [u.meta["comment_id"] for u in kept.conversation.utterances] == [1, 3]
    assert kept.warnings == ["ticket 6001 comment 2: missing 'body', skipped"]
    # Requester 33 is not in "users": a customer with no name.
    (requester,) = parsed["6003"].conversation.participants
    assert (requester.participant_id, requester.name, requester.role) == (
        "user-33",
        None,
        Role.customer,
    )


def test_jsonl_with_truncated_line() -> None:
    path = DATA / "bad" / "tickets-truncated.jsonl"
    parsed, rejects = split(parse(path))
    assert sorted(parsed) == ["5001", "5002", "5006"]
    assert [(r.locator, r.reason.split(":")[0]) for r in rejects] == [
        ("line 4", "invalid JSON"),
        ("line 5", "missing 'id'"),
        ("ticket 5005", "no usable comments (comment 1"),
    ]
    assert all(r.source_path == str(path) and r.source_format == "zendesk" for r in rejects)
    assert rejects[0].payload is not None and rejects[0].payload.startswith(b'{"id": 5003')

    first = parsed["5001"]
    names = {p.participant_id: (p.name, p.role) for p in first.conversation.participants}
    assert names == {"user-1": ("Ana Silva", Role.customer), "user-2": ("Ben Ode", Role.agent)}
    # Raw layer: the original line, byte for byte.
    line = path.read_text(encoding="utf-8").split("\n")[0]
    (raw,) = first.raw
    assert (raw.locator, raw.payload, raw.encoding) == ("ticket 5001", line.encode(), "utf-8")

    assert parsed["5002"].warnings == ["ticket 5002 comment 2: missing 'body', skipped"]
    # Assignee 9 has no user record: an agent by position, with no name.
    roles = {p.participant_id: p.role for p in parsed["5006"].conversation.participants}
    assert roles == {"user-8": Role.customer, "user-9": Role.agent}
    assert parsed["5006"].conversation.utterances[1].text == "It's €25.00."


def test_truncated_json_document_is_rejected_with_position() -> None:
    (reject,) = parse(DATA / "bad" / "truncated.json")
    assert isinstance(reject, Reject)
    assert reject.locator == "file"
    assert reject.reason.startswith("invalid JSON")
    assert "line 1, column" in reject.reason


def test_not_an_export(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"tickets": {"id": 1}}')
    (reject,) = parse(path)
    assert isinstance(reject, Reject) and "'tickets' must be a list" in reject.reason
    path.write_text('{"hello": "world"}')
    (reject,) = parse(path)
    assert isinstance(reject, Reject) and "not a ticket export" in reject.reason


def test_raw_record_replays_to_the_same_conversation(tmp_path: Path) -> None:
    results = parse(DATA / "zendesk-export.json")
    lines = []
    for result in results:
        assert isinstance(result, Parsed)
        (raw,) = result.raw
        assert raw.locator == f"ticket {result.conversation.source.source_id}"
        ticket = json.loads(raw.payload)
        # The users the ticket refers to travel with it, so the record replays alone.
        assert {u["id"] for u in ticket["users"]} >= {ticket["requester_id"]}
        lines.append(raw.payload.decode("utf-8"))
    replay = tmp_path / "replay.jsonl"
    replay.write_text("\n".join(lines) + "\n", encoding="utf-8")
    replayed = parse(replay)
    assert [r.conversation.content_hash() for r in replayed if isinstance(r, Parsed)] == [
        r.conversation.content_hash() for r in results if isinstance(r, Parsed)
    ]


def test_parsing_twice_gives_same_ids_and_hashes() -> None:
    for path in (DATA / "zendesk-export.json", DATA / "bad" / "tickets-truncated.jsonl"):
        first, _ = split(parse(path))
        second, _ = split(parse(path))
        assert first.keys() == second.keys()
        for key in first:
            a, b = first[key].conversation, second[key].conversation
            assert a.conversation_id == b.conversation_id
            assert a.content_hash() == b.content_hash()


def test_source_system_option() -> None:
    parsed, _ = split(parse(DATA / "zendesk-export.json", IngestOptions(source_system="desk")))
    assert {p.conversation.source.system for p in parsed.values()} == {"desk"}
    default, _ = split(parse(DATA / "zendesk-export.json"))
    # The system is part of the canonical id.
    assert (
        parsed["4312"].conversation.conversation_id != default["4312"].conversation.conversation_id
    )


def test_sniff_and_registration(tmp_path: Path) -> None:
    adapter = HelpdeskAdapter()
    assert isinstance(get_adapter("zendesk"), HelpdeskAdapter)
    for name in ("zendesk-export.json", "bad/tickets-truncated.jsonl", "bad/truncated.json"):
        source = SourceFile.read(DATA / name)
        assert adapter.sniff(source), name
        assert detect_format(source) == "zendesk", name
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"id": 1, "subject": "s", "comments": []}))
    assert adapter.sniff(SourceFile.read(single))
    conversation = tmp_path / "conv.json"
    conversation.write_text(json.dumps({"id": "c1", "messages": [{"author": "a", "text": "hi"}]}))
    assert not adapter.sniff(SourceFile.read(conversation))
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    assert not adapter.sniff(SourceFile.read(rows))


def test_html_to_text() -> None:
    assert html_to_text("<div>Hi&nbsp;there,<br>line two</div><ul><li>a</li><li>b</li></ul>") == (
        "Hi there,\nline two\na\nb"
    )
