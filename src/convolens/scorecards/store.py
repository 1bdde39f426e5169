"""Scores in the warehouse: the current automatic scores, human QA overrides, and a diff.

Automatic scores are `enrichments` rows of the `scorecard` component. The current score of
a conversation on a scorecard is the newest run that scored it with that scorecard (a
rescore with only the sales card leaves the support scores current). A QA reviewer's
outcome (`qa_scores`) overrides the automatic one for that criterion, and the total is
recomputed with the scorecard's weights.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, Field

from convolens.enrich.base import Annotation, Evidence
from convolens.scorecards.definition import Scorecard, load_scorecard
from convolens.store.warehouse import Warehouse, WarehouseError, now_utc

__all__ = [
    "ConversationScore",
    "CriterionScore",
    "QaEntry",
    "conversation_scores",
    "record_qa",
    "scores_table",
    "stored_annotations",
]

Outcome = Literal["pass", "fail", "na"]


class CriterionScore(BaseModel):
    criterion: str
    section: str
    outcome: Outcome = Field(description="The outcome that counts: the human one if any.")
    auto_outcome: Outcome | None
    human_outcome: Outcome | None = None
    human_note: str | None = None
    reviewer: str | None = None
    reason: str
    weight: float
    auto_fail: bool
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    quotes: list[str] = Field(default_factory=list, description="The evidence's words.")


class ConversationScore(BaseModel):
    conversation_id: str
    version: int
    scorecard: str
    scorecard_version: str
    run_id: str
    score: float | None
    auto_score: float | None
    passed: bool | None
    auto_failed: list[str]
    sections: dict[str, float | None]
    reviewed: bool
    criteria: list[CriterionScore]


class QaEntry(BaseModel):
    criterion: str
    outcome: Outcome
    note: str | None = Field(default=None, max_length=2000)


def stored_annotations(
    warehouse: Warehouse, keys: Sequence[tuple[str, int]], labels: Iterable[str]
) -> dict[tuple[str, int], list[Annotation]]:
    """The current stored labels named `labels` of each (conversation, version)."""
    if not keys:
        return {}
    table = pa.table(
        {"conversation_id": [k[0] for k in keys], "version": [k[1] for k in keys]},
        schema=pa.schema([("conversation_id", pa.string()), ("version", pa.int32())]),
    )
    con = warehouse.con
    con.register("_scorecard_keys", table)
    try:
        rows = con.execute(
            "SELECT l.conversation_id, l.version, l.label, l.value, l.utterance_id, l.evidence "
            "FROM labels_current l JOIN _scorecard_keys k USING (conversation_id, version) "
            "WHERE l.label IN (SELECT unnest(?::VARCHAR[]))",
            [list(labels)],
        ).fetchall()
    finally:
        con.unregister("_scorecard_keys")
    out: dict[tuple[str, int], list[Annotation]] = {}
    for cid, version, label, value, uid, evidence in rows:
        spans = [
            Evidence(e["utterance_id"], e["start"], e["end"]) for e in json.loads(evidence or "[]")
        ]
        out.setdefault((cid, int(version)), []).append(
            Annotation(label, json.loads(value) if value else None, None, uid, spans)
        )
    return out


_LATEST = """
WITH totals AS (
    SELECT e.conversation_id, e.version, e.run_id, e.created_at,
           e.value->>'scorecard' AS scorecard, e.value AS total
    FROM enrichments e JOIN conversation_heads h USING (conversation_id, version)
    WHERE e.component = 'scorecard' AND e.label = 'scorecard.total'
), latest AS (
    SELECT conversation_id, version, scorecard, arg_max(run_id, created_at) AS run_id
    FROM totals GROUP BY ALL
)
"""


def scores_table(
    warehouse: Warehouse,
    *,
    scorecard: str | None = None,
    conversation_ids: Sequence[str] | None = None,
    agent: str | None = None,
) -> list[dict[str, Any]]:
    """One row per current (conversation, scorecard) score with the conversation's agent,
    queue and start: the automatic total (no overrides; `conversation_scores` has them)."""
    where: list[str] = ["1=1"]
    params: list[Any] = []
    if scorecard:
        where.append("t.scorecard = ?")
        params.append(scorecard)
    if conversation_ids is not None:
        where.append("t.conversation_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(conversation_ids))
    if agent:
        where.append("c.agent = ?")
        params.append(agent)
    return warehouse.query(
        _LATEST + "SELECT t.conversation_id, t.version, t.scorecard, t.run_id, "
        "t.total->>'scorecard_version' AS scorecard_version, "
        "TRY_CAST(t.total->>'score' AS DOUBLE) AS score, c.agent, c.queue, c.channel, "
        "c.source_id, c.started_at FROM totals t JOIN latest USING "
        "(conversation_id, version, scorecard, run_id) "
        "JOIN conversations_current c USING (conversation_id, version) "
        f"WHERE {' AND '.join(where)} ORDER BY c.started_at, t.conversation_id, t.scorecard",
        params,
    )


def conversation_scores(
    warehouse: Warehouse,
    conversation_id: str,
    *,
    scorecard: str | None = None,
    quotes: bool = False,
) -> list[ConversationScore]:
    """Every current scorecard score of one conversation, human outcomes applied; with
    `quotes`, each criterion's evidence words too (for roles that may read text)."""
    heads = scores_table(warehouse, scorecard=scorecard, conversation_ids=[conversation_id])
    texts: dict[str, str] = {}
    if quotes and heads:
        texts = {
            r["utterance_id"]: r["text"]
            for r in warehouse.query(
                "SELECT utterance_id, text FROM utterances_current WHERE conversation_id = ?",
                [conversation_id],
            )
        }
    out = []
    for head in heads:
        rows = warehouse.query(
            "SELECT value, evidence FROM enrichments WHERE run_id = ? AND conversation_id = ? "
            "AND version = ? AND label = 'scorecard.criterion' AND value->>'scorecard' = ? "
            "ORDER BY enrichment_id",
            [head["run_id"], conversation_id, head["version"], head["scorecard"]],
        )
        total = warehouse.query(
            "SELECT value FROM enrichments WHERE run_id = ? AND conversation_id = ? AND "
            "version = ? AND label = 'scorecard.total' AND value->>'scorecard' = ?",
            [head["run_id"], conversation_id, head["version"], head["scorecard"]],
        )[0]
        human = _human(warehouse, conversation_id, head["version"], head["scorecard"])
        criteria = []
        for r in rows:
            value = json.loads(r["value"])
            override = human.get(value["criterion"])
            criteria.append(
                CriterionScore(
                    criterion=value["criterion"],
                    section=value["section"],
                    outcome=override["outcome"] if override else value["outcome"],
                    auto_outcome=value["outcome"],
                    human_outcome=override["outcome"] if override else None,
                    human_note=override["note"] if override else None,
                    reviewer=override["reviewer"] if override else None,
                    reason=value["reason"],
                    weight=value["weight"],
                    auto_fail=value["auto_fail"],
                    evidence=json.loads(r["evidence"] or "[]"),
                )
            )
            criteria[-1].quotes = [
                texts[e["utterance_id"]][e["start"] : e["end"]]
                for e in criteria[-1].evidence
                if e["utterance_id"] in texts and e["end"] > e["start"]
            ]
        auto = json.loads(total["value"])
        score, sections, auto_failed = auto["score"], auto["sections"], auto["auto_failed"]
        if human:
            score, sections, auto_failed = _rescore(warehouse, head["scorecard_version"], criteria)
        pass_mark = float(auto.get("pass_mark", 80.0))
        out.append(
            ConversationScore(
                conversation_id=conversation_id,
                version=head["version"],
                scorecard=head["scorecard"],
                scorecard_version=head["scorecard_version"],
                run_id=head["run_id"],
                score=score,
                auto_score=auto["score"],
                passed=None if score is None else score >= pass_mark,
                auto_failed=auto_failed,
                sections=sections,
                reviewed=bool(human),
                criteria=criteria,
            )
        )
    return out


def _rescore(
    warehouse: Warehouse, scorecard_version: str, criteria: list[CriterionScore]
) -> tuple[float | None, dict[str, float | None], list[str]]:
    """Total with human outcomes, weighted as the scorecard that was used weighs them."""
    from convolens.scorecards.component import weighted

    card = scorecard_by_version(warehouse, scorecard_version)
    outcomes = {c.criterion: c.outcome for c in criteria}
    if card is not None:
        return weighted(card, outcomes)
    # A scorecard from a file not stored: weigh criteria flat within their sections.
    possible = sum(c.weight for c in criteria if c.outcome != "na")
    got = sum(c.weight for c in criteria if c.outcome == "pass")
    failed = [c.criterion for c in criteria if c.auto_fail and c.outcome == "fail"]
    total = None if not possible else (0.0 if failed else round(100 * got / possible, 1))
    return total, {}, failed


def scorecard_by_version(warehouse: Warehouse, scorecard_version: str) -> Scorecard | None:
    """The scorecard that produced `scorecard_version`: a stored or a shipped one."""
    from convolens.scorecards.definition import DEFAULT_SCORECARDS

    rows = warehouse.query(
        "SELECT content FROM scorecard_versions WHERE scorecard_version = ? LIMIT 1",
        [scorecard_version],
    )
    if rows:
        return load_scorecard(json.loads(rows[0]["content"]))
    for path in DEFAULT_SCORECARDS:
        card = load_scorecard(path)
        if card.scorecard_version == scorecard_version:
            return card
    return None


def _human(
    warehouse: Warehouse, conversation_id: str, version: int, scorecard: str
) -> dict[str, dict[str, Any]]:
    rows = warehouse.query(
        "SELECT criterion, arg_max(outcome, created_at) AS outcome, "
        "arg_max(note, created_at) AS note, arg_max(reviewer, created_at) AS reviewer "
        "FROM qa_scores WHERE conversation_id = ? AND version = ? AND scorecard = ? "
        "GROUP BY criterion",
        [conversation_id, version, scorecard],
    )
    return {r["criterion"]: r for r in rows}


def record_qa(
    warehouse: Warehouse,
    conversation_id: str,
    scorecard: str,
    entries: Sequence[QaEntry],
    reviewer: str | None,
) -> ConversationScore:
    """Store a reviewer's outcomes for criteria of a scored conversation; unknown
    criteria are refused (naming them) so a typo never stores a verdict nobody reads."""
    current = conversation_scores(warehouse, conversation_id, scorecard=scorecard)
    if not current:
        raise WarehouseError(
            f"{conversation_id} has no {scorecard!r} score to review; score it first"
        )
    known = {c.criterion for c in current[0].criteria}
    unknown = sorted({e.criterion for e in entries} - known)
    if unknown:
        raise WarehouseError(
            f"scorecard {scorecard!r} has no criterion {', '.join(unknown)}; "
            f"it has {', '.join(sorted(known))}"
        )
    now = now_utc()
    with warehouse.transaction():
        for entry in entries:
            warehouse.con.execute(
                "INSERT INTO qa_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    conversation_id,
                    current[0].version,
                    scorecard,
                    entry.criterion,
                    entry.outcome,
                    entry.note,
                    reviewer,
                    now,
                ],
            )
    return conversation_scores(warehouse, conversation_id, scorecard=scorecard)[0]


class QaFileScore(BaseModel):
    source_id: str = Field(description="A conversation id, prefix or source id.")
    scorecard: str
    outcomes: dict[str, Outcome]
    notes: dict[str, str] = Field(default_factory=dict)


class QaFile(BaseModel):
    """Hand scores as a reviewer writes them (YAML): see tests/scorecards/data."""

    reviewer: str = Field(min_length=1)
    scores: list[QaFileScore]


def import_qa_file(warehouse: Warehouse, path: str | Path) -> int:
    """Record every score of a QA file; returns how many criteria were recorded. Errors
    name the file and the entry (a conversation not found, an unknown criterion)."""
    import yaml
    from pydantic import ValidationError

    name = Path(path).name
    try:
        qa = QaFile.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
        reason = str(exc).splitlines()[0] if not isinstance(exc, OSError) else exc.strerror
        raise WarehouseError(f"{name}: not a QA file: {reason}") from None
    recorded = 0
    for number, score in enumerate(qa.scores, start=1):
        try:
            conversation_id = warehouse.resolve_id(score.source_id)
            entries = [
                QaEntry(criterion=c, outcome=o, note=score.notes.get(c))
                for c, o in score.outcomes.items()
            ]
            record_qa(warehouse, conversation_id, score.scorecard, entries, qa.reviewer)
        except WarehouseError as exc:
            raise WarehouseError(f"{name}: score {number} ({score.source_id}): {exc}") from None
        recorded += len(score.outcomes)
    return recorded


def remember_scorecard(warehouse: Warehouse, card: Scorecard, created_by: str | None) -> bool:
    """Keep the scorecard a run scores with (`scorecard_versions`), so its weights are known
    when a human review recomputes a total; True when this version was new."""
    known = warehouse.query(
        "SELECT 1 FROM scorecard_versions WHERE scorecard_version = ?", [card.scorecard_version]
    )
    if known:
        return False
    content = json.dumps(card.model_dump(mode="json"), sort_keys=True)
    with warehouse.transaction():
        latest = warehouse.query(
            "SELECT coalesce(max(version), 0) AS v FROM scorecard_versions WHERE name = ?",
            [card.name],
        )[0]["v"]
        warehouse.con.execute(
            "UPDATE scorecard_versions SET active = false WHERE name = ?", [card.name]
        )
        warehouse.con.execute(
            "INSERT INTO scorecard_versions VALUES (?, ?, ?, ?, true, ?, ?)",
            [card.name, latest + 1, card.scorecard_version, content, created_by, now_utc()],
        )
    return True
