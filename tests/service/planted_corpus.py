"""A small corpus with a planted phrase, for the tests that read response bodies for text.

Seven chats in the latest week share a made-up product, "zebraquill quorvantix", that no
model, taxonomy or sample file knows: it can only reach a response by being taken from
these conversations. Seven is enough for it to be those chats' top keyphrase (a topic),
the c-TF-IDF label of their problem cluster and a rising spike against four quiet weeks
of ordinary billing, login, seat and crash chats. One of the quiet chats, the only one
the agent key's agent handled, carries a second made-up word ("ottervine") so a test can
show that agent keys do read their own conversations' text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

PLANTED_WORDS = ("zebraquill", "quorvantix")
PLANTED_PHRASE = " ".join(PLANTED_WORDS)
OWN_WORD = "ottervine"
AGENT = "Ada Quinn"  # the agent key's agent: owns one quiet chat, none of the planted ones
ACCOUNTS_CSV = (
    "account_id,name,email_domain,contact_emails,plan,seats,arr,created_at,churned_at,"
    "campaign_id\n"
    "ACC-7001,Harbor Lights,harborlights.example,,Team,10,6000,2025-01-10,,\n"
    "ACC-7002,Copperfield Labs,copperfield.example,,Business,40,24000,2024-05-02,"
    "2026-11-20,\n"
    "ACC-7003,Tallgrass Studio,tallgrass.example,,Team,5,3000,2025-03-15,,\n"
)
# The latest week (Monday) and the four before it.
LATEST_WEEK = datetime(2026, 10, 26, 9, 0, tzinfo=UTC)

# The name stands between stop words and punctuation, so that it, not a longer run of
# content words around it ("fix zebraquill quorvantix"), is each chat's top keyphrase.
PLANTED_OPENINGS = [
    "Zebraquill quorvantix is down. Is zebraquill quorvantix down for everyone?",
    "Our zebraquill quorvantix is not working, and zebraquill quorvantix was fine before.",
    "Hello, zebraquill quorvantix is broken again. Why is zebraquill quorvantix always broken?",
    "Zebraquill quorvantix has stopped, so we can't do anything with zebraquill quorvantix.",
    "Zebraquill quorvantix is slow, and then zebraquill quorvantix is down.",
    "When will zebraquill quorvantix be back? Zebraquill quorvantix is still down.",
    "Is there an outage of zebraquill quorvantix? Zebraquill quorvantix is not loading.",
]
QUIET_OPENINGS = [
    "I was charged twice for my subscription this month, please refund the extra charge.",
    "I can't log in, the password reset email never arrives.",
    "How do I add two more seats to our team plan?",
    "The mobile app crashes when I open the billing page.",
]
OWN_OPENING = "The ottervine invoice total looks wrong, can you check the ottervine line?"
AGENT_REPLIES = [
    "Thanks for reaching out, I'm looking into this for you now.",
    "I have escalated it to the right team and will follow up by email today.",
]


def _chat(
    cid: str, at: datetime, opening: str, agent: str, account: str, follow_up: str
) -> dict[str, Any]:
    def sent(seconds: int) -> str:
        return (at + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    return {
        "id": cid,
        "source": "access-test",
        "channel": "chat",
        "language": "en",
        "started_at": sent(0),
        "queue": "Support",
        "agent": agent,
        "links": {"account_id": account},
        "participants": [
            {"id": "c1", "name": "Customer", "role": "customer"},
            {"id": "a1", "name": agent, "role": "agent"},
        ],
        "messages": [
            {"author": "c1", "text": opening, "sent_at": sent(5)},
            {"author": "a1", "text": AGENT_REPLIES[0], "sent_at": sent(40)},
            {"author": "c1", "text": follow_up, "sent_at": sent(90)},
            {"author": "a1", "text": AGENT_REPLIES[1], "sent_at": sent(130)},
        ],
    }


def conversations() -> list[dict[str, Any]]:
    """The planted chats (ids `planted-N`), the quiet ones (`quiet-W-N`) and Ada's own."""
    accounts = ("ACC-7001", "ACC-7002", "ACC-7003")
    out = []
    for i, opening in enumerate(PLANTED_OPENINGS):
        at = LATEST_WEEK + timedelta(days=i % 3, hours=i)
        out.append(
            _chat(
                f"planted-{i}", at, opening, ("Leo Martin", "Sam Patel")[i % 2],
                accounts[i % 3], "So zebraquill quorvantix, please. Zebraquill quorvantix!",
            )
        )  # fmt: skip
    for week in range(1, 5):
        for i, opening in enumerate(QUIET_OPENINGS[:3] if week % 2 else QUIET_OPENINGS[1:]):
            at = LATEST_WEEK - timedelta(weeks=week) + timedelta(days=i, hours=i)
            out.append(
                _chat(
                    f"quiet-{week}-{i}", at, opening, ("Leo Martin", "Sam Patel")[i % 2],
                    accounts[(week + i) % 3], "Thank you, that would help a lot.",
                )
            )  # fmt: skip
    at = LATEST_WEEK - timedelta(weeks=2, days=-1, hours=-3)
    out.append(_chat("own-0", at, OWN_OPENING, AGENT, "ACC-7001", "Thanks, I'll wait."))
    return out
