"""Resolution component: real MiniLM embeddings, real trackers, realistic support chats."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from convolens.enrich.base import Annotation, Doc
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.resolution import ResolutionComponent, find_cues
from convolens.enrich.trackers import TrackerComponent
from convolens.model import Channel, Conversation


@pytest.fixture(scope="module")
def component(embedder: SentenceEmbedder) -> ResolutionComponent:
    return ResolutionComponent(embedder=embedder)


@pytest.fixture(scope="module")
def trackers(embedder: SentenceEmbedder) -> TrackerComponent:
    return TrackerComponent(embedder=embedder)


def status(labels: list[Annotation]) -> Annotation:
    [found] = [a for a in labels if a.label == "resolution.status"]
    return found


def escalations(labels: list[Annotation], kind: str | None = None) -> list[Annotation]:
    return [
        a for a in labels if a.label == "escalation" and (kind is None or a.value["kind"] == kind)
    ]


def spans(doc: Doc, annotation: Annotation) -> list[str]:
    index = {uid: i for i, uid in enumerate(doc.utterance_ids)}
    utterances = doc.conversation.utterances
    return [
        utterances[index[e.utterance_id]].text[e.start_char : e.end_char]
        for e in annotation.evidence
    ]


def test_thanks_after_a_fix_is_solved_with_that_turn_as_evidence(component, make_doc) -> None:
    doc = make_doc(
        "solved",
        [
            ("c", "Hi, I can't log in, it keeps saying my password is wrong."),
            ("a", "Sorry about that! I've sent a reset link to your email, could you try it?"),
            ("c", "Just did it, that worked, thanks so much!"),
            ("a", "Great! Is there anything else I can help you with today?"),
        ],
    )
    [labels] = component([doc])
    result = status(labels)
    assert result.value["status"] == "solved"
    assert result.value["reasons"] == ["customer_confirmed"]
    assert result.value["escalated"] is False
    assert [e.utterance_id for e in result.evidence] == ["solved:2"]
    assert spans(doc, result) == ["that worked"]
    assert not escalations(labels)


def test_transfer_to_billing_is_escalated(component, make_doc) -> None:
    doc = make_doc(
        "transfer",
        [
            ("c", "I was charged twice for my subscription this month."),
            ("a", "I'm sorry! Refunds are billing's, let me transfer you to our billing team."),
            ("c", "ok thanks"),
        ],
    )
    [labels] = component([doc])
    result = status(labels)
    assert result.value["status"] == "escalated"
    assert result.value["escalated"] is True
    assert result.value["escalation_kinds"] == ["transfer"]
    [transfer] = escalations(labels, "transfer")
    assert transfer.utterance_id == "transfer:1"
    assert transfer.value["by"] == "agent"
    assert spans(doc, transfer) == ["let me transfer you to our billing team"]
    assert transfer.value["text"] == "let me transfer you to our billing team"
    assert "let me transfer you to our billing team" in spans(doc, result)


def test_repeat_contact_is_an_escalation_even_when_solved(component, make_doc) -> None:
    doc = make_doc(
        "repeat",
        [
            ("c", "This is the third time I'm calling about this, my internet keeps dropping."),
            ("a", "I'm really sorry. I've reset the line on our side, that should fix it."),
            ("c", "It's working now, thank you."),
        ],
    )
    [labels] = component([doc])
    [repeat] = escalations(labels, "repeat_contact")
    assert repeat.utterance_id == "repeat:0"
    assert spans(doc, repeat) == ["This is the third time"]
    result = status(labels)
    assert result.value["status"] == "solved"
    assert result.value["escalated"] is True
    assert result.value["escalation_kinds"] == ["repeat_contact"]


def test_unanswered_agent_question_in_chat_is_abandoned(component, make_doc) -> None:
    turns = [
        ("c", "My order still hasn't arrived and it's been two weeks."),
        ("a", "I'm sorry to hear that. Could you give me your order number so I can check?"),
    ]
    chat = make_doc("abandoned", turns)
    [labels] = component([chat])
    result = status(labels)
    assert result.value["status"] == "abandoned"
    assert "agent_question_unanswered" in result.value["reasons"]
    assert [e.utterance_id for e in result.evidence] == ["abandoned:1"]
    # On a call the customer cannot "stop replying": the same ending is not abandonment.
    call = make_doc("call", turns)
    call.conversation.channel = Channel.call
    [labels] = component([call])
    assert status(labels).value["status"] == "unresolved"


def test_follow_up_promise_is_pending(component, make_doc) -> None:
    doc = make_doc(
        "pending",
        [
            ("c", "The CSV export fails with a timeout on our big table."),
            ("a", "I can reproduce it. I'll get back to you by tomorrow once engineering replies."),
            ("c", "ok, thanks"),
        ],
    )
    [labels] = component([doc])
    result = status(labels)
    assert result.value["status"] == "pending"
    assert result.value["reasons"][0] == "agent_promised_follow_up"
    assert "I'll get back to you" in spans(doc, result)
    assert all(e.utterance_id == "pending:1" for e in result.evidence)


def test_angry_customer_leaving_without_a_fix_is_unresolved(component, make_doc) -> None:
    doc = make_doc(
        "angry",
        [
            ("c", "My package was marked delivered but it never arrived."),
            ("a", "I'm sorry, our records show it was left at your front door."),
            ("c", "I checked everywhere. It is not there."),
            ("a", "Unfortunately we can't open a claim until 48 hours have passed."),
            ("c", "This is ridiculous. Absolutely useless support, I'm done with you people."),
        ],
    )
    [labels] = component([doc])
    result = status(labels)
    assert result.value["status"] == "unresolved"
    assert result.value["reasons"] == ["customer_dissatisfied"]
    assert spans(doc, result) == ["ridiculous", "useless", "I'm done with"]
    assert {e.utterance_id for e in result.evidence} == {"angry:4"}


def test_unpunctuated_transcript_and_curly_apostrophes(component, make_doc) -> None:
    assert find_cues("ok that worked thanks", "customer") == [
        ("ack", 0, 2),
        ("confirm", 3, 14),
        ("thanks", 15, 21),
    ]
    text = "I\u2019m escalating this to our tier 2 team"
    [(category, start, end)] = find_cues(text, "agent")
    assert (category, text[start:end]) == ("agent_escalated", "I\u2019m escalating")
    doc = make_doc(
        "asr",
        [
            ("c", "hi yeah i was charged twice on my card"),
            ("a", "okay let me transfer you to billing they can refund that"),
        ],
    )
    doc.conversation.channel = Channel.call
    [labels] = component([doc])
    assert status(labels).value["status"] == "escalated"
    assert spans(doc, escalations(labels, "transfer")[0]) == [
        "let me transfer you to billing they can refund that"
    ]


def test_agent_escalation_complaint_and_internal_notes(component, make_doc) -> None:
    doc = make_doc(
        "kinds",
        [
            (
                "c",
                "Sync has been broken since Monday. If it isn't fixed today I'll file a complaint.",
            ),
            ("a", "Escalating to tier 2, customer is furious."),
            ("a", "I've raised a ticket with our engineering team and marked it urgent."),
            ("c", "Fine."),
        ],
        internal={1},
    )
    [labels] = component([doc])
    [threat] = escalations(labels, "complaint_threat")
    assert threat.utterance_id == "kinds:0"
    assert "file a complaint" in spans(doc, threat)[0]
    [agent] = escalations(labels, "agent_escalated")
    assert agent.utterance_id == "kinds:2"  # the internal note is never read
    assert spans(doc, agent)[0].startswith("I've raised a ticket with our engineering team")
    assert status(labels).value["status"] == "escalated"


def test_tracker_escalation_request_is_used(component, trackers, make_doc) -> None:
    doc = make_doc(
        "tracker",
        [
            ("c", "Is there a supervisor available? I've been waiting an hour."),
            ("a", "Yes, one moment."),
        ],
    )
    [found] = trackers([doc])
    doc.annotations.extend(found)
    [labels] = component([doc])
    [event] = escalations(labels, "supervisor")
    assert event.value["source"] == "tracker"
    assert spans(doc, event) == ["supervisor"]


def test_ticket_status_and_tags_win(component, make_doc) -> None:
    doc = make_doc(
        "ticket",
        [
            ("c", "The invoice PDF shows the wrong VAT number."),
            ("a", "Could you send me the correct VAT number?"),
        ],
    )
    doc.conversation.channel = Channel.ticket
    doc.conversation.meta["status"] = "solved"
    doc.conversation.source.tags = ["billing", "escalation"]
    [labels] = component([doc])
    result = status(labels)
    assert result.value["status"] == "solved"
    assert result.value["reasons"][:2] == ["ticket_status:solved", "text_suggested:abandoned"]
    assert result.value["escalated"] is True
    tagged = make_doc("tagged", [("c", "Where is my order?"), ("a", "It ships today.")])
    tagged.conversation.source.tags = ["status: pending"]
    [labels] = component([tagged])
    assert status(labels).value["status"] == "pending"
    no_meta = ResolutionComponent({"use_metadata": False}, embedder=component.embedder)
    [labels] = no_meta([doc])
    assert status(labels).value["status"] == "abandoned"


def test_config_is_validated(embedder: SentenceEmbedder) -> None:
    with pytest.raises(ValidationError, match="windw"):
        ResolutionComponent({"windw": 3}, embedder=embedder)


def test_answer_without_reply_is_assumed_solved(component, make_doc) -> None:
    doc = make_doc(
        "assumed",
        [
            ("c", "How do I reset my password? Thanks in advance"),
            ("a", "Go to Settings > Security and click Reset: https://help.example.com/r?hl=en"),
        ],
    )
    [labels] = component([doc])
    result = status(labels)
    # "Thanks in advance" came before the answer: it confirms nothing; "?hl=en" asks nothing.
    assert result.value["reasons"] == ["agent_answered_last", "no_customer_confirmation"]
    assert (result.value["status"], result.confidence) == ("solved", 0.55)
    assert spans(doc, result) == [
        "Go to Settings > Security and click",
        "https://help.example.com/r?hl=en",
    ]


def test_bot_handover_is_labelled_but_not_counted(component) -> None:
    conversation = Conversation.model_validate(
        {
            "conversation_id": "bot",
            "channel": "chat",
            "source": {"system": "test"},
            "participants": [
                {"participant_id": "c", "role": "customer"},
                {"participant_id": "b", "role": "bot"},
                {"participant_id": "a", "role": "agent"},
            ],
            "utterances": [
                {"participant_id": "c", "text": "I need to change the address on my order."},
                {"participant_id": "b", "text": "I'm connecting you with our Support team."},
                {"participant_id": "a", "text": "Hi! I've updated the address on your order."},
                {"participant_id": "c", "text": "Perfect, thank you!"},
            ],
        }
    )
    doc = Doc("bot", 1, conversation, [f"bot:{i}" for i in range(4)])
    [labels] = component([doc])
    [handover] = escalations(labels, "transfer")
    assert (handover.value["by"], handover.utterance_id) == ("bot", "bot:1")
    result = status(labels)
    assert result.value["status"] == "solved"
    assert result.value["escalated"] is False
    assert result.value["escalation_kinds"] == []
