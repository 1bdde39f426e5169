"""Business joins on the sample corpus: importing the example CSVs, stitching conversations
to accounts (with the rule recorded), and the lift, value, friction and campaign marts.

The warehouse is the real sample corpus ingested and analysed by the real code; the labels
the marts read (signals, intents, resolution, sentiment) are planted through the real
enrichment runner by a fixed component, so every expected figure is computed by hand from
the example CSVs below, not from a model's output.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from convolens.analytics.business_import import (
    BusinessDataError,
    import_entities,
    stitch,
)
from convolens.analytics.business_marts import (
    campaign_view,
    friction_by_topic,
    issues_by_value,
    signal_outcome_lift,
    wilson_interval,
)
from convolens.analyze import analyze
from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BUSINESS = EXAMPLES / "business"
# The conversation folders (the recording needs Whisper and adds nothing here).
CORPUS = [EXAMPLES / name for name in ("chats", "calls", "csv", "email", "tickets")]
Z = 1.959963984540054

# Two extra chats from free-mail addresses: one is an account's listed contact, the other
# only shares the domain gmail.com with that account, which must not link them.
GMAIL_CHATS = [
    {
        "id": "gm-1",
        "source": "intercom",
        "channel": "chat",
        "started_at": "2026-10-05T10:00:00Z",
        "participants": [
            {"id": "c1", "name": "Luis Ortega", "role": "customer",
             "email": "luis.ortega.photo@gmail.com"},
            {"id": "a1", "name": "Sam Patel", "role": "agent"},
        ],
        "messages": [
            {"author": "c1", "text": "Can I get a copy of my invoice?",
             "sent_at": "2026-10-05T10:00:00Z"},
            {"author": "a1", "text": "Sure, it is on its way.", "sent_at": "2026-10-05T10:02:00Z"},
        ],
    },
    {
        "id": "gm-2",
        "source": "intercom",
        "channel": "chat",
        "started_at": "2026-10-06T10:00:00Z",
        "participants": [
            {"id": "c1", "name": "Jamie Reyes", "role": "customer", "email": "jamie.r@gmail.com"},
            {"id": "a1", "name": "Leo Martin", "role": "agent"},
        ],
        "messages": [
            {"author": "c1", "text": "Do you have a free plan?", "sent_at": "2026-10-06T10:00:00Z"},
            {"author": "a1", "text": "We have a trial.", "sent_at": "2026-10-06T10:01:00Z"},
        ],
    },
]  # fmt: skip

# source id (or email sender domain) -> labels planted on that conversation.
SIGNAL = "signal"
PLANTED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    # competitor_evaluation: Sparrow Labs (churned 2026-10-12), Quillstone (stays),
    # Halvorsen twice (first on 09-15, stays), Lumen & Co (churned 2026-11-20).
    "chat-20260910-0101": [
        (SIGNAL, {"signal": "competitor_evaluation"}),
        ("intent.primary", {"intent": "pricing_question"}),
    ],
    "meeting-20260916-0003": [
        (SIGNAL, {"signal": "competitor_evaluation"}),
        ("intent.primary", {"intent": "how_to"}),
    ],
    "call-20260915-0007": [(SIGNAL, {"signal": "competitor_evaluation"})],
    "chat-20260929-0102": [(SIGNAL, {"signal": "competitor_evaluation"})],
    "call-20261030-0021": [(SIGNAL, {"signal": "competitor_evaluation"})],
    # expansion_interest: Quillstone's seat chat; its order ORD-56094 follows the next day.
    "chat-20261027-0009": [(SIGNAL, {"signal": "expansion_interest"})],
    # double_charge: Brightlane's ticket, chat and email, and Sable & Stone's email.
    "4312": [
        ("intent.primary", {"intent": "double_charge"}),
        ("resolution.status", {"status": "solved", "escalated": True}),
    ],
    "chat-20260903-0001": [
        ("intent.primary", {"intent": "double_charge"}),
        ("resolution.status", {"status": "solved", "escalated": False}),
    ],
    "@mail.brightlane.io": [
        ("intent.primary", {"intent": "double_charge"}),
        ("resolution.status", {"status": "solved", "escalated": False}),
    ],
    "@mail.sableandstone.com": [
        ("intent.primary", {"intent": "double_charge"}),
        ("resolution.status", {"status": "solved", "escalated": False}),
    ],
    # cancel_subscription: Lumen & Co's chat and Eastgate's ticket (both churned).
    "chat-20261106-0010": [("intent.primary", {"intent": "cancel_subscription"})],
    "4461": [("intent.primary", {"intent": "cancel_subscription"})],
    # outage_or_slowness: Ironclad's chat, ticket and call (one Enterprise account).
    "chat-20261001-0006": [("intent.primary", {"intent": "outage_or_slowness"})],
    "4388": [("intent.primary", {"intent": "outage_or_slowness"})],
    "call-20261006-0012": [("intent.primary", {"intent": "outage_or_slowness"})],
    # pricing questions from prospects with no account; out_of_scope is never an issue.
    "@mail.nordhavn.se": [("intent.primary", {"intent": "pricing_question"})],
    "chat-20261020-0103": [("intent.primary", {"intent": "pricing_question"})],
    "lc-88101": [("intent.primary", {"intent": "out_of_scope"})],
    # The one negative conversation: Meridian's negotiation (campaign CMP-FALL26).
    "chat-20261112-0104": [("sentiment.conversation", {"label": "negative", "score": -0.4})],
}


def _key(doc: Doc) -> str:
    source_id = doc.conversation.source.source_id or ""
    return "@" + source_id.split("@", 1)[1] if "@" in source_id else source_id


class PlantedLabels(Component):
    """Stores the labels in PLANTED, as a real component's output would be stored."""

    name = "planted-business"
    version = "1"
    assigns: ClassVar[tuple[str, ...]] = (
        "signal",
        "intent.primary",
        "resolution.status",
        "sentiment.conversation",
    )

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        return [
            [
                Annotation(label, value, 0.9, None, [Evidence(doc.utterance_ids[0], 0, 1)])
                for label, value in PLANTED.get(_key(doc), [])
            ]
            for doc in batch
        ]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    folder = tmp_path_factory.mktemp("business")
    extra = folder / "gmail_chats.jsonl"
    extra.write_text("".join(json.dumps(chat) + "\n" for chat in GMAIL_CHATS))
    warehouse = Warehouse(folder / "demo.duckdb")
    report = ingest_paths(warehouse, [*CORPUS, extra])
    assert not report.rejects
    analyze(warehouse)
    enrich(warehouse, [PlantedLabels()])
    for kind in ("campaigns", "accounts", "orders"):
        import_entities(warehouse, BUSINESS / f"{kind}.csv", kind)
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def stitched(demo: Warehouse) -> Warehouse:
    result = stitch(demo)
    assert result.conversations == 46
    return demo


def _cid(warehouse: Warehouse, key: str) -> str:
    pattern = f"%{key}" if key.startswith("@") else key
    rows = warehouse.query(
        "SELECT conversation_id FROM conversations_current WHERE source_id LIKE ?", [pattern]
    )
    assert len(rows) == 1, key
    return rows[0]["conversation_id"]


def _link(warehouse: Warehouse, key: str) -> tuple[str, str, str] | None:
    rows = warehouse.query(
        "SELECT account_id, rule, matched_value FROM conversation_accounts "
        "WHERE conversation_id = ?",
        [_cid(warehouse, key)],
    )
    return (rows[0]["account_id"], rows[0]["rule"], rows[0]["matched_value"]) if rows else None


def _accounts() -> list[dict[str, str]]:
    with (BUSINESS / "accounts.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


# -- the example files -------------------------------------------------------------------
def test_example_accounts_are_consistent_with_the_corpus():
    accounts = {a["account_id"]: a for a in _accounts()}
    assert 30 <= len(accounts) <= 60
    assert {a["plan"] for a in accounts.values()} == {"Starter", "Team", "Business", "Enterprise"}
    readme = (EXAMPLES / "README.md").read_text()
    for account_id in ("ACC-1042", "ACC-2210", "ACC-1811", "ACC-1330", "ACC-1519", "ACC-2101"):
        assert account_id in accounts and account_id in readme
    assert accounts["ACC-1042"]["email_domain"] == "brightlane.io"
    assert accounts["ACC-1519"]["churned_at"] == "2026-11-20"  # "Your subscription ends on Nov 20"
    assert sum(1 for a in accounts.values() if a["churned_at"]) == 11
    with (BUSINESS / "orders.csv").open(newline="") as handle:
        orders = {o["order_id"]: o for o in csv.DictReader(handle)}
    for order_id in ("ORD-55812", "ORD-55907", "ORD-55990", "ORD-56033", "ORD-56120", "ORD-56188"):
        assert order_id in orders and orders[order_id]["account_id"] in accounts
    with (BUSINESS / "campaigns.csv").open(newline="") as handle:
        assert "CMP-FALL26" in {c["campaign_id"] for c in csv.DictReader(handle)}


# -- stitching ------------------------------------------------------------------------------
def test_stitching_records_the_rule_for_each_conversation(stitched: Warehouse):
    w = stitched
    assert _link(w, "chat-20260903-0001") == ("ACC-1042", "explicit_id", "ACC-1042")
    # Zendesk links organisation 55, not an account id: the order on the ticket decides.
    assert _link(w, "4312") == ("ACC-1042", "order_id", "ORD-55812")
    assert _link(w, "4347") == ("ACC-1549", "order_id", "ORD-55990")
    # The Brightlane email thread carries no id at all: Maria's domain does.
    assert _link(w, "@mail.brightlane.io") == ("ACC-1042", "email_domain", "brightlane.io")
    assert _link(w, "4330") == ("ACC-1725", "email_domain", "bluefjord.studio")
    # A listed contact address wins over the domain.
    assert _link(w, "4461") == ("ACC-2350", "email", "tobias.klein@eastgate-consulting.de")
    assert _link(w, "gm-1") == ("ACC-2455", "email", "luis.ortega.photo@gmail.com")
    # gmail.com names no company, even though an account lists it as its domain.
    assert _link(w, "gm-2") is None
    # Prospects without an account stay unstitched.
    assert _link(w, "@mail.nordhavn.se") is None
    assert _link(w, "chat-20261020-0103") is None


def test_stitch_counts_and_rerun(stitched: Warehouse):
    again = stitch(stitched)
    assert again.by_rule == {"explicit_id": 27, "order_id": 2, "email": 4, "email_domain": 10}
    assert (again.stitched, again.unmatched, again.ambiguous) == (43, 3, [])
    rows = stitched.query("SELECT DISTINCT run_id FROM conversation_accounts")
    assert [r["run_id"] for r in rows] == [again.run_id]  # rebuilt, not appended


def test_ambiguous_domain_is_not_guessed(tmp_path: Path):
    chat = dict(GMAIL_CHATS[1], id="tw-1")
    chat["participants"] = [
        {"id": "c1", "name": "Ops", "role": "customer", "email": "ops@twinpeaks.example"},
        {"id": "a1", "name": "Leo Martin", "role": "agent"},
    ]
    (tmp_path / "chat.jsonl").write_text(json.dumps(chat) + "\n")
    (tmp_path / "accounts.csv").write_text(
        "account_id,name,email_domain\nACC-1,Twin Peaks East,twinpeaks.example\n"
        "ACC-2,Twin Peaks West,TwinPeaks.example\n"
    )
    with Warehouse(tmp_path / "w.duckdb") as w:
        ingest_paths(w, [tmp_path / "chat.jsonl"])
        import_entities(w, tmp_path / "accounts.csv", "accounts")
        result = stitch(w)
        assert result.stitched == 0
        assert result.ambiguous == [_cid(w, "tw-1")]


# -- import ---------------------------------------------------------------------------------
def test_import_is_idempotent_and_logged(tmp_path: Path):
    with Warehouse(tmp_path / "w.duckdb") as w:
        first = import_entities(w, BUSINESS / "accounts.csv", "accounts")
        second = import_entities(w, BUSINESS / "accounts.csv", "accounts")
        assert (first.rows, first.inserted, first.replaced) == (48, 48, 0)
        assert (second.rows, second.inserted, second.replaced) == (48, 0, 48)
        assert first.extra_columns == ["seats"]
        update = tmp_path / "update.csv"
        update.write_text('Account_ID,ARR,churned_at\nACC-1042,"$31,000",2026-12-01\n')
        import_entities(w, update, "accounts")
        (count,) = w.con.execute("SELECT count(*) FROM accounts").fetchone()
        row = w.query("SELECT arr, churned_at, plan FROM accounts WHERE account_id = 'ACC-1042'")
        assert count == 48
        assert row[0]["arr"] == 31000.0
        assert row[0]["churned_at"] == datetime(2026, 12, 1, tzinfo=UTC)
        assert row[0]["plan"] is None  # a re-import replaces the whole row
        log = w.query(
            "SELECT kind, rows, inserted, replaced FROM entity_imports ORDER BY imported_at"
        )
        assert [(r["rows"], r["inserted"], r["replaced"]) for r in log] == [
            (48, 48, 0),
            (48, 0, 48),
            (1, 0, 1),
        ]
        contacts = w.query("SELECT contact_emails FROM accounts WHERE account_id = 'ACC-2350'")
        assert contacts[0]["contact_emails"] == ["tobias.klein@eastgate-consulting.de"]


def test_parquet_import(tmp_path: Path):
    parquet = tmp_path / "orders.parquet"
    with Warehouse(tmp_path / "w.duckdb") as w:
        w.con.execute(
            f"COPY (SELECT * FROM read_csv('{BUSINESS / 'orders.csv'}')) TO '{parquet}' "
            "(FORMAT parquet)"
        )
        result = import_entities(w, parquet, "orders")
        assert result.rows == 17
        assert result.warnings  # the accounts are not imported yet
        row = w.query("SELECT amount, ordered_at FROM orders WHERE order_id = 'ORD-56094'")
        assert row[0]["amount"] == pytest.approx(8257.31)
        assert row[0]["ordered_at"] == datetime(2026, 10, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("accounts", "name,email_domain\nBrightlane,brightlane.io\n", "'account_id'"),
        ("orders", "order_id,amount\nORD-1,10\n", "'account_id'"),
        ("campaigns", "name,channel\nFall,email\n", "'campaign_id'"),
        ("accounts", "account_id,arr\nACC-1,twelve\n", "'arr' has 'twelve'"),
        # A decimal comma is reported, not read as 1.2005.
        ("accounts", 'account_id,arr\nACC-1,"1.200,50"\n', "'arr' has '1.200,50'"),
        ("accounts", "account_id,churned_at\nACC-1,11/16/2026\n", "not a date"),
        ("accounts", "account_id,churned_at\nACC-1,next week\n", "'churned_at' has 'next week'"),
        ("accounts", "account_id\nACC-1\nACC-1\n", "'ACC-1' (2 rows)"),
        ("accounts", "account_id,name\n,Nameless\n", "empty 'account_id'"),
    ],
)
def test_import_errors_name_the_column_and_the_file(
    tmp_path: Path, kind: str, text: str, message: str
):
    path = tmp_path / "bad_file.csv"
    path.write_text(text)
    with Warehouse(tmp_path / "w.duckdb") as w:
        with pytest.raises(BusinessDataError) as caught:
            import_entities(w, path, kind)
        assert message in str(caught.value)
        assert "bad_file.csv" in str(caught.value)
        # Nothing half-imported.
        (count,) = w.con.execute(f"SELECT count(*) FROM {kind}").fetchone()
        assert count == 0


def test_marts_explain_what_is_missing(tmp_path: Path):
    with Warehouse(tmp_path / "w.duckdb") as w:
        with pytest.raises(BusinessDataError, match="import accounts"):
            stitch(w)
        import_entities(w, BUSINESS / "accounts.csv", "accounts")
        with pytest.raises(BusinessDataError, match="convolens stitch"):
            signal_outcome_lift(w)
        with pytest.raises(BusinessDataError, match="unknown dimension"):
            friction_by_topic(w, dimension="mood")


def test_marts_on_a_read_only_warehouse(tmp_path: Path):
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(c) + "\n" for c in GMAIL_CHATS))
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as w:
        ingest_paths(w, [tmp_path / "chats.jsonl"])
        analyze(w)
    # Nothing imported: the marts that need no business data still answer.
    with Warehouse(path, read_only=True) as w:
        assert friction_by_topic(w) == []
        assert campaign_view(w).conversations == 2
        with pytest.raises(BusinessDataError, match="import accounts"):
            issues_by_value(w)
    with Warehouse(path) as w:
        import_entities(w, BUSINESS / "accounts.csv", "accounts")
        assert stitch(w).by_rule["email"] == 1
    with Warehouse(path, read_only=True) as w:
        lift = signal_outcome_lift(w, "churn_risk")
        assert lift.with_signal.accounts == 0 and lift.risk_ratio is None
        assert lift.all_accounts.accounts + lift.excluded == 48
        assert issues_by_value(w) == []


# -- lift -----------------------------------------------------------------------------------
def _wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 0/10 -> 0 to 0.2775,
    # 81/263 -> 0.2553 to 0.3662.
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_competitor_evaluation_churn_lift_by_hand(stitched: Warehouse):
    lift = signal_outcome_lift(
        stitched, "competitor_evaluation", "churn", 90, as_of=datetime(2027, 3, 1, tzinfo=UTC)
    )
    # Exposed: Sparrow Labs and Lumen churned within 90 days of their first signal;
    # Quillstone and Halvorsen did not. Not exposed: 44 accounts, 2 of which churned before
    # the data starts (not at risk); of the other 42, seven churned within 90 days of it.
    exposed = {a.account_id: a for a in lift.accounts}
    assert set(exposed) == {"ACC-2318", "ACC-2101", "ACC-2210", "ACC-1519"}
    assert exposed["ACC-2210"].first_seen_at == datetime(2026, 9, 15, 14, 0, tzinfo=UTC)
    assert exposed["ACC-2210"].conversation_id == _cid(stitched, "call-20260915-0007")
    assert exposed["ACC-1519"].outcome_in_window and not exposed["ACC-2101"].outcome_in_window
    assert (lift.with_signal.accounts, lift.with_signal.outcomes) == (4, 2)
    assert (lift.without_signal.accounts, lift.without_signal.outcomes) == (42, 7)
    assert (lift.all_accounts.accounts, lift.all_accounts.outcomes) == (46, 9)
    assert lift.excluded == 2 and lift.followup_incomplete == 0
    assert lift.baseline_start == datetime(2026, 9, 2, 9, 14, tzinfo=UTC)
    assert (lift.with_signal.ci_low, lift.with_signal.ci_high) == pytest.approx(_wilson(2, 4))
    assert lift.all_accounts.rate == pytest.approx(9 / 46)
    # Risk ratio (2/4) / (7/42) = 3 with the Katz log interval.
    se = math.sqrt(1 / 2 - 1 / 4 + 1 / 7 - 1 / 42)
    assert lift.risk_ratio == pytest.approx(3.0)
    assert lift.risk_ratio_ci == pytest.approx((3 * math.exp(-Z * se), 3 * math.exp(Z * se)))
    # Lift against all accounts (2/4) / (9/46) = 23/9, delta-method interval.
    variance = (7 / (2 * 9)) ** 2 * 2 * (1 - 2 / 4) + (1 / 9) ** 2 * 7 * (1 - 7 / 42)
    assert lift.lift == pytest.approx(23 / 9)
    spread = Z * math.sqrt(variance)
    assert lift.lift_ci == pytest.approx((23 / 9 * math.exp(-spread), 23 / 9 * math.exp(spread)))


def test_lift_window_and_other_outcomes(stitched: Warehouse):
    # A 30-day window loses Sparrow Labs (churned 32 days after its signal).
    short = signal_outcome_lift(stitched, "competitor_evaluation", "churn", 30)
    assert (short.with_signal.accounts, short.with_signal.outcomes) == (4, 1)
    # Orders: Quillstone ordered seats the day after asking; eight other accounts ordered
    # within 90 days of the start of the data.
    orders = signal_outcome_lift(stitched, "expansion_interest", "order", 90)
    assert (orders.with_signal.accounts, orders.with_signal.outcomes) == (1, 1)
    assert (orders.without_signal.accounts, orders.without_signal.outcomes) == (47, 8)
    assert orders.risk_ratio == pytest.approx(47 / 8)
    # Any dimension: accounts whose issue was a double charge.
    charged = signal_outcome_lift(stitched, "double_charge", dimension="intent")
    assert {a.account_id for a in charged.accounts} == {"ACC-1042", "ACC-2190"}
    # Sable & Stone churned on 10-02, before its email of 10-19: not at risk.
    assert charged.with_signal.accounts == 1 and charged.excluded == 3


# -- value, friction, campaigns -------------------------------------------------------------
def test_issues_weighted_by_arr(stitched: Warehouse):
    rows = {r.issue: r for r in issues_by_value(stitched, "intent")}
    total_arr = sum(float(a["arr"]) for a in _accounts())
    assert [r.issue for r in issues_by_value(stitched)] == [
        "outage_or_slowness",  # Ironclad, Enterprise
        "double_charge",  # Brightlane (and Sable & Stone, no ARR)
        "how_to",  # Quillstone
        "cancel_subscription",
        "pricing_question",
    ]
    outage = rows["outage_or_slowness"]
    assert (outage.conversations, outage.accounts, outage.total_arr) == (3, 1, 158400)
    assert outage.churned_arr == 158400 and outage.arr_share == pytest.approx(158400 / total_arr)
    double = rows["double_charge"]
    assert (double.conversations, double.stitched_conversations, double.accounts) == (4, 4, 2)
    assert (double.total_arr, double.churned_accounts, double.churned_arr) == (29952, 1, 0)
    cancel = rows["cancel_subscription"]
    assert (cancel.total_arr, cancel.churned_arr) == (3744 + 2880, 3744 + 2880)
    pricing = rows["pricing_question"]
    assert (pricing.conversations, pricing.stitched_conversations, pricing.total_arr) == (3, 1, 720)
    assert "out_of_scope" not in rows


def test_friction_per_issue(stitched: Warehouse):
    rows = {r.issue: r for r in friction_by_topic(stitched, "intent")}
    double = rows["double_charge"]
    keys = ["4312", "chat-20260903-0001", "@mail.brightlane.io", "@mail.sableandstone.com"]
    metrics = [
        stitched.query(
            "SELECT exchanges, coalesce(duration_s, elapsed_s) AS handle "
            "FROM metrics_conversation_current WHERE conversation_id = ?",
            [_cid(stitched, key)],
        )[0]
        for key in keys
    ]
    assert double.conversations == 4
    assert double.avg_exchanges == pytest.approx(sum(m["exchanges"] for m in metrics) / 4)
    assert double.avg_handle_time_s == pytest.approx(sum(m["handle"] for m in metrics) / 4)
    assert double.escalation_rate == pytest.approx(0.25)
    # Brightlane wrote again within a week after the ticket (chat next day) and after the
    # chat (email five days later), not after the email; Sable & Stone never came back.
    assert (double.repeat_contacts, double.repeat_contact_rate) == (2, 0.5)
    assert rows["outage_or_slowness"].repeat_contacts == 2  # chat+ticket same day, call 5 days on
    one_day = {r.issue: r for r in friction_by_topic(stitched, "intent", repeat_days=1)}
    assert one_day["double_charge"].repeat_contacts == 1


def test_campaign_view(stitched: Warehouse):
    view = campaign_view(stitched)
    assert [c.campaign_id for c in view.campaigns] == ["CMP-FALL26"]
    fall = view.campaigns[0]
    assert fall.name == "Fall 2026 Business offer" and fall.channel == "email"
    # Seven conversations name the campaign; Quillstone's onboarding meeting and SSO ticket
    # belong to it through the account it acquired.
    assert (fall.conversations, fall.via_conversation, fall.via_account) == (9, 7, 2)
    assert fall.accounts == 5
    assert (fall.confused, fall.negative) == (2, 1)
    assert fall.confused_share == pytest.approx(2 / 9)
    assert view.conversations == 46
    assert view.confused_share == pytest.approx(4 / 46)
    assert view.negative_share == pytest.approx(1 / 46)
    october = campaign_view(
        stitched,
        filters=ConversationFilter(
            since=datetime(2026, 10, 1, tzinfo=UTC), until=datetime(2026, 11, 1, tzinfo=UTC)
        ),
    )
    assert october.campaigns[0].conversations == 2  # Atelier Laurent's call, Quillstone's chat
