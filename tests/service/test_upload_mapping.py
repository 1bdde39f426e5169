"""POST /v1/uploads with a `mapping` form field, against a real server: an export of another
shape goes in without code; a misspelt field or a bad mapping is a 422 that names it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from live_server import ROOT, Server, unlabelled_server, wait_job

THREADS = [
    {
        "dialogHeader": {"sessionID": "up-map-1", "conversationDateTime": "2026-03-01T09:00:00Z"},
        "dialogContent": [
            {"client": "ana", "message": "I was charged twice", "datetime": "2026-03-01T09:00:00Z"},
            {"agent": "AcmeHelp", "message": "Refund issued", "datetime": "2026-03-01T09:05:00Z"},
        ],
    }
]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose jobs ingest and measure only (no labelling models): fast."""
    with unlabelled_server(tmp_path_factory.mktemp("upload-mapping")) as server:
        yield server


def _upload(client: httpx.Client, data: dict[str, str], content: bytes | None = None):
    body = content if content is not None else json.dumps(THREADS).encode()
    return client.post(
        "/v1/uploads", files={"file": ("threads.json", body, "application/json")}, data=data
    )


def test_an_export_of_another_shape_goes_in_with_a_mapping_file(plain: Server) -> None:
    mapping = (ROOT / "examples" / "mappings" / "twitter_customer_care.toml").read_text()
    with plain.client() as client:
        response = _upload(client, {"mapping": mapping})
        assert response.status_code == 202, response.text
        job = wait_job(client, response.json()["job_id"], timeout=120)
        assert job["status"] == "completed", job
        (cid,) = job["result"]["conversation_ids"]
        full = client.get(f"/v1/conversations/{cid}").json()
    assert full["conversation"]["source_id"] == "up-map-1"
    assert job["result"]["warnings"] == []
    roles = {p["participant_id"]: p["role"] for p in full["metrics"]["participants"]}
    assert roles == {"ana": "customer", "AcmeHelp": "agent"}


def test_a_mapping_as_json_works_too(plain: Server) -> None:
    mapping = {
        "conversation": {"id": "dialogHeader.sessionID"},
        "messages": {"path": "dialogContent[*]", "text": "message", "author": "client|agent",
                     "role": "key(author)"},
    }  # fmt: skip
    # No "datetime" this time: nothing says when it happened.
    content = [{k: v for k, v in m.items() if k != "datetime"} for m in THREADS[0]["dialogContent"]]
    body = json.dumps(
        [{"dialogHeader": {"sessionID": "up-map-2"}, "dialogContent": content}]
    ).encode()
    with plain.client() as client:
        response = _upload(client, {"mapping": json.dumps(mapping)}, body)
        assert response.status_code == 202, response.text
        job = wait_job(client, response.json()["job_id"], timeout=120)
    assert job["status"] == "completed", job
    # No time mapped: the job says so, as the CLI does.
    assert any("no timestamps" in note for note in job["result"]["warnings"]), job["result"]


def test_unknown_fields_and_bad_mappings_are_refused(plain: Server) -> None:
    with plain.client() as client:
        misspelt = _upload(client, {"mappings": "[messages]\npath = 'x[*]'"})
        bad = _upload(client, {"mapping": "[messages]\npath = 'x[oops]'"})
        wrong_role = _upload(client, {"mapping": "[roles]\nclient = 'boss'"})
    assert misspelt.status_code == 422, misspelt.text
    assert misspelt.json()["error"]["code"] == "unknown_field"
    assert "'mappings'" in misspelt.json()["error"]["message"]
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_mapping"
    assert "cannot read path 'x[oops]'" in bad.json()["error"]["message"]
    assert wrong_role.status_code == 422 and "a role is one of" in wrong_role.text


def test_an_unmapped_export_fails_with_advice_an_api_user_can_follow(plain: Server) -> None:
    csv = b"conversation,who,body\nc1,ana,hello\n"
    with plain.client() as client:
        response = client.post("/v1/uploads", files={"file": ("chat.csv", csv, "text/csv")})
        job = wait_job(client, response.json()["job_id"], timeout=120)
        assert job["status"] == "failed"
        error = json.dumps(job["error"])
        assert "author=COLUMN" in error and "--map" not in error
        # The same file with a mapping goes in.
        response = client.post(
            "/v1/uploads",
            files={"file": ("chat.csv", csv, "text/csv")},
            data={"mapping": '[columns]\ntext = "body"\nauthor = "who"'},
        )
        assert wait_job(client, response.json()["job_id"], timeout=120)["status"] == "completed"


def test_the_mapping_field_is_documented(plain: Server) -> None:
    with plain.client() as client:
        schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/uploads"]["post"]["requestBody"]["content"]
    (form,) = body.values()
    ref = form["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "mapping" in schema["components"]["schemas"][ref]["properties"]


def test_file_ids_come_from_the_uploaded_name_not_the_spool(plain: Server) -> None:
    mapping = (ROOT / "examples" / "mappings" / "qmsum.toml").read_text()
    meeting = {"meeting_transcripts": [{"speaker": "Grad A", "content": "OK, we're on."},
                                       {"speaker": "Professor B", "content": "Good."}]}  # fmt: skip
    with plain.client() as client:
        response = client.post(
            "/v1/uploads",
            files={"file": ("Bed099.json", json.dumps(meeting).encode(), "application/json")},
            data={"mapping": mapping},
        )
        assert response.status_code == 202, response.text
        job = wait_job(client, response.json()["job_id"], timeout=120)
        assert job["status"] == "completed", job
        (cid,) = job["result"]["conversation_ids"]
        header = client.get(f"/v1/conversations/{cid}").json()["conversation"]
    assert header["source_id"] == "Bed099" and header["channel"] == "meeting"
