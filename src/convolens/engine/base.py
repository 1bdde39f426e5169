"""What an engine runs: a worker class that loads once and processes one item at a time.

A worker is built from `(cls, args)` once per place it runs (one per Ray actor, one per
local process) and then handed items: in `__init__` it loads its models, in `process`
it turns one item (a batch of documents, a recording) into a result. `__call__` is the
Ray Data batch shape around `process`: items travel pickled in one column.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["BatchWorker", "Engine", "WorkerSpec"]


class BatchWorker(ABC):
    """Base class of what engines run: override `__init__` (load) and `process` (one item)."""

    @abstractmethod
    def process(self, item: Any) -> Any:
        """The result for one item."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np  # Ray Data's batch format; only Ray calls this

        results = [pickle.dumps(self.process(pickle.loads(b))) for b in batch["item"]]
        column = np.empty(len(results), dtype=object)
        column[:] = results
        return {"item": column}


@dataclass
class WorkerSpec:
    """How to build a worker where it runs; `ready` is one already built in this process
    (the local engine uses it instead of loading the models a second time)."""

    cls: type[BatchWorker]
    args: tuple[Any, ...] = ()
    ready: BatchWorker | None = None

    def build(self) -> BatchWorker:
        return self.ready if self.ready is not None else self.cls(*self.args)


class Engine(ABC):
    """Where a pipeline's work runs. Results come back in the order of the items."""

    name: str
    workers: int = 1

    @abstractmethod
    def run(self, spec: WorkerSpec, items: Iterable[Any]) -> Iterator[Any]:
        """Each item's result, in order, as they finish."""

    def close(self) -> None:  # noqa: B027 - most engines hold nothing to release
        """Release what the engine started (a local Ray cluster)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
