"""PII redaction with the real Presidio recognizers and the packaged spaCy model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convolens.enrich.pii import PiiComponent, PiiConfig, Redactor, redact_words
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.store.export import ExportFormat, export_layer

# Values Presidio must find: a valid Luhn test card, a checksum-valid German IBAN, a
# reserved-for-fiction US phone number.
NAME, EMAIL, PHONE = "John Smith", "john.smith@example.com", "415-555-0132"
CARD, IBAN, STREET = "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "221B Baker Street"
SECRETS = (NAME, EMAIL, PHONE, CARD, IBAN, STREET, "john.smith")


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def test_each_kind_is_replaced_by_its_type(redactor: Redactor) -> None:
    texts = [
        f"Hi, I'm {NAME}, email {EMAIL} or call {PHONE}.",
        f"My card is {CARD} and my IBAN is {IBAN}.",
        f"Please ship it to {STREET}, Apt 5 by Friday.",
        "How do I export my data to CSV?",
    ]
    (first, found), (second, _), (third, _), (clean, none) = redactor.redact(texts)
    assert first == "Hi, I'm <PERSON>, email <EMAIL_ADDRESS> or call <PHONE_NUMBER>."
    assert second == "My card is <CREDIT_CARD> and my IBAN is <IBAN_CODE>."
    assert third == "Please ship it to <STREET_ADDRESS> by Friday."
    assert (clean, none) == (texts[3], [])
    # Spans point at the replacements in the redacted text and back at the original values.
    assert [first[r.start : r.end] for r in found] == [
        "<PERSON>",
        "<EMAIL_ADDRESS>",
        "<PHONE_NUMBER>",
    ]
    assert [texts[0][r.original_start : r.original_end] for r in found] == [NAME, EMAIL, PHONE]


def test_hash_links_the_same_value_and_mask_keeps_offsets() -> None:
    hashed = Redactor(PiiConfig(operator="hash", hash_salt="s1"))
    (a, _), (b, _) = hashed.redact([f"Write to {EMAIL}", f"I said {EMAIL.upper()} twice"])
    tag = a.removeprefix("Write to ")
    assert tag.startswith("<EMAIL_ADDRESS_") and tag in b and EMAIL not in a
    other_salt = Redactor(PiiConfig(operator="hash", hash_salt="s2"))
    assert tag not in other_salt.redact([f"Write to {EMAIL}"])[0][0]
    masked, (item,) = Redactor(PiiConfig(operator="mask")).redact([f"mail {EMAIL} now"])[0]
    assert masked == "mail " + "*" * len(EMAIL) + " now"
    assert (item.start, item.end) == (item.original_start, item.original_end)


def test_entity_list_and_allow_list_are_honoured() -> None:
    only_email = Redactor(PiiConfig(entities=("EMAIL_ADDRESS",)))
    text = f"{NAME} here, reach me at {EMAIL}"
    assert only_email.redact([text])[0][0] == f"{NAME} here, reach me at <EMAIL_ADDRESS>"
    allowed = Redactor(PiiConfig(allow_list=(NAME,)))
    assert allowed.redact([text])[0][0] == f"{NAME} here, reach me at <EMAIL_ADDRESS>"
    with pytest.raises(ValueError, match="operator"):
        PiiConfig.model_validate({"operator": "scramble"})


def test_words_overlapping_a_value_take_the_replacement(redactor: Redactor) -> None:
    text = f"my name is {NAME} thanks"
    new_text, found = redactor.redact([text])[0]
    assert new_text == "my name is <PERSON> thanks"
    words = text.split(" ")
    assert redact_words(text, words, found) == [
        "my",
        "name",
        "is",
        "<PERSON>",
        "<PERSON>",
        "thanks",
    ]


def _write_chat(folder: Path) -> Path:
    path = folder / "pii_chat.json"
    path.write_text(
        json.dumps(
            {
                "id": "chat-pii-1",
                "source": "intercom",
                "channel": "chat",
                "subject": f"Refund for {NAME}",
                "participants": [
                    {"id": "c", "role": "customer"},
                    {"id": "a", "role": "agent", "name": "Maya"},
                ],
                "messages": [
                    {"author": "c", "text": f"Hi, this is {NAME}. I was charged twice!"},
                    {"author": "a", "text": "Sorry about that. What is your email?"},
                    {"author": "c", "text": f"It's {EMAIL}, phone {PHONE}."},
                    {"author": "c", "text": f"The card was {CARD}."},
                    {"author": "a", "text": "Thanks, the refund is on its way."},
                ],
            }
        ),
        encoding="utf-8",
    )
    return path


def test_redacted_text_is_what_the_warehouse_and_exports_hold(warehouse, tmp_path) -> None:
    source = _write_chat(tmp_path)
    ingest_paths(warehouse, [source])
    report = enrich(warehouse, [PiiComponent(), "sentiment", "trackers"])
    assert report.labels["pii"] == 5  # four values in utterances + the summary label
    texts = [r["text"] for r in warehouse.query("SELECT text FROM utterances ORDER BY seq")]
    assert texts[0] == "Hi, this is <PERSON>. I was charged twice!"
    assert texts[2] == "It's <EMAIL_ADDRESS>, phone <PHONE_NUMBER>."
    assert texts[3] == "The card was <CREDIT_CARD>."
    (subject,) = warehouse.query("SELECT subject FROM conversations")
    assert subject["subject"] == "Refund for <PERSON>"
    # Labels name the type and point at the tag, never at the value.
    rows = warehouse.query(
        "SELECT e.value, e.evidence, u.text FROM enrichments e JOIN utterances u "
        "USING (utterance_id, version) WHERE e.label = 'pii.entity' ORDER BY utterance_id"
    )
    for row in rows:
        (span,) = json.loads(row["evidence"])
        assert row["text"][span["start"] : span["end"]] == json.loads(row["value"])["replacement"]
    # The verbatim source stays in the raw layer only.
    raw = warehouse.query("SELECT decode(payload) AS payload FROM raw_interactions")
    assert EMAIL in raw[0]["payload"]
    for layer in ("utterances", "conversations", "labels", "enrichments"):
        out = tmp_path / f"{layer}.jsonl"
        export_layer(warehouse, layer, ExportFormat.jsonl, out)
        exported = out.read_text(encoding="utf-8")
        assert not [s for s in SECRETS if s in exported], layer
    # Re-ingesting the same source is unchanged: the original text does not come back.
    again = ingest_paths(warehouse, [source])
    assert (again.written.new, again.written.new_versions) == (0, 0)
    assert warehouse.query("SELECT count(*) AS n FROM conversations")[0]["n"] == 1
    assert EMAIL not in " ".join(r["text"] for r in warehouse.query("SELECT text FROM utterances"))


def test_labels_made_before_redaction_are_recomputed(warehouse, tmp_path) -> None:
    ingest_paths(warehouse, [_write_chat(tmp_path)])
    enrich(warehouse, ["trackers"])
    first = warehouse.query("SELECT count(*) AS n FROM enrichment_status")[0]["n"]
    assert first == 1
    report = enrich(warehouse, [PiiComponent()])
    # The trackers' labels rested on the unredacted text: they are gone and pending again.
    assert warehouse.query("SELECT DISTINCT component FROM enrichment_status") == [
        {"component": "pii"}
    ]
    assert report.labels["pii"] == 5
    assert enrich(warehouse, ["trackers"]).conversations == 1
