"""Intents: taxonomy validation and versions, the trained artefact, and the component on real
customer text with the real MiniLM model, offline."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from convolens.enrich.base import Annotation
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.intent_model import (
    MAX_FALSE_REJECTION,
    TARGET_REJECTION,
    IntentModel,
    IntentModelMismatchError,
)
from convolens.enrich.intent_training import choose_threshold, train_intent_model
from convolens.enrich.intents import (
    IntentComponent,
    cached_model_path,
    is_backchannel,
    train_taxonomy,
)
from convolens.enrich.taxonomy import (
    DEFAULT_TAXONOMY,
    OUT_OF_SCOPE,
    Taxonomy,
    load_taxonomy,
    validate_taxonomy,
)

# A bike-sharing team's own small taxonomy: a group, an intent under it, and one intent
# whose parent is another intent (a two-level hierarchy below the group).
BIKES: dict[str, Any] = {
    "name": "citybikes-support",
    "version": "2024.3",
    "groups": [{"name": "rides", "description": "Using the bikes"}],
    "intents": [
        {
            "name": "unlock_problem",
            "parent": "rides",
            "description": "The bike will not unlock.",
            "examples": [
                "the bike won't unlock when I scan the code",
                "I scanned the QR code and nothing happens",
                "the lock is stuck and I can't take the bike",
                "app says unlocking failed, please try again",
                "the dock isn't releasing my bike",
            ],
        },
        {
            "name": "ebike_battery",
            "parent": "unlock_problem",
            "description": "An e-bike's battery is flat, so the app refuses to release it.",
            "examples": [
                "the electric bike has no battery left",
                "the e-bike died halfway through my ride",
                "battery shows empty on the ebike I picked",
                "the motor stopped assisting because the battery ran out",
            ],
        },
        {
            "name": "ride_charge",
            "description": "Questions about what a ride cost.",
            "examples": [
                "why was my ride so expensive",
                "I was charged for 3 hours but rode 20 minutes",
                "how much does a day pass cost",
                "the fare for my trip this morning looks wrong",
                "do you charge extra for electric bikes",
            ],
        },
    ],
    "out_of_scope": [
        "what's a good film to watch tonight",
        "tell me a joke",
        "how do I boil an egg",
        "who won the tennis yesterday",
    ],
}


def bikes(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BIKES)
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def component(embedder: SentenceEmbedder) -> IntentComponent:
    return IntentComponent({"cache": False}, embedder=embedder)


@pytest.fixture(scope="module")
def bike_model(embedder: SentenceEmbedder) -> IntentModel:
    return train_intent_model(load_taxonomy(BIKES), embedder)


def utterance_labels(labels: list[Annotation]) -> dict[str, Annotation]:
    return {a.utterance_id: a for a in labels if a.label == "intent.utterance"}


# ---------------------------------------------------------------- taxonomy


def test_default_taxonomy_loads_with_hierarchy() -> None:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    assert 25 <= len(taxonomy.intents) <= 40
    assert all(len(i.examples) >= 8 for i in taxonomy.intents)
    assert taxonomy.ancestors("double_charge") == ["billing"]
    assert taxonomy.path("how_to") == ["product", "how_to"]
    assert taxonomy.taxonomy_version.startswith(f"{taxonomy.version}+")
    report = validate_taxonomy(DEFAULT_TAXONOMY)
    assert report.ok and report.intents == len(taxonomy.intents) and not report.errors
    assert report.tree["cancel_subscription"] == (["subscription", "cancel_subscription"], 12)


def test_nested_hierarchy_ancestors() -> None:
    taxonomy = load_taxonomy(BIKES)
    assert taxonomy.ancestors("ebike_battery") == ["unlock_problem", "rides"]
    assert taxonomy.path("ebike_battery") == ["rides", "unlock_problem", "ebike_battery"]
    assert taxonomy.ancestors("ride_charge") == []
    with pytest.raises(KeyError, match="no intent or group 'nope'"):
        taxonomy.ancestors("nope")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # a cycle through two intents
        (
            lambda d: (
                d["groups"].clear(),
                d["intents"][0].update(parent="ebike_battery"),
            ),
            "parent: cycle unlock_problem -> ebike_battery -> unlock_problem",
        ),
        (
            lambda d: d["intents"][2].update(parent="payments"),
            "intent 'ride_charge': parent: unknown intent or group 'payments'",
        ),
        (
            lambda d: d["groups"].append({"name": "ride_charge"}),
            "duplicate intent/group names: ride_charge",
        ),
        (
            lambda d: d["intents"][1].update(examples=["flat battery", "no charge left"]),
            "intent 'ebike_battery': examples: List should have at least 3 items",
        ),
        (
            lambda d: d["intents"].append({**d["intents"][2], "name": "ride charge?"}),
            "'ride charge?' normalised is 'ride_charge', which 'ride_charge' already is",
        ),
        (
            lambda d: d["intents"][0].update(name="out_of_scope", parent=None),
            "'out_of_scope' is reserved",
        ),
        (lambda d: d.update(version=2), 'quote the version in YAML: version: "2"'),
        (lambda d: d["intents"][0].update(exemples=["typo"]), "intent 'unlock_problem': exemples"),
    ],
)
def test_validation_errors_name_intent_and_field(change: Any, message: str) -> None:
    data = bikes()
    change(data)
    with pytest.raises(ValueError) as info:
        load_taxonomy(data)
    assert message in str(info.value)


def test_published_data_sets_load_as_they_are(tmp_path: Path) -> None:
    data = bikes()
    data["intents"][0]["examples"] += [
        "the bike won't unlock when I scan the code",
        "THE BIKE won't unlock  when I scan the code",
    ]
    data["intents"][2]["examples"].append("The bike won't unlock when I scan the code")
    data["intents"][1].update(name="ebike battery?")
    data["out_of_scope"] += ["tell me a joke", "why was my ride so expensive"]
    taxonomy = load_taxonomy(data)
    assert taxonomy.intent("unlock_problem").examples == BIKES["intents"][0]["examples"]
    assert taxonomy.intent("ride_charge").examples == BIKES["intents"][2]["examples"]
    assert taxonomy.out_of_scope == BIKES["out_of_scope"]
    # The renamed intent keeps its place and its children's parent links follow it.
    assert taxonomy.intent_names == ["unlock_problem", "ebike_battery", "ride_charge"]
    assert taxonomy.original_names == {"ebike_battery": "ebike battery?"}
    assert taxonomy.load_warnings == [
        "name 'ebike battery?' normalised to 'ebike_battery'",
        "intent 'unlock_problem': 2 repeated example(s) dropped",
        "intent 'ride_charge': 1 example(s) also under 'unlock_problem' dropped "
        "(kept under the first intent)",
        "out_of_scope: 2 repeated example(s) or intent examples dropped",
    ]
    # Cleaned content is what is hashed: the same lineage as the clean file.
    assert taxonomy.taxonomy_version == load_taxonomy(BIKES).taxonomy_version
    path = tmp_path / "bikes.yaml"
    path.write_text(yaml.safe_dump(data))
    report = validate_taxonomy(path)
    assert report.ok and report.renamed == {"ebike_battery": "ebike battery?"}
    assert report.warnings[:4] == taxonomy.load_warnings


def test_banking77_csv_is_a_taxonomy_as_published() -> None:
    path = (
        Path(__file__).resolve().parents[3]
        / "shared"
        / "data"
        / "intents"
        / "banking77"
        / "train.csv"
    )
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared datasets sit beside the checkout")
    taxonomy = load_taxonomy(path)
    assert len(taxonomy.intents) == 77 and taxonomy.name == "train"
    # Banking77's train.csv repeats a few queries and spells one intent with a "?".
    assert taxonomy.original_names == {"reverted_card_payment": "reverted_card_payment?"}
    assert sum(len(i.examples) for i in taxonomy.intents) == 9999  # of 10,003 rows
    assert len(taxonomy.load_warnings) == 5


def test_cli_validates_a_csv_data_set_and_shows_what_it_changed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from convolens.cli import app

    rows = ["text,category"]
    rows += [f"card {n} never arrived,card_arrival" for n in range(4)]
    rows += ["card 0 never arrived,card_arrival"]  # published twice
    rows += [f"payment {n} was reverted,reverted_card_payment?" for n in range(4)]
    path = tmp_path / "bank.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["taxonomy", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "'reverted_card_payment?' normalised to 'reverted_card_payment'" in result.output
    assert "intent 'card_arrival': 1 repeated example(s) dropped" in result.output
    assert "2 intents in 0 groups, 8 examples" in result.output


def test_csv_without_the_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "intents.csv"
    path.write_text("utterance_text,intent_id\nhello,1\n")
    with pytest.raises(ValueError, match=r"intents\.csv: expected a text column"):
        load_taxonomy(path)


def test_validate_reports_errors_without_raising(tmp_path: Path) -> None:
    broken = bikes()
    broken["intents"][2]["parent"] = "payments"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    report = validate_taxonomy(path)
    assert not report.ok
    assert report.errors == [
        f"{path}: intent 'ride_charge': parent: unknown intent or group 'payments'"
    ]
    few = bikes()
    few["intents"][1]["examples"] = few["intents"][1]["examples"][:3]
    (tmp_path / "few.yaml").write_text(yaml.safe_dump(few))
    warned = validate_taxonomy(tmp_path / "few.yaml")
    assert warned.ok and any("'ebike_battery' has 3 examples" in w for w in warned.warnings)


def test_version_hash_follows_content_not_formatting() -> None:
    base = load_taxonomy(BIKES)
    reordered = dict(reversed(list(copy.deepcopy(BIKES).items())))
    assert load_taxonomy(reordered).taxonomy_version == base.taxonomy_version
    edited = bikes()
    edited["intents"][0]["examples"][0] = "the bike will not unlock after scanning"
    other = load_taxonomy(edited)
    # Same `version` string, different content: a new lineage all the same.
    assert other.version == base.version == "2024.3"
    assert other.taxonomy_version != base.taxonomy_version
    assert other.taxonomy_version.startswith("2024.3+") and len(other.taxonomy_version) == 15


# ---------------------------------------------------------------- model artefact


def test_artefact_round_trip_and_version_refusal(
    bike_model: IntentModel, embedder: SentenceEmbedder, tmp_path: Path
) -> None:
    taxonomy = load_taxonomy(BIKES)
    assert bike_model.classes == ["unlock_problem", "ebike_battery", "ride_charge", OUT_OF_SCOPE]
    texts = ["my bike is stuck in the dock", "why did you charge me 12 euros for a short trip"]
    labels, probs = bike_model.predict(texts)
    assert labels == ["unlock_problem", "ride_charge"]

    path = bike_model.save(tmp_path / "bikes.npz")
    with np.load(path, allow_pickle=False) as data:  # arrays and text only, no pickle
        assert not any(data[k].dtype == object for k in data.files)
    loaded = IntentModel.load(path, taxonomy_version=taxonomy.taxonomy_version, embedder=embedder)
    loaded_labels, loaded_probs = loaded.predict(texts)
    assert loaded_labels == labels
    np.testing.assert_allclose(loaded_probs, probs, atol=1e-5)
    assert loaded.threshold == bike_model.threshold
    assert loaded.temperature == pytest.approx(bike_model.temperature)

    edited = bikes(version="2024.4")
    with pytest.raises(IntentModelMismatchError) as info:
        IntentModel.load(path, taxonomy_version=load_taxonomy(edited).taxonomy_version)
    assert taxonomy.taxonomy_version in str(info.value) and "2024.4+" in str(info.value)


def test_custom_taxonomy_component_caches_its_model(
    embedder: SentenceEmbedder, make_doc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVOLENS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "bikes.yaml"
    path.write_text(yaml.safe_dump(BIKES, sort_keys=False))
    first = IntentComponent({"taxonomy": str(path)}, embedder=embedder)
    cached = cached_model_path(first.taxonomy_version)
    assert cached == tmp_path / "cache" / "intents" / f"{first.taxonomy_version}.npz"
    assert cached.exists()
    stamp = cached.stat().st_mtime_ns
    second = IntentComponent({"taxonomy": str(path)}, embedder=embedder)
    assert cached.stat().st_mtime_ns == stamp  # loaded, not retrained and rewritten
    assert second.taxonomy_version == first.taxonomy_version
    assert second.model_id == "all-MiniLM-L6-v2+svm-knn"

    doc = make_doc(
        "bike",
        [
            ("c", "Hello, the e-bike I took has a completely flat battery"),
            ("a", "Sorry about that! Which station are you at?"),
            ("c", "also the app charged me for two hours, I only rode for 15 minutes"),
        ],
    )
    [labels] = second([doc])
    found = utterance_labels(labels)
    assert set(found) == {"bike:0", "bike:2"}
    assert found["bike:0"].value["intent"] == "ebike_battery"
    assert found["bike:0"].value["path"] == ["rides", "unlock_problem", "ebike_battery"]
    assert found["bike:0"].value["parent"] == "unlock_problem"
    assert found["bike:2"].value["intent"] == "ride_charge"
    assert found["bike:2"].value["path"] == ["ride_charge"]

    # An artefact for another taxonomy version is refused, not silently used.
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(bikes(version="9")))
    with pytest.raises(IntentModelMismatchError, match="trained for taxonomy version"):
        IntentComponent({"taxonomy": str(other), "model": str(cached)}, embedder=embedder)


def test_train_report_shows_cross_validated_accuracy(
    embedder: SentenceEmbedder, tmp_path: Path
) -> None:
    report = train_taxonomy(Taxonomy.model_validate(BIKES), tmp_path / "m.npz", embedder=embedder)
    assert report.classes == 3 and report.examples == 14 and report.out_of_scope_examples == 4
    assert report.output == str(tmp_path / "m.npz") and (tmp_path / "m.npz").exists()
    assert report.cv_accuracy is not None and 0.5 <= report.cv_accuracy <= 1.0
    assert [s.intent for s in report.intents] == ["unlock_problem", "ebike_battery", "ride_charge"]
    assert all(s.cv_accuracy is not None for s in report.intents)
    assert report.threshold_source == "out_of_scope examples"
    assert 0.0 <= report.threshold < 1.0
    assert IntentModel.load(tmp_path / "m.npz").taxonomy_version == report.taxonomy_version


def test_threshold_rules() -> None:
    rng = np.random.default_rng(0)
    in_scope = rng.uniform(0.2, 1.0, 1000)
    correct = in_scope > 0.3
    # No off-topic examples: the 2% least confident in-scope examples are rejected.
    alone = choose_threshold(in_scope, correct)
    assert np.mean(in_scope < alone) == pytest.approx(TARGET_REJECTION, abs=0.002)
    # Off-topic examples that score low pull the threshold up, never past the cap.
    off_topic = rng.uniform(0.0, 0.5, 200)
    with_oos = choose_threshold(in_scope, correct, off_topic)
    assert with_oos > alone
    assert np.mean(in_scope < with_oos) <= MAX_FALSE_REJECTION + 0.001


def test_taxonomy_without_out_of_scope_rejects_few_in_scope_queries(
    embedder: SentenceEmbedder,
) -> None:
    """Banking77 as published, 12 examples per intent, no out_of_scope list: the threshold
    comes from the examples' own cross-validation and keeps nearly all new in-scope text."""
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "intents" / "banking77"
    if not (path / "train.csv").exists():
        pytest.fail(f"{path} is missing: the shared datasets sit beside the checkout")
    full = load_taxonomy(path / "train.csv")
    small = full.model_copy(
        update={
            "intents": [i.model_copy(update={"examples": i.examples[:12]}) for i in full.intents]
        }
    )
    model = train_intent_model(small, embedder)
    assert model.metadata["threshold_source"] == "target rejection"
    assert model.metadata["cv"]["false_rejection"] <= 0.03
    held = [(e, i.name) for i in full.intents for e in i.examples[12:17]]
    probs, confidence = model.scores([t for t, _ in held])
    labels, _ = model.decide(probs, confidence=confidence)
    rejected = np.mean([label == OUT_OF_SCOPE for label in labels])
    right = np.mean([label == name for label, (_, name) in zip(labels, held, strict=True)])
    assert rejected <= 0.05, rejected  # 1.8% when written
    assert right >= 0.8, right  # 85.7%


# ---------------------------------------------------------------- component, default taxonomy


def test_specific_intents_on_customer_text(component: IntentComponent, make_doc: Any) -> None:
    cases = {
        "I was charged twice for my subscription this month": ("double_charge", "billing"),
        "how do I export my data to CSV": ("how_to", "product"),
        "I want to cancel my account": ("cancel_subscription", "subscription"),
        "Hi <PERSON>, I can't log in, my email is <EMAIL_ADDRESS>": ("login_problem", "account"),
    }
    docs = [make_doc(f"d{n}", [("c", text)]) for n, text in enumerate(cases)]
    results = component(docs)
    for (text, (intent, parent)), labels in zip(cases.items(), results, strict=True):
        [utterance] = [a for a in labels if a.label == "intent.utterance"]
        assert utterance.value["intent"] == intent, text
        assert utterance.value["parent"] == parent
        assert utterance.value["path"] == [parent, intent]
        assert utterance.value["out_of_scope"] is False
        top = utterance.value["top"]
        assert len(top) == 3 and top[0][0] == intent
        assert top[0][1] >= top[1][1] >= top[2][1]
        assert utterance.confidence == pytest.approx(top[0][1], abs=1e-4)
        assert utterance.confidence is not None and utterance.confidence > 0.5
        [ev] = utterance.evidence
        assert (ev.start_char, ev.end_char) == (0, len(text))


def test_off_topic_is_out_of_scope(component: IntentComponent, make_doc: Any) -> None:
    text = "what's the weather in Paris tomorrow"
    doc = make_doc("oos", [("c", text)])
    [labels] = component([doc])
    [utterance] = labels  # no primary intent: nothing in scope
    assert utterance.label == "intent.utterance"
    assert utterance.value["intent"] == OUT_OF_SCOPE
    assert utterance.value["out_of_scope"] is True
    assert utterance.value["path"] == [] and utterance.value["parent"] is None
    assert utterance.confidence is not None and utterance.confidence > 0.5
    assert utterance.evidence[0].end_char == len(text)


def test_conversation_labels_customer_turns_and_primary(
    component: IntentComponent, make_doc: Any
) -> None:
    turns = [
        ("c", "Hi"),
        ("c", "I was charged twice for my subscription this month, can you fix it?"),
        ("a", "I'm sorry about that. How do I know which card was charged?"),
        ("a", "Customer is angry, check the duplicate payment in Stripe"),
        ("c", "ok thanks"),
        ("c", "the same payment shows up two times on my bank statement"),
        ("c", "and while you're at it, how do I download my invoices as a PDF?"),
    ]
    doc = make_doc("conv", turns, internal={3})
    [labels] = component([doc])
    found = utterance_labels(labels)
    # Backchannels ("Hi", "ok thanks"), agent turns and the internal note get no label.
    assert set(found) == {"conv:1", "conv:5", "conv:6"}
    assert found["conv:1"].value["intent"] == "double_charge"
    assert found["conv:5"].value["intent"] == "double_charge"
    [primary] = [a for a in labels if a.label == "intent.primary"]
    assert primary.utterance_id is None
    assert primary.value["intent"] == "double_charge"
    assert primary.value["path"] == ["billing", "double_charge"]
    assert primary.value["utterances"] == ["conv:1", "conv:5"]
    assert [(e.utterance_id, e.start_char, e.end_char) for e in primary.evidence] == [
        ("conv:1", 0, len(turns[1][1])),
        ("conv:5", 0, len(turns[5][1])),
    ]
    assert primary.value["candidates"][0][0] == "double_charge"
    assert primary.confidence is not None and 0.5 < primary.confidence <= 1.0


def test_primary_favours_the_opening_request(component: IntentComponent, make_doc: Any) -> None:
    doc = make_doc(
        "open",
        [
            ("c", "I'd like to cancel my subscription please"),
            ("a", "Can I ask why you are leaving?"),
            ("c", "it's too expensive, how much is the basic plan these days?"),
        ],
    )
    [labels] = component([doc])
    found = utterance_labels(labels)
    assert found["open:0"].value["intent"] == "cancel_subscription"
    [primary] = [a for a in labels if a.label == "intent.primary"]
    assert primary.value["intent"] == "cancel_subscription"
    assert [e.utterance_id for e in primary.evidence] == ["open:0"]


def test_backchannel_rule() -> None:
    for text in ("ok", "Thanks!", "ok thank you so much", "yes please", "hi there", "👍", "12345"):
        assert is_backchannel(text), text
    for text in ("no, that's not right", "refund", "agent", "thanks, you've been brilliant"):
        assert not is_backchannel(text), text
