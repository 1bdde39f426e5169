"""A labelled warehouse built once per session; each test reviews a copy of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from review_corpus import build


@pytest.fixture(scope="session")
def labelled_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("review") / "corpus.duckdb")


@pytest.fixture
def labelled_copy(labelled_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "corpus.duckdb"
    shutil.copy(labelled_db, copy)
    return copy
