"""Live streaming with the SDK: a call or chat over `WS /v1/stream` (docs/streaming.md).

    with Client(url, api_key=key) as api:
        for event in api.stream_file("call.flac", speakers=[...]):   # at real-time pace
            print(event.type, getattr(event, "text", ""))

        for event in api.stream({"channels": 1}, microphone_chunks()):  # any PCM16 generator
            ...

`stream` sends the start message, then every chunk the audio iterable yields (a
microphone-like generator sets the pace itself), then `stop`, and yields each event as it
arrives; the last is `stored` (the conversation id and the job running the full
pipeline). `LiveStream` is the lower-level handle when audio and text are sent from
elsewhere (a telephony callback, a chat widget). A refused handshake raises `ApiError`
with the server's code, as the REST calls do.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "LiveStream",
    "StreamEvent",
    "apply_revision",
    "astream_events",
    "file_frames",
    "paced",
    "stream_events",
    "stream_url",
]

FRAME_MS = 100


class StreamEvent(BaseModel):
    """One server event. The common fields are typed; the rest of each event type's fields
    (`text`, `words`, `label`, `rule`, ... see docs/streaming.md) are attributes too."""

    model_config = ConfigDict(extra="allow")

    type: str
    seq: int = 0
    t: float = 0.0
    emitted_at: datetime | None = None
    utterance_id: str | None = None
    received_at: float | None = None  # the client's time.perf_counter() when it arrived


def apply_revision(finals: Mapping[str, StreamEvent], event: StreamEvent) -> list[str]:
    """Apply a `speaker.revision` event (a diarized mono stream relabelled earlier finals,
    docs/streaming.md) to the finals kept by utterance id; returns the ids changed."""
    changed: list[str] = []
    if event.type != "speaker.revision":
        return changed
    for revised in getattr(event, "utterances", None) or []:
        final = finals.get(revised.get("utterance_id", ""))
        if final is None:
            continue
        for field in ("participant_id", "speaker", "role"):
            if field in revised:
                setattr(final, field, revised[field])
        changed.append(revised["utterance_id"])
    return changed


def stream_url(base_url: str, webhook_url: str | None = None) -> str:
    url = base_url.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    url += "/v1/stream"
    if webhook_url:
        from urllib.parse import quote

        url += f"?webhook_url={quote(webhook_url, safe='')}"
    return url


def file_frames(path: str | Path, frame_ms: int = FRAME_MS) -> tuple[dict[str, int], list[bytes]]:
    """A recording as 16 kHz PCM16 frames (stereo kept as two channels), and the `start`
    fields that describe them. Decoding needs the speech extra (PyAV)."""
    import numpy as np

    from convolens.speech.decode import decode_audio

    audio = decode_audio(Path(path))
    channels = audio.channels[:2]
    samples = np.clip(np.stack(channels, axis=1), -1.0, 1.0)
    pcm = (samples * 32767).astype("<i2").tobytes()
    step = audio.sample_rate * frame_ms // 1000 * 2 * len(channels)
    frames = [pcm[i : i + step] for i in range(0, len(pcm), step)]
    return {"sample_rate": audio.sample_rate, "channels": len(channels)}, frames


def paced(frames: Iterable[bytes], frame_ms: int = FRAME_MS) -> Iterator[bytes]:
    """Yield each frame when a live source would have it: once its audio was recorded."""
    start = time.perf_counter()
    for index, frame in enumerate(frames):
        time.sleep(max(0.0, start + (index + 1) * frame_ms / 1000 - time.perf_counter()))
        yield frame


def _start(start: Mapping[str, Any] | BaseModel | None, **fields: Any) -> str:
    body = (
        start.model_dump(exclude_none=True) if isinstance(start, BaseModel) else dict(start or {})
    )
    return json.dumps({**fields, **body, "type": "start"}, default=str)


def _event(text: str | bytes) -> StreamEvent:
    event = StreamEvent.model_validate_json(text)
    event.received_at = time.perf_counter()
    return event


def _refused(exc: Exception) -> Exception:
    """The server's JSON error of a refused handshake as an ApiError."""
    from convolens.client import ApiError

    response = getattr(exc, "response", None)
    if response is None:
        return exc
    try:
        error = json.loads(response.body)["error"]
        return ApiError(response.status_code, error["code"], error["message"], error.get("detail"))
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, "handshake_refused", str(exc))


class LiveStream:
    """An open stream. Send with `send_audio` / `say` / `stop`; read with `events()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        start: Mapping[str, Any] | BaseModel | None = None,
        *,
        webhook_url: str | None = None,
        open_timeout: float = 30.0,
        **fields: Any,
    ) -> None:
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # websockets wants its connection entered as a context; the stack closes it.
        self._stack = contextlib.ExitStack()
        try:
            self._ws = self._stack.enter_context(
                connect(
                    stream_url(base_url, webhook_url),
                    additional_headers=headers,
                    open_timeout=open_timeout,
                    max_size=None,
                )
            )
        except InvalidStatus as exc:
            raise _refused(exc) from None
        self._events: queue.Queue[StreamEvent | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="convolens-stream", daemon=True)
        self._reader.start()
        self._ws.send(_start(start, **fields))

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for message in self._ws:
                self._events.put(_event(message))
        except ConnectionClosed:
            pass
        finally:
            self._events.put(None)

    def send_audio(self, pcm: bytes) -> None:
        """Interleaved PCM16 little-endian at the start's sample rate and channels."""
        self._ws.send(pcm)

    def say(self, speaker: str, text: str, sent_at: datetime | str | None = None) -> None:
        message = {"type": "message", "speaker": speaker, "text": text, "sent_at": sent_at}
        self._ws.send(json.dumps({k: v for k, v in message.items() if v is not None}, default=str))

    def stop(self) -> None:
        """Ends the stream: the server sends the last events, `stopped` and `stored`."""
        self._ws.send(json.dumps({"type": "stop"}))

    def events(self, timeout: float | None = None) -> Iterator[StreamEvent]:
        """Events as they arrive, until the server closes the stream."""
        while (event := self._events.get(timeout=timeout)) is not None:
            yield event

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_events(
    base_url: str,
    api_key: str | None,
    start: Mapping[str, Any] | BaseModel | None,
    audio: Iterable[bytes] | None,
    messages: Iterable[tuple[str, str]] = (),
    *,
    webhook_url: str | None = None,
    **fields: Any,
) -> Iterator[StreamEvent]:
    """Send the audio (from a thread, so events are read while it plays), then the text
    messages, then stop; yield every event."""
    live = LiveStream(base_url, api_key, start, webhook_url=webhook_url, **fields)
    failure: list[BaseException] = []
    # An error of the caller's own audio or messages (a microphone unplugged): without a
    # `stop` the server would wait for more and events() with it, so the stream is closed
    # and the error raised to the caller once the events end.
    source_failure: list[BaseException] = []

    def produce(items: Iterable[Any]) -> Iterator[Any]:
        iterator = iter(items)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except BaseException as exc:
                source_failure.append(exc)
                live.close()
                return
            yield item

    def send() -> None:
        try:
            for chunk in produce(audio or ()):
                live.send_audio(chunk)
            if source_failure:
                return
            for speaker, text in produce(messages):
                live.say(speaker, text)
            if not source_failure:
                live.stop()
        except Exception as exc:  # the connection closed under us: events() ends too
            failure.append(exc)

    sender = threading.Thread(target=send, name="convolens-stream-send", daemon=True)
    sender.start()
    try:
        yield from live.events()
    finally:
        sender.join(timeout=5)
        live.close()
    if source_failure:
        raise source_failure[0]
    if failure and not isinstance(failure[0], OSError):
        raise failure[0]


async def astream_events(
    base_url: str,
    api_key: str | None,
    start: Mapping[str, Any] | BaseModel | None,
    audio: AsyncIterable[bytes] | Iterable[bytes] | None,
    messages: Iterable[tuple[str, str]] = (),
    *,
    webhook_url: str | None = None,
    **fields: Any,
) -> AsyncIterator[StreamEvent]:
    """`stream_events` for asyncio: audio from an async (or plain) iterable."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with contextlib.AsyncExitStack() as stack:
        try:
            ws = await stack.enter_async_context(
                connect(stream_url(base_url, webhook_url), additional_headers=headers)
            )
        except InvalidStatus as exc:
            raise _refused(exc) from None

        async def send() -> None:
            await ws.send(_start(start, **fields))
            try:
                if isinstance(audio, AsyncIterable):
                    async for chunk in audio:
                        await ws.send(chunk)
                else:
                    for chunk in audio or ():
                        await ws.send(chunk)
                for speaker, text in messages:
                    message = {"type": "message", "speaker": speaker, "text": text}
                    await ws.send(json.dumps(message))
            except Exception as exc:
                # The caller's audio failed: end the stream, or reading events would wait
                # for ever; the error is raised once the events end.
                source_failure.append(exc)
                await ws.close()
                return
            await ws.send(json.dumps({"type": "stop"}))

        source_failure: list[BaseException] = []
        sender = asyncio.create_task(send())
        try:
            async for message in ws:
                yield _event(message)
        finally:
            if not sender.done() and not source_failure:
                sender.cancel()
            await asyncio.wait({sender})  # its error, if any, is in source_failure
        if source_failure:
            raise source_failure[0]
