"""`convolens review`, `convolens quality` and the taxonomy version gate, run as commands on
a labelled copy of the sample corpus: corrections become a draft, the draft is validated
on the reviewed items, and it is activated only with its figures accepted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from convolens.enrich.taxonomy import load_taxonomy
from convolens.review.queue import ReviewInput, next_item, record_review
from convolens.store.warehouse import Warehouse

CONVOLENS = str(Path(sys.executable).with_name("convolens"))


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [CONVOLENS, *args, "--db", str(db)], capture_output=True, text=True, env=env, timeout=600
    )


def test_review_quality_and_taxonomy_gate(labelled_copy: Path) -> None:
    db = labelled_copy
    done = cli(db, "review", "sample", "--component", "intents", "--label", "intent.utterance",
               "--per-value", "2", "--low-confidence", "1", "--disagreement", "0",
               "--second-share", "0", "--seed", "9")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "intents/intent.utterance/" in done.stdout and "random" in done.stdout

    # Review every item: the model's out_of_scope turns are corrected to how_to, the rest
    # accepted (a known set of corrections for the draft). The first two go through the
    # commands, the rest through the same library call (each command starts a process).
    corrected = 0
    for _ in range(2):
        shown = cli(db, "review", "next", "--reviewer", "ann", "--json")
        assert shown.returncode == 0, shown.stderr
        item = json.loads(shown.stdout)
        assert item["evidence"] and any(m for _, m in item["evidence"][0]["pieces"])
        if item["value"] != "how_to":
            done = cli(db, "review", "correct", item["item_id"], "--reviewer", "ann",
                       "--value", "how_to")  # fmt: skip
            corrected += 1
        else:
            done = cli(db, "review", "accept", item["item_id"], "--reviewer", "ann")
        assert done.returncode == 0, done.stderr
    with Warehouse(db) as warehouse:
        while (next_one := next_item(warehouse, "ann")) is not None:
            if next_one.value == "out_of_scope" and corrected < 6:
                verdict = ReviewInput(verdict="correct", corrected_value="how_to")
                corrected += 1
            else:
                verdict = ReviewInput(verdict="accept")
            record_review(warehouse, next_one.item_id, "ann", verdict)
    assert corrected >= 3
    text_view = cli(db, "review", "next", "--reviewer", "ann")
    assert "nothing waits for you" in text_view.stdout
    again = cli(db, "review", "accept", item["item_id"], "--reviewer", "ann")
    assert again.returncode == 1 and "already reviewed" in again.stderr
    bad = cli(db, "review", "correct", item["item_id"], "--reviewer", "bo", "--value", "nope")
    assert bad.returncode == 1 and "unknown value 'nope'" in bad.stderr

    quality = cli(db, "quality", "--component", "intents", "--min-reviews", "1", "--bar", "0.99")
    assert quality.returncode == 0, quality.stderr
    assert "precision per value" in quality.stdout and "model-human kappa" in quality.stdout
    # Corrected values have precision below 0.99, so they are flagged.
    assert "⚑" in quality.stdout and "below the bar" in quality.stdout
    report = json.loads(cli(db, "quality", "--json", "--min-reviews", "1", "--bar", "0.99").stdout)
    how_to = [v for v in report["values"] if v["value"] == "how_to"]
    assert how_to and how_to[0]["missed"] >= 1 and how_to[0]["recall"] < 1

    # Corrections feed back: a draft with the corrected turns as how_to examples.
    proposed = cli(db, "taxonomy", "propose")
    assert proposed.returncode == 0, proposed.stderr
    assert "draft" in proposed.stdout and "how_to +" in proposed.stdout
    early = cli(db, "taxonomy", "activate", "1", "--accept")
    assert early.returncode == 1 and "validate it first" in early.stderr
    validated = cli(db, "taxonomy", "validate", "--version", "1", "--folds", "2")
    assert validated.returncode == 0, validated.stderr
    assert "draft (cv)" in validated.stdout and "accuracy on" in validated.stdout
    unaccepted = cli(db, "taxonomy", "activate", "1", "--no-relabel")
    assert unaccepted.returncode == 1 and "--accept" in unaccepted.stderr
    assert "draft (cv)" in unaccepted.stdout  # the figures are shown before the refusal
    activated = cli(db, "taxonomy", "activate", "1", "--accept")
    assert activated.returncode == 0, activated.stderr
    assert "approved by cli:" in activated.stdout and "relabelled" in activated.stdout
    versions = cli(db, "taxonomy", "versions")
    assert "active" in versions.stdout

    with Warehouse(db, read_only=True) as warehouse:
        [row] = warehouse.query("SELECT * FROM definitions WHERE kind = 'taxonomy'")
        content = json.loads(row["content"])
        texts = [
            r["text"]
            for r in warehouse.query(
                "SELECT u.text FROM reviews r JOIN review_items i USING (item_id) "
                "JOIN utterances_current u USING (utterance_id) WHERE r.corrected_value = 'how_to'"
            )
        ]
        taxonomy_versions = {
            r["taxonomy_version"]
            for r in warehouse.query(
                "SELECT DISTINCT taxonomy_version FROM labels_current WHERE component = 'intents'"
            )
        }
    assert row["status"] == "active" and row["active"] and row["approved_by"].startswith("cli:")
    figures = json.loads(row["validation"])["figures"]
    assert figures["reviewed"] >= corrected and 0 <= figures["draft_accuracy"] <= 1
    how_to_examples = next(i for i in content["intents"] if i["name"] == "how_to")["examples"]
    assert all(" ".join(t.split()) in how_to_examples for t in texts)
    # The relabel ran with the new version: the current intent labels carry it.
    assert taxonomy_versions == {load_taxonomy(content).taxonomy_version}
