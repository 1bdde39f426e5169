"""A real `convolens serve` process on localhost, shared by the service tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from live_server import Server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("service")
    running = Server(folder / "service.duckdb", folder / "server.log").start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
