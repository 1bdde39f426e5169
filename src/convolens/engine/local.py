"""The local engine: the work runs in this process, one item after another (the default).

No cluster, no serialisation: the worker is built once (or the caller's own instance is
used) and called in a loop. It is the reference the Ray engine's answers are held to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from convolens.engine.base import Engine, WorkerSpec

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    name = "local"

    def run(self, spec: WorkerSpec, items: Iterable[Any]) -> Iterator[Any]:
        worker = spec.build()
        for item in items:
            yield worker.process(item)
