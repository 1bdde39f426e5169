"""Hostile input against a real server (issue #11 items 1 and 6): no request body or
parameter gets a 500, and every error, including a failed job's, is JSON
{error: {code, message, detail}} that names no server path and holds no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hardening import assert_clean_error, assert_clean_job_error, leaks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_server import ADMIN_KEY, EXAMPLES, Receiver, Server, wait_job

from convolens.dashboard.session import COOKIE
from convolens.enrich.registry import DEFAULT_COMPONENTS

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def api_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No workers: fuzzed submissions are accepted or refused, not run (fast, isolated).
    The example chats are ingested first (unlabelled), so date and paging parameters
    meet real rows."""
    folder = tmp_path_factory.mktemp("hostile")
    ingest = subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), "ingest", str(EXAMPLES / "chats"),
         "--db", str(folder / "hostile.duckdb")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    server = Server(folder / "hostile.duckdb", folder / "server.log", CONVOLENS_WORKERS="0")
    server.env["CONVOLENS_PRELOAD"] = "0"
    server.start()
    yield server
    server.stop()


def _sample() -> dict[str, Any]:
    return json.loads((EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines()[0])


# -- the inputs issue #11 names ------------------------------------------------------------
HOSTILE_FIELDS: list[dict[str, Any]] = [
    {"links": [1]},
    {"links": "x"},
    {"links": {"order": [1, {"a": None}]}},
    {"started_at": -1e20},
    {"started_at": "-1e20"},
    {"started_at": "99999-01-01T00:00:00Z"},
    {"started_at": 1e30},
    {"messages": [{"author": "a", "text": "x", "sent_at": "1e30"}]},
    {"messages": [{"author": "a", "text": "x", "sent_at": 1e30}]},
    {"messages": [{"author": "a", "text": "x", "sent_at": -1e20}]},
    {"meta": [1]},
    {"meta": {"a": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}},
    {"tags": [{}]},
    {"tags": "billing"},
    {"participants": [{"id": "a"}, {"id": "a"}]},
    {"participants": [{"id": "x", "role": ["agent"]}]},
    {"messages": [{"author": "nobody-declared", "text": "hi"}]},
    {"messages": [{"author": "a", "text": "\x00nul\x00"}]},
    {"messages": [{"author": "a", "text": ""}]},
    {"channel": {"x": 1}},
    {"language": 7},
    {"id": ["not", "a", "string"]},
    {"id": "x" * 10_000},
    {"source": "../../etc/passwd"},
    {"agent": {"name": "x"}},
    {"account_id": 1e308},
    {"queue": 10**400},
    {"duration_seconds": -1},
]


@pytest.mark.parametrize("fields", HOSTILE_FIELDS, ids=lambda f: json.dumps(f)[:40])
def test_hostile_fields_are_refused_with_a_reason(api_only: Server, fields: dict) -> None:
    with api_only.client() as client:
        response = client.post("/v1/conversations", json={**_sample(), **fields})
    assert_clean_error(response)
    assert response.status_code in (202, 409, 422), response.text


def test_the_issue_examples_are_422(api_only: Server) -> None:
    with api_only.client() as client:
        for fields in (
            {"links": [1]},
            {"started_at": -1e20},
            {"messages": [{"author": "a", "text": "x", "sent_at": 1e30}]},
        ):
            response = client.post("/v1/conversations", json={**_sample(), **fields})
            assert response.status_code == 422, (fields, response.text)
            assert response.json()["error"]["code"] in ("invalid_request", "invalid_conversation")


RAW_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b'{"messages": [',
    b"\xff\xfe\x00garbage",
    b'{"id": "x", "messages": [{"author": "a", "text": "\\ud800"}]}',  # a lone surrogate
    b'{"id": "x", "messages": [{"author": "a", "text": "ok"}], "meta": {"k": "\\udfff"}}',
    b"[" * 100_000 + b"]" * 100_000,  # nesting past any recursion limit
    b'{"id": "x", "messages": [{"author": "a", "text": "ok"}], "started_at": NaN}',
    b'{"id": "x", "messages": [{"author": "a", "text": "ok"}], "id": 1}',
    b'{"id": "x", "messages": [{"author": "a", "text": "ok"}], "links": '
    + b"[" * 5000 + b"]" * 5000 + b"}",
]  # fmt: skip


@pytest.mark.parametrize("body", RAW_BODIES, ids=lambda b: repr(b[:30]))
def test_malformed_bodies_are_clean_errors(api_only: Server, body: bytes) -> None:
    with api_only.client() as client:
        response = client.post(
            "/v1/conversations", content=body, headers={"Content-Type": "application/json"}
        )
    assert_clean_error(response)
    assert 400 <= response.status_code < 500, response.text


# -- fuzzing -------------------------------------------------------------------------------
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["2026-09-03T10:00:00Z", "1e30", "-1e20", "", "9999-12-31", "0"])
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_field = st.sampled_from(
    ["id", "source", "channel", "language", "started_at", "subject", "agent", "queue",
     "tags", "links", "meta", "account_id", "user_id", "participants", "duration_seconds"]
)  # fmt: skip
_message = st.fixed_dictionaries(
    {"author": st.one_of(st.sampled_from(["a", "b"]), _json), "text": st.one_of(st.text(), _json)},
    optional={"sent_at": _json, "internal": _json, "meta": _json, "attachments": _json},
)
_conversation = st.fixed_dictionaries(
    {"messages": st.one_of(st.lists(_message, min_size=1, max_size=3), _json)},
    optional={"id": st.one_of(st.text(min_size=1, max_size=20), _json)},
).flatmap(
    lambda base: st.dictionaries(_field, _json, max_size=5).map(lambda extra: {**base, **extra})
)


@given(body=_conversation)
@FUZZ
def test_fuzzed_conversations_never_500(api_only: Server, body: dict[str, Any]) -> None:
    with api_only.client() as client:
        response = client.post("/v1/conversations", json=body)
    assert_clean_error(response)


@given(body=_json)
@FUZZ
def test_fuzzed_json_values_never_500(api_only: Server, body: Any) -> None:
    with api_only.client() as client:
        response = client.post("/v1/conversations", json=body)
    assert_clean_error(response)


@given(
    name=st.text(max_size=60),
    content=st.binary(min_size=1, max_size=400),
    metadata=st.one_of(st.none(), st.text(max_size=60), _json.map(json.dumps)),
    fmt=st.one_of(st.none(), st.sampled_from(["json", "csv", "email", "nope", ""])),
)
@settings(FUZZ, max_examples=40)
def test_fuzzed_uploads_never_500(
    api_only: Server, name: str, content: bytes, metadata: str | None, fmt: str | None
) -> None:
    data = {k: v for k, v in {"metadata": metadata, "format": fmt}.items() if v is not None}
    with api_only.client() as client:
        response = client.post("/v1/uploads", files={"file": (name, content)}, data=data)
    assert_clean_error(response)


# -- numeric parameters --------------------------------------------------------------------
HUGE = "99999999999999999999"
NUMERIC = [
    ("/v1/conversations", "offset"),
    ("/v1/conversations", "limit"),
    ("/v1/jobs", "limit"),
    ("/v1/webhooks/deliveries", "limit"),
    ("/v1/analytics/trends", "top"),
    ("/v1/analytics/spikes", "baseline"),
    ("/v1/analytics/spikes", "min_count"),
    ("/v1/analytics/before-after?at=2026-09-01", "window_days"),
    ("/v1/analytics/agents", "min_conversations"),
    ("/v1/analytics/lift", "window_days"),
    ("/v1/analytics/friction", "repeat_days"),
    ("/v1/analytics/clusters", "examples"),
]


@pytest.mark.parametrize(("path", "param"), NUMERIC, ids=lambda v: str(v))
@pytest.mark.parametrize("value", [HUGE, "-" + HUGE, "-1", "1e3", "NaN"])
def test_numeric_parameters_are_bounded(
    api_only: Server, path: str, param: str, value: str
) -> None:
    with api_only.client() as client:
        response = client.get(path, params={param: value})
    assert_clean_error(response)
    assert response.status_code == 422, (path, param, value, response.text)


EXTREME_TIMES = [
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31",
    "0001-01-01",
    HUGE,
    "-" + HUGE,
    "1e308",
]
TIMED = [
    ("/v1/conversations", "since"),
    ("/v1/conversations", "until"),
    ("/v1/aggregates", "since"),
    ("/v1/aggregates", "until"),
    ("/v1/analytics/trends", "since"),
    ("/v1/analytics/agents", "until"),
    ("/v1/analytics/issues", "since"),
    ("/v1/analytics/spikes", "as_of"),
]


@pytest.mark.parametrize(("path", "param"), TIMED, ids=lambda v: str(v))
@pytest.mark.parametrize("value", EXTREME_TIMES)
def test_extreme_dates_are_clean(api_only: Server, path: str, param: str, value: str) -> None:
    with api_only.client() as client:
        assert_clean_error(client.get(path, params={param: value}))


@pytest.mark.parametrize("value", ["0", "-1", HUGE, "NaN"])
def test_an_annotation_id_too_large_is_refused(api_only: Server, value: str) -> None:
    with api_only.client() as client:
        response = client.get("/v1/analytics/before-after", params={"at": value})
    assert_clean_error(response)


@pytest.mark.parametrize(
    "params",
    [{"page": HUGE}, {"page": "-1"}, {"page": "0"}, {"page": "1e9"}, {"page": "40000"},
     {"since": "9999-12-31", "until": "9999-12-31"}, {"since": "0001-01-01"},
     {"until": "0001-01-01"}, {"since": HUGE}],
)  # fmt: skip
def test_dashboard_list_parameters_are_bounded(api_only: Server, params: dict) -> None:
    with httpx.Client(base_url=api_only.url, cookies={COOKIE: ADMIN_KEY}) as client:
        response = client.get("/dashboard/conversations", params=params)
    assert response.status_code < 500, response.text[:300]
    assert not leaks(response.text)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/" + "%00" * 3,
        "/v1/jobs/" + "x" * 5000,
        "/v1/conversations/%ff%fe",
        "/v1/conversations/" + HUGE,
        "/v1/conversations/x/nope",
    ],
)
def test_odd_path_parameters_are_clean_errors(api_only: Server, path: str) -> None:
    with api_only.client() as client:
        assert_clean_error(client.get(path))


# -- jobs that fail ------------------------------------------------------------------------
def test_failing_jobs_show_a_reason_not_a_traceback(tmp_path: Path) -> None:
    """Two jobs that fail on the server's side, with paths in their exceptions: a
    recording (the Whisper model directory's weights are broken) and a conversation
    whose labelling fails (the trackers file the config names is missing, so loading the
    components raises, attempt after attempt). The job, the job list and the job.failed
    webhook give the reason without a traceback or a server path."""
    model = tmp_path / "broken-whisper"
    model.mkdir()
    (model / "model.bin").write_bytes(b"not a model")
    config = tmp_path / "components.toml"
    missing = tmp_path / "gone" / "trackers.toml"
    config.write_text(
        "".join(f"[components.{name}]\nenabled = false\n" for name in DEFAULT_COMPONENTS
                if name != "trackers")
        + f"[components.trackers]\ntrackers = {json.dumps(str(missing))}\n"
    )  # fmt: skip
    receiver = Receiver()
    server = Server(
        tmp_path / "failing.duckdb",
        tmp_path / "server.log",
        CONVOLENS_WORKERS="1",
        CONVOLENS_PRELOAD="0",
        CONVOLENS_CONFIG=str(config),
        CONVOLENS_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
    )
    server.args = ["--asr-model", str(model)]
    server.start()
    audio = Path(__file__).parents[1] / "data" / "audio" / "telephony_8k.wav"
    try:
        with server.client() as client:
            recording = client.post(
                "/v1/uploads",
                files={"file": (audio.name, audio.read_bytes(), "audio/wav")},
                data={"webhook_url": receiver.url},
            )
            chat = client.post(
                "/v1/conversations", json=_sample(), params={"webhook_url": receiver.url}
            )
            for accepted in (recording, chat):
                assert accepted.status_code == 202, accepted.text
                job = wait_job(client, accepted.json()["job_id"], timeout=120)
                assert job["status"] == "failed", job
                assert_clean_job_error(job)
            # The labelling failure is the server's, so it was retried; the reason stays.
            assert job["error"]["code"] == "job_error" and job["attempts"] == 3, job
            assert "trackers.toml" in job["error"]["message"], job["error"]
            listed = client.get("/v1/jobs", params={"status": "failed"})
            assert len(listed.json()) == 2 and not leaks(listed.text), leaks(listed.text)
            deliveries = client.get("/v1/webhooks/deliveries")
            assert deliveries.status_code == 200
            assert not leaks(deliveries.text), leaks(deliveries.text)
        for _ in range(100):
            if len(receiver.bodies) >= 2:
                break
            threading.Event().wait(0.1)
        payloads = [json.loads(body) for body in receiver.bodies]
        assert [p["event"] for p in payloads] == ["job.failed", "job.failed"], payloads
        assert not leaks(json.dumps(payloads)), payloads
    finally:
        server.stop()
        receiver.http.shutdown()


def test_hostile_bodies_that_are_accepted_end_cleanly(admin: httpx.Client) -> None:
    """Bodies the API accepts (odd but well-formed) either complete or fail with a
    reason: the job never shows a traceback."""
    odd = [
        {"messages": [{"author": "a", "text": "odd body \x00"}]},
        {"messages": [{"author": "a", "text": "\u202e\ufeff" * 50}]},
        {"subject": "\U0001f600" * 200},
        {"started_at": "1970-01-01T00:00:00Z"},
    ]
    jobs = []
    for n, fields in enumerate(odd):
        # Not a copy of an example chat: the shared server's other tests count those.
        body = {"id": f"hostile-accepted-{n}", "source": "hostile", "started_at":
                "2026-08-01T10:00:00Z", "messages": [{"author": "a", "text": "A question."}],
                **fields}  # fmt: skip
        response = admin.post("/v1/conversations", json=body)
        assert_clean_error(response)
        if response.status_code == 202:
            jobs.append(response.json()["job_id"])
    for job_id in jobs:
        job = wait_job(admin, job_id)
        if job["status"] == "failed":
            assert_clean_job_error(job)
        else:
            assert job["status"] == "completed", job
    assert jobs, "every odd body was refused: this test then checks nothing"


@pytest.mark.parametrize(
    ("data", "content", "code"),
    [
        ({"format": "nope"}, b'{"id": "x"}', "invalid_format"),
        ({"metadata": "{not json"}, b'{"id": "x"}', "invalid_metadata"),
        ({"metadata": "[1, 2]"}, b'{"id": "x"}', "invalid_metadata"),
        ({"webhook_url": "ftp://example.com/x"}, b'{"id": "x"}', "invalid_webhook_url"),
        ({}, b"", "empty_upload"),
    ],
)
def test_a_refused_upload_keeps_nothing(
    api_only: Server, data: dict, content: bytes, code: str
) -> None:
    """Refused before its job exists, an upload leaves no file in the spool."""
    spool = api_only.db.with_name(api_only.db.stem + ".uploads")
    before = sorted(p for p in spool.rglob("*") if p.is_file())
    with api_only.client() as client:
        response = client.post("/v1/uploads", files={"file": ("x.json", content)}, data=data)
    assert_clean_error(response)
    assert response.status_code == 422 and response.json()["error"]["code"] == code
    assert sorted(p for p in spool.rglob("*") if p.is_file()) == before


def _json_operations(server: Server) -> list[tuple[str, str]]:
    """Every operation of the spec that takes a JSON body, path parameters filled in."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if method in ("post", "put", "patch") and "application/json" in content:
                filled = path.replace("{kind}", "taxonomy").replace("{delivery_id}", "d-x")
                found.append((method.upper(), filled.replace("{hook_id}", "h-x")))
    return found


_keyed = st.dictionaries(
    st.sampled_from(
        ["name", "role", "agent", "url", "events", "rule", "secret", "payload_format",
         "content", "activate", "id", "messages", "format", "config", "component"]
    ),
    _json,
    max_size=6,
)  # fmt: skip


def test_every_json_body_route_never_500s(api_only: Server) -> None:
    operations = _json_operations(api_only)
    assert ("POST", "/v1/conversations") in operations and len(operations) >= 3, operations

    @given(operation=st.sampled_from(operations), body=st.one_of(_keyed, _json))
    @FUZZ
    def check(operation: tuple[str, str], body: Any) -> None:
        method, path = operation
        with api_only.client() as client:
            assert_clean_error(client.request(method, path, json=body))

    check()
