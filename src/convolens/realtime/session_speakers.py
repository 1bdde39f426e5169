"""The speakers of a diarized mono stream: one final per voice, revisions of earlier ones.

A part of `StreamSession` (a mixin, so the session's own module stays about the protocol):
the session's `LiveDiarizer` (realtime/live_diarize.py) labels each final's words; each run
of one voice becomes its own final (the utterance id, then `<id>.2`, `<id>.3` ...), and the
earlier finals whose speaker changed are announced by a `speaker.revision` event
(docs/streaming.md) and changed in the conversation that is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convolens.model import Participant, Role, Utterance
from convolens.realtime.events import RevisedUtterance, ServerEvent, SpeakerRevisionEvent
from convolens.realtime.live_diarize import LiveDiarizer, Revision

if TYPE_CHECKING:
    from convolens.realtime.audio_input import Heard
    from convolens.realtime.insights import LiveInsights

__all__ = ["DiarizedSpeakers"]


class DiarizedSpeakers:
    """Speaker handling of `StreamSession` for diarized mono streams."""

    _diarizer: LiveDiarizer | None
    _by_speaker: dict[int, Participant]
    _by_uid: dict[str, Utterance]
    _by_channel: dict[int, Participant]
    _by_name: dict[str, Participant]
    _participants: list[Participant]
    _utterances: list[tuple[float, Utterance]]
    _insights: LiveInsights | None

    if TYPE_CHECKING:

        def _add(
            self, name: str, role: Role = ..., participant_id: str | None = ...
        ) -> Participant: ...

        def _finish(
            self,
            uid: str,
            utterance: Utterance,
            t: float,
            arrived: float | None,
            channel: int | None,
            heard: Heard | None,
        ) -> None: ...

        def _emit(self, event: ServerEvent, arrived: float | None = ...) -> None: ...

        def _now(self) -> float: ...

    def _channel_speaker(self, channel: int) -> Participant:
        """The channel's speaker; on a diarized stream the latest voice heard."""
        if channel in self._by_channel:
            return self._by_channel[channel]
        return self._latest or self._voice(0)

    @property
    def _latest(self) -> Participant | None:
        for _, utterance in reversed(self._utterances):
            if utterance.start is not None:
                return self._insights.participants[utterance.participant_id]  # type: ignore[union-attr]
        return None

    def _voice(self, index: int) -> Participant:
        """The participant of the diarizer's speaker `index` (joins when first heard)."""
        assert self._diarizer is not None
        if index not in self._by_speaker:
            self._diarizer._speaker(index)
            spec = self._diarizer.speakers[index]
            role = spec.role
            named_agent = any(p.role == Role.agent for p in self._by_speaker.values())
            if role == Role.unknown and named_agent and self._diarizer.max_speakers == 2:
                role = Role.customer  # the other party of a call whose agent was named
            self._by_speaker[index] = self._add(spec.name, role, spec.participant_id)
        return self._by_speaker[index]

    def _diarized_final(self, heard: Heard, diarizer: LiveDiarizer) -> None:
        """One final per speaker turn of the utterance, then revisions of earlier ones."""
        from convolens.speech.transcribe import join_words

        whole = heard.utterance("pending")
        words = whole.words or []
        spans = [(w.start, w.end) for w in words]
        try:
            embedded = heard.embedded
            if embedded is None:
                raise ValueError("no speaker embedding")
            labels = diarizer.label_words(embedded, spans)
            revisions = diarizer.revise()  # earlier turns, before this one's are added
        except Exception:  # no voice measured: the latest speaker keeps talking
            latest = self._latest
            index = next((i for i, p in self._by_speaker.items() if p is latest), 0)
            labels, revisions = [index] * len(words), []
        runs: list[tuple[int, int]] = []  # [first, end) word index of each turn
        for i, label in enumerate(labels):
            if runs and labels[runs[-1][0]] == label:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        for n, (first, end) in enumerate(runs):
            part = words[first:end]
            uid = heard.uid if n == 0 else f"{heard.uid}.{n + 1}"
            participant = self._voice(labels[first])
            utterance = Utterance(
                participant_id=participant.participant_id,
                text=join_words(heard.recognised.words[first:end]),  # type: ignore[union-attr]
                start=part[0].start,
                end=max(w.end for w in part),
                channel_index=heard.channel,
                words=part,
                meta={"stream_utterance_id": uid},
            )
            diarizer.add_turn(uid, part[0].start, utterance.end or part[0].start, labels[first])
            self._finish(uid, utterance, utterance.end or 0.0, heard.arrived, heard.channel, heard)
        self._revise(revisions, "reclustered")
        self._revise(diarizer.identify(), "identified")

    def _revise(self, revisions: list[Revision], reason: str) -> None:
        """Apply the diarizer's revisions to the kept utterances and announce them."""
        assert self._diarizer is not None
        if not revisions:
            return
        for speaker in self._diarizer.speakers:  # names and roles from enrolled voices
            if speaker.index in self._by_speaker:
                participant = self._by_speaker[speaker.index]
                if speaker.identified and participant.name != speaker.name:
                    self._by_name.pop(participant.name or "", None)
                    participant.name, participant.role = speaker.name, speaker.role
                    self._by_name[speaker.name] = participant
        if reason == "identified" and len(self._by_speaker) == 2:
            # A named agent in a two-party call: the other voice is the customer.
            roles = {p.role for p in self._by_speaker.values()}
            for participant in self._by_speaker.values():
                if Role.agent in roles and participant.role == Role.unknown:
                    participant.role = Role.customer
        changed: list[RevisedUtterance] = []
        for revision in revisions:
            utterance = self._by_uid.get(revision.uid)
            if utterance is None:
                continue
            before = self._insights.participants[utterance.participant_id]  # type: ignore[union-attr]
            after = self._voice(revision.new)
            utterance.participant_id = after.participant_id
            changed.append(
                RevisedUtterance(
                    utterance_id=revision.uid,
                    participant_id=after.participant_id,
                    speaker=after.name,
                    role=after.role,
                    previous_participant_id=before.participant_id,
                    previous_speaker=before.name if reason == "reclustered" else None,
                )
            )
        if changed:
            self._emit(
                SpeakerRevisionEvent(
                    t=self._now(),
                    reason=reason,  # type: ignore[arg-type]
                    utterances=changed,
                    participants=[
                        {"participant_id": p.participant_id, "name": p.name, "role": p.role.value}
                        for p in self._participants
                    ],
                )
            )
