"""The bundled sample corpus (what `make demo` ingests) reads cleanly and is realistic."""

from pathlib import Path

import pytest

from convolens.analyze import analyze
from convolens.ingest.base import IngestOptions
from convolens.ingest.pipeline import ingest_paths
from convolens.speech.options import SpeechOptions
from convolens.store.warehouse import Warehouse

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    warehouse = Warehouse(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    # tiny.en keeps the suite fast; `make demo` transcribes with the default base model.
    options = IngestOptions(speech=SpeechOptions(model="tiny.en"))
    report = ingest_paths(warehouse, [EXAMPLES], options=options)
    assert not report.rejects, report.summary_line()
    analyze(warehouse)
    yield warehouse
    warehouse.close()


def _rows(warehouse: Warehouse, sql: str) -> list[tuple]:
    return warehouse.con.execute(sql).fetchall()


def test_corpus_covers_every_format_and_channel(demo):
    (count,) = _rows(demo, "SELECT count(*) FROM conversations_current")[0]
    assert count >= 40
    formats = {r[0] for r in _rows(demo, "SELECT DISTINCT source_format FROM conversations")}
    assert formats == {"json", "csv", "email", "subtitles", "zendesk", "audio"}
    channels = {r[0] for r in _rows(demo, "SELECT DISTINCT channel FROM conversations")}
    assert {"chat", "email", "ticket", "call", "meeting"} <= channels
    roles = {r[0] for r in _rows(demo, "SELECT DISTINCT role FROM participants")}
    assert {"agent", "customer", "bot"} <= roles


def test_timed_conversations_have_overlap_silence_and_monologues(demo):
    rows = _rows(
        demo,
        "SELECT m.overlap_s, m.long_silence_count, m.interruptions, "
        "(SELECT max(p.longest_monologue_s) FROM metrics_participant p "
        " WHERE p.conversation_id = m.conversation_id AND p.version = m.version) "
        "FROM metrics_conversation_current m WHERE m.timed",
    )
    assert len(rows) >= 10
    assert all(overlap > 0 for overlap, *_ in rows)
    assert sum(1 for _, silences, *_ in rows if silences > 0) >= len(rows) // 2
    assert sum(interruptions for *_, interruptions, _ in rows) > 0
    assert max(monologue for *_, monologue in rows) >= 60.0


def test_text_conversations_have_response_times(demo):
    rows = _rows(
        demo,
        "SELECT c.channel, m.first_response_s, m.elapsed_s FROM conversations_current c "
        "JOIN metrics_conversation_current m USING (conversation_id, version) WHERE NOT m.timed",
    )
    assert {channel for channel, *_ in rows} >= {"chat", "email", "ticket"}
    assert all(elapsed is not None and elapsed > 0 for *_, elapsed in rows)
    assert sum(1 for _, first, _ in rows if first is not None) >= len(rows) * 0.9


def test_staff_are_agents_in_every_email_thread(demo):
    roles = _rows(
        demo,
        "SELECT DISTINCT role FROM participants_current WHERE email LIKE '%@northwindcloud.com'",
    )
    assert roles == [("agent",)]
    (without,) = _rows(
        demo,
        "SELECT count(*) FROM conversations_current c JOIN metrics_conversation_current m "
        "USING (conversation_id, version) WHERE c.channel = 'email' AND m.first_response_s IS NULL",
    )[0]
    assert without == 0


def test_the_recording_is_transcribed_with_channel_speakers(demo):
    rows = _rows(
        demo,
        "SELECT p.name, p.role, count(u.utterance_id) FROM participants_current p "
        "JOIN utterances_current u USING (conversation_id, version, participant_id) "
        "JOIN conversations_current c USING (conversation_id, version) "
        "WHERE c.source_id = 'call-20261117-0031' GROUP BY ALL ORDER BY 1",
    )
    # The customer's name is redacted at intake (docs/privacy.md); the agent's is kept.
    assert rows == [("<PERSON>", "customer", 4), ("Leo Martin", "agent", 4)]
