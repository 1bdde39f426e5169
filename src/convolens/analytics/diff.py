"""What changed between two enrichment runs: label counts and moved primary intents.

Reprocessing (a new taxonomy, a new component version) writes its labels beside the old
ones; this compares the two sets of rows. Labels are counted per component, label and
category: the value's most telling field (the intent, tracker, signal, status, sentiment
label, entity type...), so "billing.refund 41 -> 37" reads directly.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = ["LabelCount", "MovedIntent", "RunDiff", "RunInfo", "diff_runs", "list_runs"]

# The first of these value fields present names the label's category.
_CATEGORY = (
    "coalesce(value->>'intent', value->>'tracker', value->>'signal', value->>'status', "
    "value->>'label', value->>'type', value->>'kind', '')"
)


class RunInfo(BaseModel):
    run_id: str
    kind: str
    started_at: str
    components: dict[str, str]
    conversations: int | None = None


class LabelCount(BaseModel):
    component: str
    label: str
    category: str
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before


class MovedIntent(BaseModel):
    conversation_id: str
    source_id: str | None = None
    before: str | None
    after: str | None


class RunDiff(BaseModel):
    from_run: str
    to_run: str
    conversations_before: int
    conversations_after: int
    counts: list[LabelCount]
    moved_primary_intents: list[MovedIntent]

    @property
    def changed(self) -> list[LabelCount]:
        return [c for c in self.counts if c.change]


def list_runs(warehouse: Warehouse, kind: str | None = "enrich", limit: int = 20) -> list[RunInfo]:
    """The newest runs first (enrichment runs by default)."""
    rows = warehouse.query(
        "SELECT run_id, kind, strftime(started_at, '%Y-%m-%d %H:%M:%S') AS started, "
        "coalesce(args->'components', '{}') AS components, "
        "TRY_CAST(stats->>'conversations' AS INTEGER) AS conversations FROM runs "
        + ("WHERE kind = ? " if kind else "")
        + "ORDER BY runs.started_at DESC, run_id DESC LIMIT ?",
        [kind, limit] if kind else [limit],
    )
    return [
        RunInfo(
            run_id=r["run_id"],
            kind=r["kind"],
            started_at=r["started"],
            components=json.loads(r["components"]) if r["components"] else {},
            conversations=r["conversations"],
        )
        for r in rows
    ]


def resolve_run(warehouse: Warehouse, ref: str) -> str:
    """A run id from an id, an unambiguous prefix, or "latest" / "previous": the last two
    enrichment runs that labelled something (a run that found everything up to date is
    not a state to compare)."""
    if ref in ("latest", "previous"):
        runs = [r for r in list_runs(warehouse, "enrich", limit=1000) if r.conversations][:2]
        index = 0 if ref == "latest" else 1
        if len(runs) <= index:
            raise WarehouseError(f"there is no {ref} enrichment run")
        return runs[index].run_id
    rows = warehouse.query(
        "SELECT run_id FROM runs WHERE run_id = ? OR run_id LIKE ? || '%' ORDER BY run_id",
        [ref, ref],
    )
    ids = [r["run_id"] for r in rows]
    if ref in ids:
        return ref
    if not ids:
        raise WarehouseError(f"no run matches {ref!r}; 'convolens runs' lists them")
    if len(ids) > 1:
        raise WarehouseError(f"{ref!r} is ambiguous: {', '.join(ids[:5])}")
    return ids[0]


def diff_runs(
    warehouse: Warehouse, from_run: str, to_run: str, *, component: str | None = None
) -> RunDiff:
    """Counts per (component, label, category) in each run, and the conversations whose
    primary intent differs between them (compared where both runs labelled it)."""
    before_id, after_id = resolve_run(warehouse, from_run), resolve_run(warehouse, to_run)
    where = "AND component = ?3" if component else ""
    params: list[str] = [before_id, after_id] + ([component] if component else [])
    rows = warehouse.query(
        f"SELECT component, label, {_CATEGORY} AS category, "
        "count(*) FILTER (WHERE run_id = ?1) AS before, "
        "count(*) FILTER (WHERE run_id = ?2) AS after "
        f"FROM enrichments WHERE run_id IN (?1, ?2) {where} "
        "GROUP BY ALL ORDER BY component, label, category",
        params,
    )
    counts = [LabelCount(**r) for r in rows]
    moved = warehouse.query(
        "WITH p AS (SELECT run_id, conversation_id, value->>'intent' AS intent "
        "FROM enrichments WHERE label = 'intent.primary' AND run_id IN (?1, ?2)) "
        "SELECT b.conversation_id, h.source_id, b.intent AS before, a.intent AS after "
        "FROM (SELECT * FROM p WHERE run_id = ?1) b "
        "JOIN (SELECT * FROM p WHERE run_id = ?2) a USING (conversation_id) "
        "LEFT JOIN conversations_current h USING (conversation_id) "
        "WHERE a.intent IS DISTINCT FROM b.intent ORDER BY b.conversation_id",
        [before_id, after_id],
    )
    processed = warehouse.query(
        "SELECT count(DISTINCT conversation_id) FILTER (WHERE run_id = ?1) AS before, "
        "count(DISTINCT conversation_id) FILTER (WHERE run_id = ?2) AS after "
        "FROM enrichment_status WHERE run_id IN (?1, ?2)",
        [before_id, after_id],
    )[0]
    return RunDiff(
        from_run=before_id,
        to_run=after_id,
        conversations_before=int(processed["before"] or 0),
        conversations_after=int(processed["after"] or 0),
        counts=counts,
        moved_primary_intents=[MovedIntent(**r) for r in moved],
    )
