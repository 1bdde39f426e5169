"""Where a pipeline runs: in this process (`local`, the default) or on a Ray cluster.

`open_engine(EngineOptions(engine="ray", address=..., workers=...))` gives an `Engine`;
`analyze`, `enrich` and `ingest_with_engine` take one. The same worker classes run on
both (engine/workers.py), so the answers are the same; only where the work happens
changes. The local engine needs nothing beyond convolens; Ray is imported only here,
only when chosen.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from convolens.engine.base import BatchWorker, Engine, WorkerSpec
from convolens.engine.local import LocalEngine

__all__ = ["BatchWorker", "Engine", "EngineOptions", "LocalEngine", "WorkerSpec", "open_engine"]

EngineName = Literal["local", "ray"]


class EngineOptions(BaseModel):
    """Which engine, and for Ray where the cluster is and how many workers to use."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineName = "local"
    # ray://host:10001 or host:6379 for an existing cluster; None starts one here.
    address: str | None = None
    workers: int = Field(default=2, ge=1, le=1024)


def open_engine(options: EngineOptions | None = None) -> Engine:
    """The engine `options` name (close it when done: a local Ray cluster stops then)."""
    options = options or EngineOptions()
    if options.engine == "local":
        return LocalEngine()
    from convolens.engine.ray_engine import RayEngine

    return RayEngine(address=options.address, workers=options.workers)
