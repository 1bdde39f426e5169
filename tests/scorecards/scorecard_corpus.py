"""Paths and the CLI runner shared by the scorecard tests (imported by name: `conftest`
is not importable unambiguously from a test module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HAND_SCORES = Path(__file__).resolve().parent / "data" / "hand_scores.yaml"
COMPONENTS = ["pii", "conversation_type", "sentiment", "trackers", "resolution", "scorecard"]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=900,
    )  # fmt: skip
