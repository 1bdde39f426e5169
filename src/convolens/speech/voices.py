"""Enrolled voices in the warehouse (`speaker_voices`, migration 13): save, list, remove.

A voice print is biometric data: it is kept only here, readable by admins (the API's
speaker routes are admin-only), never exported with conversations or written to run logs
(`SpeechOptions.voices` is excluded from every dump). This module needs no speech
dependencies: ingest reads the prints before it knows whether a recording will come.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convolens.ingest.base import IngestOptions
from convolens.model import Role
from convolens.speech.options import EnrolledVoice
from convolens.store.warehouse import Warehouse, WarehouseError, now_utc

if TYPE_CHECKING:
    from convolens.speech.types import SpeakerEmbedder

__all__ = [
    "enrol_voice",
    "enrolled_voices",
    "list_voices",
    "remove_voice",
    "save_voice",
    "with_enrolled_voices",
]


def save_voice(
    warehouse: Warehouse, voice: EnrolledVoice, *, speech_seconds: float, source_sha256: str
) -> bool:
    """Store (or replace) the print for `voice.name`; True when it replaced one."""
    with warehouse.transaction():
        replaced = warehouse.con.execute(
            "DELETE FROM speaker_voices WHERE name = ? RETURNING name", [voice.name]
        ).fetchall()
        warehouse.con.execute(
            "INSERT INTO speaker_voices VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                voice.name,
                voice.role.value,
                list(voice.embedding),
                voice.model,
                speech_seconds,
                source_sha256,
                now_utc(),
            ],
        )
    return bool(replaced)


def enrol_voice(
    warehouse: Warehouse,
    name: str,
    path: str | Path,
    *,
    role: Role = Role.agent,
    embedder: SpeakerEmbedder | None = None,
) -> dict[str, Any]:
    """Make a print from a recording of `name` alone and store it; returns its summary.
    `embedder`: a loaded CAM++ model to reuse (the server keeps one), else one is loaded."""
    from convolens.speech.identity import voice_print

    path = Path(path)
    made = voice_print(path, name, role=role, embedder=embedder)
    voice = EnrolledVoice(
        name=made.name, role=made.role, embedding=[float(x) for x in made.embedding]
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    replaced = save_voice(
        warehouse, voice, speech_seconds=made.speech_seconds, source_sha256=digest
    )
    return {
        "name": voice.name,
        "role": voice.role.value,
        "speech_seconds": made.speech_seconds,
        "model": voice.model,
        "replaced": replaced,
    }


def list_voices(warehouse: Warehouse, *, name: str | None = None) -> list[dict[str, Any]]:
    """What is enrolled (or only `name`), without the prints themselves."""
    return warehouse.query(
        "SELECT name, role, model, speech_seconds, enrolled_at FROM speaker_voices "
        "WHERE CAST(? AS VARCHAR) IS NULL OR name = ? ORDER BY name",
        [name, name],
    )


def enrolled_voices(warehouse: Warehouse) -> list[EnrolledVoice]:
    """Every print, for the speech pipeline."""
    try:
        rows = warehouse.query("SELECT name, role, embedding, model FROM speaker_voices")
    except WarehouseError:
        return []
    return [
        EnrolledVoice(name=r["name"], role=r["role"], embedding=r["embedding"], model=r["model"])
        for r in rows
    ]


def remove_voice(warehouse: Warehouse, name: str) -> bool:
    removed = warehouse.con.execute(
        "DELETE FROM speaker_voices WHERE name = ? RETURNING name", [name]
    ).fetchall()
    return bool(removed)


def with_enrolled_voices(warehouse: Warehouse, options: IngestOptions | None) -> IngestOptions:
    """`options` with the warehouse's enrolled voices, for recordings to be named from."""
    options = options or IngestOptions()
    if options.speech.voices:
        return options
    voices = enrolled_voices(warehouse)
    if not voices:
        return options
    speech = options.speech.model_copy(update={"voices": voices})
    return options.model_copy(update={"speech": speech})
