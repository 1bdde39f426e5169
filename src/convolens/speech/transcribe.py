"""Audio or video file in, speaker-separated word-timed conversation out.

Multichannel recordings (the call-centre case) are transcribed channel by channel, one
participant per channel, so overlap comes exactly from the timings. Mono recordings are
transcribed once and diarized (voice activity, speaker embeddings, clustering); words go
to speakers by time overlap. Utterances are runs of one speaker's words, split at pauses.
"""

from __future__ import annotations

import inspect
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from convolens.ingest.sidecar import Sidecar
from convolens.model import Channel, Role
from convolens.speech.decode import DecodedAudio, decode_audio
from convolens.speech.options import EnrolledVoice, SpeechOptions
from convolens.speech.roles import infer_roles
from convolens.speech.types import (
    AsrBackend,
    AsrResult,
    AsrWord,
    Diarizer,
    SpeakerEmbedder,
    SpeakerTurn,
    SpeechRegion,
    VoiceActivityDetector,
)

if TYPE_CHECKING:
    from convolens.speech.identity import Identification

__all__ = [
    "MediaTranscript",
    "NoSpeechError",
    "Speaker",
    "SpeechOptions",
    "SpeechPipeline",
    "to_conversation",
]


# Below this much recognised speech a call is taken as one speaker unless told otherwise.
MIN_SPEECH_FOR_TWO_S = 5.0


class NoSpeechError(ValueError):
    """The recording decoded but holds no recognisable speech."""


@dataclass
class Speaker:
    participant_id: str
    name: str
    role: Role = Role.unknown
    channel_index: int | None = None


@dataclass
class MediaTranscript:
    audio: DecodedAudio
    separation: Literal["channels", "diarization", "single"]
    speakers: list[Speaker]
    # (speaker id, words) per utterance, in time order
    turns: list[tuple[str, list[AsrWord]]]
    asr: list[AsrResult] = field(default_factory=list)
    # The diarizer's own turns (speaker = participant id), overlapping where two voices
    # talk at once. Word timings alone miss speech (pauses held inside a turn, words
    # Whisper dropped), so utterance spans are widened to these.
    speaker_turns: list[SpeakerTurn] = field(default_factory=list)
    # Speakers named from enrolled voices (speech/identity.py).
    identities: list[Identification] = field(default_factory=list)

    @property
    def language(self) -> str | None:
        return self.asr[0].language if self.asr else None


# Loudness envelopes of two channels correlated at least this much carry one source:
# measured >= 0.97 for one voice in both channels with independent noise (0-20 dB SNR,
# 5 ms delay), <= 0.54 for two parties even with 30 % crosstalk each way.
SAME_SOURCE_CORRELATION = 0.8


def envelope_correlation(left: np.ndarray, right: np.ndarray, frame: int = 320) -> float:
    """Pearson correlation of the two channels' 20 ms RMS envelopes (linear scale, so a
    faint crosstalk of the other party barely counts against loud own speech)."""
    n = min(left.size, right.size) // frame
    if n < 2:
        return 1.0
    envelopes = [
        np.sqrt(np.mean(np.asarray(c[: n * frame], dtype=np.float64).reshape(n, frame) ** 2, 1))
        for c in (left, right)
    ]
    if min(float(e.std()) for e in envelopes) < 1e-9:
        return 0.0  # a silent channel: nothing in common (a one-sided recording)
    return float(np.corrcoef(envelopes[0], envelopes[1])[0, 1])


def _channels_differ(channels: list[np.ndarray]) -> bool:
    """Whether the channels hold different participants.

    Many "stereo" files carry one mono signal twice, and a stereo recorder puts one
    speaker in both channels with each microphone's own noise; splitting those would give
    every word twice under two speakers. Two parties on two channels take turns, so their
    loudness envelopes do not rise and fall together; one source in both channels does.
    """
    if len(channels) < 2:
        return False
    left, right = channels[0], channels[1]
    scale = float(np.sqrt(np.mean(left**2)) + np.sqrt(np.mean(right**2))) + 1e-9
    if float(np.sqrt(np.mean((left - right) ** 2))) <= 0.05 * scale:
        return False
    return envelope_correlation(left, right) < SAME_SOURCE_CORRELATION


def refine_word_timings(words: list[AsrWord], regions: list[SpeechRegion]) -> list[AsrWord]:
    """Clip each word to the voice-activity region it overlaps most.

    Whisper's word boundaries drift by a few hundred milliseconds, mostly running into
    the following silence; overlap, silence and latency metrics inherit that error. A
    tight VAD (short padding) knows where speech stops, so words are trimmed to it; a
    word overlapping no region is left as it is.
    """
    if not regions:
        return words
    starts = [r.start for r in regions]
    refined: list[AsrWord] = []
    previous_end = 0.0
    for word in words:
        index = bisect_right(starts, word.end)
        best, best_overlap = None, 0.0
        # Only regions starting before the word ends can overlap it; look back a few.
        for region in regions[max(0, index - 4) : index]:
            overlap = min(word.end, region.end) - max(word.start, region.start)
            if overlap > best_overlap:
                best, best_overlap = region, overlap
        if best is None:
            refined.append(word)
            continue
        start, end = max(word.start, best.start), min(word.end, best.end)
        # Whisper also starts words late after a pause: the first word of a region may
        # begin where the region does, if no earlier word claims that stretch.
        if previous_end <= best.start < word.start <= best.start + 1.0:
            start = best.start
        refined.append(
            AsrWord(word.text, start, max(end, start), word.probability, word.joins_previous)
        )
        previous_end = max(previous_end, refined[-1].end)
    return refined


def widen_to_turns(
    turns: list[tuple[str, list[AsrWord]]], speaker_turns: list[SpeakerTurn]
) -> list[tuple[float, float]]:
    """(start, end) of each utterance: its words' span, widened to the diarizer turns of
    the same speaker that it overlaps, without reaching that speaker's previous or next
    utterance. With no diarizer turns, the words' span."""
    spans = [(words[0].start, max(w.end for w in words)) for _, words in turns]
    if not speaker_turns:
        return spans
    by_speaker: dict[str, list[SpeakerTurn]] = {}
    for turn in speaker_turns:
        by_speaker.setdefault(turn.speaker, []).append(turn)
    order: dict[str, list[int]] = {}
    for index, (speaker, _) in enumerate(turns):
        order.setdefault(speaker, []).append(index)
    widened = list(spans)
    for speaker, indices in order.items():
        own = by_speaker.get(speaker, [])
        for position, index in enumerate(indices):
            start, end = spans[index]
            low = spans[indices[position - 1]][1] if position > 0 else 0.0
            high = spans[indices[position + 1]][0] if position + 1 < len(indices) else float("inf")
            for turn in own:
                if turn.start < end and turn.end > start:
                    start, end = min(start, max(turn.start, low)), max(end, min(turn.end, high))
            widened[index] = (start, end)
    return widened


def join_words(words: list[AsrWord]) -> str:
    """Text as the recogniser wrote it: spaces between words, none inside split words."""
    return "".join(
        w.text if i == 0 or w.joins_previous else " " + w.text for i, w in enumerate(words)
    )


def group_turns(
    words: list[AsrWord], speakers: list[str], max_pause_s: float
) -> list[tuple[str, list[AsrWord]]]:
    """Runs of one speaker's consecutive words; a pause over `max_pause_s` splits a run."""
    turns: list[tuple[str, list[AsrWord]]] = []
    for word, speaker in zip(words, speakers, strict=True):
        if turns and turns[-1][0] == speaker and word.start - turns[-1][1][-1].end <= max_pause_s:
            turns[-1][1].append(word)
        else:
            turns.append((speaker, [word]))
    return turns


class SpeechPipeline:
    """Holds the loaded backends; `transcribe(path)` per file. Build once, reuse."""

    def __init__(
        self,
        options: SpeechOptions | None = None,
        *,
        asr: AsrBackend | None = None,
        diarizer: Diarizer | None = None,
    ) -> None:
        self.options = options or SpeechOptions()
        self._asr = asr
        self._diarizer = diarizer
        self._boundary_vad: VoiceActivityDetector | None = None
        self._voice_embedder: SpeakerEmbedder | None = None

    def _words(self, result: AsrResult, samples: np.ndarray) -> list[AsrWord]:
        """The recognised words without repeated or invented spans (speech/guards.py),
        timings tightened to voice activity."""
        words = [w for s in result.segments for w in s.words]
        if not words:
            return words
        if self._boundary_vad is None:
            from convolens.speech.vad import SileroVad

            # Tight settings: here the point is where speech starts and stops.
            self._boundary_vad = SileroVad(min_silence_ms=150, speech_pad_ms=30)
        from convolens.speech.guards import guard_words

        regions = self._boundary_vad(samples, 16000)
        words = guard_words(words, regions)
        if not self.options.refine_timings:
            return words
        return refine_word_timings(words, regions)

    @property
    def asr(self) -> AsrBackend:
        if self._asr is None:
            from convolens.speech.asr import FasterWhisperAsr

            o = self.options
            self._asr = FasterWhisperAsr(
                o.model,
                compute_type=o.compute_type,
                beam_size=o.beam_size,
                batch_size=o.batch_size,
                language=o.language,
                hotwords=o.hotwords,
                initial_prompt=o.initial_prompt,
            )
        return self._asr

    @property
    def diarizer(self) -> Diarizer:
        if self._diarizer is None:
            if self.options.diarizer == "resemblyzer":
                from convolens.speech.diarize import ClusteringDiarizer

                self._diarizer = ClusteringDiarizer()
            else:
                from convolens.speech.neural_diarize import SegmentationDiarizer

                self._diarizer = SegmentationDiarizer()
        return self._diarizer

    def _bounded(self) -> bool:
        """Whether the diarizer can take an upper bound on the count (ours: max_speakers)."""
        call: Any = self.diarizer
        try:
            return "max_speakers" in inspect.signature(call).parameters
        except (TypeError, ValueError):
            return False

    def _diarize(self, mono: np.ndarray, count: int | None, bound: int | None) -> list[SpeakerTurn]:
        call: Any = self.diarizer
        if bound is not None:
            return call(mono, 16000, count, max_speakers=bound)  # type: ignore[no-any-return]
        return call(mono, 16000, count)  # type: ignore[no-any-return]

    def _run_asr(self, audio: np.ndarray, progress: Callable[[float], None] | None) -> AsrResult:
        transcribe: Any = self.asr.transcribe
        # A user's backend need not report progress; ours takes `on_progress`.
        if progress is not None and "on_progress" in inspect.signature(transcribe).parameters:
            return transcribe(audio, language=self.options.language, on_progress=progress)  # type: ignore[no-any-return]
        return transcribe(audio, language=self.options.language)  # type: ignore[no-any-return]

    def transcribe(
        self,
        path: str | Path,
        sidecar: Sidecar | None = None,
        on_progress: Callable[[float, float], None] | None = None,
        *,
        voices: Sequence[EnrolledVoice] | None = None,
    ) -> MediaTranscript:
        """Decode, transcribe and separate speakers. `on_progress(done_s, total_s)`.
        Speakers matching `voices` (default: the options') take their names and roles."""
        sidecar = sidecar or Sidecar()
        audio = decode_audio(path)
        split = self.options.channels == "split" or (
            self.options.channels == "auto" and _channels_differ(audio.channels)
        )
        total = audio.duration * (len(audio.channels) if split else 1)

        def progress_from(offset: float) -> Callable[[float], None] | None:
            if on_progress is None:
                return None
            return lambda done: on_progress(min(total, offset + done), total)

        if split:
            results, speakers, turns = [], [], []
            for index, samples in enumerate(audio.channels):
                declared = sidecar.channels.get(index)
                speaker = Speaker(
                    participant_id=f"ch{index}",
                    name=(declared.name if declared and declared.name else f"Channel {index + 1}"),
                    role=declared.role if declared else Role.unknown,
                    channel_index=index,
                )
                result = self._run_asr(samples, progress_from(index * audio.duration))
                words = self._words(result, samples)
                turns += group_turns(
                    words, [speaker.participant_id] * len(words), self.options.max_pause_s
                )
                results.append(result)
                speakers.append(speaker)
            turns.sort(key=lambda turn: (turn[1][0].start, turn[0]))
            transcript = MediaTranscript(audio, "channels", speakers, turns, results)
        else:
            mono = audio.mono
            result = self._run_asr(mono, progress_from(0.0))
            words = self._words(result, mono)
            count = self.options.num_speakers or sidecar.num_speakers
            bound: int | None = None
            if count is None and (sidecar.channel in (None, Channel.call)):
                # A call is agent and customer, unless there is too little speech for a
                # second voice: a few seconds is one person leaving a message. Past that,
                # a diarizer that takes a bound decides between one voice and two (a
                # voicemail, a single-speaker recording); others are told two.
                speech = sum(w.end - w.start for w in words)
                if speech < MIN_SPEECH_FOR_TWO_S:
                    count = 1
                elif self.options.diarize and self._bounded():
                    bound = 2
                else:
                    count = 2
            diarized: list[SpeakerTurn] = []
            if words and self.options.diarize and count != 1:
                from convolens.engine.priority import LIVE
                from convolens.speech.diarize import assign_speakers

                LIVE.yield_to_live()  # a server's live streams first (engine/priority.py)
                diarized = self._diarize(mono, count, bound)
                labels = assign_speakers(words, diarized)
            else:
                labels = ["S0"] * len(words)
            names = list(dict.fromkeys(labels)) or ["S0"]
            speakers = [Speaker(label, f"Speaker {i + 1}") for i, label in enumerate(names)]
            separation: Literal["diarization", "single"] = (
                "diarization" if len(names) > 1 else "single"
            )
            turns = group_turns(words, labels, self.options.max_pause_s)
            transcript = MediaTranscript(
                audio,
                separation,
                speakers,
                turns,
                [result],
                speaker_turns=[t for t in diarized if t.speaker in names] if len(names) > 1 else [],
            )

        if not transcript.turns:
            detail = "".join(f" ({w.split(': ', 1)[-1]})" for w in audio.warnings)
            raise NoSpeechError(
                f"{Path(path).name}: no speech recognised in {audio.duration:.1f} s of audio"
                + detail
            )
        self._identify(transcript, self.options.voices if voices is None else voices)
        self._assign_roles(transcript, sidecar)
        return transcript

    def _identify(self, transcript: MediaTranscript, voices: Sequence[EnrolledVoice]) -> None:
        if not voices:
            return
        from convolens.speech.identity import from_enrolled, identify_speakers

        if self._voice_embedder is None:
            from convolens.speech.neural_diarize import SegmentationDiarizer

            # The diarizer's CAM++ when it uses one: one copy of the model.
            diarizer = self._diarizer
            self._voice_embedder = (
                diarizer.embedder if isinstance(diarizer, SegmentationDiarizer) else _campplus()
            )
        transcript.identities = identify_speakers(
            transcript,
            [from_enrolled(v) for v in voices],
            self._voice_embedder,
            self.options.voice_threshold,
        )

    @staticmethod
    def _assign_roles(transcript: MediaTranscript, sidecar: Sidecar) -> None:
        for speaker in transcript.speakers:
            declared = sidecar.roles.get(speaker.name)
            if declared is not None:
                speaker.role = declared
            elif sidecar.agent and speaker.name == sidecar.agent:
                speaker.role = Role.agent
        if all(s.role == Role.unknown for s in transcript.speakers):
            said: dict[str, list[str]] = {s.participant_id: [] for s in transcript.speakers}
            for speaker_id, words in transcript.turns:
                said[speaker_id].extend(w.text for w in words)
            inferred = infer_roles({k: " ".join(v) for k, v in said.items()})
            for speaker in transcript.speakers:
                speaker.role = inferred[speaker.participant_id]


def _campplus() -> SpeakerEmbedder:
    from convolens.speech.campplus import CamPlusEmbedder

    return CamPlusEmbedder()


# The canonical conversation of a transcript lives in speech/conversation.py; imported
# here too, where callers have always found it (after MediaTranscript: that module uses it).
from convolens.speech.conversation import to_conversation  # noqa: E402
