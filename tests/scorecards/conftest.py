"""The sample corpus, ingested by the CLI and labelled by the components scorecards read.

Built once per session: PII redaction first (scores see the redacted text, as `analyze`
gives it), then conversation type, sentiment, trackers and resolution, then the shipped
scorecards. Tests that change the warehouse work on a copy (`scored_copy`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from scorecard_corpus import COMPONENTS, EXAMPLES, cli

from convolens.enrich.runner import enrich
from convolens.store.warehouse import Warehouse


@pytest.fixture(scope="session")
def scored_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("scorecards") / "corpus.duckdb"
    done = cli("ingest", str(EXAMPLES), "--db", str(db), "--model", "tiny.en")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with Warehouse(db) as warehouse:
        enrich(warehouse, COMPONENTS)
    return db


@pytest.fixture
def scored_copy(scored_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "corpus.duckdb"
    shutil.copy(scored_db, copy)
    return copy
