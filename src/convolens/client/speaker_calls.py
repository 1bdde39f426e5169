"""The SDK's enrolled-voice calls (admin keys): enrol a voice from a recording of that
person alone (POST /v1/speakers), list the enrolled names (GET), forget one (DELETE),
shared by `Client` and `AsyncClient`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from convolens.client.calls import UploadSource, _Call, _model, _nothing
from convolens.client.speaker_models import EnrolledSpeaker, SpeakerEnrolled, SpeakerRole

__all__ = [
    "AsyncSpeakerMethods",
    "SpeakerMethods",
    "delete_speaker_call",
    "enrol_speaker_call",
    "list_speakers_call",
]


def enrol_speaker_call(
    name: str, file: UploadSource, *, role: SpeakerRole = "agent", filename: str | None = None
) -> _Call[SpeakerEnrolled]:
    if isinstance(file, bytes) and not filename:
        raise ValueError("enrolling from bytes needs a filename (its suffix names the format)")
    upload_name = filename or Path(str(file)).name
    return _Call(
        "POST",
        "/v1/speakers",
        _model(SpeakerEnrolled),
        data={"name": name, "role": role},
        upload=(upload_name, file),
    )


def list_speakers_call() -> _Call[list[EnrolledSpeaker]]:
    return _Call("GET", "/v1/speakers", _model(list[EnrolledSpeaker]))


def delete_speaker_call(name: str) -> _Call[None]:
    # Every character quoted: a name is one path segment, spaces and all.
    return _Call("DELETE", f"/v1/speakers/{quote(name, safe='')}", _nothing)


class SpeakerMethods:
    """`Client`'s enrolled-voice methods (mixed in: sdk.py stays about the core calls)."""

    def _do(self, call: _Call[Any]) -> Any:  # provided by Client
        raise NotImplementedError

    def enrol_speaker(
        self,
        name: str,
        file: UploadSource,
        *,
        role: SpeakerRole = "agent",
        filename: str | None = None,
    ) -> SpeakerEnrolled:
        """Enrol (or re-enrol: the print is replaced) `name` from a recording of that
        person speaking alone, at least 3 s of speech: a path, or bytes with `filename`.
        Recordings ingested afterwards name the speaker who matches and give it `role`."""
        call = enrol_speaker_call(name, file, role=role, filename=filename)
        result: SpeakerEnrolled = self._do(call)
        return result

    def list_speakers(self) -> list[EnrolledSpeaker]:
        """The enrolled voices by name (never the prints themselves)."""
        result: list[EnrolledSpeaker] = self._do(list_speakers_call())
        return result

    def delete_speaker(self, name: str) -> None:
        """Forget an enrolled voice (conversations already named keep their names)."""
        self._do(delete_speaker_call(name))


class AsyncSpeakerMethods:
    """`AsyncClient`'s enrolled-voice methods, awaited."""

    async def _do(self, call: _Call[Any]) -> Any:  # provided by AsyncClient
        raise NotImplementedError

    async def enrol_speaker(
        self,
        name: str,
        file: UploadSource,
        *,
        role: SpeakerRole = "agent",
        filename: str | None = None,
    ) -> SpeakerEnrolled:
        result: SpeakerEnrolled = await self._do(
            enrol_speaker_call(name, file, role=role, filename=filename)
        )
        return result

    async def list_speakers(self) -> list[EnrolledSpeaker]:
        result: list[EnrolledSpeaker] = await self._do(list_speakers_call())
        return result

    async def delete_speaker(self, name: str) -> None:
        await self._do(delete_speaker_call(name))
