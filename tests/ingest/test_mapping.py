"""Mappings: JSON/JSONL of another shape, role values, mapping files, dry runs, and the
three real datasets (customer-care tweets, QMSum, DialogSum) in with a mapping file only."""

import json
import re
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convolens.cli import app
from convolens.ingest.base import IngestOptions, Parsed, Reject, SourceFile
from convolens.ingest.json_conversations import JsonConversationAdapter
from convolens.ingest.mapping import (
    MappingError,
    mapping_from_pairs,
    normalize_role,
    parse_mapping_text,
)
from convolens.model import Role

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "examples" / "mappings"
SHARED = ROOT.parent / "shared" / "data"
runner = CliRunner(env={"COLUMNS": "120"})

THREADS = [
    {
        "thread": {"key": "T-1", "opened": "2026-03-01T09:00:00Z", "team": "billing"},
        "posts": [
            {"sender": {"name": "Ana", "kind": "client"}, "body": "I was charged twice"},
            {
                "sender": {"name": "Bo", "kind": "Support"},
                "body": "Refund issued",
                "at": 1772355900,
            },
        ],
    },
    {
        "thread": {"key": "T-2", "opened": "2026-03-02T10:00:00Z", "team": "tech"},
        "posts": [
            {"sender": {"name": "Cy", "kind": "User"}, "body": "App crashes"},
            {"sender": {"name": "Di", "kind": "Customer Service"}, "body": "Update it"},
            {"sender": {"name": "Ed", "kind": "wizard"}, "body": "Hi"},
        ],
    },
]
THREAD_MAPPING = """
[conversation]
id = "thread.key"
started_at = "thread.opened"
queue = "thread.team"
[messages]
path = "posts[*]"
text = "body"
author = "sender.name"
role = "sender.kind"
sent_at = "at"
"""


def _parse(path: Path, mapping: dict | None = None) -> tuple[list[Parsed], list[Reject]]:
    options = IngestOptions(mapping=mapping or {})
    results = list(JsonConversationAdapter(options).parse(SourceFile.read(path)))
    return [r for r in results if isinstance(r, Parsed)], [
        r for r in results if isinstance(r, Reject)
    ]


def _roles(parsed: Parsed) -> dict[str, str]:
    return {p.name or "": p.role.value for p in parsed.conversation.participants}


def test_nested_json_maps_paths_and_role_synonyms(tmp_path):
    path = tmp_path / "threads.json"
    path.write_text(json.dumps(THREADS))
    mapping = parse_mapping_text(THREAD_MAPPING).model_dump(exclude_defaults=True)
    parsed, rejects = _parse(path, mapping)
    assert rejects == []
    assert [p.conversation.source.source_id for p in parsed] == ["T-1", "T-2"]
    first, second = parsed
    assert first.conversation.source.queue == "billing"
    assert first.conversation.started_at.isoformat() == "2026-03-01T09:00:00+00:00"
    assert [u.text for u in first.conversation.utterances] == [
        "I was charged twice",
        "Refund issued",
    ]
    assert first.conversation.utterances[1].sent_at.isoformat() == "2026-03-01T09:05:00+00:00"
    assert _roles(first) == {"Ana": "customer", "Bo": "agent"}
    # "wizard" is no role anyone knows: unknown, with a warning, and the thread is kept.
    assert _roles(second) == {"Cy": "customer", "Di": "agent", "Ed": "unknown"}
    assert any("'wizard' not recognised" in note for note in second.warnings)


def test_unmapped_json_is_refused_naming_the_fields_and_the_same_file_maps(tmp_path):
    path = tmp_path / "threads.json"
    path.write_text(json.dumps(THREADS))
    parsed, rejects = _parse(path)
    assert not parsed and "unknown field(s) ['posts', 'thread']" in rejects[0].reason
    pairs = ["messages=posts[*]", "text=body", "author=sender.name", "id=thread.key"]
    parsed, rejects = _parse(path, mapping_from_pairs(pairs).model_dump(exclude_defaults=True))
    assert not rejects and [p.conversation.source.source_id for p in parsed] == ["T-1", "T-2"]


def test_role_values_not_exact_are_not_a_validation_error(tmp_path):
    path = tmp_path / "roles.jsonl"
    lines = [
        {"id": "r1", "messages": [{"author": "a", "role": "Client", "text": "hi"},
                                  {"author": "b", "role": "SUPPORT", "text": "hello"}]},
        {"id": "r2", "messages": [{"author": "c", "role": "martian", "text": "hi"}]},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for line in lines))
    parsed, rejects = _parse(path)
    assert rejects == []
    assert [_roles(p) for p in parsed] == [{"a": "customer", "b": "agent"}, {"c": "unknown"}]
    assert parsed[1].warnings == ["roles.jsonl line 2: role value 'martian' not recognised; "
                                  "stored as 'unknown'"]  # fmt: skip


def test_normalize_role_uses_the_value_map_first_then_synonyms_then_labels():
    assert normalize_role("VIP", {"vip": "customer"}) is Role.customer
    assert normalize_role("Customer Service") is Role.agent
    assert normalize_role("end_user") is Role.customer
    assert normalize_role("client1") is Role.customer
    assert normalize_role("assistant") is Role.bot
    assert normalize_role("wizard") is None


def test_conversation_path_finds_several_conversations_in_one_record(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"data": {"threads": THREADS}}))
    mapping = parse_mapping_text(THREAD_MAPPING.replace(
        "[conversation]\n", '[conversation]\npath = "data.threads[*]"\n'
    )).model_dump(exclude_defaults=True)  # fmt: skip
    parsed, rejects = _parse(path, mapping)
    assert not rejects
    assert [r.raw[0].locator for r in parsed] == [
        "record 1, conversation 1",
        "record 1, conversation 2",
    ]


def test_bad_mappings_are_clear_errors():
    with pytest.raises(MappingError, match="unknown field 'txet'"):
        mapping_from_pairs(["txet=body"])
    with pytest.raises(MappingError, match="cannot read path 'posts\\[x\\]'"):
        mapping_from_pairs(["messages=posts[x]"])
    with pytest.raises(MappingError, match=r"roles\.vip = 'boss': a role is one of"):
        parse_mapping_text('[roles]\nvip = "boss"')
    with pytest.raises(MappingError, match="not valid TOML or JSON"):
        parse_mapping_text("[messages\npath=")
    # The older flat file of CSV columns still reads as [columns].
    assert parse_mapping_text('text = "body"').columns == {"text": "body"}


def test_cli_map_works_for_json_and_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "threads.json"
    path.write_text(json.dumps(THREADS))
    db = tmp_path / "w.duckdb"
    maps = ["messages=posts[*]", "text=body", "author=sender.name", "role=sender.kind"]
    args = ["ingest", str(path), "--db", str(db), *(f"--map={pair}" for pair in maps)]
    result = runner.invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "I was charged twice" in result.output and "customer" in result.output
    assert "2 conversation(s) from 1 file(s); 0 of 2 records rejected" in result.output
    # No time was mapped: said, for the file.
    assert "threads.json: no timestamps" in result.output
    assert not db.exists()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = (
        duckdb.connect(str(db), read_only=True)
        .execute("SELECT count(*) FROM conversations")
        .fetchone()
    )
    assert rows == (2,)


def test_every_record_rejected_exits_non_zero_in_dry_run_and_ingest(tmp_path):
    path = tmp_path / "threads.json"
    path.write_text(json.dumps(THREADS))
    for extra in (["--dry-run"], []):
        result = runner.invoke(app, ["ingest", str(path), "--db", str(tmp_path / "w.db"), *extra])
        assert result.exit_code == 1, result.output
        assert "2 of 2 records rejected" in result.output


def test_warning_when_roles_or_timestamps_are_all_missing(tmp_path):
    path = tmp_path / "bare.json"
    path.write_text(json.dumps([{"posts": [{"who": "x", "body": "hello there"}]}]))
    result = runner.invoke(app, ["ingest", str(path), "--dry-run", "--map", "messages=posts[*]",
                                 "--map", "author=who", "--map", "text=body"])  # fmt: skip
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "bare.json: no speaker roles in any of its 1 conversation(s)" in flat
    assert "bare.json: no timestamps in any of its 1 conversation(s)" in flat


# -- the three real datasets, with a mapping file and no code -----------------------------
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")


@needs_data
def test_real_datasets_go_in_with_their_mapping_files(tmp_path):
    db = tmp_path / "real.duckdb"
    inputs = {
        "twitter_customer_care": SHARED / "support" / "twitter_customer_care" / "dev.json",
        "qmsum": SHARED / "meetings" / "qmsum" / "val" / "Bed002.json",
        "dialogsum": SHARED / "summaries" / "dialogsum" / "dialogsum.dev.jsonl",
    }
    for name, path in inputs.items():
        result = runner.invoke(
            app, ["ingest", str(path), "--mapping", str(MAPPINGS / f"{name}.toml"), "--db", str(db)]
        )
        assert result.exit_code == 0, result.output
        assert re.search(r"(?m)^0 of [\d,]+ records rejected", result.output), result.output
    con = duckdb.connect(str(db), read_only=True)
    by_source = dict(
        con.execute("SELECT source_system, count(*) FROM conversations GROUP BY 1").fetchall()
    )
    threads = json.loads(inputs["twitter_customer_care"].read_text())
    dialogues = inputs["dialogsum"].read_text().strip().count("\n") + 1
    assert by_source == {"twitter": len(threads), "qmsum": 1, "dialogsum": dialogues}
    roles = dict(
        con.execute(
            "SELECT role, count(DISTINCT conversation_id) FROM participants p "
            "JOIN conversations c USING (conversation_id) WHERE c.source_system = 'twitter' "
            "GROUP BY 1"
        ).fetchall()
    )
    # Every thread has its customer; the threads where the brand answered have an agent.
    answered = sum(any("agent" in m for m in t["dialogContent"]) for t in threads)
    assert roles == {"customer": len(threads), "agent": answered}
    meeting = con.execute(
        "SELECT source_id, channel FROM conversations WHERE source_system = 'qmsum'"
    ).fetchone()
    assert meeting == ("Bed002", "meeting")
    first = con.execute(
        "SELECT u.text FROM utterances u JOIN conversations c USING (conversation_id) "
        "WHERE c.source_id = 'dev_0' ORDER BY u.seq LIMIT 1"
    ).fetchone()
    assert first == ("Hello, how are you doing today?",)


# -- hostile input: a mapping never lets an exception out of the adapter -------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["posts", "body", "sender", "name", "kind", "at", "x"]),
                      inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(records=st.lists(_JSON, min_size=1, max_size=3))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_json_through_a_mapping_is_parsed_or_rejected(tmp_path, records) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    mapping = parse_mapping_text(
        THREAD_MAPPING + '[conversation.meta]\nk = "x[*].name"\n'
    ).model_dump(exclude_defaults=True)
    options = IngestOptions(mapping=mapping)
    results = list(JsonConversationAdapter(options).parse(SourceFile.read(path)))
    assert results and all(isinstance(r, Parsed | Reject) for r in results)
    for result in results:
        if isinstance(result, Reject):
            assert result.reason and "Traceback" not in result.reason


@given(pair=st.text(max_size=30))
@settings(max_examples=80, deadline=None)
def test_any_map_pair_is_a_mapping_or_a_clear_error(pair: str) -> None:
    try:
        mapping_from_pairs([pair])
    except MappingError as exc:
        assert str(exc)
