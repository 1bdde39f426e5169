"""Conversation types and structured summaries through a real server: the API's typed
`conversation_type` and `structured_summary` (and the SDK reading them), the list's type
filter, who may see them, and the conversation page in a real browser.

The warehouse holds four sample-corpus conversations, ingested and analysed by the CLI: a
sales discovery call (Dana Ruiz), an onboarding meeting (Marcus Webb), a support call
(Leo Martin, the test agent key's own), and a security-review meeting whose tag the
analysis config sets to "sales" (a per-source override).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import EXAMPLES, ROOT, Server, chromium, role_keys, sign_in

from convolens.client import Client
from convolens.model import conversation_id_for
from convolens.service.results import PARTS

SALES_CALL = conversation_id_for("aircall", "call-20260915-0007")
MEETING = conversation_id_for("zoom", "meeting-20260916-0003")
SUPPORT_CALL = conversation_id_for("aircall", "call-20260922-0009")
OVERRIDDEN = conversation_id_for("zoom", "meeting-20261105-0019")
FILES = [
    "calls/call-20260915-0007", "calls/call-20260922-0009",
    "calls/meeting-20260916-0003", "calls/meeting-20261105-0019",
]  # fmt: skip
SUPPORT_ONLY = {"resolution.status", "escalation"}
WORD = re.compile(r"[a-z0-9']+")
SCREENSHOTS = Path(
    os.environ.get("CONVOLENS_SCREENSHOTS", ROOT / "tests" / "artifacts" / "screenshots")
)


@dataclass
class Analysed:
    server: Server
    keys: dict[str, str]
    ids: dict[str, str]  # source id -> conversation id


def _cli(*args: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), *args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Analysed]:
    folder = tmp_path_factory.mktemp("types")
    inputs = folder / "in"
    inputs.mkdir()
    for stem in FILES:
        for path in EXAMPLES.glob(f"{stem}.*"):
            shutil.copy(path, inputs / path.name)
    config = folder / "convolens.toml"
    config.write_text('[components.conversation_type]\nby_tag = { "security-review" = "sales" }\n')
    db = folder / "w.duckdb"
    _cli("ingest", str(inputs), "--db", str(db))
    _cli("analyze", "--db", str(db), "--config", str(config))
    server = Server(db, folder / "server.log", CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0").start()
    try:
        keys = role_keys(server, agent="Leo Martin", name="types")
        with server.client() as admin:
            rows = admin.get("/v1/conversations").raise_for_status().json()["items"]
        yield Analysed(server, keys, {r["source_id"]: r["conversation_id"] for r in rows})
    finally:
        server.stop()


def _client(analysed: Analysed, role: str) -> httpx.Client:
    return analysed.server.client(analysed.keys[role])


def _quoted(utterances: list[dict[str, Any]], span: dict[str, Any]) -> str:
    text = next(u["text"] for u in utterances if u["utterance_id"] == span["utterance_id"])
    return str(text[span["start"] : span["end"]])


def _check_fields_rest_on_their_words(body: dict[str, Any]) -> None:
    """Every item of every field has evidence, and that evidence holds the item's words."""
    utterances = body["utterances"]
    fields = body["structured_summary"]["fields"]
    for name, items in fields.items():
        for item in items:
            assert item["evidence"], (name, item)
            quoted = _quoted(utterances, item["evidence"][0])
            if name == "competitors":
                assert quoted == item["name"], item
            else:
                words = set(WORD.findall(item["text"].lower()))
                assert words and words <= set(WORD.findall(quoted.lower())), (name, item, quoted)


def test_ids_are_the_sample_corpus_ones(analysed: Analysed) -> None:
    assert analysed.ids == {
        "call-20260915-0007": SALES_CALL, "call-20260922-0009": SUPPORT_CALL,
        "meeting-20260916-0003": MEETING, "meeting-20261105-0019": OVERRIDDEN,
    }  # fmt: skip


def test_sales_call_has_its_type_and_sales_fields_with_evidence(analysed: Analysed) -> None:
    with _client(analysed, "analyst") as analyst:
        body = analyst.get(f"/v1/conversations/{SALES_CALL}").raise_for_status().json()
        part = analyst.get(f"/v1/conversations/{SALES_CALL}/type").raise_for_status().json()
    kind = body["conversation_type"]
    assert kind["type"] == "sales" and kind["customer"] is True and kind["overridden"] is False
    assert 0.5 < kind["confidence"] <= 1 and any("Sales" in r for r in kind["reasons"])
    assert kind["evidence"] and all(_quoted(body["utterances"], e) for e in kind["evidence"])
    (label,) = part
    assert label["label"] == "conversation.type" and label["value"]["type"] == "sales"
    assert label["component"] == "conversation_type" and label["run_id"]
    summary = body["structured_summary"]
    assert summary["type"] == "sales"
    assert list(summary["fields"]) == [
        "needs", "objections", "competitors", "next_steps", "commitments",
    ]  # fmt: skip
    assert [c["name"] for c in summary["fields"]["competitors"]] == ["Contoso"]
    assert any("Contoso" in o["text"] for o in summary["fields"]["objections"])
    assert summary["fields"]["needs"] and summary["fields"]["next_steps"]
    assert "Contoso" in summary["overview"] and "Uh" not in summary["overview"]
    _check_fields_rest_on_their_words(body)
    # No support-only labels on a sales call: no resolution, escalation nor churn risk.
    assert body["resolution"] == []
    assert "churn_risk" not in {s["value"]["signal"] for s in body["signals"]}


def test_meeting_has_topics_decisions_action_items_and_no_support_labels(
    analysed: Analysed,
) -> None:
    with _client(analysed, "admin") as admin:
        body = admin.get(f"/v1/conversations/{MEETING}").raise_for_status().json()
    assert body["conversation_type"]["type"] == "meeting"
    assert body["conversation_type"]["overridden"] is False
    summary = body["structured_summary"]
    assert summary["type"] == "meeting" and summary["overview"]
    fields = summary["fields"]
    assert list(fields) == ["topics", "decisions", "action_items", "open_questions"]
    (topic, *_) = fields["topics"]
    assert topic["title"] and 0 <= topic["start_time"] < topic["end_time"]
    assert fields["action_items"] and all(a["owner"] for a in fields["action_items"])
    _check_fields_rest_on_their_words(body)
    assert body["resolution"] == []
    stored = {row["label"] for name in PARTS if name in body for row in body[name]}
    assert "summary.extractive" in stored and not stored & SUPPORT_ONLY


def test_support_call_keeps_its_support_fields_and_resolution(analysed: Analysed) -> None:
    """The control: a support call still gets its resolution and the support fields."""
    with _client(analysed, "admin") as admin:
        body = (
            admin.get(
                f"/v1/conversations/{SUPPORT_CALL}", params={"parts": "type,summary,resolution"}
            )
            .raise_for_status()
            .json()
        )
    assert body["conversation_type"]["type"] == "support"
    assert list(body["structured_summary"]["fields"]) == [
        "reason", "actions_taken", "outcome", "next_steps",
    ]  # fmt: skip
    assert "locked out" in body["structured_summary"]["fields"]["reason"][0]["text"]
    assert {r["label"] for r in body["resolution"]} >= {"resolution.status"}
    assert "sentiment" not in body  # parts not asked for stay absent
    _check_fields_rest_on_their_words(body)


def test_override_per_source_is_reported(analysed: Analysed) -> None:
    with _client(analysed, "analyst") as analyst:
        body = (
            analyst.get(f"/v1/conversations/{OVERRIDDEN}", params={"parts": "type,summary"})
            .raise_for_status()
            .json()
        )
    kind = body["conversation_type"]
    assert kind["type"] == "sales" and kind["overridden"] is True and kind["confidence"] == 1.0
    assert kind["reasons"] == ["configured for tag 'security-review'"]
    assert body["structured_summary"]["type"] == "sales"


def test_list_filters_by_type_within_each_keys_scope(analysed: Analysed) -> None:
    def ids(role: str, kind: str) -> set[str]:
        with _client(analysed, role) as client:
            found = client.get("/v1/conversations", params={"type": kind}).raise_for_status()
        items = found.json()["items"]
        assert {i["conversation_type"] for i in items} <= {kind}
        return {i["conversation_id"] for i in items}

    assert ids("analyst", "sales") == {SALES_CALL, OVERRIDDEN}
    assert ids("analyst", "meeting") == {MEETING}
    assert ids("analyst", "support") == {SUPPORT_CALL}
    assert ids("agent", "support") == {SUPPORT_CALL} and ids("agent", "sales") == set()
    with _client(analysed, "analyst") as analyst:
        bad = analyst.get("/v1/conversations", params={"type": "webinar"})
    assert bad.status_code == 422


def test_roles_agent_sees_own_viewer_sees_no_text(analysed: Analysed) -> None:
    with _client(analysed, "agent") as agent:
        assert agent.get(f"/v1/conversations/{SALES_CALL}/type").status_code == 404
        assert agent.get(f"/v1/conversations/{MEETING}").status_code == 404
        own = agent.get(f"/v1/conversations/{SUPPORT_CALL}", params={"parts": "type,summary"})
        assert own.status_code == 200 and own.json()["conversation_type"]["type"] == "support"
    with _client(analysed, "viewer") as viewer:
        for path in (
            f"/v1/conversations/{SALES_CALL}",
            f"/v1/conversations/{SALES_CALL}/type",
            f"/v1/conversations/{SALES_CALL}/summary",
            "/v1/conversations?type=sales",
        ):
            response = viewer.get(path)
            assert response.status_code == 403 and "Contoso" not in response.text, path
    cookie = {"convolens_dashboard_key": analysed.keys["viewer"]}
    with httpx.Client(base_url=analysed.server.url, cookies=cookie) as browser:
        page = browser.get(f"/dashboard/conversations/{SALES_CALL}")
        assert page.status_code == 403 and "Contoso" not in page.text


def test_sdk_reads_type_and_structured_summary(analysed: Analysed) -> None:
    with Client(analysed.server.url, analysed.keys["analyst"]) as client:
        result = client.conversation(SALES_CALL, parts=["type", "summary"])
        assert result.conversation_type is not None and result.conversation_type.type == "sales"
        assert result.structured_summary is not None
        (competitor,) = result.structured_summary.fields["competitors"]
        assert competitor.name == "Contoso" and result.text(competitor.evidence[0]) == "Contoso"
        assert result.labels("conversation.type")[0].value["type"] == "sales"
        assert result.sentiment is None  # not asked for
        listed = client.conversations(conversation_type="meeting")
        assert [c.conversation_id for c in listed.items] == [MEETING]
        assert listed.items[0].conversation_type == "meeting"


def test_openapi_types_the_new_blocks(analysed: Analysed) -> None:
    with analysed.server.client(None) as anonymous:
        spec = anonymous.get("/openapi.json").raise_for_status().json()
    schemas = spec["components"]["schemas"]
    props = schemas["ConversationOut"]["properties"]
    assert {"type", "conversation_type", "structured_summary"} <= set(props)
    assert schemas["ConversationTypeInfo"]["properties"]["confidence"]
    item = schemas["SummaryItem"]
    assert set(item["required"]) == {"text", "utterance_id", "start", "end"}
    fields = schemas["StructuredSummary"]["properties"]["fields"]
    assert fields["additionalProperties"]["items"]["$ref"].endswith("/SummaryItem")


def _open(page: Any, cid: str) -> None:
    page.goto(f"/dashboard/conversations/{cid}")
    page.wait_for_selector("#type-summary")


def test_conversation_page_shows_type_fields_and_jumps_to_evidence(analysed: Analysed) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page = sign_in(browser, analysed.server, analysed.keys["analyst"])
        _open(page, SALES_CALL)
        expect(page.locator("#conversation-type")).to_have_text("Sales conversation")
        expect(page.locator("#type-confidence")).to_contain_text("% confidence")
        expect(page.locator("#type-override")).to_have_count(0)
        expect(page.locator("#overview")).to_contain_text("Contoso")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # for a person to look at
        page.locator("#type-summary").screenshot(path=str(SCREENSHOTS / "type-summary-sales.png"))
        headings = page.locator("#type-summary .summary-field h3").all_text_contents()
        assert headings == ["Needs", "Objections", "Competitors", "Next steps", "Commitments"]
        # No resolution card on a sales call (support-only).
        expect(page.locator("#resolution")).to_have_count(0)
        link = page.locator("[data-field=competitors] a.field-ev").first
        target = link.get_attribute("href")
        assert target and re.fullmatch(r"#u-\d+", target)
        link.click()
        page.wait_for_url(f"**/dashboard/conversations/{SALES_CALL}{target}")
        utterance = page.locator(target)
        expect(utterance).to_be_in_viewport()
        expect(utterance).to_contain_text("Contoso")
        assert page.evaluate("document.querySelector(':target').id") == target[1:]

        _open(page, MEETING)
        expect(page.locator("#conversation-type")).to_have_text("Meeting")
        headings = page.locator("#type-summary .summary-field h3").all_text_contents()
        assert headings == ["Topics", "Decisions", "Action items", "Open questions"]
        expect(page.locator("[data-field=topics] .topic-range").first).to_contain_text("–")
        expect(page.locator("[data-field=action_items] .field-owner").first).to_be_visible()
        page.locator("#type-summary").screenshot(path=str(SCREENSHOTS / "type-summary-meeting.png"))
        expect(page.locator("#resolution")).to_have_count(0)
        expect(page.locator(".insight-group[data-kind=resolution]")).to_have_count(0)

        _open(page, OVERRIDDEN)
        expect(page.locator("#conversation-type")).to_have_text("Sales conversation")
        expect(page.locator("#type-override")).to_contain_text("security-review")
        page.context.close()


def test_agent_page_shows_own_support_call_only(analysed: Analysed) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page = sign_in(browser, analysed.server, analysed.keys["agent"])
        _open(page, SUPPORT_CALL)
        expect(page.locator("#conversation-type")).to_have_text("Support conversation")
        expect(page.locator("#resolution")).to_be_visible()
        headings = page.locator("#type-summary .summary-field h3").all_text_contents()
        assert headings == ["Reason for contact", "What was done", "Outcome", "Next steps"]
        other = page.goto(f"/dashboard/conversations/{SALES_CALL}")
        assert other is not None and other.status == 404
        assert "Contoso" not in page.content()
        page.context.close()


def test_conversation_list_filters_by_type(analysed: Analysed) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page = sign_in(browser, analysed.server, analysed.keys["analyst"])
        page.goto("/dashboard/conversations")
        expect(page.locator("#total")).to_have_text("4 found")
        options = page.locator("select[name=type] option").all_text_contents()
        assert options == ["any", "meeting", "sales", "support"]
        page.select_option("select[name=type]", "sales")
        page.click("#filters button[type=submit]")
        expect(page.locator("#total")).to_have_text("2 found")
        rows = page.locator("#conversation-list tbody tr")
        assert {rows.nth(i).get_attribute("data-id") for i in range(2)} == {SALES_CALL, OVERRIDDEN}
        assert set(page.locator("td.conversation-type").all_text_contents()) == {"sales"}
        assert "type=sales" in page.url
        page.context.close()
