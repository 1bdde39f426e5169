"""The scorecard pages in a real browser on the scored sample corpus: the coaching view,
a conversation's scorecard with evidence, a QA review through the form (with the CSRF
token; refused without it), and what agents and viewers may see."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scorecard_corpus import ROOT

sys.path.insert(0, str(ROOT / "tests" / "service"))
from live_server import Server, role_keys

from convolens.dashboard.session import COOKIE, CSRF_FIELD

CHROMIUM = Path(os.environ.get("CONVOLENS_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(
    os.environ.get("CONVOLENS_SCREENSHOTS", ROOT / "tests" / "artifacts" / "screenshots")
)


@pytest.fixture(scope="module")
def server(scored_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("scorecard-dashboard")
    db = folder / "corpus.duckdb"
    shutil.copy(scored_db, db)
    running = Server(db, folder / "server.log", CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0").start(
        timeout=180
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    return role_keys(server, name="qa")


@pytest.fixture(scope="module")
def ids(server: Server) -> dict[str, str]:
    with server.client() as admin:
        return {
            ref: admin.get(f"/v1/scorecards/conversations/{ref}").json()[0]["conversation_id"]
            for ref in ("call-20261117-0031", "lc-88355")
        }


def _client(server: Server, key: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
    client.cookies.set(COOKIE, key)
    return client


def test_review_in_the_browser_overrides_the_automatic_outcome(
    server: Server, keys: dict[str, str], ids: dict[str, str]
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page: Any = browser.new_context(
            viewport={"width": 1400, "height": 900}, base_url=server.url
        ).new_page()
        page.goto("/dashboard/login")
        page.fill("#api_key", keys["analyst"])
        page.click("form[action='/dashboard/login'] button[type=submit]")
        page.wait_for_url("**/dashboard/")
        page.click("nav a[data-page=scorecards]")
        page.wait_for_url("**/dashboard/scorecards")
        assert page.locator("#coaching-list tbody tr[data-coaching]").count() >= 1
        assert page.locator("#agents tr[data-agent='Sam Patel']").count() == 1
        page.screenshot(path=str(SCREENSHOTS / "scorecards-coaching.png"), full_page=True)
        cid = ids["call-20261117-0031"]
        page.goto(f"/dashboard/scorecards/{cid}")
        row = page.locator("#scorecard-support tr[data-criterion=identity_before_account]")
        assert row.locator("td.outcome b").inner_text() == "fail"
        link = row.locator("a.evidence-link")
        assert link.inner_text() == "your account"
        assert link.get_attribute("href") == f"/dashboard/conversations/{cid}#u-2"
        before = float(page.locator("#scorecard-support").get_attribute("data-score"))
        page.select_option("select[name='outcome.closing']", "pass")
        page.fill("input[name='note.closing']", "ends on the refund date; fine for a short call")
        page.click("#scorecard-support button[type=submit]")
        page.wait_for_url(f"**/dashboard/scorecards/{cid}")
        closing = page.locator("#scorecard-support tr[data-criterion=closing]")
        assert closing.locator("td.outcome b").inner_text() == "pass"
        assert "auto fail, qa analyst" in closing.locator("td.outcome").inner_text()
        after = float(page.locator("#scorecard-support").get_attribute("data-score"))
        assert after > before
        assert "human QA applied" in page.locator("#scorecard-support").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "scorecard-conversation.png"), full_page=True)
        browser.close()


def test_review_post_without_the_token_or_by_an_agent_is_refused(
    server: Server, keys: dict[str, str], ids: dict[str, str]
) -> None:
    cid = ids["call-20261117-0031"]
    url = f"/dashboard/scorecards/{cid}/review"
    form = {"scorecard": "support", "outcome.greeting": "fail"}
    with _client(server, keys["analyst"]) as client:
        forged = client.post(url, data=form)
        assert forged.status_code == 403 and "Form refused" in forged.text
        html = client.get(f"/dashboard/scorecards/{cid}").text
        marker = f'name="{CSRF_FIELD}" value="'
        start = html.index(marker) + len(marker)
        token = html[start : html.index('"', start)]
        done = client.post(url, data={**form, CSRF_FIELD: token})
        assert done.status_code == 303
    with _client(server, keys["agent"]) as agent:
        html = agent.get(f"/dashboard/scorecards/{cid}").text  # Leo Martin's own call
        assert "Save QA review" not in html
        start = html.index(marker) + len(marker)
        token = html[start : html.index('"', start)]
        refused = agent.post(url, data={**form, CSRF_FIELD: token})
        assert refused.status_code == 403


def test_agents_see_their_own_and_viewers_aggregates(
    server: Server, keys: dict[str, str], ids: dict[str, str]
) -> None:
    with _client(server, keys["agent"]) as agent:
        team = agent.get("/dashboard/scorecards").text
        assert 'data-agent="Leo Martin"' in team and 'data-agent="Sam Patel"' not in team
        # Sam Patel's chat is not Leo's: not found, as on the conversation pages.
        assert agent.get(f"/dashboard/scorecards/{ids['lc-88355']}").status_code == 404
    with _client(server, keys["viewer"]) as viewer:
        team = viewer.get("/dashboard/scorecards")
        assert team.status_code == 200
        assert 'data-agent="Sam Patel"' in team.text
        assert "/dashboard/conversations/" not in team.text  # no example moments or links
        assert "/dashboard/scorecards/cv-" not in team.text
        page = viewer.get(f"/dashboard/scorecards/{ids['call-20261117-0031']}")
        assert page.status_code == 403


def test_before_after_a_coaching_date_on_the_coaching_page(
    server: Server, keys: dict[str, str]
) -> None:
    query = "/dashboard/scorecards?agent=Sam+Patel&coached_on=2026-10-01"
    with _client(server, keys["analyst"]) as analyst:
        page = analyst.get(query)
        assert page.status_code == 200
        assert 'id="impact">Sam Patel: mean score' in page.text
        assert '<tr data-criterion="identity_before_account">' in page.text
    with _client(server, keys["agent"]) as agent:
        # An agent compares their own scores, whoever the query names.
        page = agent.get(query)
        assert 'id="impact">Leo Martin: mean score' in page.text
        assert "Sam Patel: mean score" not in page.text
    with _client(server, keys["viewer"]) as viewer:
        assert 'id="impact"' not in viewer.get(query).text
