"""The audit trail through a real server: each audited action leaves one row with who,
what, which target, the request id and the outcome; refusals are recorded too; no row
holds conversation text or a secret; only admins read it (API, dashboard, browser)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import ADMIN_KEY, Server, role_keys, unlabelled_server, wait_job

CHROMIUM = Path(os.environ.get("CONVOLENS_CHROMIUM", "/usr/bin/chromium"))
TEXT = "My parcel with the teal umbrella never arrived at the depot."
COOKIE = "convolens_dashboard_key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with unlabelled_server(tmp_path_factory.mktemp("audit")) as running:
        yield running


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    return role_keys(server, agent="Dana Ruiz", name="audit")


def _chat(source_id: str) -> dict[str, Any]:
    return {
        "id": source_id,
        "channel": "chat",
        "agent": "Dana Ruiz",
        "participants": [
            {"id": "c", "name": "Customer", "role": "customer"},
            {"id": "a", "name": "Dana Ruiz", "role": "agent"},
        ],
        "messages": [{"author": "c", "text": TEXT}, {"author": "a", "text": "Checking now."}],
    }


def _rows(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = admin.get("/v1/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def _one(rows: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    found = [r for r in rows if r["request_id"] == request_id]
    assert len(found) == 1, (request_id, [r["action"] for r in rows[:10]])
    return found[0]


def test_each_action_leaves_one_row(server: Server, keys: dict[str, str]) -> None:
    made: dict[str, tuple[httpx.Response, str, str | None]] = {}  # action -> response
    with server.client() as admin, server.client(keys["analyst"]) as analyst:
        submitted = admin.post("/v1/conversations", json=_chat("audit-1"))
        cid = submitted.json()["conversation_id"]
        assert wait_job(admin, submitted.json()["job_id"])["status"] == "completed"
        made["conversation.submit"] = (submitted, "admin", cid)
        made["conversation.read"] = (analyst.get(f"/v1/conversations/{cid}"), "analyst", cid)
        raw = admin.get(f"/v1/conversations/{cid}/raw", params={"confirm": "true"})
        made["raw.read"] = (raw, "admin", cid)
        key = admin.post("/v1/keys", json={"name": "temp", "role": "viewer"})
        key_id = key.json()["key_id"]
        made["key.create"] = (key, "admin", key_id)
        made["key.revoke"] = (admin.delete(f"/v1/keys/{key_id}"), "admin", key_id)
        trackers = admin.post(
            "/v1/definitions/trackers",
            json={"content": [{"name": "parcel_words", "phrases": ["parcel"]}]},
        )
        made["trackers.create"] = (trackers, "admin", None)
        hook = admin.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "events": ["*"]})
        hook_id = hook.json()["hook_id"]
        made["webhook.create"] = (hook, "admin", hook_id)
        made["webhook.delete"] = (admin.delete(f"/v1/webhooks/{hook_id}"), "admin", hook_id)
        score = admin.post("/v1/scorecards/score", json={})
        assert wait_job(admin, score.json()["job_id"])["status"] == "completed"
        made["scorecard.score"] = (score, "admin", score.json()["job_id"])
        review = analyst.post(
            f"/v1/scorecards/conversations/{cid}/review",
            json={
                "scorecard": "support",
                "outcomes": [{"criterion": "greeting", "outcome": "pass"}],
            },
        )
        made["scorecard.review"] = (review, "analyst", cid)
        made["retention.run"] = (admin.post("/v1/retention/run"), "admin", None)
        erased = admin.post("/v1/erasure", json={"email": "nobody@audit-test.example"})
        made["erasure"] = (erased, "admin", erased.json()["erasure_id"])
        made["conversation.delete"] = (admin.delete(f"/v1/conversations/{cid}"), "admin", cid)
        made["audit.export"] = (admin.get("/v1/audit", params={"format": "csv"}), "admin", None)
        made["audit.read"] = (admin.get("/v1/audit"), "admin", None)
        rows = _rows(admin)
        names = {"admin": "admin (from environment)", "analyst": "audit analyst"}
        for action, (response, role, target) in made.items():
            assert response.is_success, (action, response.status_code, response.text)
            row = _one(rows, response.headers["x-request-id"])
            assert (row["action"], row["outcome"], row["actor_role"]) == (action, "ok", role)
            assert row["actor_name"] == names[role] and row["via"] == "api"
            if target is not None:
                assert row["target_id"] == target, (action, row)
        assert (
            made["trackers.create"][0].json()["name"]
            in _one(rows, made["trackers.create"][0].headers["x-request-id"])["target_id"]
        )
        receipt = _one(rows, made["erasure"][0].headers["x-request-id"])["details"]
        assert receipt["conversations"] == 0 and receipt["identifiers"] == ["email"]
        deleted = _one(rows, made["conversation.delete"][0].headers["x-request-id"])
        assert deleted["route"] == "DELETE /v1/conversations/{conversation_id}"
        # A client's own request id is kept (a plain token only).
        mine = admin.get("/v1/audit", headers={"X-Request-ID": "trace-42"})
        assert mine.headers["x-request-id"] == "trace-42"
        odd = admin.get("/v1/audit", headers={"X-Request-ID": "bad id\twith space"})
        assert odd.headers["x-request-id"] != "bad id\twith space"
        # Filters.
        keys_only = _rows(admin, action="key.")
        assert {r["action"] for r in keys_only} == {"key.create", "key.revoke"}
        assert all(r["actor_name"] == names["analyst"] for r in _rows(admin, actor="audit analyst"))


def test_refusals_are_recorded_with_a_hashed_target(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["viewer"]) as viewer, server.client() as admin:
        refused = viewer.get("/v1/conversations/someone@example.org/raw?confirm=true")
        assert refused.status_code == 403
        nobody = httpx.get(f"{server.url}/v1/audit", timeout=30)
        assert nobody.status_code == 401
        rows = _rows(admin)
        row = _one(rows, refused.headers["x-request-id"])
        assert row["action"] == "raw.read" and row["outcome"] == "denied" and row["status"] == 403
        assert row["actor_role"] == "viewer" and row["target_id"].startswith("sha256:")
        anonymous = _one(rows, nobody.headers["x-request-id"])
        assert anonymous["outcome"] == "denied" and anonymous["actor_key_id"] is None
        assert "someone@example.org" not in json.dumps(rows)


def test_no_text_or_secret_in_the_log(server: Server) -> None:
    with server.client() as admin:
        accepted = admin.post("/v1/conversations", json=_chat("audit-2"))
        assert wait_job(admin, accepted.json()["job_id"])["status"] == "completed"
        cid = accepted.json()["conversation_id"]
        assert TEXT in admin.get(f"/v1/conversations/{cid}/utterances").text
        key = admin.post("/v1/keys", json={"name": "secret test", "role": "viewer"}).json()["key"]
        hook = admin.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["*"]})
        secret = hook.json()["secret"]
        log = admin.get("/v1/audit", params={"format": "csv", "limit": 100000}).text
        assert "conversation.read" in log and "key.create" in log
        for needle in (TEXT[:30], key, key.rsplit("_", 1)[1], secret, ADMIN_KEY):
            assert needle not in log


@pytest.mark.parametrize("role", ["analyst", "agent", "viewer"])
def test_only_admins_read_the_log(server: Server, keys: dict[str, str], role: str) -> None:
    with server.client(keys[role]) as client:
        assert client.get("/v1/audit").status_code == 403
        assert client.get("/v1/audit", params={"format": "csv"}).status_code == 403
        assert client.post("/v1/erasure", json={"email": "x@y.example"}).status_code == 403
        assert client.post("/v1/retention/run").status_code == 403
    cookies = {COOKIE: keys[role]}
    for page in ("/dashboard/audit", "/dashboard/audit.csv"):
        response = httpx.get(server.url + page, cookies=cookies, timeout=30)
        assert response.status_code == 403 and "audit_id" not in response.text


def test_dashboard_sign_in_and_audit_page_in_a_browser(
    server: Server, keys: dict[str, str]
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for role in ("analyst", "admin"):
                context = browser.new_context(base_url=server.url)
                page = context.new_page()
                page.goto("/dashboard/login")
                page.fill("#api_key", keys[role])
                page.click("form[action='/dashboard/login'] button[type=submit]")
                page.wait_for_url("**/dashboard/")
                link = page.locator("nav a[data-page='audit']")
                if role == "analyst":
                    assert link.count() == 0  # not in the analyst's navigation
                    assert page.goto("/dashboard/audit").status == 403
                    context.close()
                    continue
                link.click()
                page.wait_for_url("**/dashboard/audit**")
                logins = page.locator("#audit-log tr[data-action='dashboard.login']")
                assert logins.count() >= 2  # the analyst's sign-in and this one
                assert "audit analyst" in page.locator("#audit-log").inner_text()
                page.select_option("select[name=action]", "dashboard.login")
                page.click("#audit-filters button[type=submit]")
                page.wait_for_url("**action=dashboard.login**")
                actions = page.locator("#audit-log tbody tr").evaluate_all(
                    "rows => rows.map(r => r.dataset.action)"
                )
                assert actions and set(actions) == {"dashboard.login"}
                href = page.locator("#audit-csv").get_attribute("href")
                assert href == "/dashboard/audit.csv?action=dashboard.login"
                exported = context.request.get(href)
                assert exported.status == 200 and exported.text().startswith("audit_id,")
                context.close()
        finally:
            browser.close()
    with server.client() as admin:
        rows = _rows(admin, via="dashboard")
        logins = [r for r in rows if r["action"] == "dashboard.login" and r["outcome"] == "ok"]
        assert {r["actor_role"] for r in logins} >= {"admin", "analyst"}
        assert any(r["action"] == "audit.export" for r in rows)
        assert any(r["action"] == "audit.read" and r["outcome"] == "denied" for r in rows)


def test_sdk_governance_calls(server: Server, keys: dict[str, str]) -> None:
    from convolens.client import ApiError, Client

    with Client(server.url, ADMIN_KEY) as api:
        made = api.erase_person(email="nobody@sdk-test.example", phone="+44 20 7946 0000")
        assert made.conversations == 0 and made.identifiers == ["email", "phone"]
        assert api.retention()["aggregates"] == "forever"
        assert api.retention_run().conversations == 0
        erasures = api.audit(action="erasure", limit=5)
        assert erasures[0].target_id == made.erasure_id and erasures[0].actor_role == "admin"
        assert {e.action for e in api.audit(action="retention.")} == {"retention.run"}
    with Client(server.url, keys["analyst"]) as analyst:
        with pytest.raises(ApiError) as refused:
            analyst.audit()
        assert refused.value.status == 403
