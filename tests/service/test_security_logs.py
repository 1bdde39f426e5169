"""No credential reaches the server's log: a real `convolens serve` writing its log to a
file, called with keys in every place a client may put them (query string, Authorization,
X-API-Key, a WebSocket's ?api_key=, a URL path), then the whole log searched for them."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from live_server import ADMIN_KEY, Server
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from convolens.service.log_redaction import REDACTED, RedactCredentials, redact

SECRET = ADMIN_KEY.split("_", 2)[2]  # the part of the key that must never be written
UNKNOWN = "clk_stranger_Hk3-vQ9_zP2.wL7~tM5nB8cX4rJ6yF1"


def test_keys_are_masked_in_the_access_and_error_logs(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = Server(
        tmp_path / "logs.duckdb", log, CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0"
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            # The query string is not a way to authenticate over HTTP (401), but clients try.
            assert http.get(f"/v1/keys?api_key={ADMIN_KEY}&token={UNKNOWN}").status_code == 401
            bearer = {"Authorization": f"Bearer {ADMIN_KEY}"}
            assert http.get("/v1/keys", headers=bearer).status_code == 200
            assert http.get("/v1/keys", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
            assert http.get(f"/v1/conversations/{ADMIN_KEY}", headers=bearer).status_code == 404
            assert http.get("/v1/jobs/x", params={"password": SECRET}).status_code == 401
        # Browsers put the key in the WebSocket URL: the line uvicorn logs for it is masked.
        # (Both handshakes are refused before a session starts: no models needed.)
        ws_url = server.url.replace("http", "ws") + "/v1/stream"
        for query, code in (
            (f"api_key={UNKNOWN}", 401),
            (f"api_key={ADMIN_KEY}&webhook_url=x", 422),
        ):
            with pytest.raises(InvalidStatus) as refused:
                connect(f"{ws_url}?{query}").close()
            assert refused.value.response.status_code == code
    finally:
        server.stop()

    text = log.read_text()
    for secret in (SECRET, UNKNOWN.split("_", 2)[2]):
        assert secret not in text
    # The lines are there, masked, with what an operator needs to debug (the key id).
    assert f"GET /v1/keys?api_key=clk_testadmin_{REDACTED}&token=" not in text
    assert f"GET /v1/keys?api_key={REDACTED}&token={REDACTED} HTTP/1.1" in text
    assert f"GET /v1/conversations/clk_testadmin_{REDACTED} HTTP/1.1" in text
    assert f"GET /v1/jobs/x?password={REDACTED} HTTP/1.1" in text
    assert f"/v1/stream?api_key={REDACTED}" in text


def test_filter_masks_messages_arguments_and_tracebacks() -> None:
    record = logging.LogRecord(
        "convolens.service", logging.ERROR, __file__, 1,
        "delivery to %s failed: %s", ("https://user:pw@crm.example/h?sig=abc", ADMIN_KEY), None,
    )  # fmt: skip
    try:
        raise RuntimeError(f"Authorization: Bearer {ADMIN_KEY}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactCredentials().filter(record) is True
    line = logging.Formatter().format(record)
    assert SECRET not in line and "pw@" not in line and "sig=abc" not in line
    assert f"https://{REDACTED}@crm.example/h?sig={REDACTED}" in line
    assert "RuntimeError: Authorization: " + REDACTED in line
    # uvicorn's access formatter reads its arguments as a tuple, the status code an int.
    access = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/v1/x?key={ADMIN_KEY}", "1.1", 200), None,
    )  # fmt: skip
    RedactCredentials().filter(access)
    assert isinstance(access.args, tuple) and access.args[4] == 200
    assert access.getMessage() == f'127.0.0.1:5 - "GET /v1/x?key={REDACTED} HTTP/1.1" 200'
    assert redact("nothing secret here: key ids like clk_ stay") == (
        "nothing secret here: key ids like clk_ stay"
    )
