"""The review pages in a real browser on a real server: one item a screen driven by the keys
a / c / s, CSRF-checked verdicts, roles, and the "Label quality" page flagging a value
under the bar with its marker and tooltip."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from live_server import ROOT, Server, chromium, role_keys, sign_in

from convolens.store.warehouse import Warehouse

SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def served(labelled_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("review_dashboard") / "corpus.duckdb"
    shutil.copy(labelled_db, db)
    # A bar every corrected value falls under, after a single review.
    server = Server(
        db, db.with_name("server.log"), CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0",
        CONVOLENS_PRECISION_BAR="0.99", CONVOLENS_PRECISION_MIN_REVIEWS="1",
    ).start()  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keys(served: Server) -> dict[str, str]:
    return role_keys(served, name="dash")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _reviews(server: Server) -> list[dict[str, Any]]:
    # The server holds the warehouse: read what it stored through a read-only copy.
    copy = server.db.with_name("peek.duckdb")
    shutil.copy(server.db, copy)
    wal = server.db.with_name(server.db.name + ".wal")
    if wal.exists():  # rows not yet checkpointed into the file
        shutil.copy(wal, copy.with_name(copy.name + ".wal"))
    with Warehouse(copy, read_only=True) as db:
        return db.query(
            "SELECT r.verdict, r.corrected_value, r.reviewer_name, i.value FROM reviews r "
            "JOIN review_items i USING (item_id) ORDER BY r.created_at"
        )


def test_keyboard_review_and_quality_flags(
    served: Server, keys: dict[str, str], browser: Any
) -> None:
    page = sign_in(browser, served, keys["analyst"])
    page.goto("/dashboard/review")
    assert page.locator("#review-empty").is_visible()
    page.fill("#form-sample input[name=component]", "sentiment")
    page.fill("#form-sample input[name=label]", "sentiment.utterance")
    page.fill("#form-sample input[name=per_value]", "2")
    # Random items only: precision (and so the flag) is estimated from them alone.
    page.fill("#form-sample input[name=low_confidence]", "0")
    page.fill("#form-sample input[name=disagreement]", "0")
    page.click("#form-sample button[type=submit]")
    page.wait_for_selector("#review-item")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "review-item.png"))
    assert page.locator("mark.ev-mark").count() >= 1

    first = page.get_attribute("#review-item", "data-item")
    page.keyboard.press("a")
    page.wait_for_selector(f"#review-item:not([data-item='{first}'])")
    # c: the right-value list takes the focus; pick a value and Enter sends it.
    second = page.get_attribute("#review-item", "data-item")
    model_value = page.inner_text("#review-value")
    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.id") == "corrected-value"
    other = next(v for v in ("negative", "neutral", "positive") if v != model_value)
    page.select_option("#corrected-value", other)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#review-item:not([data-item='{second}'])")
    third = page.get_attribute("#review-item", "data-item")
    page.keyboard.press("s")
    page.wait_for_selector(f"#review-item:not([data-item='{third}'])")
    stored = _reviews(served)
    assert [r["verdict"] for r in stored] == ["accept", "correct", "skip"]
    assert stored[1]["corrected_value"] == other and stored[1]["value"] == model_value
    assert stored[0]["reviewer_name"] == "dash analyst"

    # Label quality: the corrected value is under the bar, marked with its tooltip.
    page.goto("/dashboard/quality")
    row = page.locator(f"#quality-values tr[data-value='sentiment.utterance={model_value}']")
    flag = row.locator(".flag")
    assert flag.inner_text() == "⚑"
    # 0 of 1, or 1 of 2 when the accepted item had the same value: under 0.99 either way.
    title = flag.get_attribute("title") or ""
    assert re.fullmatch(
        r"reviewed precision (0|50)% \(95% CI \d+%-\d+%, [12] reviews\): below the bar", title
    )
    page.screenshot(path=str(SCREENSHOTS / "label-quality.png"), full_page=True)
    page.context.close()

    viewer = sign_in(browser, served, keys["viewer"])
    assert "Label quality" in viewer.inner_text("header nav")
    assert "Review" not in viewer.inner_text("header nav").split()
    viewer.goto("/dashboard/quality")
    assert viewer.locator("#quality-values .flag").count() >= 1
    viewer.context.close()


def test_verdicts_need_the_token_and_a_reviewer(served: Server, keys: dict[str, str]) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        client.cookies.set("convolens_dashboard_key", keys["analyst"])
        page = client.get("/dashboard/review")
        token = client.cookies.get("convolens_csrf")
        item = re.search(r'data-item="([^"]+)"', page.text)
        assert token and item, "a sampled item waits (the keyboard test sampled a batch)"
        target = f"/dashboard/review/{item.group(1)}"
        forged = client.post(target, data={"verdict": "accept"})
        assert forged.status_code == 403 and "Form refused" in forged.text
        bad = client.post(
            target,
            data={"verdict": "correct", "corrected_value": "furious", "csrf_token": token},
            headers={"Origin": served.url},
        )
        assert bad.status_code == 422 and "unknown value" in bad.text
        assert "Traceback" not in bad.text
    with httpx.Client(base_url=served.url, timeout=30) as client:
        client.cookies.set("convolens_dashboard_key", keys["viewer"])
        client.get("/dashboard/quality")
        token = client.cookies.get("convolens_csrf")
        refused = client.post(
            target, data={"verdict": "accept", "csrf_token": token},
            headers={"Origin": served.url},
        )  # fmt: skip
        assert refused.status_code == 403


def _intent_chart(server: Server, key: str) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.cookies.set("convolens_dashboard_key", key)
        page = client.get("/dashboard/")
    assert page.status_code == 200
    found = re.search(
        r'<script type="application/json" id="fig-intents">(.*?)</script>', page.text, re.S
    )
    assert found, "the overview charts the intent mix"
    [bar] = json.loads(found.group(1))["data"]
    return bar


def test_overview_chart_flags_a_value_under_the_bar(served: Server, keys: dict[str, str]) -> None:
    from convolens.client import Client

    charted = _intent_chart(served, keys["viewer"])["y"]
    trended = [t["name"] for t in _trend_chart(served, keys["analyst"])]
    assert not any(_intent_chart(served, keys["viewer"]).get("text") or [])
    with Client(served.url, api_key=keys["analyst"]) as api:
        batch = api.review_sample(
            component="intents", label="intent.primary", per_value=1,
            low_confidence=0, disagreement=0, second_share=0.0, seed=2,
        )  # fmt: skip
        # The first primary intent of the batch that both charts show (each shows the top few).
        while (item := api.review_next(batch.batch_id)) is not None:
            if item.value in charted and item.value in trended:
                break
            api.review(item.item_id, "skip")
        assert item is not None
        other = next(v for v in item.choices if v not in (item.value, "out_of_scope"))
        api.review(item.item_id, "correct", corrected_value=other)
    bar = _intent_chart(served, keys["viewer"])
    names = bar["y"]
    marked = {n: t for n, t in zip(names, bar["text"], strict=True) if t}
    assert marked == {item.value: "⚑"}
    hover = bar["hovertext"][names.index(item.value)]
    assert "reviewed precision 0%" in hover and "below the bar" in hover
    # The trends chart by intent marks the same value's series, and only that one.
    after = {t["name"]: t for t in _trend_chart(served, keys["analyst"])}
    assert len(after) == len(trended)
    assert [n for n in after if n.endswith("⚑")] == [f"{item.value} ⚑"]
    assert "reviewed precision 0%" in after[f"{item.value} ⚑"]["hovertemplate"]


def _trend_chart(server: Server, key: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.cookies.set("convolens_dashboard_key", key)
        page = client.get("/dashboard/topics?dimension=intent")
    assert page.status_code == 200
    found = re.search(
        r'<script type="application/json" id="fig-volume">(.*?)</script>', page.text, re.S
    )
    assert found, "the topics page charts intents over time"
    traces: list[dict[str, Any]] = json.loads(found.group(1))["data"]
    return [t for t in traces if t.get("type") in ("bar", "scatter") and t.get("name")]
