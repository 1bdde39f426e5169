"""The local engine is the default and needs no Ray: analyze and ingest run without
importing it, and asking for Ray where it cannot start says so plainly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from convolens.engine import EngineOptions, LocalEngine, open_engine
from convolens.enrich.runner import LOCAL_TASK_SIZE, enrich, task_size
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

_SCRIPT = """
import sys
from typer.testing import CliRunner
from convolens.cli import app
runner = CliRunner()
db = sys.argv[1]
for args in (["ingest", sys.argv[2], "--db", db], ["analyze", "--db", db, "--metrics-only"]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
print("metrics:" in result.output, "ray" in sys.modules, "ray.data" in sys.modules)
"""


def test_local_is_the_default_and_never_imports_ray(tmp_path: Path) -> None:
    assert isinstance(open_engine(), LocalEngine)
    assert EngineOptions().engine == "local"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT,
            str(tmp_path / "w.duckdb"),
            str(EXAMPLES / "chats" / "support_chats.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.split() == ["True", "False", "False"], done.stderr[-2000:]


def test_an_unreachable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    script = (
        "from typer.testing import CliRunner\n"
        "from convolens.cli import app\n"
        "r = CliRunner().invoke(app, ['analyze', '--db', "
        f"{str(tmp_path / 'w.duckdb')!r}, '--engine', 'ray', '--address', '127.0.0.1:1'])\n"
        "print(r.exit_code)\nprint(r.output)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    code, _, output = done.stdout.partition("\n")
    assert code == "1", done.stdout + done.stderr[-2000:]
    assert "cannot start or reach Ray at 127.0.0.1:1" in output
    assert "Traceback" not in output


def test_the_engine_package_exports() -> None:
    import convolens.engine

    assert sorted(convolens.engine.__all__) == [
        "BatchWorker", "Engine", "EngineOptions", "LocalEngine", "WorkerSpec", "open_engine",
    ]  # fmt: skip


def _copies(folder: Path, times: int) -> Path:
    """The sample support chats `times` over under new ids: more conversations than one
    labelling group of 32."""
    lines = (EXAMPLES / "chats" / "support_chats.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for n in range(times):
        for line in lines:
            record = json.loads(line)
            record["id"] = f"{record['id']}-copy{n}"
            out.append(json.dumps(record))
    path = folder / "chats.jsonl"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_bigger_tasks_give_the_same_labels(tmp_path: Path) -> None:
    """A remote engine sends up to 128 conversations per task (fewer lake reads, staged
    files and round trips); the worker still labels them in the local engine's groups of
    32, so int8 inference sees the same batches and every label and score is identical."""
    assert task_size(LocalEngine(), 6000) == LOCAL_TASK_SIZE == 32
    corpus = _copies(tmp_path, 7)
    rows = []
    for size in (32, 96):
        with Warehouse(tmp_path / f"w{size}.duckdb") as warehouse:
            ingest_paths(warehouse, [corpus], redact=False)
            report = enrich(warehouse, ["sentiment"], batch_size=size)
            assert report.conversations == 70
            rows.append(
                warehouse.con.execute(
                    "SELECT conversation_id, utterance_id, label, value, confidence, evidence "
                    "FROM enrichments ORDER BY ALL"
                ).fetchall()
            )
    assert len(rows[0]) > 70
    assert rows[0] == rows[1]
