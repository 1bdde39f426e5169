"""The running service: the warehouse, the job queue, the shared models; and the request
dependencies that hand a route its database handle and its caller."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from convolens.engine.priority import LIVE
from convolens.service.auth import Principal, authenticate, bootstrap_admin
from convolens.service.jobs import Job, JobQueue
from convolens.service.pipeline import ServicePipeline
from convolens.service.settings import ServiceSettings
from convolens.service.webhook_dispatch import WebhookDispatcher
from convolens.service.webhook_targets import TargetPolicy
from convolens.service.webhooks import DeliverySettings, enqueue
from convolens.store.private import (
    make_private,
    make_private_tree,
    private_dir,
    private_file,
    restrict_umask,
)
from convolens.store.warehouse import Warehouse

__all__ = ["Caller", "Db", "Service", "get_service", "insight_events"]

if TYPE_CHECKING:
    from convolens.realtime import RealtimeModels

log = logging.getLogger("convolens.service")


class Service:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        # The warehouse and the spool hold raw conversation text: owner-only (0600/0700),
        # also the files DuckDB creates later (its WAL), whatever umask the server got.
        restrict_umask()
        self.warehouse = Warehouse(settings.db)
        for made in (settings.db, settings.db.with_name(settings.db.name + ".wal")):
            make_private(made)
        # A spool from before files were made owner-only is made so too.
        make_private_tree(private_dir(self.settings.spool_dir()))
        self.pipeline = ServicePipeline(settings)
        # Live streams before batch jobs (engine/priority.py): jobs yield to pending live
        # work and run on niced threads.
        LIVE.configure(enabled=settings.live_priority, max_wait_s=settings.batch_yield_max_s)
        self.queue = JobQueue(
            self.warehouse,
            {"ingest": self.pipeline.run_ingest_job, "stream": self.pipeline.run_stream_job},
            workers=settings.workers,
            max_attempts=settings.max_attempts,
            retry_base_s=settings.retry_base_s,
            poll_s=settings.poll_s,
            on_finished=self._job_finished,
            nice=settings.batch_nice if settings.live_priority else 0,
        )
        self.admin_key: str | None = None
        # Where webhooks may post (checked when given and at every delivery).
        self.webhook_policy = TargetPolicy.parse(settings.webhook_allow_hosts)
        self.webhooks = WebhookDispatcher(
            self.warehouse,
            default_secret=settings.webhook_secret or self._webhook_secret(),
            settings=DeliverySettings(backoff_base_s=settings.webhook_retry_base_s),
            policy=self.webhook_policy,
        )
        self._preload: threading.Thread | None = None
        self._realtime: RealtimeModels | None = None
        self._realtime_lock = threading.Lock()

    @property
    def realtime(self) -> RealtimeModels:
        """The live-stream engine's models, shared by every WebSocket session."""
        with self._realtime_lock:
            if self._realtime is None:
                from convolens.realtime import RealtimeConfig, shared_models

                config = RealtimeConfig(
                    asr_model=self.settings.stream_asr_model,
                    cpu_threads=self.settings.stream_asr_threads,
                    diarize=self.settings.stream_diarize,
                )
                self._realtime = shared_models(config)
                # Live text is redacted by the same policy as everything stored.
                components = self.pipeline.component_settings
                self._realtime.redact = components.enabled("pii")
                self._realtime.pii = components.config("pii")
            return self._realtime

    @property
    def ready(self) -> bool:
        """Whether the models are loaded (always true without preloading: they load on use)."""
        return self._preload is None or not self._preload.is_alive()

    def _load_models(self) -> None:
        try:
            self.pipeline.components  # noqa: B018 - loads them
            self.realtime.load()
        except Exception:  # the first job or stream reports it; the API keeps serving
            log.exception("preloading the models failed")

    def start(self) -> None:
        self.admin_key = self._bootstrap_admin()
        self.webhooks.start()
        self.queue.start()
        if self.settings.preload:
            # Models load in the background: the API answers at once, the first job waits.
            self._preload = threading.Thread(
                target=self._load_models, name="convolens-preload", daemon=True
            )
            self._preload.start()

    def stop(self) -> None:
        self.queue.stop()
        self.pipeline.close()  # a Ray cluster this server started stops with it
        self.webhooks.stop()
        self.warehouse.close()

    def _webhook_secret(self) -> str:
        """The secret signing per-job webhooks: made once, kept beside the warehouse."""
        path = self.settings.db.with_name(self.settings.db.name + ".webhook-secret")
        if not path.exists():
            with private_file(path) as out:  # 0600 from the start, never readable by others
                out.write(secrets.token_hex(32).encode())
        make_private(path)
        return path.read_text(encoding="utf-8").strip()

    def _bootstrap_admin(self) -> str | None:
        """CONVOLENS_ADMIN_KEY is a bootstrap only (see `auth.bootstrap_admin`); returns a
        newly generated admin key (for `convolens serve` to show once), else None."""
        return bootstrap_admin(self.warehouse, self.settings.bootstrap_admin_key)

    def _job_finished(self, job: Job) -> None:
        self.webhooks.job_finished(job)
        if job.status == "completed" and job.kind in ("ingest", "stream") and job.result:
            db = self.db()
            try:
                events = insight_events(db, job.result.get("conversation_ids") or [])
                for event, payload in events:
                    enqueue(db, event, payload)
            finally:
                db.close()
            if events:
                self.webhooks.notify()

    def db(self) -> Warehouse:
        return self.warehouse.cursor()


# Customer turns in a row labelled negative before a sentiment.negative_streak event.
NEGATIVE_STREAK = 3


def insight_events(db: Warehouse, ids: list[str]) -> list[tuple[str, dict[str, object]]]:
    """Webhook events from the labels of newly processed conversations: tracker hits,
    churn-risk signals and runs of negative customer sentiment."""
    if not ids:
        return []
    rows = db.query(
        "SELECT l.conversation_id, l.label, l.value, l.confidence, l.utterance_id, u.text, "
        "u.seq, p.role, c.queue, c.agent, c.channel FROM labels_current l "
        "JOIN conversations_current c USING (conversation_id, version) "
        "LEFT JOIN utterances_current u USING (utterance_id) "
        "LEFT JOIN participants_current p ON p.conversation_id = u.conversation_id "
        "AND p.participant_id = u.participant_id "
        "WHERE list_contains(?, l.conversation_id) "
        "AND l.label IN ('tracker.match', 'signal', 'sentiment.utterance') "
        "ORDER BY l.conversation_id, u.seq",
        [ids],
    )
    events: list[tuple[str, dict[str, object]]] = []
    streak: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        value = json.loads(r["value"]) if isinstance(r["value"], str) else r["value"]
        context = {
            "conversation_id": r["conversation_id"],
            "queue": r["queue"],
            "agent": r["agent"],
            "channel": r["channel"],
        }
        if r["label"] == "tracker.match":
            events.append(
                ("tracker.hit", {**context, "tracker": value.get("tracker"), "text": r["text"],
                                 "confidence": r["confidence"], "utterance_id": r["utterance_id"]})
            )  # fmt: skip
        elif r["label"] == "signal" and value.get("signal") == "churn_risk":
            events.append(
                ("signal.churn_risk", {**context, "signal": "churn_risk",
                                       "confidence": value.get("score", r["confidence"]),
                                       "reasons": value.get("reasons", [])})
            )  # fmt: skip
        elif r["label"] == "sentiment.utterance" and r["role"] == "customer":
            run = streak.setdefault(r["conversation_id"], [])
            if value.get("label") == "negative":
                run.append({"utterance_id": r["utterance_id"], "text": r["text"]})
                if len(run) == NEGATIVE_STREAK:
                    events.append(
                        ("sentiment.negative_streak", {**context, "streak": len(run),
                         "text": run[-1]["text"], "utterances": [u["utterance_id"] for u in run]})
                    )  # fmt: skip
            else:
                run.clear()
    return events


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _db(request: Request) -> Iterator[Warehouse]:
    handle = get_service(request).db()
    try:
        yield handle
    finally:
        handle.close()


Db = Annotated[Warehouse, Depends(_db)]


def _caller(request: Request, db: Db) -> Principal:
    return authenticate(db, request)


Caller = Annotated[Principal, Depends(_caller)]
