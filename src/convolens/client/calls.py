"""The calls both SDK clients make, described once: request shapes, response parsing,
errors. `Client` runs them on httpx's blocking client, `AsyncClient` on its async one
(convolens.client); nothing here is public API except the exceptions, re-exported there.
"""

from __future__ import annotations

import functools
import json
from collections.abc import (
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from convolens import __version__
from convolens.client.models import (
    Accepted,
    ConversationList,
    ConversationResult,
    Definition,
    Job,
    WebhookCreated,
)

T = TypeVar("T")
Role = Literal["admin", "analyst", "agent", "viewer"]
Kind = Literal["taxonomy", "trackers"]
# What `upload` takes: a path, or the bytes themselves (then `filename` says the format).
UploadSource = str | Path | bytes
DEFAULT_TIMEOUT = 30.0


class ApiError(Exception):
    """A non-2xx answer: `status` (HTTP), `code` (stable, e.g. "conversation_not_found"),
    `message` (what to fix), `detail` (e.g. the list of validation problems)."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail


class JobFailed(Exception):
    """The job ended `failed`; `job.error` has the server's code, message and detail."""

    def __init__(self, job: Job) -> None:
        error = job.error or {}
        super().__init__(
            f"job {job.job_id} failed: {error.get('code', 'error')}: {error.get('message', '')}"
        )
        self.job = job
        self.code: str | None = error.get("code")
        self.message: str | None = error.get("message")
        self.detail: Any = error.get("detail")


class JobTimeout(TimeoutError):
    """`wait` gave up; `job` is the last state seen (the job itself goes on)."""

    def __init__(self, job: Job, timeout: float) -> None:
        super().__init__(f"job {job.job_id} still {job.status} after {timeout:g} s")
        self.job = job


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()["error"]
        return ApiError(response.status_code, body["code"], body["message"], body.get("detail"))
    except (ValueError, KeyError, TypeError):  # not our JSON (a proxy's HTML page, say)
        text = response.text.strip()[:500] or response.reason_phrase
        return ApiError(response.status_code, "http_error", text)


# -- the calls, described once and run by either client --------------------------------------
@dataclass
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    data: dict[str, str] | None = None
    upload: tuple[str, UploadSource] | None = None  # (filename, path or bytes)

    def request_kwargs(self) -> dict[str, Any]:
        params = {k: _param(v) for k, v in self.params.items() if v is not None}
        kwargs: dict[str, Any] = {"params": params}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.data is not None:
            kwargs["data"] = self.data
        return kwargs


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@functools.cache
def _model(kind: Any) -> Callable[[Any], Any]:
    # Cached: building a validator costs far more than a poll of a job's status.
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    return adapter.validate_python


def _nothing(_: Any) -> None:
    return None


def _job_path(job: str | Accepted | Job) -> str:
    return job if isinstance(job, str) else job.job_id


def _submit(
    conversation: Mapping[str, Any] | BaseModel, webhook_url: str | None
) -> _Call[Accepted]:
    # A dict goes as it is: the server validates it, so a malformed record is an ApiError
    # (422 "invalid_request", each problem in `detail`) like every other refusal.
    body = (
        conversation.model_dump(mode="json", exclude_none=True)
        if isinstance(conversation, BaseModel)
        else dict(conversation)
    )
    return _Call(
        "POST",
        "/v1/conversations",
        _model(Accepted),
        params={"webhook_url": webhook_url},
        json=body,
    )


def _upload(
    file: UploadSource,
    filename: str | None,
    metadata: Mapping[str, Any] | str | None,
    format: str | None,
    language: str | None,
    webhook_url: str | None,
) -> _Call[Accepted]:
    if isinstance(file, bytes):
        if not filename:
            raise ValueError("uploading bytes needs a filename (its suffix names the format)")
        name = filename
    else:
        file = Path(file)
        name = filename or file.name
    data = {"format": format, "language": language, "webhook_url": webhook_url}
    if metadata is not None:
        data["metadata"] = metadata if isinstance(metadata, str) else json.dumps(metadata)
    return _Call(
        "POST",
        "/v1/uploads",
        _model(Accepted),
        data={k: v for k, v in data.items() if v is not None},
        upload=(name, file),
    )


def _conversation(
    conversation_id: str, words: bool, parts: Sequence[str] | str | None
) -> _Call[ConversationResult]:
    chosen = parts if isinstance(parts, str) or parts is None else ",".join(parts)
    return _Call(
        "GET",
        f"/v1/conversations/{conversation_id}",
        _model(ConversationResult),
        params={"words": words or None, "parts": chosen},
    )


def _conversations(filters: dict[str, Any]) -> _Call[ConversationList]:
    return _Call("GET", "/v1/conversations", _model(ConversationList), params=filters)


def _create_webhook(
    url: str,
    events: Sequence[str],
    rule: Mapping[str, Any] | None,
    payload_format: str,
    secret: str | None,
) -> _Call[WebhookCreated]:
    body: dict[str, Any] = {"url": url, "events": list(events), "payload_format": payload_format}
    if rule is not None:
        body["rule"] = dict(rule)
    if secret is not None:
        body["secret"] = secret
    return _Call("POST", "/v1/webhooks", _model(WebhookCreated), json=body)


def _create_definition(
    kind: Kind, content: str | Mapping[str, Any] | Sequence[Any], name: str | None, activate: bool
) -> _Call[Definition]:
    body: dict[str, Any] = {
        "content": content if isinstance(content, str) else json.loads(json.dumps(content)),
        "activate": activate,
    }
    if name is not None:
        body["name"] = name
    return _Call("POST", f"/v1/definitions/{kind}", _model(Definition), json=body)


def _headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": f"convolens-python/{__version__}", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return {**headers, **(extra or {})}


class _Base:
    """What both clients share: where the server is, and each call's description."""

    base_url: str
    api_key: str | None

    @staticmethod
    def _filters(
        channel: str | None,
        agent: str | None,
        since: datetime | str | None,
        until: datetime | str | None,
        intent: str | None,
        topic: str | None,
        sentiment: str | None,
        tracker: str | None,
        signal: str | None,
        q: str | None,
        limit: int,
        offset: int,
        conversation_type: str | None = None,
    ) -> dict[str, Any]:
        return dict(
            channel=channel, agent=agent, since=since, until=until, intent=intent, topic=topic,
            sentiment=sentiment, tracker=tracker, signal=signal, q=q, limit=limit, offset=offset,
            type=conversation_type,
        )  # fmt: skip


def _read(path: str | Path) -> bytes:
    return Path(path).read_bytes()
