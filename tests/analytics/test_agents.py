"""Agent scorecards and human-vs-AI comparison on the sample corpus and on a call small
enough to work out by hand.

The corpus is ingested and analysed by the real code; resolution and sentiment labels are
planted through the real enrichment runner so the rates are known. Expected figures are
recomputed here in plain Python from the metrics tables and utterances, independently of
the SQL under test.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from convolens.analytics.agents import MEASURES, agent_scorecards, human_vs_ai
from convolens.analyze import analyze
from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CORPUS = [EXAMPLES / name for name in ("chats", "calls", "csv", "email", "tickets")]


def _status(status: str, escalated: bool = False) -> tuple[str, dict[str, Any]]:
    return "resolution.status", {"status": status, "escalated": escalated}


def _mood(start: float, end: float, basis: str = "customer") -> tuple[str, dict[str, Any]]:
    value = {"label": "neutral", "start": start, "end": end, "trajectory_basis": basis}
    return "sentiment.conversation", value


PLANTED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    # Dana Ruiz: 5 of her 10 conversations labelled, 3 solved, 1 escalated.
    "call-20260915-0007": [_status("solved"), _mood(-0.2, 0.1)],
    "chat-20260929-0102": [_status("solved"), _mood(0.5, -0.5, basis="all")],  # not the customer
    "chat-20261020-0103": [_status("unresolved")],
    "chat-20261112-0104": [_status("solved"), _mood(0.1, -0.1)],
    "call-20261019-0016": [_status("escalated", escalated=True)],
    # Grace Kim, both escalated.
    "chat-20261001-0006": [_status("solved", escalated=True)],
    "call-20261006-0012": [_status("pending", escalated=True), _mood(-0.6, 0.0)],
    # The bot alone, and the bot handing over to Sam Patel.
    "chat-20261015-0008": [_status("solved"), _mood(0.2, -0.4)],
    "chat-20260903-0001": [_status("solved")],
}


class PlantedOutcomes(Component):
    name = "planted-outcomes"
    version = "1"
    assigns: ClassVar[tuple[str, ...]] = ("resolution.status", "sentiment.conversation")

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        return [
            [
                Annotation(label, value, 0.9, None, [Evidence(doc.utterance_ids[0], 0, 1)])
                for label, value in PLANTED.get(doc.conversation.source.source_id or "", [])
            ]
            for doc in batch
        ]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    warehouse = Warehouse(tmp_path_factory.mktemp("agents") / "demo.duckdb")
    assert not ingest_paths(warehouse, CORPUS).rejects
    analyze(warehouse)
    enrich(warehouse, [PlantedOutcomes()])
    yield warehouse
    warehouse.close()


# -- expected values, recomputed in Python ---------------------------------------------------
def _patience(warehouse: Warehouse, conversation_id: str, participant_ids: set[str]) -> list[float]:
    """Pauses before each of these participants' replies to a customer, by the definition:
    the segment that ended last before the turn is the customer's, the turn outlasts it."""
    rows = warehouse.query(
        "SELECT u.participant_id, p.role, u.start_s, u.end_s FROM utterances_current u "
        "JOIN participants_current p USING (conversation_id, version, participant_id) "
        "WHERE u.conversation_id = ? AND NOT u.internal AND u.start_s IS NOT NULL "
        "ORDER BY u.start_s, u.seq",
        [conversation_id],
    )
    pauses, floor_end, floor_role = [], None, None
    for row in rows:
        if (
            row["participant_id"] in participant_ids
            and floor_role == "customer"
            and row["end_s"] > floor_end
        ):
            pauses.append(max(0.0, row["start_s"] - floor_end))
        if floor_end is None or row["end_s"] > floor_end:
            floor_end, floor_role = row["end_s"], row["role"]
    return pauses


def _expected(warehouse: Warehouse, agent: str) -> dict[str, Any]:
    rows = warehouse.query(
        "SELECT p.conversation_id, p.participant_id, mp.talk_share, mp.question_count, "
        "mp.longest_monologue_s, mp.interruptions, mp.message_count, m.timed, "
        "coalesce(m.duration_s, m.elapsed_s) AS handle "
        "FROM participants_current p "
        "JOIN metrics_participant_current mp USING (conversation_id, version, participant_id) "
        "JOIN metrics_conversation_current m USING (conversation_id, version) "
        "WHERE p.name = ? AND p.role IN ('agent', 'bot')",
        [agent],
    )
    per: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["message_count"] > 0:
            per[row["conversation_id"]]["rows"].append(row)
    labels = {
        (r["conversation_id"], r["label"]): json.loads(r["value"])
        for r in warehouse.query("SELECT conversation_id, label, value FROM labels_current")
    }

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    talk, questions, monologue, interruptions, handle, pauses, change = [], [], [], [], [], [], []
    statuses = []
    for cid, data in per.items():
        parts = data["rows"]
        timed = parts[0]["timed"]
        handle.append(parts[0]["handle"])
        questions.append(sum(p["question_count"] for p in parts))
        if timed:
            talk.append(sum(p["talk_share"] for p in parts))
            monologue.append(max(p["longest_monologue_s"] for p in parts))
            interruptions.append(sum(p["interruptions"] for p in parts))
            pauses += _patience(warehouse, cid, {p["participant_id"] for p in parts})
        mood = labels.get((cid, "sentiment.conversation"))
        if mood and mood["trajectory_basis"] == "customer":
            change.append(mood["end"] - mood["start"])
        if (cid, "resolution.status") in labels:
            statuses.append(labels[(cid, "resolution.status")])
    return {
        "conversations": len(per),
        "timed_conversations": sum(1 for d in per.values() if d["rows"][0]["timed"]),
        "handle_time_s": mean(handle),
        "talk_share": mean(talk),
        "questions_asked": mean(questions),
        "longest_monologue_s": mean(monologue),
        "interruptions": mean(interruptions),
        "patience_s": mean(pauses),
        "patience_turns": len(pauses),
        "sentiment_change": mean(change),
        "resolution_rate": mean([s["status"] == "solved" for s in statuses]),
        "escalation_rate": mean([s["escalated"] for s in statuses]),
        "labelled_conversations": len(statuses),
    }


# -- the sample corpus ----------------------------------------------------------------------
@pytest.mark.parametrize("agent", ["Dana Ruiz", "Marcus Webb", "Leo Martin", "Priya Shah", "Nori"])
def test_scorecards_match_the_metrics_tables(demo: Warehouse, agent: str):
    cards = {c.agent: c for c in agent_scorecards(demo).agents}
    measures = cards[agent].measures.model_dump()
    for name, value in _expected(demo, agent).items():
        assert measures[name] == pytest.approx(value), name


def test_dana_ruiz_by_hand(demo: Warehouse):
    dana = next(c for c in agent_scorecards(demo).agents if c.agent == "Dana Ruiz")
    m = dana.measures
    # Four sales chats, the Nordhavn email, Quillstone's chat (with Sam), two discovery
    # calls, Halvorsen's security review and Brightlane's QBR (with Marcus).
    assert (m.conversations, m.timed_conversations) == (10, 4)
    assert (m.labelled_conversations, m.resolution_rate, m.escalation_rate) == (5, 0.6, 0.2)
    assert m.sentiment_change == pytest.approx((0.3 - 0.2) / 2)  # the "all" basis is ignored
    assert dana.kind == "human"
    assert 0.2 < m.talk_share < 0.5 and m.patience_turns > 20


def test_ranks_percentiles_and_quartiles(demo: Warehouse):
    team = agent_scorecards(demo, kind="human")
    assert {c.agent for c in team.agents} == {
        "Dana Ruiz",
        "Ethan Brooks",
        "Grace Kim",
        "Leo Martin",
        "Marcus Webb",
        "Priya Shah",
        "Sam Patel",
    }
    for measure, better in MEASURES.items():
        values = [c.stats[measure].value for c in team.agents if c.stats[measure].value is not None]
        best = max(values) if better == "higher" else min(values)
        worst = min(values) if better == "higher" else max(values)
        ordered = sorted(values, reverse=better == "higher")
        quarter = ordered[: math.ceil(len(values) / 4)]
        assert team.team_mean[measure] == pytest.approx(sum(values) / len(values))
        assert team.top_quartile[measure] == pytest.approx(sum(quarter) / len(quarter))
        for card in team.agents:
            stat = card.stats[measure]
            assert stat.better == better and stat.ranked == len(values)
            if stat.value is None:
                assert stat.rank is None and stat.percentile is None
                continue
            ahead = [
                v for v in values if (v > stat.value if better == "higher" else v < stat.value)
            ]
            assert stat.rank == 1 + len(ahead)
            assert stat.percentile == pytest.approx(
                100 * (len(values) - stat.rank) / (len(values) - 1)
            )
            if stat.value == best:
                assert (stat.rank, stat.percentile) == (1, 100.0)
        lone_worst = [c for c in team.agents if c.stats[measure].value == worst]
        if len(lone_worst) == 1 and best != worst:
            assert lone_worst[0].stats[measure].percentile == 0.0
    # Escalation among the five humans with labelled conversations: Sam 0, Dana 1 of 5,
    # and Grace, Leo (Ironclad's chat, with Grace) and Ethan (the 3-way call) 1 of 1.
    escalation = {c.agent: c.stats["escalation_rate"] for c in team.agents}
    assert {a: (s.value, s.rank, s.percentile) for a, s in escalation.items() if s.rank} == {
        "Sam Patel": (0.0, 1, 100.0),
        "Dana Ruiz": (0.2, 2, 75.0),
        "Grace Kim": (1.0, 3, 50.0),
        "Leo Martin": (1.0, 3, 50.0),
        "Ethan Brooks": (1.0, 3, 50.0),
    }
    assert escalation["Priya Shah"].value is None
    assert team.team_mean["escalation_rate"] == pytest.approx(3.2 / 5)
    assert team.top_quartile["escalation_rate"] == pytest.approx(0.1)  # Sam and Dana


def test_date_range_and_filters(demo: Warehouse):
    early = agent_scorecards(demo, ConversationFilter(until=datetime(2026, 9, 16, tzinfo=UTC)))
    cards = {c.agent: c.measures.conversations for c in early.agents}
    assert cards["Dana Ruiz"] == 2  # the 09-10 sales chat and the 09-15 discovery call
    assert "Grace Kim" not in cards
    calls = agent_scorecards(demo, ConversationFilter(channel="call"))
    assert all(c.measures.timed_conversations == c.measures.conversations for c in calls.agents)
    assert "Nori" not in {c.agent for c in calls.agents}
    busy = agent_scorecards(demo, min_conversations=10)
    assert {c.agent for c in busy.agents} == {"Dana Ruiz", "Nori", "Priya Shah", "Sam Patel"}


def test_human_vs_ai_on_the_corpus(demo: Warehouse):
    result = human_vs_ai(demo)
    assert result.ai.agents == ["Nori"]
    assert "Sam Patel" in result.human.agents and "Nori" not in result.human.agents
    nori = _expected(demo, "Nori")
    assert result.ai.measures.conversations == nori["conversations"] == 13
    assert result.ai.measures.resolution_rate == pytest.approx(nori["resolution_rate"])
    assert result.ai.measures.talk_share is None  # the bot only chats
    handled = {h.handled_by: h for h in result.by_handling}
    # Oakridge's billing question was answered by Nori alone.
    assert handled["ai_only"].conversations == 1
    assert handled["ai_only"].resolution_rate == 1.0
    assert handled["ai_only"].sentiment_change == pytest.approx(-0.6)
    assert handled["ai_and_human"].conversations == 12
    assert sum(h.conversations for h in result.by_handling) == 44
    assert result.difference["questions_asked"] == pytest.approx(
        result.ai.measures.questions_asked - result.human.measures.questions_asked
    )


# -- a call worked out by hand ----------------------------------------------------------------
MINI = [
    {
        "id": "mini-call",
        "source": "aircall",
        "channel": "call",
        "started_at": "2026-10-01T10:00:00Z",
        "agent": "Alex Lee",
        "participants": [
            {"id": "c1", "name": "Cara Diaz", "role": "customer"},
            {"id": "a1", "name": "Alex Lee", "role": "agent"},
        ],
        "messages": [
            {"author": "c1", "start": 0.0, "end": 5.0,
             "text": "Hi, my nightly export keeps failing."},
            {"author": "a1", "start": 5.8, "end": 10.0,
             "text": "Sorry to hear that. Which export is it?"},
            {"author": "c1", "start": 10.5, "end": 20.0,
             "text": "The CSV export of the shipments table, it times out after a few minutes."},
            {"author": "a1", "start": 12.0, "end": 12.5, "text": "Mm-hmm."},
            {"author": "a1", "start": 21.2, "end": 25.0,
             "text": "Got it. Is it the full table or a filtered view?"},
            {"author": "c1", "start": 24.0, "end": 30.0,
             "text": "The full table, about two million rows."},
            {"author": "a1", "start": 30.0, "end": 40.0,
             "text": "Okay. I will split it into daily files so each one finishes in time."},
        ],
    },
    {
        "id": "mini-chat",
        "source": "intercom",
        "channel": "chat",
        "started_at": "2026-10-02T10:00:00Z",
        "agent": "Alex Lee",
        "participants": [
            {"id": "b1", "name": "Nori", "role": "bot"},
            {"id": "c1", "name": "Cara Diaz", "role": "customer"},
            {"id": "a1", "name": "Alex Lee", "role": "agent"},
        ],
        "messages": [
            {"author": "b1", "text": "Hi! How can we help?", "sent_at": "2026-10-02T10:00:00Z"},
            {"author": "c1", "text": "Did the split export run?",
             "sent_at": "2026-10-02T10:00:30Z"},
            {"author": "a1", "text": "Yes, all seven files finished.",
             "sent_at": "2026-10-02T10:04:30Z"},
        ],
    },
    {
        "id": "mini-mail",
        "source": "helpdesk",
        "channel": "email",
        "started_at": "2026-10-03T10:00:00Z",
        "agent": "Casey Wong",
        "participants": [{"id": "c1", "name": "Cara Diaz", "role": "customer"}],
        "messages": [
            {"author": "c1", "text": "Thanks for the fix!", "sent_at": "2026-10-03T10:00:00Z"},
        ],
    },
]  # fmt: skip


@pytest.fixture
def mini(tmp_path: Path) -> Iterator[Warehouse]:
    source = tmp_path / "mini.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in MINI))
    with Warehouse(tmp_path / "mini.duckdb") as warehouse:
        assert not ingest_paths(warehouse, [source]).rejects
        analyze(warehouse)
        yield warehouse


def test_a_call_worked_out_by_hand(mini: Warehouse):
    cards = {c.agent: c for c in agent_scorecards(mini).agents}
    alex = cards["Alex Lee"].measures
    assert (alex.conversations, alex.timed_conversations) == (2, 1)
    # Alex speaks 4.2 + 0.5 + 3.8 + 10 = 18.5 s of 18.5 + 20.5 s of speech.
    assert alex.talk_share == pytest.approx(18.5 / 39)
    # Replies after Cara stopped: 0.8 s, 1.2 s and 0 s (Cara ran into Alex's turn, and he
    # answered as she ended); the "mm-hmm" inside her turn is no reply.
    assert alex.patience_s == pytest.approx((0.8 + 1.2 + 0.0) / 3)
    assert alex.patience_turns == 3
    assert alex.interruptions == 0  # the backchannel is not an interruption
    assert alex.questions_asked == pytest.approx((2 + 0) / 2)  # two in the call, none in chat
    assert alex.handle_time_s == pytest.approx((40.0 + 270.0) / 2)  # call length, chat elapsed
    # The assigned agent of a conversation where no agent spoke still gets it.
    casey = cards["Casey Wong"].measures
    assert (casey.conversations, casey.talk_share, casey.questions_asked) == (1, None, None)
    assert cards["Nori"].kind == "ai"


def test_human_vs_ai_by_hand(mini: Warehouse):
    result = human_vs_ai(mini)
    assert result.ai.agents == ["Nori"] and result.human.agents == ["Alex Lee", "Casey Wong"]
    assert (result.ai.measures.conversations, result.human.measures.conversations) == (1, 3)
    handled = {h.handled_by: h.conversations for h in result.by_handling}
    assert handled == {"ai_and_human": 1, "human_only": 2}
