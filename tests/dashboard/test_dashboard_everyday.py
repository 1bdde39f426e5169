"""The dashboard items of issue 16 in a real browser, at a desktop (1280 px) and a phone
(390 px) width, against a real server holding the analysed sample corpus.

Date range (kept in the URL, carried by the navigation), week-over-week deltas, CSV
exports (exactly what the page shows the key), column sorting, spikes within noise muted
and hidden, evidence links that open the utterance, clusters named by a statement, and
no page wider than a phone. Every figure is checked against the API's own answer for the
same days, and each step leaves a screenshot under tests/artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
COOKIE = "convolens_dashboard_key"
CANCEL_CHAT = "cv-7a7cfeadef9138b29bc8"  # chat-20261106-0010: "won't be renewing" in u-0


def _open(browser: Any, server: Any, key: str, viewport: dict[str, int], path: str) -> Any:
    """A fresh context signed in through the login form, on `path`."""
    context = browser.new_context(viewport=viewport, base_url=server.url, accept_downloads=True)
    page = context.new_page()
    page.goto(path)
    page.fill("#api_key", key)
    page.click("form[action='/dashboard/login'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/(?!login).*"))
    return page


def _shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"issue16-{name}.png"), full_page=True)


def _latest_day(server: Any) -> date:
    with server.client() as admin:
        items = admin.get("/v1/conversations", params={"limit": 1}).raise_for_status().json()
    return date.fromisoformat(items["items"][0]["started_at"][:10])


def _aggregates(server: Any, since: date, until: date) -> dict[str, Any]:
    with server.client() as admin:
        return (
            admin.get(
                "/v1/aggregates",
                params={"since": since.isoformat(), "until": (until + timedelta(1)).isoformat()},
            )
            .raise_for_status()
            .json()
        )


def _csv(server: Any, key: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, cookies={COOKIE: key}, timeout=60) as client:
        return client.get(path)


def _rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.text)))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_date_range_presets_stay_in_the_url_and_scope_every_page(
    browser: Any, server: Any, keys: dict[str, str], screenshots: Path, viewport: dict[str, int]
) -> None:
    latest = _latest_day(server)
    since = latest - timedelta(days=29)
    page = _open(browser, server, keys["analyst"], viewport, "/dashboard/")
    page.click("#date-range a.preset[data-days='30']")
    page.wait_for_url(f"**/dashboard/?since={since}&until={latest}")
    expect(page.locator("#date-range a.preset[data-days='30']")).to_have_class(re.compile("active"))
    expected = _aggregates(server, since, latest)
    assert 0 < expected["conversations"] < 45  # the range leaves some of the corpus out
    card = page.locator(".card", has=page.locator(".card-title", has_text="Conversations"))
    expect(card.locator(".card-value")).to_have_text(str(expected["conversations"]))
    _shot(page, screenshots, f"range-overview-{viewport['width']}")

    # The range travels with the navigation and scopes each page.
    page.click("nav a[data-page=agents]")
    page.wait_for_url(f"**/dashboard/agents?since={since}&until={latest}")
    with server.client() as admin:
        team = admin.get(
            "/v1/analytics/agents", params={"since": str(since), "until": str(latest)}
        ).json()
    shown = {
        row.get_attribute("data-agent"): row.locator("td").nth(1).inner_text()
        for row in page.locator("#scorecards tr[data-agent]").all()
    }
    assert shown == {a["agent"]: str(a["measures"]["conversations"]) for a in team["agents"]}
    page.click("nav a[data-page=topics]")
    page.wait_for_url(f"**/dashboard/topics?since={since}&until={latest}")
    figure = json.loads(page.locator("#fig-volume").text_content() or "{}")
    periods = {x for trace in figure["data"] for x in trace["x"]}
    first_week = since - timedelta(days=since.weekday())
    assert periods and all(first_week.isoformat() <= p[:10] <= str(latest) for p in periods)
    # The trend form keeps the range when the dimension changes.
    page.select_option("#trend-form select[name=dimension]", "tracker")
    page.click("#trend-form button[type=submit]")
    page.wait_for_url(re.compile(rf".*since={since}.*until={latest}.*dimension=tracker.*"))
    _shot(page, screenshots, f"range-topics-{viewport['width']}")

    # Typed dates, then "All" clears the range.
    page.goto("/dashboard/conversations")
    page.fill("#filters input[name=since]", "2026-10-01")
    page.fill("#filters input[name=until]", "2026-10-07")
    page.click("#filters button[type=submit]")
    expect(page.locator("#total")).to_have_text("4 found")
    page.goto(f"/dashboard/accounts?since={since}&until={latest}")
    page.click("#date-range a.preset[data-days='all']")
    page.wait_for_url("**/dashboard/accounts")
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_headline_figures_show_week_over_week_deltas(
    browser: Any, server: Any, keys: dict[str, str], screenshots: Path, viewport: dict[str, int]
) -> None:
    latest = _latest_day(server)
    week = _aggregates(server, latest - timedelta(days=6), latest)
    before = _aggregates(server, latest - timedelta(days=13), latest - timedelta(days=7))
    page = _open(browser, server, keys["admin"], viewport, "/dashboard/")
    change = week["conversations"] - before["conversations"]
    sign = "+" if change > 0 else "−" if change < 0 else "±"
    card = page.locator(".card", has=page.locator(".card-title", has_text="Conversations"))
    expect(card.locator(".card-delta")).to_contain_text(
        f"{sign}{abs(change)}" + (" (" if before["conversations"] else " vs")
    )
    expect(card.locator(".card-delta")).to_contain_text("vs the 7 days before")
    churn = week["signals"].get("churn_risk", 0) - before["signals"].get("churn_risk", 0)
    churn_card = page.locator(
        ".card", has=page.locator(".card-title", has_text="Churn-risk signals")
    )
    expect(churn_card.locator(".card-delta")).to_contain_text(f"{abs(churn)}")
    expect(page.locator("#wow-note")).to_contain_text(latest.strftime("%d %b %Y"))
    assert page.locator(".card-delta").count() == 6
    _shot(page, screenshots, f"wow-overview-{viewport['width']}")
    page.context.close()


def test_csv_exports_hold_what_the_page_shows_each_role(
    browser: Any, server: Any, keys: dict[str, str], screenshots: Path
) -> None:
    # The analyst's agent table: the page's header and rows, cell for cell.
    page = _open(browser, server, keys["analyst"], DESKTOP, "/dashboard/agents")
    table = page.locator("table[data-export=scorecards]")
    head = [t.strip() for t in table.locator("thead th").all_inner_texts()]
    with page.expect_download() as download:
        page.click("a[data-csv=scorecards]")
    saved = download.value.path()
    rows = list(csv.reader(io.StringIO(Path(saved).read_text("utf-8"))))
    assert download.value.suggested_filename == "convolens-agents-scorecards.csv"
    assert rows[0] == head
    assert len(rows) - 1 == table.locator("tbody tr").count()
    sam = next(r for r in rows if r[0] == "Sam Patel")
    shown = table.locator("tr[data-agent='Sam Patel'] td").all_inner_texts()
    assert sam == [" ".join(t.split()) for t in shown]
    page.context.close()

    # Alerts: an analyst's hold the words; a viewer's only counts, as their page.
    analyst = _rows(_csv(server, keys["analyst"], "/dashboard/csv/overview/alerts"))
    assert analyst[0] == ["When", "Alert", "Conversation", "Agent", "Said"]
    assert any("won't be renewing" in r[4] for r in analyst[1:])
    viewer = _rows(_csv(server, keys["viewer"], "/dashboard/csv/overview/alerts"))
    assert viewer[0] == ["Alert", "Conversations", "Latest"]
    assert "renewing" not in json.dumps(viewer) and "chat-2026" not in json.dumps(viewer)
    clusters = _rows(_csv(server, keys["viewer"], "/dashboard/csv/topics/clusters"))
    assert clusters[0] == ["Cluster", "Conversations"]
    assert all(r[0].startswith("cluster k-") for r in clusters[1:])
    # Pages a role may not open are not exported either; a range scopes the export.
    assert (
        _csv(server, keys["viewer"], "/dashboard/csv/conversations/conversations").status_code
        == 403
    )
    assert _csv(server, keys["agent"], "/dashboard/csv/agents/scorecards").status_code == 403
    latest = _latest_day(server)
    week = _rows(
        _csv(
            server, keys["analyst"],
            f"/dashboard/csv/overview/channels?since={latest - timedelta(6)}&until={latest}",
        )
    )  # fmt: skip
    counts = _aggregates(server, latest - timedelta(6), latest)["by_channel"]
    assert {r[0]: int(r[1]) for r in week[1:]} == counts
    assert _csv(server, keys["analyst"], "/dashboard/csv/overview/nosuch").status_code == 404
    assert _csv(server, keys["analyst"], "/dashboard/csv/nosuch/table").status_code == 404


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_columns_sort_by_value_with_missing_last(
    browser: Any, server: Any, keys: dict[str, str], screenshots: Path, viewport: dict[str, int]
) -> None:
    page = _open(browser, server, keys["analyst"], viewport, "/dashboard/agents")
    table = page.locator("table[data-export=scorecards]")
    header = table.locator("thead th", has_text="Conversations")

    def column(index: int) -> list[str]:
        return [
            r.locator("td").nth(index).inner_text().strip()
            for r in table.locator("tbody tr[data-agent]").all()
        ]

    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    counts = [int(v) for v in column(1)]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert [int(v) for v in column(1)] == sorted(counts, reverse=True)
    # Talk share is missing for agents without timed calls: "–" sorts last both ways.
    talk = table.locator("thead th", has_text="talk share")
    talk.click()
    values = column(3)
    assert "–" in values and values[-1] == "–"
    present = [float(v.rstrip("%")) for v in values if v != "–"]
    assert present == sorted(present)
    # Team mean and top quartile stay under the agents.
    rows = table.locator("tbody tr")
    expect(rows.nth(rows.count() - 1)).to_contain_text("top quartile")
    _shot(page, screenshots, f"sorting-agents-{viewport['width']}")
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_spikes_within_noise_are_muted_and_hidden_by_default(
    browser: Any, server: Any, keys: dict[str, str], screenshots: Path, viewport: dict[str, int]
) -> None:
    page = _open(browser, server, keys["analyst"], viewport, "/dashboard/topics")
    with server.client() as admin:
        report = admin.get(
            "/v1/analytics/spikes",
            params={"dimension": "intent", "min_count": 2, "all_values": True},
        ).json()
    noise = [s for s in report["spikes"][:12] if not s["significant"]]
    assert noise, "the sample corpus has changes within noise to hide"
    rows = page.locator("#spikes tr.spike.ns")
    expect(rows).to_have_count(len(noise))
    for i in range(rows.count()):
        expect(rows.nth(i)).to_be_hidden()
    _shot(page, screenshots, f"spikes-hidden-{viewport['width']}")
    page.check("#spikes #show-ns")
    for i in range(rows.count()):
        row = rows.nth(i)
        expect(row).to_be_visible()
        expect(row).to_contain_text("not significant")
        # Grey, never the alarm red of a significant rise.
        assert row.locator("td.up").count() == 0
        color = row.locator("td").first.evaluate("e => getComputedStyle(e).color")
        assert color == "rgb(102, 113, 125)"
    assert {r.locator("td").first.inner_text().strip() for r in rows.all()} == {
        s["value"] for s in noise
    }
    _shot(page, screenshots, f"spikes-shown-{viewport['width']}")

    # The overview's "rising this week": only significant rises by default.
    page.goto("/dashboard/")
    for row in page.locator("#rising tr.spike").all():
        significant = "sig" in (row.get_attribute("class") or "").split()
        assert row.is_visible() == significant
        assert (row.locator("td.up").count() > 0) == significant
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_evidence_links_open_the_utterance_scrolled_and_highlighted(
    browser: Any, server: Any, keys: dict[str, str], screenshots: Path, viewport: dict[str, int]
) -> None:
    page = _open(browser, server, keys["admin"], viewport, "/dashboard/")
    # The churn-risk alert quotes "won't be renewing", said in the chat's first message.
    link = page.locator(f"#alerts a[href='/dashboard/conversations/{CANCEL_CHAT}#u-0']")
    expect(link.first).to_be_attached()
    # Spike evidence: each link names an utterance holding the tracker's mark.
    page.goto("/dashboard/topics?dimension=tracker")
    page.check("#spikes #show-ns")
    evidence = page.locator("#spikes a.evidence-link")
    assert evidence.count() > 0
    hrefs = [a.get_attribute("href") or "" for a in evidence.all()]
    assert all(re.search(r"/dashboard/conversations/cv-[0-9a-f]+#u-\d+$", h) for h in hrefs)
    evidence.first.click()
    page.wait_for_url(re.compile(r".*#u-\d+$"))
    anchor = hrefs[0].split("#")[1]
    target = page.locator(f"#{anchor}")
    expect(target).to_be_in_viewport()
    assert page.evaluate("document.querySelector(':target').id") == anchor
    outline = target.evaluate("e => getComputedStyle(e).outlineColor")
    assert outline == "rgb(232, 135, 30)"
    assert target.locator("mark.k-tracker").count() > 0
    _shot(page, screenshots, f"evidence-utterance-{viewport['width']}")
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_clusters_are_named_by_a_representative_statement(
    browser: Any, server: Any, keys: dict[str, str], screenshots: Path, viewport: dict[str, int]
) -> None:
    with server.client() as admin:
        clusters = {c["cluster_id"]: c for c in admin.get("/v1/analytics/clusters").json()}
    page = _open(browser, server, keys["analyst"], viewport, "/dashboard/topics")
    rows = page.locator("#clusters tr[data-cluster]")
    assert rows.count() > 0
    for row in rows.all():
        cluster = clusters[row.get_attribute("data-cluster") or ""]
        name = row.locator(".cluster-name").inner_text().strip()
        # A sentence of the statement nearest the centre, not the comma-joined keywords.
        assert name != cluster["label"]
        statement = re.sub(r"<[A-Z_]+>|\[[A-Z_]+\]", " ", cluster["representative"])
        assert name.rstrip("…").lower() in " ".join(statement.split()).lower()
        assert not re.match(r"(hi|hello|hey|yeah)\b", name, re.IGNORECASE)
        assert len(name) <= 71
        expect(row).to_contain_text(", ".join(cluster["phrases"][:3]))
    _shot(page, screenshots, f"clusters-named-{viewport['width']}")
    page.context.close()
    viewer = _open(browser, server, keys["viewer"], viewport, "/dashboard/topics")
    for name in viewer.locator("#clusters .cluster-name").all_inner_texts():
        assert re.fullmatch(r"cluster k-\w+", name.strip())
    viewer.context.close()


PAGES = [
    "/dashboard/",
    "/dashboard/conversations",
    f"/dashboard/conversations/{CANCEL_CHAT}",
    "/dashboard/topics",
    "/dashboard/agents",
    "/dashboard/accounts",
    "/dashboard/scorecards",
    f"/dashboard/scorecards/{CANCEL_CHAT}",
    "/dashboard/upload",
]


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_no_page_is_wider_than_a_phone_and_every_section_is_reachable(
    browser: Any, server: Any, keys: dict[str, str], screenshots: Path, role: str
) -> None:
    page = _open(browser, server, keys[role], PHONE, "/dashboard/")
    sections = page.locator("header nav a")
    pages = set(sections.evaluate_all("links => links.map(a => a.dataset.page)"))
    mine = {"overview", "topics", "agents", "scorecards", "accounts"}
    assert mine | ({"conversations", "upload"} if role == "admin" else set()) <= pages
    for link in sections.all():
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    for path in PAGES:
        response = page.goto(path)
        if role == "viewer" and response.status == 403:
            continue
        assert response.status == 200, path
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # Plotly's responsive resize
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        name = path.strip("/").replace("/", "-") or "dashboard"
        _shot(page, screenshots, f"phone-{role}-{name}")
    page.context.close()
