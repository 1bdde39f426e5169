"""REST API under load: concurrent uploads through the async SDK against a real server.

    python benchmarks/api_load.py [--uploads 50] [--workers 2] [--streams 20]

Starts `convolens serve` in a subprocess on a fresh DuckDB warehouse (models loaded and
one warm-up job run before the clock starts, as a long-running server would be), then
sends `--uploads` uploads at once with `convolens.client.AsyncClient`: a mix of the
bundled examples -- a support chat (JSON Lines), a sales chat (JSON), a CSV chat export,
an email (.eml) and a helpdesk ticket export (JSON) -- each rewritten with ids of its own
so every upload is a new conversation, not an idempotent resubmit.

Prints: uploads/s accepted (202s over the time to send them all), conversations/s
processed end to end (first upload sent -> last job completed), p50/p95 of the upload
call, p50/p95 of job completion after acceptance, and the error count (target 0: a non-2xx,
a failed job or a job not done in time). Then `--streams` copies of the example call
streamed at once over `WS /v1/stream` at real-time pace (benchmarks/stream_latency.py's
client): streams and their pipeline jobs completed, end -> final latency under that load,
and errors (a refused or broken stream, an error event, a failed job).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from convolens.client import ApiError, AsyncClient
from convolens.service.local import LocalServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ADMIN_KEY = "clk_benchadmin_rDZLdZft2Ot_hW2DRMwYHCoDKec3bX4BMg-cmCdFp80"
Upload = tuple[str, bytes, str]  # (kind, content, filename)


# -- the server -----------------------------------------------------------------------------
class Server(LocalServer):
    """The benchmark's server: a known admin key, `workers` job threads."""

    def __init__(self, db: Path, log: Path, workers: int) -> None:
        super().__init__(db, log, args=["--workers", str(workers)], CONVOLENS_ADMIN_KEY=ADMIN_KEY)


# -- unique inputs from the examples --------------------------------------------------------
def _support_chat(i: int, pick: int) -> Upload:
    lines = (EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines()
    record = json.loads(lines[pick % len(lines)])
    record["id"] = f"{record['id']}-load{i}"
    return "chat jsonl", (json.dumps(record) + "\n").encode(), f"support-{i}.jsonl"


def _sales_chat(i: int, pick: int) -> Upload:
    records = json.loads((EXAMPLES / "chats" / "sales_chats.json").read_text())
    record = records[pick % len(records)]
    record["id"] = f"{record['id']}-load{i}"
    return "chat json", json.dumps([record]).encode(), f"sales-{i}.json"


def _csv_export(i: int, pick: int) -> Upload:
    with (EXAMPLES / "csv" / "chat_export.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ids = list(dict.fromkeys(row["conversation_id"] for row in rows))
    chosen = ids[pick % len(ids)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        if row["conversation_id"] == chosen:
            writer.writerow({**row, "conversation_id": f"{chosen}-load{i}"})
    return "csv", out.getvalue().encode(), f"export-{i}.csv"


def _email(i: int, pick: int) -> Upload:
    # First messages only: each is a thread root, so a new Message-ID is a new conversation.
    paths = sorted((EXAMPLES / "email").glob("*_1.eml"))
    text = paths[pick % len(paths)].read_text()
    text = re.sub(r"(?im)^(Message-ID:\s*<)", rf"\g<1>load{i}-", text, count=1)
    return "email", text.encode(), f"message-{i}.eml"


def _ticket(i: int, pick: int) -> Upload:
    export = json.loads((EXAMPLES / "tickets" / "zendesk_export.json").read_text())
    ticket = export["tickets"][pick % len(export["tickets"])]
    ticket["id"] = 900_000 + i
    export["tickets"] = [ticket]
    return "ticket", json.dumps(export).encode(), f"zendesk-{i}.json"


# maker(i, pick): example number `pick` of its kind, made unique by `i`.
MAKERS: list[Callable[[int, int], Upload]] = [
    _support_chat,
    _sales_chat,
    _csv_export,
    _email,
    _ticket,
]


def make_uploads(n: int) -> list[Upload]:
    return [MAKERS[i % len(MAKERS)](i, i // len(MAKERS)) for i in range(n)]


# -- the load -------------------------------------------------------------------------------
@dataclass
class Outcome:
    kind: str
    submit_s: float | None = None
    job_id: str | None = None
    accepted_at: float | None = None
    done_at: float | None = None
    conversations: int = 0
    error: str | None = None


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0
    all_accepted: float = 0.0
    all_done: float = 0.0
    stored: int = 0  # conversations in the warehouse afterwards (warm-up included)


async def _one(api: AsyncClient, upload: Upload, start: asyncio.Event) -> Outcome:
    kind, content, filename = upload
    outcome = Outcome(kind)
    await start.wait()
    t0 = time.perf_counter()
    try:
        accepted = await api.upload(content, filename=filename)
    except (ApiError, httpx.HTTPError) as exc:
        outcome.error = f"upload: {exc}"
        return outcome
    outcome.accepted_at = time.perf_counter()
    outcome.submit_s = outcome.accepted_at - t0
    outcome.job_id = accepted.job_id
    return outcome


async def _wait_all(api: AsyncClient, outcomes: list[Outcome], timeout: float, poll: float) -> None:
    """One listing per poll for every job, rather than a status call per job: 50 pollers
    would compete with the workers for the server's CPU and skew the figure measured."""
    waiting = {o.job_id: o for o in outcomes if o.job_id}
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(poll)
        now = time.perf_counter()
        for job in await api.jobs(limit=min(500, max(50, 2 * len(outcomes)))):
            outcome = waiting.get(job.job_id)
            if outcome is None or job.status not in ("completed", "failed"):
                continue
            outcome.done_at = now
            if job.status == "failed":
                outcome.error = f"job failed: {(job.error or {}).get('message')}"
            else:
                outcome.conversations = int((job.result or {}).get("conversations", 0))
            del waiting[job.job_id]
    for outcome in waiting.values():
        outcome.error = f"job not done after {timeout:g} s"


async def run_load(url: str, uploads: list[Upload], timeout: float, poll: float) -> Report:
    report = Report()
    async with AsyncClient(url, ADMIN_KEY, timeout=120, max_connections=len(uploads)) as api:
        start = asyncio.Event()
        tasks = [asyncio.create_task(_one(api, upload, start)) for upload in uploads]
        await asyncio.sleep(0)  # every task is waiting on the start line
        report.started = time.perf_counter()
        start.set()
        report.outcomes = list(await asyncio.gather(*tasks))
        report.all_accepted = time.perf_counter()
        await _wait_all(api, report.outcomes, timeout, poll)
        report.all_done = max(
            (o.done_at for o in report.outcomes if o.done_at), default=time.perf_counter()
        )
        report.stored = (await api.aggregates()).conversations
    return report


async def warm_up(url: str) -> float:
    """One job before the clock: loads the models (a running server has them loaded)."""
    t0 = time.perf_counter()
    async with AsyncClient(url, ADMIN_KEY) as api:
        _, content, name = _support_chat(10_000, 0)
        await api.wait(await api.upload(content, filename=name), timeout=600)
    return time.perf_counter() - t0


async def stream_route_exists(url: str) -> bool:
    """WebSocket routes are not in /openapi.json: try the handshake."""
    try:
        import websockets
    except ImportError:
        return False
    ws_url = url.replace("http://", "ws://") + f"/v1/stream?api_key={ADMIN_KEY}"
    try:
        async with websockets.connect(ws_url, open_timeout=5):
            return True
    except Exception:  # a refused handshake (404/403) or no WebSocket support at all
        return False


async def run_streams(url: str, n: int, timeout: float) -> int:
    """`n` copies of the example call streamed at once at real-time pace; then their jobs."""
    from stream_latency import RECORDINGS, stream_recording

    path, speakers = RECORDINGS[0]
    t0 = time.perf_counter()
    runs = await asyncio.gather(
        *(stream_recording(url, ADMIN_KEY, path, speakers, 100, f"#{i}") for i in range(n))
    )
    streamed = time.perf_counter() - t0
    errors = [r for r in runs if r.error]
    jobs = [r.events[-1].job_id for r in runs if r.events and r.events[-1].type == "stored"]
    failed = 0
    async with AsyncClient(url, ADMIN_KEY) as api:
        for job_id in jobs:
            try:
                job = await api.wait(job_id, timeout=timeout)
                failed += job.status != "completed"
            except Exception:  # a failed or timed-out job is an error of the run
                failed += 1
    done = time.perf_counter() - t0
    finals = [x for r in runs for x in r.to_final]
    audio = sum(r.audio_s for r in runs)
    print(f"\nstreams                 {n} concurrent ({audio:.0f} s of audio) in {streamed:.1f} s; "
          f"their {len(jobs)} jobs done after {done:.1f} s")  # fmt: skip
    p50, p95 = pct(finals, 50) * 1000, pct(finals, 95) * 1000
    print(f"finals                  {len(finals)}; end -> final p50 {p50:.0f} ms, "
          f"p95 {p95:.0f} ms under this load")  # fmt: skip
    print(f"stream errors           {len(errors) + failed} (target 0)")
    for run in errors[:5]:
        print(f"  {run.name}: {run.error}")
    return len(errors) + failed


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def print_report(report: Report, workers: int) -> int:
    outcomes = report.outcomes
    accepted = [o for o in outcomes if o.submit_s is not None]
    done = [o for o in outcomes if o.done_at and not o.error]
    errors = [o for o in outcomes if o.error]
    send_s = report.all_accepted - report.started
    total_s = report.all_done - report.started
    conversations = sum(o.conversations for o in done)
    submit_ms = [1000 * o.submit_s for o in accepted if o.submit_s is not None]
    job_s = [o.done_at - o.accepted_at for o in done if o.done_at and o.accepted_at]

    print()
    print(f"{'input':<12}{'uploads':>8}{'errors':>8}{'conversations':>15}{'job p50 s':>11}")
    for kind in dict.fromkeys(o.kind for o in outcomes):
        mine = [o for o in outcomes if o.kind == kind]
        times = [o.done_at - o.accepted_at for o in mine if o.done_at and o.accepted_at]
        print(
            f"{kind:<12}{len(mine):>8}{sum(1 for o in mine if o.error):>8}"
            f"{sum(o.conversations for o in mine):>15}{pct(times, 50):>11.1f}"
        )
    print()
    print(f"server workers          {workers}")
    print(f"uploads accepted        {len(accepted)}/{len(outcomes)} in {send_s:.2f} s "
          f"= {len(accepted) / send_s:,.1f} uploads/s")  # fmt: skip
    print(f"upload call latency     p50 {pct(submit_ms, 50):,.0f} ms, "
          f"p95 {pct(submit_ms, 95):,.0f} ms, max {max(submit_ms, default=0):,.0f} ms")  # fmt: skip
    print(f"job done after accept   p50 {pct(job_s, 50):.1f} s, p95 {pct(job_s, 95):.1f} s")
    print(f"processed end to end    {conversations} conversations in {total_s:.1f} s "
          f"= {conversations / total_s:.2f} conversations/s")  # fmt: skip
    print(f"warehouse afterwards    {report.stored} conversations "
          f"(1 warm-up + {conversations}: every upload a new one)")  # fmt: skip
    print(f"errors                  {len(errors)} (target 0)")
    for o in errors[:10]:
        print(f"  {o.kind}: {o.error}")
    return len(errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=50, help="Concurrent uploads.")
    parser.add_argument("--streams", type=int, default=20, help="Concurrent streams.")
    parser.add_argument("--workers", type=int, default=2, help="Server job worker threads.")
    parser.add_argument("--timeout", type=float, default=900.0, help="Seconds for every job.")
    parser.add_argument("--poll", type=float, default=0.5, help="Job status poll interval.")
    args = parser.parse_args()

    uploads = make_uploads(args.uploads)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "load.duckdb", Path(tmp) / "server.log", args.workers)
        t0 = time.perf_counter()
        server.start()
        print(f"server up in {time.perf_counter() - t0:.1f} s ({server.url})")
        try:
            print(f"warm-up job (model load) {asyncio.run(warm_up(server.url)):.1f} s")
            report = asyncio.run(run_load(server.url, uploads, args.timeout, args.poll))
            errors = print_report(report, args.workers)
            if args.streams and asyncio.run(stream_route_exists(server.url)):
                errors += asyncio.run(run_streams(server.url, args.streams, args.timeout))
            else:
                print("streams: skipped (no /v1/stream)")
        finally:
            server.stop()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
