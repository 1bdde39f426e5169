"""Email intake: threading across files, body cleaning, broken MIME, charsets."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from convolens.ingest.base import IngestOptions, Parsed, Reject, SourceFile
from convolens.ingest.email_text import clean_body, html_to_text, strip_reply_prefix
from convolens.ingest.email_thread import EmailAdapter
from convolens.model import Role

DATA = Path(__file__).resolve().parents[1] / "data" / "email"
THREAD = ["thread_1_question.eml", "thread_2_agent_reply.eml", "thread_3_customer_followup.eml"]


def parse(*names: str, options: IngestOptions | None = None) -> list[Parsed | Reject]:
    sources = [SourceFile.read(DATA / name) for name in names]
    return list(EmailAdapter(options or IngestOptions()).parse_many(sources))


def parsed(*names: str, options: IngestOptions | None = None) -> list[Parsed]:
    results = parse(*names, options=options)
    assert not [r for r in results if isinstance(r, Reject)]
    return [r for r in results if isinstance(r, Parsed)]


def only(*names: str) -> Parsed:
    results = parsed(*names)
    assert len(results) == 1
    return results[0]


# -- threading ---------------------------------------------------------------------------


@pytest.mark.parametrize("names", [THREAD, THREAD[::-1]], ids=["in-order", "reversed"])
def test_thread_over_three_files_is_one_conversation(names: list[str]) -> None:
    result = only(*names)
    conv = result.conversation
    assert conv.channel == "email"
    assert conv.source.system == "email"
    assert conv.source.source_id == "CAF7yQ2k9x+question-0001@mail.gmail.com"
    assert conv.subject == "Order #48213 arrived damaged"
    assert (
        conv.started_at is not None and conv.started_at.isoformat() == "2026-03-02T08:14:07+00:00"
    )

    texts = [u.text for u in conv.utterances]
    assert [u.participant_id for u in conv.utterances] == [
        "maria.gonzalez@gmail.com",
        "jane.doe@acme-support.com",
        "maria.gonzalez@gmail.com",
    ]
    assert texts[0].startswith("Hello,\n\nmy order #48213")
    assert texts[0].endswith("Thanks,\nMaria")  # "Sent from my iPhone" cut
    # Quoted reply ("On ... wrote:" wrapped over two lines) and "-- " signature removed;
    # quoted-printable soft line break joined; text/plain preferred over text/html.
    assert texts[1] == (
        "Hi Maria,\n\nI'm sorry the carafe arrived broken. I have sent a replacement today; "
        "you will get a tracking number by email.\n\nBest regards,"
    )
    # Outlook "-----Original Message-----" quote removed (CRLF file).
    assert texts[2] == "Thank you Jane, the replacement tracking number works."

    sent = [u.sent_at for u in conv.utterances]
    assert sent == sorted(sent)  # type: ignore[type-var]
    roles = {p.participant_id: p.role for p in conv.participants}
    assert roles == {
        "maria.gonzalez@gmail.com": Role.customer,
        "jane.doe@acme-support.com": Role.agent,
    }
    jane = next(p for p in conv.participants if p.role == Role.agent)
    assert (jane.name, jane.email) == ("Jane Doe", "jane.doe@acme-support.com")

    meta = conv.utterances[1].meta
    assert meta == {
        "message_id": "20260302113502.77AB1@mx1.acme-support.com",
        "subject": "Re: Order #48213 arrived damaged",
        "to": ["maria.gonzalez@gmail.com"],
        "cc": ["support@acme-support.com"],
        "in_reply_to": "CAF7yQ2k9x+question-0001@mail.gmail.com",
    }


def test_raw_records_keep_original_message_bytes() -> None:
    result = only(*THREAD[::-1])
    assert [r.locator for r in result.raw] == THREAD
    for record in result.raw:
        assert record.payload == (DATA / record.locator).read_bytes()
        assert record.encoding is None
        assert Path(record.source_path).name == record.locator


def test_idempotent_ids_and_hashes() -> None:
    names = [*THREAD, "support_inbox.mbox", "latin1.eml", "html_only.eml"]
    first = parsed(*names)
    second = parsed(*names)
    reversed_order = parsed(*names[::-1])
    key = [(r.conversation.conversation_id, r.conversation.content_hash()) for r in first]
    assert key == [(r.conversation.conversation_id, r.conversation.content_hash()) for r in second]
    assert key == [
        (r.conversation.conversation_id, r.conversation.content_hash()) for r in reversed_order
    ]
    assert len({cid for cid, _ in key}) == len(key)


def test_mbox_with_two_threads() -> None:
    results = parsed("support_inbox.mbox")
    assert len(results) == 2
    billing, shipping = (r.conversation for r in results)
    assert billing.subject == "Charged twice for invoice INV-2026-0311"
    assert len(billing.utterances) == 3
    assert billing.utterances[1].text.endswith("is on its way.\n\nSam")  # "--" signature cut
    assert billing.utterances[2].text == "Got it, thanks Sam!"  # Outlook "____" quote cut
    assert {p.participant_id: p.role for p in billing.participants} == {
        "tom.baker@outlook.com": Role.customer,
        "sam.patel@acme-support.com": Role.agent,  # billing@acme-support.com -> agent domain
    }
    # A reply without Message-ID joins by In-Reply-To and gets a synthetic id.
    assert shipping.subject == "Lieferadresse ändern"
    assert [p.name for p in shipping.participants] == ["Lena Müller", "Acme Support"]
    assert shipping.utterances[1].meta["message_id"].endswith("@convolens.invalid")

    locators = [r.locator for result in results for r in result.raw]
    assert locators[0] == "message 1 <billing-1@mail.outlook.com>"
    assert "message 4" in locators  # no Message-ID: number only
    box = mailbox.mbox(DATA / "support_inbox.mbox", create=False)
    stored = {box.get_bytes(key) for key in box.iterkeys()}
    assert {r.payload for result in results for r in result.raw} == stored


def test_agent_domains_option_overrides_the_guess() -> None:
    options = IngestOptions(agent_domains=["gmail.com"], source_system="support-inbox")
    conv = parsed(*THREAD, options=options)[0].conversation
    roles = {p.participant_id: p.role for p in conv.participants}
    assert roles["maria.gonzalez@gmail.com"] == Role.agent
    assert roles["jane.doe@acme-support.com"] == Role.customer
    assert conv.source.system == "support-inbox"


def test_messages_are_not_merged_by_subject(tmp_path: Path) -> None:
    body = "From: a@example.com\nSubject: Invoice\nDate: Mon, 2 Mar 2026 09:00:00 +0000\n\nhi {}\n"
    sources = []
    for number in (1, 2):
        path = tmp_path / f"m{number}.eml"
        path.write_text(body.format(number))
        sources.append(SourceFile.read(path))
    results = list(EmailAdapter().parse_many(sources))
    assert len(results) == 2 and all(isinstance(r, Parsed) for r in results)


# -- bodies and damage -------------------------------------------------------------------


def test_broken_mime_part_keeps_text_and_warns() -> None:
    result = only("broken_mime.eml")
    assert result.conversation.utterances[0].text == (
        "Hello, please find my invoice attached. Grüße, Priya"
    )
    assert any("part 1 (text/plain)" in w and "x-unknown-999" in w for w in result.warnings)
    assert any(
        w.startswith("broken_mime.eml: part 2 (application/pdf): could not decode")
        for w in result.warnings
    )


def test_multipart_without_boundary_is_recovered() -> None:
    result = only("no_boundary.eml")
    assert result.conversation.utterances[0].text == "The screenshot of the error is below."
    assert any("boundary" in w for w in result.warnings)


def test_latin1_message_is_decoded() -> None:
    conv = only("latin1.eml").conversation
    text = conv.utterances[0].text
    assert "Herr Müller" in text and "im café" in text
    assert conv.subject == "Rückerstattung"
    assert conv.participants[0].name == "Jürgen Müller"


def test_html_only_message_becomes_text() -> None:
    conv = only("html_only.eml").conversation
    assert conv.subject == "Cannot log in"  # "Fwd:" stripped
    assert conv.utterances[0].text == (
        'Hi team,\n\nI cannot log in since the update & the reset link says "expired".\n'
        "My user name is chen.wei.\n\nRegards,\nWei"
    )
    assert conv.participants[0].role == Role.customer  # help@ makes only acme-support agent


def test_garbled_date_still_ingests_with_warning() -> None:
    result = only("bad_date.eml")
    assert result.conversation.utterances[0].sent_at is None
    assert result.conversation.started_at is None
    assert any("sometime last week" in w for w in result.warnings)


def test_not_an_email_is_rejected_naming_the_file() -> None:
    results = parse("not_an_email.eml", "latin1.eml")
    rejects = [r for r in results if isinstance(r, Reject)]
    assert len(rejects) == 1
    assert rejects[0].describe().startswith("not_an_email.eml: not an email message")
    assert "not an email" in rejects[0].describe()
    assert len([r for r in results if isinstance(r, Parsed)]) == 1


def test_message_without_any_text_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "image.eml"
    path.write_text(
        "From: a@example.com\nSubject: pic\nContent-Type: image/png\n"
        "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
    )
    (reject,) = EmailAdapter().parse_many([SourceFile.read(path)])
    assert isinstance(reject, Reject) and reject.reason == "no readable text body"


def test_sniff() -> None:
    adapter = EmailAdapter()
    assert adapter.sniff(SourceFile(Path("archive"), b"From MAILER-DAEMON Mon Mar 2\n"))
    assert adapter.sniff(SourceFile(Path("x.EML"), b""))
    assert not adapter.sniff(SourceFile(Path("notes.txt"), b"From: me\n"))


def test_registered() -> None:
    from convolens.ingest.registry import get_adapter

    assert isinstance(get_adapter("email"), EmailAdapter)


# -- text rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Thanks!\n\nOn Mon, 2 Mar 2026, Ann <a@x.com> wrote:\n> old", "Thanks!"),
        ("Thanks!\nOn Mon, 2 Mar 2026 at 09:14, Ann <a@x.com>\nwrote:\n> old", "Thanks!"),
        ("Yes.\n\n-----Original Message-----\nFrom: Ann\nSent: today", "Yes."),
        ("Yes.\nFrom: Ann <a@x.com>\nSent: Monday\nTo: Bob\nSubject: Hi\n\nold", "Yes."),
        ("Yes.\n" + "_" * 32 + "\nFrom: Ann", "Yes."),
        ("Hi\n-- \nJane\nAcme", "Hi"),
        ("Hi\n--\nJane", "Hi"),
        ("Hi\n\nSent from my iPhone", "Hi"),
        ("Hi\n> quoted\nmore  \n\n\n\nend\n\n", "Hi\nmore\n\nend"),
        ("From: the start of the line is fine\nno header block", None),
        ("a -- b\n---\nc", None),
    ],
)
def test_clean_body(body: str, expected: str | None) -> None:
    assert clean_body(body) == (body if expected is None else expected)


def test_strip_reply_prefix() -> None:
    assert strip_reply_prefix("Re: RE: Fwd: FW[2]: AW: Order late") == "Order late"
    assert strip_reply_prefix("Regarding Return") == "Regarding Return"
    assert strip_reply_prefix(None) is None


def test_html_to_text_breaks_and_skips() -> None:
    html = (
        "<p>One<br>Two</p><div>Three &amp; four</div><blockquote>old</blockquote><style>x</style>"
    )
    assert html_to_text(html) == "One\nTwo\n\nThree & four"


def test_thread_id_is_the_original_message_even_when_it_is_not_in_the_batch() -> None:
    whole = [
        r
        for r in parse("thread_1_question.eml", "thread_2_agent_reply.eml")
        if isinstance(r, Parsed)
    ]
    partial = [r for r in parse("thread_2_agent_reply.eml") if isinstance(r, Parsed)]
    assert partial[0].conversation.conversation_id == whole[0].conversation.conversation_id
