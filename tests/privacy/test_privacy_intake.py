"""Redaction at intake (#12): nothing outside the raw layer ever holds what it had not passed.

Real files of every text channel go through `ingest_paths` into a real DuckDB warehouse;
every table but `raw_interactions` is read back whole and searched for the planted values.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
from privacy_corpus import CARD, EMAIL, NAME, leaks, write_corpus

from convolens.enrich.nlp import PARSE_PIECE_CHARS, parsed
from convolens.enrich.pii.policy import PiiConfig
from convolens.enrich.pii.redact import Redactor
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.ingest.redact_intake import IntakeRedactor, intake_redactor
from convolens.model import Conversation
from convolens.store.quarantine import list_quarantine
from convolens.store.warehouse import Warehouse


def _non_raw_leaks(wh: Warehouse) -> dict[str, list[str]]:
    """Planted values found per table, every table and column but the raw layer's (the
    data-health profile of the raw records' field paths included)."""
    tables = [
        row["table_name"]
        for row in wh.query(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        )
    ]
    found: dict[str, list[str]] = {}
    for table in tables:
        if table == "raw_interactions":
            continue
        for row in wh.query(f'SELECT * FROM "{table}"'):
            hits = leaks(json.dumps(row, default=str, ensure_ascii=False))
            if hits:
                found.setdefault(table, []).extend(hits)
    return found


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("privacy_intake")
    write_corpus(folder / "in")
    with Warehouse(folder / "w.duckdb") as wh:
        report = ingest_paths(wh, [folder / "in"])
        assert report.conversations == 4 and not report.rejects, report.summary_line()
    return folder


def test_every_field_of_every_channel_is_redacted_before_it_is_stored(ingested: Path) -> None:
    with Warehouse(ingested / "w.duckdb") as wh:
        assert _non_raw_leaks(wh) == {}
        # The raw layer keeps the verbatim source (admin + confirm reads it).
        raw = b"".join(r["payload"] for r in wh.query("SELECT payload FROM raw_interactions"))
        assert set(leaks(raw.decode("utf-8", "replace"))) >= {"card", "email", "surname"}
        chat = wh.query(
            "SELECT subject, tags, meta FROM conversations WHERE source_id = 'privacy-chat-1'"
        )[0]
        assert chat["subject"] == "Refund for <PERSON>, card <CREDIT_CARD>"
        assert chat["tags"] == ["refund", "contact-<PERSON>", "callback <PHONE_NUMBER>"]
        assert json.loads(chat["meta"])["contact"] == "<EMAIL_ADDRESS>"
        people = wh.query("SELECT name, role, email, participant_id FROM participants")
        customers = [p for p in people if p["role"] == "customer"]
        assert len(customers) == 4
        assert {p["name"] for p in customers} == {"<PERSON>"}
        # The agent keeps their name: scorecards and the agent's own view are keyed on it.
        assert {p["name"] for p in people if p["role"] == "agent"} == {"Leo Martin"}
        texts = [r["text"] for r in wh.query("SELECT text FROM utterances")]
        assert any("<CREDIT_CARD>" in t for t in texts)
        assert any("<PHONE_NUMBER>" in t for t in texts)
        # Utterances point at the customer by the pseudonym their id was replaced with.
        assert not wh.query(
            "SELECT 1 FROM utterances u ANTI JOIN participants p "
            "USING (conversation_id, version, participant_id)"
        )


def test_reingest_is_unchanged_and_the_pii_component_keeps_the_redacted_text(
    ingested: Path,
) -> None:
    with Warehouse(ingested / "w.duckdb") as wh:
        before = wh.query("SELECT conversation_id, seq, text FROM utterances ORDER BY 1, 2")
        result = enrich(wh, ["pii"])
        after = wh.query("SELECT conversation_id, seq, text FROM utterances ORDER BY 1, 2")
        assert after == before  # redacting redacted text changes nothing
        labels = [
            json.loads(r["value"])
            for r in wh.query("SELECT value FROM enrichments WHERE label = 'pii.entity'")
        ]
        assert result.labels["pii"] > 0
        assert {"PERSON", "CREDIT_CARD", "PHONE_NUMBER", "EMAIL_ADDRESS"} <= {
            v["type"] for v in labels
        }
        assert all(v["replacement"].startswith("<") for v in labels)
        again = ingest_paths(wh, [ingested / "in"])
        assert (again.written.new, again.written.new_versions, again.written.unchanged) == (
            0,
            0,
            4,
        )
        assert _non_raw_leaks(wh) == {}


def test_a_message_over_a_million_characters_is_redacted_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    filler = "The export job is still running and the dashboard shows the same error. " * 14_000
    long_text = filler + f"Please charge {CARD} instead, mail {EMAIL}, thanks, {NAME}."
    assert len(long_text) > 1_000_000

    def chat(cid: str, text: str) -> str:
        return json.dumps(
            {
                "id": cid,
                "channel": "chat",
                "started_at": "2026-11-02T09:00:00Z",
                "participants": [
                    {"id": "c", "role": "customer"},
                    {"id": "a", "name": "Leo Martin", "role": "agent"},
                ],
                "messages": [
                    {"author": "c", "text": text},
                    {"author": "a", "text": "Thanks, looking into it."},
                ],
            }
        )

    lines = [chat("before", f"My card is {CARD}"), chat("long", long_text), chat("after", "Hi")]
    (tmp_path / "in.jsonl").write_text("\n".join(lines), encoding="utf-8")
    with Warehouse(tmp_path / "w.duckdb") as wh:
        report = ingest_paths(wh, [tmp_path / "in.jsonl"])
        assert report.written.new == 3 and not report.rejects
        stored = wh.query(
            "SELECT c.source_id, u.text FROM utterances u JOIN conversations c "
            "USING (conversation_id, version) WHERE u.seq = 0"
        )
        texts = {row["source_id"]: row["text"] for row in stored}
        assert set(texts) == {"before", "long", "after"}
        assert len(texts["long"]) > 1_000_000
        assert texts["long"].endswith(
            "Please charge <CREDIT_CARD> instead, mail <EMAIL_ADDRESS>, thanks, <PERSON>."
        )
        assert not leaks(texts["long"]) and not leaks(texts["before"])


def test_spacy_parses_a_text_longer_than_its_max_length_in_pieces() -> None:
    # The labelling components' shared parse: a message over max_length is not refused
    # (it made every labelling run fail), and the Doc holds the text unchanged.
    nlp = spacy.blank("en")
    nlp.max_length = PARSE_PIECE_CHARS + 10
    text = "word " * (PARSE_PIECE_CHARS // 2) + "the end."
    assert len(text) > nlp.max_length
    from convolens.enrich.base import Doc

    conversation = Conversation.model_validate(
        {
            "channel": "chat",
            "source": {"system": "test"},
            "participants": [{"participant_id": "c"}],
            "utterances": [{"participant_id": "c", "text": text}],
        }
    )
    docs = parsed([Doc("c", 1, conversation, ["c:0"])], nlp)
    assert docs[0][0].text == text
    assert docs[0][0][-2].text == "end"


def test_a_policy_that_cannot_load_quarantines_and_a_fixed_reingest_releases(
    tmp_path: Path,
) -> None:
    write_corpus(tmp_path / "in")
    broken = IntakeRedactor(PiiConfig(ner_model=str(tmp_path / "no-such-model")))
    with Warehouse(tmp_path / "w.duckdb") as wh:
        report = ingest_paths(wh, [tmp_path / "in"], redaction=broken)
        assert report.quarantined == 4 and report.conversations == 0
        assert all(r.reason.startswith("quarantined:") for r in report.rejects)
        assert not wh.query("SELECT 1 FROM conversations")
        held = list_quarantine(wh)
        assert len(held) == 4
        assert {Path(h["source_path"]).name for h in held} == {
            "chat.json",
            "thread.eml",
            "tickets.json",
            "call.vtt",
        }
        assert all("FileNotFoundError" in h["reason"] for h in held)
        assert all(str(tmp_path) not in h["reason"] for h in held)  # no server paths
        assert _non_raw_leaks(wh) == {}
        fixed = ingest_paths(wh, [tmp_path / "in"], redaction=intake_redactor())
        assert fixed.written.new == 4 and fixed.quarantined == 0
        assert list_quarantine(wh) == []
        released = list_quarantine(wh, include_released=True)
        assert len(released) == 4 and all(r["released_by_run"] == fixed.run_id for r in released)
        assert _non_raw_leaks(wh) == {}


def test_reingesting_unchanged_sources_does_not_redact_them_again(tmp_path: Path) -> None:
    # What is stored as it is is not sent to the detectors again (the writer would skip
    # it): a redactor that cannot load is never needed, so nothing is quarantined.
    write_corpus(tmp_path / "in")
    broken = IntakeRedactor(PiiConfig(ner_model=str(tmp_path / "no-such-model")))
    with Warehouse(tmp_path / "w.duckdb") as wh:
        first = ingest_paths(wh, [tmp_path / "in"])
        assert first.written.new == 4
        before = wh.query("SELECT conversation_id, seq, text FROM utterances ORDER BY 1, 2")
        again = ingest_paths(wh, [tmp_path / "in"], redaction=broken)
        assert (again.written.new, again.written.unchanged, again.quarantined) == (0, 4, 0)
        assert not again.rejects and list_quarantine(wh) == []
        assert wh.query("SELECT conversation_id, seq, text FROM utterances ORDER BY 1, 2") == before
        assert not leaks(" ".join(again.warnings))
        assert _non_raw_leaks(wh) == {}


class _FailsOnMarker(Redactor):
    """Orchestration only: the real detectors, failing on texts that hold a marker, so that
    one conversation's failure can be shown not to hold the others back."""

    def redact_groups(self, groups):  # type: ignore[no-untyped-def]
        if any("BREAKS-REDACTION" in t for g in groups for t in g.texts):
            raise RuntimeError("detector failed on this conversation")
        return super().redact_groups(groups)


def test_one_conversation_that_fails_is_quarantined_and_the_others_are_stored(
    tmp_path: Path,
) -> None:
    records = [
        {"id": f"c{i}", "channel": "chat", "started_at": "2026-11-02T09:00:00Z",
         "participants": [{"id": "c", "name": NAME, "role": "customer"}],
         "messages": [{"author": "c", "text": text}]}
        for i, text in enumerate([f"card {CARD}", "BREAKS-REDACTION " + EMAIL, f"I'm {NAME}"])
    ]  # fmt: skip
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    redactor = IntakeRedactor(PiiConfig(), _FailsOnMarker(PiiConfig()))
    with Warehouse(tmp_path / "w.duckdb") as wh:
        report = ingest_paths(wh, [tmp_path / "in.jsonl"], redaction=redactor)
        assert report.written.new == 2 and report.quarantined == 1
        stored = {r["source_id"] for r in wh.query("SELECT source_id FROM conversations")}
        assert stored == {"c0", "c2"}
        held = list_quarantine(wh)
        assert [h["locator"] for h in held] == ["line 2"]
        assert "RuntimeError" in held[0]["reason"]
        assert _non_raw_leaks(wh) == {}


def test_the_demo_sales_call_keeps_its_competitor(tmp_path: Path) -> None:
    # Redacted at intake, "We're also evaluating Contoso" keeps the competitor: a
    # competitor entity and a competitor-evaluation signal.
    call = Path(__file__).resolve().parents[2] / "examples/calls/call-20260915-0007.vtt"
    with Warehouse(tmp_path / "w.duckdb") as wh:
        ingest_paths(wh, [call])
        said = [r["text"] for r in wh.query("SELECT text FROM utterances")]
        assert any("We're also evaluating Contoso." in t for t in said)
        enrich(wh, ["pii", "conversation_type", "entities", "trackers", "signals"])
        values = [
            (r["label"], json.loads(r["value"]))
            for r in wh.query("SELECT label, value FROM enrichments")
        ]
    assert any(
        label == "entity.mention" and v["type"] == "competitor" and v["canonical"] == "Contoso"
        for label, v in values
    )
    assert any(label == "signal" and v["signal"] == "competitor_evaluation" for label, v in values)


def test_ingest_warnings_that_quote_the_source_are_redacted(tmp_path: Path) -> None:
    # The email adapter quotes an unreadable Date header in its warning: the report (what
    # the CLI prints and a job's result holds) and the stored warnings get it redacted.
    (tmp_path / "m.eml").write_text(
        f"From: {NAME} <{EMAIL}>\nTo: support@northwindcloud.com\nSubject: Help\n"
        f"Date: {NAME} {CARD}\nMessage-ID: <w-1@mail.example>\n\nMy card was charged twice.\n",
        encoding="utf-8",
    )
    with Warehouse(tmp_path / "w.duckdb") as wh:
        report = ingest_paths(wh, [tmp_path / "m.eml"])
        assert report.written.new == 1
        assert any("unreadable Date" in w for w in report.warnings), report.warnings
        assert not leaks(" ".join(report.warnings))
        (meta,) = [json.loads(r["meta"]) for r in wh.query("SELECT meta FROM conversations")]
        assert meta["ingest_warnings"] and not leaks(json.dumps(meta))
