"""A session's audio path: PCM16 frames in, recognised utterances out.

Interleaved PCM16 is split into channels (and resampled to 16 kHz by PyAV's stateful
resampler when the client sends another rate); each channel goes through its own
`ChannelStream` (one speaker per channel, so a stereo call needs no diarization and
overlapping speech stays separate). The decodes that endpointing asks for run here:
interim ones (emitted when their text changed), speculative ones (kept until the final
asks for exactly that audio) and final ones. `push` is a generator so that the session can
emit each final transcript before the next decode starts.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from convolens.model import Utterance, Word
from convolens.realtime.stream_asr import RATE, Action, ChannelStream, EndpointSettings
from convolens.realtime.utterance_asr import Recognised, UtteranceAsr

__all__ = ["AudioInput", "Heard"]


@dataclass
class Heard:
    """A decode result for the session: an interim or final transcript, or a failure."""

    kind: Literal["interim", "final", "error"]
    channel: int
    uid: str
    start: int  # samples (16 kHz) from the start of the stream
    end: int
    recognised: Recognised | None = None
    asr_ms: float | None = None  # time of the decode that gave the text
    speculative: bool = False  # decoded before the endpoint, while the silence ran on
    arrived: float | None = None  # perf_counter when the audio at the speech end arrived
    message: str = ""
    embedded: Any = None  # what `AudioInput.embed` made of the final's speech

    def utterance(self, participant_id: str) -> Utterance:
        """The final transcript as a canonical utterance, in seconds from the stream start."""
        assert self.recognised is not None and self.recognised.words
        offset = self.start / RATE
        words = [
            Word(
                text=w.text,
                start=round(offset + w.start, 3),
                end=round(offset + max(w.end, w.start), 3),
                confidence=round(min(1.0, max(0.0, w.probability or 0.0)), 4),
            )
            for w in self.recognised.words
        ]
        return Utterance(
            participant_id=participant_id,
            text=self.recognised.text,
            start=words[0].start,
            end=max(w.end for w in words),
            channel_index=self.channel,
            words=words,
            meta={"stream_utterance_id": self.uid},
        )


class AudioInput:
    """Channels, endpointing and decoding of one session's audio."""

    def __init__(
        self,
        asr: UtteranceAsr,
        settings: EndpointSettings,
        *,
        channels: int,
        sample_rate: int,
        language: str | None,
        new_id: Callable[[], str],
    ) -> None:
        self.asr = asr
        self.channels = channels
        self.sample_rate = sample_rate
        self.language = language
        self.streams = [ChannelStream(settings, new_id) for _ in range(channels)]
        self.samples = 0  # per channel, at 16 kHz
        self._resampler: Any = None
        if sample_rate != RATE:
            import av

            layout = "mono" if channels == 1 else "stereo"
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=RATE)
        # (samples received, perf_counter): when each stretch of audio arrived (~7 min).
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=4096)
        self._speculated: dict[str, tuple[int, Recognised, Any]] = {}
        # Speaker embedding of a final's words (a diarized mono stream sets it): made with
        # the speculative decode when there is one, so the final does not wait for it.
        self.embed: Callable[[np.ndarray, float, list[tuple[float, float]]], Any] | None = None
        self._interim: dict[str, str] = {}

    @property
    def frame_bytes(self) -> int:
        return 2 * self.channels

    def push(self, data: bytes, arrived: float | None = None) -> Iterator[Heard]:
        """Feed whole PCM16 frames (the caller checked the length); yields results."""
        pcm = np.frombuffer(data, dtype="<i2")
        if self._resampler is not None:
            channels = self._resample(pcm)
        else:
            channels = (pcm.reshape(-1, self.channels).T / 32768.0).astype(np.float32)
        yield from self._feed(channels, arrived if arrived is not None else time.perf_counter())

    def flush(self) -> Iterator[Heard]:
        """End of stream: the resampler's tail, then every open utterance is closed."""
        if self._resampler is not None:
            yield from self._feed(self._resample(None), time.perf_counter())
        for index, stream in enumerate(self.streams):
            for action in stream.flush():
                yield from self._act(index, action)

    def _feed(self, channels: np.ndarray, arrived: float) -> Iterator[Heard]:
        if channels.shape[1] == 0:
            return
        self.samples += channels.shape[1]
        self._arrivals.append((self.samples, arrived))
        for index, samples in enumerate(channels):
            for action in self.streams[index].push(samples):
                yield from self._act(index, action)

    def _resample(self, pcm: np.ndarray | None) -> np.ndarray:
        import av

        frame = None
        if pcm is not None:
            layout = "mono" if self.channels == 1 else "stereo"
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=layout)
            frame.sample_rate = self.sample_rate
        chunks = [f.to_ndarray() for f in self._resampler.resample(frame)]
        if not chunks:
            return np.zeros((self.channels, 0), dtype=np.float32)
        return np.concatenate(chunks, axis=1).astype(np.float32)

    def arrival(self, sample: int) -> float:
        """When the audio holding `sample` arrived (perf_counter)."""
        index = bisect_left(self._arrivals, sample, key=lambda a: a[0])
        return self._arrivals[min(index, len(self._arrivals) - 1)][1]

    def _act(self, channel: int, action: Action) -> Iterator[Heard]:
        segment = action.segment
        if action.kind == "discard":
            self._speculated.pop(segment.uid, None)
            self._interim.pop(segment.uid, None)
            return
        heard = Heard("final", channel, segment.uid, segment.start, segment.end)
        if action.kind == "final":
            self._interim.pop(segment.uid, None)
            ready = self._speculated.pop(segment.uid, None)
            if ready is not None and ready[0] == segment.end:
                heard.recognised, heard.speculative, heard.embedded = ready[1], True, ready[2]
        if heard.recognised is None:
            audio = self.streams[channel].audio(segment.start, segment.end)
            try:
                heard.recognised = self.asr(
                    audio,
                    language=self.language,
                    speech_end_s=(segment.speech_end - segment.start) / RATE,
                )
            except Exception as exc:  # a failed decode loses one utterance, not the session
                heard.kind, heard.message = "error", f"{type(exc).__name__}: {exc}"
                yield heard
                return
        heard.asr_ms = round(heard.recognised.elapsed_s * 1000, 1)
        text = heard.recognised.text
        wants_voice = text and self.embed is not None and action.kind != "interim"
        if wants_voice and heard.embedded is None:
            assert self.embed is not None
            audio = self.streams[channel].audio(segment.start, segment.end)
            spans = [(w.start, w.end) for w in heard.recognised.words]
            try:
                heard.embedded = self.embed(audio, segment.start / RATE, spans)
            except Exception:  # no speaker embedding: the session keeps the last voice
                heard.embedded = None
        if action.kind == "final":
            if text:
                heard.arrived = self.arrival(segment.speech_end)
                yield heard
        elif action.kind == "speculate":
            self._speculated[segment.uid] = (segment.end, heard.recognised, heard.embedded)
        elif text and text != self._interim.get(segment.uid):
            self._interim[segment.uid] = text
            heard.kind = "interim"
            yield heard
