"""The corpus topic hierarchy: the conversations' keyphrases grouped into topics and themes.

Each conversation's `topic.keyphrase` labels (from the `topics` component) are read from
the warehouse, the distinct phrases embedded with the shared MiniLM model, and clustered
agglomeratively (cosine distance, average linkage, no fixed number of clusters) twice:

1. phrases into topics, with a tight threshold: "refund request", "money back" and
   "refund status" are one topic, "password reset" another;
2. topics (their centroids) into parent groups, with a looser one: billing, access, ...

Agglomerative clustering with a distance threshold needs no number of topics up front, and
average linkage keeps a topic from chaining through one ambiguous phrase, which single
linkage would. A topic is named by its most frequent phrase (most conversations; the most
central one on a tie), and its id is a hash of its sorted phrases, so the same phrases give
the same id in every run.

Pairwise clustering is quadratic in memory, so at most `max_phrases` phrases (the most
frequent) are clustered; each rarer phrase joins the nearest topic if it lies within the
topic threshold of its centroid, and is left out otherwise (a phrase said once, about
nothing else, is not a topic).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from convolens.store.warehouse import Warehouse

__all__ = [
    "DEFAULT_GROUP_THRESHOLD",
    "DEFAULT_TOPIC_THRESHOLD",
    "TopicNode",
    "build_hierarchy",
    "read_keyphrases",
    "topic_hierarchy",
]

# all-MiniLM-L6-v2 cosines: paraphrases of one topic ("refund request" / "money back" 0.54,
# "refund status" 0.81) average above 0.5, while different issues ("refund request" /
# "password reset" 0.25, "card payment" / "app crash" 0.05) stay well below.
DEFAULT_TOPIC_THRESHOLD = 0.5  # cosine distance: average similarity >= 0.5
# Themes: topics whose centroids average a similarity >= 0.3 ("billing" with "invoice"
# 0.61, "card payment" 0.60), not unrelated issues (~0.1-0.25).
DEFAULT_GROUP_THRESHOLD = 0.7
DEFAULT_MAX_PHRASES = 5000
LABEL = "topic.keyphrase"


class TopicNode(BaseModel):
    """A topic (level 1) or a parent group of topics (level 0, with `children`)."""

    topic_id: str
    label: str
    level: int = Field(ge=0, le=1)
    phrases: list[str]
    conversation_count: int
    conversation_ids: list[str]
    children: list[TopicNode] = Field(default_factory=list)


def read_keyphrases(warehouse: Warehouse, *, label: str = LABEL) -> dict[str, set[str]]:
    """phrase -> ids of the current conversations it was found in.

    Only each conversation's latest run of the labelling counts: a recomputed
    conversation keeps its old rows in `enrichments`, and two runs' phrases would mix.
    """
    rows = warehouse.con.execute(
        """
        WITH found AS (
            SELECT conversation_id, run_id, created_at, value
            FROM enrichments_current WHERE label = ?
        ), latest AS (
            SELECT conversation_id, arg_max(run_id, created_at) AS run_id
            FROM found GROUP BY conversation_id
        )
        SELECT f.conversation_id, f.value FROM found f JOIN latest USING (conversation_id, run_id)
        """,
        [label],
    ).fetchall()
    phrases: dict[str, set[str]] = defaultdict(set)
    for conversation_id, value in rows:
        data: Any = json.loads(value) if isinstance(value, str) else value
        phrase = data.get("phrase") if isinstance(data, dict) else None
        if isinstance(phrase, str) and phrase.strip():
            phrases[phrase.strip().lower()].add(conversation_id)
    return dict(phrases)


def topic_hierarchy(
    warehouse: Warehouse,
    *,
    min_conversations: int = 1,
    topic_threshold: float = DEFAULT_TOPIC_THRESHOLD,
    group_threshold: float = DEFAULT_GROUP_THRESHOLD,
    max_phrases: int = DEFAULT_MAX_PHRASES,
    embedder: Any | None = None,
    label: str = LABEL,
) -> list[TopicNode]:
    """Parent groups (largest first), each with its topics as `children`.

    `min_conversations` drops topics found in fewer conversations; `embedder` is a
    `SentenceEmbedder` (default: the shared all-MiniLM-L6-v2, the keyphrases' own model).
    """
    phrases = read_keyphrases(warehouse, label=label)
    if not phrases:
        return []
    if embedder is None:
        from convolens.enrich.embeddings import shared_embedder

        embedder = shared_embedder()
    return build_hierarchy(
        phrases,
        embedder,
        min_conversations=min_conversations,
        topic_threshold=topic_threshold,
        group_threshold=group_threshold,
        max_phrases=max_phrases,
    )


def build_hierarchy(
    phrases: dict[str, set[str]],
    embedder: Any,
    *,
    min_conversations: int = 1,
    topic_threshold: float = DEFAULT_TOPIC_THRESHOLD,
    group_threshold: float = DEFAULT_GROUP_THRESHOLD,
    max_phrases: int = DEFAULT_MAX_PHRASES,
) -> list[TopicNode]:
    """The two-level hierarchy of `phrases` (phrase -> conversation ids)."""
    if not 0 < topic_threshold <= group_threshold <= 2:
        raise ValueError("thresholds must satisfy 0 < topic_threshold <= group_threshold <= 2")
    if max_phrases < 1:
        raise ValueError("max_phrases must be at least 1")
    # Most frequent first; alphabetical on ties so the order (and the result) is stable.
    names = sorted(phrases, key=lambda p: (-len(phrases[p]), p))
    if not names:
        return []
    vectors = _unit(np.asarray(embedder.embed(names), dtype=np.float32))
    head = min(len(names), max_phrases)
    labels = _cluster(vectors[:head], topic_threshold)
    members: dict[int, list[int]] = defaultdict(list)
    for index, cluster in enumerate(labels):
        members[int(cluster)].append(index)
    if head < len(names):
        clusters = sorted(members)
        centroids = _unit(np.vstack([vectors[members[c]].mean(axis=0) for c in clusters]))
        similarity = vectors[head:] @ centroids.T
        best = similarity.argmax(axis=1)
        for offset, (column, score) in enumerate(
            zip(best, similarity[np.arange(len(best)), best], strict=True)
        ):
            if 1.0 - float(score) <= topic_threshold:
                members[clusters[int(column)]].append(head + offset)

    topics: list[tuple[TopicNode, np.ndarray]] = []
    for indices in members.values():
        node, centroid = _node([names[i] for i in indices], vectors[indices], phrases, level=1)
        if node.conversation_count >= min_conversations:
            topics.append((node, centroid))
    if not topics:
        return []
    centroids = np.vstack([c for _, c in topics])
    groups: dict[int, list[int]] = defaultdict(list)
    for index, cluster in enumerate(_cluster(centroids, group_threshold)):
        groups[int(cluster)].append(index)

    out: list[TopicNode] = []
    for indices in groups.values():
        children = sorted((topics[i][0] for i in indices), key=_order)
        ids = sorted({c for child in children for c in child.conversation_ids})
        # The group is named after its biggest topic; its id hashes all its phrases.
        every = sorted({p for child in children for p in child.phrases})
        out.append(
            TopicNode(
                topic_id=_topic_id("g", every),
                label=children[0].label,
                level=0,
                phrases=[p for child in children for p in child.phrases],
                conversation_count=len(ids),
                conversation_ids=ids,
                children=children,
            )
        )
    return sorted(out, key=_order)


def _cluster(vectors: np.ndarray, threshold: float) -> np.ndarray:
    if len(vectors) == 1:
        return np.zeros(1, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=threshold
    )
    result: np.ndarray = model.fit_predict(vectors)
    return result


def _node(
    names: list[str], vectors: np.ndarray, phrases: dict[str, set[str]], *, level: int
) -> tuple[TopicNode, np.ndarray]:
    centroid = _unit(vectors.mean(axis=0, keepdims=True))[0]
    centrality = vectors @ centroid
    # Most conversations first, then the most central, then alphabetical.
    order = sorted(
        range(len(names)), key=lambda i: (-len(phrases[names[i]]), -centrality[i], names[i])
    )
    ordered = [names[i] for i in order]
    ids = sorted({c for p in ordered for c in phrases[p]})
    node = TopicNode(
        topic_id=_topic_id("t", sorted(ordered)),
        label=ordered[0],
        level=level,
        phrases=ordered,
        conversation_count=len(ids),
        conversation_ids=ids,
    )
    return node, centroid


def _order(node: TopicNode) -> tuple[int, str]:
    return (-node.conversation_count, node.label)


def _topic_id(prefix: str, phrases: list[str]) -> str:
    digest = hashlib.sha256("\x1f".join(phrases).encode("utf-8")).hexdigest()[:12]
    return f"{prefix}-{digest}"


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return result
