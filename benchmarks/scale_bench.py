"""Scale: the local engine beside Ray with 1 and 2 workers, in one run, on one machine.

    python benchmarks/scale_bench.py [--conversations 2000] [--components sentiment]
                                     [--audio-seconds 120] [--json out.json]

A generated corpus of support chats (seeded; 4-16 messages each, names, emails and
order numbers for the PII step) is ingested once; each engine then measures and labels
a copy of that warehouse: `analyze` (dynamics metrics) and `enrich` (the components
named: default sentiment; `--components pii,sentiment,...` for more), the local engine
into the DuckDB file, the Ray engine (a local cluster of 2 CPUs started here, actor
pools of 1 and 2 workers) into a lake. Every engine runs one thread per worker
(OMP/MKL threads 1), as the issue asks. Then:

- throughput per engine (conversations/s, utterances/s), the 2-worker speed-up over 1
  worker (target >= 1.8x) and Ray-1 against local (target within 15 %);
- the Ray overhead: starting the cluster, and per job (a one-conversation job on Ray
  minus the same job locally: actor start, model load, scheduling);
- transcription: `--audio-seconds` of a real recording (examples/recordings/, copied
  to the length asked) through `ingest` locally and on 1 and 2 Ray workers: real-time
  factor per worker;
- storage: bytes per conversation in the DuckDB file (normalised layers) and in the
  lake (zstd Parquet), split into its copy of the normalised layers and the derived
  layers (metrics + labels);
- the capacity model of docs/scale.md for 10,000 and 100,000 calls a day from these
  per-item costs.

Figures depend on what else the machine is doing: the load average is printed beside
each. The full-size run for docs/scale.md: `--conversations 20000 --audio-seconds 1800`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# One thread per worker everywhere, the local engine included (set before numpy/torch).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from convolens.analyze import analyze
from convolens.engine import Engine, LocalEngine
from convolens.engine.recordings import ingest_on
from convolens.enrich.runner import enrich
from convolens.ingest.base import IngestOptions
from convolens.ingest.pipeline import ingest_paths
from convolens.speech.options import SpeechOptions
from convolens.store.lake import NORMALISED_LAYERS
from convolens.store.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[1]
RECORDING = REPO / "examples" / "recordings" / "call-20261117-0031.flac"

_FIRST = ["Maria", "James", "Aisha", "Chen", "Olga", "Tom", "Priya", "Lucas", "Emma", "Kofi"]
_LAST = ["Lopez", "Smith", "Khan", "Wei", "Ivanova", "Brown", "Patel", "Silva", "Novak", "Mensah"]
_AGENTS = ["Sam Patel", "Dana Reyes", "Leo Martin", "Ivy Chen", "Noah Berg"]
_OPENERS = [
    "Hi, I was charged twice for my subscription this month.",
    "Hello, I can't log in since the password reset.",
    "My order {order} still hasn't arrived, it's been ten days.",
    "I'd like to cancel my plan, it's too expensive for us now.",
    "The app crashes every time I open the reports page.",
    "Can you tell me how to add a second user to our account?",
]
_CUSTOMER = [
    "My email is {email} if you need it.",
    "I already tried that twice and it didn't work.",
    "That's really frustrating, we rely on this every day.",
    "Ok, thanks, that makes sense.",
    "Can you call me back on {phone}?",
    "Is there a discount if we switch to the annual plan?",
    "We are also looking at a competitor at the moment.",
    "Great, that fixed it. Thank you so much!",
]
_AGENT = [
    "I'm sorry about that, let me look into it for you.",
    "Could you confirm the order number please?",
    "I've issued a refund, you should see it in 3-5 business days.",
    "I'll escalate this to our engineering team today.",
    "Please try clearing the cache and signing in again.",
    "I'll send you a follow-up email with the details by Friday.",
    "Is there anything else I can help you with?",
]


def generate_corpus(path: Path, conversations: int, seed: int = 19) -> int:
    """Write `conversations` support chats as JSONL; returns the number of messages."""
    rng = random.Random(seed)
    start = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    messages = 0
    with path.open("w", encoding="utf-8") as out:
        for n in range(conversations):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            values = {
                "email": f"{first.lower()}.{last.lower()}@example.com",
                "phone": f"+1 415 555 {rng.randint(1000, 9999)}",
                "order": f"ORD-{rng.randint(10000, 99999)}",
            }
            at = start + timedelta(minutes=7 * n)
            texts = [("c1", rng.choice(_OPENERS))]
            for turn in range(rng.randint(3, 15)):
                author = "a1" if turn % 2 == 0 else "c1"
                texts.append((author, rng.choice(_AGENT if author == "a1" else _CUSTOMER)))
            body = {
                "id": f"gen-{n:06d}",
                "source": "bench",
                "channel": "chat",
                "started_at": at.isoformat(),
                "queue": rng.choice(["Billing", "Tech", "Sales"]),
                "agent": rng.choice(_AGENTS),
                "participants": [
                    {"id": "c1", "name": f"{first} {last}", "role": "customer"},
                    {"id": "a1", "name": "Agent", "role": "agent"},
                ],
                "messages": [
                    {
                        "author": author,
                        "text": text.format(**values),
                        "sent_at": (at + timedelta(seconds=40 * i)).isoformat(),
                    }
                    for i, (author, text) in enumerate(texts)
                ],
            }
            messages += len(texts)
            out.write(json.dumps(body) + "\n")
    return messages


@dataclass
class EngineRun:
    engine: str
    workers: int
    conversations: int = 0
    utterances: int = 0
    wall_s: float = 0.0
    analyze_s: float = 0.0
    enrich_s: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    utterances_per_s: float = 0.0
    # CPU seconds of this process (all its threads): the per-item cost without the
    # waiting a busy machine adds; meaningful for the local engine (Ray's work is in
    # other processes).
    cpu_s: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_engine(
    base: Path, work: Path, label: str, engine: Engine, components: list[str], lake: bool
) -> EngineRun:
    db = work / f"{label}.duckdb"
    shutil.copy(base, db)
    run = EngineRun(engine.name, engine.workers, load_before=_load())
    with Warehouse(db) as warehouse:
        if lake:
            warehouse.set_lake(str(work / f"{label}-lake"))
        started, cpu = time.perf_counter(), time.process_time()
        metrics = analyze(warehouse, engine=engine)
        run.analyze_s = time.perf_counter() - started
        labelled = enrich(warehouse, components, engine=engine) if components else None
        run.wall_s = time.perf_counter() - started
        run.cpu_s = time.process_time() - cpu
        run.enrich_s = run.wall_s - run.analyze_s
    run.conversations = metrics.conversations
    run.utterances = metrics.utterances
    run.labels = dict(labelled.labels) if labelled else {}
    run.utterances_per_s = run.utterances / run.wall_s if run.wall_s else 0.0
    run.load_after = _load()
    return run


def _half_job(db: str, components: list[str]) -> tuple[float, int]:
    """One local process's share of the two-process ceiling run: (seconds, utterances)."""
    with Warehouse(Path(db)) as warehouse:
        started = time.perf_counter()
        metrics = analyze(warehouse)
        if components:
            enrich(warehouse, components)
        return time.perf_counter() - started, metrics.utterances


def two_local_processes(corpus: Path, work: Path, components: list[str]) -> EngineRun:
    """The ceiling of two workers on this machine without Ray: the corpus split in two
    halves, each ingested into its own DuckDB file, then two plain local processes (one
    thread each) label one half each at the same time. Wall = the slower of the two,
    timed inside each process as `run_engine` times the local engine (model loads
    included, process start-up not)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    middle = len(lines) // 2
    dbs = []
    for n, part in enumerate((lines[:middle], lines[middle:])):
        half = work / f"half{n}.jsonl"
        half.write_text("".join(part), encoding="utf-8")
        db = work / f"half{n}.duckdb"
        with Warehouse(db) as warehouse:
            ingest_paths(warehouse, [half])
        dbs.append(str(db))
    run = EngineRun("2proc", 2, load_before=_load())
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_half_job, dbs, [components, components]))
    run.wall_s = max(seconds for seconds, _ in results)
    run.utterances = sum(n for _, n in results)
    run.conversations = len(lines)
    run.utterances_per_s = run.utterances / run.wall_s if run.wall_s else 0.0
    run.load_after = _load()
    return run


def one_conversation_job(base_corpus: Path, work: Path, engine: Engine, comps: list[str]) -> float:
    """Seconds for a job of one conversation, models loaded inside the job."""
    db = work / f"job-{engine.name}-{engine.workers}.duckdb"
    db.unlink(missing_ok=True)
    single = work / "one.jsonl"
    single.write_text(base_corpus.read_text(encoding="utf-8").splitlines()[0] + "\n")
    with Warehouse(db) as warehouse:
        ingest_paths(warehouse, [single])
        started = time.perf_counter()
        analyze(warehouse, engine=engine)
        if comps:
            enrich(warehouse, comps, engine=engine)
        return time.perf_counter() - started


def transcribe(work: Path, engine: Engine, seconds: float, model: str) -> dict[str, float]:
    """Ingest `seconds` of real audio (copies of the sample call) on `engine`."""
    import av

    with av.open(str(RECORDING)) as container:
        length = float(container.duration or 0) / 1e6
    copies = max(1, round(seconds / length))
    folder = work / f"audio-{engine.name}-{engine.workers}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for i in range(copies):
        shutil.copy(RECORDING, folder / f"call-{i:03d}.flac")
    db = work / f"audio-{engine.name}-{engine.workers}.duckdb"
    db.unlink(missing_ok=True)
    options = IngestOptions(speech=SpeechOptions(model=model))
    load = _load()
    with Warehouse(db) as warehouse:
        started, cpu = time.perf_counter(), time.process_time()
        report = ingest_on(engine, warehouse, [folder], options=options)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    audio = copies * length
    if report.rejects:  # a figure for audio that was not transcribed would mislead
        raise RuntimeError(f"audio rejected: {report.rejects[0].describe()}")
    return {
        "audio_s": round(audio, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "x_real_time": round(audio / wall, 2),
        "x_real_time_per_worker": round(audio / wall / engine.workers, 2),
        "load_before": load,
        "load_after": _load(),
    }


def capacity(per_utterance_core_s: float, rtf_per_core: float, lake_bytes_per_conv: float,
             db_bytes_per_conv: float) -> list[dict[str, float]]:  # fmt: skip
    """Workers and storage for 10k and 100k calls a day (docs/scale.md explains it)."""
    out = []
    for calls in (10_000, 100_000):
        audio_h = calls * 4.8 / 60  # 4.8 minutes a call: ~800 h for 10k calls
        utterances = calls * 150
        asr_core_h = audio_h / rtf_per_core
        label_core_h = utterances * per_utterance_core_s / 3600
        # Cores busy 60 % of the day leaves room for peaks and retries.
        cores = (asr_core_h + label_core_h) / (24 * 0.6)
        out.append(
            {
                "calls_per_day": calls,
                "audio_hours": round(audio_h),
                "utterances": utterances,
                "transcription_core_hours": round(asr_core_h),
                "labelling_core_hours": round(label_core_h),
                "cpu_cores_needed": round(cores),
                "lake_gb_per_month": round(calls * 30 * lake_bytes_per_conv / 1e9, 2),
                "warehouse_gb_per_month": round(calls * 30 * db_bytes_per_conv / 1e9, 2),
                # 16 kbit/s Opus: what keeping the recordings costs (the largest item).
                "audio_gb_per_month": round(audio_h * 3600 * 2000 * 30 / 1e9),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--components", default="sentiment", help="comma list; '' none")
    parser.add_argument("--audio-seconds", type=float, default=120.0, help="0: no audio")
    parser.add_argument("--model", default="base", help="Whisper model for the audio part")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also time two plain local processes on half the corpus each (no Ray)",
    )
    parser.add_argument(
        "--redact-setup",
        action="store_true",
        help="redact the generated corpus at intake during setup (slow; not measured)",
    )
    args = parser.parse_args()
    components = [c for c in args.components.split(",") if c]

    import ray

    from convolens.engine.ray_engine import RayEngine

    results: dict[str, object] = {
        "conversations": args.conversations,
        "components": components,
        "cpus": os.cpu_count(),
        "load_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus.jsonl"
        messages = generate_corpus(corpus, args.conversations)
        base = work / "base.duckdb"
        started = time.perf_counter()
        with Warehouse(base) as warehouse:
            # Setup, not measured: the generated corpus has no real personal data, and
            # intake redaction (spaCy + our NER, ~10 conversations/s on this box) would
            # make a 20,000-conversation setup take most of an hour. Redaction on the
            # engines is measured with `--components pii,...`.
            report = ingest_paths(warehouse, [corpus], redact=args.redact_setup)
        ingest_s = time.perf_counter() - started
        print(f"corpus: {args.conversations:,} conversations, {messages:,} messages; "
              f"ingest {ingest_s:.1f} s ({report.summary_line()})")  # fmt: skip
        results["ingest_s"] = round(ingest_s, 2)
        db_bytes_per_conv = _size(base) / args.conversations

        runs: list[EngineRun] = []
        local = run_engine(base, work, "local", LocalEngine(), components, lake=False)
        runs.append(local)
        print(_line(local))
        ceiling = two_local_processes(corpus, work, components) if args.ceiling else None
        if ceiling:
            print(_line(ceiling) + f"; {ceiling.utterances_per_s / local.utterances_per_s:.2f}x"
                  " local: what two cores give two plain processes here")  # fmt: skip
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=512 * 1024 * 1024)  # fmt: skip
        cluster_s = time.perf_counter() - started
        print(f"ray: local cluster of 2 CPUs started in {cluster_s:.1f} s")
        try:
            for workers in (1, 2):
                engine = RayEngine(workers=workers)
                run = run_engine(base, work, f"ray{workers}", engine, components, lake=True)
                runs.append(run)
                print(_line(run))
            lake = work / "ray2-lake"
            lake_bytes_per_conv = _size(lake) / args.conversations
            normalised_bytes_per_conv = (
                sum(_size(lake / layer) for layer in NORMALISED_LAYERS if (lake / layer).exists())
                / args.conversations
            )
            job_local = one_conversation_job(corpus, work, LocalEngine(), components)
            job_ray = one_conversation_job(corpus, work, RayEngine(workers=1), components)
            print(f"one-conversation job: local {job_local:.1f} s, ray {job_ray:.1f} s: "
                  f"Ray overhead {job_ray - job_local:.1f} s per job (+ cluster start "
                  f"{cluster_s:.1f} s once)")  # fmt: skip
            audio: dict[str, dict[str, float]] = {}
            if args.audio_seconds > 0:
                audio["local"] = transcribe(work, LocalEngine(), args.audio_seconds, args.model)
                for workers in (1, 2):
                    engine = RayEngine(workers=workers)
                    audio[f"ray{workers}"] = transcribe(
                        work, engine, args.audio_seconds, args.model
                    )
                for name, figures in audio.items():
                    print(f"audio {name}: {figures}")
        finally:
            ray.shutdown()
        one, two = runs[1], runs[2]
        speedup = two.utterances_per_s / one.utterances_per_s if one.utterances_per_s else 0
        vs_local = one.utterances_per_s / local.utterances_per_s if local.utterances_per_s else 0
        print(f"2 workers vs 1: {speedup:.2f}x (target >= 1.8x); "
              f"Ray 1 worker vs local: {vs_local:.2f} (target >= 0.85)")  # fmt: skip
        # Per-item costs from CPU time of the local run (the box's other load mostly
        # drops out); the wall-clock figures above are what this machine gave today.
        per_utterance_core_s = local.cpu_s / local.utterances if local.utterances else 0
        local_audio = audio.get("local", {})
        rtf = (
            local_audio["audio_s"] / local_audio["cpu_s"]
            if local_audio.get("cpu_s")
            else local_audio.get("x_real_time", 15.0)
        )
        print(f"per-item CPU cost (local): {per_utterance_core_s * 1000:.1f} ms/utterance, "
              f"transcription {rtf:.1f}x real time per core")  # fmt: skip
        plan = capacity(per_utterance_core_s, rtf, lake_bytes_per_conv, db_bytes_per_conv)
        print(f"storage: {db_bytes_per_conv / 1024:.1f} KiB/conversation in the DuckDB file, "
              f"{lake_bytes_per_conv / 1024:.1f} KiB in the lake (of which "
              f"{normalised_bytes_per_conv / 1024:.1f} KiB its copy of the normalised "
              "layers)")  # fmt: skip
        for row in plan:
            print("capacity:", row)
        results.update(
            runs=[asdict(r) for r in runs],
            ray_cluster_start_s=round(cluster_s, 2),
            job_local_s=round(job_local, 2),
            job_ray_s=round(job_ray, 2),
            ray_overhead_per_job_s=round(job_ray - job_local, 2),
            speedup_2_vs_1=round(speedup, 3),
            ray1_vs_local=round(vs_local, 3),
            two_process_ceiling=round(ceiling.utterances_per_s / local.utterances_per_s, 3)
            if ceiling
            else None,
            audio=audio,
            db_bytes_per_conversation=round(db_bytes_per_conv),
            lake_bytes_per_conversation=round(lake_bytes_per_conv),
            lake_normalised_bytes_per_conversation=round(normalised_bytes_per_conv),
            capacity=plan,
            load_at_end=os.getloadavg(),
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps({k: results[k] for k in ("speedup_2_vs_1", "ray1_vs_local")}))
    sys.stdout.flush()


def _line(run: EngineRun) -> str:
    return (
        f"{run.engine:5} x{run.workers}: {run.conversations:,} conversations, "
        f"{run.utterances:,} utterances in {run.wall_s:.1f} s (metrics {run.analyze_s:.1f} s, "
        f"labels {run.enrich_s:.1f} s) = {run.utterances_per_s:.0f} utterances/s; "
        f"CPU {run.cpu_s:.1f} s here; "
        f"load {run.load_before} -> {run.load_after}"
    )


if __name__ == "__main__":
    main()
