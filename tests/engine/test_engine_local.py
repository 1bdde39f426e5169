"""The local engine is the default and needs no Ray: analyze and ingest run without
importing it, and asking for Ray where it cannot start says so plainly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from convolens.engine import EngineOptions, LocalEngine, open_engine

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
