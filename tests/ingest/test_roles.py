"""Roles of text transcripts: the sidecar, the speakers' labels, what they say; meetings and
everyday dialogues stay unknown. Real transcripts from ../shared/data where they exist."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from convolens.ingest.base import IngestOptions, Parsed, SourceFile
from convolens.ingest.roles import name_role, transcript_roles
from convolens.ingest.sidecar import Sidecar
from convolens.ingest.subtitles import SubtitleAdapter
from convolens.model import Role

DATA = Path(__file__).resolve().parent.parent / "data" / "subtitles"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
DIALOGSUM = SHARED / "summaries" / "dialogsum" / "dialogsum.dev.jsonl"
QMSUM = SHARED / "meetings" / "qmsum"


def roles_of(path: Path, options: IngestOptions | None = None) -> dict[str, Role]:
    (result,) = SubtitleAdapter(options).parse(SourceFile.read(path))
    assert isinstance(result, Parsed), result
    return {p.name or p.participant_id: p.role for p in result.conversation.participants}


def write(tmp_path: Path, name: str, cues: list[tuple[str, str]], meta: str | None = None) -> Path:
    blocks = [
        f"00:00:{2 * i:02d}.000 --> 00:00:{2 * i + 1:02d}.500\n<v {who}>{text}"
        for i, (who, text) in enumerate(cues)
    ]
    path = tmp_path / name
    path.write_text("WEBVTT\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")
    if meta is not None:
        (tmp_path / f"{path.stem}.meta.json").write_text(meta, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("label", "role"),
    [
        ("Agent", Role.agent),
        ("AGENT", Role.agent),
        ("Agent Smith", Role.agent),
        ("Support", Role.agent),
        ("Acme Support", Role.agent),
        ("Rep", Role.agent),
        ("Customer Service", Role.agent),  # the service, not the customer
        ("Customer Care Team", Role.agent),
        ("IT Helpdesk", Role.agent),
        ("support@northwind.io", Role.agent),  # a support mailbox
        ("Customer", Role.customer),
        ("Caller", Role.customer),
        ("Client 2", Role.customer),
        ("jo.smith@gmail.com", Role.customer),
        ("Chatbot", Role.bot),
        ("Virtual Assistant", Role.bot),
        ("Speaker 1", None),
        ("SPEAKER_00", None),
        ("#Person1#", None),
        ("Dana Ruiz", None),
        ("Project Manager", None),  # AMI meeting roles are no service roles
        ("User Interface", None),
        ("Hon. Mona Fortier (Associate Minister of Finance)", None),
    ],
)
def test_speaker_labels(label: str, role: Role | None) -> None:
    assert name_role(label) is role


def test_organisation_domains_and_greeted_names() -> None:
    assert name_role("dana@acme.com", agent_domains=["acme.com"]) is Role.agent
    assert name_role("dana@eu.acme.com", agent_domains=["@acme.com"]) is Role.agent
    # With the organisation's domain known, another company's address is the customer's.
    assert name_role("tom@widgets.co", agent_domains=["acme.com"]) is Role.customer
    assert name_role("tom@widgets.co") is None
    assert name_role("Acme", organisations=["Acme"]) is Role.agent
    assert name_role("dana@acme-bank.com", organisations=["Acme Bank"]) is Role.agent
    assert name_role("Tom", organisations=["Acme"]) is None


def test_vtt_with_speakers_named_agent_and_customer() -> None:
    assert roles_of(DATA / "agent-customer-call.vtt") == {
        "Agent": Role.agent,
        "Customer": Role.customer,
    }


def test_srt_rep_and_caller() -> None:
    assert roles_of(DATA / "agent-customer-call.srt") == {
        "Rep": Role.agent,
        "Caller": Role.customer,
    }


def test_named_agent_makes_the_other_main_speaker_the_customer() -> None:
    # "Agent Smith" by label; Maria by being the other side; the one-word splinter
    # SPEAKER_02 ("Thanks!") is nobody's side as far as anything says.
    assert roles_of(DATA / "support-call.srt") == {
        "Agent Smith": Role.agent,
        "Maria Lopez": Role.customer,
        "SPEAKER_02": Role.unknown,
    }


def test_sidecar_still_wins_over_labels_and_words(tmp_path: Path) -> None:
    assert roles_of(DATA / "call-0042.vtt") == {
        "Dana Ruiz": Role.agent,
        "Tom Becker": Role.customer,
    }
    cues = [("Agent", "Thank you for calling Acme, how can I help?"), ("Customer", "Hi there.")]
    path = write(tmp_path, "odd.vtt", cues, meta='{"roles": {"agent": "bot"}}')
    assert roles_of(path) == {"Agent": Role.bot, "Customer": Role.customer}


def test_greeting_and_content_cues_with_anonymous_speakers(tmp_path: Path) -> None:
    cues = [
        ("Speaker 1", "Thank you for calling Northwind, this is Dana. How can I help you?"),
        ("Speaker 2", "Hi, I'd like to cancel my account."),
        ("Speaker 1", "Sorry to hear that. Can I have your account number?"),
        ("Speaker 2", "It's 4471."),
    ]
    assert roles_of(write(tmp_path, "anon.vtt", cues)) == {
        "Speaker 1": Role.agent,
        "Speaker 2": Role.customer,
    }
    # The customer's words alone decide too: the other side is the agent.
    cues = [("A", "Hello?"), ("B", "Hi, I was charged twice for my order."), ("A", "Okay.")]
    assert roles_of(write(tmp_path, "b.vtt", cues)) == {"A": Role.agent, "B": Role.customer}


def test_organisation_named_in_the_greeting_marks_its_speaker(tmp_path: Path) -> None:
    cues = [
        ("priya@northwind.com", "Thanks for contacting Northwind Billing, Priya here."),
        ("sam@widgets.co", "Hello, a question about our invoice."),
    ]
    roles = roles_of(write(tmp_path, "org.vtt", cues))
    assert roles == {"priya@northwind.com": Role.agent, "sam@widgets.co": Role.customer}
    # The ingest option agent_domains says it without any greeting.
    cues = [("priya@northwind.com", "Hello."), ("sam@widgets.co", "Hello, our invoice.")]
    options = IngestOptions(agent_domains=["northwind.com"])
    assert roles_of(write(tmp_path, "dom.vtt", cues), options) == {
        "priya@northwind.com": Role.agent,
        "sam@widgets.co": Role.customer,
    }


def test_nothing_says_stays_unknown(tmp_path: Path) -> None:
    cues = [("Speaker 1", "Are we still on for lunch?"), ("Speaker 2", "Yes, I can't wait.")]
    roles = roles_of(write(tmp_path, "lunch.vtt", cues))
    assert set(roles.values()) == {Role.unknown}
    # A meeting: service words are everyday talk, no agent or customer.
    cues = [
        ("Speaker 1", "Thank you for calling in, how can I help with the roadmap?"),
        ("Speaker 2", "I'd like to cancel my order of the agenda items."),
    ]
    path = write(tmp_path, "standup.vtt", cues, meta='{"channel": "meeting"}')
    assert set(roles_of(path).values()) == {Role.unknown}


def _dialogsum() -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    with DIALOGSUM.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            said: dict[str, list[str]] = defaultdict(list)
            for turn in record["dialogue"].split("\n"):
                match = re.match(r"(#Person\d#):\s*(.*)", turn)
                if match:
                    said[match[1]].append(match[2])
            out[record["fname"]] = said
    return out


@pytest.mark.skipif(not DIALOGSUM.exists(), reason="shared DialogSum data not present")
def test_dialogsum_service_dialogues_and_everyday_ones() -> None:
    dialogues = _dialogsum()
    p1, p2 = "#Person1#", "#Person2#"
    agent_first = {p1: Role.agent, p2: Role.customer}
    customer_first = {p1: Role.customer, p2: Role.agent}
    # Hand-checked: the reservation desk / the bank clerk / the hotel answer; guests call.
    assert transcript_roles(dialogues["dev_397"]) == agent_first  # "reservation desk"
    assert transcript_roles(dialogues["dev_350"]) == agent_first  # withdraw money
    assert transcript_roles(dialogues["dev_239"]) == agent_first  # "Capital Hotel. May I help"
    assert transcript_roles(dialogues["dev_151"]) == customer_first  # reserving a room
    assert transcript_roles(dialogues["dev_80"]) == customer_first  # reporting a theft
    # Friends planning a workout: nobody serves anybody.
    assert set(transcript_roles(dialogues["dev_1"]).values()) == {Role.unknown}
    # Most of DialogSum is everyday talk: roles are given to a minority only.
    assigned = sum(
        any(r is not Role.unknown for r in transcript_roles(said).values())
        for said in dialogues.values()
    )
    assert 20 <= assigned <= 100, assigned


@pytest.mark.skipif(not QMSUM.exists(), reason="shared QMSum data not present")
def test_qmsum_meetings_stay_participants_even_as_calls() -> None:
    files = sorted(QMSUM.glob("*/*.json"))
    assert len(files) > 150
    for path in files:
        said: dict[str, list[str]] = defaultdict(list)
        for turn in json.loads(path.read_text(encoding="utf-8"))["meeting_transcripts"]:
            said[turn["speaker"]].append(turn["content"])
        for channel in ("meeting", "call"):
            roles = transcript_roles(said, channel=channel, sidecar=Sidecar())
            assert set(roles.values()) == {Role.unknown}, (path.name, channel)


def test_agent_customer_call_end_to_end_flags_churn_and_competitor(tmp_path: Path) -> None:
    """`convolens ingest` + `analyze`: with the roles right, the customer-only trackers fire."""
    from typer.testing import CliRunner

    from convolens.cli import app
    from convolens.store.warehouse import Warehouse

    db = tmp_path / "roles.duckdb"
    runner = CliRunner(env={"COLUMNS": "200"})
    for args in (
        ["ingest", str(DATA / "agent-customer-call.vtt"), "--db", str(db)],
        ["analyze", "--db", str(db)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    with Warehouse(db, read_only=True) as warehouse:
        roles = warehouse.query("SELECT name, role FROM participants ORDER BY name")
        labels = warehouse.query(
            "SELECT l.label, l.value, p.role FROM labels_current l "
            "LEFT JOIN utterances u USING (utterance_id) "
            "LEFT JOIN participants p ON p.conversation_id = u.conversation_id "
            "AND p.version = u.version AND p.participant_id = u.participant_id "
            "WHERE l.label IN ('tracker.match', 'signal')"
        )
    assert [(r["name"], r["role"]) for r in roles] == [("Agent", "agent"), ("Customer", "customer")]
    trackers = {
        json.loads(r["value"])["tracker"]: r["role"] for r in labels if r["label"] != "signal"
    }
    assert trackers.get("churn_risk") == "customer"
    assert trackers.get("competitor_mention") == "customer"
    signals = {json.loads(r["value"])["signal"] for r in labels if r["label"] == "signal"}
    assert {"churn_risk", "competitor_evaluation"} <= signals
