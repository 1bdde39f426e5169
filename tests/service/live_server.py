"""A real `convolens serve` process on localhost, for the service tests."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from convolens.enrich.registry import DEFAULT_COMPONENTS
from convolens.service.local import LocalServer

# A fixed key for the tests, as strong as a generated one (weak keys are refused at start).
ADMIN_KEY = "clk_testadmin_0vdzjXPvEL8hnuORqR2MMQHPu_e4zMknTWOTnS8tjYc"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


class Server(LocalServer):
    """The test server: a known admin key, the tiny Whisper model for recordings."""

    def __init__(self, db: Path, log: Path, **env: str) -> None:
        env = {
            "CONVOLENS_ADMIN_KEY": ADMIN_KEY,
            "CONVOLENS_ASR_MODEL": "tiny.en",
            # The tests' webhook receivers listen on loopback, refused unless allowed.
            "CONVOLENS_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            **env,
        }
        super().__init__(db, log, args=["--asr-model", "tiny.en"], **env)

    def start(self, timeout: float = 60.0) -> Server:
        super().start(timeout)
        return self

    def client(self, key: str | None = ADMIN_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def role_keys(server: Server, agent: str = "Leo Martin", name: str = "test") -> dict[str, str]:
    """An API key per role: the admin's, and a new analyst, viewer and agent key (named
    "<name> <role>", which a reviewer's name on a page shows)."""
    made = {"admin": ADMIN_KEY}
    with server.client() as admin:
        for role, body in {
            "analyst": {"name": f"{name} analyst", "role": "analyst"},
            "viewer": {"name": f"{name} viewer", "role": "viewer"},
            "agent": {"name": f"{name} agent", "role": "agent", "agent": agent},
        }.items():
            response = admin.post("/v1/keys", json=body)
            assert response.status_code == 201, response.text
            made[role] = response.json()["key"]
    return made


@contextmanager
def unlabelled_server(folder: Path) -> Iterator[Server]:
    """A server whose jobs ingest and measure only (every labelling component off, no
    models preloaded): fast, for tests of intake, the SDK and the docs."""
    config = folder / "components.toml"
    config.write_text(
        "".join(f"[components.{name}]\nenabled = false\n" for name in DEFAULT_COMPONENTS)
    )
    server = Server(folder / "w.duckdb", folder / "server.log", CONVOLENS_CONFIG=str(config))
    server.env["CONVOLENS_PRELOAD"] = "0"
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_job(client: httpx.Client, job_id: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.3)
    raise TimeoutError(f"job {job_id} still {job['status']}")


class Receiver:
    """A webhook receiver on localhost that keeps what it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


CHROMIUM = Path(os.environ.get("CONVOLENS_CHROMIUM", "/usr/bin/chromium"))


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (its own browser download needs internet).

    A missing browser is a broken setup, never a silent pass: `make test` installs it.
    """
    import pytest
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", *extra_args],
        )
        try:
            yield launched
        finally:
            launched.close()


def sign_in(browser: Any, server: Server, key: str, width: int = 1300, height: int = 900) -> Any:
    """A page of a new browser context signed in to the dashboard with `key`."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=server.url)
    page = context.new_page()
    page.goto("/dashboard/login")
    page.fill("#api_key", key)
    page.click("form[action='/dashboard/login'] button[type=submit]")
    page.wait_for_url("**/dashboard/")
    return page
