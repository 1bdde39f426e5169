"""The taxonomy versions page and the erasure & retention page in a real browser on a real
server over a labelled copy of the sample corpus: propose -> validate (a job) -> activate
with the figures accepted; retention run now; erasure previewed, then confirmed; forged
posts (no CSRF token) refused; who may open and post each page."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import ROOT, Server, chromium, role_keys, sign_in, wait_job

from convolens.client import Client
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "review"))
from review_corpus import build

SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
EMAIL = "erase.me.dashboard@example.org"
ERASED = ("gov-erase-1", "gov-erase-2")  # two chats of the person
KEPT, EXPIRED, LATE_EXPIRED = "gov-kept", "gov-expired", "gov-late-expired"
COOKIE = "convolens_dashboard_key"


def _chat(source_id: str, text: str, email: str | None) -> dict[str, Any]:
    customer: dict[str, Any] = {"id": "c", "name": "Customer", "role": "customer"}
    if email:
        customer["email"] = email
    return {
        "id": source_id,
        "channel": "chat",
        "started_at": "2026-11-20T10:00:00Z",
        "participants": [customer, {"id": "a", "name": "Agent", "role": "agent"}],
        "messages": [
            {"author": "c", "text": text, "sent_at": "2026-11-20T10:00:00Z"},
            {"author": "a", "text": "Thanks, on it.", "sent_at": "2026-11-20T10:01:00Z"},
        ],
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("governance_pages")
    db = build(folder / "corpus.duckdb")
    chats = folder / "chats.jsonl"
    chats.write_text(
        "\n".join(
            json.dumps(_chat(s, t, e))
            for s, t, e in [
                (ERASED[0], "My order has not arrived.", EMAIL),
                (ERASED[1], f"Please write to {EMAIL} about the refund.", EMAIL),
                (KEPT, "How do I reset my password?", "someone.else@example.org"),
                (EXPIRED, "An old question about invoices.", None),
            ]
        )
    )
    with Warehouse(db) as wh:
        ingest_paths(wh, [chats])
        # Older than the retention the server is given (3,000 days): the run removes it.
        wh.con.execute(
            "UPDATE conversations SET started_at = now() - INTERVAL 4000 DAY WHERE source_id = ?",
            [EXPIRED],
        )
        wh.con.execute("CHECKPOINT")
    chats.unlink()
    server = Server(
        db, folder / "server.log", CONVOLENS_PRELOAD="0",
        CONVOLENS_RETENTION_TEXT_DAYS="3000",
        # Applied only when asked (the first scheduled run is this far off).
        CONVOLENS_RETENTION_INTERVAL_S="86400",
    ).start()  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keys(served: Server) -> dict[str, str]:
    return role_keys(served, name="gov")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _peek(server: Server, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    # The server holds the warehouse: read what it stored through a read-only copy.
    copy = server.db.with_name("peek.duckdb")
    shutil.copy(server.db, copy)
    wal = server.db.with_name(server.db.name + ".wal")
    copy_wal = copy.with_name(copy.name + ".wal")
    copy_wal.unlink(missing_ok=True)
    if wal.exists():  # rows not yet checkpointed into the file
        shutil.copy(wal, copy_wal)
    with Warehouse(copy, read_only=True) as db:
        return db.query(sql, params or [])


def _sources(server: Server) -> set[str]:
    return {r["source_id"] for r in _peek(server, "SELECT source_id FROM conversations")}


@contextmanager
def _session(server: Server, key: str, page: str) -> Iterator[tuple[httpx.Client, str]]:
    """A signed-in client and its CSRF token (set by the first page it opens)."""
    with httpx.Client(base_url=server.url, timeout=60, headers={"Origin": server.url}) as client:
        client.cookies.set(COOKIE, key)
        client.get(page)
        yield client, client.cookies.get("convolens_csrf") or ""


def test_retention_and_erasure_from_the_page(
    served: Server, keys: dict[str, str], browser: Any
) -> None:
    # The server's own schedule runs once ~30 s after its start and takes EXPIRED; a
    # conversation that old submitted after that run is what "Run retention now" takes.
    deadline = time.monotonic() + 120
    while "retention:" not in served.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert EXPIRED not in _sources(served)
    old = _chat(LATE_EXPIRED, "Another old question about invoices.", None)
    old["started_at"] = (datetime.now(UTC) - timedelta(days=4000)).isoformat()
    with served.client() as api:
        submitted = api.post("/v1/conversations", json=old)
        assert submitted.status_code == 202, submitted.text
        assert wait_job(api, submitted.json()["job_id"])["status"] == "completed"
    assert {*ERASED, KEPT, LATE_EXPIRED} <= _sources(served)
    page = sign_in(browser, served, keys["admin"])
    assert page.locator("header nav a[data-page=erasure]").count() == 1
    page.click("header nav a[data-page=erasure]")
    assert page.inner_text("#retention-policy tr[data-layer=text] td") == "3000 days"
    assert page.inner_text("#retention-policy tr[data-layer=raw] td") == "forever"

    page.click("#form-retention button[type=submit]")
    page.wait_for_selector("#retention-report")
    assert re.match(r"Removed 1 conversation\(s\)", page.inner_text("#retention-report"))
    sources = _sources(served)
    assert LATE_EXPIRED not in sources and {*ERASED, KEPT} <= sources

    # A dry run first: counts, nothing removed.
    page.fill("#form-erasure-preview input[name=email]", EMAIL)
    page.click("#form-erasure-preview button[type=submit]")
    page.wait_for_selector("#erasure-preview")
    assert page.get_attribute("#erasure-preview", "data-conversations") == "2"
    assert "2 conversation(s)" in page.inner_text("#erasure-preview")
    assert {*ERASED, KEPT} <= _sources(served)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "erasure-preview.png"), full_page=True)

    page.click("#form-erasure-confirm button[type=submit]")
    page.wait_for_selector("#erasure-receipt")
    receipt = page.inner_text("#erasure-receipt")
    assert page.get_attribute("#erasure-receipt", "data-conversations") == "2"
    assert EMAIL not in receipt and EMAIL not in page.content()
    sources = _sources(served)
    assert not set(ERASED) & sources and KEPT in sources
    [row] = _peek(
        served,
        "SELECT actor_name, via, CAST(details AS VARCHAR) AS details FROM audit_log "
        "WHERE action = 'erasure' AND target_id = ?",
        [page.get_attribute("#erasure-receipt", "data-erasure")],
    )
    assert row["via"] == "dashboard" and EMAIL not in row["details"]
    # Once more: nothing of theirs is left to find.
    page.fill("#form-erasure-preview input[name=email]", EMAIL)
    page.click("#form-erasure-preview button[type=submit]")
    page.wait_for_selector("#erasure-preview")
    assert page.get_attribute("#erasure-preview", "data-conversations") == "0"
    page.context.close()


def test_erasure_needs_an_admin_the_token_and_a_confirmation(
    served: Server, keys: dict[str, str]
) -> None:
    with _session(served, keys["admin"], "/dashboard/erasure") as (admin, token):
        forged = admin.post("/dashboard/erasure", data={"email": "a@b.org", "confirm": "yes"})
        assert forged.status_code == 403 and "Form refused" in forged.text
        forged = admin.post("/dashboard/retention/run", data={})
        assert forged.status_code == 403 and "Form refused" in forged.text
        unconfirmed = admin.post(
            "/dashboard/erasure", data={"email": "someone.else@example.org", "csrf_token": token}
        )
        assert unconfirmed.status_code == 422 and "confirm" in unconfirmed.text
        nobody = admin.post("/dashboard/erasure/preview", data={"csrf_token": token})
        assert nobody.status_code == 422 and "name the person" in nobody.text
        assert "Traceback" not in nobody.text
    assert KEPT in _sources(served)
    for role in ("analyst", "agent", "viewer"):
        with _session(served, keys[role], "/dashboard/") as (client, token):
            assert client.get("/dashboard/erasure").status_code == 403
            for target in ("/dashboard/erasure", "/dashboard/erasure/preview"):
                refused = client.post(
                    target, data={"email": "someone.else@example.org", "confirm": "yes",
                                  "csrf_token": token},
                )  # fmt: skip
                assert refused.status_code == 403, (role, target)
            ran = client.post("/dashboard/retention/run", data={"csrf_token": token})
            assert ran.status_code == 403
            assert 'data-page="erasure"' not in client.get("/dashboard/").text
    assert KEPT in _sources(served)


def _review_intents(server: Server, key: str) -> int:
    """An analyst relabels a few intent labels: the corrections a draft is made from."""
    with Client(server.url, api_key=key) as analyst:
        batch = analyst.review_sample(
            component="intents", label="intent.utterance", per_value=1, low_confidence=0,
            disagreement=0, second_share=0.0, seed=3,
        )  # fmt: skip
        corrected = 0
        while (item := analyst.review_next(batch.batch_id)) is not None:
            if item.value != "how_to" and corrected < 3:
                analyst.review(item.item_id, "correct", corrected_value="how_to")
                corrected += 1
            else:
                analyst.review(item.item_id, "accept")
    return corrected


def test_taxonomy_propose_validate_activate(
    served: Server, keys: dict[str, str], browser: Any
) -> None:
    corrected = _review_intents(served, keys["analyst"])
    assert corrected == 3
    page = sign_in(browser, served, keys["admin"])
    page.click("header nav a[data-page=taxonomies]")
    before = {s.get_attribute("data-version") for s in page.locator("section.taxonomy").all()}
    page.click("#form-propose button[type=submit]")
    page.wait_for_selector("section.taxonomy[data-status=draft]")
    draft = page.locator("section.taxonomy[data-status=draft]").first
    version = draft.get_attribute("data-version")
    assert version not in before
    # No figures yet: nothing to accept, so no activate form.
    assert draft.locator("form.form-activate").count() == 0

    draft.locator("input[name=folds]").fill("2")
    draft.locator("form.form-validate button[type=submit]").click()
    section = f"section.taxonomy[data-version='{version}']"
    page.wait_for_selector(f"{section} .job")  # the job's progress shows while it runs
    # The page refreshes itself while the job runs; the figures replace the progress.
    page.wait_for_selector(f"{section}[data-status=validated] table.figures", timeout=600_000)
    assert page.inner_text(f"{section} .job b") == "completed"
    draft_accuracy = page.inner_text(f"{section} .draft-accuracy")
    assert re.fullmatch(r"\d{1,3}%", draft_accuracy)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "taxonomy-validated.png"), full_page=True)

    # Activate needs the box ticked: the browser will not send the form without it.
    page.click(f"{section} form.form-activate button[type=submit]")
    assert page.locator(f"{section}[data-status=validated]").count() == 1
    page.check(f"{section} form.form-activate input[name=accept]")
    page.click(f"{section} form.form-activate button[type=submit]")
    page.wait_for_selector(f"{section}[data-status=active]")
    assert page.inner_text(f"{section} .approver")
    assert page.locator("section.taxonomy[data-status=active]").count() == 1
    page.context.close()

    with Client(served.url, api_key=keys["admin"]) as admin:
        stored = {v.version: v for v in admin.taxonomy_versions()}
    active = [v for v in stored.values() if v.active]
    assert [v.version for v in active] == [int(version)]
    assert active[0].approved_by and (active[0].validation or {}).get("figures")


def test_taxonomy_steps_need_an_admin_and_the_token(served: Server, keys: dict[str, str]) -> None:
    with _session(served, keys["admin"], "/dashboard/taxonomies") as (admin, token):
        forged = admin.post("/dashboard/taxonomies/propose", data={})
        assert forged.status_code == 403 and "Form refused" in forged.text
        versions = admin.get(
            "/v1/review/taxonomies", headers={"Authorization": f"Bearer {keys['admin']}"}
        ).json()
        latest = max(v["version"] for v in versions)
        forged = admin.post(f"/dashboard/taxonomies/{latest}/activate", data={"accept": "yes"})
        assert forged.status_code == 403 and "Form refused" in forged.text
        unticked = admin.post(
            f"/dashboard/taxonomies/{latest}/activate", data={"csrf_token": token}
        )
        assert unticked.status_code == 422 and "I have read these figures" in unticked.text
    with _session(served, keys["analyst"], "/dashboard/taxonomies") as (analyst, token):
        page = analyst.get("/dashboard/taxonomies")
        assert page.status_code == 200 and 'section class="panel taxonomy"' in page.text
        assert 'id="form-propose"' not in page.text and "form-validate" not in page.text
        assert 'data-page="taxonomies"' in page.text
        refused = analyst.post("/dashboard/taxonomies/propose", data={"csrf_token": token})
        assert refused.status_code == 403
        refused = analyst.post(
            f"/dashboard/taxonomies/{latest}/validate", data={"csrf_token": token, "folds": "2"}
        )
        assert refused.status_code == 403
    for role in ("agent", "viewer"):
        with _session(served, keys[role], "/dashboard/") as (client, token):
            assert client.get("/dashboard/taxonomies").status_code == 403
            refused = client.post("/dashboard/taxonomies/propose", data={"csrf_token": token})
            assert refused.status_code == 403
            assert 'data-page="taxonomies"' not in client.get("/dashboard/").text
