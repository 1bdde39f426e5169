"""Scorecard calibration figures: automatic outcomes against hand QA scores.

The sample corpus (examples/) is ingested into a fresh warehouse (or `--db` is used as it
is), labelled by the components the scorecards read (PII, conversation type, sentiment,
trackers, resolution) and scored with the shipped scorecards; then the hand scores of 20
conversations (tests/scorecards/data/hand_scores.yaml: 184 criterion judgements written
by reading the transcripts; not blind: an early run's automatic outcomes had been seen)
are recorded as QA reviews and the agreement per criterion is printed: percent agreement,
Cohen's kappa, which way they disagree, and the flagged criteria. The scorecards were
written against the same corpus, so the figures are development figures (optimistic).

    .venv/bin/python eval/scorecards.py [--db corpus.duckdb] [--hand hand_scores.yaml]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ["pii", "conversation_type", "sentiment", "trackers", "resolution", "scorecard"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="An analysed warehouse (default: build one).")
    parser.add_argument("--examples", type=Path, default=ROOT / "examples")
    parser.add_argument(
        "--hand", type=Path, default=ROOT / "tests" / "scorecards" / "data" / "hand_scores.yaml"
    )
    args = parser.parse_args()

    from convolens.enrich.runner import enrich
    from convolens.ingest.base import IngestOptions
    from convolens.ingest.pipeline import ingest_paths
    from convolens.scorecards.calibration import calibration
    from convolens.scorecards.store import import_qa_file
    from convolens.speech.options import SpeechOptions
    from convolens.store.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as folder:
        db = args.db or Path(folder) / "corpus.duckdb"
        with Warehouse(db) as warehouse:
            if args.db is None:
                started = time.perf_counter()
                speech = SpeechOptions(model="tiny.en")
                ingest_paths(warehouse, [args.examples], options=IngestOptions(speech=speech))
                report = enrich(warehouse, COMPONENTS)
                print(
                    f"built the sample corpus: {report.conversations} conversations labelled "
                    f"in {time.perf_counter() - started:.0f} s"
                )
            else:
                enrich(warehouse, ["scorecard"], config={"scorecard": {"warehouse": warehouse}})
            warehouse.con.execute("DELETE FROM qa_scores WHERE reviewer = 'qa-handscore'")
            recorded = import_qa_file(warehouse, args.hand)
            result = calibration(warehouse)
    print(
        f"{recorded} hand judgements, {result.reviews} compared on {result.conversations} "
        f"conversations: agreement {result.overall_agreement:.1%}, "
        f"Cohen's kappa {result.overall_kappa}"
    )
    print(f"{'scorecard':9} {'criterion':25} {'n':>3} {'agree':>6} {'kappa':>6}  auto->human")
    for c in result.criteria:
        kappa = "-" if c.kappa is None else f"{c.kappa:.2f}"
        agree = "-" if c.agreement is None else f"{c.agreement:.0%}"
        confusion = ", ".join(f"{k} {v}" for k, v in c.confusion.items())
        flag = "  FLAGGED" if c.flagged else ""
        figures = f"{c.reviews:3} {agree:>6} {kappa:>6}"
        print(f"{c.scorecard:9} {c.criterion:25} {figures}  {confusion}{flag}")


if __name__ == "__main__":
    main()
