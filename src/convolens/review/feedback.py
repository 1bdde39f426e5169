"""Corrections feed back: reviewed utterances become taxonomy examples, through a checked gate.

1. `candidates`: each utterance whose intent a reviewer corrected (or whose missed intent
   a reviewer added), unless a second reviewer contradicted it.
2. `propose`: the active taxonomy (the active stored version, else the shipped default)
   plus the candidates as examples, stored as the next version with status `draft`.
3. `validate`: the draft's figures on the reviewed items, cross-validated (a fold's own
   candidates are held out of its training set), beside the active taxonomy's on the same
   items; stored with the version, which becomes `validated`.
4. `activate`: only a validated version, only with the figures accepted; the previous
   active version is `retired`, and who approved is recorded.
Statuses: draft -> validated -> active -> retired.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections import Counter, defaultdict
from typing import Any

import yaml

from convolens.enrich.taxonomy import DEFAULT_TAXONOMY, OUT_OF_SCOPE, load_taxonomy
from convolens.review.models import (  # noqa: F401
    Candidate,
    IntentFigure,
    Proposal,
    Status,
    TaxonomyVersion,
    ValidationReport,
)
from convolens.store.warehouse import Warehouse, WarehouseError, now_utc

__all__ = [
    "Candidate",
    "Proposal",
    "TaxonomyVersion",
    "ValidationReport",
    "activate",
    "candidates",
    "known_intents",
    "propose",
    "taxonomy_versions",
    "validate",
]

LABEL = "intent.utterance"


def _active_content(db: Warehouse) -> tuple[dict[str, Any], str]:
    rows = db.query(
        "SELECT content, name, version FROM definitions WHERE kind = 'taxonomy' AND active "
        "ORDER BY created_at DESC LIMIT 1"
    )
    if rows:
        return json.loads(rows[0]["content"]), f"stored {rows[0]['name']} v{rows[0]['version']}"
    return copy.deepcopy(_default_content()), "the shipped default"


@functools.lru_cache(maxsize=1)
def _default_content() -> dict[str, Any]:
    # Parsed once: PyYAML takes most of a second over the shipped file.
    loaded: dict[str, Any] = yaml.safe_load(DEFAULT_TAXONOMY.read_text(encoding="utf-8"))
    return loaded


def known_intents(db: Warehouse) -> set[str]:
    """The intents a reviewer may pick: the active taxonomy's, and out_of_scope."""
    data, _ = _active_content(db)
    return {i["name"] for i in data.get("intents") or [] if isinstance(i, dict)} | {OUT_OF_SCOPE}


def candidates(db: Warehouse) -> list[Candidate]:
    """Utterances reviewers relabelled: their first reviewer's corrected or added intent,
    unless a second reviewer said otherwise."""
    rows = db.query(
        "SELECT i.item_id, i.utterance_id, i.value, i.taxonomy_version, u.text, r.reviewer, "
        "r.reviewer_name, r.verdict, r.corrected_value, r.missed_values FROM review_items i "
        "JOIN reviews r USING (item_id) JOIN utterances_current u USING (utterance_id) "
        "WHERE i.component = 'intents' AND i.label = ? AND r.verdict <> 'skip' "
        "ORDER BY r.created_at, r.review_id",
        [LABEL],
    )
    by_item: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_item[row["item_id"]].append(row)
    out: list[Candidate] = []
    for item_id, reviews in by_item.items():
        first = reviews[0]
        second = next((r for r in reviews[1:] if r["reviewer"] != first["reviewer"]), None)
        said = [first["corrected_value"], *(first["missed_values"] or [])]
        for intent in [v for v in said if v]:
            if second is not None and intent not in (
                second["corrected_value"] or second["value"],
                *(second["missed_values"] or []),
            ):
                continue
            out.append(
                Candidate(
                    item_id=item_id,
                    utterance_id=first["utterance_id"],
                    text=first["text"],
                    intent=intent,
                    model_value=first["value"],
                    taxonomy_version=first["taxonomy_version"],
                    reviewer=first["reviewer_name"] or first["reviewer"],
                )
            )
    return out


def _with_examples(
    base: dict[str, Any], found: list[Candidate]
) -> tuple[dict[str, Any], Counter[str]]:
    """`base` with each candidate's text added under its intent (out_of_scope: to the
    off-topic list); texts already present anywhere are left out."""
    data = copy.deepcopy(base)
    intents = {i["name"]: i for i in data.get("intents") or []}
    seen = {" ".join(e.split()).lower() for i in intents.values() for e in i.get("examples", [])}
    seen |= {" ".join(e.split()).lower() for e in data.get("out_of_scope") or []}
    added: Counter[str] = Counter()
    for c in found:
        text = " ".join(c.text.split())
        if not text or text.lower() in seen:
            continue
        if c.intent == OUT_OF_SCOPE:
            data.setdefault("out_of_scope", []).append(text)
        elif c.intent in intents:
            intents[c.intent].setdefault("examples", []).append(text)
        else:
            continue
        seen.add(text.lower())
        added[c.intent] += 1
    return data, added


def _next_version(version: str) -> str:
    return str(int(version) + 1) if version.isdigit() else f"{version}-r1"


def _row(r: dict[str, Any]) -> TaxonomyVersion:
    data = json.loads(r["content"])
    return TaxonomyVersion(
        name=r["name"],
        version=r["version"],
        taxonomy_version=load_taxonomy(data).taxonomy_version,
        status=r["status"] or ("active" if r["active"] else "retired"),
        active=r["active"],
        created_by=r["created_by"],
        created_at=r["created_at"].isoformat(),
        approved_by=r["approved_by"],
        approved_at=r["approved_at"].isoformat() if r["approved_at"] else None,
        validation=json.loads(r["validation"]) if r["validation"] else None,
    )


def taxonomy_versions(db: Warehouse) -> list[TaxonomyVersion]:
    rows = db.query("SELECT * FROM definitions WHERE kind = 'taxonomy' ORDER BY name, version")
    return [_row(r) for r in rows]


def _version_row(db: Warehouse, version: int | None) -> dict[str, Any]:
    if version is None:
        rows = db.query(
            "SELECT * FROM definitions WHERE kind = 'taxonomy' ORDER BY created_at DESC LIMIT 1"
        )
    else:
        rows = db.query(
            "SELECT * FROM definitions WHERE kind = 'taxonomy' AND version = ? "
            "ORDER BY created_at DESC LIMIT 1",
            [version],
        )
    if not rows:
        raise WarehouseError(
            f"no stored taxonomy version {version}" if version else "no stored taxonomy version"
        )
    return rows[0]


def propose(db: Warehouse, created_by: str | None = None) -> Proposal:
    """Store the next taxonomy version, the active one plus the reviewed corrections, as a
    draft. Refused when no correction adds anything."""
    base, based_on = _active_content(db)
    found = candidates(db)
    data, added = _with_examples(base, found)
    if not added:
        raise WarehouseError(
            "no corrected intent adds an example: review intent labels first "
            "(convolens review next --component intents)"
        )
    data["version"] = _next_version(str(base.get("version", "1")))
    taxonomy = load_taxonomy(data)  # the draft must be a valid taxonomy before it is stored
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    with db.transaction():
        latest = db.query(
            "SELECT coalesce(max(version), 0) AS v FROM definitions WHERE kind = 'taxonomy' "
            "AND name = ?",
            [taxonomy.name],
        )[0]["v"]
        db.con.execute(
            "INSERT INTO definitions (kind, name, version, content, content_sha256, active, "
            "created_by, created_at, status, validation) VALUES "
            "('taxonomy', ?, ?, ?, ?, false, ?, ?, 'draft', ?)",
            [
                taxonomy.name,
                latest + 1,
                text,
                hashlib.sha256(text.encode()).hexdigest(),
                created_by,
                now_utc(),
                json.dumps({"proposal": {"added": dict(added), "based_on": based_on}}),
            ],
        )
    stored = _row(_version_row(db, latest + 1))
    return Proposal(version=stored, based_on=based_on, added=dict(added), candidates=len(found))


def _reviewed(db: Warehouse) -> list[tuple[str, str, str]]:
    """(item id, utterance text, the intent its first reviewer says) of reviewed items."""
    rows = db.query(
        "SELECT i.item_id, u.text, coalesce(r.corrected_value, i.value) AS truth "
        "FROM review_items i JOIN utterances_current u USING (utterance_id) "
        "JOIN (SELECT item_id, arg_min(corrected_value, created_at) AS corrected_value "
        "      FROM reviews WHERE verdict <> 'skip' GROUP BY item_id) r USING (item_id) "
        "WHERE i.component = 'intents' AND i.label = ? ORDER BY i.item_id",
        [LABEL],
    )
    return [(r["item_id"], r["text"], r["truth"]) for r in rows]


def validate(db: Warehouse, version: int | None = None, *, folds: int = 5) -> ValidationReport:
    """The draft's accuracy on the reviewed intent labels, cross-validated over them, beside
    the active taxonomy's; stored with the version, which becomes `validated`."""
    import numpy as np

    from convolens.enrich.embeddings import shared_embedder
    from convolens.enrich.intent_training import fit_intent_model

    row = _version_row(db, version)
    if row["status"] not in ("draft", "validated"):
        raise WarehouseError(f"taxonomy version {row['version']} is {row['status']}, not a draft")
    base, based_on = _active_content(db)
    reviewed = _reviewed(db)
    if len(reviewed) < 2:
        raise WarehouseError("fewer than 2 reviewed intent labels: nothing to validate on")
    found = candidates(db)
    embedder = shared_embedder()
    folds = max(2, min(folds, len(reviewed)))
    fold_of = {item_id: k % folds for k, (item_id, _, _) in enumerate(reviewed)}
    texts = [t for _, t, _ in reviewed]
    truth = [v for _, _, v in reviewed]
    vectors = embedder.embed(texts)

    def fit(data: dict[str, Any]) -> Any:
        taxonomy = load_taxonomy(data)
        examples = [e for i in taxonomy.intents for e in i.examples]
        labels = [i.name for i in taxonomy.intents for _ in i.examples]
        embedded = embedder.embed(examples + list(taxonomy.out_of_scope))
        return fit_intent_model(
            examples, labels, embedded[: len(examples)],
            oos_texts=taxonomy.out_of_scope, oos_embeddings=embedded[len(examples):],
            threshold=taxonomy.threshold, taxonomy_version=taxonomy.taxonomy_version,
            embedding_model=embedder.model_id,
        )  # fmt: skip

    active_pred, _ = fit(base).predict(texts, vectors)
    draft_pred: list[str] = [""] * len(texts)
    draft_content = json.loads(row["content"])
    for k in range(folds):
        held = [i for i, (item_id, _, _) in enumerate(reviewed) if fold_of[item_id] == k]
        train_on = [c for c in found if fold_of.get(c.item_id) != k]
        # The draft less this fold's own corrections: the stored draft's other examples
        # are the base taxonomy's plus the other folds' candidates.
        data, _ = _with_examples(base, train_on)
        data["version"] = draft_content.get("version", data.get("version"))
        predicted, _ = fit(data).predict([texts[i] for i in held], vectors[held])
        for i, p in zip(held, predicted, strict=True):
            draft_pred[i] = p
    per: dict[str, list[int]] = defaultdict(list)
    for i, value in enumerate(truth):
        per[value].append(i)

    def accuracy(pred: list[str], rows: list[int]) -> float | None:
        return round(float(np.mean([pred[i] == truth[i] for i in rows])), 4) if rows else None

    everything = list(range(len(truth)))
    report = ValidationReport(
        version=row["version"],
        taxonomy_version=load_taxonomy(draft_content).taxonomy_version,
        based_on=based_on,
        reviewed=len(truth),
        folds=folds,
        active_accuracy=accuracy(list(active_pred), everything) or 0.0,
        draft_accuracy=accuracy(draft_pred, everything) or 0.0,
        intents=[
            IntentFigure(
                intent=name,
                reviewed=len(rows),
                active_accuracy=accuracy(list(active_pred), rows),
                draft_accuracy=accuracy(draft_pred, rows),
            )
            for name, rows in sorted(per.items())
        ],
    )
    stored = json.loads(row["validation"]) if row["validation"] else {}
    stored["figures"] = report.model_dump()
    db.con.execute(
        "UPDATE definitions SET status = 'validated', validation = ? WHERE kind = 'taxonomy' "
        "AND name = ? AND version = ?",
        [json.dumps(stored), row["name"], row["version"]],
    )
    return report


def activate(db: Warehouse, version: int, approved_by: str, *, accept: bool) -> TaxonomyVersion:
    """Make a validated version the active one. `accept` says its figures were shown and
    accepted; without it, or before `validate`, nothing changes."""
    row = _version_row(db, version)
    if row["status"] == "active":
        raise WarehouseError(f"taxonomy version {version} is already active")
    if row["status"] != "validated" or not row["validation"]:
        raise WarehouseError(
            f"taxonomy version {version} is {row['status']}: validate it first "
            f"(convolens taxonomy validate --version {version})"
        )
    if not accept:
        raise WarehouseError(
            f"taxonomy version {version}: read its validation figures, then activate with --accept"
        )
    with db.transaction():
        db.con.execute(
            "UPDATE definitions SET status = 'retired', active = false "
            "WHERE kind = 'taxonomy' AND active"
        )
        db.con.execute(
            "UPDATE definitions SET status = 'active', active = true, approved_by = ?, "
            "approved_at = ? WHERE kind = 'taxonomy' AND name = ? AND version = ?",
            [approved_by, now_utc(), row["name"], row["version"]],
        )
    return _row(_version_row(db, version))


def validation_figures(version: TaxonomyVersion) -> ValidationReport | None:
    figures = (version.validation or {}).get("figures")
    return ValidationReport.model_validate(figures) if figures else None
