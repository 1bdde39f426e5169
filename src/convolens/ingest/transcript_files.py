"""What every transcript-file adapter (subtitles, plain text) does once it has turns.

Both read one file as one conversation: speakers become participants with ids made from
their names, roles come from the sidecar and what each speaker says (`roles.py`), and the
sidecar supplies the source fields. Kept here once so the two formats cannot drift apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from convolens.ingest.base import (
    IngestOptions,
    Parsed,
    ParseResult,
    RawRecord,
    Reject,
    SourceFile,
    describe_validation_error,
)
from convolens.ingest.roles import transcript_roles
from convolens.ingest.sidecar import Sidecar
from convolens.model import Conversation

__all__ = ["speaker_slug", "transcript_conversation", "unique_id"]


def speaker_slug(name: str) -> str:
    # casefold first so that "Weiß" becomes "weiss" rather than losing the letter.
    folded = unicodedata.normalize("NFKD", name.casefold()).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
    # Names with no Latin letters (e.g. "張偉") keep their own characters.
    return slug or re.sub(r"[\W_]+", "-", name.lower()).strip("-") or "speaker"


def unique_id(slug: str, taken: set[str]) -> str:
    # "Tom" and "TOM" slug alike but are different speakers as far as the file says.
    candidate, n = slug, 1
    while candidate in taken:
        n += 1
        candidate = f"{slug}-{n}"
    return candidate


def transcript_conversation(
    source: SourceFile,
    adapter: str,
    options: IngestOptions,
    *,
    sidecar: Sidecar,
    sidecar_raw: tuple[str, str, bytes, str] | None,
    speakers: dict[str, str],
    utterances: list[dict[str, Any]],
    language: str | None = None,
    duration_seconds: float | None = None,
    warnings: list[str] | None = None,
) -> Iterator[ParseResult]:
    """The conversation for one transcript file, or a reject naming what was wrong.

    `speakers` maps each name to its participant id in order of appearance; `utterances`
    are canonical utterance dicts whose `participant_id` is one of those ids.
    """
    path = str(source.path)
    by_id = {pid: name for name, pid in speakers.items()}
    said: dict[str, list[str]] = {name: [] for name in speakers}
    for utterance in utterances:
        said[by_id[utterance["participant_id"]]].append(utterance["text"])
    channel = sidecar.channel or options.default_channel or "call"
    roles = transcript_roles(
        said, sidecar=sidecar, channel=channel, agent_domains=options.agent_domains
    )
    payload = {
        "channel": channel,
        "source": {
            "system": sidecar.source or options.source_system or "transcript",
            "source_id": None if sidecar.id in (None, "") else str(sidecar.id),
            "platform": sidecar.platform,
            "queue": sidecar.queue,
            "agent": sidecar.agent,
            "campaign": sidecar.campaign,
            "tags": sidecar.tags,
        },
        "language": sidecar.language or language,
        "started_at": sidecar.started_at,
        "duration_seconds": (
            sidecar.duration_seconds if sidecar.duration_seconds is not None else duration_seconds
        ),
        "subject": sidecar.subject,
        "links": sidecar.links,
        "participants": [
            {"participant_id": pid, "name": name, "role": roles[name]}
            for name, pid in speakers.items()
        ],
        "utterances": utterances,
        "meta": sidecar.meta,
    }
    try:
        conversation = Conversation.model_validate(payload)
    except ValidationError as exc:
        yield Reject(path, "file", describe_validation_error(exc), adapter, payload=source.data)
        return
    raw = [RawRecord(path, "file", source.data, source.decoded.encoding)]
    if sidecar_raw is not None:
        # Kept so that a replay from the raw layer sees the same metadata.
        raw.append(RawRecord(*sidecar_raw))
    yield Parsed(conversation, raw, adapter, warnings or [])
