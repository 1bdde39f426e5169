"""Numbered migrations kept one per module (`m007_quarantine.py`, ...).

The first six live in store/schema.py. Later ones each sit in their own module so that
parts of the product built side by side never edit one shared list: a module named
`mNNN_<what>.py` defines `MIGRATION = Migration(NNN, ...)`, and store/schema.py collects
them in version order. Two modules claiming one number is an error at import.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

__all__ = ["Migration", "numbered_migrations"]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def numbered_migrations() -> list[Migration]:
    """Every `MIGRATION` defined by a module of this package, ordered by version."""
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("m") or not info.name[1:4].isdigit():
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        migration = module.MIGRATION
        if not isinstance(migration, Migration) or migration.version != int(info.name[1:4]):
            raise RuntimeError(
                f"{info.name}: MIGRATION must be Migration({int(info.name[1:4])}, ...)"
            )
        found.append(migration)
    return sorted(found, key=lambda m: m.version)
