"""Problem-statement clustering on real MiniLM embeddings and a warehouse built by ingest."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from convolens.analytics.cluster_store import (
    assign_new,
    cluster_conversations,
    cluster_members,
    current_run_id,
    list_clusters,
    read_statements,
    refresh_clusters,
)
from convolens.analytics.clustering import (
    ClusterParams,
    PreviousCluster,
    assign,
    cluster_texts,
    label_clusters,
)
from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.embeddings import SentenceEmbedder, shared_embedder
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse, WarehouseError

# Five problems, each worded ten ways (few shared words inside a group: "confusing setup"
# and "don't know what to do first" have none).
GROUPS = {
    "onboarding": [
        "confusing setup",
        "don't know what to do first",
        "the setup process is really confusing",
        "I signed up but have no idea where to start",
        "the onboarding steps are unclear to me",
        "which step comes first after creating the workspace?",
        "getting started is overwhelming, too many options",
        "I'm lost in the initial configuration",
        "not sure how to get started with the setup",
        "the setup wizard makes no sense to me",
    ],
    "double_charge": [
        "I was charged twice this month",
        "there are two identical charges on my card",
        "you billed me two times for the same subscription",
        "please refund the duplicate payment",
        "my credit card was debited twice for one order",
        "I see a double charge on my bank statement",
        "I want my money back for the extra charge",
        "why did you take the payment twice?",
        "duplicate charge for my annual renewal",
        "refund the second charge please, I only bought one plan",
    ],
    "login": [
        "I can't log in to my account",
        "the password reset email never arrives",
        "I'm locked out after too many login attempts",
        "forgot my password and can't sign in",
        "the login page keeps rejecting my password",
        "unable to access my account since yesterday",
        "my two-factor code is not accepted when I sign in",
        "sign in fails with invalid credentials",
        "how do I reset my password?",
        "I keep getting logged out and can't get back in",
    ],
    "app_crash": [
        "the mobile app crashes when I open it",
        "the iPhone app closes immediately on launch",
        "the Android app keeps freezing and shutting down",
        "the app crashes every time I open a dashboard",
        "your app force closes after the latest update",
        "the iOS app quits as soon as I tap a report",
        "app crashed again on my phone",
        "the mobile application stops responding and crashes",
        "since the update the app won't stay open",
        "every time I start the app it crashes",
    ],
    "delivery": [
        "my package hasn't arrived yet",
        "where is my order? tracking hasn't updated in a week",
        "the delivery is late",
        "the courier says delivered but nothing came",
        "my shipment is stuck in transit",
        "it's been ten days and my order still hasn't shipped",
        "the parcel never showed up at my address",
        "when will my order be delivered?",
        "tracking number shows no movement for days",
        "my items were supposed to arrive on Monday and didn't",
    ],
}
TEXTS = [t for texts in GROUPS.values() for t in texts]
TRUTH = [g for g, texts in GROUPS.items() for _ in texts]
KEYS = [f"{g}-{i:02d}" for g, texts in GROUPS.items() for i in range(len(texts))]
# Words one of which each group's label must contain.
LABEL_WORDS = {
    "onboarding": {"setup", "started", "confusing", "onboarding"},
    "double_charge": {"charge", "charged", "twice", "duplicate", "refund"},
    "login": {"password", "login", "log", "sign"},
    "app_crash": {"app", "crashes", "crash"},
    "delivery": {"order", "delivered", "delivery", "package", "arrived", "tracking"},
}
PARAPHRASE = "Hi, the same payment was taken from my account two times"
UNRELATED = "What is the best pizza topping for a birthday party?"


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return shared_embedder()


@pytest.fixture(scope="module")
def vectors(embedder: SentenceEmbedder) -> np.ndarray:
    return embedder.embed(TEXTS)


def by_group(assignments: list[str | None]) -> dict[str, set[str | None]]:
    out: dict[str, set[str | None]] = {}
    for group, cluster in zip(TRUTH, assignments, strict=True):
        out.setdefault(group, set()).add(cluster)
    return out


def test_paraphrases_cluster_together_without_a_count(vectors: np.ndarray) -> None:
    result = cluster_texts(KEYS, TEXTS, vectors)
    groups = by_group(result.assignments)
    # Every group is exactly one cluster, and no two groups share one: 5 clusters found
    # without being told 5.
    assert all(len(clusters) == 1 and None not in clusters for clusters in groups.values())
    assert len({next(iter(c)) for c in groups.values()}) == 5
    assert len(result.clusters) == 5 and result.unclustered_share == 0.0
    onboarding = result.assignments[TEXTS.index("confusing setup")]
    assert result.assignments[TEXTS.index("don't know what to do first")] == onboarding

    for cluster in result.clusters:
        [group] = {
            g for g, c in zip(TRUTH, result.assignments, strict=True) if c == cluster.cluster_id
        }
        words = {w for phrase in cluster.phrases[:3] for w in phrase.split()}
        assert words & LABEL_WORDS[group], (group, cluster.phrases)
        assert cluster.label == ", ".join(cluster.phrases[:3])
        assert cluster.representative in GROUPS[group]
        assert cluster.size == 10
        assert abs(np.linalg.norm(cluster.centroid) - 1) < 1e-4
    sizes = [c.size for c in result.clusters]
    assert sizes == sorted(sizes, reverse=True)
    assert all(0.3 <= s <= 1.0 for s in result.similarities)


def test_ids_stable_across_runs_orders_and_refits(vectors: np.ndarray) -> None:
    first = cluster_texts(KEYS, TEXTS, vectors)
    again = cluster_texts(KEYS, TEXTS, vectors)
    assert again.model_dump() == first.model_dump()
    # The order of the input does not matter.
    order = list(range(len(KEYS)))
    random.Random(7).shuffle(order)
    shuffled = cluster_texts([KEYS[i] for i in order], [TEXTS[i] for i in order], vectors[order])
    assert {KEYS[i]: a for i, a in zip(order, shuffled.assignments, strict=True)} == dict(
        zip(KEYS, first.assignments, strict=True)
    )
    # A refit on a changed corpus (two texts fewer) keeps the matching clusters' ids.
    previous = [
        PreviousCluster(cluster_id=c.cluster_id, centroid=c.centroid) for c in first.clusters
    ]
    keep = [i for i in range(len(KEYS)) if i not in (0, 11)]
    refit = cluster_texts(
        [KEYS[i] for i in keep], [TEXTS[i] for i in keep], vectors[keep], previous=previous
    )
    assert refit.kept_ids == 5
    assert {c.cluster_id for c in refit.clusters} == {c.cluster_id for c in first.clusters}
    # Without the previous run, ids are hashes of the central members: new ones here.
    fresh = cluster_texts([KEYS[i] for i in keep], [TEXTS[i] for i in keep], vectors[keep])
    assert fresh.kept_ids == 0


def test_assign_and_floor(embedder: SentenceEmbedder, vectors: np.ndarray) -> None:
    result = cluster_texts(KEYS, TEXTS, vectors)
    centroids = np.asarray([c.centroid for c in result.clusters])
    best, score = assign(embedder.embed([PARAPHRASE, UNRELATED]), centroids, 0.3)
    charge = result.assignments[TEXTS.index("I was charged twice this month")]
    assert result.clusters[int(best[0])].cluster_id == charge and score[0] > 0.6
    assert best[1] == -1 and score[1] < 0.3
    # A higher floor leaves the texts far from every centroid unclustered.
    strict = cluster_texts(KEYS, TEXTS, vectors, ClusterParams(floor=0.6))
    assert 0.05 < strict.unclustered_share < 0.9
    kept = [s for a, s in zip(strict.assignments, strict.similarities, strict=True) if a]
    assert min(kept) >= 0.6
    assert strict.assignments[TEXTS.index("don't know what to do first")] is None


def test_labels_skip_fillers_and_pii_tags() -> None:
    [phrases] = label_clusters(
        [
            [
                "Hi <PERSON>, I was charged twice for my renewal",
                "hello, yes, charged twice again on my card",
                "Thanks. The renewal was charged twice.",
            ]
        ]
    )
    assert phrases[0] == "charged twice"
    assert not {"hi", "hello", "yes", "thanks", "person"} & {w for p in phrases for w in p.split()}


# -- warehouse ------------------------------------------------------------------------------


def conversation(source_id: str, customer: list[str]) -> dict[str, object]:
    messages: list[dict[str, str]] = []
    for text in customer:
        messages.append({"author": "c1", "text": text})
        messages.append({"author": "a1", "text": "Thanks, let me look into that for you."})
    return {
        "id": source_id,
        "channel": "chat",
        "started_at": "2026-10-01T09:00:00Z",
        "participants": [
            {"id": "c1", "name": "Customer", "role": "customer"},
            {"id": "a1", "name": "Agent", "role": "agent"},
        ],
        "messages": messages,
    }


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def ids_by_source(warehouse: Warehouse) -> dict[str, str]:
    rows = warehouse.query("SELECT source_id, conversation_id FROM conversations_current")
    return {r["source_id"]: r["conversation_id"] for r in rows}


class FixedIntents(Component):
    """Labels the utterances whose text is in `in_scope` as an in-scope intent."""

    name = "fixed-intents"
    version = "1"
    assigns: ClassVar[tuple[str, ...]] = ("intent.utterance",)

    def __init__(self, in_scope: set[str]) -> None:
        super().__init__()
        self.in_scope = in_scope

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        out = []
        for doc in batch:
            labels = []
            for utterance, uid in zip(doc.conversation.utterances, doc.utterance_ids, strict=True):
                intent = "double_charge" if utterance.text in self.in_scope else "out_of_scope"
                labels.append(
                    Annotation(
                        "intent.utterance",
                        {"intent": intent},
                        0.9,
                        uid,
                        [Evidence(uid, 0, len(utterance.text))],
                    )
                )
            out.append(labels)
        return out


def test_warehouse_fit_assign_and_refit(
    warehouse: Warehouse, tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    # Each chat opens with a greeting (under four words: not the statement), then the problem.
    records = [conversation(key, ["Hi there", text]) for key, text in zip(KEYS, TEXTS, strict=True)]
    ingest_paths(warehouse, [write_jsonl(tmp_path / "first.jsonl", records)])
    ids = ids_by_source(warehouse)
    with pytest.raises(WarehouseError, match="no clusters yet"):
        assign_new(warehouse, embedder=embedder)

    run = cluster_conversations(warehouse, embedder=embedder)
    assert run.kind == "fit" and run.statements == 50 and run.unclustered == 0
    assert len(run.clusters) == 5 and run.kept_ids == 0
    members = warehouse.query(
        "SELECT m.conversation_id, m.cluster_id, u.text FROM cluster_members_current m "
        "JOIN utterances_current u USING (utterance_id)"
    )
    assert len(members) == 50
    cluster_of = {m["conversation_id"]: m["cluster_id"] for m in members}
    assert {m["text"] for m in members} == set(TEXTS)  # the statement, not "Hi there"
    for group, texts in GROUPS.items():
        found = {cluster_of[ids[f"{group}-{i:02d}"]] for i in range(len(texts))}
        assert len(found) == 1
    charge = cluster_of[ids["double_charge-00"]]
    summary = {c.cluster_id: c for c in run.clusters}[charge]
    assert summary.size == 10 and len(summary.examples) == 3
    assert {w for p in summary.phrases[:3] for w in p.split()} & LABEL_WORDS["double_charge"]
    stored = warehouse.query(
        "SELECT phrases, centroid FROM clusters WHERE cluster_id = ?", [charge]
    )
    assert stored[0]["phrases"] == summary.phrases and len(stored[0]["centroid"]) == 384

    # Stable ids: a second fit over the same conversations gives the same clusters.
    again = cluster_conversations(warehouse, embedder=embedder)
    assert again.kept_ids == 5 and again.run_id != run.run_id
    assert [c.model_dump() for c in again.clusters] == [c.model_dump() for c in run.clusters]
    assert current_run_id(warehouse) == again.run_id

    # New arrivals: a paraphrase joins the double-charge cluster, pizza joins nothing.
    new = [conversation("new-1", [PARAPHRASE]), conversation("new-2", [UNRELATED])]
    ingest_paths(warehouse, [write_jsonl(tmp_path / "second.jsonl", new)])
    ids = ids_by_source(warehouse)
    assigned = assign_new(warehouse, embedder=embedder)
    assert (assigned.kind, assigned.statements, assigned.clustered) == ("assign", 2, 1)
    assert assigned.fit_run_id == again.run_id
    rows = {
        r["conversation_id"]: r
        for r in warehouse.query(
            "SELECT * FROM cluster_members_current WHERE run_id = ?", [again.run_id]
        )
    }
    assert rows[ids["new-1"]]["cluster_id"] == charge
    assert rows[ids["new-1"]]["assigned_run_id"] == assigned.run_id
    assert rows[ids["new-2"]]["cluster_id"] is None
    assert {c.cluster_id: c.size for c in assigned.clusters}[charge] == 11
    assert ids["new-1"] in {m.conversation_id for m in cluster_members(warehouse, charge)}
    # Nothing new since: nothing to do; the CLI's refresh assigns rather than refits.
    assert refresh_clusters(warehouse).statements == 0
    refit = refresh_clusters(warehouse, refit=True)
    assert refit.kind == "fit" and refit.kept_ids == 5 and refit.unclustered == 1
    assert charge in {c.cluster_id for c in list_clusters(warehouse)}


def test_statement_prefers_an_in_scope_utterance(warehouse: Warehouse, tmp_path: Path) -> None:
    chit_chat = "Thanks for getting back to me so quickly today"
    problem = "I was charged twice for the annual plan"
    records = [
        conversation("chat-a", [chit_chat, problem]),
        conversation("chat-b", ["hello", "ok", "my package hasn't arrived yet"]),
    ]
    ingest_paths(warehouse, [write_jsonl(tmp_path / "chats.jsonl", records)])
    ids = ids_by_source(warehouse)
    # Readers neither need nor create the cluster tables (read-only warehouses).
    assert current_run_id(warehouse) is None and list_clusters(warehouse) == []
    tables = "SELECT count(*) AS n FROM information_schema.tables WHERE table_name LIKE 'cluster%'"
    assert warehouse.query(tables) == [{"n": 0}]
    # Without intent labels: the first customer utterance of at least four words.
    before = {r["conversation_id"]: r["text"] for r in read_statements(warehouse)}
    assert before == {ids["chat-a"]: chit_chat, ids["chat-b"]: "my package hasn't arrived yet"}
    enrich(warehouse, [FixedIntents({problem})])
    after = {r["conversation_id"]: r["text"] for r in read_statements(warehouse)}
    assert after[ids["chat-a"]] == problem
