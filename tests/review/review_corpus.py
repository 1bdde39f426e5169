"""The sample corpus's text conversations, labelled by the real pipeline, for review tests.

The recording is left out (transcribing it costs more than these tests need); every text
format is ingested and labelled with conversation type, sentiment and intents, the
components whose labels the tests review.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TEXT_FOLDERS = ("chats", "csv", "email", "tickets", "calls")
COMPONENTS = ("conversation_type", "sentiment", "intents")


def build(db: Path) -> Path:
    from convolens.enrich.runner import enrich
    from convolens.ingest.pipeline import ingest_paths
    from convolens.store.warehouse import Warehouse

    with Warehouse(db) as warehouse:
        ingest_paths(warehouse, [EXAMPLES / folder for folder in TEXT_FOLDERS])
        enrich(warehouse, list(COMPONENTS))
    return db
