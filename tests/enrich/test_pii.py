"""PII redaction on real text: the trained NER, the rules and the policy, no stand-ins.

The examples are the ones issue #12 names (what the previous Presidio + spaCy-small
detector leaked or erased), plus the values of every pattern type.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convolens.enrich.config import load_component_settings
from convolens.enrich.pii import PiiComponent, PiiConfig, Redactor, redact_words
from convolens.enrich.pii.spoken_digits import digit_runs, luhn_valid
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths
from convolens.model import Role
from convolens.store.export import ExportFormat, export_layer

# A valid Luhn test card, a checksum-valid German IBAN, a reserved-for-fiction phone number.
NAME, EMAIL, PHONE = "John Smith", "john.smith@example.com", "415-555-0132"
CARD, IBAN, STREET = "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "221B Baker Street"
SECRETS = (NAME, EMAIL, PHONE, CARD, IBAN, STREET, "john.smith")


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def redacted(redactor: Redactor, *texts: str, **kwargs: list[str]) -> list[str]:
    return [text for text, _ in redactor.redact(list(texts), **kwargs)]


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


def test_names_the_previous_detector_left_readable(redactor: Redactor) -> None:
    assert redacted(
        redactor,
        "Gorst resigned as chairman on Tuesday.",
        "Hi Christian, thanks for the update.",
        "Hey Rajesh, can you resend the invoice?",
        "Thanks, Rajesh",
        "this is Dana from the billing team",
    ) == [
        "<PERSON> resigned as chairman on Tuesday.",
        "Hi <PERSON>, thanks for the update.",
        "Hey <PERSON>, can you resend the invoice?",
        "Thanks, <PERSON>",
        "this is <PERSON> from the billing team",
    ]


def test_sign_offs_and_brands_after_greetings(redactor: Redactor) -> None:
    # Real customer-care tweets: an agent's dash sign-off is a name, "Hi Yahoo" is not.
    assert redacted(
        redactor, "Update us with the result. -Shie 3/3", "Hi Yahoo.\nMy account has been hacked"
    ) == ["Update us with the result. -<PERSON> 3/3", "Hi Yahoo.\nMy account has been hacked"]


def test_lower_case_asr_names_are_found(redactor: Redactor) -> None:
    assert redacted(redactor, "hi christian thanks for calling", "yeah so i talked to priya") == [
        "hi <PERSON> thanks for calling",
        "yeah so i talked to <PERSON>",
    ]


def test_participant_names_and_email_local_parts(redactor: Redactor) -> None:
    (text,) = redacted(
        redactor,
        "ok noor, i will ask mcallister to check",
        participants=["Noor", "mcallister"],
    )
    assert text == "ok <PERSON>, i will ask <PERSON> to check"


def test_the_component_reads_names_from_the_participants(make_doc) -> None:
    doc = make_doc(
        "names-1",
        [("c", "ok, can mcallister call me back?"), ("a", "sure noor, he will.")],
    )
    doc.conversation.participants[0].name = "Noor"
    doc.conversation.participants[1].email = "j.mcallister@support.internal"
    labels = PiiComponent()([doc])[0]
    assert [u.text for u in doc.conversation.utterances] == [
        "ok, can <PERSON> call me back?",
        "sure <PERSON>, he will.",
    ]
    summary = next(a for a in labels if a.label == "pii.summary")
    assert summary.value == {"redacted": 2, "by_type": {"PERSON": 2}}
    # A bot's name is the product's: kept.
    bot = make_doc("bot-1", [("a", "Hi Maria! I'm Nori, Northwind's virtual assistant.")])
    bot.conversation.participants[1].name = "Nori"
    bot.conversation.participants[1].role = Role.bot
    PiiComponent()([bot])
    assert bot.conversation.utterances[0].text == (
        "Hi <PERSON>! I'm Nori, Northwind's virtual assistant."
    )


def test_the_business_stays_readable(redactor: Redactor) -> None:
    texts = [
        "We're also evaluating Contoso. One of my site managers used it.",
        "I returned it at Kohl's, paid with Zelle and cancelled Netflix.",
        "Try the steps at https://help.minecraft.net/hc/en-us/articles/360034754852 first.",
    ]
    assert redacted(redactor, *texts) == texts


def test_spoken_card_number_is_checked_with_luhn(redactor: Redactor) -> None:
    spoken = "four one one one " + "one " * 11 + "one"
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    (found,) = [r for _, r in redactor.redact([f"my card number is {spoken} thanks"])]
    assert [(r.entity_type, r.replacement) for r in found] == [("CREDIT_CARD", "<CREDIT_CARD>")]
    # Sixteen digits that fail the checksum, read with no card context, are still redacted,
    # as an account number.
    (wrong,) = [r for _, r in redactor.redact(["the code is " + "one " * 15 + "two"])]
    assert [r.entity_type for r in wrong] == ["ACCOUNT_NUMBER"]


def test_phone_numbers_read_out_in_groups(redactor: Redactor) -> None:
    assert redacted(
        redactor,
        "call me on five five five, one two three, four five six seven",
        "It's just zero, double seven, eight, seven, three, six, seven, six, double eight.",
        "Yes, please. My telephone number is 367 - 1314.",
    ) == [
        "call me on <PHONE_NUMBER>",
        "It's just <ACCOUNT_NUMBER>.",
        "Yes, please. My telephone number is <PHONE_NUMBER>.",
    ]


def test_numbers_as_whisper_writes_them_from_speech(redactor: Redactor) -> None:
    # Digit by digit with hyphens or dots, comma groups, words and digits mixed, and
    # "four" heard as "for" (the card 4111 1111 1111 1111 then reads "for 111 1111 ...").
    assert redacted(
        redactor,
        "my card number is 4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1.",
        "it's 4.1.1.1 1.1.1.1 1.1.1.1 1.1.1.1",
        "Yeah it's for 111 1111 1111 1111.",
        "the card is for 1111 1111 1111 1111",
        "Sure, it's 4111, 1111, 1111, 1111.",
        "You can reach me at 415, 555, 0134.",
        "four one one one 1111 one one one one 1111",
        "call me at 4-1-5-5-5-5-0-1-3-4",
        "my number is 4.1.5. 5.5.5. 0.1.3.4.",
    ) == [
        "my card number is <CREDIT_CARD>.",
        "it's <CREDIT_CARD>",
        "Yeah it's <CREDIT_CARD>.",
        "the card is for <CREDIT_CARD>",
        "Sure, it's <CREDIT_CARD>.",
        "You can reach me at <PHONE_NUMBER>.",
        "<CREDIT_CARD>",
        "call me at <PHONE_NUMBER>",
        "my number is <PHONE_NUMBER>.",
    ]


def test_prices_dates_versions_scores_and_lists_stay_beside_whisper_numbers(
    redactor: Redactor,
) -> None:
    texts = [
        "It costs $1,299.99 and the meeting is at 10:30 on 12/05/2026.",
        "We shipped 3.2.1 then 3.2.2, 3.2.3 and 3.2.4 this quarter.",
        "The final was 6-4 6-3 7-5 6-2 6-1.",
        "we had 120, 135, 150, 165, 180 users over the year",
        "prices are 19.99, 24.99, 29.99 and 34.99",
        "It was 1, 2, 3, 4, 5, 6, 7 steps",
        "released 2.4.1 on 2026-01-05, 2.4.2 on 2026-02-09",
        "I paid for 12 months",
    ]
    assert redacted(redactor, *texts) == texts
    # An order id stays by policy however it is written.
    assert redacted(redactor, "order number 4-1-7-7-2-0-9-3-3-5-1") == [
        "order number 4-1-7-7-2-0-9-3-3-5-1"
    ]


def test_emails_on_private_domains(redactor: Redactor) -> None:
    assert redacted(
        redactor,
        "write to dana.w@billing.internal or ops@build.local",
        "it's priya dot n at acme dot corp",
    ) == ["write to <EMAIL_ADDRESS> or <EMAIL_ADDRESS>", "it's <EMAIL_ADDRESS>"]


def test_scores_and_counts_are_not_numbers_to_hide(redactor: Redactor) -> None:
    texts = [
        "Leicestershire 22 5 3 14 258 , Somerset 22 4 6 12 232",
        "England were 220 for three at close on the first day.",
        "There's one two three four five six six seven eight nine zero .",
        "The renewal is on 2026-11-20 for $1,234,567 in total.",
    ]
    assert redacted(redactor, *texts) == texts


def test_ssn_dob_ip_and_account_numbers(redactor: Redactor) -> None:
    assert redacted(
        redactor,
        "My SSN is 123-45-6789, born on March 3, 1985.",
        "The server is 10.20.30.40 and my account number is 12345678.",
        "The account number is 15273478841.",
        "my iban is gb50mvfc38361978683032, blocked at 4f8a:c99e:dc86:faf9:5988:5f63:375e:8a2a",
        "The meeting is at 10:30:15 today.",
    ) == [
        "My SSN is <US_SSN>, born on <DATE_OF_BIRTH>.",
        "The server is <IP_ADDRESS> and my account number is <ACCOUNT_NUMBER>.",
        "The account number is <ACCOUNT_NUMBER>.",
        "my iban is <IBAN_CODE>, blocked at <IP_ADDRESS>",
        "The meeting is at 10:30:15 today.",
    ]


def test_order_ids_are_kept_unless_the_policy_redacts_them(redactor: Redactor) -> None:
    text = "My order 11223344556677889 never arrived."
    assert redacted(redactor, text) == [text]
    strict = Redactor(PiiConfig(entities=("ORDER_ID",)))
    assert redacted(strict, text) == ["My order <ORDER_ID> never arrived."]
    assert [r.digits for r in digit_runs(text)] == ["11223344556677889"]


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
    per_type = Redactor(PiiConfig(operators={"EMAIL_ADDRESS": "mask"}))
    assert redacted(per_type, f"Hi Christian, mail {EMAIL}") == [
        "Hi <PERSON>, mail " + "*" * len(EMAIL)
    ]


def test_entity_list_allow_and_deny_lists_are_honoured() -> None:
    only_email = Redactor(PiiConfig(entities=("EMAIL_ADDRESS",)))
    text = f"{NAME} here, reach me at {EMAIL}"
    assert redacted(only_email, text) == [f"{NAME} here, reach me at <EMAIL_ADDRESS>"]
    allowed = Redactor(PiiConfig(allow_list=(NAME,), deny_list=("Project Falcon",)))
    assert redacted(allowed, text + " about project falcon") == [
        f"{NAME} here, reach me at <EMAIL_ADDRESS> about <CUSTOM>"
    ]
    with pytest.raises(ValueError, match="operator"):
        PiiConfig.model_validate({"operator": "scramble"})


def test_team_entities_are_never_redacted(tmp_path: Path) -> None:
    # A product named like a person: the team's list says it is business.
    (tmp_path / "team.toml").write_text(
        '[[entity]]\ntype = "product"\nname = "Jasper"\n', encoding="utf-8"
    )
    (tmp_path / "convolens.toml").write_text(
        '[components.entities]\nentities_file = "team.toml"\n'
        '[components.pii]\noperators = { PERSON = "hash" }\n',
        encoding="utf-8",
    )
    settings = load_component_settings(tmp_path / "convolens.toml")
    config = PiiConfig.model_validate(settings.config("pii"))
    assert config.entities_file == str(tmp_path / "team.toml")
    text = "Hi Christian, Jasper crashed again."
    (kept,) = redacted(Redactor(config), text)
    assert kept.endswith(", Jasper crashed again.") and kept.startswith("Hi <PERSON_")
    (lost,) = redacted(Redactor(PiiConfig(keep_team_entities=False)), text)
    assert "Jasper" not in lost


def test_long_texts_are_read_in_windows_not_refused(redactor: Redactor) -> None:
    filler = "the export finished and the dashboard refreshed again . " * 300
    text = filler + "Thanks, Rajesh. Mail dana.w@billing.internal"
    (out,) = redacted(redactor, text)
    assert out == filler + "Thanks, <PERSON>. Mail <EMAIL_ADDRESS>"


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
    # A warehouse filled before intake redaction (ingest.redact_intake) holds raw text:
    # the component still redacts it, and what was derived from it is relabelled.
    ingest_paths(warehouse, [_write_chat(tmp_path)], redact=False)
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
