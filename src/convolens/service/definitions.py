"""Taxonomies and tracker sets managed over the API, versioned in the `definitions` table.

Each create is a new version of a named definition; at most one version per kind is
active, and the server's pipeline labels with the active ones (`overrides`). Activating
a version relabels the current conversations with it in a background job, beside the
old labels (see `convolens diff`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from convolens.enrich.config import active_definitions
from convolens.enrich.taxonomy import load_taxonomy
from convolens.enrich.trackers import load_trackers
from convolens.service.errors import ApiError
from convolens.store.warehouse import Warehouse, now_utc

__all__ = ["Definition", "DefinitionCreate", "Kind", "overrides", "store_definition"]

Kind = Literal["taxonomy", "trackers"]
# Definition kind -> the component it configures.
COMPONENT: dict[str, str] = {"taxonomy": "intents", "trackers": "trackers"}


class DefinitionCreate(BaseModel):
    content: str | dict[str, Any] | list[Any] = Field(
        description="A taxonomy (YAML text or object) or a list of tracker definitions."
    )
    name: str | None = Field(default=None, description="Default: the taxonomy's own name.")
    activate: bool = Field(default=False, description="Label with it from now on (relabels).")


class Definition(BaseModel):
    kind: Kind
    name: str
    version: int
    active: bool
    content_sha256: str
    created_at: str
    summary: dict[str, Any] = Field(default_factory=dict)
    content: Any = None


def parse(kind: Kind, content: str | dict[str, Any] | list[Any]) -> tuple[Any, dict[str, Any]]:
    """The definition as the component takes it, and a summary; 422 with the problem."""
    data: Any = content
    if isinstance(content, str):
        try:
            data = yaml.safe_load(content)
        except yaml.YAMLError as exc:
            raise ApiError(422, "invalid_definition", f"not YAML: {exc}") from None
    try:
        if kind == "taxonomy":
            if not isinstance(data, dict):
                raise ValueError("a taxonomy is a mapping with `intents`")
            taxonomy = load_taxonomy(data)
            return data, {
                "taxonomy_name": taxonomy.name,
                "taxonomy_version": taxonomy.taxonomy_version,
                "intents": len(taxonomy.intents),
            }
        items = data.get("tracker") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ValueError("trackers are a list of {name, phrases, examples}")
        trackers = load_trackers(items)
        return items, {"trackers": [t.name for t in trackers]}
    except ValueError as exc:
        raise ApiError(422, "invalid_definition", str(exc)) from None


def store_definition(
    db: Warehouse, kind: Kind, body: DefinitionCreate, created_by: str | None
) -> Definition:
    data, summary = parse(kind, body.content)
    name = body.name or str(summary.get("taxonomy_name") or kind)
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with db.transaction():
        latest = db.query(
            "SELECT coalesce(max(version), 0) AS v FROM definitions WHERE kind = ? AND name = ?",
            [kind, name],
        )[0]["v"]
        if body.activate:
            db.con.execute(
                "UPDATE definitions SET active = false, status = 'retired' "
                "WHERE kind = ? AND active",
                [kind],
            )
        created = now_utc()
        # Stored over /v1/definitions: active at once (approved by its creator) or a draft.
        db.con.execute(
            "INSERT INTO definitions (kind, name, version, content, content_sha256, active, "
            "created_by, created_at, status, approved_by, approved_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                kind, name, latest + 1, text, digest, body.activate, created_by, created,
                "active" if body.activate else "draft",
                created_by if body.activate else None,
                created if body.activate else None,
            ],
        )  # fmt: skip
    return Definition(
        kind=kind,
        name=name,
        version=latest + 1,
        active=body.activate,
        content_sha256=digest,
        created_at=created.isoformat(),
        summary=summary,
    )


def list_definitions(db: Warehouse, kind: Kind, *, content: bool = False) -> list[Definition]:
    rows = db.query("SELECT * FROM definitions WHERE kind = ? ORDER BY name, version", [kind])
    out = []
    for r in rows:
        data = json.loads(r["content"])
        out.append(
            Definition(
                kind=kind,
                name=r["name"],
                version=r["version"],
                active=r["active"],
                content_sha256=r["content_sha256"],
                created_at=r["created_at"].isoformat(),
                summary=parse(kind, data)[1] if content else {},
                content=data if content else None,
            )
        )
    return out


def overrides(db: Warehouse) -> dict[str, dict[str, Any]]:
    """Component settings from the active definitions: {"intents": {"taxonomy": {...}}}."""
    return active_definitions(db)
