"""What a job does: ingest what was submitted, then measure and label it.

The enrichment components are loaded once per server (`ServicePipeline.components`) and
shared by every job and stream. Ingestion (transcription above all) runs in parallel on
the worker threads; measuring and labelling run one job at a time, because the runner
labels every pending conversation and two runs at once would label some twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convolens.analytics.upkeep import after_labelling
from convolens.analyze import analyze as run_metrics
from convolens.engine import Engine, open_engine
from convolens.engine.recordings import ingest_on
from convolens.enrich.base import Component
from convolens.enrich.config import ComponentSettings, load_component_settings
from convolens.enrich.nlp import MODEL_LOADING
from convolens.enrich.registry import DEFAULT_COMPONENTS, get_component
from convolens.enrich.runner import enrich
from convolens.ingest.base import IngestOptions, Parsed, RawRecord, Reject
from convolens.ingest.redact_intake import QUARANTINE_REASON, IntakeRedactor, intake_redactor
from convolens.model import Conversation
from convolens.service.auth import Role
from convolens.service.errors import without_paths
from convolens.service.jobs import Job, PermanentJobError
from convolens.service.results import may_write
from convolens.service.settings import ServiceSettings
from convolens.speech.audio_redaction import redact_recordings
from convolens.speech.options import SpeechOptions
from convolens.store.quarantine import release_quarantine, write_quarantine
from convolens.store.warehouse import Warehouse
from convolens.store.writer import write_conversations

__all__ = ["ServicePipeline", "writer_admission"]

# The one reason a job gives for a conversation its key may not write (see errors.conflict).
CONFLICT_REASON = "conflict: this conversation cannot be written with this key"


def _job_key(db: Warehouse, job: Job) -> tuple[Role, str | None] | None:
    """The role and agent of the key that submitted `job` (None: no key, e.g. the CLI)."""
    if not job.created_by:
        return None
    rows = db.query("SELECT role, agent FROM api_keys WHERE key_id = ?", [job.created_by])
    return (Role(rows[0]["role"]), rows[0]["agent"]) if rows else (Role.viewer, None)


def writer_admission(db: Warehouse, job: Job) -> Callable[[Parsed], Parsed | Reject] | None:
    """What a job may write, decided when it writes (a check at submit can be overtaken
    by another job): an agent's conversations are filed as theirs, and none may replace
    a conversation the submitting key may not write."""
    key = _job_key(db, job)
    if key is None:
        return None
    role, agent = key

    def admit(parsed: Parsed) -> Parsed | Reject:
        conversation = parsed.conversation
        if role == Role.agent:
            conversation.source.agent = agent
        if not may_write(db, role, agent, conversation.conversation_id):
            first = parsed.raw[0] if parsed.raw else None
            return Reject(
                first.source_path if first else "",
                first.locator if first else "",
                CONFLICT_REASON,
                parsed.source_format,
            )
        return parsed

    return admit


class ServicePipeline:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.component_settings: ComponentSettings = load_component_settings(
            settings.components_config
        )
        self._components: list[Component] | None = None
        # Settings from the active API-managed definitions (taxonomy, trackers).
        self.overrides: dict[str, dict[str, Any]] = {}
        # Shared with every other model load in the process (enrich/nlp.py says why).
        self._load_lock = MODEL_LOADING
        self._engine: Engine | None = None
        # One labelling run at a time (see the module docstring); deletes take it too.
        self.label_lock = threading.RLock()

    @property
    def components(self) -> list[Component]:
        with self._load_lock:
            if self._components is None:
                self._components = [
                    self._load(name)
                    for name in DEFAULT_COMPONENTS
                    if self.component_settings.enabled(name)
                    and name not in self.settings.skip_components
                ]
            return self._components

    @property
    def intake(self) -> IntakeRedactor | None:
        """The redaction every write passes (the `[components.pii]` policy), loaded once;
        None only where that component is disabled in the config."""
        if not self.component_settings.enabled("pii"):
            return None
        return intake_redactor(
            {**self.component_settings.config("pii"), **self.overrides.get("pii", {})}
        )

    @property
    def engine(self) -> Engine:
        """Where jobs measure, label and transcribe (`CONVOLENS_ENGINE`; docs/scale.md):
        here, or a Ray cluster joined once per server."""
        with self._load_lock:
            if self._engine is None:
                self._engine = open_engine(self.settings.engine)
            return self._engine

    def close(self) -> None:
        """Leave the Ray cluster (or stop the one this server started)."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def _load(self, name: str) -> Component:
        return get_component(
            name, {**self.component_settings.config(name), **self.overrides.get(name, {})}
        )

    def run_reprocess_job(
        self, db: Warehouse, job: Job, request: dict[str, Any], progress: Any
    ) -> dict[str, Any]:
        """Reload a component with the newly active definitions and relabel with it."""
        name = request["component"]
        self.overrides[name] = request.get("config") or {}
        progress("loading", 0.1)
        component = self._load(name)  # trains a taxonomy's classifier: may take a while
        progress("labelling", 0.4)
        with self.label_lock:
            components = self.components
            for i, existing in enumerate(components):
                if existing.name == name:
                    components[i] = component
            result = enrich(db, [component], engine=self.engine)
        return {
            "component": name,
            "taxonomy_version": component.taxonomy_version,
            "conversations": result.conversations,
            "labels": dict(result.labels),
            "run_id": result.run_id,
        }

    def run_stream_job(
        self, db: Warehouse, job: Job, request: dict[str, Any], progress: Any
    ) -> dict[str, Any]:
        """Store a finished live stream's conversation, then measure and label it.

        The WebSocket route spooled the conversation (and the audio, as WAV) before it
        queued this job, so a server killed in between loses nothing."""
        path = Path(request["input_path"])
        if not path.exists():
            raise PermanentJobError(f"the spooled stream is gone: {path.name}")
        progress("storing", 0.0)
        record = path.read_bytes()
        conversation = Conversation.model_validate_json(record)
        raw = [RawRecord(str(path), "stream", record, "utf-8")]
        admit = writer_admission(db, job)
        if admit is not None and isinstance(admit(Parsed(conversation, raw, "stream")), Reject):
            raise PermanentJobError(CONFLICT_REASON)
        run_id = db.start_run("ingest", {"paths": [str(path)], "format": "stream"})
        parsed = Parsed(conversation, raw, "stream")
        redactor = self.intake
        if redactor is not None:
            _, held = redactor.apply([parsed])
            if held:
                write_quarantine(db, held, run_id)
                db.finish_run(run_id, {"conversations": 0, "quarantined": 1})
                raise PermanentJobError(QUARANTINE_REASON)
        written = write_conversations(db, [parsed], run_id)
        release_quarantine(db, [conversation.conversation_id], run_id)
        db.finish_run(run_id, {"conversations": 1, "new": written.new})
        progress("labelling", 0.3)
        labels: dict[str, int] = {}
        with self.label_lock:
            run_metrics(db, engine=self.engine)
            result = enrich(db, self.components, engine=self.engine)
            labels = dict(result.labels)
            after_labelling(db)  # accounts and clusters, where the warehouse has them
        audio = request.get("audio_path")
        self.redact_audio(db, [conversation.conversation_id], Path(audio) if audio else None)
        return {
            "conversation_ids": [conversation.conversation_id],
            "conversations": 1,
            "new": written.new,
            "new_versions": written.new_versions,
            "unchanged": written.unchanged,
            "rejects": [],
            "labels": labels,
            "audio": request.get("audio_path"),
        }

    def redact_audio(self, db: Warehouse, ids: list[str], audio: Path | None = None) -> None:
        """The copy of each recording that keys other than admin hear: PII beeped
        (speech/audio_redaction.py), under the same `[components.pii]` policy as the text."""
        pii = self.component_settings
        config = (
            {**pii.config("pii"), **self.overrides.get("pii", {})} if pii.enabled("pii") else None
        )
        redact_recordings(db, ids, config, audio=audio)

    def ingest_options(self, request: dict[str, Any]) -> IngestOptions:
        speech = SpeechOptions(
            model=request.get("asr_model") or self.settings.asr_model,
            language=request.get("language"),
        )
        mapping = request.get("mapping") or {}
        return IngestOptions(
            default_channel=request.get("channel"),
            source_system=request.get("source_system"),
            speech=speech,
            # An upload's `mapping` field (checked when it was submitted).
            mapping=mapping,
            csv_mapping=mapping.get("columns", {}),
            upload_name=request.get("filename"),
        )

    def run_ingest_job(
        self,
        db: Warehouse,
        job: Job,
        request: dict[str, Any],
        progress: Any,
    ) -> dict[str, Any]:
        path = Path(request["input_path"])
        if not path.exists():
            raise PermanentJobError(f"the uploaded input is gone: {path.name}")
        progress("ingesting", 0.0)

        def media(_: Path, done: float, total: float) -> None:
            progress("transcribing", 0.6 * done / total if total else 0.0)

        report = ingest_on(
            self.engine,
            db,
            [path],
            fmt=request.get("format"),
            options=self.ingest_options(request),
            on_media_progress=media,
            admit=writer_admission(db, job),
            redaction=self.intake,
            redact=self.intake is not None,
        )
        rejects = [
            {"record": r.locator or Path(r.source_path).name, "reason": without_paths(r.reason)}
            for r in report.rejects
        ]
        if not report.conversations:
            raise PermanentJobError(
                rejects[0]["reason"] if rejects else "no conversation found in the input",
                rejects,
            )
        # Known at submit for JSON bodies and recordings; else the ones this file wrote.
        ids = list(request.get("conversation_ids") or []) or [
            r["conversation_id"]
            for r in db.query(
                "SELECT DISTINCT conversation_id FROM raw_interactions WHERE source_path = ?",
                [str(path)],
            )
        ]
        progress("labelling", 0.6)
        labels: dict[str, int] = {}
        with self.label_lock:
            run_metrics(db, engine=self.engine)
            if request.get("analyze", True):
                result = enrich(db, self.components, engine=self.engine)
                labels = dict(result.labels)
                after_labelling(db)
        progress("redacting audio", 0.95)
        self.redact_audio(db, ids)
        return {
            "conversation_ids": ids,
            "conversations": report.conversations,
            "new": report.written.new,
            "new_versions": report.written.new_versions,
            "unchanged": report.written.unchanged,
            "rejects": rejects,
            # What a mapping left out (no roles, no timestamps, unknown role values).
            "warnings": [without_paths(w) for w in report.warnings[:20]],
            # What this upload got wrong against its source's history (convolens.health).
            "data_health": [
                f.model_dump(mode="json", include={"check_name", "field", "message"})
                for f in report.health
            ],
            "labels": labels,
        }
