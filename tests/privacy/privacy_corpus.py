"""Conversations with PII planted in every field, one per channel, and the grep that finds it.

Four values are planted: a card number (typed in groups and glued into a file name), a
phone number read out in words, an email on a `.internal` domain and a person's name. Each
goes into the text, the subject, `meta` (custom fields, a nested list), the utterances'
`meta` (an email's Subject, attachments' names), tags, and the customer's name, email and
external ids, of a chat (JSON), an email thread (.eml), a helpdesk ticket (Zendesk JSON)
and a call transcript (WebVTT with its sidecar). `leaks(text)` names what of them shows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

CARD = "4111 1111 1111 1111"
CARD_DIGITS = CARD.replace(" ", "")
PHONE_WORDS = "five five five, two one nine, eight three four seven"
PHONE_DIGITS = "5552198347"
EMAIL = "m.okonkwo@ledger.acme.internal"
NAME = "Marguerite Okonkwo"
AGENT = "Leo Martin"
AGENT_EMAIL = "leo@northwindcloud.com"

# What must never show outside the raw layer (case-insensitive).
_NEEDLES = {
    "card": re.compile(r"4111[\s\-_]?1111[\s\-_]?1111[\s\-_]?1111"),
    "spoken card": re.compile(r"four one one one,? one one one one", re.I),
    "spoken phone": re.compile(r"two one nine,? eight three four seven|555\W?219\W?8347", re.I),
    # A customer's own address keeps its organisation's domain (accounts are stitched by it):
    # the person, the local part, is what must go.
    "email": re.compile(r"m\.okonkwo|okonkwo@", re.I),
    "first name": re.compile(r"marguerite", re.I),
    "surname": re.compile(r"okonkwo", re.I),
}


def leaks(text: str) -> list[str]:
    """Which planted values `text` holds (empty: none)."""
    return [name for name, pattern in _NEEDLES.items() if pattern.search(text)]


def _sentences() -> list[str]:
    return [
        f"Hi, my name is {NAME} and I was charged twice.",
        f"The card was {CARD}, the Visa ending in one one one one.",
        f"You can call me back on {PHONE_WORDS}.",
        f"Or write to {EMAIL} please.",
    ]


def chat() -> dict[str, Any]:
    said = _sentences()
    return {
        "id": "privacy-chat-1",
        "source": "intercom",
        "channel": "chat",
        "language": "en",
        "started_at": "2026-11-02T09:00:00Z",
        "subject": f"Refund for {NAME}, card {CARD}",
        "queue": "Billing",
        "agent": AGENT,
        "tags": ["refund", "contact-marguerite-okonkwo", f"callback {PHONE_WORDS}"],
        "meta": {
            "customer_name": NAME,
            "contact": EMAIL,
            "notes": [f"card {CARD}", {"callback": PHONE_WORDS}],
        },
        "participants": [
            {
                "id": "c1",
                "name": NAME,
                "role": "customer",
                "email": EMAIL,
                "external_ids": {"crm": EMAIL},
            },
            {"id": "a1", "name": AGENT, "role": "agent"},
        ],
        "messages": [
            {
                "author": "c1",
                "text": said[0] + " " + said[1],
                "sent_at": "2026-11-02T09:00:05Z",
                "meta": {
                    "subject": f"Card for {NAME}",
                    "attachments": [{"name": f"marguerite_okonkwo_card_{CARD_DIGITS}.pdf"}],
                },
            },
            {
                "author": "a1",
                "text": "Sorry about that, I'm checking the charges now.",
                "sent_at": "2026-11-02T09:00:40Z",
            },
            {"author": "c1", "text": said[2] + " " + said[3], "sent_at": "2026-11-02T09:01:30Z"},
            {
                "author": "a1",
                "text": "Thanks, Marguerite. I have refunded the duplicate charge.",
                "sent_at": "2026-11-02T09:02:10Z",
            },
        ],
    }


def email() -> str:
    said = _sentences()
    return (
        f"From: {NAME} <{EMAIL}>\n"
        f"To: Northwind Support <support@northwindcloud.com>\n"
        f"Subject: Card {CARD} charged twice - {NAME}\n"
        "Date: Mon, 02 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <privacy-thread-1@mail.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b1"\n'
        "\n"
        "--b1\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        f"{said[0]}\n{said[1]}\n{said[2]}\n{said[3]}\n\nThanks,\n{NAME}\n"
        "--b1\n"
        "Content-Type: application/pdf\n"
        'Content-Disposition: attachment; filename="marguerite_okonkwo_statement.pdf"\n'
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "JVBERi0xLjQK\n"
        "--b1--\n"
    )


def ticket() -> dict[str, Any]:
    said = _sentences()
    return {
        "tickets": [
            {
                "id": 88421,
                "subject": f"Duplicate charge on {CARD} ({NAME})",
                "status": "open",
                "priority": "high",
                "created_at": "2026-11-03T09:14:00Z",
                "requester_id": 7001,
                "assignee_id": 21,
                "group": "Billing",
                "tags": ["refund", "okonkwo_marguerite"],
                "custom_fields": [{"id": 1, "value": EMAIL}, {"id": 2, "value": PHONE_WORDS}],
                "comments": [
                    {
                        "id": 1,
                        "author_id": 7001,
                        "body": "\n".join(said),
                        "public": True,
                        "created_at": "2026-11-03T09:14:00Z",
                    },
                    {
                        "id": 2,
                        "author_id": 21,
                        "body": "Hi Marguerite, the duplicate charge is refunded.",
                        "public": True,
                        "created_at": "2026-11-03T10:00:00Z",
                    },
                ],
            }
        ],
        "users": [
            {"id": 7001, "name": NAME, "email": EMAIL, "role": "end-user"},
            {"id": 21, "name": AGENT, "email": AGENT_EMAIL, "role": "agent"},
        ],
    }


def transcript() -> tuple[str, dict[str, Any]]:
    """A call transcript (WebVTT) and its sidecar."""
    cues = [
        (AGENT, "Thank you for calling Northwind billing, how can I help?"),
        (NAME, f"Hi, this is {NAME}, I was charged twice on my card."),
        (AGENT, "I'm sorry. Can you read me the card number?"),
        (NAME, "Sure, it's four one one one, one one one one, one one one one, one one one one."),
        (AGENT, "Thanks. And a callback number?"),
        (NAME, f"It's {PHONE_WORDS}. And my email is {EMAIL}."),
        (AGENT, "Got it, Marguerite. The refund is on its way."),
    ]
    lines = ["WEBVTT", ""]
    for index, (speaker, text) in enumerate(cues):
        start, end = index * 6, index * 6 + 5
        lines += [f"00:00:{start:02d}.000 --> 00:00:{end:02d}.000", f"<v {speaker}>{text}", ""]
    sidecar = {
        "id": "privacy-call-1",
        "source": "aircall",
        "channel": "call",
        "language": "en",
        "started_at": "2026-11-04T14:00:00Z",
        "subject": f"Callback for {NAME}",
        "queue": "Billing",
        "agent": AGENT,
        "tags": ["refund", f"caller {NAME}"],
        "roles": {AGENT: "agent", NAME: "customer"},
        "meta": {"caller_email": EMAIL, "card_on_file": CARD},
    }
    return "\n".join(lines), sidecar


def write_corpus(folder: Path) -> list[Path]:
    """The four files (and the transcript's sidecar) in `folder`; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "chat.json": json.dumps(chat()),
        "thread.eml": email(),
        "tickets.json": json.dumps(ticket()),
    }
    vtt, sidecar = transcript()
    files["call.vtt"] = vtt
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    (folder / "call.meta.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return [folder / name for name in files]
