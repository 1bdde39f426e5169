"""Identical answers: the sample corpus analysed by the local engine into the DuckDB file
and by the Ray engine (a local 2-worker cluster started here) into a lake give the same
metrics, labels, values, evidence and redacted text, read through the same views."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from typer.testing import CliRunner

from convolens.cli import app
from convolens.engine.base import WorkerSpec
from convolens.engine.ray_engine import RayEngine
from convolens.enrich.registry import DEFAULT_COMPONENTS
from convolens.enrich.runner import task_size
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner(env={"COLUMNS": "200"})
# A slice of the sample corpus with every kind of conversation (support chat, call,
# meeting, email thread, ticket) keeps the test near a minute on two cores: the first
# five chats and four tickets, one of each other kind.
SUBSET = [
    "calls/call-20260915-0007.vtt",
    "calls/call-20260915-0007.meta.json",
    "calls/meeting-20261013-0011.srt",
    "calls/meeting-20261013-0011.meta.json",
    "email/2026-09-08_brightlane-refund_1.eml",
    "email/2026-09-08_brightlane-refund_2.eml",
    "email/2026-09-08_brightlane-refund_3.eml",
]


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=256 * 1024 * 1024,
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name in SUBSET:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLES / name, target)
    chats = (EXAMPLES / "chats" / "support_chats.jsonl").read_text(encoding="utf-8")
    (folder / "chats").mkdir()
    (folder / "chats" / "support_chats.jsonl").write_text(
        "\n".join(chats.splitlines()[:5]) + "\n", encoding="utf-8"
    )
    tickets = json.loads((EXAMPLES / "tickets" / "zendesk_export.json").read_text())
    tickets["tickets"] = tickets["tickets"][:4]
    (folder / "tickets").mkdir()
    (folder / "tickets" / "zendesk_export.json").write_text(json.dumps(tickets))
    return folder


@pytest.fixture(scope="module")
def analysed(
    cluster: None, corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("engines")
    local_db, ray_db, lake = work / "local.duckdb", work / "ray.duckdb", work / "lake"
    for db in (local_db, ray_db):
        _run("ingest", str(corpus), "--db", str(db))
    out = _run("analyze", "--db", str(local_db))
    for name in DEFAULT_COMPONENTS:
        assert f"{name} v" in out, out
    out = _run(
        "analyze", "--db", str(ray_db), "--engine", "ray", "--workers", "2", "--lake", str(lake)
    )
    for name in DEFAULT_COMPONENTS:
        assert f"{name} v" in out, out
    return local_db, ray_db, lake


_QUERIES = {
    "labels": "SELECT conversation_id, version, utterance_id, component, component_version, "
    "model_id, taxonomy_version, label, value, confidence, evidence FROM enrichments",
    "status": "SELECT conversation_id, version, component, component_version, labels, "
    "taxonomy_version FROM enrichment_status",
    "current labels": "SELECT conversation_id, label, value, evidence FROM labels_current",
    "metrics": "SELECT * EXCLUDE (run_id, computed_at) FROM metrics_conversation_current",
    "participants": "SELECT * EXCLUDE (run_id) FROM metrics_participant",
    "pairs": "SELECT * EXCLUDE (run_id) FROM metrics_participant_pairs",
    "redacted text": "SELECT utterance_id, text FROM utterances",
}


def _rows(db: Path, sql: str) -> list[tuple]:
    with Warehouse(db, read_only=True) as warehouse:
        rows = warehouse.con.execute(sql).fetchall()
    return sorted(rows, key=repr)


@pytest.mark.parametrize("what", list(_QUERIES))
def test_ray_engine_gives_the_local_answers(analysed: tuple[Path, Path, Path], what: str) -> None:
    local_db, ray_db, _ = analysed
    local, on_ray = _rows(local_db, _QUERIES[what]), _rows(ray_db, _QUERIES[what])
    assert local, f"no {what} at all"
    assert on_ray == local


def test_the_ray_run_wrote_the_lake_and_the_file_stayed_empty(
    analysed: tuple[Path, Path, Path],
) -> None:
    _, ray_db, lake = analysed
    with Warehouse(ray_db, read_only=True) as warehouse:
        engines = {
            r["kind"]: r["engine"]
            for r in warehouse.query(
                "SELECT kind, args::JSON->>'engine' AS engine FROM runs "
                "WHERE kind IN ('analyze', 'enrich')"
            )
        }
        assert engines == {"analyze": "ray", "enrich": "ray"}
        assert warehouse.lake is not None
        # The rows are in the lake's Parquet files, none in the DuckDB tables.
        for table in ("enrichments", "metrics_conversation"):
            base = warehouse.base_table(table)
            assert warehouse.con.execute(f"SELECT count(*) FROM {base}").fetchone() == (0,)
    assert list((lake / "_manifests").glob("*.json"))
    assert list((lake / "enrichments").glob("run_id=*/part-*.parquet"))
    assert not (lake / "_staging").exists() or not any((lake / "_staging").iterdir())


def test_a_second_run_on_ray_finds_nothing_missing(analysed: tuple[Path, Path, Path]) -> None:
    _, ray_db, lake = analysed
    manifests = sorted((lake / "_manifests").glob("*.json"))
    out = _run("analyze", "--db", str(ray_db), "--engine", "ray", "--workers", "2")
    assert "metrics: 0 conversation(s)" in out, out
    assert "labelled 0 conversation(s)" in out, out
    # Nothing new to commit, but an empty run still leaves one (empty) manifest per run.
    with Warehouse(ray_db, read_only=True) as warehouse:
        count = warehouse.con.execute("SELECT count(*) FROM enrichments").fetchone()
    assert count is not None and count[0] > 0
    assert len(sorted((lake / "_manifests").glob("*.json"))) >= len(manifests)


def _transcripts(db: Path) -> list[tuple]:
    return _rows(
        db,
        "SELECT c.source_id, u.seq, u.participant_id, u.text, u.start_s, u.end_s "
        "FROM utterances u JOIN conversations c USING (conversation_id, version)",
    )


def test_recordings_transcribed_on_ray_workers_match_local(cluster: None, tmp_path: Path) -> None:
    audio = Path(__file__).resolve().parents[1] / "data" / "audio"
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("call.mp3", "call.ogg"):
        shutil.copy(audio / name, folder / name)
    shutil.copy(EXAMPLES / "calls" / "call-20260915-0007.vtt", folder)
    local_db, ray_db = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    _run("ingest", str(folder), "--db", str(local_db), "--model", "tiny.en")
    _run("ingest", str(folder), "--db", str(ray_db), "--model", "tiny.en", "--engine", "ray")
    local = _transcripts(local_db)
    assert len({row[0] for row in local}) == 3
    assert _transcripts(ray_db) == local
    # Again on Ray: the recordings are known, nothing is transcribed or stored twice.
    _run("ingest", str(folder), "--db", str(ray_db), "--model", "tiny.en", "--engine", "ray")
    assert _transcripts(ray_db) == local


class _KeysSeen(RayEngine):
    """The Ray engine, noting what each item carried to the workers."""

    def __init__(self) -> None:
        super().__init__(workers=2)
        self.items: list[object] = []

    def run(self, spec: WorkerSpec, items: Iterable[Any]) -> Iterator[Any]:
        seen = list(items)
        self.items.extend(seen)
        return super().run(spec, seen)


def _pii_chats(folder: Path) -> Path:
    """Five sample chats and one with a name and an email, stored unredacted."""
    chats = (EXAMPLES / "chats" / "support_chats.jsonl").read_text(encoding="utf-8")
    extra = {
        "id": "chat-ray-pii",
        "source": "intercom",
        "channel": "chat",
        "participants": [{"id": "c", "role": "customer"}, {"id": "a", "role": "agent"}],
        "messages": [
            {"author": "c", "text": "Hi, this is John Smith, I was charged twice."},
            {"author": "a", "text": "Sorry! What is your email?"},
            {"author": "c", "text": "It's john.smith@example.com, thanks."},
        ],
    }
    path = folder / "chats.jsonl"
    lines = [*chats.splitlines()[:5], json.dumps(extra)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ray_workers_read_their_conversations_from_the_lake(cluster: None, tmp_path: Path) -> None:
    from convolens.analyze import analyze
    from convolens.enrich.runner import enrich
    from convolens.ingest.pipeline import ingest_paths

    chats, lake = _pii_chats(tmp_path), tmp_path / "lake"
    local_db, ray_db = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    with Warehouse(local_db) as warehouse:
        ingest_paths(warehouse, [chats], redact=False)
        analyze(warehouse)
        enrich(warehouse, ["pii", "trackers"])
    with Warehouse(ray_db) as warehouse:
        ingest_paths(warehouse, [chats], redact=False)
        warehouse.set_lake(str(lake))
        engine = _KeysSeen()
        analyze(warehouse, engine=engine)
        enrich(warehouse, ["pii", "trackers"], engine=engine)
    # Keys went out, not conversations: each worker read its batch from the lake.
    assert engine.items and all(getattr(i, "keys", None) for i in engine.items)
    assert not [i for i in engine.items if getattr(i, "docs", None) or getattr(i, "inputs", None)]
    for sql in (_QUERIES["labels"], _QUERIES["metrics"], _QUERIES["redacted text"]):
        assert _rows(ray_db, sql) == _rows(local_db, sql)
    # The redacted text replaced the raw text in the lake's copy too.
    import pyarrow.parquet as pq

    everything = " ".join(str(pq.read_table(p).to_pylist()) for p in lake.rglob("*.parquet"))
    assert "It's <EMAIL_ADDRESS>, thanks." in everything
    assert "john.smith@example.com" not in everything and "John Smith" not in everything


def test_ray_tasks_grow_in_whole_local_groups(cluster: None) -> None:
    """Up to 128 conversations per Ray task, about 16 tasks per worker, always a whole
    number of the local engine's labelling groups of 32."""
    engine = RayEngine(workers=2)
    assert task_size(engine, 45) == 32
    assert task_size(engine, 3000) == 96  # ceil(3000 / 32) = 94, rounded up to 3 x 32
    assert task_size(engine, 6000) == 128
    assert task_size(RayEngine(workers=1), 6000) == 128
