"""Problem-statement clustering, unsupervised: convolens beside BERTopic on the same embeddings.

Intent datasets with their labels hidden (/work/shared/data/intents; only train/dev splits
are here, so figures are dev):
- Banking77 dev: the stratified 20 % of train.csv (seed 0) that eval/intents.py also uses
  as its dev set (2,001 texts, 77 intents);
- CLINC150 val, in-scope (3,000 texts, 150 intents).
The settings of `convolens.analytics.clustering` were chosen on other texts (a 3,000-text
sample of the rest of Banking77 train, a 3,000-text sample of CLINC150 train, HWU64 valid;
`--tuning` prints those too), so the dev figures were not tuned on.

Both methods get the same texts and the same all-MiniLM-L6-v2 embeddings, in the same run:
- convolens: `cluster_texts` with its defaults (no number of clusters given);
- BERTopic 0.17 defaults, `BERTopic(embedding_model=None).fit_transform(docs, embeddings)`
  (UMAP 5-d + HDBSCAN min_cluster_size 10), except that UMAP gets a fixed random_state so
  the run can be repeated: the default UMAP with random_state=0, 1, 2, reported as the mean
  (and spread) of the three.

NMI and ARI are against the intent labels over all texts, unclustered texts counting as one
more group (BERTopic's topic -1), so leaving texts out is not free; "ARI in" is ARI over
the clustered texts only. Seconds exclude embedding.

Stability (convolens): fit on a random 80 % (seed 0), then (a) assign the other 20 % to the
fitted clusters the way `assign_new` does and (b) refit on 100 % with the 80 % fit as the
previous run. "ids kept" counts clusters that kept their id; "same id" is the share of the
80 % whose cluster id is unchanged by the refit; "assign = refit" the share of the 20 %
put by assignment where the refit puts them.

    .venv/bin/python eval/clustering.py             (~2.5 min on 2 CPU cores, 6 BERTopic fits)
    .venv/bin/python eval/clustering.py --tuning    (+ the tuning sets, ~3 min more)
    .venv/bin/python eval/clustering.py --seeds 1   (one BERTopic seed)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

# The same cached embedder as the intents eval (this folder is on sys.path when run).
from intents import Embeddings
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import train_test_split

from convolens.analytics.clustering import (
    ClusterParams,
    PreviousCluster,
    assign,
    cluster_texts,
)

SAMPLE = 3000


@dataclass
class Dataset:
    name: str
    texts: list[str]
    labels: list[str]


@dataclass
class Scores:
    nmi: float
    ari: float
    ari_in: float
    unclustered: float
    clusters: int
    seconds: float


def banking77(root: Path) -> tuple[Dataset, Dataset]:
    """(dev, tuning): dev is eval/intents.py's 20 % split; tuning samples the other 80 %."""
    with (root / "banking77" / "train.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts, labels = [r["text"] for r in rows], [r["category"] for r in rows]
    train_t, dev_t, train_l, dev_l = train_test_split(
        texts, labels, test_size=0.2, random_state=0, stratify=labels
    )
    # train_test_split shuffles, so the first 3,000 of the rest are a random sample.
    return (
        Dataset("Banking77 dev", dev_t, dev_l),
        Dataset("Banking77 train (3k, tuning)", train_t[:SAMPLE], train_l[:SAMPLE]),
    )


def clinc150(root: Path) -> tuple[Dataset, Dataset]:
    data = json.loads((root / "clinc150" / "data_train_val.json").read_text(encoding="utf-8"))
    val = Dataset("CLINC150 val", [t for t, _ in data["val"]], [i for _, i in data["val"]])
    rows = np.sort(np.random.default_rng(0).choice(len(data["train"]), SAMPLE, replace=False))
    train = [data["train"][i] for i in rows]
    return val, Dataset("CLINC150 train (3k, tuning)", [t for t, _ in train], [i for _, i in train])


def hwu64(root: Path) -> Dataset:
    folder = root / "hwu64" / "valid"
    texts = (folder / "seq.in").read_text(encoding="utf-8").splitlines()
    labels = (folder / "label").read_text(encoding="utf-8").splitlines()
    return Dataset("HWU64 valid (tuning)", texts, labels)


def score(labels: list[str], predicted: list[int | str], seconds: float) -> Scores:
    found = np.asarray([str(p) for p in predicted])
    truth = np.asarray(labels)
    outside = found == "-1"
    inside = ~outside
    return Scores(
        nmi=float(normalized_mutual_info_score(truth, found)),
        ari=float(adjusted_rand_score(truth, found)),
        ari_in=float(adjusted_rand_score(truth[inside], found[inside])) if inside.any() else 0.0,
        unclustered=float(outside.mean()),
        clusters=len(set(found[inside])),
        seconds=seconds,
    )


def run_convolens(data: Dataset, vectors: np.ndarray) -> Scores:
    keys = [f"{i:06d}" for i in range(len(data.texts))]
    started = time.perf_counter()
    result = cluster_texts(keys, data.texts, vectors)
    seconds = time.perf_counter() - started
    return score(data.labels, [a or "-1" for a in result.assignments], seconds)


def run_bertopic(data: Dataset, vectors: np.ndarray, seed: int) -> Scores:
    from bertopic import BERTopic
    from umap import UMAP

    # BERTopic's own default UMAP, plus a seed so that the run can be repeated.
    umap = UMAP(
        n_neighbors=15,
        n_components=5,
        min_dist=0.0,
        metric="cosine",
        low_memory=False,
        random_state=seed,
    )
    started = time.perf_counter()
    topics, _ = BERTopic(embedding_model=None, umap_model=umap).fit_transform(data.texts, vectors)
    seconds = time.perf_counter() - started
    return score(data.labels, list(topics), seconds)


def stability(data: Dataset, vectors: np.ndarray) -> tuple[int, int, float, float]:
    """(clusters of the 80 % fit, ids kept by the refit, same-id share, assign = refit share)."""
    n = len(data.texts)
    keys = [f"{i:06d}" for i in range(n)]
    first = np.sort(np.random.default_rng(0).choice(n, int(n * 0.8), replace=False))
    rest = np.setdiff1d(np.arange(n), first)
    params = ClusterParams()
    fit = cluster_texts([keys[i] for i in first], [data.texts[i] for i in first], vectors[first])
    centroids = np.asarray([c.centroid for c in fit.clusters])
    best, _ = assign(vectors[rest], centroids, params.floor)
    assigned = [fit.clusters[b].cluster_id if b >= 0 else None for b in best]
    previous = [PreviousCluster(cluster_id=c.cluster_id, centroid=c.centroid) for c in fit.clusters]
    refit = cluster_texts(keys, data.texts, vectors, params, previous)
    same = np.mean([refit.assignments[i] == a for i, a in zip(first, fit.assignments, strict=True)])
    agree = np.mean([refit.assignments[i] == a for i, a in zip(rest, assigned, strict=True)])
    return len(fit.clusters), refit.kept_ids, float(same), float(agree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/intents"))
    parser.add_argument("--seeds", type=int, default=3, help="BERTopic runs (UMAP seeds 0..)")
    parser.add_argument("--tuning", action="store_true", help="also the sets tuned on")
    parser.add_argument("--no-bertopic", action="store_true")
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache folder")
    args = parser.parse_args()

    b77_dev, b77_tune = banking77(args.data)
    clinc_val, clinc_tune = clinc150(args.data)
    sets = [b77_dev, clinc_val]
    if args.tuning:
        sets += [b77_tune, clinc_tune, hwu64(args.data)]
    embed = Embeddings(args.cache)

    header = (
        f"{'dataset':30} {'method':22} {'texts':>6} {'intents':>7} {'NMI':>6} {'ARI':>6} "
        f"{'ARI in':>6} {'uncl%':>6} {'clusters':>8} {'sec':>6}"
    )
    print(header)
    print("-" * len(header))
    stable = []
    for data in sets:
        print(f"embedding {data.name} ...", file=sys.stderr)
        vectors = embed(data.texts)
        rows = [("convolens", run_convolens(data, vectors), "")]
        if not args.no_bertopic:
            runs = [run_bertopic(data, vectors, seed) for seed in range(args.seeds)]
            fields = Scores.__dataclass_fields__
            mean = Scores(*(float(np.mean([getattr(r, f) for r in runs])) for f in fields))
            spread = (
                f"  (NMI {min(r.nmi for r in runs):.3f}-{max(r.nmi for r in runs):.3f}, "
                f"ARI {min(r.ari for r in runs):.3f}-{max(r.ari for r in runs):.3f})"
                if len(runs) > 1
                else ""
            )
            rows.append((f"BERTopic (mean of {len(runs)})", mean, spread))
        for method, s, note in rows:
            print(
                f"{data.name:30} {method:22} {len(data.texts):6d} {len(set(data.labels)):7d} "
                f"{s.nmi:6.3f} {s.ari:6.3f} {s.ari_in:6.3f} {s.unclustered * 100:6.1f} "
                f"{s.clusters:8.0f} {s.seconds:6.1f}{note}"
            )
        stable.append((data.name, *stability(data, vectors)))

    print()
    print(
        f"{'stability (convolens)':30} {'clusters':>8} {'ids kept':>8} {'same id':>8} "
        f"{'assign = refit':>15}"
    )
    for name, clusters, kept, same, agree in stable:
        print(f"{name:30} {clusters:8d} {kept:8d} {same * 100:7.1f}% {agree * 100:14.1f}%")


if __name__ == "__main__":
    main()
