"""Sentiment component: the real MiniLM + VADER model on real sentences, offline."""

from __future__ import annotations

import numpy as np
import pytest

from convolens.enrich.base import Annotation
from convolens.enrich.embeddings import (
    CACHE_KEY,
    SentenceEmbedder,
    utterance_embeddings,
)
from convolens.enrich.sentiment import ARTEFACT, SentimentComponent, SentimentModel

NEGATIVE = "This is the third time my order is late, I'm furious."
POSITIVE = "Thanks so much, that fixed it, you're amazing!"
NEUTRAL = "My order number is 5512."


@pytest.fixture(scope="module")
def component(embedder: SentenceEmbedder) -> SentimentComponent:
    return SentimentComponent(embedder=embedder)


def by_label(labels: list[Annotation], name: str) -> list[Annotation]:
    return [a for a in labels if a.label == name]


def test_artefact_loads_and_is_small() -> None:
    assert ARTEFACT.stat().st_size < 100_000
    model = SentimentModel()
    assert model.classes == ["negative", "neutral", "positive"]
    assert model.coef.shape == (3, 388)
    assert model.feature_names[-1] == "vader_compound"
    assert model.metadata["training_data"] == {"sst2_train": 6920, "tweeteval_val": 2000}
    assert "sst2_dev" in model.metadata["dev"]


@pytest.mark.parametrize(
    ("text", "label"), [(NEGATIVE, "negative"), (POSITIVE, "positive"), (NEUTRAL, "neutral")]
)
def test_utterance_labels(component: SentimentComponent, text: str, label: str, make_doc) -> None:
    doc = make_doc("one", [("c", text)])
    [labels] = component([doc])
    [utterance] = by_label(labels, "sentiment.utterance")
    value = utterance.value
    assert value["label"] == label
    probs = value["probabilities"]
    assert set(probs) == {"negative", "neutral", "positive"}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert value["score"] == pytest.approx(probs["positive"] - probs["negative"], abs=1e-3)
    assert utterance.confidence == pytest.approx(max(probs.values()), abs=1e-3)
    if label == "negative":
        assert value["score"] < -0.3
    if label == "positive":
        assert value["score"] > 0.3


def test_improving_conversation(component: SentimentComponent, make_doc) -> None:
    turns = [
        ("c", NEGATIVE),
        ("a", "I'm sorry to hear that. Can you give me the order number?"),
        ("c", NEUTRAL),
        ("a", "I've expedited it and refunded the shipping fee."),
        ("c", POSITIVE),
    ]
    doc = make_doc("cv-1", turns)
    [labels] = component([doc])
    utterances = by_label(labels, "sentiment.utterance")
    assert [a.utterance_id for a in utterances] == [f"cv-1:{i}" for i in range(5)]
    for annotation, (_, text) in zip(utterances, turns, strict=True):
        [span] = annotation.evidence
        assert span.utterance_id == annotation.utterance_id
        assert (span.start_char, span.end_char) == (0, len(text))

    [conversation] = by_label(labels, "sentiment.conversation")
    value = conversation.value
    assert value["trajectory"] == "improving"
    assert value["trajectory_basis"] == "customer"
    assert value["end"] - value["start"] >= 0.2
    # Evidence: the most negative utterance, then the most positive, each whole.
    assert [e.utterance_id for e in conversation.evidence] == ["cv-1:0", "cv-1:4"]
    assert [e.end_char for e in conversation.evidence] == [len(NEGATIVE), len(POSITIVE)]

    participants = {
        a.value["participant_id"]: a.value for a in by_label(labels, "sentiment.participant")
    }
    assert participants["c"]["utterances"] == 3
    assert participants["a"]["utterances"] == 2
    assert -1.0 <= participants["c"]["score"] <= 1.0


def test_worsening_and_internal_notes_skipped(component: SentimentComponent, make_doc) -> None:
    turns = [
        ("c", "Hi, thanks for the quick reply, that sounds great!"),
        ("a", "Customer is a total nightmare, terrible attitude, ugh."),
        ("c", "This is useless. I want a refund, I'm really angry now."),
    ]
    doc = make_doc("cv-2", turns, internal={1})
    [labels] = component([doc])
    ids = [a.utterance_id for a in by_label(labels, "sentiment.utterance")]
    assert ids == ["cv-2:0", "cv-2:2"]
    # The agent wrote only an internal note, so has no participant label.
    assert [a.value["participant_id"] for a in by_label(labels, "sentiment.participant")] == ["c"]
    [conversation] = by_label(labels, "sentiment.conversation")
    assert conversation.value["trajectory"] == "worsening"
    assert all(e.utterance_id != "cv-2:1" for e in conversation.evidence)


def test_embeddings_are_cached_and_reused(
    component: SentimentComponent, embedder: SentenceEmbedder, make_doc
) -> None:
    doc = make_doc("cv-3", [("c", NEUTRAL), ("a", POSITIVE)])
    component([doc])
    cached = doc.cache[CACHE_KEY]
    assert cached.shape == (2, 384) and cached.dtype == np.float32
    assert np.allclose(np.linalg.norm(cached, axis=1), 1.0, atol=1e-5)
    # A second component (or run) gets the very same array, not a recomputation.
    assert utterance_embeddings(doc, embedder) is cached
    first = component([doc])
    assert doc.cache[CACHE_KEY] is cached
    assert first == component([doc])


def test_batch_of_documents_and_empty(component: SentimentComponent, make_doc) -> None:
    docs = [make_doc("a", [("c", NEGATIVE)]), make_doc("b", [("c", "   ")]), make_doc("c", [])]
    out = component(docs)
    assert len(out) == 3
    assert by_label(out[0], "sentiment.utterance")[0].value["label"] == "negative"
    assert out[1] == [] and out[2] == []
    assert SentimentComponent.model_id == "minilm-vader-lr-v1"
    assert component.embedder.model_id == "all-MiniLM-L6-v2"
