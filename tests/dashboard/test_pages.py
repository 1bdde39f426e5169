"""The dashboard in a real browser against a real server holding the analysed sample corpus.

Each page is loaded as a person would (sign in through the form, click filters and
links), its content checked against what the corpus holds (ids, speakers, evidence
marks, rendered Plotly charts), and a screenshot saved for a person to look at.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from live_server import ADMIN_KEY
from markupsafe import Markup
from playwright.sync_api import expect

from convolens.dashboard.transcript import Span, marked_text

# Sample-corpus conversations (ids are stable hashes of source system + source id).
CANCEL_CHAT = "cv-7a7cfeadef9138b29bc8"  # chat-20261106-0010, Lumen & Co leaves for Contoso
ESCALATION_CALL = "cv-10a739590a40d645b7f5"  # call-20261006-0012, Grace Kim and Derek Holt
OKTA_TICKET = "cv-68fc637ba1066d1a6e34"  # Zendesk 4502, Okta SSO login loop


def _charts_rendered(page: Any, *names: str) -> None:
    for name in names:
        chart = page.locator(f"#chart-{name}")
        expect(chart.locator(".plot-container")).to_have_count(1)
        expect(chart.locator("svg.main-svg").first).to_be_visible()
        expect(chart).to_have_attribute("data-rendered", "true")


def _card(page: Any, title: str) -> Any:
    return page.locator(".card", has=page.locator(".card-title", has_text=title)).locator(
        ".card-value"
    )


def _churn_risk_conversations(server: Any) -> str:
    """The API's own count, so the card is checked against it rather than a number that
    moves whenever a model improves (it has been 5, 6 and 7 as the models changed)."""
    with server.client() as admin:
        count = admin.get("/v1/aggregates").raise_for_status().json()["signals"]["churn_risk"]
    assert count >= 1  # the sample corpus has customers who say they are leaving
    return str(count)


def _shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_marks_escape_text_and_never_nest() -> None:
    text = "I <script>x</script> won't be renewing"
    at = text.index("won't")
    spans = [
        Span(utterance_id="u", start=at, end=len(text), ref=0, kind="tracker"),
        Span(utterance_id="u", start=at + 9, end=len(text), ref=1, kind="entity"),
    ]
    html = marked_text(text, spans, {0: "tracker: churn_risk"})
    assert isinstance(html, Markup)
    assert "I &lt;script&gt;x&lt;/script&gt; <mark" in html and "<script>" not in html
    # The overlap is cut into two marks side by side: the tracker alone, then both kinds.
    assert re.findall(r'<mark class="([^"]+)"[^>]*>([^<]*)</mark>', html) == [
        ("ev k-tracker", "won&#39;t be "),
        ("ev k-tracker k-entity", "renewing"),
    ]
    assert 'data-ev="0 1" title="tracker: churn_risk; entity"' in html


def test_sign_in_sets_an_httponly_strict_cookie_and_rejects_bad_keys(
    server: Any, browser: Any, http: httpx.Client, screenshots: Path
) -> None:
    # Pages redirect to the login form; the static plotly.js comes from the package.
    assert http.get("/dashboard/conversations?channel=call").headers["location"] == (
        "/dashboard/login?next=/dashboard/conversations%3Fchannel%3Dcall"
    )
    js = http.get("/dashboard/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000 and b"plotly" in js.content[:400]
    assert http.get("/dashboard/static/../routes.py").status_code == 404
    assert "/dashboard" not in str(http.get("/openapi.json").json()["paths"])

    context = browser.new_context(viewport={"width": 1000, "height": 700}, base_url=server.url)
    page = context.new_page()
    page.goto("/dashboard/agents")
    page.fill("#api_key", "clk_nosuchkey_" + "x" * 30)
    page.click("form[action='/dashboard/login'] button[type=submit]")
    expect(page.locator(".error")).to_contain_text("unknown or has been revoked")
    _shot(page, screenshots, "01-login-rejected")
    page.fill("#api_key", ADMIN_KEY)
    page.click("form[action='/dashboard/login'] button[type=submit]")
    page.wait_for_url("**/dashboard/agents")  # back where the browser was going
    # The key and the CSRF token (test_csrf.py), both out of reach of scripts.
    cookies = {c["name"]: c for c in context.cookies()}
    assert set(cookies) == {"convolens_dashboard_key", "convolens_csrf"}
    for cookie in cookies.values():
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/dashboard"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the key
    page.click("text=Sign out")
    page.wait_for_url("**/dashboard/login")
    assert [c["name"] for c in context.cookies()] == ["convolens_csrf"]
    context.close()


def test_overview_shows_volume_sentiment_intents_and_alerts(
    signed_in: Any, keys: dict[str, str], screenshots: Path, server: Any
) -> None:
    page = signed_in(keys["admin"])
    expect(_card(page, "Conversations")).to_have_text("45")
    expect(_card(page, "Churn-risk signals")).to_have_text(_churn_risk_conversations(server))
    _charts_rendered(page, "volume", "sentiment", "intents", "sentiment_mix")
    # The intent chart's bars are labelled with the corpus' primary intents: the API's
    # most frequent one among them (read from the API, as it moves with the model).
    with server.client() as admin:
        intents = admin.get("/v1/aggregates").raise_for_status().json()["primary_intents"]
    top = max(sorted(intents), key=lambda name: intents[name])
    expect(page.locator("#chart-intents")).to_contain_text(top)
    alerts = page.locator("#alerts")
    cancel = alerts.locator("tr", has_text="chat-20261106-0010").filter(has_text="churn_risk")
    expect(cancel.first).to_contain_text("won't be renewing")
    expect(
        # The link opens the utterance that raised the alert (its anchor on the page).
        alerts.locator(f"a[href^='/dashboard/conversations/{CANCEL_CHAT}#u-']").first
    ).to_be_visible()
    _shot(page, screenshots, "02-overview-admin")


def test_list_filters_search_pagination_and_click_through(
    signed_in: Any, keys: dict[str, str], screenshots: Path
) -> None:
    page = signed_in(keys["analyst"])
    page.click("nav a[data-page=conversations]")
    expect(page.locator("#total")).to_have_text("45 found")
    expect(page.locator(".pager")).to_contain_text("page 1 of 2")
    page.click(".pager a[rel=next]")
    expect(page.locator(".pager")).to_contain_text("page 2 of 2")
    expect(page.locator("#conversation-list tbody tr")).to_have_count(20)

    page.select_option("select[name=channel]", "call")
    page.click("#filters button[type=submit]")
    expect(page.locator("#total")).to_have_text("7 found")
    rows = page.locator("#conversation-list tbody tr")
    for i in range(7):
        expect(rows.nth(i).locator("td").nth(2)).to_have_text("call")
    expect(page.locator(f"tr[data-id='{ESCALATION_CALL}']")).to_contain_text("Grace Kim")

    page.goto("/dashboard/conversations?since=2026-10-01&until=2026-10-07")
    expect(page.locator("#total")).to_have_text("4 found")
    expect(page.locator(f"tr[data-id='{ESCALATION_CALL}']")).to_be_visible()

    page.goto("/dashboard/conversations")
    page.fill("input[name=q]", "Okta")
    page.press("input[name=q]", "Enter")
    expect(page.locator(f"tr[data-id='{OKTA_TICKET}']")).to_contain_text("Okta SSO: login loop")
    expect(page.locator("#total")).to_have_text("3 found")  # the ticket, a meeting, an email

    page.goto("/dashboard/conversations")
    page.select_option("select[name=tracker]", "churn_risk")
    page.select_option("select[name=agent]", "Sam Patel")
    page.click("#filters button[type=submit]")
    expect(page.locator("#total")).to_have_text("1 found")
    _shot(page, screenshots, "03-conversations-filtered")
    page.click(f"tr[data-id='{CANCEL_CHAT}'] a")
    page.wait_for_url(f"**/dashboard/conversations/{CANCEL_CHAT}")
    expect(page.locator("#conversation-title")).to_have_text("chat-20261106-0010")


def test_conversation_page_transcript_evidence_and_charts(
    signed_in: Any, keys: dict[str, str], screenshots: Path
) -> None:
    page = signed_in(keys["admin"])
    page.goto(f"/dashboard/conversations/{CANCEL_CHAT}")
    transcript = page.locator("#transcript")
    speakers = {s.strip() for s in transcript.locator(".speaker").all_inner_texts()}
    # The customer's name was redacted at intake (only the raw layer keeps it); the agent
    # and the bot keep theirs.
    assert speakers == {"<PERSON>", "Nori", "Sam Patel"}
    assert "Chloe" not in transcript.inner_text()
    # The churn tracker's evidence span, highlighted in the customer's first message.
    # (a topic keyphrase covers its last word, so the span is cut into two marks)
    marks = transcript.locator("#u-0 mark.k-tracker")
    assert "".join(marks.all_text_contents()) == "won't be renewing"
    expect(marks.first).to_have_attribute("title", re.compile("tracker: churn_risk"))
    expect(marks.first).to_have_attribute("data-top", "tracker")
    expect(page.locator("#resolution")).to_have_text("solved")
    expect(page.locator("#insights")).to_contain_text("Could you tell us why?")
    _charts_rendered(page, "trajectory")
    # Entities are off until their legend box is ticked.
    hidden = transcript.locator("mark.k-entity.off")
    assert hidden.count() > 5
    page.check("#legend input[data-kind=entity]")
    expect(hidden).to_have_count(0)
    # An insight jumps to its evidence.
    page.click(".ev-link[data-kind=tracker]")
    expect(marks.first).to_be_in_viewport()
    _shot(page, screenshots, "04-conversation-chat")

    page.goto(f"/dashboard/conversations/{ESCALATION_CALL}")
    _charts_rendered(page, "timeline", "trajectory")
    for row in ("Grace Kim", "<PERSON>", "silence", "overlap"):  # the customer redacted
        expect(page.locator("#chart-timeline .ytick", has_text=row)).to_have_count(1)
    expect(page.locator("#transcript .utt").first).to_contain_text("0:01")
    expect(page.locator("#transcript mark.k-signal").first).to_be_attached()
    _shot(page, screenshots, "05-conversation-call")
    page.goto("/dashboard/conversations/no-such-conversation")
    expect(page.locator("h1")).to_have_text("Not found")


def test_topics_trends_agents_and_accounts_pages(
    signed_in: Any, keys: dict[str, str], screenshots: Path
) -> None:
    page = signed_in(keys["analyst"])
    page.click("nav a[data-page=topics]")
    _charts_rendered(page, "volume", "mood", "clusters")
    # Releases from examples/business/annotations.csv, on the chart and with before/after.
    expect(page.locator("#chart-volume")).to_contain_text("Export gateway release")
    release = page.locator("#annotations tr", has_text="Export gateway release")
    expect(release).to_contain_text("intent = bug_report")
    expect(release.locator("td").last).to_contain_text(re.compile("change|fell|rose|data"))
    expect(page.locator("#spikes")).to_contain_text("against the 4 weeks")
    # The duplicate-charge customers' problem statements fall in one cluster.
    billing = page.locator("#clusters tr", has_text="charged twice for our annual renewal")
    expect(billing.locator("td.num")).to_have_text(re.compile(r"[3-9]|\d\d"))
    page.select_option("select[name=dimension]", "tracker")
    page.check("input[name=share]")
    page.click("#trend-form button[type=submit]")
    page.wait_for_url("**/dashboard/topics?dimension=tracker&grain=week&share=true")
    expect(page.locator("h2", has_text="Tracker per week")).to_be_visible()
    _charts_rendered(page, "volume")
    expect(page.locator("#chart-volume")).to_contain_text("churn_risk")
    _shot(page, screenshots, "06-topics-trends")

    page.click("nav a[data-page=agents]")
    _charts_rendered(page, "volume", "benchmark")
    cards = page.locator("#scorecards")
    for agent in ("Sam Patel", "Priya Shah", "Grace Kim", "Dana Ruiz"):
        expect(cards.locator(f"tr[data-agent='{agent}']")).to_have_count(1)
    expect(cards.locator("tr[data-agent='Nori']")).to_contain_text("AI")
    expect(page.locator("#human-vs-ai")).to_contain_text("ai and human")
    _shot(page, screenshots, "07-agents")

    page.click("nav a[data-page=accounts]")
    _charts_rendered(page, "lift", "accounts")
    expect(page.locator("#lift tr[data-signal=churn_risk]")).to_have_count(1)
    lumen = page.locator("tr[data-account='ACC-1519']")
    expect(lumen).to_contain_text("Lumen & Co")
    expect(lumen).to_contain_text("churned 2026-11-20")
    expect(lumen).to_contain_text("churn_risk")
    expect(page.locator("tr[data-account='ACC-1042']")).to_contain_text("Brightlane")
    expect(page.locator("#campaigns")).to_contain_text("CMP-FALL26")
    _shot(page, screenshots, "08-accounts")


def test_viewer_sees_aggregates_but_no_conversation_text(
    signed_in: Any, keys: dict[str, str], screenshots: Path, server: Any
) -> None:
    page = signed_in(keys["viewer"])
    expect(page.locator("header .role")).to_have_text("viewer")
    expect(page.locator("nav a[data-page=conversations]")).to_have_count(0)
    _charts_rendered(page, "volume", "intents")
    # Alerts are counted, not listed: no quotes, no conversation ids, no links.
    alerts = page.locator("#alerts")
    churn = alerts.locator("tr", has=page.locator("span.tag-risk", has_text="signal"))
    expect(churn.locator("td.num")).to_have_text(_churn_risk_conversations(server))
    expect(alerts).not_to_contain_text("won't be renewing")
    expect(alerts).not_to_contain_text("chat-20261106-0010")
    # No link to a conversation (the page's own links: date presets and CSV exports).
    expect(page.locator("main a[href^='/dashboard/conversations']")).to_have_count(0)
    expect(page.locator("main a:not(.preset):not(.csv-link)")).to_have_count(0)
    _shot(page, screenshots, "09-overview-viewer")

    for path in ("/dashboard/conversations", f"/dashboard/conversations/{CANCEL_CHAT}"):
        response = page.goto(path)
        assert response.status == 403
        expect(page.locator(".error")).to_contain_text("viewer keys see aggregates only")
        expect(page.locator("#transcript")).to_have_count(0)
        assert "renewing" not in page.content()
    _shot(page, screenshots, "10-viewer-forbidden")
    page.goto("/dashboard/topics")
    _charts_rendered(page, "volume", "clusters")
    # Clusters by their id, not by the customers' words nor phrases taken from them.
    expect(page.locator("#clusters")).not_to_contain_text("charged twice for our annual renewal")
    expect(page.locator("#clusters tbody tr").first).to_contain_text("cluster k-")
    expect(page.locator("#clusters a:not(.csv-link)")).to_have_count(0)


def _words_from_conversations(admin: httpx.Client) -> set[str]:
    """Text the corpus's analytics took from its conversations: cluster labels and central
    statements, and the topics (top keyphrases) of two words or more (a single word such
    as "email" is also a channel's name)."""
    clusters = admin.get("/v1/analytics/clusters").json()
    topics = admin.get("/v1/analytics/trends", params={"dimension": "topic", "top": 500}).json()
    found = {c["label"] for c in clusters} | {c["representative"][:40] for c in clusters}
    found |= {p["value"] for p in topics["points"] if " " in p["value"]}
    return found


def test_viewer_pages_hold_no_words_from_conversations(server: Any, keys: dict[str, str]) -> None:
    """Every page a viewer may open, with every trend dimension, read for the cluster
    labels, statements and keyphrase topics of the sample corpus; the same pages as an
    analyst hold them (so the check can see them)."""
    with server.client() as admin:
        words = _words_from_conversations(admin)
    assert len(words) > 20
    pages = ["/dashboard/", "/dashboard/agents", "/dashboard/accounts"] + [
        f"/dashboard/topics?dimension={d}"
        for d in ("intent", "topic", "tracker", "signal", "channel", "queue", "agent", "cluster")
    ]

    def read(role: str) -> dict[str, str]:
        bodies = {}
        signed_in = {"convolens_dashboard_key": keys[role]}
        with httpx.Client(base_url=server.url, cookies=signed_in, timeout=60) as client:
            for path in pages:
                response = client.get(path)
                assert response.status_code == 200, (role, path)
                bodies[path] = response.text
        return bodies

    def found(body: str) -> set[str]:
        return {w for w in words if w in body or str(Markup.escape(w)) in body}

    viewer, analyst = read("viewer"), read("analyst")
    assert {path: found(body) for path, body in viewer.items() if found(body)} == {}
    assert found(analyst["/dashboard/topics?dimension=topic"])
    assert found(analyst["/dashboard/topics?dimension=cluster"])
    assert "topic 1" in viewer["/dashboard/topics?dimension=topic"]


def test_agent_sees_only_their_conversations_and_revocation_signs_out(
    signed_in: Any, server: Any, keys: dict[str, str]
) -> None:
    page = signed_in(keys["agent"])
    expect(_card(page, "Conversations")).to_have_text("8")
    page.goto("/dashboard/conversations")
    expect(page.locator("#total")).to_have_text("8 found")
    agents = set(page.locator("#conversation-list tbody tr td:nth-child(4)").all_inner_texts())
    assert agents == {"Leo Martin"}
    assert page.goto(f"/dashboard/conversations/{CANCEL_CHAT}").status == 404
    assert page.goto("/dashboard/topics").status == 403

    with server.client() as admin:
        key_id = keys["agent"].split("_")[1]
        assert admin.delete(f"/v1/keys/{key_id}").status_code == 204
    response = page.goto("/dashboard/conversations")
    assert response.status == 401
    expect(page.locator(".error")).to_contain_text("revoked")
