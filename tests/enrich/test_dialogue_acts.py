"""Dialogue acts: questions, action items and follow-ups on real sentences, offline."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from convolens.enrich.base import Annotation, Doc
from convolens.enrich.dialogue_acts import DialogueActComponent, resolve_due
from convolens.enrich.entities import EntityComponent
from convolens.enrich.nlp import PARSED_KEY

# Wednesday 18 November 2026, 10:00 UTC.
STARTED = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def component() -> DialogueActComponent:
    return DialogueActComponent()


@pytest.fixture
def dated(make_doc):
    def build(cid: str, turns: list[tuple[str, str]], **kwargs) -> Doc:
        doc = make_doc(cid, turns, **kwargs)
        doc.conversation.started_at = STARTED
        return doc

    return build


def labelled(labels: list[Annotation], name: str, **match) -> list[Annotation]:
    return [
        a for a in labels if a.label == name and all(a.value.get(k) == v for k, v in match.items())
    ]


def evidence_text(doc: Doc, annotation: Annotation) -> str:
    [ev] = annotation.evidence
    text = doc.conversation.utterances[doc.utterance_ids.index(ev.utterance_id)].text
    return text[ev.start_char : ev.end_char]


def test_commitment_with_due_date_resolved_from_conversation_start(
    component: DialogueActComponent, dated
) -> None:
    doc = dated(
        "commit",
        [
            ("c", "Where is my invoice?"),
            ("a", "Sorry about that. I'll send you the invoice by Friday."),
        ],
    )
    [labels] = component([doc])
    [item] = labelled(labels, "action_item")
    assert item.value["kind"] == "commitment"
    assert (item.value["owner"], item.value["owner_role"]) == ("a", "agent")
    assert (item.value["due"], item.value["due_text"]) == ("2026-11-20", "by Friday")
    assert item.value["follow_up"] is False and item.utterance_id == "commit:1"
    assert evidence_text(doc, item) == "I'll send you the invoice by Friday."
    assert component.model_id == "en_core_web_sm-3.8.0+convolens-conversation-encoder-v3"


def test_request_is_owned_by_the_addressee(component: DialogueActComponent, dated) -> None:
    doc = dated(
        "request",
        [
            ("c", "can you reset my password"),
            ("a", "Sure, I have reset it just now."),
            ("c", "please send me the receipt too"),
        ],
    )
    [labels] = component([doc])
    requests = labelled(labels, "action_item", kind="request")
    assert [
        (a.value["owner"], a.value["owner_role"], a.value["requested_by"]) for a in requests
    ] == [
        ("a", "agent", "c"),
        ("a", "agent", "c"),
    ]
    assert [evidence_text(doc, a) for a in requests] == [
        "can you reset my password",
        "please send me the receipt too",
    ]
    # "can you ..." is also a yes/no question, flagged as a request, answered by "Sure, ...".
    [question] = labelled(labels, "question")
    assert question.value["kind"] == "yes_no" and question.value["request"] is True
    assert question.value["answer_utterance_id"] == "request:1"


def test_answered_and_unanswered_questions(component: DialogueActComponent, dated) -> None:
    doc = dated(
        "answers",
        [
            ("c", "Hi, how do I change my plan"),
            ("a", "ok"),
            ("a", "Go to Settings and pick Billing, then choose the new plan."),
            ("c", "Thanks! And do you offer a discount for charities?"),
        ],
    )
    [labels] = component([doc])
    first, last = labelled(labels, "question")
    # No "?" in the transcript: interrogative syntax makes it a question.
    assert first.value["kind"] == "wh" and evidence_text(doc, first) == "how do I change my plan"
    assert (first.value["answered"], first.value["answered_by"]) == (True, "a")
    # "ok" is a backchannel, not an answer: the answer is the next substantive turn.
    assert first.value["answer_utterance_id"] == "answers:2"
    assert evidence_text(doc, last) == "do you offer a discount for charities?"
    assert last.value == {
        "text": "do you offer a discount for charities?",
        "asked_by": "c",
        "role": "customer",
        "kind": "yes_no",
        "request": False,
        "answered": False,
        "answered_by": None,
        "answer_utterance_id": None,
    }
    [summary] = labelled(labels, "dialogue_acts.summary")
    assert summary.value["questions"] == {
        "total": 2,
        "by_role": {"customer": 2},
        "by_participant": {"c": 2},
        "unanswered": 1,
        "unanswered_by_role": {"customer": 1},
    }


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("how do I change my plan", "wh"),
        ("which one of these plans is cheaper", "wh"),
        ("is there a way to export my data", "yes_no"),
        ("so um how how much does the pro plan cost", "wh"),
        ("I was wondering whether you offer discounts", "indirect"),
        ("why don't you just refund it", "open"),
        ("Do you want the blue one or the red one", "alternative"),
        ("you got my email?", "declarative"),
        ("when I log in it crashes", None),
        ("what I need is a refund", None),
        ("I know how it works", None),
    ],
)
def test_question_forms(component: DialogueActComponent, make_doc, text: str, kind) -> None:
    [labels] = component([make_doc("q", [("c", text)])])
    assert [a.value["kind"] for a in labelled(labels, "question")] == ([kind] if kind else [])


def test_question_evidence_is_the_question_clause(component: DialogueActComponent, make_doc):
    doc = make_doc("greet", [("a", "Thanks for calling Acme, this is Sam, how can I help?")])
    [labels] = component([doc])
    [question] = labelled(labels, "question")
    assert evidence_text(doc, question) == "how can I help?"
    assert question.confidence == 0.9  # "?" and syntax agree


def test_follow_ups_with_channel_and_due(component: DialogueActComponent, dated) -> None:
    doc = dated(
        "follow",
        [
            ("c", "My card was charged twice."),
            ("a", "I'll call you back tomorrow."),
            ("a", "let me check and get back to you"),
            ("a", "We will refund you within 5 business days and we'll follow up by email."),
        ],
    )
    [labels] = component([doc])
    follow_ups = labelled(labels, "follow_up")
    assert [(f.value["channel"], f.value["due"]) for f in follow_ups] == [
        ("phone", "2026-11-19"),
        (None, None),
        ("email", "2026-11-25"),
    ]
    assert all(f.value["owner"] == "a" for f in follow_ups)
    assert evidence_text(doc, follow_ups[1]) == "let me check and get back to you"
    [refund] = [a for a in labelled(labels, "action_item") if a.utterance_id == "follow:3"]
    assert refund.value["verbs"] == ["refund", "follow"]
    assert refund.value["due_text"] == "within 5 business days"
    [summary] = labelled(labels, "dialogue_acts.summary")
    assert summary.value["follow_ups"] == 3
    assert summary.value["action_items"]["by_owner"] == {"a": 3}


def test_not_commitments(component: DialogueActComponent, make_doc) -> None:
    doc = make_doc(
        "nots",
        [
            ("c", "We won't be renewing next year."),
            ("c", "If we're going to cancel, what happens to our data?"),
            ("a", "I was going to call you yesterday."),
            ("c", "I'll be honest, I think it's fine."),
            ("a", "Will you be around tomorrow?"),
        ],
    )
    [labels] = component([doc])
    assert labelled(labels, "action_item", kind="commitment") == []


def test_agent_passive_commitment_and_sent_at_base(component: DialogueActComponent, make_doc):
    doc = make_doc(
        "passive",
        [
            ("c", "Any news on my refund?"),
            ("a", "Your refund will be processed by the end of the week."),
        ],
    )
    doc.conversation.utterances[1].sent_at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday
    [labels] = component([doc])
    [item] = labelled(labels, "action_item")
    assert (item.value["kind"], item.value["owner"], item.value["due"]) == (
        "commitment",
        "a",
        "2026-11-27",
    )
    # The same sentence from a customer commits nobody.
    doc = make_doc("passive2", [("c", "Your refund will be processed by the end of the week.")])
    [labels] = component([doc])
    assert labelled(labels, "action_item") == []


def test_internal_notes_are_skipped(component: DialogueActComponent, make_doc) -> None:
    doc = make_doc(
        "internal",
        [("c", "can you help me"), ("a", "I'll ask billing to refund it."), ("a", "Sure!")],
        internal={1},
    )
    [labels] = component([doc])
    found = {a.utterance_id for a in labels if a.utterance_id and a.label != "dialogue_act"}
    assert found == {"internal:0"}
    # The internal note gets no label at all, not even its act.
    assert "internal:1" not in {a.utterance_id for a in labels}


@pytest.mark.parametrize(
    ("phrase", "due"),
    [
        ("by Friday", date(2026, 11, 20)),
        ("no later than Monday", date(2026, 11, 23)),
        ("tomorrow", date(2026, 11, 19)),
        ("within 5 business days", date(2026, 11, 25)),
        ("by the end of the week", date(2026, 11, 20)),
        ("by the end of the month", date(2026, 11, 30)),
        ("end of day", date(2026, 11, 18)),
        ("in 2 weeks", date(2026, 12, 2)),
        ("a couple of days", date(2026, 11, 20)),
        ("asap", None),
    ],
)
def test_resolve_due(phrase: str, due: date | None) -> None:
    assert resolve_due(phrase, STARTED) == due
    assert resolve_due(phrase, None) is None


def test_both_components_share_one_parse(make_doc) -> None:
    doc = make_doc("shared", [("c", "Hi, this is Dana from Acme. Can you call me back?")])
    EntityComponent()([doc])
    parsed = doc.cache[PARSED_KEY]
    DialogueActComponent()([doc])
    assert doc.cache[PARSED_KEY] is parsed


def test_support_phrasings(component: DialogueActComponent, make_doc) -> None:
    doc = make_doc(
        "support",
        [
            ("a", "Hi, Gary, what happened?"),
            ("c", "My order never came."),
            ("a", "Sorry! May I have your order number please?"),
            ("c", "It's 1234. You should have seen it in your system."),
            ("a", "I have let my manager know, they will give you a call."),
            ("a", "I hope to be able to let you know more within the week."),
            ("c", "Thanks, take care."),
        ],
    )
    [labels] = component([doc])
    questions = labelled(labels, "question")
    assert [(q.value["kind"], evidence_text(doc, q)) for q in questions] == [
        ("wh", "what happened?"),
        ("yes_no", "May I have your order number please?"),
    ]
    # The agent asks for the number: the customer is to give it.
    [request] = labelled(labels, "action_item", kind="request")
    assert (request.utterance_id, request.value["owner"]) == ("support:2", "c")
    # Staff commit their side ("they will give you a call"): a follow-up by phone.
    [follow_up] = labelled(labels, "follow_up")
    assert (follow_up.utterance_id, follow_up.value["channel"]) == ("support:4", "phone")
    assert follow_up.value["owner"] == "a"
    # "you should have seen it" is a reproach, "take care" a goodbye: neither asks anything.
    quiet = {"support:3", "support:6"}
    assert not [a for a in labels if a.utterance_id in quiet and a.label != "dialogue_act"]


def test_due_date_must_belong_to_the_item(component: DialogueActComponent, dated) -> None:
    doc = dated(
        "due",
        [
            ("a", "Let me check whether anything changed on our side on Friday."),
            ("a", "Sure, I'll email you the report no later than Monday."),
        ],
    )
    [labels] = component([doc])
    check, email = labelled(labels, "action_item")
    # "on Friday" dates the change, not the check.
    assert (check.value["verbs"], check.value["due"]) == (["check"], None)
    assert (email.value["due"], email.value["due_text"]) == ("2026-11-23", "no later than Monday")
    assert email.value["follow_up"] is True and email.value["channel"] == "email"


# Raw speech-recogniser text: no "?", no capitals, no full stops.
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("can you send me the invoice", "yes_no"),
        ("so what time does the meeting start tomorrow", "wh"),
        ("did you get a chance to look at the contract", "yes_no"),
        ("i went to the store yesterday and bought milk", None),
        ("okay", None),
    ],
)
def test_questions_in_raw_asr_text(component: DialogueActComponent, make_doc, text, kind) -> None:
    [labels] = component([make_doc("asr", [("c", text)])])
    assert [a.value["kind"] for a in labelled(labels, "question")] == ([kind] if kind else [])


def test_raw_asr_commitment_keeps_owner_and_due(component: DialogueActComponent, dated) -> None:
    doc = dated(
        "asr-commit", [("c", "can you send me the invoice"), ("a", "i'll send it over by friday")]
    )
    [labels] = component([doc])
    [item] = labelled(labels, "action_item", kind="commitment")
    assert item.utterance_id == "asr-commit:1"
    assert (item.value["owner"], item.value["owner_role"]) == ("a", "agent")
    assert (item.value["due"], item.value["due_text"]) == ("2026-11-20", "by friday")


def test_dialogue_act_per_utterance(component: DialogueActComponent, make_doc) -> None:
    doc = make_doc(
        "acts",
        [
            ("c", "my internet has been down since monday"),
            ("a", "uh-huh"),
            ("c", "what do i do now"),
            ("a", "i'll send a technician tomorrow morning"),
        ],
    )
    [labels] = component([doc])
    acts = {a.utterance_id: a.value["act"] for a in labelled(labels, "dialogue_act")}
    assert acts == {
        "acts:0": "statement",
        "acts:1": "backchannel",
        "acts:2": "question_wh",
        "acts:3": "commitment",
    }
    assert component.model_id.endswith("+convolens-conversation-encoder-v3")


def test_rules_alone_by_name(make_doc) -> None:
    rules = DialogueActComponent({"model": "rules"})
    assert rules.encoder is None and "+" not in (rules.model_id or "")
    [labels] = rules([make_doc("r", [("c", "Can you send me the invoice?")])])
    assert [a.value["kind"] for a in labelled(labels, "question")] == ["yes_no"]
    assert labelled(labels, "dialogue_act") == []
