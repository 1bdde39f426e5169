"""The Python SDK for a convolens server (`convolens serve`): typed calls over httpx.

    from convolens.client import Client

    with Client("http://localhost:8000", api_key="clk_...") as api:
        accepted = api.submit_conversation({"id": "c-1", "messages": [...]})
        api.wait(accepted)                       # raises JobFailed with the job's error
        result = api.conversation(accepted.conversation_id)
        print(result.primary_intent, result.intents[0].evidence)

`AsyncClient` has the same methods, awaited. Why this shape: integrations (a CRM hook, a
notebook, a batch uploader) should not each re-learn the wire format, the job-polling
loop and the error body; and the SDK needs only httpx and pydantic, not the server's
dependencies (its models are in `convolens.client.models`).

Every non-2xx answer raises `ApiError` with the server's stable `code` (switch on it) and
its `message`; network failures are httpx's own exceptions (`httpx.HTTPError`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel

from convolens.client.calls import (
    DEFAULT_TIMEOUT,
    ApiError,
    JobFailed,
    JobTimeout,
    Kind,
    Role,
    T,
    UploadSource,
    _Base,
    _Call,
    _conversation,
    _conversations,
    _create_definition,
    _create_webhook,
    _error,
    _headers,
    _job_path,
    _model,
    _nothing,
    _read,
    _submit,
    _upload,
)
from convolens.client.governance_calls import AsyncGovernanceMethods, GovernanceMethods
from convolens.client.health_calls import (
    data_health_call,
    data_health_sources_call,
    drift_call,
)
from convolens.client.models import (
    Accepted,
    Aggregates,
    ApiKey,
    ApiKeyCreated,
    ConversationList,
    ConversationResult,
    Definition,
    Deleted,
    Job,
    Label,
    Webhook,
    WebhookCreated,
)
from convolens.client.review_calls import AsyncReviewMethods, ReviewMethods
from convolens.client.speaker_calls import AsyncSpeakerMethods, SpeakerMethods
from convolens.client.stream import (
    LiveStream,
    StreamEvent,
    astream_events,
    file_frames,
    paced,
    stream_events,
)
from convolens.health.models import DriftReport, HealthFinding, SourceHealth

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "JobFailed",
    "JobTimeout",
    "LiveStream",
    "StreamEvent",
]


class Client(_Base, ReviewMethods, GovernanceMethods, SpeakerMethods):
    """A blocking client. Use as a context manager (or call `close()`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _do(self, call: _Call[T]) -> T:
        kwargs = call.request_kwargs()
        if call.upload is None:
            response = self._http.request(call.method, call.path, **kwargs)
        else:
            name, source = call.upload
            if isinstance(source, bytes):
                response = self._http.request(
                    call.method, call.path, files={"file": (name, source)}, **kwargs
                )
            else:
                with Path(source).open("rb") as handle:
                    response = self._http.request(
                        call.method, call.path, files={"file": (name, handle)}, **kwargs
                    )
        if response.is_error:
            raise _error(response)
        return call.parse(response.json() if response.content else None)

    # -- submitting ------------------------------------------------------------------------
    def submit_conversation(
        self, conversation: Mapping[str, Any] | BaseModel, webhook_url: str | None = None
    ) -> Accepted:
        """Submit a text conversation (docs/formats.md JSON); returns at once (202)."""
        return self._do(_submit(conversation, webhook_url))

    def upload(
        self,
        file: UploadSource,
        *,
        filename: str | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        format: str | None = None,
        language: str | None = None,
        webhook_url: str | None = None,
    ) -> Accepted:
        """Upload a recording or an export (chat JSON/JSONL, CSV, email, ticket JSON): a
        path, or bytes with `filename`. `metadata` is a recording's sidecar."""
        return self._do(_upload(file, filename, metadata, format, language, webhook_url))

    # -- jobs ------------------------------------------------------------------------------
    def job(self, job: str | Accepted | Job) -> Job:
        return self._do(_Call("GET", f"/v1/jobs/{_job_path(job)}", _model(Job)))

    def jobs(self, status: str | None = None, limit: int = 50) -> list[Job]:
        return self._do(
            _Call("GET", "/v1/jobs", _model(list[Job]), params={"status": status, "limit": limit})
        )

    def wait(self, job: str | Accepted | Job, timeout: float = 300.0, poll: float = 0.5) -> Job:
        """Poll until the job ends: the completed job, or JobFailed / JobTimeout."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.job(job)
            if current.status == "completed":
                return current
            if current.status == "failed":
                raise JobFailed(current)
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobTimeout(current, timeout)
            time.sleep(min(poll, left))

    # -- results ---------------------------------------------------------------------------
    def conversation(
        self, conversation_id: str, words: bool = False, parts: Sequence[str] | str | None = None
    ) -> ConversationResult:
        """Header, utterances, metrics and the parts' labels (all parts by default)."""
        return self._do(_conversation(conversation_id, words, parts))

    def part(self, conversation_id: str, name: str) -> list[Label]:
        """One part's labels (type, sentiment, intents, topics, entities, questions,
        action_items, trackers, signals, resolution, summary, pii)."""
        path = f"/v1/conversations/{conversation_id}/{name}"
        return self._do(_Call("GET", path, _model(list[Label])))

    def conversations(
        self,
        *,
        channel: str | None = None,
        agent: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        intent: str | None = None,
        topic: str | None = None,
        sentiment: str | None = None,
        tracker: str | None = None,
        signal: str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
        conversation_type: str | None = None,
    ) -> ConversationList:
        """Conversations, newest first, filtered by channel, agent, dates, labels, text or
        conversation type (support, sales, meeting, interview, other)."""
        filters = self._filters(
            channel, agent, since, until, intent, topic, sentiment, tracker, signal, q,
            limit, offset, conversation_type,
        )  # fmt: skip
        return self._do(_conversations(filters))

    def aggregates(
        self,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        channel: str | None = None,
    ) -> Aggregates:
        params = {"since": since, "until": until, "channel": channel}
        return self._do(_Call("GET", "/v1/aggregates", _model(Aggregates), params=params))

    def delete(self, conversation_id: str) -> Deleted:
        """Delete a conversation and everything derived from it (admin keys)."""
        path = f"/v1/conversations/{conversation_id}"
        return self._do(_Call("DELETE", path, _model(Deleted)))

    # -- administration --------------------------------------------------------------------
    def create_key(self, name: str, role: Role, agent: str | None = None) -> ApiKeyCreated:
        """A new API key; `.key` is shown in this answer only."""
        body = {"name": name, "role": role, "agent": agent}
        return self._do(_Call("POST", "/v1/keys", _model(ApiKeyCreated), json=body))

    def keys(self) -> list[ApiKey]:
        return self._do(_Call("GET", "/v1/keys", _model(list[ApiKey])))

    def revoke_key(self, key_id: str) -> None:
        self._do(_Call("DELETE", f"/v1/keys/{key_id}", _nothing))

    def create_webhook(
        self,
        url: str,
        events: Sequence[str],
        *,
        rule: Mapping[str, Any] | None = None,
        payload_format: Literal["json", "slack"] = "json",
        secret: str | None = None,
    ) -> WebhookCreated:
        """Register a URL for events ("job.completed", "tracker.hit", ... or "*");
        `.secret` (shown once) verifies the deliveries' signatures."""
        return self._do(_create_webhook(url, events, rule, payload_format, secret))

    def webhooks(self) -> list[Webhook]:
        return self._do(_Call("GET", "/v1/webhooks", _model(list[Webhook])))

    def delete_webhook(self, hook_id: str) -> None:
        self._do(_Call("DELETE", f"/v1/webhooks/{hook_id}", _nothing))

    def definitions(self, kind: Kind, content: bool = False) -> list[Definition]:
        """Every version of the taxonomies (or tracker sets), and which one is active."""
        params = {"content": content or None}
        return self._do(
            _Call("GET", f"/v1/definitions/{kind}", _model(list[Definition]), params=params)
        )

    def create_definition(
        self,
        kind: Kind,
        content: str | Mapping[str, Any] | Sequence[Any],
        *,
        name: str | None = None,
        activate: bool = False,
    ) -> Definition:
        """Store a new version of a taxonomy (YAML text or mapping) or a tracker list; with
        `activate`, the server relabels with it (the job id is in `summary["job_id"]`)."""
        return self._do(_create_definition(kind, content, name, activate))

    def health(self) -> dict[str, Any]:
        return self._do(_Call("GET", "/v1/health", _model(dict[str, Any])))

    def drift(self, *, check: bool = False, **params: Any) -> DriftReport:
        """Label drift per component (GET /v1/drift; `check=True`: POST /v1/drift/check,
        which stores the figures and sends `drift` webhooks). `params`: recent_days,
        reference_days, until, component, psi_threshold, series_points, embeddings."""
        return self._do(drift_call(check=check, **params))

    def data_health(self, **filters: Any) -> list[HealthFinding]:
        """Intake findings, newest first; `filters`: run_id, source, check, limit."""
        return self._do(data_health_call(**filters))

    def data_health_sources(self) -> list[SourceHealth]:
        return self._do(data_health_sources_call())

    # --- live streaming (WS /v1/stream) ---------------------------------------------

    def stream(
        self,
        start: Mapping[str, Any] | BaseModel | None = None,
        audio: Iterable[bytes] | None = None,
        messages: Iterable[tuple[str, str]] = (),
        *,
        webhook_url: str | None = None,
        **fields: Any,
    ) -> Iterator[StreamEvent]:
        """Stream PCM16 chunks (e.g. a microphone generator) and/or (speaker, text) messages;
        yields events as they arrive, ending with `stored`. `fields` add to the start
        message (`channels=2`, `speakers=[...]`, `language="en"`, ...)."""
        return stream_events(
            self.base_url, self.api_key, start, audio, messages, webhook_url=webhook_url, **fields
        )

    def stream_file(
        self,
        path: str | Path,
        start: Mapping[str, Any] | BaseModel | None = None,
        *,
        realtime: bool = True,
        frame_ms: int = 100,
        webhook_url: str | None = None,
        **fields: Any,
    ) -> Iterator[StreamEvent]:
        """Stream a recording as if live (`realtime=False`: as fast as the server reads)."""
        shape, frames = file_frames(path, frame_ms)
        audio = paced(frames, frame_ms) if realtime else iter(frames)
        return stream_events(
            self.base_url,
            self.api_key,
            start,
            audio,
            webhook_url=webhook_url,
            **{**shape, **fields},
        )

    def live(
        self,
        start: Mapping[str, Any] | BaseModel | None = None,
        *,
        webhook_url: str | None = None,
        **fields: Any,
    ) -> LiveStream:
        """An open stream to send audio and messages to from anywhere (`send_audio`,
        `say`, `stop`) and read `events()` from."""
        return LiveStream(self.base_url, self.api_key, start, webhook_url=webhook_url, **fields)


class AsyncClient(_Base, AsyncReviewMethods, AsyncGovernanceMethods, AsyncSpeakerMethods):
    """The same calls as `Client`, for asyncio (`async with AsyncClient(...) as api`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _do(self, call: _Call[T]) -> T:
        kwargs = call.request_kwargs()
        if call.upload is None:
            response = await self._http.request(call.method, call.path, **kwargs)
        else:
            name, source = call.upload
            # A path is read whole off the event loop: httpx would read a file handle with
            # blocking calls inside the loop.
            content = (
                source if isinstance(source, bytes) else await asyncio.to_thread(_read, source)
            )
            response = await self._http.request(
                call.method, call.path, files={"file": (name, content)}, **kwargs
            )
        if response.is_error:
            raise _error(response)
        return call.parse(response.json() if response.content else None)

    async def submit_conversation(
        self, conversation: Mapping[str, Any] | BaseModel, webhook_url: str | None = None
    ) -> Accepted:
        return await self._do(_submit(conversation, webhook_url))

    async def upload(
        self,
        file: UploadSource,
        *,
        filename: str | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        format: str | None = None,
        language: str | None = None,
        webhook_url: str | None = None,
    ) -> Accepted:
        return await self._do(_upload(file, filename, metadata, format, language, webhook_url))

    async def job(self, job: str | Accepted | Job) -> Job:
        return await self._do(_Call("GET", f"/v1/jobs/{_job_path(job)}", _model(Job)))

    async def jobs(self, status: str | None = None, limit: int = 50) -> list[Job]:
        return await self._do(
            _Call("GET", "/v1/jobs", _model(list[Job]), params={"status": status, "limit": limit})
        )

    async def wait(
        self, job: str | Accepted | Job, timeout: float = 300.0, poll: float = 0.5
    ) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            current = await self.job(job)
            if current.status == "completed":
                return current
            if current.status == "failed":
                raise JobFailed(current)
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobTimeout(current, timeout)
            await asyncio.sleep(min(poll, left))

    async def conversation(
        self, conversation_id: str, words: bool = False, parts: Sequence[str] | str | None = None
    ) -> ConversationResult:
        return await self._do(_conversation(conversation_id, words, parts))

    async def part(self, conversation_id: str, name: str) -> list[Label]:
        path = f"/v1/conversations/{conversation_id}/{name}"
        return await self._do(_Call("GET", path, _model(list[Label])))

    async def conversations(
        self,
        *,
        channel: str | None = None,
        agent: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        intent: str | None = None,
        topic: str | None = None,
        sentiment: str | None = None,
        tracker: str | None = None,
        signal: str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
        conversation_type: str | None = None,
    ) -> ConversationList:
        filters = self._filters(
            channel, agent, since, until, intent, topic, sentiment, tracker, signal, q,
            limit, offset, conversation_type,
        )  # fmt: skip
        return await self._do(_conversations(filters))

    async def aggregates(
        self,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        channel: str | None = None,
    ) -> Aggregates:
        params = {"since": since, "until": until, "channel": channel}
        return await self._do(_Call("GET", "/v1/aggregates", _model(Aggregates), params=params))

    async def delete(self, conversation_id: str) -> Deleted:
        path = f"/v1/conversations/{conversation_id}"
        return await self._do(_Call("DELETE", path, _model(Deleted)))

    async def create_key(self, name: str, role: Role, agent: str | None = None) -> ApiKeyCreated:
        body = {"name": name, "role": role, "agent": agent}
        return await self._do(_Call("POST", "/v1/keys", _model(ApiKeyCreated), json=body))

    async def keys(self) -> list[ApiKey]:
        return await self._do(_Call("GET", "/v1/keys", _model(list[ApiKey])))

    async def revoke_key(self, key_id: str) -> None:
        await self._do(_Call("DELETE", f"/v1/keys/{key_id}", _nothing))

    async def create_webhook(
        self,
        url: str,
        events: Sequence[str],
        *,
        rule: Mapping[str, Any] | None = None,
        payload_format: Literal["json", "slack"] = "json",
        secret: str | None = None,
    ) -> WebhookCreated:
        return await self._do(_create_webhook(url, events, rule, payload_format, secret))

    async def webhooks(self) -> list[Webhook]:
        return await self._do(_Call("GET", "/v1/webhooks", _model(list[Webhook])))

    async def delete_webhook(self, hook_id: str) -> None:
        await self._do(_Call("DELETE", f"/v1/webhooks/{hook_id}", _nothing))

    async def definitions(self, kind: Kind, content: bool = False) -> list[Definition]:
        params = {"content": content or None}
        return await self._do(
            _Call("GET", f"/v1/definitions/{kind}", _model(list[Definition]), params=params)
        )

    async def create_definition(
        self,
        kind: Kind,
        content: str | Mapping[str, Any] | Sequence[Any],
        *,
        name: str | None = None,
        activate: bool = False,
    ) -> Definition:
        return await self._do(_create_definition(kind, content, name, activate))

    async def health(self) -> dict[str, Any]:
        return await self._do(_Call("GET", "/v1/health", _model(dict[str, Any])))

    async def drift(self, *, check: bool = False, **params: Any) -> DriftReport:
        return await self._do(drift_call(check=check, **params))

    async def data_health(self, **filters: Any) -> list[HealthFinding]:
        return await self._do(data_health_call(**filters))

    async def data_health_sources(self) -> list[SourceHealth]:
        return await self._do(data_health_sources_call())

    def stream(
        self,
        start: Mapping[str, Any] | BaseModel | None = None,
        audio: AsyncIterable[bytes] | Iterable[bytes] | None = None,
        messages: Iterable[tuple[str, str]] = (),
        *,
        webhook_url: str | None = None,
        **fields: Any,
    ) -> AsyncIterator[StreamEvent]:
        """`Client.stream` for asyncio: `async for event in api.stream(...)`."""
        return astream_events(
            self.base_url, self.api_key, start, audio, messages, webhook_url=webhook_url, **fields
        )
