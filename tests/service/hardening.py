"""Shared checks for the hardening tests: what every error the API gives must look like."""

from __future__ import annotations

import re
from typing import Any

import httpx

# What leaks look like: a Python traceback, a source file, a server folder.
_LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\.py\b|site-packages|"
    r"/tmp/|/work/|/home/|/root/|/var/|/usr/|\.uploads/|\.duckdb\b"
)


def leaks(text: str) -> list[str]:
    """The fragments of `text` that reveal a traceback or a server path."""
    return [m.group(0) for m in _LEAKS.finditer(text)]


def assert_clean_error(response: httpx.Response) -> None:
    """Never a 500; an error is JSON {error: {code, message, detail}} and shows no
    traceback or server path."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code < 400:
        return
    body: Any = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "detail"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert not leaks(response.text), (leaks(response.text), response.text[:500])


def assert_clean_job_error(job: dict[str, Any]) -> None:
    """A failed job's error says why in words: no traceback, no server path."""
    error = job["error"]
    assert error is not None and error["message"], job
    text = str(error)
    assert not leaks(text), (leaks(text), text)
