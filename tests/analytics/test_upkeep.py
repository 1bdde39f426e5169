"""New conversations join the accounts and clusters a warehouse already has."""

from __future__ import annotations

import json
from pathlib import Path

from convolens.analytics import business_import, cluster_store
from convolens.analytics.upkeep import after_labelling
from convolens.enrich.registry import get_component
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

CHATS = [
    ("reset-1", "acme.example", "The password reset email never arrives in my inbox."),
    ("reset-2", "acme.example", "I asked for a reset link three times and got no email."),
    ("reset-3", "bolt.example", "Reset password mail is not coming through, can't log in."),
    ("bill-1", "bolt.example", "I was billed two times for my subscription this month."),
    ("bill-2", "acme.example", "There are two identical charges on my card for one plan."),
    ("bill-3", "bolt.example", "You billed me double for the monthly subscription."),
]


def _write(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = folder / "chats.jsonl"
    with path.open("w") as out:
        for cid, domain, text in rows:
            record = {
                "id": cid,
                "channel": "chat",
                "started_at": "2026-11-02T10:00:00Z",
                "participants": [
                    {"id": "c", "role": "customer", "email": f"kim@{domain}"},
                    {"id": "a", "role": "agent"},
                ],
                "messages": [{"author": "c", "text": text}, {"author": "a", "text": "On it."}],
            }
            out.write(json.dumps(record) + "\n")
    return path


def test_new_conversations_are_stitched_and_clustered(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    assert after_labelling(warehouse).model_dump() == {
        "stitched": None,
        "clustered": None,
        "unclustered": None,
    }  # fmt: skip: a warehouse without accounts or clusters is left alone
    ingest_paths(warehouse, [_write(tmp_path, CHATS[:2] + CHATS[3:5])])
    enrich(warehouse, [get_component("intents", {})])
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "account_id,name,email_domain\nA-1,Acme,acme.example\nB-2,Bolt,bolt.example\n"
    )
    business_import.import_entities(warehouse, accounts, "accounts")
    business_import.stitch(warehouse)
    fit = cluster_store.cluster_conversations(warehouse)
    assert fit.statements == 4

    more = tmp_path / "more"
    more.mkdir()
    ingest_paths(warehouse, [_write(more, [CHATS[2], CHATS[5]])])
    enrich(warehouse, [get_component("intents", {})])
    done = after_labelling(warehouse)
    assert done.stitched == 6 and (done.clustered or 0) + (done.unclustered or 0) == 2
    linked = {
        r["conversation_id"]: r["account_id"]
        for r in warehouse.query("SELECT conversation_id, account_id FROM conversation_accounts")
    }
    assert sorted(linked.values()).count("B-2") == 3
    # Nothing new: no second assignment run.
    assert after_labelling(warehouse).clustered is None
