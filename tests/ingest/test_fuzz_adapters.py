"""Property tests (hypothesis) for every intake adapter: whatever the bytes or the JSON,
an adapter yields conversations and rejects, never an exception; every reject names its
file and a reason; the canonical model refuses bad values with a validation error (the
API's POST /v1/conversations validates through the same code).

Runs are bounded (max_examples, no deadline) so the whole module takes seconds.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import convolens.ingest.json_conversations as json_adapter
from convolens.ingest.base import Parsed, Reject, SourceFile, json_bytes
from convolens.ingest.json_conversations import RecordError, conversation_from_record
from convolens.ingest.pipeline import ingest_paths
from convolens.ingest.registry import detect_format, get_adapter
from convolens.ingest.sidecar import read_sidecar
from convolens.model import Conversation
from convolens.store.warehouse import Warehouse

DATA = Path(__file__).resolve().parents[1] / "data"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Values that broke intake before: out-of-range times, non-finite and huge numbers,
# unpaired surrogates, NUL, ISO times that leave the calendar in UTC.
NASTY_NUMBERS = [1e30, -1e20, 1e308, float("inf"), float("nan"), 10**30, -1, 2**63]
NASTY_TEXT = ["\ud800", "a\x00b", "", "1e30", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59-05:00"]
NASTY = st.sampled_from([*NASTY_NUMBERS, *NASTY_TEXT, [], {}, [1]])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | NASTY
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
MESSAGE_KEYS = ["sent_at", "start", "end", "channel_index", "internal", "words", "meta"]
MESSAGE_KEYS += ["role", "name", "email", "speaker", "from"]
MESSAGE = st.fixed_dictionaries(
    {"author": st.just("ann") | JSON, "text": st.just("hello") | JSON},
    optional={key: JSON for key in MESSAGE_KEYS},
)
RECORD_KEYS = ["id", "source", "channel", "language", "started_at", "duration_seconds"]
RECORD_KEYS += ["subject", "tags", "links", "meta", "participants", "queue", "agent"]
RECORD = st.fixed_dictionaries(
    {"messages": st.lists(MESSAGE | JSON, min_size=1, max_size=3) | JSON},
    optional={key: JSON for key in RECORD_KEYS},
)


def _check(results: list[Any], path: Path) -> list[Parsed]:
    """Every result is a conversation that can be hashed and stored, or a reject that
    names this file and says why."""
    parsed = []
    for result in results:
        if isinstance(result, Reject):
            assert result.source_path == str(path) and result.reason.strip()
            assert "Traceback" not in result.reason
        else:
            assert isinstance(result, Parsed)
            result.conversation.model_dump_json()
            assert len(result.content_hash) == 64
            parsed.append(result)
    return parsed


def _parse(fmt: str, path: Path) -> list[Any]:
    # The adapter itself, without the pipeline's last-line guard: nothing may escape it.
    return list(get_adapter(fmt).parse_many([SourceFile.read(path)]))


# -- the canonical model and the JSON record converter (shared with the API) -------------------
@FUZZ
@given(record=RECORD)
def test_conversation_from_record_raises_only_record_errors(record):
    try:
        conversation = conversation_from_record(record, default_system="t", default_channel="chat")
    except RecordError as exc:
        assert str(exc)
        return
    conversation.model_dump_json()
    conversation.content_hash()


@FUZZ
@given(
    started_at=JSON,
    sent_at=JSON,
    meta=JSON,
    duration=JSON,
    channel_index=JSON,
    text=JSON,
    links=JSON,
)
def test_the_model_refuses_bad_values_with_a_validation_error(
    started_at, sent_at, meta, duration, channel_index, text, links
):
    payload = {
        "channel": "chat",
        "source": {"system": "api", "source_id": "x"},
        "started_at": started_at,
        "duration_seconds": duration,
        "links": links,
        "meta": meta,
        "participants": [{"participant_id": "a"}],
        "utterances": [
            {"participant_id": "a", "text": text, "sent_at": sent_at}
            | {"channel_index": channel_index}
        ],
    }
    try:
        conversation = Conversation.model_validate(payload)
    except ValidationError:
        return
    # Whatever the model accepts can be serialised and hashed (what the writer does).
    conversation.model_dump_json()
    conversation.content_hash()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("started_at", -1e20, "started_at"),
        ("started_at", "0001-01-01T00:00:00+01:00", "out of range"),
        ("duration_seconds", float("inf"), "finite"),
        ("links", [1], "links"),
        ("meta", {"a": {"b": {"c": "\ud800"}}}, "invalid Unicode"),
    ],
)
def test_model_errors_name_the_field(field, value, words):
    payload = {
        "channel": "chat",
        "source": {"system": "api"},
        "participants": [{"participant_id": "a"}],
        "utterances": [{"participant_id": "a", "text": "hi"}],
        field: value,
    }
    with pytest.raises(ValidationError) as caught:
        Conversation.model_validate(payload)
    assert words in str(caught.value)


# -- conversation JSON / JSONL ------------------------------------------------------------------
@FUZZ
@given(records=st.lists(RECORD | JSON, min_size=1, max_size=4), layout=st.integers(0, 3))
def test_json_adapter_on_arbitrary_records_in_every_layout(tmp_path_factory, records, layout):
    folder = tmp_path_factory.mktemp("json")
    texts = [json_bytes(r).decode() for r in records]
    if layout == 0:
        path, text = folder / "f.jsonl", "\n".join(texts)
    elif layout == 1:
        path, text = folder / "f.json", "[" + ",\n".join(texts) + "]"
    elif layout == 2:
        path, text = folder / "f.json", '{"conversations": [' + ",".join(texts) + "]}"
    else:
        path, text = folder / "f.json", texts[0]
    path.write_text(text, encoding="utf-8")
    _check(_parse("json", path), path)


@FUZZ
@given(records=st.lists(RECORD, min_size=1, max_size=4), chunk=st.integers(1, 40), cut=st.data())
def test_streamed_json_reads_like_the_whole_file(
    tmp_path_factory, monkeypatch_module, records, chunk, cut
):
    """Big files are decoded chunk by chunk; the results must be those of a whole read,
    whatever the chunk boundaries (and also when the file is cut short)."""
    folder = tmp_path_factory.mktemp("stream")
    text = "[\n" + ",\n".join(json_bytes(r).decode() for r in records) + "\n]"
    text = text[: cut.draw(st.integers(1, len(text)))]
    path = folder / "calls.json"
    path.write_text(text, encoding="utf-8")

    def summary() -> list[tuple[str, str, str]]:
        out = []
        for r in _parse("json", path):
            if isinstance(r, Reject):
                out.append(("reject", r.locator, r.reason))
            else:
                out.append(("ok", r.raw[0].locator, r.content_hash))
        return out

    whole = summary()
    monkeypatch_module.setattr(json_adapter, "STREAM_ABOVE", 0)
    monkeypatch_module.setattr(json_adapter, "_CHUNK", chunk)
    try:
        assert summary() == whole
    finally:
        monkeypatch_module.undo()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


# -- byte-level damage to real files of every text format ----------------------------------------
SAMPLES = [
    ("json", DATA / "json" / "calls.json"),
    ("json", DATA / "json" / "chats.jsonl"),
    ("csv", DATA / "csv" / "chat_export.csv"),
    ("email", DATA / "email" / "thread_2_agent_reply.eml"),
    ("email", DATA / "email" / "support_inbox.mbox"),
    ("zendesk", DATA / "helpdesk" / "zendesk-export.json"),
    ("subtitles", DATA / "subtitles" / "call-0042.vtt"),
    ("subtitles", DATA / "subtitles" / "support-call.srt"),
]
DAMAGE = st.lists(
    st.tuples(
        st.sampled_from(["cut", "flip", "insert", "delete"]),
        st.floats(0, 1),
        st.binary(min_size=1, max_size=8)
        | st.sampled_from([b"\x00", b"\xff\xfe", b'"', b"\\u", b"[" * 50, b"\r", b"\xef\xbb\xbf"]),
    ),
    min_size=1,
    max_size=4,
)


def _damage(data: bytes, edits: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, piece in edits:
        at = int(where * len(data))
        if kind == "cut":
            data = data[:at]
        elif kind == "flip":
            data = data[:at] + piece + data[at + len(piece) :]
        elif kind == "insert":
            data = data[:at] + piece + data[at:]
        else:
            data = data[:at] + data[at + len(piece) :]
    return data


@pytest.mark.parametrize(("fmt", "sample"), SAMPLES, ids=[s.name for _, s in SAMPLES])
@settings(FUZZ, max_examples=40)
@given(edits=DAMAGE)
def test_damaged_real_files_give_conversations_or_rejects(tmp_path_factory, fmt, sample, edits):
    path = tmp_path_factory.mktemp(fmt) / sample.name
    path.write_bytes(_damage(sample.read_bytes(), edits))
    _check(_parse(fmt, path), path)
    detect_format(SourceFile.read(path))  # sniffing the damage raises nothing either


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [
        ("json", ".json"),
        ("json", ".jsonl"),
        ("csv", ".csv"),
        ("csv", ".tsv"),
        ("email", ".eml"),
        ("email", ".mbox"),
        ("zendesk", ".json"),
        ("subtitles", ".vtt"),
        ("subtitles", ".srt"),
    ],
)
@settings(FUZZ, max_examples=30)
@given(data=st.binary(max_size=600) | st.text(max_size=300).map(lambda t: t.encode("utf-16")))
def test_arbitrary_bytes_give_rejects_never_exceptions(tmp_path_factory, fmt, suffix, data):
    path = tmp_path_factory.mktemp(fmt) / f"input{suffix}"
    path.write_bytes(data)
    results = _parse(fmt, path)
    _check(results, path)
    if fmt != "email" or data.strip():  # an empty file is always said, never skipped
        assert results


# -- CSV, helpdesk and sidecars from structured hostile content --------------------------------
CELL = st.text(max_size=10) | st.sampled_from(['"', '""', ",", "\n", "\x00", "1e30", "nan", "-1"])


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["author", "text", "sent_at", "start", "end", "conversation_id"])
        | st.sampled_from(["channel_index", "tags", "internal", "account_id"])
        | CELL,
        min_size=1,
        max_size=6,
    ),
    rows=st.lists(st.lists(CELL, max_size=7), max_size=5),
)
def test_csv_adapter_on_arbitrary_tables(tmp_path_factory, header, rows):
    path = tmp_path_factory.mktemp("csv") / "export.csv"
    lines = [",".join(header)] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    _check(_parse("csv", path), path)


COMMENT = st.fixed_dictionaries(
    {"author_id": st.just(7) | JSON, "body": st.just("hi") | JSON},
    optional={"created_at": JSON, "public": JSON, "id": JSON, "html_body": JSON},
)
TICKET = st.fixed_dictionaries(
    {"id": st.just(1) | JSON, "comments": st.lists(COMMENT | JSON, max_size=3) | JSON},
    optional={
        key: JSON
        for key in (
            *("subject", "requester_id", "assignee_id", "created_at", "via", "group"),
            *("tags", "organization_id", "external_id", "status", "custom_fields", "users"),
        )
    },
)


@FUZZ
@given(tickets=st.lists(TICKET | JSON, max_size=3), users=JSON, jsonl=st.booleans())
def test_helpdesk_adapter_on_arbitrary_tickets(tmp_path_factory, tickets, users, jsonl):
    folder = tmp_path_factory.mktemp("zendesk")
    if jsonl:
        path = folder / "tickets.jsonl"
        path.write_bytes(b"\n".join(json_bytes(t) for t in tickets))
    else:
        path = folder / "export.json"
        path.write_bytes(json_bytes({"tickets": tickets, "users": users}))
    _check(_parse("zendesk", path), path)


SIDECAR_KEYS = ["id", "source", "channel", "language", "started_at", "duration_seconds"]
SIDECAR_KEYS += ["tags", "roles", "links", "meta", "channels", "num_speakers", "agent"]


@FUZZ
@given(sidecar=st.fixed_dictionaries({}, optional={k: JSON for k in SIDECAR_KEYS}) | JSON)
def test_sidecar_and_its_transcript_never_raise(tmp_path_factory, sidecar):
    folder = tmp_path_factory.mktemp("sidecar")
    shutil.copy(DATA / "subtitles" / "call-0042.vtt", folder / "call.vtt")
    (folder / "call.meta.json").write_bytes(json_bytes(sidecar))
    _, _, problem = read_sidecar(folder / "call.vtt")
    assert problem is None or problem.startswith("sidecar call.meta.json")
    _check(_parse("subtitles", folder / "call.vtt"), folder / "call.vtt")


# -- audio: the decoder on damaged recordings ---------------------------------------------------
AUDIO = [DATA / "audio" / name for name in ("call.mp3", "call.ogg", "mono_call.flac")]


@pytest.mark.parametrize("sample", AUDIO, ids=[s.name for s in AUDIO])
@settings(FUZZ, max_examples=25)
@given(edits=DAMAGE)
def test_damaged_recordings_decode_or_are_rejected(tmp_path_factory, sample, edits):
    pytest.importorskip("av")
    from convolens.speech.decode import AudioDecodeError, decode_audio

    path = tmp_path_factory.mktemp("audio") / sample.name
    path.write_bytes(_damage(sample.read_bytes(), edits))
    try:
        audio = decode_audio(path)
    except AudioDecodeError as exc:
        assert path.name in str(exc)
    except Exception:
        # The decoder has raised other errors on damaged MP3s (a ValueError when the
        # channel count changes mid-stream); the adapter must turn them into a reject.
        # Decoding fails before any model loads, so this costs no transcription.
        (result,) = _parse("audio", path)
        assert isinstance(result, Reject) and result.reason.startswith("could not be read")
    else:
        assert audio.duration >= 0


# -- the whole pipeline: damaged files beside a good one, into a real warehouse ----------------
@settings(FUZZ, max_examples=12)
@given(damage=st.lists(st.tuples(st.sampled_from(SAMPLES), DAMAGE), min_size=1, max_size=4))
def test_damaged_files_never_cost_a_good_conversation(tmp_path_factory, damage):
    folder = tmp_path_factory.mktemp("batch")
    good = folder / "good.json"
    good.write_text(
        '[{"id": "keep-1", "source": "fuzz", "messages": [{"author": "a", "text": "one"},'
        ' {"author": "b", "text": "two"}]}]'
    )
    for number, ((_, sample), edits) in zip(itertools.count(), damage, strict=False):
        damaged = folder / f"d{number}-{sample.name}"
        damaged.write_bytes(_damage(sample.read_bytes(), edits))
    with Warehouse(folder / "w.duckdb") as warehouse:
        report = ingest_paths(warehouse, [folder])
        stored = warehouse.con.execute(
            "SELECT utterance_count FROM conversations WHERE source_id = 'keep-1'"
        ).fetchall()
        assert stored == [(2,)]
        for reject in report.rejects:
            assert reject.reason and Path(reject.source_path).parent == folder.resolve()
