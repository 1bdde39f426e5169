"""Shared fixtures: test data folders and a fresh warehouse file per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from convolens.store.warehouse import Warehouse

# Rich sizes tables to the terminal; tests read them as a wide terminal would show them.
os.environ["COLUMNS"] = "200"

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = REPO / "examples"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse(tmp_path / "test.duckdb") as wh:
        yield wh
