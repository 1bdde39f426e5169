"""Sidecar metadata: `<stem>.meta.json` beside a transcript or recording.

It supplies what a media file cannot say: the source id, start time, business links,
who speaks (roles by name, or by audio channel for stereo calls) and how many speakers a
mono recording holds. All keys are optional; unknown keys are an error (a typo must not
vanish silently).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from convolens.ingest.base import (
    JsonError,
    decode_bytes,
    describe_validation_error,
    load_json,
    parse_timestamp,
)
from convolens.model import BusinessLinks, Channel, Role

__all__ = ["ChannelSpeaker", "Sidecar", "read_sidecar", "sidecar_path"]

# Metadata about one file; anything bigger is not a sidecar.
_MAX_SIDECAR_BYTES = 1024 * 1024


class ChannelSpeaker(BaseModel):
    """Who is on one audio channel of a multichannel recording."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    role: Role = Role.unknown


class Sidecar(BaseModel):
    """The sidecar document; see docs/formats.md."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str | int | None = None
    source: str | None = None
    channel: Channel | None = None
    language: str | None = None
    started_at: datetime | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    subject: str | None = None
    platform: str | None = None
    queue: str | None = None
    agent: str | None = None
    campaign: str | None = None
    tags: list[str] = Field(default_factory=list)
    roles: dict[str, Role] = Field(default_factory=dict)
    links: BusinessLinks = Field(default_factory=BusinessLinks)
    meta: dict[str, Any] = Field(default_factory=dict)

    # Audio: channel index -> speaker ("0": {"name": "Dana", "role": "agent"}), and the
    # speaker count of a mono recording (2 for a call when unsaid).
    channels: dict[int, ChannelSpeaker] = Field(default_factory=dict)
    num_speakers: int | None = Field(default=None, ge=1, le=20)

    @field_validator("started_at", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime | None:
        return parse_timestamp(value)

    @field_validator("links", mode="before")
    @classmethod
    def _link_ids(cls, value: Any) -> Any:
        # Hand-written sidecars carry numeric ids ("account_id": 55); links are strings.
        if isinstance(value, dict):
            return {k: v if v is None or isinstance(v, str) else str(v) for k, v in value.items()}
        return value


def sidecar_path(path: Path) -> Path:
    """`call-0042.vtt` -> `call-0042.meta.json` in the same folder."""
    return path.with_name(f"{path.stem}.meta.json")


def read_sidecar(
    path: Path,
) -> tuple[Sidecar | None, tuple[str, str, bytes, str] | None, str | None]:
    """(sidecar, its raw record fields, problem); all None when there is no sidecar."""
    meta_path = sidecar_path(path)
    try:
        data = meta_path.read_bytes()
    except FileNotFoundError:
        return None, None, None
    except OSError as exc:
        return None, None, f"sidecar {meta_path.name}: cannot read: {exc.strerror}"
    if len(data) > _MAX_SIDECAR_BYTES:
        return None, None, f"sidecar {meta_path.name}: over {_MAX_SIDECAR_BYTES // 1024} KiB"
    decoded = decode_bytes(data)
    try:
        sidecar = Sidecar.model_validate(load_json(decoded.text))
    except JsonError as exc:
        where = f" ({exc.where().replace(' column', ', column')})" if exc.lineno else ""
        return None, None, f"sidecar {meta_path.name}: invalid JSON: {exc.msg}{where}"
    except ValidationError as exc:
        return None, None, f"sidecar {meta_path.name}: {describe_validation_error(exc)}"
    return sidecar, (str(meta_path), "sidecar", data, decoded.encoding), None
