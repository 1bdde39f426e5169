"""The HTTP side of a helpdesk pull: one site, one token, JSON pages, polite retries.

Errors become `PullError` with the site, the request path and what to do about it (a
refused token, a wrong address, a page that is not JSON), never a traceback; the token
is sent as a header and never appears in a message or a log. Rate limits (429) and
server errors (5xx) are retried a few times, honouring Retry-After up to a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["MAX_PAGE_BYTES", "HelpdeskClient", "PullError", "site_of"]

MAX_PAGE_BYTES = 64 * 1024 * 1024
RETRIES = 4
MAX_WAIT_S = 60.0


class PullError(Exception):
    """A pull that cannot go on; the message says which site, which request and why."""


def site_of(url: str) -> str:
    """The site's base address (scheme://host[:port], no trailing slash), checked."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PullError(f"--url {url!r} is not an http(s) address (e.g. https://acme.zendesk.com)")
    if parts.username or parts.password:
        raise PullError("--url must not hold credentials: give the token with --token-env")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


class HelpdeskClient:
    """GETs JSON from one helpdesk site with its token."""

    def __init__(
        self,
        source: str,
        site: str,
        headers: dict[str, str],
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source, self.site, self._sleep = source, site, sleep
        self._http = httpx.Client(
            base_url=site,
            headers={"Accept": "application/json", "User-Agent": "convolens-pull", **headers},
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,
        )
        self.requests = 0

    def __enter__(self) -> HelpdeskClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        where = f"{self.source}: GET {path}"
        for attempt in range(RETRIES + 1):
            try:
                response = self._http.get(path, params=params)
            except httpx.HTTPError as exc:
                if attempt < RETRIES:
                    self._sleep(min(2.0**attempt, MAX_WAIT_S))
                    continue
                raise PullError(
                    f"{where}: cannot reach {self.site} ({type(exc).__name__})"
                ) from None
            self.requests += 1
            busy = response.status_code == 429 or response.status_code >= 500
            if busy and attempt < RETRIES:
                self._sleep(_retry_after(response, attempt))
                continue
            return _json(response, where)
        raise AssertionError("unreachable")  # pragma: no cover

    def follow(self, url: str) -> tuple[str, dict[str, str]]:
        """A next-page URL the site gave, as (path, params) on this site: a page link to
        another host is refused rather than followed with the token."""
        parts = urlsplit(url)
        own = urlsplit(self.site)
        if parts.netloc and (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
            raise PullError(f"{self.source}: a next-page link points to another site: {url!r}")
        params = dict(httpx.QueryParams(parts.query))
        path = parts.path
        prefix = own.path.rstrip("/")
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :]
        return path, params


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "")), 0.0), MAX_WAIT_S)
    except ValueError:
        return min(2.0**attempt, MAX_WAIT_S)


def _json(response: httpx.Response, where: str) -> dict[str, Any]:
    status = response.status_code
    if status in (401, 403):
        raise PullError(f"{where}: the token was refused (HTTP {status}); check --token-env")
    if status == 404:
        raise PullError(f"{where}: not found (HTTP 404); is --url the helpdesk's address?")
    if status >= 300:
        raise PullError(f"{where}: HTTP {status}")
    if len(response.content) > MAX_PAGE_BYTES:
        raise PullError(f"{where}: a page over {MAX_PAGE_BYTES // (1024 * 1024)} MiB")
    try:
        body = response.json()
    except ValueError:
        raise PullError(f"{where}: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise PullError(f"{where}: the answer is not a JSON object")
    return body
