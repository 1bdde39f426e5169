"""Intake data health on the sample corpus: a few ingest runs teach each source's fields
and fill rates, then a run with a renamed column and the agent left blank is reported in
the run's report, the `data_health_findings` rows, the CLI, the API and the dashboard page.

The runs are the sample's chat export (examples/csv/chat_export.csv, six conversations)
under new conversation ids per run, as a daily export of the same system would arrive.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from convolens.cli import app
from convolens.client import Client
from convolens.health.intake import record_fields
from convolens.health.intake_checks import binomial_cdf
from convolens.ingest.base import RawRecord
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "service"))
from live_server import Receiver, Server, role_keys, unlabelled_server, wait_job  # noqa: E402

CHAT_EXPORT = ROOT / "examples" / "chats" / "support_chats.jsonl"
CSV_EXPORT = ROOT / "examples" / "csv" / "chat_export.csv"
COOKIE = "convolens_dashboard_key"
runner = CliRunner(env={"COLUMNS": "200"})


def _rows() -> list[dict[str, str]]:
    with CSV_EXPORT.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _history(wh: Warehouse, folder: Path, runs: int = 3) -> None:
    for k in range(runs):
        rows = [{**r, "conversation_id": f"{r['conversation_id']}-day{k}"} for r in _rows()]
        report = ingest_paths(wh, [_write_csv(folder / f"export-day{k}.csv", rows)])
        assert report.conversations == 6 and not report.rejects
        assert report.health == [], [f.message for f in report.health]


def _drifted_export(folder: Path) -> Path:
    """The next day's export: account_id renamed to `account`, the agent column empty."""
    rows = []
    for r in _rows():
        row = {**r, "conversation_id": f"{r['conversation_id']}-day3", "agent": ""}
        rows.append({("account" if k == "account_id" else k): v for k, v in row.items()})
    return _write_csv(folder / "export-day3.csv", rows)


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("intake")
    db = folder / "w.duckdb"
    with Warehouse(db) as wh:
        _history(wh, folder)
        report = ingest_paths(wh, [_drifted_export(folder)])
        # The export is still read: data health reports, it does not reject.
        assert report.conversations == 6 and not report.rejects
        found = {(f.check_name, f.field): f for f in report.health}
        assert set(found) == {
            ("schema_missing_field", "account_id"),
            ("schema_new_field", "account"),
            ("fill_rate_drop", "canonical:account_id"),
            ("fill_rate_drop", "agent"),
        }, [f.message for f in report.health]
        missing = found[("schema_missing_field", "account_id")]
        assert "new beside it: account" in missing.message
        assert missing.expected == 1.0 and missing.observed == 0.0
        agent = found[("fill_rate_drop", "agent")]
        assert (agent.observed, agent.expected) == (0.0, 1.0)
        assert all(f.source == "csv/csv" and f.run_id == report.run_id for f in report.health)
    yield db, report.run_id


def test_run_report_and_rows(drifted: tuple[Path, str]) -> None:
    db, run_id = drifted
    with Warehouse(db, read_only=True) as wh:
        rows = wh.query(
            "SELECT check_name, field FROM data_health_findings WHERE run_id = ? ORDER BY 1, 2",
            [run_id],
        )
        profiles = wh.query("SELECT records, fill FROM intake_profiles ORDER BY created_at")
    assert [(r["check_name"], r["field"]) for r in rows] == [
        ("fill_rate_drop", "agent"),
        ("fill_rate_drop", "canonical:account_id"),
        ("schema_missing_field", "account_id"),
        ("schema_new_field", "account"),
    ]
    assert [p["records"] for p in profiles] == [6, 6, 6, 6]
    assert json.loads(profiles[-1]["fill"])["account_id"] == 0
    assert json.loads(profiles[0]["fill"])["account_id"] == 6


def test_cli_lists_and_exports(drifted: tuple[Path, str]) -> None:
    db, run_id = drifted
    result = runner.invoke(app, ["health", "--db", str(db), "--run", run_id, "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.output)))
    assert {(r["check_name"], r["field"]) for r in table} == {
        ("schema_missing_field", "account_id"),
        ("schema_new_field", "account"),
        ("fill_rate_drop", "canonical:account_id"),
        ("fill_rate_drop", "agent"),
    }
    result = runner.invoke(app, ["health", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 4
    result = runner.invoke(app, ["health", "--db", str(db)])
    assert result.exit_code == 0 and "is missing from all 6 records" in result.output
    result = runner.invoke(app, ["health", "--db", str(db), "--sources"])
    assert result.exit_code == 0 and "csv/csv: 4 runs, 24 records" in result.output
    result = runner.invoke(app, ["health", "--db", str(db), "--check", "nonsense"])
    assert result.exit_code == 2 and "unknown check 'nonsense'" in result.output


def test_api_and_page(drifted: tuple[Path, str], tmp_path: Path) -> None:
    db, run_id = drifted
    server = Server(db, tmp_path / "server.log", CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0")
    server.start()
    try:
        keys = role_keys(server, name="health")
        with server.client(keys["viewer"]) as viewer:
            found = viewer.get("/v1/data-health", params={"run_id": run_id}).json()
            assert {(f["check_name"], f["field"]) for f in found} == {
                ("schema_missing_field", "account_id"),
                ("schema_new_field", "account"),
                ("fill_rate_drop", "canonical:account_id"),
                ("fill_rate_drop", "agent"),
            }
            exported = viewer.get("/v1/data-health", params={"format": "csv"})
            assert exported.headers["content-type"].startswith("text/csv")
            assert "schema_missing_field,account_id" in exported.text
            only = viewer.get("/v1/data-health", params={"check": "fill_rate_drop"}).json()
            assert {f["field"] for f in only} == {"agent", "canonical:account_id"}
            assert viewer.get("/v1/data-health", params={"check": "x"}).status_code == 422
            sources = viewer.get("/v1/data-health/sources").json()
            assert [s["source"] for s in sources] == ["csv/csv"]
            expected = {e["field"]: e for e in sources[0]["expected"]}
            # Learnt from the last ten runs: three full ones, one without account_id.
            assert expected["account_id"]["presence"] == 0.75
            assert expected["canonical:account_id"]["fill_rate"] == 0.75
            assert (expected["agent"]["presence"], expected["agent"]["fill_rate"]) == (1.0, 0.75)
            assert expected["canonical:agent"]["fill_rate"] == 1.0  # the role column says so
        with server.client(keys["agent"]) as agent:
            assert agent.get("/v1/data-health").status_code == 403
        with Client(server.url, keys["analyst"]) as sdk:
            findings = sdk.data_health(run_id=run_id, check="schema_missing_field")
            assert [(f.field, f.expected) for f in findings] == [("account_id", 1.0)]
            assert sdk.data_health_sources()[0].runs == 4
        page = httpx.get(
            f"{server.url}/dashboard/data-health", cookies={COOKIE: keys["viewer"]}, timeout=60
        )
        assert page.status_code == 200
        for text in ("Data health", "Label drift", "is missing from all 6 records", "csv/csv"):
            assert text in page.text
        assert page.text.count('data-check="fill_rate_drop"') == 2
        assert 'data-field="account"' in page.text
        # Alerts: a hook on `data_health` fill-rate drops hears the next drifted export,
        # ingested by the CLI through the server that holds the warehouse.
        receiver = Receiver()
        with server.client() as admin:
            rule = {"check": "fill_rate_drop", "source": "csv/csv", "min_score": 0.5}
            body = {"url": receiver.url, "events": ["data_health"], "rule": rule}
            assert admin.post("/v1/webhooks", json=body).status_code == 201
        folder = tmp_path / "next"
        folder.mkdir()
        export = _drifted_export(folder)
        export.write_text(export.read_text().replace("-day3,", "-day4,"))
        result = runner.invoke(app, ["ingest", str(export), "--db", str(db)])
        assert result.exit_code == 0, result.output
        assert "data health:" in result.output and "'agent' filled in 0%" in result.output
        deadline = time.monotonic() + 30
        while len(receiver.bodies) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        sent = sorted(json.loads(b)["data"]["field"] for b in receiver.bodies)
        assert sent == ["agent", "canonical:account_id"]
    finally:
        server.stop()


def test_upload_job_reports_data_health(tmp_path: Path) -> None:
    """Uploads through the API are ingest runs too: the drifted export's job says so."""
    with unlabelled_server(tmp_path) as server, server.client() as admin:
        for k in range(3):
            rows = [{**r, "conversation_id": f"{r['conversation_id']}-up{k}"} for r in _rows()]
            path = _write_csv(tmp_path / f"up{k}.csv", rows)
            accepted = admin.post("/v1/uploads", files={"file": (path.name, path.read_bytes())})
            job = wait_job(admin, accepted.json()["job_id"])
            assert job["status"] == "completed" and job["result"]["data_health"] == []
        path = _drifted_export(tmp_path)
        accepted = admin.post("/v1/uploads", files={"file": (path.name, path.read_bytes())})
        job = wait_job(admin, accepted.json()["job_id"])
    found = {(f["check_name"], f["field"]) for f in job["result"]["data_health"]}
    assert found == {
        ("schema_missing_field", "account_id"),
        ("schema_new_field", "account"),
        ("fill_rate_drop", "canonical:account_id"),
        ("fill_rate_drop", "agent"),
    }


def test_binomial_tail_matches_scipy() -> None:
    from scipy.stats import binom

    for k, n, p in ((0, 4, 10 / 11), (2, 3, 10 / 11), (5, 20, 0.5), (100, 1000, 0.12)):
        assert binomial_cdf(k, n, p) == pytest.approx(binom.cdf(k, n, p), rel=1e-9)


def test_retyped_field_and_pii_in_a_field(tmp_path: Path) -> None:
    """JSON exports: a field whose type changes, and a field that starts carrying e-mail
    addresses and phone numbers (the PII detector's findings, never the values)."""
    records = [json.loads(line) for line in CHAT_EXPORT.read_text().splitlines()]
    with Warehouse(tmp_path / "w.duckdb") as wh:
        for k in range(3):
            run = [{**r, "id": f"{r['id']}-d{k}"} for r in records if r["meta"].get("csat")]
            path = tmp_path / f"chats-d{k}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in run))
            assert not ingest_paths(wh, [path]).rejects
        changed = []
        for r in records:
            if r["meta"].get("csat"):
                meta = {**r["meta"], "csat": str(r["meta"]["csat"]), "note": "call 415 555 0134"}
                changed.append({**r, "id": f"{r['id']}-d3", "meta": meta})
        changed[0]["meta"]["note"] = "write to dana.whitfield@example.org"
        changed[1]["meta"]["backup"] = "ann.lee@example.com"  # a whole value too
        path = tmp_path / "chats-d3.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in changed))
        report = ingest_paths(wh, [path])
    found = {(f.check_name, f.field): f for f in report.health}
    retyped = found[("schema_retyped_field", "meta.csat")]
    assert "now string" in retyped.message and "(it was number)" in retyped.message
    assert ("schema_new_field", "meta.note") in found
    pii = found[("pii_in_field", "meta.note")]
    assert "PHONE_NUMBER" in pii.message and "EMAIL_ADDRESS" in pii.message
    assert "EMAIL_ADDRESS (1)" in found[("pii_in_field", "meta.backup")].message
    assert "dana" not in json.dumps([f.model_dump(mode="json") for f in report.health])


def test_sample_corpus_raises_no_false_alarms(tmp_path: Path) -> None:
    """The sample corpus's text exports (chats, CSV, e-mail threads, tickets, call and
    meeting transcripts with sidecars): message ids, recording file names, account and
    order ids, authors and addresses are where they belong, so a first run finds nothing."""
    folder = tmp_path / "examples"
    for part in ("chats", "csv", "email", "tickets", "calls"):
        shutil.copytree(ROOT / "examples" / part, folder / part)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        report = ingest_paths(wh, [folder])
        sources = {r["source"] for r in wh.query("SELECT source FROM intake_profiles")}
    assert report.conversations == 44 and not report.rejects
    assert report.health == [], [f.message for f in report.health]
    assert {"email/email", "csv/csv", "zendesk/zendesk", "subtitles/aircall"} <= sources


def test_volume_and_duplicate_surge(tmp_path: Path) -> None:
    rows = _rows()
    with Warehouse(tmp_path / "w.duckdb") as wh:
        _history(wh, tmp_path, runs=4)
        # Seven times the usual volume (the same export under seven id sets).
        big = [
            {**r, "conversation_id": f"{r['conversation_id']}-big{i}"}
            for i in range(7)
            for r in rows
        ]
        report = ingest_paths(wh, [_write_csv(tmp_path / "big.csv", big)])
        volume = [f for f in report.health if f.check_name == "volume_anomaly"]
        assert len(volume) == 1 and volume[0].observed == 42 and volume[0].expected == 6
        # A day's export sent again: nothing new, every record a duplicate.
        again = ingest_paths(wh, [tmp_path / "export-day1.csv"])
        assert again.written.unchanged == 6
        surge = [f for f in again.health if f.check_name == "duplicate_surge"]
        assert len(surge) == 1 and surge[0].observed == 1.0


def test_record_fields_by_format(tmp_path: Path) -> None:
    nested = RawRecord("x.json", "line 1", b'{"a": {"b": [{"c": 1}, {"c": null}]}, "d": "x"}')
    fields = record_fields(nested, "json")
    assert fields["a.b[].c"] == [1, None] and fields["d"] == ["x"]
    keyed = RawRecord("x.json", "1", b'{"by_user": {"ann@example.com": {"n": 1}, "ORD-5581": 2}}')
    assert set(record_fields(keyed, "json")) == {"by_user", "by_user.*", "by_user.*.n"}
    assert record_fields(RawRecord("x.json", "1", b"{not json"), "json") == {}
    email = b"From: Ann <ann@example.com>\r\nSubject: Hi\r\n\r\nbody"
    assert set(record_fields(RawRecord("m.eml", "1", email), "email")) == {"from", "subject"}
    path = _write_csv(tmp_path / "a.csv", [{"id": "1", "text": "hi, there"}])
    row = RawRecord(str(path), "line 2", b'1,"hi, there"', "utf-8")
    assert record_fields(row, "csv") == {"id": ["1"], "text": ["hi, there"]}
