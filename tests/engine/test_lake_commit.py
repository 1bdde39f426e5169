"""The lake: staged files are invisible until the driver commits; a killed job leaves
nothing readable; a re-run is idempotent; the warehouse reads the lake through the same
table names every query uses."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from convolens.analyze import analyze
from convolens.engine import LocalEngine
from convolens.ingest.pipeline import ingest_paths
from convolens.store.lake import Lake, LakeError
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STATUS = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("version", pa.int32()),
        ("component", pa.string()),
        ("component_version", pa.string()),
        ("run_id", pa.string()),
        ("labels", pa.int32()),
        ("taxonomy_version", pa.string()),
        ("processed_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _status(conversation_id: str, run_id: str) -> pa.Table:
    return pa.table(
        {
            "conversation_id": [conversation_id],
            "version": [1],
            "component": ["sentiment"],
            "component_version": ["9"],
            "run_id": [run_id],
            "labels": [3],
            "taxonomy_version": [None],
            "processed_at": [None],
        },
        schema=STATUS,
    )


def test_staged_files_are_invisible_until_the_commit(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    staged = lake.stage("run-1", {"enrichment_status": _status("c1", "run-1")})
    assert lake.committed()["enrichment_status"] == []
    assert lake.commit("run-1", [staged]) == 1
    files = lake.committed()["enrichment_status"]
    assert len(files) == 1 and "/enrichment_status/run_id=run-1/part-" in files[0]
    manifest = json.loads((tmp_path / "lake" / "_manifests" / "run-1.json").read_text())
    assert manifest["run_id"] == "run-1"
    assert not (tmp_path / "lake" / "_staging" / "run-1").exists()


def test_a_killed_job_leaves_nothing_visible_and_vacuum_clears_it(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    done = lake.stage("run-1", {"enrichment_status": _status("c1", "run-1")})
    lake.commit("run-1", [done])
    # A job killed after its workers wrote: staged files, no manifest.
    lake.stage("run-2", {"enrichment_status": _status("c2", "run-2")})
    assert [Path(p).parent.name for p in lake.committed()["enrichment_status"]] == ["run_id=run-1"]
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.set_lake(str(tmp_path / "lake"))
        rows = warehouse.query("SELECT conversation_id FROM enrichment_status")
        assert rows == [{"conversation_id": "c1"}]
    lake.vacuum()
    assert not (tmp_path / "lake" / "_staging").exists()
    assert len(lake.committed()["enrichment_status"]) == 1


def test_run_ids_cannot_climb_out_of_the_lake(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(LakeError, match="bad run id"):
        lake.stage("../outside", {"enrichment_status": _status("c1", "x")})


def test_a_lake_given_as_a_file_uri_works_like_a_folder(tmp_path: Path) -> None:
    lake = Lake((tmp_path / "lake").as_uri())
    lake.commit("run-1", [lake.stage("run-1", {"enrichment_status": _status("c1", "run-1")})])
    assert len(Lake(str(tmp_path / "lake")).committed()["enrichment_status"]) == 1


def test_metrics_in_the_lake_read_through_the_usual_views_and_a_rerun_adds_nothing(
    tmp_path: Path,
) -> None:
    db, lake_dir = tmp_path / "w.duckdb", tmp_path / "lake"
    with Warehouse(db) as warehouse:
        ingest_paths(warehouse, [EXAMPLES / "chats" / "support_chats.jsonl"])
        in_file = analyze(warehouse)
        expected = warehouse.query(
            "SELECT * EXCLUDE (run_id, computed_at) FROM metrics_conversation_current "
            "ORDER BY conversation_id"
        )
    other = tmp_path / "other.duckdb"
    with Warehouse(other) as warehouse:
        ingest_paths(warehouse, [EXAMPLES / "chats" / "support_chats.jsonl"])
        warehouse.set_lake(str(lake_dir))
        first = analyze(warehouse, engine=LocalEngine())
        assert first.conversations == in_file.conversations == 10
        again = analyze(warehouse)
        assert again.conversations == 0
        base = warehouse.base_table("metrics_conversation")
        assert warehouse.con.execute(f"SELECT count(*) FROM {base}").fetchone() == (0,)
    # Another process opening the warehouse (the API, the dashboard) reads the lake too.
    with Warehouse(other, read_only=True) as warehouse:
        got = warehouse.query(
            "SELECT * EXCLUDE (run_id, computed_at) FROM metrics_conversation_current "
            "ORDER BY conversation_id"
        )
        cursor = warehouse.cursor()
        try:
            assert cursor.query("SELECT count(*) AS n FROM metrics_conversation")[0]["n"] == 10
        finally:
            cursor.close()
    assert got == expected


def test_a_recompute_in_the_lake_replaces_the_older_run(tmp_path: Path) -> None:
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        ingest_paths(warehouse, [EXAMPLES / "chats" / "support_chats.jsonl"])
        warehouse.set_lake(str(tmp_path / "lake"))
        analyze(warehouse)
        second = analyze(warehouse, recompute=True)
        rows = warehouse.query("SELECT DISTINCT run_id FROM metrics_conversation")
        assert rows == [{"run_id": second.run_id}]
        count = warehouse.query("SELECT count(*) AS n FROM metrics_participant")[0]["n"]
        assert (
            count
            == warehouse.query(
                "SELECT count(*) AS n FROM participants p JOIN conversation_heads USING "
                "(conversation_id, version)"
            )[0]["n"]
        )


def test_a_manifest_cannot_name_files_outside_the_lake(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.commit("run-1", [lake.stage("run-1", {"enrichment_status": _status("c1", "run-1")})])
    outside = tmp_path / "secret.parquet"
    outside.write_bytes(b"not for the lake")
    (tmp_path / "lake" / "_manifests" / "run-2.json").write_text(
        json.dumps({"run_id": "run-2", "files": {"enrichment_status": ["../secret.parquet"]}})
    )
    files = Lake(str(tmp_path / "lake")).committed()["enrichment_status"]
    assert len(files) == 1 and "secret" not in files[0]


def test_an_unreadable_lake_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from convolens.cli import app

    db, lake = tmp_path / "w.duckdb", tmp_path / "lake"
    with Warehouse(db) as warehouse:
        warehouse.set_lake(str(lake))
    (lake / "_manifests").mkdir(parents=True, exist_ok=True)
    (lake / "_manifests" / "run-1.json").write_text("{torn manifest")
    result = CliRunner().invoke(app, ["list", "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert "its lake cannot be read" in result.output
    assert "Traceback" not in result.output


def test_erasing_a_conversation_rewrites_the_lake_without_it(tmp_path: Path) -> None:
    from convolens.store.erase import erase_conversation

    lake_dir = tmp_path / "lake"
    with Warehouse(tmp_path / "w.duckdb") as warehouse:
        ingest_paths(warehouse, [EXAMPLES / "chats" / "support_chats.jsonl"])
        warehouse.set_lake(str(lake_dir))
        analyze(warehouse)
        ids = [r["conversation_id"] for r in warehouse.query(
            "SELECT DISTINCT conversation_id FROM metrics_participant ORDER BY 1"
        )]  # fmt: skip
        gone, kept = ids[0], ids[1:]
        erased = erase_conversation(warehouse, gone)
        assert erased.rows["lake"] > 0
        left = warehouse.query("SELECT DISTINCT conversation_id FROM metrics_participant")
        assert sorted(r["conversation_id"] for r in left) == kept
    # Not in any file of the lake either, whoever reads it.
    import pyarrow.parquet as pq

    for path in lake_dir.rglob("*.parquet"):
        assert gone not in pq.read_table(path).column("conversation_id").to_pylist()
