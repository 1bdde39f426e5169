"""An empty warehouse opens on a first-run page: upload a file through the dashboard (the
API's upload, behind the dashboard session and its CSRF token), watch the job, then see
the results. And missing is missing: conversations without message times have no handle
time ("–", not 0 s) and no rank, and `report --by agent` counts agents as `agents` does.

A real server (jobs ingest and measure, labelling off: `unlabelled_server`) and a real
browser at desktop and phone widths; the CLI runs as a subprocess on its own warehouse.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import Server, role_keys, unlabelled_server
from playwright.sync_api import expect

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _conversation(cid: str, agent: str | None, times: list[str | None]) -> dict[str, Any]:
    participants = [{"id": "c", "name": "Robin Customer", "role": "customer"}]
    if agent:
        participants.append({"id": "a", "name": agent, "role": "agent"})
    authors = ["c", "a" if agent else "c"] * 2
    texts = ["My invoice is wrong.", "Let me check that for you.",
             "It shows two seats.", "Fixed: one seat now."]  # fmt: skip
    messages = [
        {"author": author, "text": text, **({"sent_at": at} if at else {})}
        for author, text, at in zip(authors, texts, times, strict=True)
    ]
    record: dict[str, Any] = {"id": cid, "source": "firstrun", "channel": "chat",
                              "participants": participants, "messages": messages}  # fmt: skip
    if times[0]:
        record["started_at"] = times[0]
    return record


# Ana's threads carry one timestamp at most (no elapsed time to measure); Ben's are timed;
# the last conversation has no agent at all.
RECORDS = [
    _conversation("fr-1", "Ana Lopez", [None, None, None, None]),
    _conversation("fr-2", "Ana Lopez", ["2026-11-02T10:00:00Z", None, None, None]),
    _conversation("fr-3", "Ben Ode", ["2026-11-02T09:00:00Z", "2026-11-02T09:02:00Z",
                                      "2026-11-02T09:05:00Z", "2026-11-02T09:09:00Z"]),
    _conversation("fr-4", None, ["2026-11-03T09:00:00Z", "2026-11-03T09:01:00Z",
                                 "2026-11-03T09:02:00Z", "2026-11-03T09:03:00Z"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def export_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("firstrun-data") / "threads.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with unlabelled_server(tmp_path_factory.mktemp("firstrun")) as server:
        yield server


def _sign_in(browser: Any, server: Server, key: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, base_url=server.url)
    page = context.new_page()
    page.goto("/dashboard/")
    page.fill("#api_key", key)
    page.click("form[action='/dashboard/login'] button[type=submit]")
    page.wait_for_url("**/dashboard/")
    return page


def test_first_run_upload_job_progress_then_results(
    browser: Any, empty_server: Server, export_file: Path, screenshots: Path
) -> None:
    keys = role_keys(empty_server, name="firstrun")
    # A viewer on the empty warehouse: told who can upload, no charts of nothing.
    viewer = _sign_in(browser, empty_server, keys["viewer"], PHONE)
    expect(viewer.locator("#first-run")).to_be_visible()
    expect(viewer.locator("#no-upload")).to_contain_text("cannot upload")
    expect(viewer.locator("[data-chart]")).to_have_count(0)
    assert "2000" not in viewer.content()
    viewer.screenshot(path=str(screenshots / "issue16-firstrun-viewer-390.png"), full_page=True)
    viewer.context.close()

    for viewport in (PHONE, DESKTOP):
        page = _sign_in(browser, empty_server, keys["analyst"], viewport)
        expect(page.locator("#first-run h1")).to_have_text("Nothing here yet")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        page.screenshot(
            path=str(screenshots / f"issue16-firstrun-{viewport['width']}.png"), full_page=True
        )
        page.context.close()

    page = _sign_in(browser, empty_server, keys["analyst"], DESKTOP)
    page.set_input_files("#upload-form input[name=file]", str(export_file))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/jobs/[\w-]+$"))
    expect(page.locator("#job-done")).to_be_visible(timeout=120_000)
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#job-summary")).to_contain_text("4 conversation(s) read, 4 new")
    assert page.locator("#job-progress").evaluate("e => e.value") == 1
    page.screenshot(path=str(screenshots / "issue16-firstrun-job-1280.png"), full_page=True)
    page.click("#job-results")
    page.wait_for_url("**/dashboard/")
    card = page.locator(".card", has=page.locator(".card-title", has_text="Conversations"))
    expect(card.locator(".card-value")).to_have_text("4")
    expect(page.locator("#first-run")).to_have_count(0)
    page.screenshot(path=str(screenshots / "issue16-firstrun-results-1280.png"), full_page=True)

    # Missing handle times: "–" and unranked; Ben's timed threads are measured.
    page.goto("/dashboard/agents")
    ana = page.locator("table[data-export=scorecards] tr[data-agent='Ana Lopez'] td")
    ben = page.locator("table[data-export=scorecards] tr[data-agent='Ben Ode'] td")
    expect(ana.nth(2)).to_have_text("–")
    expect(ben.nth(2)).to_have_text("9m 00s")
    figure = json.loads(page.locator("#fig-benchmark").text_content() or "{}")
    heat = figure["data"][0]
    row = heat["y"].index("Ana Lopez")
    column = heat["x"].index("handle time")
    assert heat["z"][row][column] is None
    page.screenshot(path=str(screenshots / "issue16-missing-agents-1280.png"), full_page=True)
    page.context.close()


def test_dashboard_upload_needs_the_csrf_token(empty_server: Server, export_file: Path) -> None:
    keys = role_keys(empty_server, name="csrf")
    cookies = {"convolens_dashboard_key": keys["analyst"], "convolens_csrf": "t" * 40}
    with httpx.Client(base_url=empty_server.url, cookies=cookies, timeout=30) as client:
        files = {"file": ("threads.jsonl", export_file.read_bytes())}
        refused = client.post("/dashboard/upload", files=files, data={"csrf_token": "x" * 40})
        assert refused.status_code == 403 and "did not come from this dashboard" in refused.text
        taken = client.post("/dashboard/upload", files=files, data={"csrf_token": "t" * 40})
        assert taken.status_code == 303 and taken.headers["location"].startswith("/dashboard/jobs/")
        status = client.get(taken.headers["location"] + "/status").json()
        assert status["status"] in ("scheduled", "running", "completed")
        # An empty form is a page that says what is wrong, not an exception.
        empty = client.post("/dashboard/upload", data={"csrf_token": "t" * 40})
        assert empty.status_code == 422 and "choose a file" in empty.text
    viewer = {"convolens_dashboard_key": keys["viewer"], "convolens_csrf": "t" * 40}
    with httpx.Client(base_url=empty_server.url, cookies=viewer, timeout=30) as client:
        files = {"file": ("threads.jsonl", export_file.read_bytes())}
        assert (
            client.post("/dashboard/upload", files=files, data={"csrf_token": "t" * 40}).status_code
            == 403
        )


def _cli(*args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_report_by_agent_and_agents_count_missing_agents_alike(
    tmp_path: Path, export_file: Path
) -> None:
    db = str(tmp_path / "w.duckdb")
    _cli("ingest", str(export_file), "--db", db)
    from convolens.analytics.agents import agent_scorecards, conversations_without_agent
    from convolens.analytics.report import ReportGrouping, report_table
    from convolens.analyze import analyze as run_metrics
    from convolens.store.warehouse import Warehouse

    with Warehouse(db) as warehouse:
        run_metrics(warehouse)
        report = {
            r["group"]: r["conversations"] for r in report_table(warehouse, ReportGrouping.agent)
        }
        team = {c.agent: c.measures.conversations for c in agent_scorecards(warehouse).agents}
        missing = conversations_without_agent(warehouse)
        handle = {c.agent: c.measures.handle_time_s for c in agent_scorecards(warehouse).agents}
    assert team == {"Ana Lopez": 2, "Ben Ode": 1}
    assert report == {**team, "(none)": missing} and missing == 1
    assert handle["Ana Lopez"] is None and handle["Ben Ode"] == 540.0
    out = _cli("agents", "--db", db)
    assert "1 conversation(s) with no agent" in out
