"""What redaction at intake costs: conversations/s ingesting the sample corpus with and without.

    python benchmarks/intake_redaction_bench.py [--rounds 3]

The text sources of examples/ (chats, emails, tickets, call and meeting transcripts; the
recording is left out: transcription would swamp the figure) are ingested into a fresh
warehouse per run, runs alternating with redaction off (`redact=False`, what ingest did
before #12) and on (the default policy), so both see the same machine load. The NER is
loaded before the first timed run, as a server or a long ingest has it loaded.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from convolens.ingest.pipeline import ingest_paths
from convolens.ingest.redact_intake import intake_redactor
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SOURCES = ("chats", "csv", "email", "tickets", "calls")


def one_run(redact: bool) -> tuple[int, int, float]:
    with tempfile.TemporaryDirectory() as folder, Warehouse(Path(folder) / "w.duckdb") as wh:
        started = time.perf_counter()
        report = ingest_paths(wh, [EXAMPLES / s for s in SOURCES], redact=redact)
        elapsed = time.perf_counter() - started
    return report.conversations, report.written.utterances, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    intake_redactor().redactor.redact(["Warm-up: thanks, Dana."])
    times: dict[bool, list[float]] = {False: [], True: []}
    counts = (0, 0)
    for _ in range(rounds):
        for redact in (False, True):
            conversations, utterances, elapsed = one_run(redact)
            counts = (conversations, utterances)
            times[redact].append(elapsed)
    conversations, utterances = counts
    print(f"sample corpus: {conversations} conversations, {utterances} utterances")
    for redact, label in ((False, "before (no intake redaction)"), (True, "after (redacted)")):
        median = statistics.median(times[redact])
        print(
            f"{label:>30}: {conversations / median:7.1f} conversations/s, "
            f"{utterances / median:8.1f} utterances/s (median of {rounds}: {median:.2f} s)"
        )


if __name__ == "__main__":
    main()
