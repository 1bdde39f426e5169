"""Problem-statement clusters of the warehouse's conversations: fit, store, assign new ones.

One statement per conversation: the customer's first *worded* utterance (two words or
more, one of them not a stop word or filler: "confusing setup" and "I can't log in" are,
"Hi there" and "ok thanks" are not) that the intents component labelled in scope
(`intent.utterance` other than out_of_scope), or, where none is, the customer's first
worded utterance. That skips greetings and chit-chat and lands on "I was charged two times
for my subscription this month" in most chats, calls and emails. Conversations without a
customer utterance (meetings of unknown roles, agent-only notes) have no statement. PII
tags are removed and the text cut to 400 characters before embedding: the problem is
stated first, and a long email's signature and order lines only dilute its vector.

`cluster_conversations` clusters every current statement (`clustering.cluster_texts`) and
stores the run: `clusters` (label, phrases, centroid, ...) and `cluster_members` (one row
per statement, cluster_id NULL where it is below the floor of every cluster). A refit keeps
the ids of clusters that match the previous run's. `assign_new` places the statements of
conversations (or new conversation versions) not yet seen by the current run on the
nearest stored centroid, or leaves them unclustered, without moving anything else; refit
now and then to let new problems form clusters of their own.

The current run is the latest finished run of kind "cluster" (see `runs`); the
`cluster_members_current` view holds its members for current conversation versions, for
joins with the rest of the warehouse (trends per cluster, clusters per account, ...).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from convolens.analytics.clustering import (
    ClusterParams,
    PreviousCluster,
    assign,
    cluster_texts,
    stop_words,
)
from convolens.store.warehouse import Warehouse, WarehouseError, now_utc

__all__ = [
    "DDL",
    "ClusterMember",
    "ClusterRun",
    "ClusterSummary",
    "assign_new",
    "cluster_conversations",
    "cluster_members",
    "current_run_id",
    "ensure_tables",
    "list_clusters",
    "read_statements",
    "refresh_clusters",
]

FIT_KIND = "cluster"
ASSIGN_KIND = "cluster-assign"
MAX_CHARS = 400

DDL = """
CREATE TABLE IF NOT EXISTS clusters (
    cluster_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,            -- the fit run (runs.kind = 'cluster')
    label VARCHAR NOT NULL,             -- top phrases, comma-separated
    phrases VARCHAR[] NOT NULL,         -- c-TF-IDF top n-grams
    representative VARCHAR NOT NULL,    -- the member statement nearest the centroid
    size INTEGER NOT NULL,              -- current members (updated by assign_new)
    centroid FLOAT[] NOT NULL,          -- unit mean of the members' embeddings
    model_id VARCHAR NOT NULL,          -- the embedding model of the centroid
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_members (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    utterance_id VARCHAR NOT NULL,      -- the problem statement
    cluster_id VARCHAR,                 -- NULL: below the floor of every cluster
    similarity DOUBLE NOT NULL,         -- cosine to the nearest centroid
    run_id VARCHAR NOT NULL,            -- the fit run whose clusters these are
    assigned_run_id VARCHAR NOT NULL,   -- the run that placed it (the fit or an assign_new)
    assigned_at TIMESTAMPTZ NOT NULL
);
CREATE OR REPLACE VIEW cluster_runs_current AS
    SELECT run_id FROM runs WHERE kind = 'cluster' AND finished_at IS NOT NULL
    ORDER BY started_at DESC, run_id DESC LIMIT 1;
CREATE OR REPLACE VIEW cluster_members_current AS
    SELECT m.* FROM cluster_members m
    JOIN conversation_heads h USING (conversation_id, version)
    WHERE m.run_id = (SELECT run_id FROM cluster_runs_current);
"""

# The statement of each current conversation (module docstring); `{where}` narrows it.
STATEMENTS_SQL = """
WITH customer AS (
    SELECT u.conversation_id, u.version, u.utterance_id, u.seq, u.text,
           trim(regexp_replace(u.text, '<[A-Z_]+>', ' ', 'g')) AS clean
    FROM utterances_current u
    JOIN participants_current p USING (conversation_id, version, participant_id)
    WHERE p.role = 'customer' AND NOT u.internal
), worded AS (
    SELECT * FROM customer
    WHERE len(regexp_split_to_array(clean, '\\s+')) >= 2
      AND len(list_filter(
          regexp_extract_all(lower(clean), '[a-z][a-z'']*[a-z]'),
          lambda w: NOT list_contains($stop, w)
      )) >= 1
), in_scope AS (
    SELECT DISTINCT utterance_id FROM labels_current
    WHERE label = 'intent.utterance' AND utterance_id IS NOT NULL
      AND coalesce(value->>'intent', 'out_of_scope') <> 'out_of_scope'
), ranked AS (
    SELECT w.*, row_number() OVER (
        PARTITION BY w.conversation_id ORDER BY (s.utterance_id IS NULL), w.seq
    ) AS rank
    FROM worded w LEFT JOIN in_scope s USING (utterance_id)
)
SELECT conversation_id, version, utterance_id, text,
       left(regexp_replace(clean, '\\s+', ' ', 'g'), {max_chars}) AS clean
FROM ranked s WHERE rank = 1 {where}
ORDER BY conversation_id
"""

_MEMBER_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("version", pa.int32()),
        ("utterance_id", pa.string()),
        ("cluster_id", pa.string()),
        ("similarity", pa.float64()),
        ("run_id", pa.string()),
        ("assigned_run_id", pa.string()),
        ("assigned_at", pa.timestamp("us", tz="UTC")),
    ]
)
_CLUSTER_SCHEMA = pa.schema(
    [
        ("cluster_id", pa.string()),
        ("run_id", pa.string()),
        ("label", pa.string()),
        ("phrases", pa.list_(pa.string())),
        ("representative", pa.string()),
        ("size", pa.int32()),
        ("centroid", pa.list_(pa.float32())),
        ("model_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


class ClusterMember(BaseModel):
    conversation_id: str
    utterance_id: str
    text: str
    similarity: float


class ClusterSummary(BaseModel):
    cluster_id: str
    label: str
    phrases: list[str]
    representative: str
    size: int
    examples: list[ClusterMember]


class ClusterRun(BaseModel):
    """What a fit or an assignment did, and the current clusters after it."""

    run_id: str
    kind: str  # "fit" or "assign"
    fit_run_id: str
    statements: int  # statements looked at in this run
    clustered: int
    unclustered: int
    kept_ids: int | None = None  # fit only: clusters that kept the previous run's id
    elapsed_s: float
    clusters: list[ClusterSummary]


def ensure_tables(warehouse: Warehouse) -> None:
    warehouse.con.execute(DDL)


def current_run_id(warehouse: Warehouse) -> str | None:
    """The current fit run, or None when nothing was clustered yet.

    Readers do not create the tables, so that they work on a read-only warehouse too.
    """
    exists = warehouse.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cluster_runs_current'"
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = warehouse.con.execute("SELECT run_id FROM cluster_runs_current").fetchone()
    return str(row[0]) if row else None


def read_statements(warehouse: Warehouse, *, unseen_by: str | None = None) -> list[dict[str, Any]]:
    """The statement of each current conversation (`unseen_by`: only those the given fit
    run has no member row for, at their current version)."""
    where, params = "", dict[str, Any]()
    if unseen_by is not None:
        where = (
            "AND NOT EXISTS (SELECT 1 FROM cluster_members m WHERE m.run_id = $run "
            "AND m.conversation_id = s.conversation_id AND m.version = s.version)"
        )
        params = {"run": unseen_by}
    sql = STATEMENTS_SQL.format(max_chars=MAX_CHARS, where=where)
    cursor = warehouse.con.execute(sql, {"stop": sorted(stop_words()), **params})
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def cluster_conversations(
    warehouse: Warehouse,
    *,
    params: ClusterParams | None = None,
    embedder: Any | None = None,
    examples: int = 3,
) -> ClusterRun:
    """Cluster every current conversation's statement and store the run as the current one."""
    ensure_tables(warehouse)
    params = params or ClusterParams()
    embedder = embedder or _embedder()
    started = time.perf_counter()
    previous_run = current_run_id(warehouse)
    previous = [
        PreviousCluster(cluster_id=row["cluster_id"], centroid=row["centroid"])
        for row in warehouse.query(
            "SELECT cluster_id, centroid FROM clusters WHERE run_id = ? AND model_id = ? "
            "ORDER BY cluster_id",
            [previous_run, embedder.model_id],
        )
    ]
    # Started first so that its time is the fit's; it becomes current only once finished.
    run_id = warehouse.start_run(
        FIT_KIND, {"params": params.model_dump(), "model_id": embedder.model_id}
    )
    rows = read_statements(warehouse)
    vectors = embedder.embed([r["clean"] for r in rows])
    result = cluster_texts(
        [r["conversation_id"] for r in rows], [r["text"] for r in rows], vectors, params, previous
    )
    at = now_utc()
    clusters: dict[str, list[Any]] = {name: [] for name in _CLUSTER_SCHEMA.names}
    for c in result.clusters:
        Warehouse.append_row(
            clusters,
            cluster_id=c.cluster_id,
            run_id=run_id,
            label=c.label,
            phrases=c.phrases,
            representative=c.representative,
            size=c.size,
            centroid=c.centroid,
            model_id=embedder.model_id,
            created_at=at,
        )
    members = _members(rows, result.assignments, result.similarities, run_id, run_id, at)
    stats = _stats(result.assignments) | {"clusters": len(result.clusters)}
    with warehouse.transaction():
        warehouse.insert_columns("clusters", clusters, _CLUSTER_SCHEMA)
        warehouse.insert_columns("cluster_members", members, _MEMBER_SCHEMA)
        warehouse.finish_run(run_id, stats | {"kept_ids": result.kept_ids})
    return ClusterRun(
        run_id=run_id,
        kind="fit",
        fit_run_id=run_id,
        statements=len(rows),
        clustered=stats["clustered"],
        unclustered=stats["unclustered"],
        kept_ids=result.kept_ids,
        elapsed_s=round(time.perf_counter() - started, 3),
        clusters=list_clusters(warehouse, examples=examples),
    )


def assign_new(
    warehouse: Warehouse, *, embedder: Any | None = None, examples: int = 3
) -> ClusterRun:
    """Put conversations that arrived since the current fit into its clusters (nearest
    centroid at or above the fit's floor) or leave them unclustered."""
    ensure_tables(warehouse)
    fit_run = current_run_id(warehouse)
    if fit_run is None:
        raise WarehouseError("no clusters yet: run 'convolens clusters --refit' first")
    started = time.perf_counter()
    args = warehouse.con.execute("SELECT args FROM runs WHERE run_id = ?", [fit_run]).fetchone()
    stored = json.loads(args[0]) if args and args[0] else {}
    params = ClusterParams(**stored.get("params", {}))
    embedder = embedder or _embedder(stored.get("model_id"))
    centres = warehouse.query(
        "SELECT cluster_id, centroid FROM clusters WHERE run_id = ? ORDER BY cluster_id",
        [fit_run],
    )
    rows = read_statements(warehouse, unseen_by=fit_run)
    run_id = warehouse.start_run(ASSIGN_KIND, {"fit_run_id": fit_run})
    assignments: list[str | None] = []
    similarities: list[float] = []
    if rows and centres:
        centroids = np.asarray([c["centroid"] for c in centres], dtype=np.float64)
        best, score = assign(embedder.embed([r["clean"] for r in rows]), centroids, params.floor)
        assignments = [centres[int(b)]["cluster_id"] if b >= 0 else None for b in best]
        similarities = [round(float(s), 6) for s in score]
    elif rows:
        assignments, similarities = [None] * len(rows), [0.0] * len(rows)
    members = _members(rows, assignments, similarities, fit_run, run_id, now_utc())
    stats = _stats(assignments)
    with warehouse.transaction():
        warehouse.insert_columns("cluster_members", members, _MEMBER_SCHEMA)
        # Sizes follow the current members: new arrivals, and versions that replaced others.
        warehouse.con.execute(
            """
            UPDATE clusters SET size = coalesce(n.size, 0)
            FROM (SELECT k.cluster_id, count(m.cluster_id) AS size
                  FROM clusters k LEFT JOIN cluster_members_current m USING (cluster_id)
                  WHERE k.run_id = ? GROUP BY k.cluster_id) n
            WHERE clusters.run_id = ? AND clusters.cluster_id = n.cluster_id
            """,
            [fit_run, fit_run],
        )
        warehouse.finish_run(run_id, stats)
    return ClusterRun(
        run_id=run_id,
        kind="assign",
        fit_run_id=fit_run,
        statements=len(rows),
        clustered=stats["clustered"],
        unclustered=stats["unclustered"],
        elapsed_s=round(time.perf_counter() - started, 3),
        clusters=list_clusters(warehouse, examples=examples),
    )


def refresh_clusters(
    warehouse: Warehouse, *, refit: bool = False, params: ClusterParams | None = None
) -> ClusterRun:
    """Fit when asked or when there are no clusters yet, else assign what is new."""
    if refit or current_run_id(warehouse) is None:
        return cluster_conversations(warehouse, params=params)
    return assign_new(warehouse)


def list_clusters(
    warehouse: Warehouse, *, run_id: str | None = None, examples: int = 3
) -> list[ClusterSummary]:
    """The clusters of a run (default: the current one), largest first, each with its
    `examples` most central member statements."""
    run_id = run_id or current_run_id(warehouse)
    if run_id is None:
        return []
    rows = warehouse.query(
        """
        WITH members AS (
            SELECT m.cluster_id, m.conversation_id, m.utterance_id, u.text, m.similarity,
                   row_number() OVER (
                       PARTITION BY m.cluster_id ORDER BY m.similarity DESC, m.conversation_id
                   ) AS rank
            FROM cluster_members m
            JOIN conversation_heads h USING (conversation_id, version)
            JOIN utterances_current u USING (utterance_id)
            WHERE m.run_id = ? AND m.cluster_id IS NOT NULL
        )
        SELECT k.cluster_id, k.label, k.phrases, k.representative, k.size,
               list({'conversation_id': e.conversation_id, 'utterance_id': e.utterance_id,
                     'text': e.text, 'similarity': e.similarity} ORDER BY e.rank)
                   FILTER (WHERE e.rank IS NOT NULL) AS examples
        FROM clusters k LEFT JOIN members e ON e.cluster_id = k.cluster_id AND e.rank <= ?
        WHERE k.run_id = ?
        GROUP BY ALL
        ORDER BY k.size DESC, k.cluster_id
        """,
        [run_id, examples, run_id],
    )
    return [
        ClusterSummary(
            cluster_id=r["cluster_id"],
            label=r["label"],
            phrases=list(r["phrases"]),
            representative=r["representative"],
            size=r["size"],
            examples=[ClusterMember(**e) for e in r["examples"] or []],
        )
        for r in rows
    ]


def cluster_members(
    warehouse: Warehouse, cluster_id: str, *, run_id: str | None = None
) -> list[ClusterMember]:
    """A cluster's current member statements, most similar to its centroid first."""
    run_id = run_id or current_run_id(warehouse)
    if run_id is None:
        return []
    rows = warehouse.query(
        """
        SELECT m.conversation_id, m.utterance_id, u.text, m.similarity
        FROM cluster_members m
        JOIN conversation_heads h USING (conversation_id, version)
        JOIN utterances_current u USING (utterance_id)
        WHERE m.run_id = ? AND m.cluster_id = ?
        ORDER BY m.similarity DESC, m.conversation_id
        """,
        [run_id, cluster_id],
    )
    return [ClusterMember(**r) for r in rows]


def _members(
    rows: list[dict[str, Any]],
    assignments: list[str | None],
    similarities: list[float],
    fit_run: str,
    run_id: str,
    at: Any,
) -> dict[str, list[Any]]:
    return {
        "conversation_id": [r["conversation_id"] for r in rows],
        "version": [r["version"] for r in rows],
        "utterance_id": [r["utterance_id"] for r in rows],
        "cluster_id": list(assignments),
        "similarity": list(similarities),
        "run_id": [fit_run] * len(rows),
        "assigned_run_id": [run_id] * len(rows),
        "assigned_at": [at] * len(rows),
    }


def _stats(assignments: list[str | None]) -> dict[str, int]:
    unclustered = sum(a is None for a in assignments)
    return {
        "statements": len(assignments),
        "clustered": len(assignments) - unclustered,
        "unclustered": unclustered,
    }


def _embedder(model: str | None = None) -> Any:
    from convolens.enrich.embeddings import shared_embedder

    # The default model is stored under its short name; shared_embedder() loads it.
    return shared_embedder(None if model in (None, "all-MiniLM-L6-v2") else model)
