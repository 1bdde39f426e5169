"""Ingest and metrics throughput on a generated corpus of 100,000 messages.

    python benchmarks/ingest_bench.py [--messages 100000] [--per-conversation 20]

Generates JSON Lines (half timed calls with overlaps and silences, half chats with
sent_at), then times, in this process: `ingest_paths` into a fresh DuckDB warehouse,
`analyze` (dynamics metrics), and as the peer a bare DuckDB `read_json` of the same file
into a table (no validation, no model, no versions), which bounds what ingest could reach.
Target (issue #2): >= 20,000 messages/s for ingest and for metrics on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from convolens.analyze import analyze
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

TARGET_PER_S = 20_000
WORDS = [
    "account",
    "billing",
    "refund",
    "login",
    "password",
    "reset",
    "invoice",
    "plan",
    "upgrade",
    "export",
    "report",
    "crash",
    "update",
    "mobile",
    "app",
    "team",
    "seat",
    "price",
    "contract",
    "renewal",
    "ticket",
    "issue",
    "thanks",
    "please",
]


def _conversation(index: int, size: int, rng: random.Random) -> dict:
    timed = index % 2 == 0
    start = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(minutes=17 * index)
    participants = [
        {"id": "agent", "name": f"Agent {index % 37}", "role": "agent"},
        {"id": "customer", "name": f"Customer {index}", "role": "customer"},
    ]
    messages = []
    clock = 0.0
    for turn in range(size):
        author = participants[turn % 2]["id"] if rng.random() > 0.15 else participants[0]["id"]
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25)))
        if rng.random() < 0.2:
            text += "?"
        message: dict = {"author": author, "text": text}
        if timed:
            length = len(text.split()) / 2.5
            clock = max(0.0, clock + rng.uniform(-1.0, 4.0))  # overlaps and silences
            message["start"], message["end"] = round(clock, 3), round(clock + length, 3)
            clock += length
        else:
            message["sent_at"] = (start + timedelta(seconds=30 * turn)).isoformat()
        messages.append(message)
    return {
        "id": f"bench-{index}",
        "source": "bench",
        "channel": "call" if timed else "chat",
        "started_at": start.isoformat(),
        "agent": participants[0]["name"],
        "participants": participants,
        "messages": messages,
    }


def generate(path: Path, messages: int, per_conversation: int) -> int:
    rng = random.Random(7)
    conversations = messages // per_conversation
    with path.open("w", encoding="utf-8") as handle:
        for index in range(conversations):
            handle.write(json.dumps(_conversation(index, per_conversation, rng)) + "\n")
    return conversations * per_conversation


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--per-conversation", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus.jsonl"
        total = generate(corpus, args.messages, args.per_conversation)
        size_mb = corpus.stat().st_size / 1e6
        print(
            f"corpus: {total:,} messages in {total // args.per_conversation:,} conversations "
            f"({size_mb:.1f} MB JSONL)"
        )

        with Warehouse(Path(folder) / "bench.duckdb") as warehouse:
            started = time.perf_counter()
            report = ingest_paths(warehouse, [corpus], batch_size=2000)
            ingest_s = time.perf_counter() - started
            assert report.written.new == total // args.per_conversation, report.summary_line()
            rss_after_ingest = _peak_rss_mb()

            started = time.perf_counter()
            analysed = analyze(warehouse)
            metrics_s = time.perf_counter() - started
            assert analysed.utterances == total

            started = time.perf_counter()
            again = ingest_paths(warehouse, [corpus], batch_size=2000)
            reingest_s = time.perf_counter() - started
            assert again.written.unchanged == total // args.per_conversation

        peer = duckdb.connect(str(Path(folder) / "peer.duckdb"))
        started = time.perf_counter()
        peer.execute(
            f"CREATE TABLE raw AS SELECT * FROM read_json('{corpus}', format='newline_delimited')"
        )
        peer_s = time.perf_counter() - started
        peer.close()

    rows = [
        ("ingest (parse, validate, store)", ingest_s),
        ("metrics (analyze)", metrics_s),
        ("re-ingest (unchanged, idempotent)", reingest_s),
        ("peer: DuckDB read_json only", peer_s),
    ]
    print(f"{'step':36} {'seconds':>8} {'messages/s':>12} {'vs target':>10}")
    for label, seconds in rows:
        rate = total / seconds
        print(f"{label:36} {seconds:8.2f} {rate:12,.0f} {rate / TARGET_PER_S:9.2f}x")
    print(f"ingest vs peer: {peer_s / ingest_s:.2f}x of DuckDB read_json's speed")
    print(f"peak RSS: {rss_after_ingest:.0f} MiB after ingest, {_peak_rss_mb():.0f} MiB at the end")
    ok = total / ingest_s >= TARGET_PER_S and total / metrics_s >= TARGET_PER_S
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
