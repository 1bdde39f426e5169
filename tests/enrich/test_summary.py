"""Summary component: the real MiniLM model on a real support chat, and a real HTTP LLM."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from test_conversation_type import QMSUM, example_docs, qmsum_doc

from convolens.enrich.base import Annotation, Doc, Evidence
from convolens.enrich.conversation_type import ConversationTypeComponent
from convolens.enrich.dialogue_acts import DialogueActComponent
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.summary import (
    LlmError,
    LlmUnavailableError,
    OpenAICompatibleBackend,
    SummaryComponent,
    lexrank,
    scrub_contact_details,
)
from convolens.enrich.summary.segmentation import boundaries_to_labels, pk, texttiling, window_diff

CHAT = [
    ("a", "Hi there, thanks for contacting Northwind support!"),
    ("c", "Hello."),
    (
        "c",
        "My card payment failed at checkout three times and now my order is stuck "
        "as unpaid even though my bank shows a pending charge.",
    ),
    ("a", "Sorry about that. Can you tell me the order number?"),
    ("c", "Sure, it is ORD-55812."),
    (
        "a",
        "The pending charge was a card authorisation hold that our payment provider "
        "declined because the billing address did not match.",
    ),
    (
        "a",
        "I have cancelled the duplicate authorisations and marked your order as paid, "
        "so it will ship today and the holds drop off within five days.",
    ),
    ("c", "Great, thank you so much!"),
    ("a", "You're welcome, have a great day!"),
]


@pytest.fixture(scope="module")
def component(embedder: SentenceEmbedder) -> SummaryComponent:
    return SummaryComponent(embedder=embedder)


def extractive(labels: list[Annotation]) -> Annotation:
    [label] = [a for a in labels if a.label == "summary.extractive"]
    return label


def test_picks_problem_and_resolution_not_greetings(component, make_doc) -> None:
    doc = make_doc("sum", CHAT)
    start = CHAT[6][1].index("it will ship today")
    promise = Evidence("sum:6", start, start + len("it will ship today"))
    doc.annotations.append(
        Annotation(
            "action_item",
            {"kind": "commitment", "text": "ship the order today", "owner": "agent", "due": None},
            0.9,
            "sum:6",
            [promise],
        )
    )
    [labels] = component([doc])
    summary = extractive(labels)
    ids = [s["utterance_id"] for s in summary.value["sentences"]]
    assert "sum:2" in ids  # the problem, in the customer's words
    assert "sum:6" in ids  # the resolution
    assert not {"sum:0", "sum:1", "sum:7", "sum:8"} & set(ids)  # greetings and thanks
    assert ids == sorted(ids, key=lambda u: int(u.split(":")[1]))
    roles = {s["utterance_id"]: s["role"] for s in summary.value["sentences"]}
    assert roles["sum:2"] == "customer" and roles["sum:6"] == "agent"
    # The line on top is the overview, in the third person, from the support fields.
    overview = summary.value["text"]
    assert overview == summary.value["overview"] and summary.value["type"] == "support"
    assert overview.startswith("The customer's card payment failed"), overview
    assert "the agent has cancelled the duplicate authorisations" in overview
    assert not {"Hi", "Hello", "Thanks", "Great"} & set(overview.replace(",", " ").split())
    fields = summary.value["fields"]
    assert [i["utterance_id"] for i in fields["reason"]] == ["sum:2"]
    assert [i["utterance_id"] for i in fields["actions_taken"]] == ["sum:6"]
    # Evidence: the whole chosen turns, then the action item's own span.
    texts = dict(zip(doc.utterance_ids, (u.text for u in doc.conversation.utterances), strict=True))
    for sentence, ev in zip(summary.value["sentences"], summary.evidence, strict=False):
        assert ev.utterance_id == sentence["utterance_id"]
        assert texts[ev.utterance_id][ev.start_char : ev.end_char] == sentence["text"]
    [item] = summary.value["action_items"]
    assert item == {
        "kind": "commitment",
        "text": "It will ship today",
        "owner": "agent",
        "due": None,
        "utterance_id": "sum:6",
        "start": start,
        "end": start + len("it will ship today"),
        "speaker": "the agent",
    }
    assert promise in summary.evidence
    assert summary.value["decisions"] == []
    assert not [a for a in labels if a.label == "summary.abstractive"]


def test_decisions_and_long_turns(embedder: SentenceEmbedder, make_doc) -> None:
    long_mail = (
        "Thanks for the call yesterday. To recap the rollout, we walked through the "
        "three options for migrating the warehouse dashboards before the audit. "
        "The nightly export keeps timing out on the shipments table, which blocks the "
        "finance team every Monday. After comparing costs we decided to move the export "
        "to the background job queue instead of buying more capacity. Legal still needs "
        "to review the data retention clause, and procurement asked for the updated quote."
    )
    doc = make_doc(
        "mail",
        [
            ("c", long_mail),
            ("a", "Agreed, let's go with the background export; I will send the quote."),
            ("a", "Internal: we agreed to give them 20% off, do not mention it yet."),
        ],
        internal={2},
    )
    component = SummaryComponent({"max_sentences": 2}, embedder=embedder)
    [labels] = component([doc])
    summary = extractive(labels)
    # A long turn is cut into sentences: the summary cites sentences, not the whole mail.
    [from_mail] = [s for s in summary.value["sentences"] if s["utterance_id"] == "mail:0"]
    assert from_mail["text"].endswith(".") and len(from_mail["text"]) < len(long_mail) / 2
    assert long_mail[from_mail["start"] : from_mail["end"]] == from_mail["text"]
    assert "Thanks for the call" not in from_mail["text"]
    assert [s["utterance_id"] for s in summary.value["sentences"]] == ["mail:0", "mail:1"]
    decisions = summary.value["decisions"]
    assert [d["utterance_id"] for d in decisions] == ["mail:0", "mail:1"]
    assert (
        decisions[1]["text"]
        == "Agreed, let's go with the background export; I will send the quote."
    )
    assert decisions[0]["text"].startswith("After comparing costs we decided")
    assert long_mail[decisions[0]["start"] : decisions[0]["end"]] == decisions[0]["text"]
    # The internal note's "we agreed" is not the customer's conversation.
    assert all(d["utterance_id"] != "mail:2" for d in decisions)
    assert all(e.utterance_id != "mail:2" for e in summary.evidence)


def test_nothing_to_summarise(component: SummaryComponent, make_doc) -> None:
    doc = make_doc("quiet", [("a", "Internal: duplicate of 4312, closing.")], internal={0})
    assert component([doc]) == [[]]


def test_lexrank_prefers_the_hub() -> None:
    import numpy as np

    similarity = np.array(
        [[1, 0.9, 0.8, 0.1], [0.9, 1, 0.7, 0.1], [0.8, 0.7, 1, 0], [0.1, 0.1, 0, 1]]
    )
    scores = lexrank(similarity)
    assert scores.sum() == pytest.approx(1.0)
    assert int(scores.argmax()) == 0 and int(scores.argmin()) == 3


def test_scrub_contact_details() -> None:
    text = "Mail maria@brightlane.io or call +1 (415) 555-0123; order 55812 for $29.99, <PERSON>."
    assert scrub_contact_details(text) == (
        "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>; order 55812 for $29.99, <PERSON>."
    )


class _Handler(BaseHTTPRequestHandler):
    """A chat-completions endpoint: records each request, answers from `replies`."""

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        server: Any = self.server
        server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, reply = server.replies.pop(0) if server.replies else (200, "unused")
        payload = (
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
            }
            if status == 200
            else {"error": {"message": reply}}
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def llm_server() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests, server.replies = [], []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_abstractive_through_a_real_http_server(
    embedder: SentenceEmbedder, make_doc, llm_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test-123")
    port = llm_server.server_address[1]
    # First answer a 503 (retried once), then the summary.
    llm_server.replies = [(503, "warming up"), (200, "The customer's card payment failed.")]
    component = SummaryComponent(
        {
            "abstractive": True,
            "llm_base_url": f"http://127.0.0.1:{port}/v1",
            "llm_model": "tiny-chat",
            "llm_api_key_env": "TEST_LLM_KEY",
            "llm_timeout_s": 5,
        },
        embedder=embedder,
    )
    turns = [
        *CHAT[:4],
        ("c", "It's <PERSON>, maria@brightlane.io, phone +1 415 555 0123."),
        *CHAT[5:],
    ]
    doc = make_doc("llm", turns, internal={3})
    [labels] = component([doc])
    [abstract] = [a for a in labels if a.label == "summary.abstractive"]
    assert abstract.value == {
        "text": "The customer's card payment failed.",
        "model": "tiny-chat",
        "truncated": False,
    }
    assert len(llm_server.requests) == 2
    request = llm_server.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    body = request["body"]
    assert body["model"] == "tiny-chat"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    prompt = body["messages"][1]["content"]
    assert "Customer: My card payment failed at checkout three times" in prompt
    assert "Agent: I have cancelled the duplicate authorisations" in prompt
    # No raw contact details leave the machine; tags and internal notes stay out or as is.
    assert "maria@" not in prompt and "555" not in prompt
    assert "<PERSON>, <EMAIL_ADDRESS>, phone <PHONE_NUMBER>" in prompt
    assert "order number" not in prompt  # turn 3 was an internal note here
    assert [e.utterance_id for e in abstract.evidence] == [
        u for i, u in enumerate(doc.utterance_ids) if i != 3
    ]


def test_transcript_is_cut_to_the_budget(embedder: SentenceEmbedder, make_doc) -> None:
    component = SummaryComponent(
        {
            "abstractive": True,
            "llm_base_url": "http://127.0.0.1:9/v1",
            "llm_model": "m",
            "llm_max_prompt_tokens": 100,
        },
        embedder=embedder,
    )
    turns = [("c" if i % 2 else "a", f"Turn {i}: " + "word " * 20) for i in range(30)]
    text, used, truncated = component.transcript(make_doc("long", turns))
    assert truncated and len(text) <= 100 * 4 + 40
    assert text.startswith("Agent: Turn 0:") and text.rstrip().endswith("word")
    assert "Turn 29:" in text and "turns left out ...]" in text
    assert used[0] == 0 and used[-1] == 29


def test_unreachable_server_is_a_clear_error(embedder: SentenceEmbedder, make_doc) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAICompatibleBackend(
        f"http://127.0.0.1:{port}/v1", "m", timeout_s=2, retry_delay_s=0.01
    )
    component = SummaryComponent({"abstractive": True}, embedder=embedder, backend=backend)
    with pytest.raises(LlmUnavailableError, match=rf"127\.0\.0\.1:{port}/v1/chat/completions"):
        component([make_doc("down", CHAT)])
    skipping = SummaryComponent(
        {"abstractive": True, "llm_on_error": "skip"}, embedder=embedder, backend=backend
    )
    [labels] = skipping([make_doc("down2", CHAT)])
    assert [a.label for a in labels] == ["summary.extractive"]


def test_client_errors_are_not_retried(llm_server: Any) -> None:
    llm_server.replies = [(400, "unknown model")]
    backend = OpenAICompatibleBackend(
        f"http://127.0.0.1:{llm_server.server_address[1]}/v1", "nope", retry_delay_s=0.01
    )
    with pytest.raises(LlmError, match=r"HTTP 400.*unknown model"):
        backend.complete([{"role": "user", "content": "hi"}], max_tokens=16)
    assert len(llm_server.requests) == 1


def test_settings_are_validated(embedder: SentenceEmbedder) -> None:
    with pytest.raises(ValueError, match="llm_base_url"):
        SummaryComponent({"abstractive": True}, embedder=embedder)
    with pytest.raises(ValueError, match="max_sentence"):
        SummaryComponent({"max_sentence": 2}, embedder=embedder)


# --- Summaries by conversation type, on real transcripts -------------------------------

FILLER_START = re.compile(
    r"^\W*(?:uh|um|er|hmm|mm|yeah|okay|ok|so|well|hi|hello|hey|thanks|thank you|"
    r"good (?:morning|afternoon|question)|perfect|great|sure)\b",
    re.IGNORECASE,
)


def typed_summary(docs: list[Doc], embedder: SentenceEmbedder) -> list[dict[str, Any]]:
    """Conversation type and dialogue acts (rules), then the summary, as `analyze` runs them."""
    for component in (ConversationTypeComponent(), DialogueActComponent({"model": "rules"})):
        for doc, found in zip(docs, component(docs), strict=True):
            doc.annotations += found
    out = []
    for labels in SummaryComponent(embedder=embedder)(docs):
        [label] = [a for a in labels if a.label == "summary.extractive"]
        out.append({"value": label.value, "evidence": label.evidence})
    return out


def texts_of(doc: Doc) -> list[str]:
    return [u.text for u in doc.conversation.utterances]


def check_items(doc: Doc, summary: dict[str, Any]) -> None:
    """Every field item quotes the transcript where it says, that span is in the label's
    evidence, and no item nor the overview opens with filler or a greeting."""
    texts = dict(zip(doc.utterance_ids, (u.text for u in doc.conversation.utterances), strict=True))
    spans = {(e.utterance_id, e.start_char, e.end_char) for e in summary["evidence"]}
    assert not FILLER_START.match(summary["value"]["text"]), summary["value"]["text"]
    for name, items in summary["value"]["fields"].items():
        for item in items:
            quoted = texts[item["utterance_id"]][item["start"] : item["end"]]
            assert quoted.strip(), (name, item)
            assert (item["utterance_id"], item["start"], item["end"]) in spans, (name, item)
            assert not FILLER_START.match(item["text"]), (name, item["text"])


def test_sales_call_needs_competitor_next_steps(embedder: SentenceEmbedder) -> None:
    docs = example_docs("calls/call-20260915-0007.vtt")
    doc = docs["call-20260915-0007"]
    (summary,) = typed_summary([doc], embedder)
    value = summary["value"]
    assert value["type"] == "sales"
    fields = value["fields"]
    assert set(fields) == {"needs", "objections", "competitors", "next_steps", "commitments"}
    assert [c["name"] for c in fields["competitors"]] == ["Contoso"]
    assert "one place" in fields["needs"][0]["text"]
    assert any("technical session" in s["text"] for s in fields["next_steps"])
    assert any("SOC 2" in s["text"] or "quoted us" in s["text"] for s in fields["objections"])
    assert all(c["owner"] for c in fields["commitments"])
    overview = value["text"]
    assert "Contoso" in overview and overview.startswith("Tom wants one place")
    assert "Uh" not in overview and "good question" not in overview.lower()
    check_items(doc, summary)


@pytest.mark.skipif(not QMSUM.exists(), reason="shared QMSum data not present")
def test_qmsum_meeting_topics_decisions_actions(embedder: SentenceEmbedder) -> None:
    doc = qmsum_doc("ES2009d")
    (summary,) = typed_summary([doc], embedder)
    value = summary["value"]
    assert value["type"] == "meeting"
    fields = value["fields"]
    assert set(fields) == {"topics", "decisions", "action_items", "open_questions"}
    topics = fields["topics"]
    assert 1 <= len(topics) <= 12
    assert topics[0]["first_turn"] <= 5 and topics[-1]["last_turn"] >= len(texts_of(doc)) - 5
    # Topics tile the meeting in order, each with its turn range and a central sentence.
    assert all(a["last_turn"] < b["first_turn"] for a, b in itertools.pairwise(topics))
    assert fields["decisions"] or fields["action_items"]
    assert all(i["owner"] for i in fields["action_items"])
    assert value["text"].startswith("The meeting covered")
    check_items(doc, summary)


@pytest.mark.skipif(not QMSUM.exists(), reason="shared QMSum data not present")
def test_redaction_placeholders_are_no_topic(embedder: SentenceEmbedder) -> None:
    # After intake redaction a meeting's names are "<PERSON>" placeholders; they were
    # counted as words, and the demo meeting "covered person and people".
    doc = qmsum_doc("ES2009d")
    for n, utterance in enumerate(doc.conversation.utterances):
        if n % 2 == 0:
            utterance.text = f"<PERSON> {utterance.text} <PERSON_1a2b3c4d>"
    (summary,) = typed_summary([doc], embedder)
    titles = [t["title"] for t in summary["value"]["fields"]["topics"]]
    assert titles and not any("person" in t for t in titles), titles
    assert "person" not in summary["value"]["text"].split("covered", 1)[-1].split(";")[0]


def test_support_chat_reason_outcome_next_steps(embedder: SentenceEmbedder) -> None:
    docs = example_docs("chats/support_chats.jsonl")
    doc = docs["chat-20260903-0001"]  # a duplicate renewal charge, refunded
    (summary,) = typed_summary([doc], embedder)
    value = summary["value"]
    assert value["type"] == "support"
    fields = value["fields"]
    assert "charged twice" in fields["reason"][0]["text"]
    assert any("refund" in i["text"] for i in fields["actions_taken"])
    assert fields["outcome"] and fields["next_steps"]
    assert all(i.get("owner") for i in fields["next_steps"])
    overview = value["text"]
    assert overview.startswith("Maria was charged twice"), overview
    assert "Sam has issued a full refund" in overview
    check_items(doc, summary)


def test_no_field_opens_with_filler_across_the_sample_corpus(embedder: SentenceEmbedder) -> None:
    docs = example_docs(
        "calls/meeting-20260916-0003.srt", "chats/sales_chats.json", "csv/chat_export.csv"
    )
    chosen = list(docs.values())
    for doc, summary in zip(chosen, typed_summary(chosen, embedder), strict=True):
        check_items(doc, summary)
        if summary["value"]["type"] in ("meeting", "sales"):
            assert not {"reason", "outcome"} & set(summary["value"]["fields"])


def test_segmentation_measures() -> None:
    reference = boundaries_to_labels([5, 10], 15)
    assert reference == [0] * 5 + [1] * 5 + [2] * 5
    assert pk(reference, reference) == 0.0 and window_diff(reference, reference) == 0.0
    # k = 2 (half the mean segment): 4 of the 13 pairs straddle a missed boundary.
    assert pk(reference, [0] * 15) == pytest.approx(4 / 13)
    assert window_diff(reference, boundaries_to_labels([6, 10], 15)) < window_diff(
        reference, [0] * 15
    )
    # Three blocks of different directions: the two boundaries are found.
    rng = np.random.default_rng(0)
    blocks = [np.eye(8)[k] + 0.05 * rng.standard_normal((30, 8)) for k in range(3)]
    vectors = np.vstack(blocks)
    assert texttiling(vectors, window=5, depth=0.5, min_turns=10, most=5) == [30, 60]
