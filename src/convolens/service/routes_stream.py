"""`WS /v1/stream`: a live call or chat in, transcripts, insights and alerts out.

The route only moves frames: the realtime engine (`convolens.realtime.StreamSession`)
does the work, in a worker thread per frame so the event loop keeps serving other
connections while Whisper decodes. Events go out the moment the engine makes them (a final
transcript before its insights are computed), through a queue drained by a sender task.

On `stop`, or when the client goes away mid-call, the conversation is written to the spool
(with the audio as WAV, for replay) and a `stream` job stores it and runs the full
pipeline; the last event, `stored`, names the conversation and the job. The protocol and
the event shapes are in docs/streaming.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from convolens.engine.priority import LIVE
from convolens.model import Conversation
from convolens.service.auth import Principal, Role, authenticate
from convolens.service.errors import ApiError
from convolens.service.state import Service
from convolens.service.webhook_targets import job_webhook_url
from convolens.speech.voices import enrolled_voices
from convolens.store.warehouse import Warehouse

__all__ = ["router"]

T = TypeVar("T")

log = logging.getLogger("convolens.service.stream")
router = APIRouter(prefix="/v1")

# Engine work (VAD, Whisper, insights) runs on a few threads shared by every stream and by
# nothing else (`stream_workers`, default as many as the cores): many streams queue for the
# CPU instead of fighting over it (and over the GIL, which the event loop needs to keep
# answering every connection), and never queue behind a job (engine/priority.py).
_EXECUTORS: dict[int, ThreadPoolExecutor] = {}
_EXECUTORS_LOCK = threading.Lock()
# Up to ~1 s of queued 16 kHz stereo audio is fed to the engine in one call.
COALESCE_BYTES = 64_000


def _live_executor(workers: int) -> ThreadPoolExecutor:
    with _EXECUTORS_LOCK:
        if workers not in _EXECUTORS:
            _EXECUTORS[workers] = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="convolens-stream"
            )
        return _EXECUTORS[workers]


# Close codes (RFC 6455 leaves 4000-4999 to applications).
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008


class _Recorder:
    """Keeps the received audio as a WAV beside the spooled conversation (the raw layer
    of a stream: what was heard, kept for replay and audit)."""

    def __init__(self, path: Path, channels: int, sample_rate: int) -> None:
        self.path = path
        self.frame_bytes = 2 * channels
        self._wav: wave.Wave_write | None = wave.open(str(path), "wb")  # noqa: SIM115
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)

    def write(self, data: bytes) -> None:
        if self._wav is not None and len(data) % self.frame_bytes == 0:
            self._wav.writeframesraw(data)

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None


class _Connection:
    """One WebSocket session: the engine, the outgoing queue, the recording."""

    def __init__(
        self, ws: WebSocket, service: Service, caller: Principal, voices: list[Any]
    ) -> None:
        from convolens.realtime import StreamSession

        self.ws = ws
        self.service = service
        self.caller = caller
        self.loop = asyncio.get_running_loop()
        self.out: asyncio.Queue[str | None] = asyncio.Queue()
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()  # ASGI messages; None: gone
        self._held: list[Any] = []  # a message taken while coalescing, to handle next
        self.session = StreamSession(service.realtime, on_event=self._on_event, voices=voices)
        self.recorder: _Recorder | None = None
        self.received = 0
        self.webhook_url = ws.query_params.get("webhook_url")
        self.executor = _live_executor(service.settings.stream_workers)

    async def _engine(self, fn: Callable[..., T], *args: Any) -> T:
        """Run engine work on the live threads, marked pending meanwhile: batch jobs wait
        while any stream has work queued or running (engine/priority.py)."""
        LIVE.begin()
        try:
            return await self.loop.run_in_executor(self.executor, fn, *args)
        finally:
            LIVE.end()

    # Called from the worker thread running the engine.
    def _on_event(self, event: Any) -> None:
        if event.type == "started" and event.asr_model and self.recorder is None:
            spool = _spool_path(self.service, self.session.session_id, ".wav")
            self.recorder = _Recorder(spool, event.channels, event.sample_rate)
        self.loop.call_soon_threadsafe(self.out.put_nowait, event.model_dump_json())

    def _send_now(self, payload: dict[str, Any]) -> None:
        self.out.put_nowait(json.dumps(payload))

    async def sender(self) -> None:
        while (text := await self.out.get()) is not None:
            try:
                await self.ws.send_text(text)
            except (WebSocketDisconnect, RuntimeError):
                # The client is gone; keep draining so the engine never blocks on us.
                continue

    def _feed(self, data: bytes) -> None:
        self.session.feed_audio(data)
        if self.recorder is not None and self.session.state == "started":
            self.recorder.write(data)

    async def receive_loop(self) -> None:
        """Read frames as they come, whatever the engine is doing: a reader that waited for
        each decode would stop reading the socket, and the client's keepalive pings with
        it, once decodes fall behind (many streams on few cores)."""
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                self.inbox.put_nowait(message)
        finally:
            self.inbox.put_nowait(None)

    async def process_loop(self) -> bool:
        """Feed the engine in order; returns False when the client went away first."""
        limit = self.service.settings.max_upload_bytes
        while self.session.state != "stopped":
            message = self._held.pop() if self._held else await self.inbox.get()
            if message is None:
                return False
            if (data := message.get("bytes")) is not None:
                # Audio that queued up while the engine was busy goes in as one call.
                data = self._coalesce(data)
                self.received += len(data)
                if self.received > limit:
                    self._send_now(_error("stream_too_large", f"over {limit} bytes of audio"))
                    await self._engine(self.session.stop)
                    return True
                await self._engine(self._feed, data)
            elif (text := message.get("text")) is not None:
                await self._engine(self.session.handle_text, text)
        return True

    def _coalesce(self, data: bytes) -> bytes:
        chunks = [data]
        size = len(data)
        while size < COALESCE_BYTES and not self.inbox.empty():
            message = self.inbox.get_nowait()
            # Only audio frames of the same size join (a client sends fixed frames; an odd
            # one must be refused on its own, not drop the good audio around it).
            if message is None or len(message.get("bytes") or b"") != len(data):
                self._held.append(message)  # the rest keeps its place in the order
                break
            chunks.append(message["bytes"])
            size += len(message["bytes"])
        return b"".join(chunks)

    async def finish(self) -> None:
        """Stop the engine if the client did not, then spool and queue the conversation."""
        if self.session.state == "started":
            await self._engine(self.session.stop)
        if self.recorder is not None:
            self.recorder.close()
        conversation = self.session.conversation
        if conversation is None or not conversation.utterances:
            return
        stored = await anyio.to_thread.run_sync(self._store, conversation)
        self._send_now(
            {
                "type": "stored",
                "seq": self.session.seq + 1,
                "t": round(conversation.duration_seconds or 0.0, 3),
                "emitted_at": datetime.now(UTC).isoformat(),
                **stored,
            }
        )

    def _store(self, conversation: Conversation) -> dict[str, Any]:
        if self.caller.role == Role.agent:
            # An agent's key files the call as theirs, as for submitted conversations.
            conversation.source.agent = self.caller.agent
        path = _spool_path(self.service, self.session.session_id, ".json")
        path.write_text(conversation.model_dump_json(), encoding="utf-8")
        request = {
            "input_path": str(path),
            "format": "stream",
            "session_id": self.session.session_id,
            "audio_path": str(self.recorder.path) if self.recorder else None,
            "conversation_ids": [conversation.conversation_id],
        }
        db: Warehouse = self.service.db()
        try:
            job_id = self.service.queue.submit(
                db,
                "stream",
                request,
                conversation_id=conversation.conversation_id,
                input_path=path,
                webhook_url=self.webhook_url,
                created_by=self.caller.key_id,
            )
        finally:
            db.close()
        return {
            "session_id": self.session.session_id,
            "conversation_id": conversation.conversation_id,
            "job_id": job_id,
            "status_url": f"/v1/jobs/{job_id}",
        }


def _spool_path(service: Service, session_id: str, suffix: str) -> Path:
    folder = service.settings.spool_dir() / "streams"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{session_id}{suffix}"


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "fatal": True, "detail": None}


async def _deny(ws: WebSocket, error: ApiError) -> None:
    """Refuse the handshake with the API's JSON error (HTTP 401/403), as REST does; a server
    without the denial extension closes with 1008 and the message as reason."""
    body = {"error": {"code": error.code, "message": error.message, "detail": None}}
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse(body, status_code=error.status))
    else:
        await ws.close(CLOSE_POLICY, reason=error.message[:120])


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    """Live audio (PCM16 binary frames) or text messages in; JSON events out."""
    service: Service = ws.app.state.service
    db = service.db()
    try:
        caller = authenticate(db, ws)
        if not caller.submits:
            raise ApiError(
                403, "forbidden", f"a {caller.role.value} key cannot stream (needs admin, analyst "
                "or agent)",
            )  # fmt: skip
        # Enrolled voices name a diarized mono stream's speakers (kept in memory only).
        voices = enrolled_voices(db) if service.settings.stream_diarize else []
    except ApiError as exc:
        await _deny(ws, exc)
        return
    finally:
        db.close()
    try:  # admin keys only, public (or operator-allowed) hosts only: webhook_targets.py
        await asyncio.to_thread(  # resolves the host: not on the event loop
            job_webhook_url, ws.query_params.get("webhook_url"), caller, service.webhook_policy
        )
    except ApiError as exc:
        await _deny(ws, exc)
        return
    await ws.accept()
    connection = _Connection(ws, service, caller, voices)
    sender = asyncio.create_task(connection.sender())
    receiver = asyncio.create_task(connection.receive_loop())
    try:
        await connection.process_loop()  # a dropped call still stores what was said (below)
    finally:
        receiver.cancel()
        try:
            await connection.finish()
        except Exception:
            log.exception("storing stream %s failed", connection.session.session_id)
            connection._send_now(_error("store_failed", "the conversation could not be stored"))
        connection.out.put_nowait(None)
        await sender
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(CLOSE_NORMAL)
