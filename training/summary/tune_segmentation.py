"""Tune the meeting-topic segmentation (TextTiling over MiniLM utterance embeddings) on
QMSum train topic spans: grid search of window, depth, minimum topic length, smoothing
and the topic-cue bonus by mean Pk (val is only for `eval/summary.py`).

The embeddings of the content turns are computed once and cached (`--cache`), so the grid
runs in seconds; the defaults in `SummaryConfig` come from this script's best row.

    .venv/bin/python training/summary/tune_segmentation.py [--meetings 24]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
from pathlib import Path

import numpy as np

from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.summary.segmentation import (
    boundaries_to_labels,
    pk,
    texttiling,
    topic_cues,
    window_diff,
)
from convolens.enrich.summary.text import is_filler

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("summary_eval", ROOT / "eval" / "summary.py")
assert _spec and _spec.loader
summary_eval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summary_eval)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--qmsum", type=Path, default=summary_eval.SHARED / "meetings" / "qmsum")
    parser.add_argument("--meetings", type=int, default=24)
    parser.add_argument("--top", type=int, default=10, help="rows to print")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qmsum_train_embeddings.npz"))
    args = parser.parse_args()
    files = sorted((args.qmsum / "train").glob("*.json"))
    # Every k-th file: AMI, ICSI and committee meetings alike.
    step = max(1, len(files) // args.meetings)
    files = files[::step][: args.meetings]
    cached = dict(np.load(args.cache)) if args.cache.exists() else {}
    embedder = SentenceEmbedder()
    meetings = []
    for path in files:
        doc, data = summary_eval.qmsum_doc(path)
        utterances = doc.conversation.utterances
        content = [
            i
            for i, u in enumerate(utterances)
            if len(u.text.split()) >= 4 and not is_filler(u.text)
        ]
        if path.stem not in cached:
            cached[path.stem] = embedder.embed([utterances[i].text for i in content])
        reference = summary_eval.reference_topics(data, len(utterances))
        cues = topic_cues([utterances[i].text for i in content])
        meetings.append((content, cached[path.stem], reference, len(utterances), cues))
    np.savez(args.cache, **cached)
    rows = []
    for window, depth, min_turns, smooth, bonus in itertools.product(
        (20, 40, 60), (1.0, 1.5, 2.0, 2.5, 3.0), (30, 60, 90), (1, 9), (0.0, 1.0, 2.0)
    ):
        pks, wds = [], []
        for content, vectors, reference, n, cues in meetings:
            starts = texttiling(
                vectors,
                window=window,
                depth=depth,
                min_turns=min_turns,
                most=12,
                smooth=smooth,
                cues=cues,
                cue_bonus=bonus,
            )
            hypothesis = boundaries_to_labels([content[s] for s in starts], n)
            pks.append(pk(reference, hypothesis))
            wds.append(window_diff(reference, hypothesis))
        row = (float(np.mean(pks)), float(np.mean(wds)), window, depth, min_turns, smooth, bonus)
        rows.append(row)
    rows.sort()
    none = np.mean([pk(r, [0] * n) for _, _, r, n, _ in meetings])
    print(f"QMSum train, {len(meetings)} meetings; no boundary: Pk {none:.3f}")
    print("  Pk     WD     window depth min_turns smooth cue_bonus")
    for row in rows[: args.top]:
        print("  {:.3f}  {:.3f}  {:>6} {:>5} {:>9} {:>6} {:>9}".format(*row))


if __name__ == "__main__":
    main()
