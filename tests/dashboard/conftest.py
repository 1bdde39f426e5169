"""A real `convolens serve` on the analysed sample corpus, and a real browser to drive it.

The warehouse is built once per session (the CLI ingests and analyzes the examples; the
business data, annotations and clusters are added through the library), keys
for each role are made through the API, and Playwright drives Debian's Chromium
(/usr/bin/chromium, installed by `make test`; Playwright's own browser downloads are not
used: these machines have no internet). Screenshots go to tests/artifacts/screenshots/
(or $CONVOLENS_SCREENSHOTS) for a person to look at.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from live_server import EXAMPLES, ROOT, Server, role_keys

CHROMIUM = Path(os.environ.get("CONVOLENS_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(
    os.environ.get("CONVOLENS_SCREENSHOTS", ROOT / "tests" / "artifacts" / "screenshots")
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _cli(*args: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample corpus, analysed, with its business data (accounts, orders, campaigns)
    stitched, its release/campaign annotations and its problem clusters."""
    from convolens.analytics.annotations import import_annotations
    from convolens.analytics.business_import import import_entities, stitch
    from convolens.analytics.cluster_store import cluster_conversations
    from convolens.store.warehouse import Warehouse

    db = tmp_path_factory.mktemp("dashboard") / "corpus.duckdb"
    _cli("ingest", str(EXAMPLES), "--db", str(db), "--model", "tiny.en")
    _cli("analyze", "--db", str(db))
    business = EXAMPLES / "business"
    with Warehouse(db) as warehouse:
        for kind in ("accounts", "orders", "campaigns"):
            import_entities(warehouse, business / f"{kind}.csv", kind)
        stitch(warehouse)
        import_annotations(warehouse, business / "annotations.csv")
        cluster_conversations(warehouse)
    return db


@pytest.fixture(scope="module")
def server(corpus_db: Path) -> Iterator[Server]:
    # No job workers and no model preloading: the dashboard only reads.
    running = Server(
        corpus_db,
        corpus_db.with_name("server.log"),
        CONVOLENS_WORKERS="0",
        CONVOLENS_PRELOAD="0",
    ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    """An API key per role: admin, analyst, viewer, and agent (Leo Martin)."""
    return role_keys(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        # A missing browser is a broken setup, never a silent pass: `make test` installs it.
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def signed_in(browser: Any, server: Server) -> Iterator[Callable[[str], Any]]:
    """Opens a fresh browser context, signs in with the given key through the login form
    and returns its page on the overview; the contexts close after the test."""
    contexts: list[Any] = []

    def open_as(key: str) -> Any:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=server.url)
        contexts.append(context)
        page = context.new_page()
        page.goto("/dashboard/")
        page.wait_for_url("**/dashboard/login?next=/dashboard/")
        page.fill("#api_key", key)
        page.click("form[action='/dashboard/login'] button[type=submit]")
        page.wait_for_url("**/dashboard/")
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
        yield client
