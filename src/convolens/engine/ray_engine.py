"""The Ray engine: the same worker classes as Ray Data actor pools, on a cluster or here.

Each worker class becomes an actor pool (`map_batches` with a callable class,
`concurrency` = workers, one CPU each): an actor loads its models once in `__init__` and
then takes items one at a time. Items travel pickled in one column and come back in
order. Ray retries the item of an actor that died on another actor; what that item
wrote is named in its result only, so the driver commits each item's output once.

Items should be small: with a lake, enrich and analyze send keys only and each worker
reads its conversations from the lake's copy (store/lake_normalised.py). Ray Data has
no lazily-fed source (`from_items` takes a list), so the items are listed before the
dataset starts: a few kilobytes per batch of keys. Without a lake each item carries its
documents, read by the driver before the first batch goes out.

Ray is optional (`pip install 'convolens[ray]'`): nothing imports it unless this engine
is chosen.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

from convolens.engine.base import Engine, WorkerSpec

__all__ = ["RayEngine", "RayUnavailableError"]

# Small boxes: Ray's default object store takes 30 % of memory as shared memory. Items
# here are batches of documents, so a modest store is plenty.
_LOCAL_OBJECT_STORE_BYTES = 512 * 1024 * 1024


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


def _check_reachable(address: str) -> None:
    """Fail in seconds on a cluster that is not there (Ray itself retries for minutes)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError):
        raise RayUnavailableError(
            f"cannot start or reach Ray at {address}: nothing answers there; start the "
            "cluster (`ray start --head`) or leave --address out to start one here"
        ) from None


class RayEngine(Engine):
    """Run workers on the Ray cluster at `address` (None: start one here with `workers` CPUs,
    or use the one this process already started)."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int = 2) -> None:
        try:
            import ray
        except ImportError:
            raise RayUnavailableError(
                "the Ray engine needs ray: pip install 'convolens[ray]'"
            ) from None
        self._ray = ray
        self.workers = max(1, workers)
        self.address = address
        self._started = False
        started = time.perf_counter()
        if not ray.is_initialized():
            if address:
                _check_reachable(address)
            # Workers read the same environment (offline model flags, caches) as this process.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            try:
                ray.init(
                    address=address,
                    num_cpus=None if address else self.workers,
                    object_store_memory=None if address else _LOCAL_OBJECT_STORE_BYTES,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    configure_logging=True,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a local cluster"
                raise RayUnavailableError(
                    f"cannot start or reach Ray at {where}: {str(exc).splitlines()[0][:200]}"
                ) from None
            self._started = True
        self.startup_s = time.perf_counter() - started
        from ray.data import DataContext

        context = DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        context.print_on_execution_start = False

    def run(self, spec: WorkerSpec, items: Iterable[Any]) -> Iterator[Any]:
        # One pickled item per block: the pool takes them one at a time as actors free up.
        payloads = [
            {"item": pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)} for item in items
        ]
        if not payloads:
            return
        dataset = self._ray.data.from_items(payloads, override_num_blocks=len(payloads))
        mapped = dataset.map_batches(
            spec.cls,
            fn_constructor_args=spec.args,
            batch_size=1,
            batch_format="numpy",
            compute=self._ray.data.ActorPoolStrategy(size=min(self.workers, len(payloads))),
            num_cpus=1,
            # An actor that dies is restarted and its item retried on the pool.
            max_restarts=2,
            max_task_retries=2,
        )
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            for result in batch["item"]:
                yield pickle.loads(result)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False
