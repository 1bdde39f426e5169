"""Generic speaker labels are not PII (#12): "Speaker 1", "SPEAKER_00", "#Person1#", "Caller"
stay as participant names and in the text; the real names beside them are still redacted.

Real files (a diarized WebVTT transcript, a chat export) go through `ingest_paths` into a
real DuckDB warehouse, with intake redaction under the default policy.
"""

from __future__ import annotations

import json

import pytest

from convolens.enrich.pii import Redactor
from convolens.enrich.pii.detect import participant_terms
from convolens.enrich.pii.speaker_labels import is_speaker_label
from convolens.ingest.pipeline import ingest_paths
from convolens.store.warehouse import Warehouse

LABELS = [
    "Speaker 1",
    "Speaker 2",
    "Agent",
    "Customer",
    "Caller",
    "#Person1#",
    "Person1",
    "SPEAKER_00",
    "Unknown",
    "Unknown Speaker",
    "Participant 3",
    "spk_0",
]

_VTT = """WEBVTT

1
00:00:01.000 --> 00:00:04.000
<v SPEAKER_00>Thanks for calling, who am I speaking with?

2
00:00:04.500 --> 00:00:08.000
<v Speaker 1>Hi, this is Rajesh Kumar, I have a billing question.

3
00:00:08.500 --> 00:00:11.000
<v SPEAKER_00>Thanks, Speaker 1. Let me pull up the account.

4
00:00:11.500 --> 00:00:14.000
<v Speaker 2>Speaker 2 here, I'm Rajesh's colleague Ingrid.
"""


def _chat() -> dict[str, object]:
    people = [("p1", "#Person1#"), ("p2", "Person2"), ("p3", "Caller"), ("p4", "Ines Duarte")]
    return {
        "id": "labels-chat-1",
        "source": "intercom",
        "channel": "chat",
        "language": "en",
        "started_at": "2026-11-02T09:00:00Z",
        "participants": [{"id": pid, "name": name, "role": "customer"} for pid, name in people]
        + [{"id": "a1", "name": "Agent", "role": "agent"}],
        "messages": [
            {"author": "p1", "text": "#Person1#: Hello, #Person2#. Is the Caller on?"},
            {"author": "p2", "text": "Person2: yes, and Ines Duarte joined too."},
            {"author": "a1", "text": "Hi Caller, thanks Customer, the Agent will help you."},
        ],
    }


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, object]]]:
    folder = tmp_path_factory.mktemp("labels")
    (folder / "in").mkdir()
    (folder / "in" / "diarized.vtt").write_text(_VTT, encoding="utf-8")
    (folder / "in" / "chat.json").write_text(json.dumps(_chat()), encoding="utf-8")
    with Warehouse(folder / "w.duckdb") as wh:
        report = ingest_paths(wh, [folder / "in"])
        assert report.conversations == 2 and not report.rejects, report.summary_line()
        return {
            "participants": wh.query("SELECT name, role FROM participants"),
            "utterances": wh.query("SELECT text FROM utterances ORDER BY conversation_id, seq"),
        }


@pytest.mark.parametrize("label", LABELS)
def test_a_generic_label_is_not_a_name(label: str) -> None:
    assert is_speaker_label(label)
    assert participant_terms([label], []) == []


@pytest.mark.parametrize("name", ["Dana Ruiz", "Rajesh", "Speaker Pelosi", "Agent Smith"])
def test_a_real_name_is_still_a_name(name: str) -> None:
    assert not is_speaker_label(name)
    assert participant_terms([name], [])


def test_labels_keep_their_names_at_intake_and_real_names_go(
    stored: dict[str, list[dict[str, object]]],
) -> None:
    names = {str(p["name"]) for p in stored["participants"]}
    assert {"SPEAKER_00", "Speaker 1", "Speaker 2", "#Person1#", "Person2", "Caller"} <= names
    assert "Agent" in names and "Ines Duarte" not in names and "<PERSON>" in names
    text = "\n".join(str(u["text"]) for u in stored["utterances"])
    for label in ("Speaker 1", "Speaker 2", "#Person1#", "#Person2#", "Person2:", "Hi Caller"):
        assert label in text, (label, text)
    assert "thanks Customer, the Agent will help" in text
    for name in ("Rajesh", "Kumar", "Ines", "Duarte", "Ingrid"):
        assert name not in text, (name, text)


def test_labels_in_text_stay_where_a_name_frame_would_take_them() -> None:
    redactor = Redactor()
    said = [
        "Thanks, Speaker 2! And thank you, Dana.",
        "SPEAKER_01: hi Person1, this is Tom Becker",
        "Hi Caller, it's Unknown Speaker here",
    ]
    out = [t for t, _ in redactor.redact(said, participants=["Dana"])]
    assert out == [
        "Thanks, Speaker 2! And thank you, <PERSON>.",
        "SPEAKER_01: hi Person1, this is <PERSON>",
        "Hi Caller, it's Unknown Speaker here",
    ]
