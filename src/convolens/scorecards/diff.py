"""What a new scorecard version changed: outcome counts per criterion and moved conversations.

Rescoring writes the new version's labels beside the old ones (as a new taxonomy does);
this compares, on the conversations both versions scored, each criterion's pass / fail /
N/A counts, the mean total, and which conversations moved on which criterion.
"""

from __future__ import annotations

import json
from collections import Counter

from pydantic import BaseModel

from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = ["CriterionChange", "MovedOutcome", "ScorecardDiff", "diff_versions", "versions_of"]


class CriterionChange(BaseModel):
    criterion: str
    before: dict[str, int]
    after: dict[str, int]


class MovedOutcome(BaseModel):
    conversation_id: str
    source_id: str | None
    criterion: str
    before: str | None
    after: str | None


class ScorecardDiff(BaseModel):
    scorecard: str
    from_version: str
    to_version: str
    conversations: int
    mean_before: float | None
    mean_after: float | None
    criteria: list[CriterionChange]
    moved: list[MovedOutcome]


def versions_of(warehouse: Warehouse, scorecard: str) -> list[str]:
    """The scorecard's versions that scored something, oldest first."""
    rows = warehouse.query(
        "SELECT value->>'scorecard_version' AS v, min(created_at) AS first FROM enrichments "
        "WHERE component = 'scorecard' AND label = 'scorecard.total' "
        "AND value->>'scorecard' = ? GROUP BY 1 ORDER BY 2, 1",
        [scorecard],
    )
    return [r["v"] for r in rows]


def _resolve(versions: list[str], ref: str, scorecard: str) -> str:
    if ref in ("latest", "previous"):
        index = -1 if ref == "latest" else -2
        if len(versions) < -index:
            raise WarehouseError(f"scorecard {scorecard!r} has no {ref} version to compare")
        return versions[index]
    found = [v for v in versions if v == ref or v.startswith(ref)]
    if len(found) != 1:
        known = ", ".join(versions) or "none"
        raise WarehouseError(f"no single {scorecard!r} version matches {ref!r}; known: {known}")
    return found[0]


def diff_versions(
    warehouse: Warehouse, scorecard: str, from_ref: str = "previous", to_ref: str = "latest"
) -> ScorecardDiff:
    """Compare two versions of a scorecard where both scored the same conversation version."""
    versions = versions_of(warehouse, scorecard)
    before, after = _resolve(versions, from_ref, scorecard), _resolve(versions, to_ref, scorecard)
    rows = warehouse.query(
        "WITH s AS (SELECT conversation_id, version, label, value, created_at, "
        "value->>'scorecard_version' AS sv FROM enrichments WHERE component = 'scorecard' "
        "AND value->>'scorecard' = ? AND value->>'scorecard_version' IN (?, ?)), "
        # Newest run of each version per conversation version (a version may run twice).
        "runs AS (SELECT conversation_id, version, sv, max(created_at) AS at FROM s "
        "WHERE label = 'scorecard.total' GROUP BY ALL), "
        "both_ AS (SELECT conversation_id, version FROM runs GROUP BY ALL HAVING count(*) = 2) "
        "SELECT s.conversation_id, c.source_id, s.sv, s.label, s.value FROM s "
        "JOIN runs r ON r.conversation_id = s.conversation_id AND r.version = s.version "
        "AND r.sv = s.sv AND r.at = s.created_at "
        "JOIN both_ b ON b.conversation_id = s.conversation_id AND b.version = s.version "
        "LEFT JOIN conversations c ON c.conversation_id = s.conversation_id "
        "AND c.version = s.version ORDER BY 1",
        [scorecard, before, after],
    )
    outcomes: dict[tuple[str, str], dict[str, str]] = {}
    totals: dict[str, list[float]] = {before: [], after: []}
    sources: dict[str, str | None] = {}
    for r in rows:
        value = json.loads(r["value"])
        sources[r["conversation_id"]] = r["source_id"]
        if r["label"] == "scorecard.total":
            if value.get("score") is not None:
                totals[r["sv"]].append(float(value["score"]))
        else:
            outcomes.setdefault((r["conversation_id"], value["criterion"]), {})[r["sv"]] = value[
                "outcome"
            ]
    criteria: dict[str, tuple[Counter[str], Counter[str]]] = {}
    moved = []
    for (cid, criterion), by_version in sorted(outcomes.items()):
        counts = criteria.setdefault(criterion, (Counter(), Counter()))
        old, new = by_version.get(before), by_version.get(after)
        if old:
            counts[0][old] += 1
        if new:
            counts[1][new] += 1
        if old != new:
            moved.append(
                MovedOutcome(
                    conversation_id=cid,
                    source_id=sources.get(cid),
                    criterion=criterion,
                    before=old,
                    after=new,
                )
            )

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 1) if values else None

    return ScorecardDiff(
        scorecard=scorecard,
        from_version=before,
        to_version=after,
        conversations=len(sources),
        mean_before=mean(totals[before]),
        mean_after=mean(totals[after]),
        criteria=[
            CriterionChange(criterion=name, before=dict(b), after=dict(a))
            for name, (b, a) in sorted(criteria.items())
        ],
        moved=moved,
    )
