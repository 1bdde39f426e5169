"""Semantic clustering of short texts (customer problem statements), without a cluster count.

"confusing setup" and "don't know what to do first" should land together although they
share no word, so texts are clustered on their all-MiniLM-L6-v2 embeddings. The number of
clusters is never given; it follows from how tight a cluster must be:

1. A *view* of the vectors for building the tree: the corpus mean is subtracted (the
   direction every support text shares carries no meaning of its own) and each vector is
   replaced by the similarity-weighted mean of its 5 nearest neighbours (itself included).
   That smoothing is a local, density-adaptive denoising (what UMAP buys BERTopic) and makes
   one threshold work on coarse and fine-grained corpora alike.
2. A Ward tree over the view, cut top-down: a node is a cluster as soon as its members'
   average pairwise cosine is at least `cohesion` (0.7), otherwise it is split into its two
   children. Average pairwise cosine does not grow with the cluster's size, so the same
   threshold means the same thing at 40 texts and at 5,000 (Ward's own merge distance does
   not: it grows with the sizes of the merged clusters).
3. Back in the raw embedding space, a few spherical k-means steps: clusters smaller than
   `min_size` (2 to 5 by corpus size) are dissolved and every text moves to its nearest
   centroid when that cosine is at least `floor` (0.3), else it is left unclustered. A text
   is compared with its own cluster's centroid leave-one-out, i.e. as if it were new. After
   this the fit and the incremental rule agree: `assign` puts a later text in the cluster
   with the nearest centroid if it is at least `floor` similar.

No merging of near-duplicate clusters afterwards: on the tuning sets, merging clusters whose
centroids have cosine >= 0.8 lowered Banking77's ARI (0.51 -> 0.41) and >= 0.9 changed
nothing; the cohesion cut already keeps near-duplicates together.

Settings were chosen on tuning sets (Banking77 train, CLINC150 train, HWU64 valid) and
reported on others (Banking77's dev fifth, CLINC150 val): see eval/clustering.py.

Pairwise structures are quadratic, so at most `max_items` texts (a sample fixed by a hash
of their keys, so re-runs draw the same one) build the clusters; the rest are assigned.

Labels: the top n-grams of each cluster by c-TF-IDF (BERTopic's class-based TF-IDF: term
frequency in the cluster times log(1 + average cluster length / term frequency overall))
plus the most central text. Ids: a cluster that matches a previous run's cluster (one-to-one
by centroid cosine, Hungarian assignment, cosine >= `match_similarity`) keeps its id; a new
one gets a hash of the keys of its most central members, so the same data gives the same
ids run after run.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

__all__ = [
    "Cluster",
    "ClusterParams",
    "Clustering",
    "PreviousCluster",
    "assign",
    "cluster_texts",
    "label_clusters",
    "stop_words",
]

UNCLUSTERED = -1
# PII redaction leaves tags such as "<PERSON>" in the text: they are not what a cluster is about.
_TAG = re.compile(r"<[A-Z_]+>")
# Chat openers, acknowledgements and contractions say nothing about the problem;
# scikit-learn's English list has none of them in the apostrophe form kept below.
_FILLERS = """
hi hello hey dear yes yeah yep ok okay thanks thank please sure just really actually
honestly basically um uh mm hmm oh ah wow lol pls thx i'm i've i'll i'd it's that's
there's what's let's we're we've we'll we'd you're you've you'll they're he's she's
don't doesn't didn't can't cannot won't isn't aren't wasn't weren't haven't hasn't
hadn't couldn't wouldn't shouldn't good great fine perfect cool morning afternoon
evening
"""
_EXTRA_STOP_WORDS = frozenset(_FILLERS.split())


def stop_words() -> frozenset[str]:
    """Words that never name a problem: scikit-learn's English list plus chat fillers."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP_WORDS


# Words of 2+ letters, apostrophes inside kept ("hasn't gone", not "hasn gone").
_WORD = r"(?u)\b[a-zA-Z][a-zA-Z']*[a-zA-Z]\b"


class ClusterParams(BaseModel):
    """Clustering settings; the defaults are the ones eval/clustering.py reports."""

    cohesion: float = Field(
        default=0.7, gt=0, le=1, description="min average pairwise cosine (view)"
    )
    neighbours: int = Field(
        default=5, ge=1, description="neighbours averaged into each view vector"
    )
    min_size: int | None = Field(
        default=None, ge=1, description="smallest cluster kept; default 2 to 5 by corpus size"
    )
    floor: float = Field(
        default=0.3, ge=-1, le=1, description="min cosine to a centroid to join it"
    )
    refine_iterations: int = Field(default=5, ge=0)
    max_items: int = Field(
        default=5000, ge=2, description="texts that build clusters; rest assigned"
    )
    match_similarity: float = Field(
        default=0.8, ge=-1, le=1, description="keep an old id above this"
    )
    phrases: int = Field(default=8, ge=1, description="label phrases kept per cluster")
    core_size: int = Field(default=5, ge=1, description="central members hashed into a new id")


class PreviousCluster(BaseModel):
    """A cluster of an earlier run, for keeping ids stable."""

    cluster_id: str
    centroid: list[float]


class Cluster(BaseModel):
    cluster_id: str
    label: str
    phrases: list[str]
    representative: str
    size: int
    centroid: list[float]


class Clustering(BaseModel):
    """Clusters (largest first) and, per input text, its cluster id (None: unclustered)."""

    clusters: list[Cluster]
    assignments: list[str | None]
    similarities: list[float]
    kept_ids: int = 0

    @property
    def unclustered_share(self) -> float:
        if not self.assignments:
            return 0.0
        return sum(a is None for a in self.assignments) / len(self.assignments)


def cluster_texts(
    keys: Sequence[str],
    texts: Sequence[str],
    vectors: np.ndarray,
    params: ClusterParams | None = None,
    previous: Sequence[PreviousCluster] = (),
) -> Clustering:
    """Cluster `texts` (embedded as `vectors`, one row each) identified by unique `keys`."""
    params = params or ClusterParams()
    if not len(keys) == len(texts) == len(vectors):
        raise ValueError("keys, texts and vectors must have the same length")
    if len(set(keys)) != len(keys):
        raise ValueError("keys must be unique")
    n = len(keys)
    if n == 0:
        return Clustering(clusters=[], assignments=[], similarities=[])
    raw = _unit(np.asarray(vectors, dtype=np.float64))
    # Input order must not change the result: the tree is built over keys in sorted order
    # and the sample (when the corpus is larger than max_items) is fixed by a key hash.
    order = sorted(range(n), key=lambda i: keys[i])
    if n > params.max_items:
        order = sorted(
            sorted(order, key=lambda i: hashlib.sha256(keys[i].encode()).digest())[
                : params.max_items
            ],
            key=lambda i: keys[i],
        )
    min_size = params.min_size or max(2, min(5, len(order) // 100))
    # The tree labels the (sampled) texts; texts outside the sample start unclustered and
    # are placed by the same nearest-centroid steps that settle the sampled ones.
    labels = np.full(n, UNCLUSTERED)
    labels[order] = _tree_clusters(_view(raw[order], params.neighbours), params.cohesion)
    best = _settle(raw, labels, params.floor, min_size, params.refine_iterations)
    groups = [np.flatnonzero(best == c) for c in range(int(best.max()) + 1)]
    if not groups:
        return Clustering(clusters=[], assignments=[None] * n, similarities=[0.0] * n)
    # Similarity: a member's cosine to its centroid, an unclustered text's to the nearest.
    centroids = _unit(np.vstack([raw[g].mean(axis=0) for g in groups]))
    cosines = raw @ centroids.T
    similarity = np.where(
        best >= 0, cosines[np.arange(n), np.maximum(best, 0)], cosines.max(axis=1)
    )
    ids, kept = _cluster_ids(groups, raw, centroids, keys, previous, params)
    phrases = label_clusters([[texts[int(i)] for i in g] for g in groups], params.phrases)
    clusters = []
    for c, members in enumerate(groups):
        central = int(members[np.argmax(raw[members] @ centroids[c])])
        top = phrases[c]
        clusters.append(
            Cluster(
                cluster_id=ids[c],
                label=", ".join(top[:3]) if top else _clean(texts[central])[:60],
                phrases=top,
                representative=texts[central],
                size=len(members),
                centroid=[round(float(x), 6) for x in centroids[c]],
            )
        )
    assignments = [ids[int(b)] if b != UNCLUSTERED else None for b in best]
    clusters.sort(key=lambda c: (-c.size, c.cluster_id))
    return Clustering(
        clusters=clusters,
        assignments=assignments,
        similarities=[round(float(s), 6) for s in similarity],
        kept_ids=kept,
    )


def assign(
    vectors: np.ndarray, centroids: np.ndarray, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid per row (-1 where its cosine is below `floor`) and that cosine."""
    rows = _unit(np.asarray(vectors, dtype=np.float64))
    if len(rows) == 0 or len(centroids) == 0:
        return np.full(len(rows), UNCLUSTERED), np.zeros(len(rows))
    similarity = rows @ _unit(np.asarray(centroids, dtype=np.float64)).T
    best = similarity.argmax(axis=1)
    score = similarity[np.arange(len(rows)), best]
    return np.where(score >= floor, best, UNCLUSTERED), score


def label_clusters(groups: Sequence[Sequence[str]], top: int = 8) -> list[list[str]]:
    """Top 1-2 word phrases per group of texts by c-TF-IDF (stop words and PII tags left out).

    A phrase whose words all appear in better-ranked phrases of the same cluster is skipped,
    so "refund" does not follow "refund request" (see `_top_phrases`).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    documents = [" ".join(_clean(t) for t in texts) for texts in groups]
    if not any(d.strip() for d in documents):
        return [[] for _ in groups]
    vectorizer = CountVectorizer(analyzer=_terms)
    try:
        counts = vectorizer.fit_transform(documents).astype(np.float64)
    except ValueError:  # stop words only
        return [[] for _ in groups]
    terms = vectorizer.get_feature_names_out()
    tf = counts.toarray()
    words_per_cluster = tf.sum(axis=1, keepdims=True)
    tf = tf / np.maximum(words_per_cluster, 1)
    idf = np.log1p(words_per_cluster.mean() / np.maximum(counts.sum(axis=0).A1, 1))
    scores = tf * idf
    return [
        _top_phrases(terms, scores[c], [set(_terms(_clean(t))) for t in texts], top)
        for c, texts in enumerate(groups)
    ]


# -- internals ----------------------------------------------------------------------------


def _terms(text: str) -> list[str]:
    """Words and two-word phrases of `text`, without stop words.

    A phrase is two adjacent words of the text, neither a stop word: "charged twice", but
    not "fee transfer" out of "fee for a transfer" (scikit-learn would join the words
    left around removed stop words).
    """
    stop = stop_words()
    unigrams: list[str] = []
    bigrams: list[str] = []
    # Phrases stay inside a clause: "arrives. Tried" is no phrase.
    for clause in re.split(r"[.!?,;:()\[\]\"\n]+", text.lower()):
        words = [w if w not in stop else "" for w in re.findall(_WORD, clause)]
        unigrams.extend(w for w in words if w)
        bigrams.extend(f"{a} {b}" for a, b in itertools.pairwise(words) if a and b)
    return unigrams + bigrams


def _top_phrases(
    terms: np.ndarray, scores: np.ndarray, per_text: list[set[str]], top: int
) -> list[str]:
    """The best-scoring phrases of one cluster, `per_text` the terms of each of its texts.

    A phrase used by a single text of a cluster is one customer's wording, not the
    cluster's: phrases used by two or more texts come first, the others only fill in.
    """
    ranked = [str(terms[i]) for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
    support = {term: sum(term in words for words in per_text) for term in ranked[: 20 * top]}
    shared = [t for t in ranked if support.get(t, 0) >= 2]
    chosen: list[str] = []
    seen: set[str] = set()
    for term in shared + [t for t in ranked if support.get(t, 0) < 2]:
        if len(chosen) == top:
            break
        words = set(term.split())
        if words <= seen:
            continue
        # "exchange rate" replaces an earlier "rate" when at least half the texts saying
        # "rate" say "exchange rate": the longer phrase is then the cluster's own wording.
        shorter = [p for p in chosen if p in words] if " " in term else []
        if shorter and support.get(term, 0) * 2 >= support.get(shorter[0], 0):
            chosen[chosen.index(shorter[0])] = term
        else:
            chosen.append(term)
        seen |= words
    return chosen


def _view(vectors: np.ndarray, neighbours: int) -> np.ndarray:
    """Centred, neighbour-smoothed unit vectors (step 1 of the module docstring)."""
    view = vectors - vectors.mean(axis=0) if len(vectors) > 2 else vectors.copy()
    view = _unit(view)
    k = min(neighbours, len(view))
    if k <= 1:
        return view
    out = np.empty_like(view)
    # In blocks: the full similarity matrix of 5,000 texts would be 200 MB in float64.
    for start in range(0, len(view), 1024):
        block = view[start : start + 1024] @ view.T
        nearest = np.argpartition(-block, k - 1, axis=1)[:, :k]
        weights = np.maximum(np.take_along_axis(block, nearest, axis=1), 0.0)
        out[start : start + 1024] = np.einsum("ij,ijk->ik", weights, view[nearest])
    return _unit(out)


def _tree_clusters(view: np.ndarray, cohesion: float) -> np.ndarray:
    """Ward tree over `view`, cut where a node's average pairwise cosine >= `cohesion`."""
    n = len(view)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    from scipy.cluster.hierarchy import linkage

    tree = linkage(view, method="ward")
    children = tree[:, :2].astype(np.int64)
    # Per node: the sum of its unit vectors. ||sum||^2 = n + sum over ordered pairs of
    # cosines, so the average pairwise cosine is (||sum||^2 - n) / (n (n - 1)).
    sums = np.zeros((2 * n - 1, view.shape[1]))
    sums[:n] = view
    sizes = np.ones(2 * n - 1)
    for i, (a, b) in enumerate(children):
        sums[n + i] = sums[a] + sums[b]
        sizes[n + i] = sizes[a] + sizes[b]
    pairs = np.maximum(sizes * (sizes - 1), 1)
    average = np.where(sizes > 1, ((sums**2).sum(axis=1) - sizes) / pairs, 1.0)

    labels = np.full(n, UNCLUSTERED, dtype=np.int64)
    stack, cluster = [2 * n - 2], 0
    while stack:
        node = stack.pop()
        if node >= n and average[node] < cohesion:
            stack.extend(children[node - n])
            continue
        leaves = [node]
        while leaves:
            leaf = leaves.pop()
            if leaf < n:
                labels[leaf] = cluster
            else:
                leaves.extend(children[leaf - n])
        cluster += 1
    return labels


def _settle(
    vectors: np.ndarray, labels: np.ndarray, floor: float, min_size: int, iterations: int
) -> np.ndarray:
    """Labels after a few nearest-centroid reassignments (step 3 of the module docstring).

    A text is compared with its own cluster's centroid *without itself* (leave-one-out)
    and with the others' as they are: that is the rule a new text meets in `assign`, whose
    centroids were built without it. Counting itself in, an outlier that paired up with one
    boundary text would pass the floor on the strength of its own half of the centroid.
    Clusters left with fewer than `min_size` members are dissolved and their texts placed
    again; a text below `floor` everywhere is unclustered (-1).
    """
    labels = labels.copy()
    rows = np.arange(len(vectors))
    for _ in range(iterations + 1):
        ids, counts = np.unique(labels[labels >= 0], return_counts=True)
        ids = ids[counts >= min_size]
        if len(ids) == 0:
            return np.full(len(vectors), UNCLUSTERED)
        # Renumber the surviving clusters 0..k-1 (dissolved ones become -1).
        index = np.full(int(labels.max()) + 2, UNCLUSTERED)
        index[ids] = np.arange(len(ids))
        current = index[labels]
        inside = np.flatnonzero(current >= 0)
        sums = np.zeros((len(ids), vectors.shape[1]))
        np.add.at(sums, current[inside], vectors[inside])
        cosines = vectors @ _unit(sums).T
        rest = sums[current[inside]] - vectors[inside]
        norms = np.linalg.norm(rest, axis=1)
        own = (rest * vectors[inside]).sum(axis=1) / np.maximum(norms, 1e-9)
        cosines[inside, current[inside]] = np.where(norms > 1e-9, own, -1.0)
        best = cosines.argmax(axis=1)
        updated = np.where(cosines[rows, best] >= floor, best, UNCLUSTERED)
        if np.array_equal(updated, current):
            return updated
        labels = updated
    # Not settled within the iterations: the last assignment may have left small clusters.
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    ids = ids[counts >= min_size]
    index = np.full(int(labels.max()) + 2, UNCLUSTERED)
    index[ids] = np.arange(len(ids))
    result: np.ndarray = index[labels]
    return result


def _cluster_ids(
    groups: list[np.ndarray],
    vectors: np.ndarray,
    centroids: np.ndarray,
    keys: Sequence[str],
    previous: Sequence[PreviousCluster],
    params: ClusterParams,
) -> tuple[list[str], int]:
    """Old ids for clusters matching a previous run's (one-to-one), hashes for new ones."""
    ids: list[str | None] = [None] * len(groups)
    kept = 0
    if previous:
        from scipy.optimize import linear_sum_assignment

        old = _unit(np.asarray([p.centroid for p in previous], dtype=np.float64))
        similarity = centroids @ old.T
        rows, columns = linear_sum_assignment(-similarity)
        for r, c in zip(rows, columns, strict=True):
            if similarity[r, c] >= params.match_similarity:
                ids[r] = previous[c].cluster_id
                kept += 1
    used = {i for i in ids if i is not None} | {p.cluster_id for p in previous}
    for c, members in enumerate(groups):
        if ids[c] is not None:
            continue
        central = members[np.argsort(-(vectors[members] @ centroids[c]), kind="stable")]
        core = sorted(keys[i] for i in central[: params.core_size])
        digest = hashlib.sha256("\x1f".join(core).encode("utf-8")).hexdigest()
        candidate, length = f"k-{digest[:12]}", 12
        while candidate in used:  # an unmatched old cluster with the same core: keep apart
            length += 4
            candidate = f"k-{digest[:length]}"
        ids[c] = candidate
        used.add(candidate)
    return [str(i) for i in ids], kept


def _clean(text: str) -> str:
    return " ".join(_TAG.sub(" ", text).split())


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    result: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return result
