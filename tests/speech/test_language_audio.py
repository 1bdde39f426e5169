"""A Spanish recording transcribed by multilingual Whisper base: the language Whisper
detected is kept (conversation, every utterance, its probability in meta), the words are
Spanish, and English-only components skip the conversation."""

from __future__ import annotations

import json
from pathlib import Path

from convolens.enrich.runner import enrich
from convolens.ingest.base import IngestOptions
from convolens.ingest.pipeline import ingest_paths
from convolens.speech.options import SpeechOptions
from convolens.store.reader import load_conversation
from convolens.store.warehouse import Warehouse

SPANISH = (
    Path(__file__).resolve().parents[1] / "data" / "audio" / "languages" / "spanish_billing.flac"
)


def test_spanish_call_is_transcribed_in_spanish_and_labelled_es(warehouse: Warehouse) -> None:
    # Language left to Whisper: the default model (base) is multilingual.
    options = IngestOptions(speech=SpeechOptions(model="base", num_speakers=1, diarize=False))
    report = ingest_paths(warehouse, [SPANISH], options=options)
    assert report.written.new == 1, report.summary_line()
    (row,) = warehouse.query("SELECT conversation_id, language FROM conversations_current")
    assert row["language"] == "es"
    conversation = load_conversation(warehouse, row["conversation_id"])
    assert conversation.meta["asr_model"] == "whisper-base-ct2"
    detected = conversation.meta["asr_language"]
    assert detected["language"] == "es" and detected["probability"] > 0.5
    text = " ".join(u.text for u in conversation.utterances).lower()
    # Spanish words, not an English rendering of Spanish sounds.
    assert "factura" in text and "dos veces" in text, text
    assert {u.language for u in conversation.utterances} == {"es"}
    stored = warehouse.query("SELECT DISTINCT language FROM utterances_current")
    assert [r["language"] for r in stored] == ["es"]

    enrich(warehouse, ["sentiment"])
    labels = warehouse.query("SELECT label, value FROM enrichments WHERE component = 'sentiment'")
    assert [(r["label"], json.loads(r["value"])["skipped"]) for r in labels] == [
        ("sentiment.skipped", "language es")
    ]
