"""The canonical conversation of a transcribed recording: utterances with word timings,
each in the language Whisper decoded it in, speakers with the names and roles found."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convolens.ingest.sidecar import Sidecar
from convolens.model import Channel, Conversation, Participant, SourceInfo, Utterance, Word

if TYPE_CHECKING:
    from convolens.speech.transcribe import MediaTranscript

__all__ = ["to_conversation"]


def _spoken_language(transcript: MediaTranscript, channel_index: int | None) -> str | None:
    """Whisper's language for a channel (each channel of a split call is decoded apart)."""
    split = transcript.separation == "channels"
    if split and channel_index is not None and channel_index < len(transcript.asr):
        return transcript.asr[channel_index].language
    return transcript.language


def to_conversation(
    transcript: MediaTranscript, *, source_id: str, sidecar: Sidecar | None = None
) -> Conversation:
    """The canonical conversation of a transcribed recording."""
    from convolens.speech.transcribe import join_words, widen_to_turns

    sidecar = sidecar or Sidecar()
    audio = transcript.audio
    by_id = {s.participant_id: s for s in transcript.speakers}
    spans = widen_to_turns(transcript.turns, transcript.speaker_turns)
    utterances = []
    for (speaker_id, words), (start, end) in zip(transcript.turns, spans, strict=True):
        channel_index = by_id[speaker_id].channel_index
        utterances.append(
            Utterance(
                participant_id=speaker_id,
                text=join_words(words),
                start=start,
                end=end,
                channel_index=channel_index,
                # Whisper decoded these words in the language it detected (or was given).
                language=sidecar.language or _spoken_language(transcript, channel_index),
                words=[
                    Word(
                        text=w.text,
                        start=w.start,
                        end=w.end,
                        confidence=min(1.0, max(0.0, w.probability or 0.0)),
                    )
                    for w in words
                ],
            )
        )
    channel = sidecar.channel or (Channel.video if audio.has_video else Channel.call)
    return Conversation(
        channel=channel,
        source=SourceInfo(
            system=sidecar.source or "audio",
            source_id=str(sidecar.id) if sidecar.id is not None else source_id,
            platform=sidecar.platform,
            queue=sidecar.queue,
            agent=sidecar.agent,
            campaign=sidecar.campaign,
            tags=sidecar.tags,
        ),
        language=sidecar.language or transcript.language,
        started_at=sidecar.started_at,
        # A video's length is the container's; for audio the decoded samples are exact
        # (raw AAC/MP3 streams only estimate their duration from the bitrate).
        duration_seconds=sidecar.duration_seconds
        or (audio.container_duration if audio.has_video else None)
        or audio.duration,
        subject=sidecar.subject,
        links=sidecar.links,
        participants=[
            Participant(participant_id=s.participant_id, name=s.name, role=s.role)
            for s in transcript.speakers
        ],
        utterances=utterances,
        meta={
            **sidecar.meta,
            "media": audio.media_info(),
            "separation": transcript.separation,
            "asr_model": transcript.asr[0].model_id if transcript.asr else None,
            **(
                {
                    "speaker_identity": [
                        # The name is the participant's (intake redaction reads meta text).
                        {"participant_id": i.participant_id, "score": i.score}
                        for i in transcript.identities
                    ]
                }
                if transcript.identities
                else {}
            ),
            **(
                {
                    "asr_language": {
                        "language": transcript.asr[0].language,
                        "probability": round(transcript.asr[0].language_probability or 0.0, 4),
                    }
                }
                if transcript.asr and transcript.asr[0].language
                else {}
            ),
            **(
                {
                    "speaker_turns": [
                        [t.speaker, round(t.start, 3), round(t.end, 3)]
                        for t in transcript.speaker_turns
                    ]
                }
                if transcript.speaker_turns
                else {}
            ),
        },
    )
