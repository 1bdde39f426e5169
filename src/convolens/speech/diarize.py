"""Speaker diarization by clustering window embeddings, and word-to-speaker assignment.

Pipeline (ClusteringDiarizer): voice activity regions -> overlapping windows inside each
region -> one speaker embedding per window -> spectral clustering of the windows -> every
10 ms frame of speech takes the label most windows covering it voted for -> runs of equal
frames become SpeakerTurns. Labels are renamed "S0", "S1", ... in order of first appearance.

Choices follow what was measured (/work/shared/research/diarization.md, docs/diarization.md):
spectral clustering beats agglomerative on resemblyzer embeddings, and the known number of
speakers should be used when the caller has it (agent + customer = 2); estimating the count
(eigengap heuristic here) is markedly less reliable.

The VAD and embedder are protocols: any VoiceActivityDetector / SpeakerEmbedder plugs in, and
any object with the Diarizer call signature can replace this class altogether.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from convolens.speech.types import (
    AsrWord,
    AudioArray,
    SpeakerEmbedder,
    SpeakerTurn,
    SpeechRegion,
    VoiceActivityDetector,
)

__all__ = ["ClusteringDiarizer", "assign_speakers"]

_RATE = 16000
_FRAME_S = 0.01  # resolution of the frame-level vote that turns window labels into turns

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ClusteringDiarizer:
    """VAD + window embeddings + spectral clustering (implements Diarizer).

    vad, embedder: backends; None builds the defaults (SileroVad, ResemblyzerEmbedder) on
        first use, so constructing a diarizer is free and the model loads once per instance.
    window_s, step_s: embedding window length and hop inside each speech region. Regions
        shorter than window_s get a single window.
    max_speakers: upper bound for the eigengap estimate when num_speakers is None.
    prune: fraction of each row of the similarity matrix kept (strongest neighbours) before
        spectral clustering; removes the many weak cross-speaker links of short windows.
    max_cluster_windows: above this many windows (~8 min of speech at the default step) an
        even subsample is clustered and the rest join the nearest cluster centre, which
        bounds the n x n affinity matrix (2000 windows: 32 MB) on hour-long recordings.
    """

    def __init__(
        self,
        vad: VoiceActivityDetector | None = None,
        embedder: SpeakerEmbedder | None = None,
        window_s: float = 1.5,
        step_s: float = 0.25,
        max_speakers: int = 6,
        prune: float = 0.3,
        max_cluster_windows: int = 2000,
        random_state: int = 0,
    ) -> None:
        if window_s <= 0 or step_s <= 0:
            raise ValueError("window_s and step_s must be positive")
        self._vad = vad
        self._embedder = embedder
        self.window_s = window_s
        self.step_s = step_s
        self.max_speakers = max_speakers
        self.prune = prune
        self.max_cluster_windows = max_cluster_windows
        self.random_state = random_state

    @property
    def vad(self) -> VoiceActivityDetector:
        if self._vad is None:
            from convolens.speech.vad import SileroVad

            self._vad = SileroVad()
        return self._vad

    @property
    def embedder(self) -> SpeakerEmbedder:
        if self._embedder is None:
            from convolens.speech.embed import ResemblyzerEmbedder

            self._embedder = ResemblyzerEmbedder()
        return self._embedder

    def __call__(
        self, audio: AudioArray, sample_rate: int = 16000, num_speakers: int | None = None
    ) -> list[SpeakerTurn]:
        if num_speakers is not None and num_speakers < 1:
            raise ValueError("num_speakers must be at least 1")
        samples = _to_16k(np.asarray(audio, dtype=np.float32).reshape(-1), sample_rate)
        regions = self.vad(samples, _RATE)
        if not regions:
            return []
        windows = _sliding_windows(regions, self.window_s, self.step_s)
        if num_speakers == 1 or len(windows) < 2:
            labels = np.zeros(len(windows), dtype=np.int64)
        else:
            embeddings = np.asarray(self.embedder(samples, windows, _RATE), dtype=np.float64)
            labels = self.cluster(embeddings, num_speakers)
        duration = samples.size / _RATE
        return _frames_to_turns(regions, windows, labels, duration)

    def cluster(self, embeddings: FloatArray, num_speakers: int | None) -> IntArray:
        """Cluster labels (0..k-1) for embedding rows in time order; k given or estimated."""
        n = len(embeddings)
        labels = np.zeros(n, dtype=np.int64)
        # Zero rows (windows of digital silence) have no direction; they would form a
        # cluster of their own, so they are left out and take a neighbour's label below.
        valid = np.flatnonzero(np.linalg.norm(embeddings, axis=1) > 0)
        if len(valid) < 2:
            return labels
        unit = embeddings[valid] / np.linalg.norm(embeddings[valid], axis=1, keepdims=True)
        # The affinity matrix is n x n: on long recordings cluster an even subsample (time
        # order kept) and give every window its nearest cluster centre.
        sample: IntArray | None = None
        chosen = unit
        if len(unit) > self.max_cluster_windows:
            picks = np.linspace(0, len(unit) - 1, self.max_cluster_windows).round()
            sample = picks.astype(np.int64)
            chosen = unit[sample]
        affinity = _pruned_affinity(chosen, self.prune)
        if num_speakers is None:
            k = _estimate_speakers(affinity, min(self.max_speakers, len(chosen) - 1))
        else:
            k = min(num_speakers, len(chosen))
        if k <= 1:
            return labels
        found = _spectral(affinity, k, self.random_state)
        if sample is not None:
            present = np.unique(found)
            centres = np.stack([chosen[found == c].mean(axis=0) for c in present])
            found = present[(unit @ centres.T).argmax(axis=1)].astype(np.int64)
        labels[valid] = found
        # Invalid rows: the label of the nearest valid window before (or else after) them.
        position = np.clip(np.searchsorted(valid, np.arange(n), side="right") - 1, 0, None)
        labels = labels[valid[position]]
        return labels


def _to_16k(samples: npt.NDArray[np.float32], sample_rate: int) -> npt.NDArray[np.float32]:
    if sample_rate == _RATE:
        return samples
    from math import gcd

    from scipy.signal import resample_poly  # scipy comes with scikit-learn

    g = gcd(_RATE, sample_rate)
    return resample_poly(samples, _RATE // g, sample_rate // g).astype(np.float32)


def _sliding_windows(
    regions: Sequence[SpeechRegion], window_s: float, step_s: float
) -> list[tuple[float, float]]:
    """Windows covering every region; the last one in a region is aligned to its end."""
    windows: list[tuple[float, float]] = []
    for region in regions:
        length = region.end - region.start
        if length <= window_s:
            windows.append((region.start, region.end))
            continue
        count = int(np.ceil((length - window_s) / step_s - 1e-9)) + 1
        for i in range(count):
            start = min(region.start + i * step_s, region.end - window_s)
            windows.append((start, start + window_s))
    return windows


def _pruned_affinity(embeddings: FloatArray, prune: float) -> FloatArray:
    """Cosine similarity, negatives cut to 0, each row's weak links pruned, symmetrised."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.maximum(norms, 1e-8)
    sim = np.clip(unit @ unit.T, 0.0, 1.0)
    n = len(sim)
    keep = min(n, max(2, int(np.ceil(prune * n))))
    if keep < n:
        # Row-wise pruning (Park et al., 2019): keep each window's strongest neighbours.
        thresholds = np.partition(sim, n - keep, axis=1)[:, n - keep]
        sim = np.where(sim >= thresholds[:, None], sim, 0.0)
    sim = (sim + sim.T) / 2
    np.fill_diagonal(sim, 1.0)
    return sim


def _estimate_speakers(affinity: FloatArray, max_speakers: int) -> int:
    """Eigengap heuristic on the normalised Laplacian: k where the spectrum jumps most."""
    if max_speakers <= 1:
        return 1
    degree = affinity.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    laplacian = np.eye(len(affinity)) - inv_sqrt[:, None] * affinity * inv_sqrt[None, :]
    eigenvalues = np.linalg.eigvalsh(laplacian)[: max_speakers + 1]
    return int(np.argmax(np.diff(eigenvalues))) + 1


def _spectral(affinity: FloatArray, k: int, random_state: int) -> IntArray:
    import warnings

    from sklearn.cluster import SpectralClustering

    model = SpectralClustering(
        n_clusters=k, affinity="precomputed", random_state=random_state, n_init=10
    )
    with warnings.catch_warnings():
        # A pruned graph of two very distinct voices may be disconnected; that is fine.
        warnings.simplefilter("ignore", UserWarning)
        labels = model.fit_predict(affinity)
    return np.asarray(labels, dtype=np.int64)


def _triangle(n: int) -> FloatArray:
    # A window's embedding speaks most for its centre: at the default window/step, votes
    # weighted towards it scored 1.5-2.7 DER points better than flat votes.
    return 1.0 - np.abs(np.linspace(-1.0, 1.0, n)) + 1e-3


def _frames_to_turns(
    regions: Sequence[SpeechRegion],
    windows: Sequence[tuple[float, float]],
    labels: IntArray,
    duration: float,
) -> list[SpeakerTurn]:
    """Majority vote per 10 ms frame over the windows covering it, then runs -> turns."""
    n_frames = int(np.ceil(duration / _FRAME_S)) + 1
    k = int(labels.max()) + 1 if len(labels) else 1
    votes = np.zeros((n_frames, k))
    for (start, end), label in zip(windows, labels, strict=True):
        lo, hi = round(start / _FRAME_S), max(round(end / _FRAME_S), round(start / _FRAME_S) + 1)
        votes[lo:hi, label] += _triangle(hi - lo)
    frame_labels = votes.argmax(axis=1)

    raw: list[tuple[float, float, int]] = []
    for region in regions:
        lo, hi = round(region.start / _FRAME_S), round(region.end / _FRAME_S)
        if hi <= lo:
            continue
        run = frame_labels[lo:hi]
        cuts = np.flatnonzero(np.diff(run)) + 1
        bounds = [0, *cuts.tolist(), len(run)]
        for a, b in itertools.pairwise(bounds):
            # Turns keep the region's exact edges; inner changes fall on frame boundaries.
            start = region.start if a == 0 else (lo + a) * _FRAME_S
            end = region.end if b == len(run) else (lo + b) * _FRAME_S
            raw.append((start, end, int(run[a])))

    names: dict[int, str] = {}
    turns: list[SpeakerTurn] = []
    for start, end, label in raw:
        name = names.setdefault(label, f"S{len(names)}")
        turns.append(SpeakerTurn(start, end, name))
    return turns


def assign_speakers(
    words: Sequence[AsrWord], turns: Sequence[SpeakerTurn], default: str = "S0"
) -> list[str]:
    """The speaker of each word: the one whose turns overlap the word's interval most.

    A word that overlaps no turn (it fell in a gap the VAD dropped) takes the speaker of the
    nearest turn; on a tie, the turn before it (the speaker who was talking keeps the word).
    With no turns at all every word gets `default`.

    Turns are sorted by start once; each word then finds its candidates by bisection and
    walks back only while a turn could still reach it (prefix maximum of the ends), so for
    a diarizer's non-overlapping turns the cost is O((W + T) log T).
    """
    if not turns:
        return [default] * len(words)
    ordered = sorted(turns, key=lambda t: (t.start, t.end))
    starts = [t.start for t in ordered]
    # reach[i]: the index among ordered[: i + 1] of the turn that ends latest.
    reach: list[int] = []
    for i, turn in enumerate(ordered):
        reach.append(i if not reach or turn.end > ordered[reach[-1]].end else reach[-1])

    speakers: list[str] = []
    for word in words:
        end = max(word.end, word.start)
        first_after = bisect.bisect_left(starts, end)  # turns from here start at/after the word
        overlap: dict[str, float] = {}
        j = first_after - 1
        while j >= 0 and ordered[reach[j]].end > word.start:
            turn = ordered[j]
            shared = min(turn.end, end) - max(turn.start, word.start)
            if shared > 0:
                overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
            j -= 1
        if overlap:
            # max() keeps the first of equal values: the speaker met first walking back.
            speakers.append(max(overlap, key=lambda name: overlap[name]))
            continue
        before = ordered[reach[first_after - 1]] if first_after > 0 else None
        after = ordered[first_after] if first_after < len(ordered) else None
        gap_before = word.start - before.end if before is not None else float("inf")
        gap_after = after.start - end if after is not None else float("inf")
        nearest = before if gap_before <= gap_after else after
        assert nearest is not None  # turns is not empty
        speakers.append(nearest.speaker)
    return speakers
