"""Per-component settings from a TOML file, as `convolens analyze --config FILE` reads them.

    [components.pii]
    operator = "hash"            # tag | hash | mask
    entities = ["EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"]

    [components.intents]
    taxonomy = "support_taxonomy.yaml"

    [components.pii]
    operators = { EMAIL_ADDRESS = "hash" }   # per-type operator (docs/privacy.md)
    allow_list = ["Northwind"]               # never redacted

    [components.summary]
    enabled = false              # leave a component out of every run

Relative paths in a table are resolved against the file's folder, so a config can sit
beside its taxonomy and tracker files.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from convolens.enrich.registry import component_names

__all__ = ["ComponentSettings", "load_component_settings"]

# Keys whose values are file paths (resolved against the config file's folder).
_PATH_KEYS = {"taxonomy", "model", "definitions", "trackers", "artefact", "entities_file"}


class ComponentSettings:
    """Which components are enabled and the config dict each receives."""

    def __init__(self, tables: dict[str, dict[str, Any]] | None = None) -> None:
        self.tables = {name: dict(table) for name, table in (tables or {}).items()}

    def enabled(self, name: str) -> bool:
        return bool(self.tables.get(name, {}).get("enabled", True))

    def config(self, name: str) -> dict[str, Any]:
        table = {k: v for k, v in self.tables.get(name, {}).items() if k != "enabled"}
        if name == "pii":
            # Redaction keeps the team's entities and tracker phrases: the same files the
            # entities and trackers components read, unless [components.pii] names others.
            for key, source in (("entities_file", "entities"), ("trackers", "trackers")):
                other = self.tables.get(source, {})
                path = other.get(key) or other.get("definitions")
                if key not in table and isinstance(path, str):
                    table[key] = path
        return table

    def with_overrides(self, overrides: dict[str, dict[str, Any]]) -> ComponentSettings:
        """These settings with each component's table updated by `overrides` (the active
        API-managed definitions win over the config file, as in the server)."""
        tables = {name: dict(table) for name, table in self.tables.items()}
        for name, extra in overrides.items():
            tables[name] = {**tables.get(name, {}), **extra}
        return ComponentSettings(tables)


def active_definitions(db: Any) -> dict[str, dict[str, Any]]:
    """Component settings from the warehouse's active definitions (taxonomy and trackers
    managed over the API or `convolens taxonomy activate`): {"intents": {"taxonomy": ...}}.

    `db` is a Warehouse; the CLI reads them so a conversation labelled from the command line
    gets the same taxonomy as one labelled by the server.
    """
    out: dict[str, dict[str, Any]] = {}
    for row in db.query("SELECT kind, content FROM definitions WHERE active"):
        data = json.loads(row["content"])
        if row["kind"] == "taxonomy":
            out["intents"] = {"taxonomy": data}
        else:
            out["trackers"] = {"trackers": data}
    return out


def load_component_settings(path: Path | None) -> ComponentSettings:
    """Read `[components.NAME]` tables; unknown component names are errors (typos)."""
    if path is None:
        return ComponentSettings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read config {path}: {exc}") from None
    tables = data.get("components", {})
    if not isinstance(tables, dict):
        raise ValueError(f"{path}: [components] must be a table of [components.NAME] tables")
    known = set(component_names())
    for name, table in tables.items():
        if name not in known:
            raise ValueError(
                f"{path}: unknown component {name!r}; choose from: {', '.join(sorted(known))}"
            )
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [components.{name}] must be a table")
        for key, value in table.items():
            if key in _PATH_KEYS and isinstance(value, str):
                table[key] = str((path.parent / value).resolve())
    return ComponentSettings(tables)
