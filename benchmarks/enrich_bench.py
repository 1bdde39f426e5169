"""Understanding pipeline throughput: utterances/s for everything on, and per component.

    python benchmarks/enrich_bench.py [--corpus both|examples|twitter] [--repeat 1] [--profile]

Corpus: the bundled sample corpus (examples/: chats, emails, tickets, call and meeting
transcripts) and real customer-care conversations from ../shared/data/support/
twitter_customer_care (customers' tweets and the company's reply), both ingested into a
fresh DuckDB warehouse. Then `enrich` runs every built-in component (PII redaction,
sentiment, intents, entities, dialogue acts, trackers, topics, resolution, signals,
extractive summary; the LLM summary is off by default) in one run, as `convolens analyze`
does. Models are loaded before the clock starts (a server loads them once).

Prints utterances/s for the whole run (reading, labelling, writing) and, per component,
utterances / seconds spent in it. Target (issues #4, #13): >= 200 utterances/s on 2 cores.
`--profile` adds cProfile's top functions by cumulative and by own time (where inside the
components the time goes: model inference, parsing, Python).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from convolens.enrich.registry import DEFAULT_COMPONENTS, get_component
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
TWITTER = ROOT.parent / "shared" / "data" / "support" / "twitter_customer_care" / "dev.json"
TARGET_PER_S = 200


def twitter_chats(path: Path, out: Path) -> Path:
    """The customer-care threads as convolens chat JSON Lines (customer turns, then the
    company's reply)."""
    threads = json.loads(path.read_text(encoding="utf-8"))
    with out.open("w", encoding="utf-8") as handle:
        for thread in threads:
            header = thread["dialogHeader"]
            messages = [
                {"author": "c", "text": m["message"], "sent_at": m["datetime"]}
                for m in thread["dialogContent"]
            ]
            reply = thread.get("agentURL", {}).get("url_utterance")
            if reply:
                messages.append({"author": "a", "text": reply})
            record = {
                "id": header["sessionID"],
                "source": "twitter",
                "channel": "chat",
                "started_at": header["conversationDateTime"],
                "queue": header["company"],
                "participants": [
                    {"id": "c", "role": "customer"},
                    {"id": "a", "role": "agent", "name": header["company"]},
                ],
                "messages": messages,
            }
            handle.write(json.dumps(record) + "\n")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["both", "examples", "twitter"], default="both")
    parser.add_argument("--repeat", type=int, default=1, help="Runs; the best is reported.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()

    load = time.perf_counter()
    components = [get_component(name) for name in DEFAULT_COMPONENTS]
    print(f"loaded {len(components)} components in {time.perf_counter() - load:.1f} s")
    best = None
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            paths: list[Path] = []
            if args.corpus in ("both", "examples"):
                # Recordings would be transcribed: the speech pipeline has its own bench.
                paths += [p for p in (ROOT / "examples").iterdir() if p.name != "recordings"]
            if args.corpus in ("both", "twitter"):
                if not TWITTER.exists():
                    print(f"missing {TWITTER}", file=sys.stderr)
                    return 2
                paths.append(twitter_chats(TWITTER, Path(tmp) / "twitter.jsonl"))
            warehouse = Warehouse(Path(tmp) / "bench.duckdb")
            warehouse.migrate()
            ingest_paths(warehouse, paths)
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            report = enrich(warehouse, components, batch_size=args.batch_size)
            if profiler:
                profiler.disable()
                for order in ("cumulative", "tottime"):
                    text = io.StringIO()
                    pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(25)
                    print(f"--- profile, top 25 by {order} ---")
                    print(text.getvalue().split("\n\n", 2)[-1][:6000])
            warehouse.close()
        rate = report.utterances / report.elapsed_s
        print(
            f"run {attempt + 1}: {report.conversations} conversations, "
            f"{report.utterances} utterances in {report.elapsed_s:.2f} s = {rate:,.0f} utt/s"
        )
        if best is None or report.elapsed_s < best.elapsed_s:
            best = report
    assert best is not None
    rate = best.utterances / best.elapsed_s
    print()
    print(f"{'component':<16}{'seconds':>10}{'utt/s':>12}{'share':>8}")
    for name, seconds in sorted(best.component_s.items(), key=lambda kv: -kv[1]):
        print(
            f"{name:<16}{seconds:>10.2f}{best.utterances / seconds:>12,.0f}"
            f"{seconds / best.elapsed_s:>8.0%}"
        )
    rest = best.elapsed_s - sum(best.component_s.values())
    print(f"{'read/write':<16}{rest:>10.2f}{'':>12}{rest / best.elapsed_s:>8.0%}")
    print()
    print(
        f"whole pipeline: {rate:,.0f} utterances/s "
        f"(target {TARGET_PER_S}: {rate / TARGET_PER_S:.2f}x)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
