"""Streaming voice activity and endpointing: each new 32 ms window is looked at once.

A live call cannot wait for the whole recording, and re-running VAD over a growing buffer
costs more with every second of the call. So each channel runs two small steps:

1. `StreamingVad`: the silero VAD that `convolens.speech.vad.SileroVad` uses (the ONNX
   model bundled with faster-whisper), run on each new window exactly once, with the
   model's LSTM state and 64-sample context carried across calls. Its probabilities equal
   a single pass over the whole signal (checked to 0.0 difference on the example call).
2. `ChannelStream`: an endpointer over those probabilities, with silero's hysteresis
   (speech from `threshold`, silence below `threshold - 0.15`). An utterance opens at the
   first speech window (minus `speech_pad_ms`) and closes after `endpoint_silence_ms` of
   silence, or at `max_utterance_s` (cut at the latest short pause of its last 3 s when
   there is one). It asks for an interim decode every `interim_every_s` of speech, and for
   a speculative decode once the silence reaches `prefinal_silence_ms`: that audio is
   exactly what the final decode would read, so when the silence goes on to the endpoint
   the final text is already there and the endpoint costs no decode.

Decoding is `utterance_asr.UtteranceAsr`. Times here are samples of 16 kHz audio within a
channel; the session turns them into seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from convolens.speech.types import AudioArray

__all__ = [
    "RATE",
    "WINDOW",
    "Action",
    "ChannelStream",
    "EndpointSettings",
    "Segment",
    "StreamingVad",
]

RATE = 16000
WINDOW = 512  # silero's window at 16 kHz: 32 ms
_CONTEXT = 64  # samples of the previous window silero v5/v6 reads before each window
_CUT_SEARCH_S = 3.0  # a forced cut looks this far back for a pause


class StreamingVad:
    """Silero speech probability of each new 32 ms window; state carried across calls."""

    def __init__(self) -> None:
        # The same ONNX model SileroVad runs (cached once per process by faster-whisper).
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._rest = np.zeros(0, dtype=np.float32)

    def __call__(self, samples: AudioArray) -> np.ndarray:
        """Probabilities of the complete windows now available (a partial one waits)."""
        audio = np.concatenate([self._rest, np.asarray(samples, dtype=np.float32)])
        count = audio.size // WINDOW
        self._rest = audio[count * WINDOW :]
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[: count * WINDOW].reshape(count, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -_CONTEXT:]], axis=0)
        batch = np.concatenate([contexts, windows], axis=1)
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = windows[-1, -_CONTEXT:].copy()
        return np.asarray(out, dtype=np.float32).reshape(-1)


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """Endpointing in milliseconds/seconds (validated by `RealtimeConfig`)."""

    threshold: float = 0.5
    endpoint_silence_ms: int = 500
    prefinal_silence_ms: int = 250
    speech_pad_ms: int = 200
    max_utterance_s: float = 15.0
    min_speech_ms: int = 200
    interim_every_s: float = 1.0

    @property
    def neg_threshold(self) -> float:
        # silero's own hysteresis: once speaking, only clearly lower probabilities are silence.
        return max(self.threshold - 0.15, 0.01)


@dataclass(frozen=True, slots=True)
class Segment:
    """An utterance's audio within one channel, in samples."""

    uid: str
    start: int  # first sample read (speech start minus padding)
    end: int  # one past the last sample read
    speech_start: int  # first speech window
    speech_end: int  # where the voice stopped (the end before padding)


@dataclass(frozen=True, slots=True)
class Action:
    """What the session should do: decode for an interim or a speculation, finish or drop."""

    kind: Literal["interim", "speculate", "final", "discard"]
    segment: Segment


@dataclass
class _Open:
    uid: str
    start: int
    speech_start: int
    silence_from: int | None = None
    last_interim: int = 0
    speculated: int | None = None  # end sample of the last speculative decode asked for
    probs: list[tuple[int, float]] = field(default_factory=list)


class ChannelStream:
    """Endpointing of one channel: feed samples, get the actions their windows trigger."""

    def __init__(
        self, settings: EndpointSettings, new_id: Callable[[], str], vad: StreamingVad | None = None
    ) -> None:
        self.settings = settings
        self._new_id = new_id
        self._vad = vad or StreamingVad()
        self.received = 0  # samples fed so far
        self._vad_pos = 0  # first sample of the next VAD window
        self._floor = 0  # samples before this belong to finished utterances
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._open: _Open | None = None
        ms = RATE // 1000
        self._pad = settings.speech_pad_ms * ms
        self._endpoint = settings.endpoint_silence_ms * ms
        self._prefinal = settings.prefinal_silence_ms * ms
        self._min_speech = settings.min_speech_ms * ms
        self._max_len = int(settings.max_utterance_s * RATE)
        self._interim = int(settings.interim_every_s * RATE)

    @property
    def open_uid(self) -> str | None:
        return self._open.uid if self._open else None

    def audio(self, start: int, end: int) -> AudioArray:
        """Samples [start, end) of this channel (still buffered while an utterance needs them)."""
        lo, hi = start - self._buffer_start, end - self._buffer_start
        if lo < 0:
            raise ValueError(f"samples from {start} are no longer buffered")
        return self._buffer[lo:hi]

    def push(self, samples: AudioArray) -> list[Action]:
        """The actions the new windows trigger; `audio()` serves them until the next push."""
        self._trim()
        self._buffer = np.concatenate([self._buffer, samples])
        self.received += samples.size
        actions: list[Action] = []
        for p in self._vad(samples):
            self._window(self._vad_pos, float(p), actions)
            self._vad_pos += WINDOW
        return actions

    def flush(self) -> list[Action]:
        """Close the open utterance at the end of the stream."""
        if self._open is None:
            return []
        o = self._open
        speech_end = o.silence_from if o.silence_from is not None else self.received
        return [self._close(o, speech_end, min(self.received, speech_end + self._pad))]

    def _window(self, pos: int, p: float, actions: list[Action]) -> None:
        s, end = self.settings, pos + WINDOW
        o = self._open
        if o is None:
            if p >= s.threshold:
                start = max(self._floor, self._buffer_start, pos - self._pad)
                self._open = _Open(self._new_id(), start, pos, last_interim=start)
                self._open.probs.append((pos, p))
            return
        o.probs.append((pos, p))
        if p >= s.threshold:
            o.silence_from = None
        elif p < s.neg_threshold and o.silence_from is None:
            o.silence_from = pos
        if o.silence_from is not None:
            silence = end - o.silence_from
            padded = o.silence_from + self._pad
            if silence >= self._endpoint:
                actions.append(self._close(o, o.silence_from, padded))
                return
            if self._prefinal and silence >= self._prefinal and o.speculated != padded:
                o.speculated = padded
                actions.append(Action("speculate", self._segment(o, padded, o.silence_from)))
        elif self._interim and end - o.last_interim >= self._interim:
            o.last_interim = end
            actions.append(Action("interim", self._segment(o, end, end)))
        if end - o.start >= self._max_len:
            self._cut(o, end, actions)

    def _cut(self, o: _Open, end: int, actions: list[Action]) -> None:
        """Close an over-long utterance at its latest pause, else here; speech goes on."""
        cut = end
        for pos, prob in reversed(o.probs):
            if pos < end - _CUT_SEARCH_S * RATE or pos <= o.start + RATE:
                break
            if prob < self.settings.neg_threshold:
                cut = pos + WINDOW // 2
                break
        actions.append(self._close(o, cut, cut))
        if o.silence_from is None or o.silence_from > cut:
            # Still speaking: the rest is the next utterance, from the cut on.
            rest = _Open(self._new_id(), cut, cut, last_interim=cut)
            rest.probs = [(q, pr) for q, pr in o.probs if q >= cut]
            rest.silence_from = o.silence_from
            self._open = rest

    def _close(self, o: _Open, speech_end: int, end: int) -> Action:
        self._open = None
        self._floor = end
        segment = self._segment(o, end, speech_end)
        voiced = speech_end - o.speech_start
        return Action("final" if voiced >= self._min_speech else "discard", segment)

    def _segment(self, o: _Open, end: int, speech_end: int) -> Segment:
        return Segment(o.uid, o.start, max(end, o.start + 1), o.speech_start, speech_end)

    def _trim(self) -> None:
        # Keep what an open utterance needs, or the padding a new one may reach back into.
        keep = self._open.start if self._open else max(self._floor, self._vad_pos - self._pad)
        if keep - self._buffer_start > 2 * RATE:
            self._buffer = self._buffer[keep - self._buffer_start :].copy()
            self._buffer_start = keep
