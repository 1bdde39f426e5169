"""Service settings: where the warehouse and uploads live, how many workers, what limits.

Read from `CONVOLENS_*` environment variables (and `convolens serve` options), so a
container or a systemd unit configures the server without a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from convolens.engine import EngineOptions
from convolens.retention.policy import RetentionPolicy
from convolens.speech.models import DEFAULT_MODEL, ModelNotAvailableError, check_whisper_model

__all__ = ["ServiceSettings"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CONVOLENS_{name}", default)


class ServiceSettings(BaseModel):
    db: Path = Field(default_factory=lambda: Path(_env("DB", "convolens.duckdb")))
    # Uploaded files wait here for their job (and stay for replay); JSON bodies too.
    spool: Path | None = None
    # 0: accept and serve, run no jobs (an API-only node for tests).
    workers: int = Field(default_factory=lambda: int(_env("WORKERS", "2")), ge=0, le=32)
    max_upload_bytes: int = Field(
        default_factory=lambda: int(_env("MAX_UPLOAD_MB", "500")) * 1024 * 1024, ge=1
    )
    # A failing job is retried after retry_base_s, then 2x, 4x ... up to max_attempts runs.
    max_attempts: int = Field(default=3, ge=1)
    retry_base_s: float = Field(default=2.0, ge=0.0)
    poll_s: float = Field(default=0.2, gt=0.0)
    # Whisper model for uploaded recordings and live streams: one the product ships
    # ('base', 'tiny.en') or a model directory, checked when the settings are read.
    asr_model: str = Field(
        default_factory=lambda: _env("ASR_MODEL", DEFAULT_MODEL), validate_default=True
    )
    stream_asr_model: str = Field(
        default_factory=lambda: _env("STREAM_ASR_MODEL", "tiny.en"), validate_default=True
    )
    # Live streams before batch jobs (engine/priority.py, docs/streaming.md "Under load"):
    # live decoding on its own threads and Whisper model; job threads niced by batch_nice
    # and waiting (at most batch_yield_max_s per step) while any live stream has audio
    # pending. CONVOLENS_LIVE_PRIORITY=0 turns the waiting and the nice off.
    live_priority: bool = Field(default_factory=lambda: _env("LIVE_PRIORITY", "1") == "1")
    stream_workers: int = Field(
        default_factory=lambda: int(_env("STREAM_WORKERS", str(os.cpu_count() or 2))), ge=1
    )
    # CTranslate2 threads of the live model (None: every core).
    stream_asr_threads: int | None = Field(
        default_factory=lambda: int(v) if (v := _env("STREAM_ASR_THREADS", "")) else None, ge=1
    )
    batch_nice: int = Field(default_factory=lambda: int(_env("BATCH_NICE", "10")), ge=0, le=19)
    batch_yield_max_s: float = Field(
        default_factory=lambda: float(_env("BATCH_YIELD_MAX_S", "2")), ge=0
    )
    # Mono live streams separated into speakers as they go (realtime/live_diarize.py).
    stream_diarize: bool = Field(default_factory=lambda: _env("STREAM_DIARIZE", "1") == "1")
    # TOML with [components.NAME] settings, as `convolens analyze --config`.
    components_config: Path | None = Field(
        default_factory=lambda: Path(p) if (p := os.environ.get("CONVOLENS_CONFIG")) else None
    )
    # Components to leave out of the jobs' pipeline (e.g. "summary").
    skip_components: list[str] = Field(default_factory=list)
    # Signs per-request webhooks (those given with a job, not registered as hooks).
    webhook_secret: str = Field(default_factory=lambda: _env("WEBHOOK_SECRET", ""))
    webhook_retry_base_s: float = 1.0
    # Webhooks post to public hosts only; these internal hosts, addresses or networks are
    # allowed too (comma-separated, e.g. "crm.internal,10.20.0.0/16"; webhook_targets.py).
    webhook_allow_hosts: str = Field(
        default_factory=lambda: _env("WEBHOOK_ALLOW_HOSTS", ""), validate_default=True
    )
    # A bootstrap only: the first admin key, usable while set (auth.bootstrap_admin).
    bootstrap_admin_key: str | None = Field(
        default_factory=lambda: os.environ.get("CONVOLENS_ADMIN_KEY")
    )
    # Load the models when the server starts rather than on the first job or stream.
    preload: bool = True
    # How long each layer is kept (CONVOLENS_RETENTION*, retention/policy.py): off unless
    # configured; applied on a schedule by the server and by `convolens retention run`.
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy.from_env)
    # Where jobs run (docs/scale.md): local threads here, or a Ray cluster
    # (CONVOLENS_ENGINE=ray, CONVOLENS_RAY_ADDRESS, CONVOLENS_RAY_WORKERS).
    engine: EngineOptions = Field(
        default_factory=lambda: EngineOptions(
            engine=_env("ENGINE", "local"),  # type: ignore[arg-type]
            address=_env("RAY_ADDRESS", "") or None,
            workers=int(_env("RAY_WORKERS", "2")),
        )
    )

    @field_validator("asr_model", "stream_asr_model")
    @classmethod
    def _shipped_or_local_model(cls, value: str) -> str:
        try:
            check_whisper_model(value)
        except ModelNotAvailableError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _allow_list_parses(cls, value: str) -> str:
        from convolens.service.webhook_targets import TargetPolicy

        TargetPolicy.parse(value)  # a typo fails the start, not every delivery
        return value

    def spool_dir(self) -> Path:
        return self.spool or self.db.with_name(self.db.stem + ".uploads")
