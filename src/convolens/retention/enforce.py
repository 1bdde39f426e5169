"""Applying the retention policy: what is past its time in each layer goes, to the byte.

One pass (store/erase.py's `erase_conversations`: one rewrite of the row groups touched,
one scrub of the file's free blocks): conversations past `text_days` whole, and raw rows
past `raw_days` (raw records, rejects, finished jobs and their spooled files, finished
webhook deliveries). Then the audit log's own retention, then one "retention.run" audit
row with the counts. Running it again at once removes nothing more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from convolens.audit.log import Via, purge_audit, record
from convolens.client.governance_models import RetentionReport
from convolens.retention.policy import RetentionPolicy
from convolens.store.erase import erase_conversations
from convolens.store.warehouse import Warehouse, now_utc

__all__ = ["RetentionReport", "RetentionScheduler", "apply_retention"]

log = logging.getLogger("convolens.retention")

_FINISHED_JOBS = "status IN ('completed', 'failed', 'cancelled')"


def _has_column(wh: Warehouse, table: str, column: str) -> bool:
    return bool(
        wh.query(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_name = ? AND column_name = ?",
            [table, column],
        )
    )


def _expired_conversations(wh: Warehouse, days: int) -> list[str]:
    cut = now_utc() - timedelta(days=days)
    rows = wh.query(
        "SELECT conversation_id FROM conversations_current "
        "WHERE coalesce(started_at, ingested_at) < ? ORDER BY 1",
        [cut],
    )
    return [r["conversation_id"] for r in rows]


def _expired_raw(wh: Warehouse, days: int, spool: Path | None) -> tuple[dict[str, Any], list[Path]]:
    """Conditions for the raw rows past their time, and the spooled files of the jobs."""
    cut = now_utc() - timedelta(days=days)
    where: dict[str, tuple[str, list[Any]]] = {
        "raw_interactions": ("received_at < ?", [cut]),
        "rejects": ("rejected_at < ?", [cut]),
        "jobs": (f"{_FINISHED_JOBS} AND coalesce(finished_at, created_at) < ?", [cut]),
        "webhook_deliveries": ("status <> 'pending' AND created_at < ?", [cut]),
    }
    files: list[Path] = []
    if spool is not None and spool.exists():
        root = spool.resolve()
        for r in wh.query(
            f"SELECT input_path, CAST(request AS VARCHAR) AS request FROM jobs WHERE "
            f"{_FINISHED_JOBS} AND coalesce(finished_at, created_at) < ?",
            [cut],
        ):
            request = json.loads(r["request"]) if r["request"] else {}
            for name in (r["input_path"], request.get("input_path"), request.get("audio_path")):
                if not name:
                    continue
                path = Path(name)
                for candidate in (path, path.with_name(path.stem + ".meta.json")):
                    if candidate.resolve().is_relative_to(root) and candidate not in files:
                        files.append(candidate)
    return where, files


def apply_retention(
    wh: Warehouse,
    policy: RetentionPolicy,
    *,
    spool: Path | None = None,
    actor: Any = None,
    via: Via = "library",
    request_id: str | None = None,
) -> RetentionReport:
    """Delete what `policy` says is past its time; returns (and audits) what went."""
    report = RetentionReport(policy=policy.describe())
    ids = _expired_conversations(wh, policy.text_days) if policy.text_days else []
    where: dict[str, tuple[str, list[Any]]] = {}
    files: list[Path] = []
    if policy.raw_days:
        where, files = _expired_raw(wh, policy.raw_days, spool)
    if ids or any(
        wh.query(f"SELECT 1 FROM {table} WHERE {condition} LIMIT 1", params)
        for table, (condition, params) in where.items()
    ):
        erased = erase_conversations(wh, ids, spool=spool, also=where)
        report.rows = {t: n for t, n in sorted(erased.rows.items()) if n}
        report.files = len(erased.files)
    report.conversations = len(ids)
    for path in files:
        if path.exists():
            path.unlink()
            report.files += 1
    if policy.audit_days:
        report.audit_rows = purge_audit(wh, policy.audit_days, actor=actor, via=via)
    report.audit_id = record(
        wh,
        "retention.run",
        actor=actor,
        via=via,
        target_type="warehouse",
        request_id=request_id,
        details=report.model_dump(exclude={"audit_id"}),
    )
    return report


class RetentionScheduler:
    """Applies the policy every `policy.interval_s` in a background thread of the server
    (first shortly after the start); `run_now` is what each tick calls."""

    def __init__(
        self, open_db: Any, policy: RetentionPolicy, spool: Path, lock: Any = None
    ) -> None:
        self.open_db, self.policy, self.spool, self.lock = open_db, policy, spool, lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, first_after_s: float = 30.0) -> None:
        if not self.policy.enabled:
            return
        first = min(first_after_s, self.policy.interval_s)
        self._thread = threading.Thread(
            target=self._loop, args=(first,), name="convolens-retention", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run_now(
        self, actor: Any = None, via: Via = "scheduler", request_id: str | None = None
    ) -> RetentionReport:
        db = self.open_db()
        try:
            with self.lock if self.lock is not None else contextlib.nullcontext():
                # (the lock: never while a labelling run writes rows)
                return apply_retention(
                    db, self.policy, spool=self.spool, actor=actor, via=via,
                    request_id=request_id,
                )  # fmt: skip
        finally:
            db.close()

    def _loop(self, first_after_s: float) -> None:
        wait = first_after_s
        while not self._stop.wait(wait):
            try:
                report = self.run_now()
                log.info(
                    "retention: %d conversations, %d rows, %d files removed",
                    report.conversations, sum(report.rows.values()), report.files,
                )  # fmt: skip
            except Exception:  # the next tick tries again; the server keeps serving
                log.exception("retention run failed")
            wait = self.policy.interval_s
