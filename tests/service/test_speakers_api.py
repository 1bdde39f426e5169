"""Enrolled voices over HTTP (#14 item 2): a real server, real voices (JFK from the shared
audio, an espeak-ng caller from tests/data), the SDK and raw requests.

One server for the module (no labelling components, no preloading: the CAM++ model loads
on the first enrolment). Its upload limit is 1 MiB, so the "huge upload" is 2 MiB.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import ADMIN_KEY, ROOT, Server, role_keys, wait_job
from typer.testing import CliRunner

from convolens.cli import app as cli_app
from convolens.client import ApiError, AsyncClient, Client
from convolens.enrich.registry import DEFAULT_COMPONENTS
from convolens.speech.decode import decode_audio

RATE = 16000
SHARED_AUDIO = ROOT.parent / "shared" / "data" / "audio"
CALLER = ROOT / "tests" / "data" / "audio" / "voices" / "customer_en.flac"


def _wav(path: Path, samples: np.ndarray) -> Path:
    import soundfile

    soundfile.write(path, np.clip(samples, -1, 1), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not (SHARED_AUDIO / "jfk.flac").is_file():
        pytest.fail(f"{SHARED_AUDIO} is missing: the shared datasets sit beside the checkout")
    folder = tmp_path_factory.mktemp("voices")
    jfk = decode_audio(SHARED_AUDIO / "jfk.flac", mono=True).channels[0]
    noise = np.random.default_rng(7).normal(0, 0.01, 70 * RATE).astype(np.float32)
    import soundfile

    soundfile.write(folder / "long.flac", np.zeros(70 * RATE, np.float32), RATE)
    (folder / "garbage.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + os.urandom(3000))
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.json").write_text(json.dumps({"hello": "world"}))
    (folder / "huge.wav").write_bytes(b"\0" * (2 * 1024 * 1024))
    return {
        "jfk": _wav(folder / "jfk_enrol.wav", jfk[: int(4.5 * RATE)]),
        "short": _wav(folder / "hello.wav", jfk[: int(1.5 * RATE)]),
        "silence": _wav(folder / "silence.wav", noise[: 6 * RATE] * 0.05),
        "caller": CALLER,
        "long": folder / "long.flac",
        "garbage": folder / "garbage.wav",
        "empty": folder / "empty.wav",
        "json": folder / "notes.json",
        "huge": folder / "huge.wav",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("speakers")
    config = folder / "components.toml"
    config.write_text(
        "".join(f"[components.{name}]\nenabled = false\n" for name in DEFAULT_COMPONENTS)
    )
    running = Server(
        folder / "w.duckdb",
        folder / "server.log",
        CONVOLENS_CONFIG=str(config),
        CONVOLENS_MAX_UPLOAD_MB="1",
    )
    running.env["CONVOLENS_PRELOAD"] = "0"
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    return role_keys(server, name="speakers")


def _post(
    server: Server, key: str | None, path: Path | None, name: str = "Dana Ruiz", **fields: Any
) -> httpx.Response:
    files = {"file": (path.name, path.read_bytes(), "application/octet-stream")} if path else None
    with server.client(key) as client:
        return client.post("/v1/speakers", data={"name": name, **fields}, files=files)


def _no_leak(response: httpx.Response, *extra: str) -> None:
    """No traceback, no server path, never a voice print (a list of 192 floats)."""
    text = response.text
    assert "Traceback" not in text and "/tmp/" not in text and str(ROOT) not in text, text
    assert "embedding" not in text and text.count(".") < 40, text[:300]
    for word in extra:
        assert word not in text


def _spooled_voices(server: Server) -> list[Path]:
    """What is left of enrolment uploads in the server's spool (nothing, ever)."""
    folder = server.db.with_name(server.db.stem + ".uploads") / "enrol"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _audit(server: Server, action: str) -> list[dict[str, Any]]:
    with server.client() as admin:
        rows = admin.get("/v1/audit", params={"action": action}).json()
    return list(reversed(rows))  # oldest first


def test_enrol_list_reenrol_delete_through_the_sdk(server: Server, audio: dict[str, Path]) -> None:
    with Client(server.url, ADMIN_KEY, timeout=180) as api:
        made = api.enrol_speaker("John Kennedy", audio["jfk"])
        assert made.name == "John Kennedy" and made.role == "agent" and not made.replaced
        assert made.samples == 1 and made.speech_seconds >= 3.0
        assert made.model.startswith("campplus")
        (listed,) = api.list_speakers()
        assert listed.model_dump() == made.model_dump(exclude={"replaced"})
        # Re-enrolling replaces the print (as the CLI does): another voice, another role.
        again = api.enrol_speaker(
            "John Kennedy", audio["caller"].read_bytes(), role="customer", filename="caller.flac"
        )
        assert again.replaced and again.role == "customer"
        assert again.speech_seconds != made.speech_seconds
        assert again.enrolled_at >= made.enrolled_at
        assert [(s.name, s.role) for s in api.list_speakers()] == [("John Kennedy", "customer")]
        api.delete_speaker("John Kennedy")
        assert api.list_speakers() == []
        with pytest.raises(ApiError) as missing:
            api.delete_speaker("John Kennedy")
        assert missing.value.status == 404 and missing.value.code == "speaker_not_found"
    with server.client() as admin:
        # The raw answers: 201 then 200, and the listing never holds a print.
        first = admin.post(
            "/v1/speakers",
            data={"name": "Ana Lima"},
            files={"file": ("jfk.wav", audio["jfk"].read_bytes())},
        )
        assert first.status_code == 201, first.text
        second = admin.post(
            "/v1/speakers",
            data={"name": "Ana Lima", "role": "agent"},
            files={"file": ("jfk.wav", audio["jfk"].read_bytes())},
        )
        assert second.status_code == 200 and second.json()["replaced"] is True
        listing = admin.get("/v1/speakers")
        assert listing.status_code == 200 and [r["name"] for r in listing.json()] == ["Ana Lima"]
        _no_leak(listing)
        assert set(listing.json()[0]) == {
            "name", "role", "samples", "speech_seconds", "model", "enrolled_at"
        }  # fmt: skip
        assert admin.delete("/v1/speakers/Ana%20Lima").status_code == 204
    assert _spooled_voices(server) == []
    # The audit log: each enrolment and deletion, the name as target, never the print.
    enrols = _audit(server, "speaker.enrol")
    assert [(e["target_id"], e["details"].get("replaced")) for e in enrols[-4:]] == [
        ("John Kennedy", False), ("John Kennedy", True), ("Ana Lima", False), ("Ana Lima", True)
    ]  # fmt: skip
    assert all(e["outcome"] == "ok" and e["target_type"] == "speaker_voice" for e in enrols)
    deletes = _audit(server, "speaker.delete")
    assert [(d["outcome"], d["target_id"]) for d in deletes][:1] == [("ok", "John Kennedy")]
    # A refused id is kept only hashed (it is whatever the caller typed).
    assert deletes[1]["outcome"] == "not_found" and deletes[1]["target_id"].startswith("sha256:")
    assert all("embedding" not in json.dumps(e) for e in enrols + deletes)


def test_async_client(server: Server, audio: dict[str, Path]) -> None:
    async def enrol_list_delete() -> list[str]:
        async with AsyncClient(server.url, ADMIN_KEY, timeout=180) as api:
            made = await api.enrol_speaker("Async Voice", audio["jfk"], role="bot")
            assert made.role == "bot" and not made.replaced
            names = [s.name for s in await api.list_speakers()]
            await api.delete_speaker("Async Voice")
            return names

    assert asyncio.run(enrol_list_delete()) == ["Async Voice"]


@pytest.mark.parametrize(
    ("which", "status", "code", "says"),
    [
        ("garbage", 422, "unreadable_audio", "garbage.wav: not a readable audio"),
        ("json", 422, "unreadable_audio", "notes.json"),
        ("empty", 422, "empty_upload", "empty"),
        ("short", 422, "enrolment_refused", "hello.wav: "),
        ("silence", 422, "enrolment_refused", "at least 3 s"),
        ("long", 422, "audio_too_long", "long.flac: longer than 60 s"),
        ("huge", 413, "upload_too_large", "at most 1 MiB"),
    ],
)
def test_bad_recordings_are_refused_with_the_reason(
    server: Server, audio: dict[str, Path], which: str, status: int, code: str, says: str
) -> None:
    response = _post(server, ADMIN_KEY, audio[which], name="Bad Sample")
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and says in error["message"], error
    _no_leak(response)
    with server.client() as admin:
        assert "Bad Sample" not in admin.get("/v1/speakers").text
    assert _spooled_voices(server) == []


def test_only_admins_enrol_list_or_delete(
    server: Server, keys: dict[str, str], audio: dict[str, Path]
) -> None:
    for role in ("analyst", "agent", "viewer", None):
        key = keys[role] if role else None
        expected = 403 if role else 401
        enrolled = _post(server, key, audio["jfk"], name=f"By {role}")
        assert enrolled.status_code == expected, (role, enrolled.text)
        with server.client(key) as client:
            assert client.get("/v1/speakers").status_code == expected
            assert client.delete("/v1/speakers/Anyone").status_code == expected
        # Refused before the body is read: a huge upload gets the same answer.
        assert _post(server, key, audio["huge"]).status_code == expected
    with server.client() as admin:
        assert "By " not in admin.get("/v1/speakers").text


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../../etc/passwd", "invalid_name"),
        ("a/b", "invalid_name"),
        ("back\\slash", "invalid_name"),
        ("..", "invalid_name"),
        ("nul\x00byte", "invalid_name"),
        ("line\nbreak", "invalid_name"),
        ("x" * 101, "invalid_name"),
        ("   ", "invalid_name"),
    ],
)
def test_hostile_names_are_refused(
    server: Server, audio: dict[str, Path], name: str, code: str
) -> None:
    response = _post(server, ADMIN_KEY, audio["jfk"], name=name)
    assert response.status_code == 422 and response.json()["error"]["code"] == code, response.text
    _no_leak(response)


def test_hostile_requests(server: Server, audio: dict[str, Path], tmp_path: Path) -> None:
    admin_key = ADMIN_KEY
    # A file name that climbs out of the spool: only its last part is used, and removed.
    planted = tmp_path / "planted.wav"
    climbing = "../" * 16 + str(planted).lstrip("/")
    with server.client(admin_key) as admin:
        made = admin.post(
            "/v1/speakers",
            data={"name": "Traversal Test"},
            files={"file": (climbing, audio["jfk"].read_bytes())},
        )
        assert made.status_code == 201, made.text
        assert not planted.exists() and _spooled_voices(server) == []
        assert admin.delete("/v1/speakers/Traversal%20Test").status_code == 204
        # Traversal in the path: never reaches another route, never deletes anything else.
        for path in ("/v1/speakers/..%2F..%2Fkeys", "/v1/speakers/%2e%2e", "/v1/speakers/a%00b"):
            assert admin.delete(path).status_code in (404, 405), path
        assert admin.get("/v1/keys").status_code == 200
        # A misspelt field is refused, not ignored; an unknown role is refused.
        jfk = {"file": ("jfk.wav", audio["jfk"].read_bytes())}
        typo = admin.post("/v1/speakers", data={"name": "Typo", "rol": "customer"}, files=jfk)
        assert typo.status_code == 422 and typo.json()["error"]["code"] == "unknown_field"
        bad_role = admin.post("/v1/speakers", data={"name": "Typo", "role": "root"}, files=jfk)
        assert bad_role.status_code == 422, bad_role.text
        no_file = admin.post("/v1/speakers", data={"name": "Typo"})
        assert no_file.status_code == 422, no_file.text
        # A body of undeclared length (chunked) is not read at all.
        chunked = admin.post(
            "/v1/speakers",
            content=iter([b"--x\r\n", b"\0" * 1024]),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert chunked.status_code == 411, chunked.text
        assert admin.get("/v1/speakers").json() == []
        _no_leak(typo)


def test_erasure_takes_the_persons_enrolled_voice(
    server: Server, audio: dict[str, Path], tmp_path: Path
) -> None:
    """Erasing a person by email also deletes the voice enrolled under the name their
    participant rows hold; `name` alone (API, CLI) deletes a voice and no conversation."""
    with Client(server.url, ADMIN_KEY, timeout=180) as api:
        api.enrol_speaker("Dana Ruiz", audio["jfk"])
        api.enrol_speaker("Sam Okafor", audio["caller"])
        api.enrol_speaker("Lee Chan", audio["jfk"], role="customer")
        accepted = api.submit_conversation(
            {
                "id": "voice-erasure-1",
                "channel": "chat",
                "participants": [
                    {
                        "id": "a",
                        "name": "Dana Ruiz",
                        "role": "agent",
                        "email": "dana.ruiz@acme.example",
                    },
                    {"id": "c", "name": "Lee Chan", "role": "customer"},
                ],
                "messages": [
                    {"author": "c", "text": "My invoice is wrong this month."},
                    {"author": "a", "text": "I can help with that right away."},
                ],
            }
        )
        with server.client() as admin:
            assert wait_job(admin, accepted.job_id)["status"] == "completed"
        receipt = api.erase_person(email="dana.ruiz@acme.example")
        assert receipt.conversations == 1 and receipt.rows.get("speaker_voices") == 1, receipt
        # Only the matched participant's own name: the customer's voice stays.
        assert [s.name for s in api.list_speakers()] == ["Lee Chan", "Sam Okafor"]
        by_name = api.erase_person(name="  sam okafor ")
        assert by_name.conversations == 0 and by_name.identifiers == ["name"]
        assert by_name.rows == {"speaker_voices": 1}
        assert [s.name for s in api.list_speakers()] == ["Lee Chan"]
        # The CLI, through the server that holds the warehouse: count, then erase.
        runner = CliRunner(env={"COLUMNS": "200"})
        db = str(server.db)
        counted = runner.invoke(cli_app, ["erase", "--name", "Lee Chan", "--db", db])
        assert counted.exit_code == 0, counted.output
        assert "0 conversation(s) hold this person, and 1 enrolled voice print(s)" in (
            counted.output
        )
        assert [s.name for s in api.list_speakers()] == ["Lee Chan"]
        erased = runner.invoke(cli_app, ["erase", "--name", "Lee Chan", "--yes", "--db", db])
        assert erased.exit_code == 0 and '"speaker_voices": 1' in erased.output, erased.output
        assert api.list_speakers() == []
        nothing = api.erase_person(name="Nobody Enrolled")
        assert nothing.rows == {} and nothing.conversations == 0


def test_the_cli_speakers_commands_run_through_the_server(
    server: Server, audio: dict[str, Path]
) -> None:
    """While the server holds the warehouse, `convolens speakers ...` runs inside it (the
    CLI's bridge, cli/remote.py): what it enrols the API lists, and the reverse."""
    runner = CliRunner(env={"COLUMNS": "200"})
    db = str(server.db)
    enrolled = runner.invoke(cli_app, ["speakers", "enrol", "Cli Voice", str(audio["jfk"]),
                                       "--db", db])  # fmt: skip
    assert enrolled.exit_code == 0 and "enrolled Cli Voice (agent)" in enrolled.output, (
        enrolled.output
    )
    with Client(server.url, ADMIN_KEY) as api:
        assert [s.name for s in api.list_speakers()] == ["Cli Voice"]
        api.enrol_speaker("Api Voice", audio["caller"], role="customer")
    listed = runner.invoke(cli_app, ["speakers", "list", "--json", "--db", db])
    rows = json.loads(listed.stdout)  # (stderr says the server ran it)
    assert [(r["name"], r["role"]) for r in rows] == [
        ("Api Voice", "customer"), ("Cli Voice", "agent")
    ]  # fmt: skip
    refused = runner.invoke(cli_app, ["speakers", "enrol", "a/b", str(audio["jfk"]), "--db", db])
    assert refused.exit_code == 1 and "cannot hold '/'" in refused.output, refused.output
    for name in ("Api Voice", "Cli Voice"):
        removed = runner.invoke(cli_app, ["speakers", "remove", name, "--db", db])
        assert removed.exit_code == 0, removed.output
    with Client(server.url, ADMIN_KEY) as api:
        assert api.list_speakers() == []
