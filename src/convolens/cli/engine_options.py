"""The `--engine`, `--address`, `--workers` and `--lake` options of ingest and analyze.

Local is the default and imports nothing more; `--engine ray` runs the same work as Ray
actor pools (convolens.engine), here or on the cluster at `--address`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from convolens.cli import remote
from convolens.engine import Engine, EngineOptions, open_engine
from convolens.store.lake import LakeError
from convolens.store.warehouse import Warehouse

__all__ = [
    "AddressOption",
    "EngineChoice",
    "EngineOption",
    "LakeOption",
    "WorkersOption",
    "opened_engine",
    "use_lake",
]

err = remote.routed_console(stderr=True)


class EngineChoice(StrEnum):
    local = "local"
    ray = "ray"


EngineOption = Annotated[
    EngineChoice,
    typer.Option(
        "--engine",
        envvar="CONVOLENS_ENGINE",
        help="Where the work runs: local (this process) or ray (Ray actor pools).",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        envvar="RAY_ADDRESS",
        help="Ray cluster to use (ray://HOST:10001 or HOST:6379); default: start one here.",
    ),
]
WorkersOption = Annotated[
    int, typer.Option("--workers", min=1, help="Ray workers (actors per pool, one CPU each).")
]
LakeOption = Annotated[
    str | None,
    typer.Option(
        "--lake",
        envvar="CONVOLENS_LAKE",
        help="Keep metrics and labels as Parquet in this folder or URI (s3://...) from now "
        "on; the warehouse reads them from there.",
    ),
]


@contextmanager
def opened_engine(engine: EngineChoice, address: str | None, workers: int) -> Iterator[Engine]:
    """The chosen engine, closed afterwards; a clear error (exit 1) if it cannot start."""
    try:
        opened = open_engine(EngineOptions(engine=engine.value, address=address, workers=workers))
    except RuntimeError as exc:  # RayUnavailableError
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    with opened:
        yield opened


def use_lake(warehouse: Warehouse, lake: str | None) -> None:
    """Point the warehouse at `lake` (kept in the warehouse for every later reader)."""
    if lake is None:
        return
    try:
        warehouse.set_lake(lake)
    except LakeError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
