"""Durable jobs: the queue is the `jobs` table, a pool of worker threads runs it.

Life of a job: `scheduled` -> `running` -> `completed` | `failed`. A worker claims the
oldest due job (under a lock, so no two workers take the same), counts the attempt, and
runs it. A failure is retried after `retry_base_s * 2**(attempt-1)` until `max_attempts`;
bad input (every record rejected) fails at once, since retrying cannot fix it.

A server killed mid-job leaves the row `running`; the next start (`recover`) schedules
it again. Re-running is safe because the work is idempotent: ingestion keys on the
conversation's canonical id (an unchanged conversation is not written twice) and the
pipeline labels only what is not labelled yet. The `completed` transition happens once,
in the one process that holds the warehouse, so a job completes exactly once and its
completion webhook fires once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

# The wire model is the SDK's: one definition for both sides of the API.
from convolens.client.models import Job, JobStatus
from convolens.engine.priority import nice_current_thread
from convolens.service.errors import public_reason, without_paths
from convolens.store.warehouse import Warehouse, now_utc

__all__ = ["Job", "JobQueue", "JobStatus", "PermanentJobError"]

log = logging.getLogger("convolens.service.jobs")


class PermanentJobError(Exception):
    """A failure retrying cannot fix (bad input): the job fails at once."""

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _job(row: dict[str, Any]) -> Job:
    return Job(
        job_id=row["job_id"],
        kind=row["kind"],
        status=row["status"],
        conversation_id=row["conversation_id"],
        stage=row["stage"],
        progress=row["progress"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        error=json.loads(row["error"]) if row["error"] else None,
        result=json.loads(row["result"]) if row["result"] else None,
        webhook_url=row["webhook_url"],
        created_by=row["created_by"],
        created_at=row["created_at"].isoformat(),
        started_at=_iso(row["started_at"]),
        finished_at=_iso(row["finished_at"]),
        run_after=_iso(row["run_after"]),
    )


Handler = Callable[[Warehouse, Job, dict[str, Any], Callable[[str, float], None]], dict[str, Any]]


class JobQueue:
    """The queue and its workers. `handlers[kind](warehouse, job, request, progress)` does
    the work and returns the job's result; `on_finished(job)` runs after each final state."""

    def __init__(
        self,
        warehouse: Warehouse,
        handlers: dict[str, Handler],
        *,
        workers: int = 2,
        max_attempts: int = 3,
        retry_base_s: float = 2.0,
        poll_s: float = 0.2,
        on_finished: Callable[[Job], None] | None = None,
        nice: int = 0,
    ) -> None:
        self.warehouse = warehouse
        self.handlers = handlers
        self.workers = workers
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.poll_s = poll_s
        self.on_finished = on_finished
        # Worker threads lower their own priority by this (engine/priority.py): batch work
        # gives the CPU to live streams; the threads a job starts inherit it.
        self.nice = nice
        self.worker_id = f"w-{uuid.uuid4().hex[:8]}"
        self._claim_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- queue ----------------------------------------------------------------------------
    def submit(
        self,
        db: Warehouse,
        kind: str,
        request: dict[str, Any],
        *,
        conversation_id: str | None = None,
        input_path: Path | None = None,
        webhook_url: str | None = None,
        created_by: str | None = None,
    ) -> str:
        job_id = f"job_{uuid.uuid4().hex[:16]}"
        now = now_utc()
        db.con.execute(
            "INSERT INTO jobs (job_id, kind, status, conversation_id, request, input_path, "
            "webhook_url, attempts, max_attempts, run_after, stage, progress, created_by, "
            "created_at) VALUES (?, ?, 'scheduled', ?, ?, ?, ?, 0, ?, ?, 'queued', 0, ?, ?)",
            [
                job_id,
                kind,
                conversation_id,
                json.dumps(request, default=str),
                str(input_path) if input_path else None,
                webhook_url,
                self.max_attempts,
                now,
                created_by,
                now,
            ],
        )
        self._wake.set()
        return job_id

    @staticmethod
    def get(db: Warehouse, job_id: str) -> Job | None:
        rows = db.query("SELECT * FROM jobs WHERE job_id = ?", [job_id])
        return _job(rows[0]) if rows else None

    @staticmethod
    def list(
        db: Warehouse, *, status: str | None = None, created_by: str | None = None, limit: int = 50
    ) -> list[Job]:
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if created_by:
            clauses.append("created_by = ?")
            params.append(created_by)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = db.query(
            f"SELECT * FROM jobs{where} ORDER BY created_at DESC LIMIT {int(limit)}", params
        )
        return [_job(r) for r in rows]

    def recover(self) -> int:
        """Schedule again the jobs a previous server left running (it was killed)."""
        rows = self.warehouse.query("SELECT job_id FROM jobs WHERE status = 'running'")
        if rows:
            self.warehouse.con.execute(
                "UPDATE jobs SET status = 'scheduled', worker = NULL, stage = 'recovered', "
                "run_after = ? WHERE status = 'running'",
                [now_utc()],
            )
            log.warning("rescheduled %d job(s) interrupted by a restart", len(rows))
        return len(rows)

    # -- workers --------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self._stop.clear()
        for n in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"convolens-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; wait for the running ones (a job cut off here is recovered)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _claim(self, db: Warehouse) -> Job | None:
        with self._claim_lock:
            rows = db.query(
                "SELECT job_id FROM jobs WHERE status = 'scheduled' AND run_after <= ? "
                "ORDER BY created_at LIMIT 1",
                [now_utc()],
            )
            if not rows:
                return None
            job_id = rows[0]["job_id"]
            db.con.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, worker = ?, "
                "started_at = ?, stage = 'starting' WHERE job_id = ?",
                [self.worker_id, now_utc(), job_id],
            )
            return self.get(db, job_id)

    def _loop(self) -> None:
        nice_current_thread(self.nice)
        db = self.warehouse.cursor()
        try:
            while not self._stop.is_set():
                job: Job | None = None
                try:
                    job = self._claim(db)
                    if job is None:
                        self._wake.wait(self.poll_s)
                        self._wake.clear()
                        continue
                    self._run(db, job)
                except Exception:
                    # A write conflict (a delete rewriting the jobs table, say) must not end
                    # the worker: the job goes back to the queue and the loop goes on.
                    log.exception("worker pass failed%s", f" on {job.job_id}" if job else "")
                    if job is not None:
                        self._requeue(db, job)
                    self._stop.wait(self.poll_s)
        finally:
            db.close()

    def _requeue(self, db: Warehouse, job: Job) -> None:
        try:
            db.con.execute(
                "UPDATE jobs SET status = 'scheduled', worker = NULL, stage = 'retrying', "
                "run_after = ? WHERE job_id = ? AND status = 'running'",
                [now_utc() + timedelta(seconds=self.retry_base_s), job.job_id],
            )
        except Exception:  # still failing: the next start recovers it (see `recover`)
            log.exception("could not put %s back in the queue", job.job_id)

    def _run(self, db: Warehouse, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        request = json.loads(
            db.query("SELECT request FROM jobs WHERE job_id = ?", [job.job_id])[0]["request"]
            or "{}"
        )

        def progress(stage: str, fraction: float) -> None:
            db.con.execute(
                "UPDATE jobs SET stage = ?, progress = ? WHERE job_id = ?",
                [stage, round(max(0.0, min(1.0, fraction)), 4), job.job_id],
            )

        try:
            if handler is None:
                raise PermanentJobError(f"unknown job kind {job.kind!r}")
            result = handler(db, job, request, progress)
        except PermanentJobError as exc:
            self._fail(db, job, {"code": "bad_input", "message": str(exc), "detail": exc.detail})
            return
        except Exception as exc:  # any failure is recorded and retried
            # The reason only: the job's error is shown to the client and sent in the
            # job.failed webhook; the traceback goes to the server log below.
            error = {"code": "job_error", "message": public_reason(exc), "detail": None}
            log.exception("job %s attempt %d failed", job.job_id, job.attempts)
            if job.attempts < job.max_attempts:
                delay = self.retry_base_s * 2 ** (job.attempts - 1)
                db.con.execute(
                    "UPDATE jobs SET status = 'scheduled', worker = NULL, stage = 'retrying', "
                    "error = ?, run_after = ? WHERE job_id = ?",
                    [
                        json.dumps(without_paths(error)),
                        now_utc() + timedelta(seconds=delay),
                        job.job_id,
                    ],
                )
                return
            self._fail(db, job, error)
            return
        db.con.execute(
            "UPDATE jobs SET status = 'completed', stage = 'done', progress = 1, result = ?, "
            "error = NULL, finished_at = ? WHERE job_id = ? AND status = 'running'",
            [json.dumps(result, default=str), now_utc(), job.job_id],
        )
        self._finished(db, job.job_id)

    def _fail(self, db: Warehouse, job: Job, error: dict[str, Any]) -> None:
        db.con.execute(
            "UPDATE jobs SET status = 'failed', stage = 'failed', error = ?, finished_at = ? "
            "WHERE job_id = ?",
            [json.dumps(without_paths(error), default=str), now_utc(), job.job_id],
        )
        self._finished(db, job.job_id)

    def _finished(self, db: Warehouse, job_id: str) -> None:
        if self.on_finished is None:
            return
        final = self.get(db, job_id)
        if final is not None:
            try:
                self.on_finished(final)
            except Exception:  # a webhook problem must not fail the job
                log.exception("on_finished hook failed for %s", job_id)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """True once no job is scheduled or running (tests and `make demo` use it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.warehouse.cursor()
            try:
                n = rows.query(
                    "SELECT count(*) AS n FROM jobs WHERE status IN ('scheduled', 'running')"
                )[0]["n"]
            finally:
                rows.close()
            if not n:
                return True
            time.sleep(0.1)
        return False
