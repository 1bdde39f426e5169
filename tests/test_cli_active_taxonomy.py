"""A taxonomy activated in the warehouse (over the API or `convolens taxonomy activate`)
labels `convolens analyze` runs too, not only the server's jobs."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from convolens.cli import app
from convolens.enrich.taxonomy import load_taxonomy
from convolens.service.definitions import DefinitionCreate, store_definition
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "chats" / "support_chats.jsonl"
runner = CliRunner(env={"COLUMNS": "200"})

TAXONOMY = """
name: team-billing
version: "7"
intents:
  - name: refund_request
    examples:
      - I want my money back
      - please refund the duplicate charge
      - can I get a refund for last month
      - refund me the annual plan please
      - I was charged twice and need a refund
  - name: cancel_account
    examples:
      - I want to cancel my subscription
      - please close my account
      - we won't be renewing, cancel it
      - how do I cancel the plan
      - stop my membership at the end of the month
  - name: delivery_question
    examples:
      - where is my order
      - my parcel has not arrived yet
      - when will the package ship
      - the tracking number does not work
      - the delivery is late again
"""


def test_analyze_labels_with_the_active_taxonomy(tmp_path: Path) -> None:
    db = tmp_path / "active.duckdb"
    result = runner.invoke(app, ["ingest", str(EXAMPLES), "--db", str(db)])
    assert result.exit_code == 0, result.output
    with Warehouse(db) as wh:
        stored = store_definition(
            wh, "taxonomy", DefinitionCreate(content=TAXONOMY, activate=True), "test"
        )
    assert stored.active
    result = runner.invoke(app, ["analyze", "--db", str(db), "--component", "intents"])
    assert result.exit_code == 0, result.output
    expected = load_taxonomy(yaml.safe_load(TAXONOMY)).taxonomy_version
    with Warehouse(db, read_only=True) as wh:
        versions = {
            r["taxonomy_version"]
            for r in wh.query(
                "SELECT DISTINCT taxonomy_version FROM enrichments_current "
                "WHERE component = 'intents'"
            )
        }
        values = {
            r["v"]
            for r in wh.query(
                "SELECT DISTINCT value::VARCHAR AS v FROM enrichments_current "
                "WHERE label = 'intent.primary'"
            )
        }
    assert versions == {expected}
    assert any("refund_request" in v or "cancel_account" in v for v in values), values
