"""End to end: `convolens ingest` + `convolens analyze` on the sample corpus with the real
models, then the labels a team would look for, with their evidence and lineage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from convolens.cli import app
from convolens.enrich.registry import DEFAULT_COMPONENTS
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner(env={"COLUMNS": "200"})


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("e2e") / "corpus.duckdb"
    _run("ingest", str(EXAMPLES), "--db", str(db), "--model", "tiny.en")
    out = _run("analyze", "--db", str(db))
    for name in DEFAULT_COMPONENTS:
        assert f"{name} v" in out, out
    return db


def _labels(db: Path, source_id: str, label: str) -> list[dict]:
    with Warehouse(db, read_only=True) as warehouse:
        rows = warehouse.query(
            "SELECT l.value, l.evidence, l.confidence, l.utterance_id FROM labels_current l "
            "JOIN conversations_current c USING (conversation_id, version) "
            "WHERE c.source_id = ? AND l.label = ? ORDER BY l.utterance_id",
            [source_id, label],
        )
    return [
        {**r, "value": json.loads(r["value"]), "evidence": json.loads(r["evidence"] or "[]")}
        for r in rows
    ]


def _text(db: Path, utterance_id: str) -> str:
    with Warehouse(db, read_only=True) as warehouse:
        return warehouse.query(
            "SELECT text FROM utterances WHERE utterance_id = ?", [utterance_id]
        )[0]["text"]


def test_every_component_labelled_every_conversation_with_lineage(corpus: Path) -> None:
    with Warehouse(corpus, read_only=True) as warehouse:
        conversations = warehouse.query("SELECT count(*) AS n FROM conversation_heads")[0]["n"]
        status = warehouse.query(
            "SELECT component, count(DISTINCT conversation_id) AS n FROM enrichment_status "
            "GROUP BY 1"
        )
        lineage = warehouse.query(
            "SELECT count(*) AS n FROM enrichments WHERE component_version IS NULL "
            "OR run_id IS NULL OR evidence IS NULL"
        )[0]["n"]
    assert {r["component"]: r["n"] for r in status} == dict.fromkeys(
        DEFAULT_COMPONENTS, conversations
    )
    assert lineage == 0


def test_names_are_redacted_everywhere_but_the_raw_layer(corpus: Path, tmp_path: Path) -> None:
    # "Hi Maria!" opens the bot's reply in the first support chat.
    (greeting,) = [
        r
        for r in _labels(corpus, "chat-20260903-0001", "pii.entity")
        if r["value"]["type"] == "PERSON"
    ][:1]
    assert _text(corpus, greeting["utterance_id"]).startswith("Hi <PERSON>! I'm")
    with Warehouse(corpus, read_only=True) as warehouse:
        raw = warehouse.query("SELECT count(*) AS n FROM raw_interactions WHERE "
                              "contains(decode(payload), 'Hi Maria!')")  # fmt: skip
        assert raw[0]["n"] == 1
    for layer in ("utterances", "words", "conversations", "labels"):
        out = tmp_path / f"{layer}.csv"
        _run("export", "--layer", layer, "--format", "csv", "--out", str(out), "--db", str(corpus))
        assert "Hi Maria" not in out.read_text(encoding="utf-8"), layer


def test_business_signals_escalations_and_resolution(corpus: Path) -> None:
    def signals(source_id: str) -> set[str]:
        return {r["value"]["signal"] for r in _labels(corpus, source_id, "signal")}

    # Cancelling, "switching to another product".
    assert "churn_risk" in signals("chat-20261106-0010")
    # 25 more seats: found through the upgrade_plan intent (no expansion phrase matches).
    assert "expansion_interest" in signals("chat-20261027-0009")
    # "The app crashes every time I open a shared dashboard."
    assert "bug_report" in signals("chat-20260914-0003")
    # "This is the third time in a month." ... "Get me a person."
    kinds = {r["value"]["kind"] for r in _labels(corpus, "chat-20261001-0006", "escalation")}
    assert "repeat_contact" in kinds
    (status,) = _labels(corpus, "chat-20261001-0006", "resolution.status")
    assert status["value"]["escalated"] is True
    # The CSV export: the bot hands over, then the agent passes it to another team.
    (status,) = _labels(corpus, "chat-20260918-0004", "resolution.status")
    assert status["value"]["status"] == "escalated"
    transfers = [
        r
        for r in _labels(corpus, "chat-20260918-0004", "escalation")
        if r["value"]["kind"] == "transfer"
    ]
    assert transfers and transfers[0]["value"]["by"] == "agent"
    for evidence in status["evidence"]:
        assert evidence["end"] <= len(_text(corpus, evidence["utterance_id"]))


def test_show_prints_insights_with_evidence(corpus: Path) -> None:
    out = _run("show", "chat-20261106-0010", "--db", str(corpus))
    assert "insights" in out and "labels" in out
    assert "churn_risk" in out


def test_summary_keyphrases_and_topic_hierarchy(corpus: Path) -> None:
    (summary,) = _labels(corpus, "chat-20260914-0003", "summary.extractive")
    assert "crash" in summary["value"]["text"].lower()
    for evidence in summary["evidence"]:
        assert evidence["end"] <= len(_text(corpus, evidence["utterance_id"]))
    phrases = [
        r["value"]["phrase"] for r in _labels(corpus, "chat-20260914-0003", "topic.keyphrase")
    ]
    assert any("dashboard" in p or "crash" in p for p in phrases[:5]), phrases
    out = _run("topics", "--db", str(corpus), "--json")
    groups = json.loads(out)
    assert groups and all(g["children"] for g in groups)
    assert sum(t["conversation_count"] for g in groups for t in g["children"]) >= 40


@pytest.mark.parametrize(
    ("source_id", "intent"),
    [
        ("chat-20261106-0010", "cancel_subscription"),  # "I'd like to cancel our subscription"
        ("chat-20260903-0001", "double_charge"),  # "I was charged twice this month"
        ("chat-20260914-0003", "bug_report"),  # "The app crashes every time ..."
        ("lc-88101", "password_reset"),
    ],
)
def test_primary_intent_per_conversation(corpus: Path, source_id: str, intent: str) -> None:
    (primary,) = _labels(corpus, source_id, "intent.primary")
    assert primary["value"]["intent"] == intent
    voted = {e["utterance_id"] for e in primary["evidence"]}
    assert voted == set(primary["value"]["utterances"])
    per_turn = {
        r["utterance_id"]: r["value"]["intent"]
        for r in _labels(corpus, source_id, "intent.utterance")
    }
    assert all(per_turn[u] == intent for u in voted)


def test_new_taxonomy_writes_beside_the_old_and_diff_shows_moved_intents(
    corpus: Path, tmp_path: Path
) -> None:
    from convolens.enrich.taxonomy import DEFAULT_TAXONOMY

    db = tmp_path / "copy.duckdb"
    shutil.copy(corpus, db)
    # A team that stops tracking cancellations as such: they fall to the nearest intent left.
    taxonomy = yaml.safe_load(DEFAULT_TAXONOMY.read_text(encoding="utf-8"))
    taxonomy["version"] = "2-test"
    taxonomy["intents"] = [i for i in taxonomy["intents"] if i["name"] != "cancel_subscription"]
    (tmp_path / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy), encoding="utf-8")
    (tmp_path / "convolens.toml").write_text(
        '[components.intents]\ntaxonomy = "taxonomy.yaml"\n', encoding="utf-8"
    )
    out = _run(
        "analyze", "--db", str(db), "--config", str(tmp_path / "convolens.toml"),
        "--component", "intents",
    )  # fmt: skip
    assert "intents v2" in out
    with Warehouse(db, read_only=True) as warehouse:
        versions = warehouse.query(
            "SELECT taxonomy_version, count(DISTINCT run_id) AS runs FROM enrichments "
            "WHERE component = 'intents' GROUP BY 1"
        )
    assert len(versions) == 2  # old rows kept beside the new
    assert any(v["taxonomy_version"].startswith("2-test+") for v in versions)
    (primary,) = _labels(db, "chat-20261106-0010", "intent.primary")
    assert primary["value"]["intent"] != "cancel_subscription"
    out = _run("diff", "--db", str(db), "--component", "intents")
    assert "cancel_subscription" in out
    assert "primary intent moved" in out and "chat-20261106-0010" in out
