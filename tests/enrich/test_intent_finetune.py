"""Fine-tuned intents: a tiny real fine-tune of the shipped MiniLM through the CLI, its int8
ONNX export in the cache under the taxonomy version, and the component using it.

One fine-tune for the whole module (a few optimiser steps on 23 examples: seconds, plus
the export); `make test` never runs a long training."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from convolens.cli import app
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.intent_encoder import (
    BUNDLE_FILES,
    FineTunedEncoder,
    fine_tuned_dir,
    load_fine_tuned,
)
from convolens.enrich.intent_finetune import _holdout_rows
from convolens.enrich.intent_model import IntentModelMismatchError
from convolens.enrich.intent_training import HeldOut, fit_intent_model
from convolens.enrich.intents import IntentComponent
from convolens.enrich.taxonomy import OUT_OF_SCOPE, load_taxonomy

# A public library's own small taxonomy.
LIBRARY: dict[str, Any] = {
    "name": "city-library",
    "version": "1",
    "intents": [
        {
            "name": "renew_loan",
            "description": "Keep a borrowed book longer.",
            "examples": [
                "can I renew the books I borrowed",
                "I need to keep my loan for another two weeks",
                "please extend the due date on my novel",
                "how do I renew a book online",
                "renewal button does not work for my loans",
                "can my loan be extended again",
            ],
        },
        {
            "name": "late_fee",
            "description": "A fine for returning something late.",
            "examples": [
                "why was I fined for a late return",
                "how much is the overdue fee per day",
                "I returned the book on time but got a late fee",
                "can you waive my overdue fine",
                "my account shows a fine I don't understand",
                "do children pay late fees",
            ],
        },
        {
            "name": "room_booking",
            "description": "Booking a study or meeting room.",
            "examples": [
                "I want to book a study room for Saturday",
                "are there meeting rooms I can reserve",
                "how do I cancel my room reservation",
                "can I book the group study room for three hours",
                "is the quiet room available tomorrow morning",
                "reserve a room for our book club",
            ],
        },
    ],
    "out_of_scope": [
        "what's the weather like tomorrow",
        "who won the football match last night",
        "recommend a good pizza place",
        "what time is it in Tokyo",
        "tell me a joke",
    ],
}
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`convolens taxonomy train library.yaml --fine-tune` into a fresh model cache."""
    root = tmp_path_factory.mktemp("finetune")
    path = root / "library.yaml"
    path.write_text(yaml.safe_dump(LIBRARY), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVOLENS_CACHE", str(root / "cache"))
        result = runner.invoke(
            app, ["taxonomy", "train", str(path), "--fine-tune", "--max-steps", "6"]
        )
        version = load_taxonomy(path).taxonomy_version
        yield {
            "result": result,
            "path": path,
            "root": root,
            "version": version,
            "folder": fine_tuned_dir(version),
        }


def test_cli_fine_tunes_into_the_cache_under_the_taxonomy_version(
    fine_tuned: dict[str, Any],
) -> None:
    result = fine_tuned["result"]
    assert result.exit_code == 0, result.output
    assert "held-out accuracy" in result.output
    assert "fine-tuned all-MiniLM-L6-v2-ft-" in result.output
    folder: Path = fine_tuned["folder"]
    # The cache key is the taxonomy version: another version is another folder.
    assert folder == fine_tuned["root"] / "cache" / "intents" / f"{fine_tuned['version']}.finetuned"
    assert fine_tuned_dir(fine_tuned["version"] + "x") != folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(BUNDLE_FILES)  # no fp32 left
    meta = json.loads((folder / "labels.json").read_text())
    assert meta["taxonomy_version"] == fine_tuned["version"]
    assert meta["heads"]["intent"] == ["renew_loan", "late_fee", "room_booking", OUT_OF_SCOPE]
    # 10 % of each class held out (at least one): 1 per intent, 1 of the 5 off-topic.
    assert meta["held_out_examples"] == 4 and meta["fine_tuned_examples"] == 19
    assert meta["steps"] == 6
    assert (folder / "model.int8.onnx").stat().st_size < 40 * 2**20


def test_exported_encoder_round_trips(fine_tuned: dict[str, Any]) -> None:
    """The int8 ONNX encoder gives unit vectors and a head that knows the intents; its
    vectors are no longer the shipped model's."""
    encoder = FineTunedEncoder(fine_tuned["folder"])
    texts = [e for i in LIBRARY["intents"] for e in i["examples"]]
    gold = [i["name"] for i in LIBRARY["intents"] for _ in i["examples"]]
    vectors, head = encoder.encode(texts)
    assert vectors.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert head.shape == (len(texts), 4) and np.allclose(head.sum(axis=1), 1.0, atol=1e-4)
    predicted = [encoder.classes[j] for j in head.argmax(axis=1)]
    assert np.mean([p == g for p, g in zip(predicted, gold, strict=True)]) >= 0.8
    frozen = SentenceEmbedder().embed(texts)
    cosine = (vectors * frozen).sum(axis=1)
    assert cosine.mean() < 0.999, cosine.mean()


def test_component_uses_the_fine_tuned_model_for_its_taxonomy_version(
    fine_tuned: dict[str, Any], make_doc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVOLENS_CACHE", str(fine_tuned["root"] / "cache"))
    component = IntentComponent({"taxonomy": str(fine_tuned["path"])})
    assert component.fine_tuned
    assert component.model_id.startswith("all-MiniLM-L6-v2-ft-")
    assert component.model_id.endswith("+svm-knn")
    assert component.model.metadata["calibration"] == "held out"
    assert component.model.head_weight == 1.0  # the encoder head votes in the blend
    doc = make_doc(
        "lib-1",
        [
            ("c", "hi, could I extend my loan on the book I borrowed?"),
            ("a", "Of course, let me check your account."),
            ("c", "also I'd like to reserve a study room for Friday"),
        ],
    )
    labels = component([doc])[0]
    turns = {a.utterance_id: a.value["intent"] for a in labels if a.label == "intent.utterance"}
    assert turns == {"lib-1:0": "renew_loan", "lib-1:2": "room_booking"}
    primary = [a for a in labels if a.label == "intent.primary"]
    assert primary[0].value["intent"] == "renew_loan"
    # The shared utterance vectors are left to the shared model's components.
    assert "utterance_embeddings" not in doc.cache

    # `fine_tuned = false` keeps the frozen path for the same version.
    frozen = IntentComponent({"taxonomy": str(fine_tuned["path"]), "fine_tuned": False})
    assert not frozen.fine_tuned and frozen.model_id == "all-MiniLM-L6-v2+svm-knn"


def test_a_model_for_another_taxonomy_version_is_refused(
    fine_tuned: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVOLENS_CACHE", str(fine_tuned["root"] / "cache"))
    edited = dict(LIBRARY, version="2")
    other = tmp_path / "library-v2.yaml"
    other.write_text(yaml.safe_dump(edited), encoding="utf-8")
    version = load_taxonomy(other).taxonomy_version
    assert version != fine_tuned["version"]
    with pytest.raises(IntentModelMismatchError, match="fine-tuned for taxonomy version"):
        load_fine_tuned(fine_tuned["folder"], version)
    with pytest.raises(IntentModelMismatchError):
        IntentComponent({"taxonomy": str(other), "model": str(fine_tuned["folder"])})
    # Without an explicit model the new version has none fine-tuned: the frozen path.
    component = IntentComponent({"taxonomy": str(other), "cache": False})
    assert not component.fine_tuned


def test_holdout_is_stratified_and_seeded() -> None:
    labels = ["a"] * 30 + ["b"] * 3 + ["c"] * 2 + [OUT_OF_SCOPE] * 10
    rows = _holdout_rows(labels, 0.1, seed=0)
    held = [labels[i] for i in rows]
    assert held.count("a") == 3 and held.count("b") == 1 and held.count(OUT_OF_SCOPE) == 1
    assert "c" not in held  # two examples: both stay to train on
    assert np.array_equal(rows, _holdout_rows(labels, 0.1, seed=0))
    assert not np.array_equal(rows, _holdout_rows(labels, 0.1, seed=1))


def test_held_out_examples_calibrate_then_join_the_head(embedder: SentenceEmbedder) -> None:
    """With a HeldOut set the threshold comes from examples the head did not fit on, and
    the final head remembers them too."""
    texts = [e for i in LIBRARY["intents"] for e in i["examples"][:4]]
    labels = [i["name"] for i in LIBRARY["intents"] for _ in i["examples"][:4]]
    held_texts = [e for i in LIBRARY["intents"] for e in i["examples"][4:]]
    held_labels = [i["name"] for i in LIBRARY["intents"] for _ in i["examples"][4:]]
    oos = LIBRARY["out_of_scope"]
    model = fit_intent_model(
        texts,
        labels,
        embedder.embed(texts),
        oos_texts=oos[:3],
        oos_embeddings=embedder.embed(oos[:3]),
        held_out=HeldOut(
            held_texts + oos[3:],
            held_labels + [OUT_OF_SCOPE] * 2,
            embedder.embed(held_texts + oos[3:]),
        ),
    )
    assert model.metadata["calibration"] == "held out"
    assert model.metadata["cv"]["held_out"] == len(held_texts) == 6
    assert model.metadata["examples"] == 18 and model.metadata["out_of_scope_examples"] == 5
    assert len(model.memory) == 23
    with pytest.raises(ValueError, match="held-out labels"):
        fit_intent_model(
            texts,
            labels,
            embedder.embed(texts),
            held_out=HeldOut(["borrow an ebook"], ["ebooks"], embedder.embed(["borrow"])),
        )


def test_cli_trains_the_taxonomy_active_in_the_warehouse(tmp_path: Path) -> None:
    """`taxonomy train --active` reads the stored active version (as the server labels
    with it); a file and --active together, or neither, is a usage error."""
    from convolens.service.definitions import DefinitionCreate, store_definition
    from convolens.store.warehouse import Warehouse

    db = tmp_path / "active.duckdb"
    with Warehouse(db) as warehouse:
        store_definition(
            warehouse,
            "taxonomy",
            DefinitionCreate(content=yaml.safe_dump(LIBRARY), activate=True),
            "test",
        )
    output = tmp_path / "active.npz"
    result = runner.invoke(
        app, ["taxonomy", "train", "--active", "--db", str(db), "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    version = load_taxonomy(LIBRARY).taxonomy_version
    assert f"taxonomy version {version}" in result.output
    assert output.exists()
    neither = runner.invoke(app, ["taxonomy", "train", "--db", str(db)])
    assert neither.exit_code == 2 and "give a taxonomy file or --active" in neither.output
    empty = tmp_path / "empty.duckdb"
    Warehouse(empty).close()
    result = runner.invoke(app, ["taxonomy", "train", "--active", "--db", str(empty)])
    assert result.exit_code == 1 and "no taxonomy is active" in result.output
