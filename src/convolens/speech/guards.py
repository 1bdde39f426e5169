"""Guards against words Whisper writes that nobody said.

Two failure modes were seen on real audio with word timestamps on:
- a repeated span: the last 16 words of a 40-second file written a second time, squeezed
  into 0.6 s (27 words a second; fast speech is ~4-5). Whisper's decoder loops on its own
  output when the audio runs out;
- an invented tail: live finals ending "... on the left. Thank" or "... extremely
  distant. And I'm" -- a fragment after the last full sentence, where the voice activity
  detector hears nothing.

Both are checked against voice activity (the tight VAD the pipeline already runs to refine
word timings): a repeat is dropped only when it is implausibly fast or mostly outside
speech, so a person who really says "no, no, no" keeps their words; a trailing fragment is
dropped only when it is (nearly) unvoiced or a low-confidence fragment after a finished
sentence.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from convolens.speech.types import AsrWord, SpeechRegion

__all__ = ["drop_repeated_spans", "drop_unvoiced_tail", "guard_words", "voiced_fraction"]

MAX_WORDS_PER_S = 8.0  # well above fast conversational speech (~4-5 words a second)
MIN_VOICED = 0.3  # share of a word's span inside speech below which it counts as unvoiced
_SENTENCE_END = (".", "?", "!")
# Trailing words after a finished sentence with every probability under this are dropped:
# on stereo_diarization.wav Whisper base appended "Most." (p 0.02) and "that. And..."
# (0.10, 0.29) to finals whose real words all had p >= 0.9.
MAX_TAIL_P = 0.35
TIMING_SLACK_S = 0.25  # how far Whisper's word start may sit outside the VAD's speech


def _norm(word: AsrWord) -> str:
    return "".join(c for c in word.text.lower() if c.isalnum())


def voiced_fraction(start: float, end: float, regions: Sequence[SpeechRegion]) -> float:
    """Share of [start, end] covered by speech regions (sorted, non-overlapping)."""
    if end <= start:
        end = start + 0.02  # a zero-length word: look at the 20 ms at its start
    starts = [r.start for r in regions]
    covered = 0.0
    for region in regions[max(0, bisect_right(starts, start) - 1) :]:
        if region.start >= end:
            break
        covered += max(0.0, min(end, region.end) - max(start, region.start))
    return covered / (end - start)


def _implausible(run: Sequence[AsrWord], regions: Sequence[SpeechRegion] | None) -> bool:
    span = max(run[-1].end - run[0].start, 1e-3)
    if len(run) / span > MAX_WORDS_PER_S:
        return True
    if regions is None:
        return False
    return voiced_fraction(run[0].start, run[-1].end, regions) < MIN_VOICED


def drop_repeated_spans(
    words: list[AsrWord],
    regions: Sequence[SpeechRegion] | None = None,
    *,
    min_run: int = 3,
    lookback: int = 80,
) -> list[AsrWord]:
    """Without runs of >= `min_run` words that repeat a run among the previous `lookback`
    words and are implausibly fast or mostly unvoiced (longest repeat first)."""
    keys = [_norm(w) for w in words]
    kept: list[AsrWord] = []
    kept_keys: list[str] = []
    i = 0
    while i < len(words):
        # The longest earlier run that the words from here repeat: a loop repeats phrases.
        best = 0
        if keys[i]:
            first = max(0, len(kept_keys) - lookback)
            for j in range(first, len(kept_keys)):
                length = 0
                while (
                    j + length < len(kept_keys)
                    and i + length < len(words)
                    and keys[i + length]
                    and kept_keys[j + length] == keys[i + length]
                ):
                    length += 1
                best = max(best, length)
        if best >= min_run and _implausible(words[i : i + best], regions):
            i += best
            continue
        kept.append(words[i])
        kept_keys.append(keys[i])
        i += 1
    return kept


def _unvoiced(word: AsrWord, regions: Sequence[SpeechRegion], min_probability: float) -> bool:
    """A trailing word the VAD does not hear. Whisper's word times drift a little past
    a tight VAD's edge (on a phone-line LibriSpeech clip "sauce" starts 90 ms after the
    VAD's end), so a word Whisper is sure of that starts within `TIMING_SLACK_S` of the
    speech is kept; an invented word after the speech has ended is not."""
    if voiced_fraction(word.start, word.end, regions) >= MIN_VOICED:
        return False
    if (word.probability or 0.0) < min_probability:
        return True
    return not any(
        r.start - TIMING_SLACK_S <= word.start <= r.end + TIMING_SLACK_S for r in regions
    )


def drop_unvoiced_tail(
    words: list[AsrWord],
    regions: Sequence[SpeechRegion],
    *,
    max_fragment: int = 3,
    min_probability: float = 0.5,
) -> list[AsrWord]:
    """Without trailing words the VAD does not hear, without up to `max_fragment` words
    after a finished sentence that Whisper gave low probabilities, and without a short
    unfinished fragment after the last sentence when it is unvoiced or unsure."""
    out = list(words)
    while out and _unvoiced(out[-1], regions, min_probability):
        out.pop()
    # Words Whisper barely believed after a finished sentence ("distant. that. And...").
    unsure = 0
    while unsure < len(out) and (out[-1 - unsure].probability or 0.0) < MAX_TAIL_P:
        unsure += 1
    if 0 < unsure <= max_fragment and out[-1 - unsure].text.endswith(_SENTENCE_END):
        out = out[:-unsure]
    # A fragment: the words after the last sentence end, with no sentence end of their own.
    last_end = max((i for i, w in enumerate(out) if w.text.endswith(_SENTENCE_END)), default=-1)
    fragment = out[last_end + 1 :]
    if last_end >= 0 and 0 < len(fragment) <= max_fragment:
        mean_p = sum(w.probability or 0.0 for w in fragment) / len(fragment)
        voiced = voiced_fraction(fragment[0].start, fragment[-1].end, regions)
        if mean_p < min_probability or voiced < 0.5:
            out = out[: last_end + 1]
    return out


def guard_words(words: list[AsrWord], regions: Sequence[SpeechRegion]) -> list[AsrWord]:
    """Both guards, repeats first (a looped tail is often also unvoiced)."""
    if not regions:
        return words
    return drop_unvoiced_tail(drop_repeated_spans(words, regions), regions)
