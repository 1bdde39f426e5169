"""The realtime engine: one `StreamSession` per live conversation, models shared by all.

Framework-free, so the WebSocket route only moves frames:

    models = shared_models(RealtimeConfig()).load()   # once per process
    session = StreamSession(models, on_event=send)    # per connection
    session.handle_text(frame_text)    # JSON text frame: start / message / stop
    session.feed_audio(frame_bytes)    # binary frame: interleaved PCM16 little-endian
    events, conversation = session.stop()

API (every method returns the events it emitted, in order, and never raises on bad
input: a bad message becomes an `error` event and the session goes on):

- `start(msg: StartMessage | dict) -> list[ServerEvent]`
- `feed_audio(data: bytes) -> list[ServerEvent]`: whole frames (channels x 2 bytes each),
  any number of them; VAD, endpointing and ASR run here, in the caller's thread.
- `feed_text(msg: TextMessage | dict) -> list[ServerEvent]`
- `stop() -> tuple[list[ServerEvent], Conversation | None]`: closes open utterances and
  returns the `convolens.model.Conversation` to store (None if the session never started).
- `handle_text(raw: str | bytes) -> list[ServerEvent]`: decodes a text frame and
  dispatches it; after a `stop` frame, `session.conversation` holds the conversation.

Every call holds the session's lock, so a session may be fed from several threads. Call
from a worker thread (`anyio.to_thread.run_sync`): a decode takes ~0.1-0.5 s. `on_event`
is called the moment each event is made, before the slower work after it (a final
transcript goes out before its insights are computed), from the calling thread; use
either it or the returned lists, not both. Event shapes and timing: docs/streaming.md.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from convolens.model import (
    BusinessLinks,
    Channel,
    Conversation,
    Participant,
    Role,
    SourceInfo,
    Utterance,
)
from convolens.realtime.audio_input import AudioInput, Heard
from convolens.realtime.config import RealtimeConfig, RealtimeModels, shared_models
from convolens.realtime.events import (
    INSIGHTS,
    ErrorEvent,
    ServerEvent,
    StartedEvent,
    StartMessage,
    StoppedEvent,
    TextMessage,
    TranscriptFinalEvent,
    TranscriptInterimEvent,
    WordTiming,
    parse_client_message,
)
from convolens.realtime.insights import LiveInsights
from convolens.realtime.live_diarize import LiveDiarizer
from convolens.realtime.session_speakers import DiarizedSpeakers
from convolens.realtime.stream_asr import RATE
from convolens.speech.options import EnrolledVoice

__all__ = ["RealtimeConfig", "RealtimeModels", "StreamSession", "shared_models"]


class StreamSession(DiarizedSpeakers):
    """One live conversation: feed it frames, it emits events and builds the conversation."""

    def __init__(
        self,
        models: RealtimeModels,
        *,
        session_id: str | None = None,
        on_event: Callable[[ServerEvent], None] | None = None,
        voices: Sequence[EnrolledVoice] = (),
    ) -> None:
        self.models = models
        # Enrolled voices that name a diarized mono stream's speakers (speaker_voices).
        self._voices = list(voices)
        self._diarizer: LiveDiarizer | None = None
        self._by_speaker: dict[int, Participant] = {}
        self._by_uid: dict[str, Utterance] = {}
        self.config = models.config
        self.session_id = session_id or f"st-{uuid.uuid4().hex[:16]}"
        self.on_event = on_event
        self.state: Literal["new", "started", "stopped"] = "new"
        self.conversation: Conversation | None = None
        self._lock = threading.RLock()
        self._seq = 0
        self._out: list[ServerEvent] | None = None  # the events of the call in progress
        self._counts: Counter[str] = Counter()
        self._alerts: Counter[str] = Counter()
        self._start: StartMessage | None = None
        self._clock = time.perf_counter()
        self._started_at = datetime.now(UTC)
        self._participants: list[Participant] = []
        self._by_name: dict[str, Participant] = {}
        self._by_channel: dict[int, Participant] = {}
        self._audio: AudioInput | None = None
        self._insights: LiveInsights | None = None
        self._utterances: list[tuple[float, Utterance]] = []  # (stream time, utterance)
        self._next_uid = 0

    # --- public API ------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """The `seq` of the last event emitted (a server adding its own events goes on)."""
        return self._seq

    def handle_text(self, raw: str | bytes) -> list[ServerEvent]:
        """Decode a JSON text frame and dispatch it (start, message or stop)."""
        with self._lock, self._collect() as out:
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self._error("invalid_json", f"text frames must be JSON: {exc}")
                return out
            kind = data.get("type") if isinstance(data, dict) else None
            try:
                message = parse_client_message(data)
            except ValidationError as exc:
                self._invalid("invalid_start" if kind == "start" else "invalid_message", exc)
                return out
            if isinstance(message, StartMessage):
                self.start(message)
            elif isinstance(message, TextMessage):
                self.feed_text(message)
            else:
                self.stop()
            return out

    def start(self, msg: StartMessage | dict[str, Any]) -> list[ServerEvent]:
        with self._lock, self._collect() as out:
            if self.state != "new":
                self._error(f"already_{self.state}", f"the session is already {self.state}")
                return out
            try:
                start = msg if isinstance(msg, StartMessage) else StartMessage.model_validate(msg)
            except ValidationError as exc:
                self._invalid("invalid_start", exc)
                return out
            if start.channel_kind != "chat":
                asr = self.models.asr
                if not asr.multilingual and start.language not in (None, "en"):
                    self._error(
                        "unsupported_language",
                        f"the model {asr.model_id} is English-only; language "
                        f"{start.language!r} needs a multilingual model (e.g. 'base')",
                    )
                    return out
            self._setup(start)
            channel_of = {p.participant_id: c for c, p in self._by_channel.items()}
            self._emit(
                StartedEvent(
                    session_id=self.session_id,
                    participants=[
                        {
                            "participant_id": p.participant_id,
                            "name": p.name,
                            "role": p.role.value,
                            "channel": channel_of.get(p.participant_id),
                        }
                        for p in self._participants
                    ],
                    sample_rate=start.sample_rate,
                    channels=start.channels,
                    language=start.language,
                    insights=sorted(self._insights.enabled) if self._insights else [],
                    asr_model=self.models.asr.model_id if self._audio else None,
                    endpoint_silence_ms=self.config.endpoint_silence_ms,
                )
            )
            return out

    def feed_audio(self, data: bytes) -> list[ServerEvent]:
        arrived = time.perf_counter()
        with self._lock, self._collect() as out:
            if not self._ready("audio"):
                return out
            if self._audio is None:
                self._error("no_audio", "this is a chat session (channel_kind 'chat'): no audio")
                return out
            width = self._audio.frame_bytes
            if len(data) % width:
                self._error(
                    "bad_frame_size",
                    f"{len(data)} bytes is not a whole number of {self._audio.channels}-channel "
                    f"PCM16 frames ({width} bytes each); frame dropped",
                )
                return out
            self._heard(self._audio.push(bytes(data), arrived))
            return out

    def feed_text(self, msg: TextMessage | dict[str, Any]) -> list[ServerEvent]:
        arrived = time.perf_counter()
        with self._lock, self._collect() as out:
            try:
                text = msg if isinstance(msg, TextMessage) else TextMessage.model_validate(msg)
            except ValidationError as exc:
                self._invalid("invalid_message", exc)
                return out
            if not self._ready("message"):
                return out
            participant = self._participant(text.speaker)
            uid = self._uid()
            utterance = Utterance(
                participant_id=participant.participant_id,
                text=text.text,
                sent_at=text.sent_at or datetime.now(UTC),
                meta={"stream_utterance_id": uid},
            )
            self._finish(uid, utterance, self._now(), arrived, None, None)
            return out

    def stop(self) -> tuple[list[ServerEvent], Conversation | None]:
        with self._lock, self._collect() as out:
            if not self._ready("stop"):
                return out, None
            assert self._start is not None and self._insights is not None
            if self._audio is not None:
                self._heard(self._audio.flush())
            for event in self._insights.topics(self._now(), force=True):
                self._emit(event)
            conversation = self._conversation()
            self.conversation = conversation
            self.state = "stopped"
            self._counts["stopped"] += 1
            self._emit(
                StoppedEvent(
                    t=self._now(),
                    session_id=self.session_id,
                    conversation_id=conversation.conversation_id,
                    duration_s=round(conversation.duration_seconds or 0.0, 3),
                    utterances=len(conversation.utterances),
                    words=sum(len(u.words or ()) for u in conversation.utterances),
                    by_participant=dict(Counter(u.participant_id for u in conversation.utterances)),
                    events=dict(self._counts),
                    alerts=dict(self._alerts),
                )
            )
            return out, conversation

    # --- setup -----------------------------------------------------------------------

    def _setup(self, start: StartMessage) -> None:
        self._start = start
        self._clock = time.perf_counter()
        self._started_at = datetime.now(UTC)
        speakers = list(start.speakers)
        # A mono stream with one declared speaker: that speaker is the audio.
        if start.channels == 1 and len(speakers) == 1 and speakers[0].channel is None:
            speakers[0] = speakers[0].model_copy(update={"channel": 0})
        for spec in speakers:
            participant = self._add(spec.name, spec.role)
            if spec.channel is not None:
                self._by_channel[spec.channel] = participant
        diarize = start.diarize if start.diarize is not None else self.config.diarize
        diarize = diarize and start.channel_kind != "chat" and start.channels == 1
        diarize = diarize and 0 not in self._by_channel
        if start.channel_kind != "chat":
            for channel in range(start.channels):
                if channel not in self._by_channel and not diarize:
                    # Like the batch pipeline's channel speakers: ch0, ch1.
                    name = f"Channel {channel + 1}" if start.channels > 1 else "Speaker"
                    self._by_channel[channel] = self._add(name, participant_id=f"ch{channel}")
            self._audio = AudioInput(
                self.models.asr,
                self.config.endpointing(),
                channels=start.channels,
                sample_rate=start.sample_rate,
                language=start.language,
                new_id=self._uid,
            )
            if diarize:
                bound = start.max_speakers or (2 if start.channel_kind == "call" else None)
                self._diarizer = LiveDiarizer(
                    self.models.speaker_embedder, max_speakers=bound, voices=self._voices
                )
                self._audio.embed = self._diarizer.embed
        self._insights = LiveInsights(
            self.models.insights,
            session_id=self.session_id,
            participants=self._participants,
            started_at=self._started_at,
            channel=Channel(start.channel_kind),
            enabled=set(start.insights if start.insights is not None else INSIGHTS),
            trackers=start.trackers,
            alerts=self.config.alerts,
            topics_every=self.config.topics_every,
            topics_window=self.config.topics_window,
        )
        self.state = "started"

    def _add(
        self, name: str, role: Role = Role.unknown, participant_id: str | None = None
    ) -> Participant:
        wanted = pid = participant_id or name
        taken = {p.participant_id for p in self._participants}
        for n in range(2, len(taken) + 3):  # ids must be unique: a speaker may be called "ch1"
            if pid not in taken:
                break
            pid = f"{wanted}-{n}"
        participant = Participant(participant_id=pid, name=name, role=role)
        self._participants.append(participant)
        self._by_name[name] = participant
        if self._insights is not None:
            self._insights.add_participant(participant)
        return participant

    def _participant(self, name: str) -> Participant:
        """The speaker of a text message; a name not declared at start joins as unknown."""
        return self._by_name.get(name) or self._add(name)

    # --- utterances ------------------------------------------------------------------

    def _heard(self, results: Iterator[Heard]) -> None:
        for heard in results:
            if heard.kind == "error":
                self._error("asr_failed", heard.message)
                continue
            assert heard.recognised is not None
            speaker = self._channel_speaker(heard.channel)
            if heard.kind == "final" and self._diarizer is not None:
                self._diarized_final(heard, self._diarizer)
                continue
            if heard.kind == "interim":
                redactor = self.models.redactor
                text = heard.recognised.text
                if redactor is not None:
                    text = redactor.redact_text(text, self._participants)[0]
                self._emit(
                    TranscriptInterimEvent(
                        t=round(heard.end / RATE, 3),
                        utterance_id=heard.uid,
                        participant_id=speaker.participant_id,
                        speaker=speaker.name,
                        role=speaker.role,
                        channel=heard.channel,
                        text=text,
                        start=round(heard.start / RATE, 3),
                    )
                )
                continue
            utterance = heard.utterance(speaker.participant_id)
            end = utterance.end or 0.0
            self._finish(heard.uid, utterance, end, heard.arrived, heard.channel, heard)

    def _finish(
        self,
        uid: str,
        utterance: Utterance,
        t: float,
        arrived: float | None,
        channel: int | None,
        heard: Heard | None,
    ) -> None:
        """Record an utterance; emit its final transcript, then its insights."""
        assert self._insights is not None
        participant = self._insights.participants[utterance.participant_id]
        audio = utterance.start is not None
        # Redacted before any event, insight or the stored conversation holds it.
        redactor = self.models.redactor
        if redactor is not None:
            try:
                redactor.redact_utterance(utterance, self._participants)
            except Exception as exc:  # never sent or kept unredacted: the utterance is dropped
                self._error("redaction_failed", f"utterance {uid} dropped: {type(exc).__name__}")
                return
        self._utterances.append((utterance.start if audio else t, utterance))  # type: ignore[arg-type]
        self._by_uid[uid] = utterance
        self._emit(
            TranscriptFinalEvent(
                t=t,
                utterance_id=uid,
                participant_id=participant.participant_id,
                speaker=participant.name,
                role=participant.role,
                channel=channel,
                source="audio" if audio else "text",
                text=utterance.text,
                start=utterance.start,
                end=utterance.end,
                words=[WordTiming(**w.model_dump()) for w in utterance.words or ()],
                sent_at=utterance.sent_at,
                asr_ms=heard.asr_ms if heard else None,
                speculative=heard.speculative if heard else False,
            ),
            arrived,
        )
        try:
            events = self._insights.utterance(uid, utterance, t) + self._insights.topics(t)
        except Exception as exc:  # insights are best effort; the transcript is kept
            self._error("insights_failed", f"{type(exc).__name__}: {exc}")
            return
        for event in events:
            self._emit(event, arrived)

    # --- events ----------------------------------------------------------------------

    def _collect(self) -> _Collector:
        return _Collector(self)

    def _emit(self, event: ServerEvent, arrived: float | None = None) -> None:
        self._seq += 1
        event.seq = self._seq
        event.emitted_at = datetime.now(UTC)
        if arrived is not None and hasattr(event, "lag_ms"):
            event.lag_ms = round((time.perf_counter() - arrived) * 1000, 1)
        if event.type != "stopped":
            self._counts[event.type] += 1
        if event.type == "alert":
            self._alerts[str(getattr(event, "rule", ""))] += 1
        if self._out is not None:
            self._out.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _error(self, code: str, message: str, detail: list[dict[str, Any]] | None = None) -> None:
        self._emit(ErrorEvent(t=self._now(), code=code, message=message, detail=detail))

    def _invalid(self, code: str, exc: ValidationError) -> None:
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in problems
        )
        self._error(code, summary, [dict(e) for e in problems])

    def _ready(self, what: str) -> bool:
        if self.state == "started":
            return True
        if self.state == "new":
            self._error("not_started", f"{what} before start: send a start message first")
        else:
            self._error("stopped", f"{what} after stop: the session has ended")
        return False

    def _uid(self) -> str:
        self._next_uid += 1
        return f"{self.session_id}:u{self._next_uid}"

    def _now(self) -> float:
        """Stream time: seconds of audio received, else wall seconds since start."""
        if self._audio is not None and self._audio.samples:
            return round(self._audio.samples / RATE, 3)
        return round(time.perf_counter() - self._clock, 3)

    def _conversation(self) -> Conversation:
        assert self._start is not None
        start = self._start
        audio = self._audio
        english_only = audio is not None and not audio.asr.multilingual
        return Conversation(
            channel=Channel(start.channel_kind),
            source=SourceInfo(
                system="stream",
                source_id=start.source_id or self.session_id,
                agent=start.agent
                or next((p.name for p in self._participants if p.role == Role.agent), None),
                queue=start.queue,
            ),
            links=BusinessLinks(account_id=start.account_id),
            language=start.language or ("en" if english_only else None),
            started_at=self._started_at,
            duration_seconds=self._now(),
            participants=self._participants,
            # Time order: audio by start, text by arrival (stable for equal times).
            utterances=[u for _, u in sorted(self._utterances, key=lambda item: item[0])],
            meta={
                "stream": {
                    "session_id": self.session_id,
                    "asr_model": audio.asr.model_id if audio is not None else None,
                    "sample_rate": start.sample_rate,
                    "channels": start.channels,
                    "endpoint_silence_ms": self.config.endpoint_silence_ms,
                    "events": dict(self._counts),
                }
            },
        )


class _Collector:
    """Collects the events one public call emits (calls nest: handle_text -> stop)."""

    def __init__(self, session: StreamSession) -> None:
        self.session = session
        self.saved: list[ServerEvent] | None = None
        self.mine: list[ServerEvent] = []

    def __enter__(self) -> list[ServerEvent]:
        self.saved, self.session._out = self.session._out, self.mine
        return self.mine

    def __exit__(self, *exc: object) -> None:
        self.session._out = self.saved
        if self.saved is not None:
            self.saved.extend(self.mine)
