"""The corpus topic hierarchy, read from labels stored by the real enrichment runner."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from convolens.analytics.topics import TopicNode, build_hierarchy, read_keyphrases, topic_hierarchy
from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.embeddings import SentenceEmbedder, shared_embedder
from convolens.enrich.keyphrases import KeyphraseComponent
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

SUPPORT = Path(__file__).resolve().parents[2] / "examples" / "chats" / "support_chats.jsonl"

# What each of the first conversations (by id) is about, as a keyphrase component would say.
PHRASES = [
    ["refund request", "duplicate charge"],
    ["money back", "cancelled order"],
    ["refund status", "bank statement"],
    ["password reset", "login link"],
    ["password reset", "two-factor code"],
    ["delivery delay", "tracking number"],
]


class FixedKeyphrases(Component):
    """Stores the phrases above as `topic.keyphrase` labels, one conversation each."""

    name = "fixed-keyphrases"
    version = "1"
    assigns: ClassVar[tuple[str, ...]] = ("topic.keyphrase",)

    def __init__(self, order: list[str]) -> None:
        super().__init__()
        self.order = order

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        out = []
        for doc in batch:
            index = self.order.index(doc.conversation_id)
            found = PHRASES[index] if index < len(PHRASES) else []
            out.append(
                [
                    Annotation(
                        "topic.keyphrase",
                        {"phrase": phrase, "score": 0.5, "rank": rank + 1},
                        0.5,
                        None,
                        [Evidence(doc.utterance_ids[0], 0, 1)],
                    )
                    for rank, phrase in enumerate(found)
                ]
            )
        return out


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return shared_embedder()


def ids(warehouse: Warehouse) -> list[str]:
    rows = warehouse.con.execute("SELECT conversation_id FROM conversation_heads ORDER BY 1")
    return [row[0] for row in rows.fetchall()]


def topic_of(groups: list[TopicNode], phrase: str) -> TopicNode:
    [topic] = [t for g in groups for t in g.children if phrase in t.phrases]
    return topic


def test_paraphrases_share_a_topic(warehouse: Warehouse, embedder: SentenceEmbedder) -> None:
    ingest_paths(warehouse, [SUPPORT])
    order = ids(warehouse)
    enrich(warehouse, [FixedKeyphrases(order)])
    groups = topic_hierarchy(warehouse, embedder=embedder)

    refund = topic_of(groups, "refund request")
    assert {"refund request", "money back", "refund status"} <= set(refund.phrases)
    assert "password reset" not in refund.phrases
    assert refund.conversation_ids == sorted(order[:3])
    assert refund.conversation_count == 3
    assert refund.label in {"refund request", "refund status", "money back"}
    assert refund.level == 1 and refund.children == []

    password = topic_of(groups, "password reset")
    # Named by its most frequent phrase: two conversations said "password reset".
    assert password.label == "password reset"
    assert set(order[3:5]) <= set(password.conversation_ids)
    assert password.topic_id != refund.topic_id
    delivery = topic_of(groups, "delivery delay")
    assert "refund request" not in delivery.phrases and "password reset" not in delivery.phrases

    for group in groups:
        assert group.level == 0 and group.children
        assert group.conversation_ids == sorted(
            {c for child in group.children for c in child.conversation_ids}
        )
        assert group.label == group.children[0].label
    # Groups and topics come largest first.
    counts = [g.conversation_count for g in groups]
    assert counts == sorted(counts, reverse=True)

    # Ids are hashes of the phrases: the same labels give the same ids again.
    again = topic_hierarchy(warehouse, embedder=embedder)
    assert [g.model_dump() for g in again] == [g.model_dump() for g in groups]

    # Topics seen in fewer conversations than asked for are left out.
    frequent = topic_hierarchy(warehouse, embedder=embedder, min_conversations=2)
    kept = {p for g in frequent for t in g.children for p in t.phrases}
    assert "money back" in kept and "password reset" in kept
    assert "delivery delay" not in kept


def test_rare_phrases_join_the_nearest_topic(embedder: SentenceEmbedder) -> None:
    phrases = {
        "refund request": {"a", "b", "c"},
        "password reset": {"d", "e"},
        "refund status": {"f"},
        "weather forecast": {"g"},
    }
    # Only the two most frequent phrases are clustered; the rest join within the threshold.
    groups = build_hierarchy(phrases, embedder, max_phrases=2)
    refund = topic_of(groups, "refund request")
    assert refund.phrases == ["refund request", "refund status"]
    assert refund.conversation_ids == ["a", "b", "c", "f"]
    assert all("weather forecast" not in t.phrases for g in groups for t in g.children)
    with pytest.raises(ValueError, match="threshold"):
        build_hierarchy(phrases, embedder, topic_threshold=0.8, group_threshold=0.5)


def test_from_the_keyphrase_component(warehouse: Warehouse, embedder: SentenceEmbedder) -> None:
    ingest_paths(warehouse, [SUPPORT])
    enrich(warehouse, [KeyphraseComponent(embedder=embedder)])
    # A second, recomputing run stores new rows; only the latest run's phrases count.
    enrich(warehouse, [KeyphraseComponent(embedder=embedder)], recompute=True)
    stored = read_keyphrases(warehouse)
    count = warehouse.con.execute(
        "SELECT count(*) FROM enrichments WHERE label = 'topic.keyphrase'"
    ).fetchone()
    assert count is not None
    assert sum(len(c) for c in stored.values()) == count[0] // 2
    groups = topic_hierarchy(warehouse, embedder=embedder)
    covered = {c for g in groups for c in g.conversation_ids}
    assert covered == {c for cs in stored.values() for c in cs}
    assert sorted(p for g in groups for t in g.children for p in t.phrases) == sorted(stored)
    # The duplicate-charge refund chat (ACC-1042) lands in a topic about refunds.
    refund = [t for g in groups for t in g.children if any("refund" in p for p in t.phrases)]
    assert refund
    assert any(t.label.startswith("refund") for t in refund)
