"""The SDK's stream helpers surface an error of the caller's own audio or messages (a
microphone unplugged) instead of waiting for ever, against a real server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from live_server import ADMIN_KEY, Server, unlabelled_server

from convolens.client import AsyncClient, Client

START = {"channel_kind": "chat", "speakers": [{"name": "Bob", "role": "customer"}]}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with unlabelled_server(tmp_path_factory.mktemp("stream-errors")) as server:
        yield server


class MicUnplugged(RuntimeError):
    pass


def _finishes(work: Any, timeout: float = 60.0) -> BaseException | None:
    """Run `work()` in a thread; the error it raised, failing the test if it hangs."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert outcome, f"the stream helper still waits after {timeout:.0f} s"
    return outcome[0]


def test_sync_stream_raises_the_message_source_error(plain: Server) -> None:
    def messages() -> Iterator[tuple[str, str]]:
        yield ("Bob", "my card was charged twice")
        raise MicUnplugged("chat feed broke")

    def work() -> None:
        with Client(plain.url, api_key=ADMIN_KEY, timeout=30) as api:
            for _ in api.stream(START, None, messages()):
                pass

    error = _finishes(work)
    assert isinstance(error, MicUnplugged) and str(error) == "chat feed broke"


def test_sync_stream_raises_the_audio_source_error(plain: Server) -> None:
    def audio() -> Iterator[bytes]:
        raise MicUnplugged("no microphone")
        yield b""  # pragma: no cover - a generator that fails at once

    def work() -> None:
        with Client(plain.url, api_key=ADMIN_KEY, timeout=30) as api:
            for _ in api.stream(START, audio()):
                pass

    error = _finishes(work)
    assert isinstance(error, MicUnplugged)


def test_async_stream_raises_the_audio_source_error(plain: Server) -> None:
    async def audio() -> AsyncIterator[bytes]:
        raise MicUnplugged("no microphone")
        yield b""  # pragma: no cover

    async def consume() -> None:
        async with AsyncClient(plain.url, api_key=ADMIN_KEY, timeout=30) as api:
            async for _ in api.stream(START, audio()):
                pass

    error = _finishes(lambda: asyncio.run(consume()))
    assert isinstance(error, MicUnplugged)
