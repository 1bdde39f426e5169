from pathlib import Path

from convolens.ingest.base import IngestOptions, Parsed, Reject, SourceFile
from convolens.ingest.csv_messages import CsvMessagesAdapter

DATA = Path(__file__).resolve().parents[1] / "data" / "csv"


def _parse(name: str, **mapping: str) -> tuple[list[Parsed], list[Reject]]:
    adapter = CsvMessagesAdapter(IngestOptions(csv_mapping=mapping))
    results = list(adapter.parse(SourceFile.read(DATA / name)))
    return [r for r in results if isinstance(r, Parsed)], [
        r for r in results if isinstance(r, Reject)
    ]


def test_rows_group_into_conversations_and_a_bad_row_is_rejected_alone():
    parsed, rejects = _parse("chat_export.csv")
    assert [p.conversation.source.source_id for p in parsed] == ["lc-1", "lc-2"]
    maria = parsed[0].conversation
    # The late row for lc-1 (line 8) joins its conversation; file order is kept.
    assert [u.text for u in maria.utterances][-1] == "Great, thanks!"
    assert len(maria.utterances) == 4
    assert maria.source.queue == "Billing" and maria.links.account_id == "ACC-9"
    assert maria.source.tags == ["refund", "billing"]
    assert [r.describe() for r in rejects] == ["chat_export.csv line 6: missing 'text'"]
    # Nothing valid lost: lc-2 keeps its two good rows.
    assert len(parsed[1].conversation.utterances) == 2
    assert [r.locator for r in parsed[1].raw] == ["line 5", "line 7"]


def test_missing_text_column_rejects_the_file_with_a_fix():
    parsed, rejects = _parse("missing_text_column.csv")
    assert not parsed
    assert rejects[0].locator == "line 1"
    assert "missing column 'text'" in rejects[0].reason
    assert "text=COLUMN" in rejects[0].reason and "--map" not in rejects[0].reason


def test_mapping_to_the_column_fixes_it():
    parsed, rejects = _parse("missing_text_column.csv", text="msg")
    assert not rejects and parsed[0].conversation.utterances[0].text == "hello"


def test_latin1_file_is_decoded_not_mangled():
    parsed, rejects = _parse("latin1.csv", conversation_id="chat", sent_at="when")
    assert not rejects
    conversation = parsed[0].conversation
    assert conversation.participants[0].name == "René Müller"
    assert conversation.utterances[0].text == "Grüße aus München à bientôt"
    assert parsed[0].raw[0].encoding not in ("utf-8", "utf-8-sig")


def test_mapping_to_a_missing_column_is_a_clear_error():
    parsed, rejects = _parse("chat_export.csv", text="body")
    assert not parsed
    assert "names a column the file lacks" in rejects[0].reason
