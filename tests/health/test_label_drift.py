"""Label drift on real labels: the sentiment component labels short customer messages from
TweetEval (../shared/data/sentiment/tweeteval, human-labelled tweets) in two windows. In
the reference window half are positive and half negative; in the recent window every one
is negative, so sentiment's label distribution moves and its PSI passes the threshold; a
check through the API then sends a `drift` webhook to a loopback receiver whose rule
matches, and not to one whose rule does not.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from convolens.cli import app
from convolens.enrich.runner import enrich
from convolens.health.drift import DriftSettings, drift_report
from convolens.health.intake_checks import psi
from convolens.ingest.pipeline import ingest_paths
from convolens.service.webhooks import WebhookRule, render_body
from convolens.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "service"))
from live_server import Receiver, Server, role_keys  # noqa: E402

TWEETEVAL = ROOT.parent / "shared" / "data" / "sentiment" / "tweeteval"
COOKIE = "convolens_dashboard_key"
runner = CliRunner(env={"COLUMNS": "200"})
RECENT_END = date(2026, 11, 4)


def _sentences() -> tuple[list[str], list[str]]:
    """(positive, negative) TweetEval validation tweets of 6-30 words (a chat message)."""
    texts, labels = (TWEETEVAL / "val_text.txt", TWEETEVAL / "val_labels.txt")
    assert texts.exists(), f"{texts} is missing: the shared data folder is part of the setup"
    positive, negative = [], []
    for text, label in zip(
        texts.read_text(encoding="utf-8").splitlines(),
        labels.read_text(encoding="utf-8").splitlines(),
        strict=True,
    ):
        text = " ".join(text.split())
        if 6 <= len(text.split()) <= 30 and label in ("0", "2"):
            (positive if label == "2" else negative).append(text)
    return positive, negative


def _chat(cid: str, day: date, text: str) -> dict[str, object]:
    at = datetime(day.year, day.month, day.day, 10, 0)
    return {
        "id": cid,
        "source": "survey",
        "channel": "chat",
        "started_at": at.isoformat() + "Z",
        "participants": [{"id": "c", "role": "customer"}],
        "messages": [{"author": "c", "text": text, "sent_at": at.isoformat() + "Z"}],
    }


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    positive, negative = _sentences()
    chats = []
    # Reference: 28 days before the recent week, three positive and three negative a day
    # (with one of each, a balanced week of 14 tweets read PSI 0.34 from sampling noise).
    for i in range(28):
        day = RECENT_END - timedelta(days=7 + i)
        for k in range(3):
            chats.append(_chat(f"ref-pos-{i}-{k}", day, positive[3 * i + k]))
            chats.append(_chat(f"ref-neg-{i}-{k}", day, negative[3 * i + k]))
    # Recent week: five negative messages a day (with three, 21 tweets, the chi-squared p
    # sat at the 0.01 line: some tweets labelled negative read neutral to the model).
    for i in range(35):
        chats.append(_chat(f"new-neg-{i}", RECENT_END - timedelta(days=i % 7), negative[100 + i]))
    folder = tmp_path_factory.mktemp("drift")
    path = folder / "chats.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in chats), encoding="utf-8")
    db = folder / "w.duckdb"
    with Warehouse(db) as wh:
        assert ingest_paths(wh, [path]).conversations == len(chats)
        enrich(wh, ["sentiment"])
    return db


def test_psi_of_known_distributions() -> None:
    assert psi({"a": 50, "b": 50}, {"a": 50, "b": 50}) == 0.0
    # (0.9-0.5)ln(0.9/0.5) + (0.1-0.5)ln(0.1/0.5) = 0.2351 + 0.6438
    exact = psi({"a": 50, "b": 50}, {"a": 90, "b": 10}, smoothing=0)
    assert exact == pytest.approx(0.8789, abs=1e-4)
    # Smoothing takes a little off a large sample, much off a tiny one.
    assert psi({"a": 50, "b": 50}, {"a": 90, "b": 10}) == pytest.approx(0.8531, abs=1e-3)
    assert psi({"a": 2, "b": 2}, {"a": 4}) < psi({"a": 2, "b": 2}, {"a": 4}, smoothing=0) / 5


def test_sentiment_drift_is_found(labelled: Path) -> None:
    with Warehouse(labelled, read_only=True) as wh:
        report = drift_report(wh, DriftSettings(series_points=4))
    assert report.until == RECENT_END
    assert report.recent_start == RECENT_END - timedelta(days=6)
    [sentiment] = report.components
    assert sentiment.component == "sentiment"
    assert sentiment.drifted and sentiment.psi is not None and sentiment.psi > 0.2
    assert sentiment.chi2_p is not None and sentiment.chi2_p < 0.01
    shares = {d.category: d for d in sentiment.distribution}
    negative = shares["sentiment.utterance=negative"]
    assert negative.recent > 1.5 * negative.reference
    # The series ends on this window; a week earlier, both windows are balanced sentences.
    points = [p for p in report.series if p.component == "sentiment"]
    assert [p.until for p in points][-1] == RECENT_END
    assert points[-1].psi == sentiment.psi
    assert points[-2].psi is not None and points[-2].psi < 0.2

    # Same data, windows that hold only the balanced weeks: no drift.
    with Warehouse(labelled, read_only=True) as wh:
        calm = drift_report(wh, DriftSettings(until=RECENT_END - timedelta(days=7)))
    assert not calm.components[0].drifted, calm.components[0].reasons


@pytest.fixture(scope="module")
def topics(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample corpus's support chats (Sept-Nov 2026) after two months of TweetEval
    tweets as customer messages (July-August): what customers talk about changed."""
    positive, negative = _sentences()
    folder = tmp_path_factory.mktemp("topics")
    tweets = [
        _chat(f"tweet-{i}", date(2026, 7, 5) + timedelta(days=i), text)
        for i, text in enumerate((positive[:20] + negative[:20])[:58])
    ]
    path = folder / "tweets.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in tweets), encoding="utf-8")
    db = folder / "w.duckdb"
    examples = ROOT / "examples"
    with Warehouse(db) as wh:
        for source in (path, examples / "chats" / "support_chats.jsonl", examples / "csv"):
            assert not ingest_paths(wh, [source]).rejects
    return db


def test_centroid_shift_of_customer_statements(topics: Path, labelled: Path) -> None:
    """Support requests after tweets move the statements' mean embedding far beyond what
    random splits of the same statements give; balanced windows of tweets do not."""
    settings = DriftSettings(
        embeddings=True, series_points=0, until=date(2026, 11, 10), recent_days=70,
        reference_days=60,
    )  # fmt: skip
    with Warehouse(topics, read_only=True) as wh:
        moved = drift_report(wh, settings).centroid
    assert moved is not None and moved.model_id == "all-MiniLM-L6-v2"
    assert (moved.recent_n, moved.reference_n) == (15, 40)
    assert moved.cosine_distance is not None and moved.chance_distance is not None
    assert moved.cosine_distance > 2 * moved.chance_distance
    assert moved.p_value is not None and moved.p_value < 0.01 and moved.drifted
    with Warehouse(labelled, read_only=True) as wh:
        calm = drift_report(
            wh,
            DriftSettings(embeddings=True, series_points=0, until=RECENT_END - timedelta(days=7)),
        ).centroid
    assert calm is not None and (calm.recent_n, calm.reference_n) == (42, 126)
    assert calm.p_value is not None and calm.p_value > 0.01 and not calm.drifted


def test_slack_summary_of_alerts() -> None:
    drift_body = json.loads(
        render_body("slack", "drift", "dl_1", datetime(2026, 11, 5),
                    {"component": "sentiment", "metric": "psi", "score": 1.46, "threshold": 0.2})
    )  # fmt: skip
    assert drift_body["text"] == "Drift in sentiment: psi 1.46 over 0.2"
    health_body = json.loads(
        render_body("slack", "data_health", "dl_2", datetime(2026, 11, 5),
                    {"source": "csv/csv", "message": "field 'agent' filled in 0% of 6 records"})
    )  # fmt: skip
    assert health_body["text"] == "Data health (csv/csv): field 'agent' filled in 0% of 6 records"


def test_cli_drift(labelled: Path) -> None:
    result = runner.invoke(app, ["drift", "--db", str(labelled)])
    assert result.exit_code == 3, result.output  # 3: something drifted
    assert "DRIFT" in result.output and "sentiment" in result.output
    result = runner.invoke(app, ["drift", "--db", str(labelled), "--until", "2026-10-28"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["drift", "--db", str(labelled), "--json", "--recent-days", "0"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["drift", "--db", str(labelled), "--until", "0001-01-01"])
    assert result.exit_code == 2 and "between 1900-01-01 and 2999-12-31" in result.output


def test_drift_rule_matching() -> None:
    rule = WebhookRule(component="sentiment", min_score=0.2)
    assert rule.matches({"component": "sentiment", "score": 0.5})
    assert not rule.matches({"component": "sentiment", "score": 0.1})
    assert not rule.matches({"component": "intents", "score": 0.5})


def _wait_for(receiver: Receiver, count: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(receiver.bodies) < count:
        time.sleep(0.2)
    return [json.loads(b) for b in receiver.bodies]


@pytest.fixture(scope="module")
def server(labelled: Path) -> Iterator[Server]:
    running = Server(
        labelled, labelled.with_name("server.log"), CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0"
    ).start()
    try:
        yield running
    finally:
        running.stop()


def test_check_fires_the_drift_webhook(server: Server) -> None:
    keys = role_keys(server, name="drift")
    matching, other = Receiver(), Receiver()
    with server.client() as admin:
        for url, rule in (
            (matching.url, {"component": "sentiment", "min_score": 0.2}),
            (other.url, {"component": "intents"}),
        ):
            made = admin.post("/v1/webhooks", json={"url": url, "events": ["drift"], "rule": rule})
            assert made.status_code == 201, made.text
    with server.client(keys["viewer"]) as viewer:
        seen = viewer.get("/v1/drift").json()
        assert seen["components"][0]["drifted"] and seen["components"][0]["distribution"] == []
        assert viewer.post("/v1/drift/check").status_code == 403
    with server.client(keys["agent"]) as agent:
        assert agent.get("/v1/drift").status_code == 403
    with server.client(keys["analyst"]) as analyst:
        checked = analyst.post("/v1/drift/check").json()
        assert checked["alerts"] == 1 and checked["check_id"]
        stored = analyst.get("/v1/drift/checks").json()
    assert {(r["metric"], r["drifted"]) for r in stored} >= {("psi", True), ("chi2_p", False)}
    [body] = _wait_for(matching, 1)
    assert body["event"] == "drift"
    data = body["data"]
    assert data["component"] == "sentiment" and data["metric"] == "psi"
    assert data["score"] > 0.2 and data["threshold"] == 0.2
    assert data["until"] == str(RECENT_END) and data["check_id"] == checked["check_id"]
    time.sleep(1.5)  # the dispatcher polls every second: the other hook had its chance
    assert other.bodies == []
    # Checked again, still drifted: already told, so no second alert unless asked for.
    with server.client(keys["analyst"]) as analyst:
        assert analyst.post("/v1/drift/check").json()["alerts"] == 0
        again = analyst.post("/v1/drift/check", params={"repeat_alerts": "true"}).json()
        assert again["alerts"] == 1
    assert len(_wait_for(matching, 2)) == 2


def test_page_draws_the_drift_series(server: Server) -> None:
    from playwright.sync_api import sync_playwright

    keys = role_keys(server, name="drift page")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            context = browser.new_context()
            host = httpx.URL(server.url).host
            context.add_cookies(
                [{"name": COOKIE, "value": keys["viewer"], "domain": host, "path": "/"}]
            )
            page = context.new_page()
            page.goto(f"{server.url}/dashboard/data-health")
            page.wait_for_selector("#chart-drift .main-svg", timeout=30_000)
            row = page.locator('#drift-table tr[data-component="sentiment"]')
            assert "drift" in row.inner_text()
            legend = page.locator("#chart-drift .legendtext").all_text_contents()
            assert legend == ["sentiment"]
            # The plotted series: the PSI of each window, the last one over the threshold.
            drawn = page.evaluate(
                "() => document.getElementById('chart-drift').data.map(t => [t.name, t.y])"
            )
            [(_, values)] = [d for d in drawn if d[0] == "sentiment"]
            assert values[-1] > 0.2 and values[-2] < 0.2
            # A viewer sees the figures, not the per-value distribution.
            assert page.locator("#drift-table tr.detail").count() == 0
            assert page.locator('nav a[data-page="data_health"]').count() == 1
        finally:
            browser.close()
