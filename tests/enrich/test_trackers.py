"""Trackers component: the real MiniLM model and real sentences, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from convolens.enrich.base import Annotation
from convolens.enrich.embeddings import CACHE_KEY, SentenceEmbedder, utterance_embeddings
from convolens.enrich.registry import component_class
from convolens.enrich.trackers import DEFAULT_TRACKERS, TrackerComponent, load_trackers


@pytest.fixture(scope="module")
def component(embedder: SentenceEmbedder) -> TrackerComponent:
    return TrackerComponent(embedder=embedder)


def matches(labels: list[Annotation], tracker: str, kind: str | None = None) -> list[Annotation]:
    return [
        a
        for a in labels
        if a.label == "tracker.match"
        and a.value["tracker"] == tracker
        and (kind is None or a.value["match"] == kind)
    ]


def test_registered_and_default_file_loads() -> None:
    assert component_class("trackers") is TrackerComponent
    names = {t.name for t in load_trackers(DEFAULT_TRACKERS)}
    assert {"churn_risk", "pricing_objection", "bug_report", "escalation_request"} <= names


def test_exact_matches_every_occurrence_with_offsets(component: TrackerComponent, make_doc) -> None:
    text = "The app keeps crashing on login, and on export it Keeps Crashing too."
    doc = make_doc("exact", [("c", text)])
    [labels] = component([doc])
    found = matches(labels, "bug_report", "exact")
    assert len(found) == 2
    for a in found:
        [ev] = a.evidence
        assert ev.utterance_id == "exact:0"
        assert text[ev.start_char : ev.end_char].lower() == "keeps crashing"
        assert a.value["text"] == text[ev.start_char : ev.end_char]
        assert a.confidence == 1.0
    assert [a.evidence[0].start_char for a in found] == [8, text.index("Keeps")]
    # A phrase match stands in for the semantic one: no duplicate for the same tracker.
    assert not matches(labels, "bug_report", "semantic")


def test_exact_respects_word_boundaries(component: TrackerComponent, make_doc) -> None:
    doc = make_doc("words", [("c", "Our supervisors approved the rollout.")])
    [labels] = component([doc])
    assert not matches(labels, "escalation_request", "exact")


def test_fuzzy_matches_a_misspelling(component: TrackerComponent, make_doc) -> None:
    text = "Please cancle my subscription before the next billing date."
    doc = make_doc("fuzzy", [("c", text)])
    [labels] = component([doc])
    [a] = matches(labels, "churn_risk", "fuzzy")
    [ev] = a.evidence
    assert text[ev.start_char : ev.end_char] == "cancle my subscription"
    assert a.value["phrase"] == "cancel my subscription"
    assert 0.9 <= (a.confidence or 0) < 1.0
    assert not matches(labels, "churn_risk", "exact")


def test_semantic_paraphrase_and_unrelated(component: TrackerComponent, make_doc) -> None:
    doc = make_doc(
        "sem",
        [
            ("c", "Honestly we are looking at what else is out there before renewing"),
            ("c", "The invoice was sent on Tuesday."),
        ],
    )
    [labels] = component([doc])
    [a] = matches(labels, "churn_risk", "semantic")
    assert a.utterance_id == "sem:0"
    assert a.evidence[0].start_char == 0
    assert a.evidence[0].end_char == len(doc.conversation.utterances[0].text)
    assert a.value["similarity"] >= 0.6
    assert a.value["example"] in component.trackers[0].examples
    assert not [x for x in labels if x.utterance_id == "sem:1"]


def test_roles_filter_and_internal_notes(component: TrackerComponent, make_doc) -> None:
    doc = make_doc(
        "roles",
        [
            ("a", "To cancel my subscription you would click Billing, then Cancel plan."),
            ("a", "Customer wants to cancel my subscription, keeps crashing, see ticket."),
            ("c", "I want to speak to a manager."),
        ],
        internal={1},
    )
    [labels] = component([doc])
    assert not [a for a in labels if a.utterance_id in ("roles:0", "roles:1")]
    assert matches(labels, "escalation_request", "exact")[0].utterance_id == "roles:2"


def test_custom_toml_via_config(tmp_path: Path, embedder: SentenceEmbedder, make_doc) -> None:
    path = tmp_path / "trackers.toml"
    path.write_text(
        '[[tracker]]\nname = "refund"\nphrases = ["money back"]\n'
        'examples = ["I want a refund for my order."]\nthreshold = 0.5\n'
    )
    custom = TrackerComponent({"trackers": str(path)}, embedder=embedder)
    doc = make_doc("toml", [("a", "You will get your money back."), ("c", "Can I be refunded?")])
    [labels] = custom([doc])
    assert [a.value["match"] for a in matches(labels, "refund")] == ["exact", "semantic"]
    default = TrackerComponent(embedder=embedder)
    assert custom.taxonomy_version != default.taxonomy_version
    listed = TrackerComponent({"definitions": load_trackers(path)}, embedder=embedder)
    assert listed.taxonomy_version == custom.taxonomy_version


def test_malformed_definition_names_tracker_and_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"tracker 'broken'.*threshold"):
        load_trackers([{"name": "broken", "phrases": ["x"], "threshold": "high"}])
    with pytest.raises(ValueError, match=r"tracker 'typo'.*phrse"):
        load_trackers([{"name": "typo", "phrse": ["x"]}])
    path = tmp_path / "bad.toml"
    path.write_text('[[tracker]]\nname = "empty"\n')
    with pytest.raises(ValueError, match=r"bad.toml: tracker 'empty'.*phrase or example"):
        load_trackers(path)


def test_reuses_cached_embeddings(
    component: TrackerComponent, embedder: SentenceEmbedder, make_doc
) -> None:
    doc = make_doc("cache", [("c", "It would be great if you supported dark mode.")])
    vectors = utterance_embeddings(doc, embedder)
    component([doc])
    assert doc.cache[CACHE_KEY] is vectors
