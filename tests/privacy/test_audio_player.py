"""The call page's recording player (issue #16), in a real browser: it plays the redacted
copy, a click on a word seeks there, and the transcript follows the playhead; viewers get
no player (nor the page).

A real server transcribes the planted recording (planted_audio.py); Playwright drives
Debian's Chromium. Screenshots at desktop and phone width go to tests/artifacts/screenshots/
(or $CONVOLENS_SCREENSHOTS).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import chromium
from planted_audio import ROOT, RecordedServer, recorded_server

SCREENSHOTS = Path(
    os.environ.get("CONVOLENS_SCREENSHOTS", ROOT / "tests" / "artifacts" / "screenshots")
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedServer]:
    with recorded_server(tmp_path_factory.mktemp("player"), other=False) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Playback without a sound card; a click is the gesture a page needs anyway.
    with chromium("--autoplay-policy=no-user-gesture-required") as launched:
        yield launched


def _page(browser: Any, recorded: RecordedServer, role: str, width: int = 1400) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, base_url=recorded.server.url
    )
    page = context.new_page()
    page.goto("/dashboard/login")
    page.fill("#api_key", recorded.keys[role])
    page.click("form[action='/dashboard/login'] button[type=submit]")
    page.wait_for_url("**/dashboard/")
    return page


def _ready(page: Any) -> float:
    """Waits until the browser has the recording's metadata; returns its duration."""
    page.wait_for_function(
        "() => document.getElementById('recording').readyState >= 1", timeout=20000
    )
    return float(page.evaluate("document.getElementById('recording').duration"))


def test_click_a_word_to_seek_and_the_transcript_follows(browser: Any, recorded: RecordedServer):
    page = _page(browser, recorded, "analyst")
    try:
        page.goto(f"/dashboard/conversations/{recorded.own}")
        audio = page.locator("audio#recording")
        assert audio.get_attribute("src") == f"/dashboard/audio/{recorded.own}"
        # The browser loaded the redacted copy through the sign-in cookie.
        assert abs(_ready(page) - 16.7) < 0.5
        # The spoken number is redacted in the transcript, as in the audio.
        assert page.locator("#transcript .w", has_text="<PHONE_NUMBER>").count() == 1

        word = page.locator("#transcript .w", has_text="subscription")
        start = float(word.get_attribute("data-s") or "nan")
        word.click()
        at = float(page.evaluate("document.getElementById('recording').currentTime"))
        assert abs(at - start) < 0.05
        page.evaluate("document.getElementById('recording').pause()")
        # The word and its utterance are lit, nothing else.
        assert page.locator("#transcript .w.current").all_inner_texts() == ["subscription"]
        assert page.locator(".utt.playing").count() == 1
        assert "subscription" in page.locator(".utt.playing").inner_text()

        # Seek elsewhere (as the player's slider does): timeupdate/seeked move the lights.
        later = page.locator("#transcript .w", has_text="tomorrow")
        t = float(later.get_attribute("data-s") or "nan") + 0.05
        page.evaluate(f"document.getElementById('recording').currentTime = {t}")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#transcript .w.current')]"
            ".map(w => w.textContent).join() === 'tomorrow.' "
            "|| [...document.querySelectorAll('#transcript .w.current')]"
            ".map(w => w.textContent).join() === 'tomorrow'",
            timeout=5000,
        )
        assert "tomorrow" in page.locator(".utt.playing").inner_text()
        assert "subscription" not in page.locator(".utt.playing").inner_text()

        # Playing moves the playhead, and the lit word with it.
        page.locator("#transcript .w", has_text="Hi").first.click()
        page.wait_for_function(
            "() => document.getElementById('recording').currentTime > 1.6", timeout=10000
        )
        lit = page.locator("#transcript .w.current").all_inner_texts()
        assert lit and lit != ["Hi,"], lit
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "audio_player_desktop.png"), full_page=False)
    finally:
        page.context.close()


def test_phone_width_player_fits(browser: Any, recorded: RecordedServer) -> None:
    page = _page(browser, recorded, "agent", width=390)  # the agent's own call
    try:
        page.goto(f"/dashboard/conversations/{recorded.own}")
        _ready(page)
        box = page.locator("audio#recording").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.screenshot(path=str(SCREENSHOTS / "audio_player_phone.png"), full_page=False)
    finally:
        page.context.close()


def test_viewers_get_no_player(browser: Any, recorded: RecordedServer) -> None:
    page = _page(browser, recorded, "viewer")
    try:
        response = page.goto(f"/dashboard/conversations/{recorded.own}")
        assert response is not None and response.status == 403
        assert page.locator("audio").count() == 0
        audio = page.request.get(f"/dashboard/audio/{recorded.own}")
        assert audio.status == 403
    finally:
        page.context.close()


def test_words_are_spans_inside_the_evidence_marks() -> None:
    """Each timed word is a <span class="w"> with its times, inside the marks (which stay
    as many as without words); a value redaction replaced is one span over its words."""
    import re

    from convolens.dashboard.transcript import Span, marked_text

    text = "My phone number is <PHONE_NUMBER>. Please call back"
    said = ["My", "phone", "number", "is", "<PHONE_NUMBER>", "<PHONE_NUMBER>", "<PHONE_NUMBER>"]
    words = [
        {"text": w, "start_s": i * 0.5, "end_s": i * 0.5 + 0.4}
        for i, w in enumerate([*said, "Please", "call", "back"])
    ]
    evidence = [Span(utterance_id="u", start=3, end=15, ref=0, kind="tracker")]
    plain = marked_text(text, evidence)
    timed = marked_text(text, evidence, words=words)
    assert timed.count("<mark") == plain.count("<mark") == 1
    assert re.sub(r"<span[^>]*>|</span>", "", timed) == plain  # the same text and marks
    mark = re.search(r"<mark[^>]*>(.*?)</mark>", timed)
    assert mark and mark.group(1).count('class="w"') == 2  # "phone", "number"
    number = re.findall(r'data-s="([\d.]+)" data-e="([\d.]+)">&lt;PHONE_NUMBER&gt;', timed)
    assert number == [("2.000", "3.400")]  # the first of its words to the end of the last
    assert re.findall(r'data-w="(\d+)"', timed) == ["0", "1", "2", "3", "4", "7", "8", "9"]
