"""A conversation's recording: the redacted copy for every key that reads text, the
original for an admin who confirms (as with raw text).

`GET /v1/conversations/{id}/audio` (API keys) and `GET /dashboard/audio/{ref}` (the
dashboard's sign-in cookie, for its player's <audio> element, which cannot send headers)
serve the copy that speech/audio_redaction.py made with the PII beeped out. Both answer
range requests, so a player can seek. Viewers are refused (403), agents get their own
conversations only (404 otherwise, as everywhere). The original, as uploaded, is
returned only to an admin with `raw=true&confirm=true`.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from convolens.dashboard.session import LoginRequired, PageDenied, principal_for, require_page
from convolens.service import results
from convolens.service.auth import Principal, Role, require
from convolens.service.errors import ApiError, ErrorResponse
from convolens.service.state import Caller, Db
from convolens.speech.audio_redaction import RecordingCopy, audio_store, find_recording
from convolens.store.warehouse import Warehouse

__all__ = ["dashboard_router", "router"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 422)
}
# A recording is personal data like the text: never cached, never sniffed into a page.
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
NO_RECORDING = (
    "no recording is kept for this conversation: only recordings uploaded to or streamed "
    "into the service are, once their job has finished"
)

router = APIRouter(prefix="/v1", responses=ERRORS)
dashboard_router = APIRouter(prefix="/dashboard", include_in_schema=False)


def _copy(db: Warehouse, caller: Principal, ref: str) -> RecordingCopy:
    """The redacted copy of the conversation's current version (404 when there is none,
    or when the caller may not see the conversation)."""
    if not caller.reads_text:
        raise ApiError(403, "forbidden", "a viewer key sees aggregates only (GET /v1/aggregates)")
    header = results.find_conversation(db, caller, ref)
    copy = find_recording(db, header["conversation_id"], int(header["version"]))
    if copy is None:
        raise ApiError(404, "recording_not_found", NO_RECORDING)
    return copy


def _redacted(db: Warehouse, copy: RecordingCopy) -> FileResponse:
    return FileResponse(
        copy.path(audio_store(db.path)),
        media_type=copy.media_type,
        headers={**HEADERS, "X-Redacted-Spans": str(len(copy.spans))},
    )


@router.get(
    "/conversations/{conversation_id}/audio",
    tags=["results"],
    response_class=FileResponse,
    responses={
        200: {
            "content": {"audio/flac": {}, "application/octet-stream": {}},
            "description": "The recording, PII beeped out (FLAC, 16 kHz); with raw=true and "
            "confirm=true, the original as uploaded (admin keys only).",
        },
        206: {"description": "Part of the recording (a Range request: players seek)."},
    },
)
def get_audio(
    conversation_id: str,
    db: Db,
    caller: Caller,
    raw: Annotated[
        bool, Query(description="The original recording, unredacted: admin keys only.")
    ] = False,
    confirm: Annotated[
        bool, Query(description="Must be true with raw=true: the original holds spoken PII.")
    ] = False,
) -> FileResponse:
    """The conversation's recording with every PII span replaced by a 1 kHz beep (the
    spans come from the word timings of what redaction found). Analysts and admins read
    any, agents their own; viewers none."""
    if raw:
        require(caller, Role.admin)
        if not confirm:
            raise ApiError(
                422,
                "confirm_required",
                "the original recording holds PII: pass confirm=true",
            )
    copy = _copy(db, caller, conversation_id)
    if not raw:
        return _redacted(db, copy)
    original = Path(copy.original)
    if not original.is_file():
        raise ApiError(404, "recording_not_found", "the original recording is no longer kept")
    media_type = mimetypes.guess_type(original.name)[0] or "application/octet-stream"
    return FileResponse(original, media_type=media_type, headers=HEADERS)


@dashboard_router.get("/audio/{ref:path}", response_class=FileResponse)
def dashboard_audio(ref: str, request: Request, db: Db) -> FileResponse:
    """The redacted recording for the conversation page's player (signed-in cookie)."""
    try:
        who = principal_for(request, db)
        require_page(who, "conversation")
    except LoginRequired:
        raise ApiError(401, "unauthorized", "sign in to the dashboard first") from None
    except PageDenied:
        raise ApiError(403, "forbidden", "viewer keys hear no recordings") from None
    return _redacted(db, _copy(db, who, ref))
