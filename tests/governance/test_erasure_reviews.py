"""Erasure reaches the label-review layer: the person's conversation's review items and the
reviewers' verdicts on them (keyed by item, not by conversation), a note naming them
included; another conversation's items and verdicts stay."""

from __future__ import annotations

import json
from pathlib import Path

from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.retention import Person, erase_person
from convolens.review.queue import ReviewInput, SampleSpec, create_batch, next_item, record_review
from convolens.store.warehouse import Warehouse

EMAIL = "odalys.brenner@review-erase.example"


def _chat(source_id: str, email: str, text: str) -> dict:
    return {
        "id": source_id,
        "channel": "chat",
        "participants": [
            {"id": "c", "name": "Customer", "role": "customer", "email": email},
            {"id": "a", "name": "Agent", "role": "agent"},
        ],
        "messages": [
            {"author": "c", "text": text},
            {"author": "a", "text": "I am sorry to hear that, let me cancel it for you."},
        ],
    }


def test_erasure_removes_review_items_and_verdicts(tmp_path: Path) -> None:
    source = tmp_path / "chats.jsonl"
    source.write_text(
        json.dumps(_chat("rev-1", EMAIL, "I want to cancel my subscription today."))
        + "\n"
        + json.dumps(
            _chat("rev-2", "keep@review-erase.example", "I want to cancel my subscription too.")
        )
    )
    db = tmp_path / "rev.duckdb"
    with Warehouse(db) as wh:
        ingest_paths(wh, [source])
        enrich(wh, ["trackers"])
        batch = create_batch(wh, SampleSpec(component="trackers", per_value=10, second_share=1.0))
        assert batch.items >= 2, batch
        theirs = wh.query("SELECT conversation_id FROM conversations WHERE source_id = 'rev-1'")
        while (item := next_item(wh, "rita")) is not None:
            # The verdict on their conversation's label names them in its note.
            note = (
                f"customer {EMAIL}" if item.conversation_id == theirs[0]["conversation_id"] else ""
            )
            record_review(wh, item.item_id, "rita", ReviewInput(verdict="accept", note=note))
        # A second reviewer's verdicts say nothing of the person: only the erasure of the
        # conversation's derived rows can find them.
        while (item := next_item(wh, "sam")) is not None:
            record_review(wh, item.item_id, "sam", ReviewInput(verdict="accept"))
        per_conversation = {
            r["source_id"]: r["n"]
            for r in wh.query(
                "SELECT c.source_id, count(*) AS n FROM reviews r JOIN review_items i "
                "USING (item_id) JOIN conversations c USING (conversation_id) GROUP BY 1"
            )
        }
        # Two verdicts per item (second_share=1): rita's (one names them) and sam's.
        assert per_conversation.get("rev-1") == 2 and per_conversation.get("rev-2") == 2
        receipt = erase_person(wh, Person(email=EMAIL))
        assert receipt.conversations == 1
        assert receipt.rows["reviews"] == per_conversation["rev-1"]
        assert receipt.rows["review_items"] == 1  # one item, reviewed twice
        left = wh.query(
            "SELECT count(*) AS n FROM reviews r LEFT JOIN review_items i USING (item_id) "
            "WHERE i.item_id IS NULL"
        )
        assert left[0]["n"] == 0  # no verdict left without its item
        kept = wh.query("SELECT count(*) AS n FROM reviews")[0]["n"]
        assert kept == per_conversation["rev-2"]
    source.unlink()
    assert EMAIL.encode() not in db.read_bytes().lower()
    assert b"odalys" not in db.read_bytes().lower()
