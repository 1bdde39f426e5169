"""Trends, spikes, annotations and before/after on warehouses labelled by the real pipeline.

The main fixture writes six weeks of support chats as JSON Lines, ingests them with the
real adapter and writer, and labels them with the real components (sentiment, intents,
trackers, resolution, signals, topics). Week by week (Mondays from 2026-03-02):

    crash reports (bug_report)      2  2  2  2  2  10   <- planted spike, angrier texts
    invoice requests                3  3  3  3  3   3   <- flat
    delivery problems               7  7  7  7  7   0   <- planted drop
    password resets                 2  2  2  2  2   2   <- flat
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from convolens.analytics.annotations import (
    add_annotation,
    delete_annotation,
    import_annotations,
    list_annotations,
)
from convolens.analytics.before_after import before_after
from convolens.analytics.spikes import poisson_cdf, poisson_sf, spikes
from convolens.analytics.trends import sentiment_trend, volume
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MONDAY = date(2026, 3, 2)
WEEKS = 6
LAST = MONDAY + timedelta(weeks=WEEKS - 1)  # the week examined: 2026-04-06

CHATS = {
    "crash": (
        "Mobile",
        [
            ("c", "The mobile app crashes when I open a shared dashboard."),
            ("a", "Thanks for reporting it, engineering is looking into it."),
            ("c", "OK, thanks, I'll use the web version meanwhile."),
        ],
    ),
    "crash-angry": (
        "Mobile",
        [
            (
                "c",
                "Your app keeps crashing every single time I open it since the update. "
                "This is unacceptable.",
            ),
            ("a", "I'm sorry, we're investigating the crash."),
            ("c", "This is terrible, I can't work at all and nobody told us anything."),
        ],
    ),
    "invoice": (
        "Billing",
        [
            ("c", "Could you send me the invoice for last month? Our accountant needs a PDF."),
            ("a", "Sure, I've emailed the invoice to you."),
            ("c", "Got it, thanks."),
        ],
    ),
    "delivery": (
        "Orders",
        [
            ("c", "My parcel has been stuck at the depot for over a week, I think it's lost."),
            ("a", "Let me check with the courier for you."),
            ("c", "Okay, please let me know."),
        ],
    ),
    "password": (
        "Support",
        [
            ("c", "I forgot my password and the reset link isn't in my inbox."),
            ("a", "I've sent a new password reset link."),
            ("c", "Got it, thank you."),
        ],
    ),
}
# kind -> conversations per week
PLAN = {
    "crash": [2, 2, 2, 2, 2, 0],
    "crash-angry": [0, 0, 0, 0, 0, 10],
    "invoice": [3] * WEEKS,
    "delivery": [7, 7, 7, 7, 7, 0],
    "password": [2] * WEEKS,
}


def _chats() -> list[dict]:
    rows = []
    for kind, per_week in PLAN.items():
        queue, turns = CHATS[kind]
        for week, count in enumerate(per_week):
            for j in range(count):
                start = datetime.combine(
                    MONDAY + timedelta(weeks=week, days=j % 5), datetime.min.time(), UTC
                ) + timedelta(hours=8 + j, minutes=len(kind))
                rows.append(
                    {
                        "id": f"{kind}-w{week}-{j}",
                        "source": "intercom",
                        "channel": "chat",
                        "started_at": start.isoformat(),
                        "queue": queue,
                        "agent": "Leo Martin",
                        "participants": [
                            {"id": "c", "name": "Customer", "role": "customer"},
                            {"id": "a", "name": "Leo Martin", "role": "agent"},
                        ],
                        "messages": [
                            {
                                "author": who,
                                "text": text,
                                "sent_at": (start + timedelta(minutes=i)).isoformat(),
                            }
                            for i, (who, text) in enumerate(turns)
                        ],
                    }
                )
    return rows


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    folder = tmp_path_factory.mktemp("trends")
    source = folder / "chats.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in _chats()), encoding="utf-8")
    warehouse = Warehouse(folder / "trends.duckdb")
    report = ingest_paths(warehouse, [source])
    assert not report.rejects
    enrich(warehouse, ["sentiment", "intents", "trackers", "resolution", "signals", "topics"])
    yield warehouse
    warehouse.close()


def ids_of(warehouse: Warehouse, prefix: str) -> set[str]:
    rows = warehouse.con.execute(
        "SELECT conversation_id FROM conversations_current WHERE source_id LIKE ? || '%'",
        [prefix],
    ).fetchall()
    return {r[0] for r in rows}


def test_weekly_volume_share_and_sentiment_by_intent(planted: Warehouse) -> None:
    table = volume(planted, "intent", grain="week")
    assert [p.period for p in table.periods] == [MONDAY + timedelta(weeks=w) for w in range(6)]
    assert [p.conversations for p in table.periods] == [14] * 5 + [15]
    cells = {(p.period, p.value): p for p in table.points}
    crash_now = cells[(LAST, "bug_report")]
    assert crash_now.conversations == 10 and crash_now.share == round(10 / 15, 4)
    assert crash_now.scored == 10
    crash_before = cells[(MONDAY, "bug_report")]
    assert crash_before.conversations == 2 and crash_before.share == round(2 / 14, 4)
    # The angry reports are read as much more negative than the mild ones.
    assert crash_now.mean_sentiment is not None and crash_before.mean_sentiment is not None
    assert crash_now.mean_sentiment < crash_before.mean_sentiment - 0.3
    assert [
        cells[(MONDAY + timedelta(weeks=w), "invoice_request")].conversations for w in range(6)
    ] == [3] * 6
    assert (LAST, "delivery_problem") not in cells  # no conversations, no point
    # Shares of a one-value-per-conversation dimension add up to at most 1 per period.
    for period in table.periods:
        assert sum(p.share for p in table.points if p.period == period.period) <= 1.0001

    # `top` keeps the values with most conversations overall: delivery 35, bug_report 20.
    top = volume(planted, "intent", top=2)
    assert {p.value for p in top.points} == {"delivery_problem", "bug_report"}
    assert top.periods == table.periods

    # Days, bounds (dates inclusive) and the shared conversation filters.
    days = volume(planted, "intent", grain="day", start=LAST, end=LAST + timedelta(days=1))
    assert [p.period for p in days.periods] == [LAST, LAST + timedelta(days=1)]
    assert sum(p.conversations for p in days.periods) == 4 + 2 + 2  # crash, invoice, password
    billing = volume(planted, "intent", filters=ConversationFilter(queue="Billing"))
    assert {p.value for p in billing.points} == {"invoice_request"}
    assert all(p.share == 1.0 for p in billing.points)


def test_other_dimensions(planted: Warehouse) -> None:
    queues = volume(planted, "queue")
    assert {(p.period, p.value): p.conversations for p in queues.points}[(LAST, "Mobile")] == 10
    channels = volume(planted, "channel")
    assert {p.value for p in channels.points} == {"chat"}
    assert all(p.share == 1.0 for p in channels.points)
    trackers = {(p.period, p.value): p for p in volume(planted, "tracker").points}
    assert trackers[(LAST, "bug_report")].conversations == 10
    signals = {(p.period, p.value): p for p in volume(planted, "signal").points}
    assert signals[(LAST, "bug_report")].conversations == 10
    topics = volume(planted, "topic")
    assert {p.value for p in topics.points} >= {"invoice", "app keeps crashing"}
    with pytest.raises(ValueError, match="unknown dimension"):
        volume(planted, "colour")
    with pytest.raises(ValueError, match="unknown grain"):
        volume(planted, "intent", grain="year")


def test_sentiment_trend(planted: Warehouse) -> None:
    crash = sentiment_trend(planted, "intent", "bug_report")
    assert [p.conversations for p in crash] == [2] * 5 + [10]
    assert crash[-1].mean_sentiment is not None and crash[0].mean_sentiment is not None
    # The spike week's angry reports against the calm ones before (a plain bug report
    # reads mildly negative itself: the claim is the drop, not where the baseline sits).
    assert crash[-1].mean_sentiment < -0.3
    assert crash[-1].mean_sentiment < crash[0].mean_sentiment - 0.3
    overall = sentiment_trend(planted, None)
    assert [p.conversations for p in overall] == [14] * 5 + [15]
    assert all(p.ci95 is not None and p.ci95 > 0 for p in overall)


def test_planted_spike_and_drop_are_found_with_evidence(planted: Warehouse) -> None:
    report = spikes(planted, "intent")
    assert report is not None
    assert report.period == LAST and report.baseline_start == MONDAY + timedelta(weeks=1)
    assert report.conversations == 15 and report.baseline_conversations == 14
    found = {s.value: s for s in report.spikes}
    assert set(found) == {"bug_report", "delivery_problem"}

    crash = found["bug_report"]
    assert crash.direction == "rising" and crash.significant
    assert (crash.current, crash.baseline, crash.baseline_counts) == (10, 2.0, [2, 2, 2, 2])
    assert crash.change_pct == 400.0
    assert crash.p_value < 1e-3 and crash.score > 3
    assert crash.sentiment_trend == "falling"
    assert crash.headline.startswith("bug_report +400 % vs 4-week mean (10 vs 2.0)")
    assert crash.headline.endswith("sentiment falling")
    # Evidence: the most confident of this week's angry reports, never the baseline's.
    assert len(crash.evidence) == 5
    assert set(crash.evidence) <= ids_of(planted, "crash-angry")

    drop = found["delivery_problem"]
    assert drop.direction == "falling" and drop.significant
    assert (drop.current, drop.baseline, drop.change_pct) == (0, 7.0, -100.0)
    assert drop.score < 0
    assert set(drop.evidence) <= ids_of(planted, "delivery") and len(drop.evidence) == 5
    assert report.spikes[0].value == "bug_report"  # rising first

    # The flat series are seen and not flagged.
    every = spikes(planted, "intent", significant_only=False)
    assert every is not None
    flat = {s.value: s for s in every.spikes}
    for value in ("invoice_request", "password_reset"):
        assert not flat[value].significant
        assert flat[value].current == flat[value].baseline
    # One week before the spike everything is flat.
    quiet = spikes(planted, "intent", as_of=LAST - timedelta(days=3))
    assert quiet is not None and quiet.period == LAST - timedelta(weeks=1)
    assert quiet.spikes == []
    # Against the share of the baseline (8 of 56) scaled to this week's 15 conversations.
    scaled = spikes(planted, "intent", normalize=True)
    assert scaled is not None
    assert {s.value: s.expected for s in scaled.spikes}["bug_report"] == round(8 / 56 * 15, 3)
    # Too few conversations to matter: 10 is below a minimum of 11.
    small = spikes(planted, "intent", min_count=11)
    assert small is not None and "bug_report" not in {s.value for s in small.spikes}
    # The same spike through the tracker and the queue.
    tracker = spikes(planted, "tracker")
    assert tracker is not None and [s.value for s in tracker.spikes] == ["bug_report"]
    queue = spikes(planted, "queue", baseline_periods=1)
    assert queue is not None
    moved = {s.value: s for s in queue.spikes}
    assert moved["Mobile"].headline.startswith("Mobile +400 % week over week")
    assert moved["Orders"].direction == "falling"


def test_poisson_tails() -> None:
    assert poisson_sf(0, 3.0) == 1.0
    # Values from scipy.stats.poisson.
    assert poisson_sf(12, 3.0) == pytest.approx(7.138662897420658e-05, rel=1e-9)
    assert poisson_cdf(0, 7.0) == pytest.approx(9.119e-4, rel=1e-3)
    assert poisson_cdf(3, 3.0) + poisson_sf(4, 3.0) == pytest.approx(1.0)
    # Far tails: summed from the tail side, neither 0 nor 1 - (a rounded 1).
    assert poisson_sf(2000, 1000.0) == pytest.approx(3.058192080169065e-170, rel=1e-9)
    assert poisson_cdf(500, 1000.0) == pytest.approx(8.303834066989804e-69, rel=1e-9)


def test_annotations_and_before_after(planted: Warehouse, tmp_path: Path) -> None:
    release = add_annotation(
        planted, LAST, "release", "Mobile app 4.2", "New renderer", "intent", "bug_report"
    )
    assert release.at == datetime.combine(LAST, datetime.min.time(), UTC)
    again = add_annotation(planted, LAST, "release", "Mobile app 4.2", "New map renderer")
    assert again.id == release.id and again.description == "New map renderer"
    assert again.dimension is None  # an update replaces the optional fields

    sheet = tmp_path / "annotations.csv"
    sheet.write_text(
        "date,kind,label,description,dimension,value\n"
        f"{MONDAY + timedelta(weeks=2)},campaign,Spring promo,Discount mail,queue,Billing\n"
        f"{LAST},release,Mobile app 4.2,New map renderer,intent,bug_report\n",
        encoding="utf-8",
    )
    first = import_annotations(planted, sheet)
    assert (first.rows, first.added, first.updated, first.unchanged) == (2, 1, 1, 0)
    repeat = import_annotations(planted, sheet)
    assert (repeat.added, repeat.updated, repeat.unchanged) == (0, 0, 2)
    listed = list_annotations(planted)
    assert [a.label for a in listed] == ["Spring promo", "Mobile app 4.2"]
    assert [a.label for a in list_annotations(planted, kind="release")] == ["Mobile app 4.2"]
    assert volume(planted, "intent").annotations == listed
    assert volume(planted, "intent", end=LAST - timedelta(days=1)).annotations == listed[:1]

    # "Did crash reports change after the release?" by annotation id: its dimension/value.
    crash = before_after(planted, None, None, release.id)
    assert crash.annotation is not None and crash.annotation.label == "Mobile app 4.2"
    assert (crash.before.matching, crash.after.matching) == (4, 10)
    # The data ends on the Friday: 5 days after against 14 before, compared per day.
    assert (crash.before.days_with_data, crash.after.days_with_data) == (14.0, 5.0)
    assert crash.rate_ratio == pytest.approx((10 / 5) / (4 / 14), rel=1e-3)
    assert crash.verdict == "rose" and crash.significant
    assert crash.rate_ratio_ci95 is not None and crash.rate_ratio_ci95[0] > 1
    assert crash.sentiment_change is not None and crash.sentiment_change < -0.3
    assert crash.sentiment_p_value is not None and crash.sentiment_p_value < 0.05
    delivery = before_after(planted, "intent", "delivery_problem", LAST)
    assert (delivery.before.matching, delivery.after.matching) == (14, 0)
    assert delivery.verdict == "fell" and delivery.share_change == -round(14 / 28, 4)
    invoices = before_after(planted, "intent", "invoice_request", LAST, window_days=7)
    assert (invoices.before.matching, invoices.after.matching) == (3, 3)
    assert invoices.verdict == "no significant change" and not invoices.significant

    bad = tmp_path / "bad.csv"
    bad.write_text("date,kind,label\n2026-03-02,launch,Oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        import_annotations(planted, bad)
    with pytest.raises(ValueError, match="needs its dimension"):
        add_annotation(planted, LAST, "note", "Orphan value", value="bug_report")
    with pytest.raises(ValueError, match="no annotation"):
        before_after(planted, "intent", "bug_report", 999)
    assert delete_annotation(planted, release.id)
    assert [a.label for a in list_annotations(planted)] == ["Spring promo"]


def test_sample_corpus_annotations(tmp_path: Path) -> None:
    """The shipped annotations fall inside the sample corpus and line up with it."""
    with Warehouse(tmp_path / "demo.duckdb") as warehouse:
        text_formats = ["chats", "calls", "csv", "email", "tickets"]
        ingest_paths(warehouse, [EXAMPLES / name for name in text_formats])
        result = import_annotations(warehouse, EXAMPLES / "business" / "annotations.csv")
        assert result.added == result.rows >= 8
        notes = list_annotations(warehouse)
        assert {a.kind for a in notes} == {"release", "campaign", "incident"}
        first, last = warehouse.con.execute(
            "SELECT min(started_at)::DATE, max(started_at)::DATE FROM conversations_current"
        ).fetchone() or (None, None)
        assert first is not None and last is not None
        assert all(
            first - timedelta(days=7) <= a.at.date() <= last + timedelta(days=7) for a in notes
        )
        launch = next(a for a in notes if a.label == "CMP-FALL26 launch")
        assert launch.at.date() == date(2026, 9, 1) and launch.value == "Sales"
        # Every annotation shows on the weekly timeline of the corpus.
        timeline = volume(warehouse, "channel")
        assert len(timeline.annotations) == len(notes)
        # Sales conversations in the weeks after the campaign launch, against none before.
        sales = before_after(warehouse, None, None, launch.id, window_days=21)
        assert sales.before.conversations == 0 and sales.after.matching >= 2
        assert sales.verdict == "not enough data"


def test_synthetic_warehouse_matches_the_views(tmp_path: Path) -> None:
    """The benchmark's generator fills the real schema, its planted spike is found, and the
    fast label lookup agrees with `labels_current` after a relabelling run."""
    sys.path.insert(0, str(EXAMPLES.parent / "benchmarks"))
    try:
        from synth_warehouse import generate_synthetic_warehouse
    finally:
        sys.path.pop(0)
    path = tmp_path / "synth.duckdb"
    stats = generate_synthetic_warehouse(path, conversations=20_000, utterances_per=4)
    assert (stats.conversations, stats.utterances) == (20_000, 80_000)
    with Warehouse(path) as warehouse:
        report = spikes(warehouse, "topic")
        assert report is not None and report.spikes[0].value == "app crashes"
        assert report.spikes[0].direction == "rising" and report.spikes[0].sentiment_trend
        # A later intents run relabels every tenth conversation as a complaint.
        warehouse.con.execute(
            """
            INSERT INTO enrichments BY NAME
            SELECT * REPLACE (
                enrichment_id || ':r2' AS enrichment_id, 'run-2' AS run_id,
                CASE WHEN hash(conversation_id) % 10 = 0
                     THEN json_object('intent', 'complaint') ELSE value END AS value)
            FROM enrichments WHERE component = 'intents';
            INSERT INTO enrichment_status BY NAME
            SELECT * REPLACE ('run-2' AS run_id, processed_at + INTERVAL 1 HOUR AS processed_at)
            FROM enrichment_status WHERE component = 'intents';
            """
        )
        table = volume(warehouse, "intent")
        ours = {(p.period, p.value): p.conversations for p in table.points}
        rows = warehouse.con.execute(
            """
            SELECT CAST(date_trunc('week', c.started_at) AS DATE), l.value->>'intent', count(*)
            FROM conversations_current c JOIN labels_current l USING (conversation_id)
            WHERE l.label = 'intent.primary' GROUP BY ALL
            """
        ).fetchall()
        assert ours == {(r[0], r[1]): r[2] for r in rows}
        assert sum(ours.values()) == 20_000
        assert sum(n for (_, value), n in ours.items() if value == "complaint") > 2_000


def test_cluster_dimension(planted: Warehouse) -> None:
    """Trends per problem-statement cluster, read from the clustering run's tables."""
    from convolens.analytics import cluster_store

    with pytest.raises(ValueError, match="no clusters"):
        volume(planted, "cluster")
    cluster_store.ensure_tables(planted)
    # A finished clustering run that put every crash report in one cluster and every
    # invoice request in another (the rest unclustered), as `cluster_conversations` stores.
    planted.con.execute(
        """
        INSERT INTO runs (run_id, kind, started_at, finished_at)
        VALUES ('cluster-1', 'cluster', now(), now());
        INSERT INTO clusters
        SELECT * FROM (VALUES
            ('k-crash', 'cluster-1', 'app crashes, shared dashboard', ['app crashes'],
             'The mobile app crashes', 20, [1.0, 0.0]::FLOAT[], 'minilm', now()),
            ('k-invoice', 'cluster-1', 'invoice, accountant', ['invoice'],
             'Could you send me the invoice', 18, [0.0, 1.0]::FLOAT[], 'minilm', now()));
        INSERT INTO cluster_members
        SELECT conversation_id, version, conversation_id || ':0',
               CASE WHEN source_id LIKE 'crash%' THEN 'k-crash'
                    WHEN source_id LIKE 'invoice%' THEN 'k-invoice' END,
               0.8, 'cluster-1', 'cluster-1', now()
        FROM conversations_current;
        """
    )
    cells = {(p.period, p.value): p.conversations for p in volume(planted, "cluster").points}
    assert cells[(LAST, "app crashes, shared dashboard")] == 10
    assert cells[(MONDAY, "invoice, accountant")] == 3
    assert sum(cells.values()) == 20 + 18
    report = spikes(planted, "cluster")
    assert report is not None
    [crash] = report.spikes
    assert crash.value == "app crashes, shared dashboard" and crash.current == 10
    assert set(crash.evidence) <= ids_of(planted, "crash-angry")
